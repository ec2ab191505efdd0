"""Compiled BPF objects as input: findings on an object are those on its source, reported
once (on the source when it is in view); SECL004 for objects out of date with their source;
objects judged by their own loaders; bad objects are one line each.

Every object here is compiled by clang from sources written for these tests
(tests/fixtures/objects)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from secl.analysis.run import run_rules
from secl.api import inventory, load
from secl.config import Config
from secl.findings import Finding
from tests.bpf_objects import FIXTURES, compile_bpf, write

ROOT = Path(__file__).resolve().parent.parent


def _project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / ".secl.toml").write_text("")
    return root


def _check(root: Path, paths: list[str], **config: object) -> tuple[list[Finding], list[str]]:
    cwd = os.getcwd()
    os.chdir(root)
    try:
        run = load(paths, Config(root=str(root), select=("ALL",), **config))  # type: ignore[arg-type]
        return run_rules(run.project), [str(p) for p in run.problems]
    finally:
        os.chdir(cwd)


def _secl(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "secl", *args], cwd=root, env=env, capture_output=True, text=True
    )


def _summary(findings: list[Finding]) -> list[tuple[str, str | None, str | None, str]]:
    return sorted((f.code, f.program, f.section, f.message) for f in findings)


@pytest.fixture
def source_tree(tmp_path: Path) -> Path:
    """The fixture source and its loader in a project of their own."""
    src = _project(tmp_path / "src")
    for name in ("probe.bpf.c", "loader.c"):
        shutil.copy(FIXTURES / name, src / name)
    (src / "functions").write_text("do_unlinkat\ndo_rmdir\ntcp_sendmsg.isra.0\n")
    return src


@pytest.mark.parametrize("big_endian", [False, True], ids=["bpfel", "bpfeb"])
def test_findings_on_an_object_are_those_on_its_source(
    source_tree: Path, tmp_path: Path, big_endian: bool
) -> None:
    # The object alone (its source out of view) with the same loader beside it.
    obj = _project(tmp_path / "obj")
    compile_bpf(source_tree / "probe.bpf.c", obj / "probe.bpf.o", big_endian=big_endian)
    shutil.copy(source_tree / "loader.c", obj / "loader.c")
    shutil.copy(source_tree / "functions", obj / "functions")
    lists = {"kernel_functions": "functions"}
    on_source, _ = _check(source_tree, ["."], **lists)
    on_object, problems = _check(obj, ["."], **lists)
    assert not problems
    codes = {f.code for f in on_source}
    # SECL1xx from the names, SECL2xx from the loader, SECL114 from the calls (through a
    # subprogram for SECL203), SECL116 from the kernel list.
    assert codes >= {"SECL101", "SECL102", "SECL108", "SECL110", "SECL111", "SECL114",
                     "SECL115", "SECL116", "SECL201", "SECL203"}  # fmt: skip
    assert _summary(on_object) == _summary(on_source)
    assert {f.path for f in on_object} == {"probe.bpf.o"}
    assert all(f.fix is None for f in on_object)
    assert any(f.fix is not None for f in on_source)
    sleeper = next(f for f in on_object if f.code == "SECL201")
    compiled_from = [r for r in sleeper.related if "compiled from here" in r.message]
    assert [(os.path.basename(r.path), r.span.start.row) for r in compiled_from] == [
        ("probe.bpf.c", 20)  # `return bpf_copy_from_user(...)`: the first line with code
    ]


def test_source_in_view_gets_the_findings_once(source_tree: Path) -> None:
    compile_bpf(source_tree / "probe.bpf.c", source_tree / "objs" / "probe.bpf.o")
    compile_bpf(source_tree / "probe.bpf.c", source_tree / "objs" / "probe_bpfeb.o",
                big_endian=True)  # fmt: skip
    alone, _ = _check(source_tree, ["probe.bpf.c", "loader.c"])
    everything, problems = _check(source_tree, ["."])
    assert not problems
    assert {f.path for f in everything} == {"probe.bpf.c"}
    assert _summary(everything) == _summary(alone)


def test_an_object_given_alone_reports_on_its_source_in_the_project(source_tree: Path) -> None:
    compile_bpf(source_tree / "probe.bpf.c", source_tree / "objs" / "probe.bpf.o")
    findings, problems = _check(source_tree, ["objs/probe.bpf.o"])
    assert not problems
    assert findings
    assert {f.path for f in findings} == {"probe.bpf.c"}
    # the loader of the source is read too: its evidence gives the SECL2xx findings
    assert {"SECL201", "SECL203"} <= {f.code for f in findings}


def test_a_bpfel_bpfeb_pair_is_reported_once(tmp_path: Path) -> None:
    obj = _project(tmp_path / "go")
    source = write(tmp_path / "elsewhere" / "probe.c", (FIXTURES / "probe.bpf.c").read_text())
    compile_bpf(source, obj / "probe_bpfel.o")
    compile_bpf(source, obj / "probe_bpfeb.o", big_endian=True)
    findings, problems = _check(obj, ["."])
    assert not problems
    assert findings
    assert {f.path for f in findings} == {"probe_bpfel.o"}
    assert all(any("also `probe_bpfeb.o`" in n for n in f.notes) for f in findings)


def test_a_pair_that_differs_is_reported_for_both(tmp_path: Path) -> None:
    obj = _project(tmp_path / "go")
    source = write(tmp_path / "elsewhere" / "probe.c", (FIXTURES / "probe.bpf.c").read_text())
    compile_bpf(source, obj / "probe_bpfel.o")
    compile_bpf(source, obj / "probe_bpfeb.o", "-DWITH_TC", big_endian=True)
    findings, _ = _check(obj, ["."])
    assert {f.path for f in findings} == {"probe_bpfel.o", "probe_bpfeb.o"}


OLD_SOURCE = """
#define SEC(name) __attribute__((section(name), used))
SEC("kprobe/do_rmdir")
int on_unlink(void *ctx) { return 0; }
SEC("xdp")
int gone(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
"""
NEW_SOURCE = """
#define SEC(name) __attribute__((section(name), used))
SEC("kprobe/do_unlinkat")
int on_unlink(void *ctx) { return 0; }
SEC("tp/syscalls/sys_enter_openat")
int added(void *ctx) { return 0; }
#ifdef WITH_TC
SEC("tc")
int classify(void *ctx) { return 0; }
#endif
char LICENSE[] SEC("license") = "GPL";
"""


def test_secl004_names_what_an_object_out_of_date_has_and_lacks(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj")
    write(root / "probe.bpf.c", NEW_SOURCE)
    # Built in another checkout from the old text: line info names .../probe.bpf.c.
    old = write(tmp_path / "old-checkout" / "probe.bpf.c", OLD_SOURCE)
    compile_bpf(old, root / "probe_bpfel.o")
    compile_bpf(old, root / "probe_bpfeb.o", big_endian=True)
    findings, _ = _check(root, ["."])
    stale = [f for f in findings if f.code == "SECL004"]
    assert [f.path for f in stale] == ["probe_bpfel.o"]  # the pair once
    message = stale[0].message
    assert "program `on_unlink` is in `kprobe/do_rmdir`, the source has it in " \
        "`kprobe/do_unlinkat`" in message  # fmt: skip
    assert "program `gone` (`xdp`) is in no #if branch of the source" in message
    assert "the source defines program `added`" in message
    assert stale[0].related[0].path == "probe.bpf.c"
    assert stale[0].fix is None
    # The object's own names are not reported: the source's are.
    assert {f.path for f in findings if f.code != "SECL004"} <= {"probe.bpf.c"}


def test_an_object_built_with_other_defines_is_not_out_of_date(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj")
    source = write(root / "probe.bpf.c", NEW_SOURCE)
    compile_bpf(source, root / "objs" / "probe.bpf.o", "-DWITH_TC")
    compile_bpf(source, root / "objs" / "plain.bpf.o")  # the same source, named otherwise
    findings, problems = _check(root, ["."])
    assert not problems
    assert [f for f in findings if f.code == "SECL004"] == []


def test_objects_false_reads_no_object(source_tree: Path) -> None:
    compile_bpf(source_tree / "probe.bpf.c", source_tree / "objs" / "probe.bpf.o")
    (source_tree / ".secl.toml").write_text("objects = false\n")
    walked = _secl(source_tree, "check", "--output-format", "json", "objs")
    assert json.loads(walked.stdout) == [] and walked.stderr == ""
    given = _secl(source_tree, "check", "objs/probe.bpf.o")
    assert given.returncode == 2
    assert "objs/probe.bpf.o: binary file (NUL bytes), skipped" in given.stderr


def test_user_space_objects_of_a_walk_are_skipped_silently(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj")
    write(root / "main.c", "int main(void) { return 0; }\n")
    from tests.bpf_objects import clang

    subprocess.run([clang(), "-c", "main.c", "-o", "main.o"], cwd=root, check=True)
    walked = _secl(root, "check", ".")
    assert walked.returncode == 0, walked.stderr
    assert walked.stderr == ""
    given = _secl(root, "check", "main.o")
    assert given.returncode == 2
    assert given.stderr.splitlines()[0].startswith("secl: main.o: not a BPF object (e_machine ")


def _strip_symbols(data: bytes) -> bytes:
    """The object without a symbol table (its SHT_SYMTAB header turned into SHT_NULL)."""
    order = "<" if data[5] == 1 else ">"
    shoff = struct.unpack_from(order + "Q", data, 40)[0]
    shentsize, shnum = struct.unpack_from(order + "HH", data, 58)
    out = bytearray(data)
    for i in range(shnum):
        at = shoff + i * shentsize + 4
        if struct.unpack_from(order + "I", data, at)[0] == 2:  # SHT_SYMTAB
            struct.pack_into(order + "I", out, at, 0)
    return bytes(out)


def test_bad_objects_are_one_line_each(source_tree: Path, tmp_path: Path) -> None:
    root = _project(tmp_path / "proj")
    good = compile_bpf(source_tree / "probe.bpf.c", tmp_path / "good.bpf.o")
    data = good.read_bytes()
    (root / "stripped.bpf.o").write_bytes(_strip_symbols(data))
    (root / "truncated.bpf.o").write_bytes(data[: len(data) // 3])
    (root / "text.bpf.o").write_text("not an object\n")
    result = _secl(root, "check", ".")
    lines = result.stderr.splitlines()
    assert sorted(lines) == [
        "secl: error: nothing could be linted",
        "secl: stripped.bpf.o: no symbol table (stripped?): libbpf cannot open it; skipped",
        "secl: text.bpf.o: not an ELF file; skipped",
        lines[lines.index(next(x for x in lines if "truncated" in x))],
    ]
    assert "secl: truncated.bpf.o: cannot read the ELF file (" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.returncode == 2  # nothing could be read
    # With one good file the run goes on: the bad objects stay one line each.
    shutil.copy(good, root / "good.bpf.o")
    result = _secl(root, "check", "--output-format", "concise", ".")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 3
    assert "good.bpf.o" in result.stdout


def test_objects_loaded_by_cilium_ebpf_are_judged_by_its_model(tmp_path: Path) -> None:
    root = _project(tmp_path / "go")
    source = write(tmp_path / "elsewhere" / "probe.c", (FIXTURES / "probe.bpf.c").read_text())
    compile_bpf(source, root / "probe_bpfel.o")
    write(root / "go.mod", "module example.com/probe\n\ngo 1.22\n\n"
          "require github.com/cilium/ebpf v0.16.0\n")  # fmt: skip
    write(
        root / "probe_bpfel.go",
        """
// Code generated by bpf2go; DO NOT EDIT.

package probe

import (
	"bytes"
	_ "embed"

	"github.com/cilium/ebpf"
)

func loadProbe() (*ebpf.CollectionSpec, error) {
	reader := bytes.NewReader(_ProbeBytes)
	return ebpf.LoadCollectionSpecFromReader(reader)
}

//go:embed probe_bpfel.o
var _ProbeBytes []byte
""",
    )
    cwd = os.getcwd()
    os.chdir(root)
    try:
        result = inventory(["."], Config(root=str(root), select=("ALL",)))
    finally:
        os.chdir(cwd)
    programs = [e for e in result.entries if e.site.kind == "program"]
    assert programs and all(e.loader is not None and e.loader.kind == "cilium-ebpf"
                            for e in programs)  # fmt: skip
    assert programs[0].loader.evidence[0].path == "probe_bpfel.go"  # type: ignore[union-attr]
    kprobes = [e for e in programs if (e.site.section or "").startswith("kprobe/")]
    assert kprobes and all(e.upgrade is not None and e.upgrade.reason_code == "loader-not-libbpf"
                           for e in kprobes)  # fmt: skip
    findings, _ = _check(root, ["."])
    # cilium/ebpf reads `xdp/foo` as XDP and does not care about `static`: only the two names
    # it cannot type remain.
    assert sorted((f.code, f.section) for f in findings) == [
        ("SECL101", '"??xdp"'),
        ("SECL101", '"kprobe2/do_unlinkat"'),
    ]


def test_sections_json_says_where_an_object_site_comes_from(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj")
    source = write(tmp_path / "elsewhere" / "probe.bpf.c", NEW_SOURCE)
    compile_bpf(source, root / "probe.bpf.o")
    result = _secl(root, "sections", "--output-format", "json", "probe.bpf.o")
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    first = next(e for e in entries if e["program"] == "on_unlink")
    assert first["filename"] == "probe.bpf.o"
    assert first["section"] == "kprobe/do_unlinkat"
    assert first["object"]["source"] == str(source)
    assert first["object"]["line"] == 3
    # Row N is ELF section N, as readelf numbers them.
    assert first["location"]["row"] == first["object"]["elf_section"]


def test_fixing_never_touches_an_object(source_tree: Path, tmp_path: Path) -> None:
    obj = _project(tmp_path / "obj")
    compile_bpf(source_tree / "probe.bpf.c", obj / "probe.bpf.o")
    shutil.copy(source_tree / "loader.c", obj / "loader.c")
    before = (obj / "probe.bpf.o").read_bytes()
    result = _secl(obj, "check", "--fix", "--unsafe-fixes", "--output-format", "concise", ".")
    assert result.returncode == 1, result.stderr
    assert "probe.bpf.o:" in result.stdout
    assert (obj / "probe.bpf.o").read_bytes() == before
    assert _secl(obj, "fix", "--unsafe-fixes", ".").stdout == ""


def test_selftests_objects_have_the_findings_of_their_sources(
    selftests: Path, tmp_path: Path
) -> None:
    """Every sixth selftest program that compiles without a generated vmlinux.h (libbpf's
    headers from the runtime verifier's sysroot): the object alone has the findings of its
    source alone, except SECL001, the source's sections secl cannot resolve (the object has
    them resolved)."""
    from secl.verify.toolchain import Skip, find_sysroot

    sysroot = find_sysroot()
    if isinstance(sysroot, Skip):
        pytest.skip(f"libbpf's headers are missing: {sysroot}")
    flags = [*sysroot.include_flags(), f"-I{selftests}", f"-I{selftests / 'progs'}"]
    sources = [p for p in sorted((selftests / "progs").glob("*.c"))
               if b"vmlinux.h" not in p.read_bytes()][::6]  # fmt: skip
    # and one with a finding of another rule (most of these sources have none)
    sources += [p for p in [selftests / "progs" / "kprobe_multi_empty.c"] if p.is_file()]
    compared = 0
    codes: set[str] = set()
    for source in sources:
        name = source.name.removesuffix(".c")
        src, obj = _project(tmp_path / name / "src"), _project(tmp_path / name / "obj")
        shutil.copy(source, src / source.name)
        try:
            compile_bpf(source, obj / f"{name}.o", *flags)
        except subprocess.CalledProcessError:
            continue  # needs more than these headers
        on_source, _ = _check(src, [source.name])
        on_object, problems = _check(obj, [f"{name}.o"])
        assert not problems, problems
        expected = [f for f in _summary(on_source) if f[0] != "SECL001"]
        assert _summary(on_object) == expected, name
        compared += 1
        codes.update(f.code for f in on_object)
    assert compared >= 30
    assert {"SECL102", "SECL104"} <= codes  # the sample has findings to compare
