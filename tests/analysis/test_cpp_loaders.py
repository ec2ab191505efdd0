"""C++ libbpf loaders (issue 11) in whole runs: the fixture project's markers, pairing from a
one-file run of the BPF source (walk, results-cache index, git grep), bpftool's C++ skeleton
members, and a C++ file that does not parse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from secl.api import load
from secl.config import Config
from tests.analysis.test_loaders import FIXTURES, findings, inventory, secl, write
from tests.catalogue_harness import markers

PROJECT = FIXTURES / "cpp"
EXPECTED = {("probe.bpf.c", 11, "SECL201"), ("probe.bpf.c", 53, "SECL201")}


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "cpp"
    shutil.copytree(PROJECT, root)
    (root / ".git").mkdir()
    return root


def _got(root: Path, *args: str) -> set[tuple[str, int, str]]:
    return {
        (os.path.normpath(f["filename"]), f["location"]["row"], f["code"])
        for f in findings(root, "--select", "ALL", *args)
    }


def test_fixture_project_markers_and_inventory(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    got = _got(root, ".")
    must, must_not = markers((root / "probe.bpf.c").read_text())
    assert {("probe.bpf.c", row, code) for row, code in must} <= got, got
    assert not {("probe.bpf.c", row, code) for row, code in must_not} & got
    assert got == EXPECTED
    entries = {e["program"]: e for e in inventory(root) if e["program"]}
    assert {e["loader"]["kind"] for e in entries.values()} == {"libbpf"}
    assert {ev["value"] for ev in entries["handle"]["loader"]["evidence"]} == {"C++ libbpf loader"}
    lambda_evidence = entries["in_lambda"]["upgrade"]["evidence"]
    assert [
        (e["value"], e.get("certain", True))
        for e in lambda_evidence
        if e["kind"] == "attach-offset"
    ] == [(8, False)]


@pytest.mark.parametrize("cache", [False, True])
def test_a_one_file_run_of_the_bpf_source_finds_its_cpp_loader(tmp_path: Path, cache) -> None:
    root = _copy(tmp_path)
    args = ("probe.bpf.c",) if cache else ("--no-cache", "probe.bpf.c")
    assert _got(root, *args) == EXPECTED
    if cache:  # again, from the cached facts and the tree's index
        assert _got(root, *args) == EXPECTED


def test_git_grep_finds_a_cpp_loader_by_its_skeleton_member(tmp_path: Path, monkeypatch) -> None:
    """In a large git work tree pairing asks git: the C++ loader names the skeleton only as
    `probe_bpf::open()`."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "cpp"
    shutil.copytree(PROJECT, root)
    text = (root / "loader.cpp").read_text()
    assert "probe_bpf__" not in text and "probe_bpf::open()" in text
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    import secl.api

    asked: list[list[bytes]] = []
    real = secl.api.git_grep

    def git_grep(where, needles, exclude=()):
        asked.append(list(needles))
        return real(where, needles, exclude)

    monkeypatch.setattr("secl.api.GIT_GREP_FROM", 1)
    monkeypatch.setattr("secl.api.git_grep", git_grep)
    monkeypatch.chdir(root)
    run = load(["probe.bpf.c"], Config(root=str(root), cache=False))
    assert any(b"probe_bpf::open" in needles for needles in asked)
    assert "loader.cpp" in run.project.files


def test_cpp_skeleton_attach_makes_attach_suffixes_matter(tmp_path: Path) -> None:
    """A trap for the `ok: SECL105`/`ok: SECL113` markers: with `probe_bpf::attach()` the
    suffix is parsed at attach; without set_attach_target the bare fentry fails to load."""
    root = _copy(tmp_path)
    text = (root / "loader.cpp").read_text()
    text = text.replace("  return true;\n}", "  probe_bpf::attach(skel_);\n  return true;\n}")
    text = text.replace(
        'bpf_program__set_attach_target(skel_->progs.on_entry, 0, "do_unlinkat");', ""
    )
    (root / "loader.cpp").write_text(text)
    got = _got(root, ".")
    assert ("probe.bpf.c", 17, "SECL105") in got
    assert ("probe.bpf.c", 29, "SECL113") in got


BROKEN = """#include "probe.skel.h"
int main() {
    auto *skel = probe_bpf__open_and_load();
    LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 16);
    template <<< class ;
    auto *link = bpf_program__attach_kprobe_opts(skel->progs.handle, "do_unlinkat", &opts);
    return link == nullptr;
}
"""
PROBE = (
    '#include <bpf/bpf_helpers.h>\nSEC("kprobe/do_unlinkat")\nint handle(void *ctx) { return 0; }\n'
)


@pytest.mark.parametrize("broken", [False, True])
def test_a_cpp_loader_that_does_not_parse_is_one_line_and_no_finding(tmp_path, broken) -> None:
    text = BROKEN if broken else BROKEN.replace("    template <<< class ;\n", "")
    write(tmp_path, {"probe.bpf.c": PROBE, "main.cpp": text})
    for _ in range(2):  # the second run reads the facts from the cache: the same line
        r = secl("check", "--output-format", "concise", ".", cwd=tmp_path)
        assert "Traceback" not in r.stderr
        lines = [line for line in r.stderr.splitlines() if "main.cpp" in line]
        if broken:
            assert r.returncode == 0, r.stdout
            assert lines == [
                "secl: main.cpp: C++ syntax error at line 5; loader facts near it are uncertain"
            ]
            assert "SECL201" not in r.stdout
        else:
            assert r.returncode == 1
            assert lines == []
            assert "probe.bpf.c:2:5: SECL201" in r.stdout


@pytest.mark.parametrize("name", ["main.cpp", "main.cc", "main.cxx", "loader.hpp"])
def test_cpp_suffixes_are_loaders_as_main_c_is(tmp_path: Path, name: str) -> None:
    text = BROKEN.replace("    template <<< class ;\n", "")
    write(tmp_path, {"probe.bpf.c": PROBE, name: text})
    r = secl("check", "--no-cache", "--output-format", "concise", ".", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert f"offset 0x10 ({name}:4)" in r.stdout


def test_a_cpp_file_is_never_a_bpf_source(tmp_path: Path) -> None:
    write(tmp_path, {"x.cpp": 'SEC("kprobe/nonsense+bad")\nint f(void *ctx) { return 0; }\n'})
    r = secl("sections", "--output-format", "json", "x.cpp", cwd=tmp_path)
    assert (r.returncode, r.stdout.strip()) == (0, "[]"), r.stderr


def test_a_section_macro_a_cpp_file_uses_writes_no_site_there(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "probes.h": '#define PROBE(f) SEC("kprobe/" #f) int on_##f(void *ctx)\n',
            "probe.bpf.c": '#include "probes.h"\nPROBE(do_unlinkat) { return 0; }\n',
            "user.cpp": '#include "probes.h"\nPROBE(do_nanosleep) { return 0; }\n',
        },
    )
    r = secl("sections", "--no-cache", "--output-format", "json", ".", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    programs = {(e["filename"], e["program"]) for e in json.loads(r.stdout) if e["program"]}
    assert programs == {("probe.bpf.c", "on_do_unlinkat")}
