"""Go values through wrappers, tables and files: the program and offset a libbpfgo call gets
from a parameter (each call of the wrapper its own), a range over a literal, a name declared in
another file of the package, a caller in another package of the module. Small projects of
our own."""

from __future__ import annotations

from pathlib import Path

from tests.analysis.test_loaders import codes, findings, inventory, write

BPF = (
    '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'
    'SEC("kprobe/do_sys_openat2")\nint trace_open(void *ctx) { return 0; }\n'
    'SEC("kprobe/do_unlinkat")\nint trace_unlink(void *ctx) { return 0; }\n'
    'SEC("kprobe/do_mkdirat")\nint trace_mkdir(void *ctx) { return 0; }\n'
    'SEC("kprobe/do_rmdir")\nint trace_rmdir(void *ctx) { return 0; }\n'
    'char LICENSE[] SEC("license") = "GPL";\n'
)
ROWS = {"trace_open": 3, "trace_unlink": 5, "trace_mkdir": 7, "trace_rmdir": 9}
GO_MOD = "module example.com/t\n\ngo 1.21\n\nrequire github.com/aquasecurity/libbpfgo v0.6.0\n"
HEAD = 'package main\n\nimport bpf "github.com/aquasecurity/libbpfgo"\n'
WRAPPER = (
    HEAD
    + """
type Tracer struct {
	mod *bpf.Module
}

func (t *Tracer) attach(name string, off uint64) error {
	prog, err := t.mod.GetProgram(name)
	if err != nil {
		return err
	}
	_, err = prog.AttachKprobeOffset(off)
	return err
}
"""
)


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    return write(tmp_path, {"go.mod": GO_MOD, "bpf/tracer.bpf.c": BPF, **files})


def flagged(root: Path) -> dict[str, int]:
    """Program -> row, for the SECL201 findings."""
    return {
        program: row
        for path, code, row in codes(root)
        if code == "SECL201"
        for program, r in ROWS.items()
        if r == row and path == "bpf/tracer.bpf.c"
    }


def offsets(root: Path, program: str) -> list[tuple[object, str, int]]:
    for entry in inventory(root):
        if entry["program"] == program:
            return sorted(
                (e["value"], e["filename"], e["location"]["row"])
                for e in entry["upgrade"]["evidence"]
                if e["kind"] == "attach-offset"
            )
    raise AssertionError(program)


def test_each_call_of_a_wrapper_in_another_file_gives_its_own_values(tmp_path):
    main = (
        HEAD
        + """
func main() {
	m, _ := bpf.NewModuleFromFile("bpf/tracer.bpf.o")
	t := &Tracer{mod: m}
	_ = t.attach("trace_open", 0x10)
	_ = t.attach("trace_mkdir", 0)
}
"""
    )
    root = project(tmp_path, {"tracer.go": WRAPPER, "main.go": main})
    assert flagged(root) == {"trace_open": 3}
    # The offset is shown where the caller writes it.
    assert offsets(root, "trace_open") == [(16, "main.go", 8)]
    assert offsets(root, "trace_mkdir") == []


def test_each_call_of_a_wrapper_in_its_own_file_gives_its_own_values(tmp_path):
    # Before, every caller's offset went to every caller's program: trace_mkdir got 0x10.
    main = """
func main() {
	m, _ := bpf.NewModuleFromFile("bpf/tracer.bpf.o")
	t := &Tracer{mod: m}
	_ = t.attach("trace_open", 0x10)
	_ = t.attach("trace_mkdir", 0)
}
"""
    root = project(tmp_path, {"main.go": WRAPPER + main})
    assert flagged(root) == {"trace_open": 3}


def test_a_caller_passing_an_unknown_offset_gives_a_run_time_value_at_its_call(tmp_path):
    main = (
        HEAD
        + """
func main() {
	m, _ := bpf.NewModuleFromFile("bpf/tracer.bpf.o")
	t := &Tracer{mod: m}
	_ = t.attach("trace_open", readOffset())
	_ = t.attach("trace_mkdir", 0)
}
"""
    )
    root = project(tmp_path, {"tracer.go": WRAPPER, "main.go": main})
    assert flagged(root) == {"trace_open": 3}
    assert offsets(root, "trace_open") == [("readOffset()", "main.go", 8)]
    (finding,) = findings(root)
    assert "the address `readOffset()` as offset" in finding["message"]


def test_a_caller_passing_an_unknown_program_name_gives_nothing(tmp_path):
    main = (
        HEAD
        + """
func main() {
	m, _ := bpf.NewModuleFromFile("bpf/tracer.bpf.o")
	t := &Tracer{mod: m}
	_ = t.attach(os.Args[1], 0x10)
}
"""
    )
    root = project(tmp_path, {"tracer.go": WRAPPER, "main.go": main})
    assert codes(root, "--select", "SECL0,SECL2") == []


def test_range_over_tables_declared_in_another_file(tmp_path):
    tables = """package main

var probes = []struct {
	name   string
	offset uint64
}{
	{"trace_unlink", 0x20},
	{"trace_mkdir", 0},
}

var byName = map[string]uint64{"trace_rmdir": 0x30}

var plain = []string{"trace_open"}
"""
    attach = (
        HEAD
        + """
func attachAll(m *bpf.Module) {
	for _, p := range probes {
		prog, _ := m.GetProgram(p.name)
		prog.AttachKprobeOffset(p.offset)
	}
	for n, off := range byName {
		prog, _ := m.GetProgram(n)
		prog.AttachKprobeOffset(off)
	}
	for _, n := range plain {
		prog, _ := m.GetProgram(n)
		prog.AttachKprobe("do_sys_openat2")
	}
}

func main() {
	m, _ := bpf.NewModuleFromFile("bpf/tracer.bpf.o")
	attachAll(m)
}
"""
    )
    root = project(tmp_path, {"tables.go": tables, "attach.go": attach})
    assert flagged(root) == {"trace_unlink": 5, "trace_rmdir": 9}
    assert offsets(root, "trace_unlink") == [(32, "tables.go", 7)]
    assert offsets(root, "trace_rmdir") == [(48, "tables.go", 11)]
    attaches = [
        e
        for entry in inventory(root)
        if entry["program"] == "trace_open"
        for e in entry["upgrade"]["evidence"]
        if e["kind"] == "attach"
    ]
    assert attaches and attaches[0]["filename"] == "attach.go"


LOADER = """package loader

import bpf "github.com/aquasecurity/libbpfgo"

func Load(objPath string, prog string, off uint64) error {
	m, err := bpf.NewModuleFromFile(objPath)
	if err != nil {
		return err
	}
	p, _ := m.GetProgram(prog)
	_, err = p.AttachKprobeOffset(off)
	return err
}
"""


def test_a_caller_in_another_package_gives_the_object_and_values(tmp_path):
    main = """package main

import tl "example.com/t/loader"

const objName = "tracer.bpf.o"

func main() {
	_ = tl.Load("./bpf/" + objName, "trace_open", 0x10)
	_ = tl.Load("./bpf/" + objName, "trace_mkdir", 0)
}
"""
    root = project(tmp_path, {"loader/loader.go": LOADER, "cmd/main.go": main})
    assert flagged(root) == {"trace_open": 3}
    assert offsets(root, "trace_open") == [(16, "cmd/main.go", 8)]
    (entry,) = [e for e in inventory(root) if e["program"] == "trace_open"]
    assert [e["value"] for e in entry["loader"]["evidence"]] == [
        "NewModuleFromFile ./bpf/tracer.bpf.o"
    ]
    assert not any("linked_by" in e for e in entry["upgrade"]["evidence"])


def test_a_package_of_another_module_or_an_unimported_one_is_no_caller(tmp_path):
    # cmd/ calls a `Load` of another package: nothing flows into loader.Load.
    main = """package main

import other "example.com/other/loader"

func main() {
	_ = other.Load("./bpf/tracer.bpf.o", "trace_open", 0x10)
}
"""
    root = project(tmp_path, {"loader/loader.go": LOADER, "cmd/main.go": main})
    assert codes(root, "--select", "SECL0,SECL2") == []
