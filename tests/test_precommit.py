"""The pre-commit hooks, driven by the real `pre-commit` tool.

`pre-commit try-repo` builds the hooks' environment from a repository with pip (PyPI must be
reachable for secl's dependencies; nothing else is fetched). The repository it gets is a
snapshot of this working tree as it is now, uncommitted and untracked files included, so the
test checks the current code, not the last commit. It is slow (try-repo installs the hook
environment anew on every call, ~12 s each); outside CI it is skipped only when pre-commit or
git is missing, and in CI (CI=true) never.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# A program that needs `.single` (SECL201: its loader attaches it with an offset) and a
# header with a doubled `?` (SECL110): both have safe fixes, and the header proves that the
# hooks are given `.h` files.
BPF = """\
// SPDX-License-Identifier: GPL-2.0
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "probe_extra.h"

SEC("kprobe/do_unlinkat")
int handle(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""
HEADER = """\
/* Included by probe.bpf.c. */
SEC("??kprobe/do_exit")
int on_exit(void *ctx)
{
	return 0;
}
"""
LOADER = """\
// SPDX-License-Identifier: GPL-2.0
#include <bpf/libbpf.h>
#include "probe.skel.h"

int main(void)
{
	struct probe *skel;
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 0x10);

	skel = probe__open_and_load();
	if (!skel)
		return 1;
	if (!bpf_program__attach_kprobe_opts(skel->progs.handle, "do_unlinkat", &opts))
		return 1;
	probe__destroy(skel);
	return 0;
}
"""


def _require(condition: bool, why: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(f"{why}: the pre-commit test must run in CI")
        pytest.skip(why)


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        # try-repo builds the hook environment in a store of its own each time; this keeps
        # anything else pre-commit writes (logs) out of the user's cache.
        PRE_COMMIT_HOME=str(tmp / "pre-commit-home"),
        GIT_AUTHOR_NAME="secl test",
        GIT_AUTHOR_EMAIL="secl@example.invalid",
        GIT_COMMITTER_NAME="secl test",
        GIT_COMMITTER_EMAIL="secl@example.invalid",
        GIT_CONFIG_GLOBAL=os.devnull,  # no hooksPath, signing or templates of the machine
    )
    env.pop("PRE_COMMIT", None)
    return env


def _git(cwd: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=cwd, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout


def _snapshot(dest: Path, env: dict[str, str]) -> Path:
    """A one-commit repository with this working tree's files as they are on disk."""
    listed = _git(ROOT, env, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    dest.mkdir()
    for name in sorted(set(filter(None, listed.split("\0")))):
        source = ROOT / name
        if not os.path.lexists(source):
            continue  # deleted but not yet committed
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    _git(dest, env, "init", "-q")
    _git(dest, env, "add", "-A")
    _git(dest, env, "commit", "-q", "-m", "snapshot of the working tree")
    return dest


def _try_repo(repo: Path, hook: str, cwd: Path, env: dict[str, str]):
    command = [sys.executable, "-m", "pre_commit", "try-repo", str(repo), hook]
    return subprocess.run(
        [*command, "--all-files", "--color=never"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def test_hooks_file() -> None:
    yaml = pytest.importorskip("yaml") if not IN_CI else __import__("yaml")
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"secl", "secl-fix"}
    assert hooks["secl"]["entry"] == "secl check"
    assert hooks["secl-fix"]["entry"] == "secl fix --in-place"
    for hook in hooks.values():
        assert hook["language"] == "python" and hook["types_or"] == ["c"]
        assert hook.get("pass_filenames", True) is True


def test_identify_tags_headers_as_c() -> None:
    # `types_or: [c]` relies on it: identify tags `.h` as c, c++ and header.
    identify = pytest.importorskip("identify.identify") if not IN_CI else None
    if identify is None:
        from identify import identify
    assert "c" in identify.tags_from_filename("probe_extra.h")
    assert "c" in identify.tags_from_filename("probe.bpf.c")


def test_pre_commit_try_repo_finds_fixes_and_passes(tmp_path: Path) -> None:
    _require(shutil.which("git") is not None, "git is not installed")
    try:
        import pre_commit  # noqa: F401
    except ImportError:
        _require(False, "pre-commit is not installed (pip install -e '.[test]')")
    env = _env(tmp_path)
    repo = _snapshot(tmp_path / "secl", env)
    user = tmp_path / "user"
    user.mkdir()
    for name, text in {"probe.bpf.c": BPF, "probe_extra.h": HEADER, "probe.c": LOADER}.items():
        (user / name).write_text(text)
    _git(user, env, "init", "-q")
    _git(user, env, "add", ".")

    start = time.perf_counter()
    check = _try_repo(repo, "secl", user, env)
    built = time.perf_counter() - start
    output = check.stdout + check.stderr
    assert check.returncode == 1, output
    assert "probe.bpf.c:6:5: SECL201" in output, output
    assert "probe_extra.h:2:5: SECL110" in output, output

    fix = _try_repo(repo, "secl-fix", user, env)
    output = fix.stdout + fix.stderr
    assert fix.returncode == 1, output  # pre-commit fails a hook that modified files
    assert "files were modified by this hook" in output, output
    assert (user / "probe.bpf.c").read_text() == BPF.replace("kprobe/", "kprobe.single/")
    assert (user / "probe_extra.h").read_text() == HEADER.replace("??", "?")
    assert (user / "probe.c").read_text() == LOADER

    again = _try_repo(repo, "secl", user, env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Passed" in again.stdout, again.stdout
    total = time.perf_counter() - start
    print(f"pre-commit: first try-repo {built:.1f} s, all three {total:.1f} s")
