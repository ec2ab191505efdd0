"""Parsing in worker processes (`--jobs`): the output is byte for byte that of one process,
an internal error in a worker is reported as in one process, and the files of a worker that
dies are read by the main process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import secl.api
import secl.parallel
import secl.parse.filefacts
import secl.parse.macros
from secl.cli import main
from tests.analysis.test_upgrade import TWO_OBJECTS
from tests.catalogue_harness import write_files

pytestmark = pytest.mark.skipif(not secl.parallel.can_fork(), reason="needs fork")


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """More files than secl.api.PARALLEL_FROM: sections, probes, loaders, macros."""
    files = dict(TWO_OBJECTS)
    for i in range(120):
        files[f"progs/p{i}.bpf.c"] = (
            '#include <bpf/bpf_helpers.h>\n#define PFX "kprobe/"\n'
            f'SEC(PFX "f{i}")\nint k{i}(void *ctx) {{ return 0; }}\n'
            f'SEC("{"xdp" if i % 3 else "xdp/bogus"}")\nint x{i}(void *ctx) {{ return 0; }}\n'
        )
        files[f"user/u{i}.c"] = (
            f'#include "p{i}.skel.h"\nint main(void) {{\n'
            f"    struct p{i} *s = p{i}__open_and_load();\n"
            f"    LIBBPF_OPTS(bpf_kprobe_opts, o, .offset = {i % 2});\n"
            f'    bpf_program__attach_kprobe_opts(s->progs.k{i}, "f{i}", &o);\n'
            "    return 0;\n}\n"
        )
    write_files(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--no-cache"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", ["check", "sections"])
def test_workers_give_the_output_of_one_process(tree: Path, capsys, command: str) -> None:
    one = _run(capsys, command, "--output-format", "json", "--jobs", "1", ".")
    assert one[1].count('"SECL201"' if command == "check" else '"kprobe/f') >= 60
    assert _run(capsys, command, "--output-format", "json", "--jobs", "2", ".") == one
    assert _run(capsys, command, "--output-format", "json", "--jobs", "3", ".") == one


def test_the_workers_are_used(tree: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    used = []
    real = secl.parallel.facts_in_workers
    monkeypatch.setattr(secl.parallel, "facts_in_workers", lambda *a: used.append(a[2]) or real(*a))
    _run(capsys, "check", "--jobs", "2", ".")
    assert used == [2]
    (tree / "pyproject.toml").write_text("[tool.secl]\njobs = 1\n")
    _run(capsys, "check", ".")
    assert used == [2]


def test_an_internal_error_in_a_worker_is_one_line(
    tree: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = secl.parse.filefacts.file_facts

    def failing(path: str, data: bytes, tree=None, **known: bool | None):
        if path.endswith("p7.bpf.c"):
            raise ValueError("boom")
        return real(path, data, tree, **known)

    monkeypatch.setattr(secl.parse.filefacts, "file_facts", failing)
    one = _run(capsys, "check", "--output-format", "concise", "--jobs", "1", ".")
    two = _run(capsys, "check", "--output-format", "concise", "--jobs", "2", ".")
    assert one == two
    assert one[0] == 2 and "p7.bpf.c: internal error in secl" in one[2]
    assert "(ValueError: boom); file skipped" in one[2]


def test_the_files_of_a_worker_that_dies_are_read_anyway(
    tree: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = _run(capsys, "check", "--output-format", "json", "--jobs", "1", ".")
    parent = os.getpid()
    real = secl.parse.filefacts.file_facts

    def dying(path: str, data: bytes, tree=None, **known: bool | None):
        if os.getpid() != parent:
            os._exit(9)  # the worker is killed
        return real(path, data, tree, **known)

    monkeypatch.setattr(secl.parse.filefacts, "file_facts", dying)
    assert _run(capsys, "check", "--output-format", "json", "--jobs", "2", ".") == one


def test_sites_are_resolved_where_the_trees_are(
    tree: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files resolve_sites resolves (macro-built sections) are resolved in the process
    that parsed them: the main process's resolve_sites has nothing left to do, and says the
    same."""
    one = _run(capsys, "check", "--output-format", "json", "--jobs", "1", ".")
    real_resolve, real_file = secl.parse.macros.resolve_sites, secl.parse.macros._resolve_file
    inside: list[bool] = []
    late: list[str] = []

    def resolve_sites(*args, **kwargs):
        inside.append(True)
        try:
            return real_resolve(*args, **kwargs)
        finally:
            inside.pop()

    def resolve_file(path: str, *args, **kwargs):
        if inside:
            late.append(path)
        return real_file(path, *args, **kwargs)

    monkeypatch.setattr(secl.api, "resolve_sites", resolve_sites)
    monkeypatch.setattr(secl.parse.macros, "_resolve_file", resolve_file)
    assert _run(capsys, "check", "--output-format", "json", "--jobs", "2", ".") == one
    assert late == []
    _run(capsys, "check", "--output-format", "json", "--jobs", "1", ".")
    assert len(late) >= 120  # one process: every file with a macro-built section, here


def test_an_internal_error_resolving_a_file_is_reported_as_in_one_process(
    tree: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = secl.parse.macros._resolve_file

    def failing(path: str, *args, **kwargs):
        if path.endswith("p9.bpf.c"):
            raise ValueError("boom")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(secl.parse.macros, "_resolve_file", failing)
    one = _run(capsys, "check", "--output-format", "concise", "--jobs", "1", ".")
    two = _run(capsys, "check", "--output-format", "concise", "--jobs", "2", ".")
    assert one == two
    assert one[0] == 2 and "p9.bpf.c: internal error in secl" in one[2]


def test_jobs_must_be_a_positive_number(tree: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["check", "--jobs", "0", "."])
    (tree / "pyproject.toml").write_text("[tool.secl]\njobs = 0\n")
    assert main(["check", "."]) == 2
    assert "`jobs` must be a whole number of processes" in capsys.readouterr().err


@pytest.mark.selftests
def test_the_selftests_in_two_processes_are_the_same(selftests: Path, capsys) -> None:
    args = ["check", "--output-format", "json", str(selftests)]
    assert _run(capsys, *args, "--jobs", "2") == _run(capsys, *args, "--jobs", "1")
