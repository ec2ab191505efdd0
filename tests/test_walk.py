"""One walk for the C files and the loader scan: the candidates the C walk gathers are the
ones the loader scan's own walk finds, in its order, or the walk says it cannot tell."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import secl.api
from secl.api import load
from secl.config import DEFAULT_EXCLUDE, Config
from secl.files import AlsoFound, Exclusion, FileProblem, discover
from secl.loaders.discover import VENDOR_DIRS, is_candidate, walk


def _tree(root: Path) -> None:
    files = {
        "go.mod": "module example.com/x\n",
        "main.go": "package main\n",
        "Makefile": "all:\n",
        "bpf/probe.bpf.c": 'SEC("kprobe/x") int p(void *c) { return 0; }\n',
        "bpf/probe.h": "",
        "bpf/loader.go": "package bpf\n",
        "bpf/notes.txt": "",
        "rust/Cargo.toml": '[package]\nname = "x"\n',
        "rust/src/main.rs": "fn main() {}\n",
        "tools/gen.py": 'from bcc import BPF\nBPF(src_file="bpf/probe.bpf.c")\n',
        "tools/build.mk": "",
        "third-party/lib/dep.go": "package dep\n",  # vendored: never a loader candidate
        "third-party/lib/dep.c": "",  # ... but a C source (not excluded by default)
        "external/x/Cargo.lock": "",
        "vendor/y/y.go": "package y\n",  # excluded
        "build/out.go": "package out\n",  # excluded
        "node_modules/m/m.go": "",  # never walked
        "a/b/c/deep.rs": "",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / ".git").mkdir()
    os.mkfifo(root / "pipe.go")  # a FIFO is never read
    (root / "broken.go").symlink_to(root / "missing.go")
    # A link to a directory of the tree that sorts after it: both walks skip it.
    (root / "zlinked").symlink_to(root / "rust", target_is_directory=True)


def _gathered(root: Path, arg: str) -> tuple[AlsoFound, list[str]]:
    also = AlsoFound(arg, is_candidate, VENDOR_DIRS)
    exclusion = Exclusion(DEFAULT_EXCLUDE, str(root))
    items = list(discover([arg], exclusion, also=also))
    return also, [i for i in items if not isinstance(i, FileProblem)]


@pytest.mark.parametrize("relative", [True, False])
def test_the_c_walk_gathers_what_the_loader_walk_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relative: bool
) -> None:
    root = tmp_path.resolve()
    _tree(root)
    monkeypatch.chdir(root)
    also, c_files = _gathered(root, "." if relative else str(root))
    expected = list(walk(str(root), DEFAULT_EXCLUDE))
    if relative:
        expected = [os.path.relpath(p) for p in expected]
    assert also.complete
    assert also.found == expected
    assert "third-party/lib/dep.go" not in {os.path.relpath(p) for p in also.found}
    assert any(p.endswith("dep.c") for p in c_files)  # vendored C is still walked


def test_a_directory_first_reached_under_a_vendored_one_is_walked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = (tmp_path / "project").resolve()
    root.mkdir()
    _tree(root)
    shared = tmp_path / "shared"  # outside the tree, linked twice
    shared.mkdir()
    (shared / "gen.py").write_text((root / "tools" / "gen.py").read_text())
    # `external/` is walked first: the C walk enters shared/ there, where the loader walk
    # would not look, and does not enter it again through `zlink`.
    (root / "external" / "link").symlink_to(shared, target_is_directory=True)
    (root / "zlink").symlink_to(shared, target_is_directory=True)
    monkeypatch.chdir(root)
    also, _ = _gathered(root, ".")
    assert not also.complete
    # ... so the run walks again, and finds zlink/gen.py as the loader walk does.
    scan = load(["."], Config(root=str(root), cache=False)).project.loader_scan
    assert scan is not None
    assert [lf.path for lf in scan.files] == ["tools/gen.py", "zlink/gen.py"]


@pytest.mark.parametrize("cache", [False, True])
def test_every_walk_names_a_linked_directory_of_the_tree_by_its_own_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: bool
) -> None:
    root = tmp_path.resolve()
    _tree(root)
    # `atools` sorts before `tools`: a walk that followed the link would name the loader
    # `atools/gen.py` first. The C walk, the loader walk and the tree index all skip it.
    (root / "atools").symlink_to(root / "tools", target_is_directory=True)
    monkeypatch.chdir(root)
    also, _ = _gathered(root, ".")
    assert also.complete
    assert "atools/gen.py" not in also.found and "tools/gen.py" in also.found
    assert "atools" not in {p.split("/")[0] for p in walk(".", DEFAULT_EXCLUDE)}
    config = Config(root=str(root), cache=cache, cache_dir=str(tmp_path / "cache"))
    scan = load(["."], config).project.loader_scan
    assert scan is not None
    assert [lf.path for lf in scan.files] == ["tools/gen.py"]


def test_the_run_scans_the_same_loaders_with_and_without_the_gathering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path.resolve()
    _tree(root)
    monkeypatch.chdir(root)
    config = Config(root=str(root), cache=False)
    gathered = load(["."], config).project.loader_scan
    monkeypatch.setattr(secl.api, "_loader_candidates", lambda *args: None)
    walked = load(["."], config).project.loader_scan
    assert gathered == walked
    assert gathered is not None and [lf.path for lf in gathered.files] == ["tools/gen.py"]


def test_plain_name_excludes_walk_as_the_general_patterns_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path.resolve()
    _tree(root)
    for name in ("gen/x.bpf.c", "src/gen/y.bpf.c", "src/b.bpf.c", "src/keep.bpf.c"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    monkeypatch.chdir(root)
    plain = ["gen", "gen/", "b.bpf.c", "none", *DEFAULT_EXCLUDE]
    general = [*plain, "zz/*"]  # a pattern with `/`: every path goes through the matcher
    runs = []
    for patterns in (plain, general):
        exclusion = Exclusion(patterns, str(root))
        found = [i for i in discover(["."], exclusion) if not isinstance(i, FileProblem)]
        runs.append((found, exclusion.unmatched()))
    assert Exclusion(plain, str(root)).names() is not None
    assert Exclusion(general, str(root)).names() is None
    assert runs[0][0] == runs[1][0]
    assert "src/keep.bpf.c" in runs[0][0] and "src/b.bpf.c" not in runs[0][0]
    assert not any("gen/" in p for p in runs[0][0])
    assert runs[0][1][0] == "none" and "vendor" not in runs[0][1] and "dist" in runs[0][1]
    assert runs[1][1] == [*runs[0][1], "zz/*"]
    # Walking an excluded directory itself: everything under it is excluded, as before.
    exclusion = Exclusion(plain, str(root))
    assert [i for i in discover(["gen"], exclusion) if not isinstance(i, FileProblem)] == []
