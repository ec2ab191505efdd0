"""Pairing a one-file run with the rest of its project: walked and read in a small tree,
listed and searched by git in a large git work tree (a real git repository here; the size
threshold is lowered so that a handful of files count as large)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import secl.api
from secl.analysis.run import run_rules
from secl.api import load
from secl.config import Config
from secl.files import git_grep, git_sources
from tests.analysis.test_upgrade import TWO_OBJECTS
from tests.catalogue_harness import write_files

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def _repo(root: Path, files: dict[str, str], untracked: dict[str, str] | None = None) -> None:
    write_files(root, files)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "fixture")
    write_files(root, untracked or {})


def _findings(root: Path, paths: list[str]) -> list[tuple[str, int, str]]:
    cwd = os.getcwd()
    os.chdir(root)
    try:
        # Without the results cache: these tests are about how the tree is searched.
        run = load(paths, Config(root=str(root), select=("ALL",), cache=False))
        return sorted(
            (os.path.normpath(f.path), f.span.start_byte, f.code) for f in run_rules(run.project)
        )
    finally:
        os.chdir(cwd)


class _Spy:
    def __init__(self) -> None:
        self.calls: list[list[bytes]] = []

    def __call__(self, root: str, needles, exclude=()):
        self.calls.append(list(needles))
        return git_grep(root, needles, exclude)


def test_a_large_git_tree_is_searched_by_git_with_the_same_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    filler = {f"lib/util{i}.c": f"int util{i}(void) {{ return {i}; }}\n" for i in range(6)}
    # The loader is not committed: git lists untracked files that are not ignored.
    loader = {"main.c": TWO_OBJECTS["main.c"]}
    _repo(tmp_path, {**filler, **{k: v for k, v in TWO_OBJECTS.items() if k != "main.c"}}, loader)
    whole = [f for f in _findings(tmp_path, ["."]) if f[0] == "tracer.bpf.c"]
    assert ("tracer.bpf.c", whole[0][1], "SECL201") in whole

    spy = _Spy()
    monkeypatch.setattr(secl.api, "GIT_GREP_FROM", 3)
    monkeypatch.setattr(secl.api, "git_grep", spy)
    assert _findings(tmp_path, ["tracer.bpf.c"]) == whole
    assert spy.calls and b"tracer__" in spy.calls[0]


def test_git_leaves_out_ignored_files_and_excluded_paths(tmp_path: Path) -> None:
    _repo(
        tmp_path,
        {
            ".gitignore": "generated/\n",
            "probe.bpf.c": 'SEC("kprobe/x") int p(void *ctx) { return 0; }\n',
            "loader.c": "int main(void) { return !probe__open(); }\n",
            "build/old.c": "int main(void) { return !probe__open(); }\n",
            "node_modules/x.c": "int main(void) { return !probe__open(); }\n",
            "README.md": "probe__open\n",
            "include/probe.h": "struct probe;\n",
        },
        {
            "new.c": "int main(void) { return !probe__open_and_load(); }\n",
            "generated/probe.skel.h": "static struct probe *probe__open(void);\n",
        },
    )
    root = str(tmp_path)
    exclude = Config().exclude  # "build" among them
    listed = [os.path.relpath(p, root) for p in git_sources(root, exclude) or []]
    assert listed == ["include/probe.h", "loader.c", "new.c", "probe.bpf.c"]
    named = git_sources(root, exclude, names=["probe", "new"])
    assert [os.path.relpath(p, root) for p in named or []] == [
        "include/probe.h",
        "new.c",
        "probe.bpf.c",
    ]
    found = git_grep(root, [b"probe__"], exclude)
    assert [os.path.relpath(p, root) for p in found or []] == ["loader.c", "new.c"]
    assert git_grep(root, [b"no_such_skeleton__"], exclude) == []


def test_without_git_the_tree_is_walked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _repo(tmp_path, TWO_OBJECTS)
    whole = [f for f in _findings(tmp_path, ["."]) if f[0] == "tracer.bpf.c"]
    empty = tmp_path / "no-git-here"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(secl.api, "GIT_GREP_FROM", 1)
    assert git_sources(str(tmp_path)) is None
    assert _findings(tmp_path, ["tracer.bpf.c"]) == whole


def test_nothing_is_searched_when_every_file_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pre-commit with --all-files and `secl check *.c` name every file: pairing has nothing
    to add and must not scan them all again for skeleton names."""
    write_files(tmp_path, TWO_OBJECTS)
    calls = []
    monkeypatch.setattr(secl.api, "_wanted", lambda *a: calls.append(a) or (set(), set(), set()))
    _findings(tmp_path, sorted(TWO_OBJECTS))
    assert calls == []
    _findings(tmp_path, ["tracer.bpf.c"])
    assert calls


def test_a_git_failure_falls_back_to_the_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _repo(tmp_path, TWO_OBJECTS)
    whole = [f for f in _findings(tmp_path, ["."]) if f[0] == "tracer.bpf.c"]
    monkeypatch.setattr(secl.api, "GIT_GREP_FROM", 1)
    monkeypatch.setattr(secl.api, "git_grep", lambda *a: None)
    assert _findings(tmp_path, ["tracer.bpf.c"]) == whole


def test_many_names_are_matched_from_one_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _repo(tmp_path, TWO_OBJECTS)
    whole = [f for f in _findings(tmp_path, ["."]) if f[0] == "main.c"]
    monkeypatch.setattr(secl.api, "GIT_GREP_FROM", 1)
    for limit in (32, 0):  # one pathspec per name, then one listing filtered in Python
        monkeypatch.setattr(secl.api._GitCandidates, "_PATHSPECS", limit)
        assert _findings(tmp_path, ["main.c"]) == whole


def test_git_answers_for_a_subdirectory_not_for_an_ignored_one(tmp_path: Path) -> None:
    _repo(
        tmp_path,
        {
            ".gitignore": "vendored/\n",
            "src/loader.c": "int main(void) { return !probe__open(); }\n",
        },
        {"vendored/loader.c": "int main(void) { return !probe__open(); }\n"},
    )
    _git(tmp_path, "config", "grep.fullName", "true")  # names must stay relative to the root
    src = str(tmp_path / "src")
    assert secl.api.git_answers(src)
    assert git_grep(src, [b"probe__"]) == [os.path.join(src, "loader.c")]
    assert not secl.api.git_answers(str(tmp_path / "vendored"))


def test_a_bpf_source_for_pairing_has_a_section_call() -> None:
    config = Config()
    wanted = lambda text: secl.api._wanted({"x.c": text.encode()}, config)[1]  # noqa: E731
    assert wanted('int p(void *c) __attribute__((__section__("kprobe/f")));\n')
    assert wanted("KPROBE_SEC(do_unlinkat)\nint p(void *c) { return 0; }\n")
    assert wanted('SEC("xdp") int p(void *c) { return 0; }\n')
    # A loader that says "section" in prose or asks libbpf for a section name is no BPF source.
    assert not wanted(
        "/* check the ELF section */\nconst char *s = bpf_program__section_name(prog);\n"
    )
