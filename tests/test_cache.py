"""The results cache (.secl_cache): never stale, a corrupt or foreign entry is ignored and
rebuilt, concurrent runs agree, a configuration change or a new secl version starts afresh,
--no-cache neither reads nor writes it, `secl clean` removes it and nothing else.

Every test compares a cached run with a run without the cache: the cache may only make a
run faster, never change what it says."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import secl
import secl.index
from secl import cache
from secl.cli import main
from tests.catalogue_harness import write_files

BPF = """\
#include <bpf/bpf_helpers.h>
SEC("kprobe/do_unlinkat")
int handle(void *ctx) { return 0; }
"""
LOADER_PLAIN = """\
#include "probe.skel.h"
int main(void) {
    struct probe *skel = probe__open_and_load();
    probe__attach(skel);
    return 0;
}
"""
# The same loader attaching at an offset: SECL201 on the BPF source.
LOADER_OFFSET = """\
#include "probe.skel.h"
int main(void) {
    struct probe *skel = probe__open_and_load();
    LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 0x10);
    bpf_program__attach_kprobe_opts(skel->progs.handle, "do_unlinkat", &opts);
    return 0;
}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A marked project (pyproject.toml) with a BPF source and its loader in another
    directory, the cache at its default place, and the current directory at its root."""
    monkeypatch.delenv("SECL_CACHE_DIR", raising=False)
    write_files(
        tmp_path,
        {
            "pyproject.toml": "[project]\nname = 'x'\n",
            "bpf/probe.bpf.c": BPF,
            "user/main.c": LOADER_PLAIN,
        },
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["check", "--output-format", "concise", *args])
    return code, capsys.readouterr().out


def _same_as_without_cache(capsys, *args: str) -> tuple[int, str]:
    cached = _check(capsys, *args)
    assert cached == _check(capsys, "--no-cache", *args)
    return cached


def _entries(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.parent != directory)


def test_an_edited_loader_makes_the_finding_appear_and_disappear(project: Path, capsys) -> None:
    code, out = _same_as_without_cache(capsys, "bpf/probe.bpf.c")
    assert code == 0 and "SECL201" not in out
    assert (project / ".secl_cache").is_dir()
    (project / "user/main.c").write_text(LOADER_OFFSET)
    code, out = _same_as_without_cache(capsys, "bpf/probe.bpf.c")
    assert code == 1 and "bpf/probe.bpf.c:2:5: SECL201" in out
    (project / "user/main.c").write_text(LOADER_PLAIN)
    code, out = _same_as_without_cache(capsys, "bpf/probe.bpf.c")
    assert code == 0 and "SECL201" not in out


def test_trusted_entries_are_not_read_again_and_a_same_size_same_mtime_edit_is_seen(
    project: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the racy window a file is trusted by its signature; an edit that keeps its size
    and mtime still changes its ctime."""
    monkeypatch.setattr(secl.index, "RACY_NS", 0)
    _check(capsys, "bpf/probe.bpf.c")
    reads: list[str] = []
    real = secl.index.read
    monkeypatch.setattr(secl.index, "read", lambda p, *a: reads.append(p) or real(p, *a))
    assert _check(capsys, "bpf/probe.bpf.c")[0] == 0
    assert reads == []  # the loader is known from the index
    loader = project / "user/main.c"
    padded = LOADER_OFFSET.ljust(len(LOADER_PLAIN) + 200)
    loader.write_text(LOADER_PLAIN.ljust(len(padded)))
    assert _check(capsys, "bpf/probe.bpf.c")[0] == 0
    st = loader.stat()
    loader.write_text(padded)  # same size
    os.utime(loader, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime
    code, out = _same_as_without_cache(capsys, "bpf/probe.bpf.c")
    assert code == 1 and "SECL201" in out


def test_an_edit_in_place_is_seen_from_the_signatures_alone(
    project: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm run whose directories did not change (secl.index.Indexer._same_listing) only
    compares the signatures of the files: an edit in place that makes a file a loader is
    seen all the same; an edit by rename (a new inode, its directory changed) takes the
    full refresh, and is seen."""
    monkeypatch.setattr(secl.index, "RACY_NS", 0)
    loader = project / "user/main.c"
    loader.write_text("int main(void) { return 0; }\n")  # no loader of the probe
    assert _check(capsys, "bpf/probe.bpf.c")[0] == 0
    assert _check(capsys, "bpf/probe.bpf.c")[0] == 0  # the cache directory made: listed again
    thawed: list[object] = []
    real = secl.index._thaw
    monkeypatch.setattr(secl.index, "_thaw", lambda index: thawed.append(index) or real(index))
    loader.write_text(LOADER_OFFSET)
    code, out = _same_as_without_cache(capsys, "bpf/probe.bpf.c")
    assert code == 1 and "bpf/probe.bpf.c:2:5: SECL201" in out
    loader.write_text("int main(void) { return 1; }\n")
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 0
    assert thawed == []
    staged = project / "user/main.c.new"
    staged.write_text(LOADER_OFFSET)
    os.replace(staged, loader)
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 1
    assert len(thawed) == 1


GO_LOADER = """\
package main

import bpf "github.com/aquasecurity/libbpfgo"

func main() {
	m, _ := bpf.NewModuleFromFile("probe.bpf.o")
	m.BPFLoadObject()
	p, _ := m.GetProgram("handle")
	CALL
}
"""


def test_an_edited_go_loader_is_seen_from_its_signature(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loader candidates (Go, Rust, Python, build files) are kept by signature too."""
    monkeypatch.delenv("SECL_CACHE_DIR", raising=False)
    monkeypatch.setattr(secl.index, "RACY_NS", 0)
    write_files(
        tmp_path,
        {
            "pyproject.toml": "[project]\nname = 'x'\n",
            "go.mod": "module x\n\nrequire github.com/aquasecurity/libbpfgo v0.8.0\n",
            "probe.bpf.c": BPF,
            "main.go": GO_LOADER.replace("CALL", 'p.AttachKprobe("do_unlinkat")'),
        },
    )
    monkeypatch.chdir(tmp_path)
    assert _same_as_without_cache(capsys, "probe.bpf.c")[0] == 0
    (tmp_path / "main.go").write_text(GO_LOADER.replace("CALL", "p.AttachKprobeOffset(0x10)"))
    code, out = _same_as_without_cache(capsys, "probe.bpf.c")
    assert code == 1 and "probe.bpf.c:2:5: SECL201" in out
    (tmp_path / "main.go").write_text(GO_LOADER.replace("CALL", 'p.AttachKprobe("x")'))
    assert _same_as_without_cache(capsys, "probe.bpf.c")[0] == 0


def test_a_new_and_a_removed_loader_are_seen(project: Path, capsys) -> None:
    (project / "user/main.c").unlink()
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 0
    (project / "user/deep/er").mkdir(parents=True)
    (project / "user/deep/er/new.c").write_text(LOADER_OFFSET)
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 1
    shutil.rmtree(project / "user/deep")
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 0


def test_a_corrupt_or_foreign_entry_is_ignored_and_rebuilt(project: Path, capsys) -> None:
    (project / "user/main.c").write_text(LOADER_OFFSET)
    expected = _check(capsys, "--no-cache", "bpf/probe.bpf.c")
    assert _check(capsys, "bpf/probe.bpf.c") == expected
    entries = _entries(project / ".secl_cache")
    assert entries
    for i, entry in enumerate(entries):
        blob = entry.read_bytes()
        if i % 3 == 0:
            entry.write_bytes(blob[: len(blob) // 2])  # torn
        elif i % 3 == 1:
            entry.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))  # one bit
        else:
            entry.write_bytes(b"not a cache entry")
    assert _check(capsys, "bpf/probe.bpf.c") == expected
    assert all(cache.decode(e.read_bytes()) is not None for e in _entries(project / ".secl_cache"))


class _Boom:
    def __reduce__(self):
        return (os.system, ("false",))


def test_an_entry_that_would_run_code_is_refused() -> None:
    import hashlib

    payload = pickle.dumps(_Boom())
    blob = cache.MAGIC + hashlib.blake2b(payload, digest_size=cache.DIGEST).digest() + payload
    assert cache.decode(blob) is None


def test_facts_round_trip_exactly(selftests: Path) -> None:
    from secl.api import load

    run = load([str(selftests / "progs")])
    sites = tuple(run.project.sites)
    assert len(sites) > 1000
    assert cache.decode(cache.encode(sites)) == sites
    scan = run.project.loader_scan
    assert scan is not None
    assert cache.decode(cache.encode(scan.files)) == scan.files


def test_concurrent_runs_agree_and_leave_whole_entries(project: Path, capsys) -> None:
    (project / "user/main.c").write_text(LOADER_OFFSET)
    for i in range(8):
        (project / f"bpf/other{i}.bpf.c").write_text(BPF.replace("handle", f"h{i}"))
    expected = _check(capsys, "--no-cache", ".")[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "secl", "check", "--output-format", "concise", "."]
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for _ in range(6)
    ]
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 1, err
        assert out.decode() == expected
    entries = _entries(project / ".secl_cache")
    assert entries and not [e for e in entries if e.name.endswith(".tmp")]
    assert all(cache.decode(e.read_bytes()) is not None for e in entries)
    assert _check(capsys, ".")[1] == expected


def test_a_configuration_change_is_not_answered_from_the_cache(project: Path, capsys) -> None:
    (project / "user/main.c").write_text(LOADER_OFFSET)
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 1
    (project / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n[tool.secl]\nextend-exclude = ['user']\n"
    )
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 0
    assert _same_as_without_cache(capsys, "--exclude", "nothing", "bpf/probe.bpf.c")[0] == 0
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n[tool.secl]\n")
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 1
    (project / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n[tool.secl]\nmax-file-size = 100\n"
    )
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 0


def test_a_new_secl_version_does_not_read_the_old_entries(
    project: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _check(capsys, "bpf/probe.bpf.c")[0] == 0
    old = cache.fingerprint()
    # Poison the current namespace: a site entry that says something else. It is read (the
    # cache is in use) ...
    from secl.parse.filefacts import FileFacts

    entry = cache.key("c", "bpf/probe.bpf.c", BPF.encode())
    store = cache.Store(str(project / ".secl_cache"))
    [site] = cache.decode(Path(store.path("files", entry)).read_bytes()).sites
    from dataclasses import replace

    store.put("files", entry, FileFacts((replace(site, section="bogus", section_text='"bogus"'),)))
    assert "SECL101" in _check(capsys, "bpf/probe.bpf.c")[1]
    # ... until secl is upgraded: a new namespace, built afresh.
    monkeypatch.setattr(secl, "__version__", "999.0")
    assert cache.fingerprint() != old
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 0
    spaces = [p.name for p in (project / ".secl_cache").iterdir() if p.is_dir()]
    assert old in spaces and cache.fingerprint() in spaces


def test_no_cache_neither_reads_nor_writes(project: Path, capsys) -> None:
    _check(capsys, "--no-cache", "bpf/probe.bpf.c")
    assert not (project / ".secl_cache").exists()
    _check(capsys, "bpf/probe.bpf.c")
    before = {p: p.read_bytes() for p in _entries(project / ".secl_cache")}
    for p in before:
        p.write_bytes(b"garbage")
    _check(capsys, "--no-cache", "bpf/probe.bpf.c")
    assert all(p.read_bytes() == b"garbage" for p in before)


def test_where_the_cache_lives(project: Path, capsys, monkeypatch, tmp_path_factory) -> None:
    _check(capsys, "bpf/probe.bpf.c")
    assert (project / ".secl_cache/.gitignore").read_text().splitlines()[-1] == "*"
    assert (project / ".secl_cache" / cache.TAG).is_file()
    configured = project / "elsewhere"
    (project / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n[tool.secl]\ncache-dir = 'elsewhere'\n"
    )
    _check(capsys, "bpf/probe.bpf.c")
    assert _entries(configured)
    env = tmp_path_factory.mktemp("env-cache")
    monkeypatch.setenv("SECL_CACHE_DIR", str(env))
    _check(capsys, "bpf/probe.bpf.c")
    assert _entries(env)


def test_clean_removes_the_cache_and_nothing_else(project: Path, capsys, monkeypatch) -> None:
    _check(capsys, "bpf/probe.bpf.c")
    assert main(["clean"]) == 0
    assert "Removed the results cache" in capsys.readouterr().out
    assert not (project / ".secl_cache").exists()
    assert (project / "bpf/probe.bpf.c").read_text() == BPF
    assert main(["clean"]) == 0  # nothing to remove
    not_ours = project / "mine"
    not_ours.mkdir()
    (not_ours / "keep.txt").write_text("x")
    monkeypatch.setenv("SECL_CACHE_DIR", str(not_ours))
    assert main(["clean"]) == 2
    assert (not_ours / "keep.txt").read_text() == "x"


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    store = cache.Store(str(tmp_path / "c"))
    for i in range(40):
        store.put("files", cache.key(str(i)), b"x" * 1000)
    store.trim(limit=10_000)
    left = _entries(tmp_path / "c")
    assert 0 < len(left) <= 10
    for i in range(cache.MAX_NAMESPACES + 2):
        (tmp_path / "c" / f"v1-old{i}").mkdir()
    store2 = cache.Store(str(tmp_path / "c"))
    store2.namespace = str(tmp_path / "c" / "v1-new")
    store2.put("files", cache.key("y"), 1)
    spaces = [p for p in (tmp_path / "c").iterdir() if p.is_dir()]
    assert len(spaces) == cache.MAX_NAMESPACES


def test_an_unwritable_cache_is_done_without(project: Path, capsys, monkeypatch) -> None:
    blocker = project / "blocked"
    blocker.write_text("a file where the cache directory would be")
    monkeypatch.setenv("SECL_CACHE_DIR", str(blocker / "cache"))
    (project / "user/main.c").write_text(LOADER_OFFSET)
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 1


# -- a large git work tree (the threshold lowered) ---------------------------------------------


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_git_tree_index_sees_edits_new_files_ignores_and_the_index(
    project: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import secl.api

    monkeypatch.setattr(secl.index, "GIT_GREP_FROM", 3)
    monkeypatch.setattr(secl.api, "GIT_GREP_FROM", 3)
    write_files(
        project,
        {
            ".gitignore": "generated/\n",
            **{f"lib/util{i}.c": f"int util{i}(void) {{ return {i}; }}\n" for i in range(4)},
        },
    )
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "fixture")
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 0
    index = _the_index(project)
    assert index.git and "lib/util0.c" in index.c_files
    (project / "user/main.c").write_text(LOADER_OFFSET)  # tracked, not staged
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 1
    (project / "user/main.c").write_text(LOADER_PLAIN)
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 0
    (project / "generated").mkdir()
    (project / "generated/loader.c").write_text(LOADER_OFFSET)  # ignored: not a loader
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 0
    (project / "lib/new.c").write_text(LOADER_OFFSET)  # untracked, not ignored
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 1
    _git(project, "add", "lib/new.c")  # only git's index changes
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 1
    _git(project, "rm", "-q", "--cached", "lib/new.c")  # untracked again
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 1
    (project / ".gitignore").write_text("generated/\nnew.c\n")  # ignored now
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 0
    (project / ".gitignore").write_text("")  # nothing ignored
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 1
    (project / "lib/new.c").unlink()
    (project / "generated/loader.c").unlink()
    assert _same_as_without_cache(capsys, "bpf/probe.bpf.c")[0] == 0


def _the_index(project: Path) -> secl.index.TreeIndex:
    trees = [
        cache.decode(p.read_bytes())
        for p in _entries(project / ".secl_cache")
        if p.parent.name == "trees"
    ]
    assert len(trees) == 1
    return trees[0]
