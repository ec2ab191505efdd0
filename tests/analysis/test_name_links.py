"""Loaders whose object secl cannot resolve are linked to programs by name: to the one
libbpf-family source that defines a program of that name (several: SECL002), and never when
the loader's objects are all known. Small projects of our own."""

from __future__ import annotations

from pathlib import Path

from tests.analysis.test_loaders import codes, findings, inventory, secl, write

TRACER = (
    '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'
    'SEC("kprobe/do_sys_openat2")\nint trace_open(void *ctx) { return 0; }\n'
    'char LICENSE[] SEC("license") = "GPL";\n'
)
OTHER = (
    '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'
    'SEC("kprobe/do_unlinkat")\nint trace_unlink(void *ctx) { return 0; }\n'
)
GO_MOD = "module example.com/t\n\ngo 1.21\n\nrequire github.com/aquasecurity/libbpfgo v0.6.0\n"
GO_LOADER = """package loader

import bpf "github.com/aquasecurity/libbpfgo"

func Load(objPath string) error {
	m, err := bpf.NewModuleFromFile(objPath)
	if err != nil {
		return err
	}
	prog, _ := m.GetProgram("trace_open")
	_, err = prog.AttachKprobeOffset(0x10)
	return err
}
"""
# The object's path is known only when the program runs.
GO_MAIN = """package main

import (
	"os"

	"example.com/t/loader"
)

func main() {
	_ = loader.Load(os.Args[1])
}
"""
C_LOADER = """#include <stdlib.h>
#include <bpf/libbpf.h>

int main(int argc, char **argv)
{
	unsigned long off = strtoul(argv[2], NULL, 0);
	struct bpf_object *obj;
	struct bpf_program *p;
	LIBBPF_OPTS(bpf_kprobe_opts, o, .offset = off);

	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj))
		return 1;
	p = bpf_object__find_program_by_name(obj, "trace_open");
	return !bpf_program__attach_kprobe_opts(p, "do_sys_openat2", &o);
}
"""


def _go(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    files = {
        "go.mod": GO_MOD,
        "bpf/tracer.bpf.c": TRACER,
        "loader/loader.go": GO_LOADER,
        "cmd/main.go": GO_MAIN,
    }
    files.update(extra or {})
    return write(tmp_path, files)


def _evidence(root: Path, program: str) -> list[dict]:
    for entry in inventory(root):
        if entry["program"] == program:
            return entry["upgrade"]["evidence"]
    raise AssertionError(program)


def test_go_object_from_a_parameter_links_by_program_name(tmp_path):
    root = _go(tmp_path)
    assert codes(root) == [("bpf/tracer.bpf.c", "SECL201", 3)]
    evidence = _evidence(root, "trace_open")
    offsets = [e for e in evidence if e["kind"] == "attach-offset"]
    assert offsets and all(e["linked_by"] == "program-name" for e in offsets)
    assert {e["filename"] for e in offsets} == {"loader/loader.go"}


def test_go_name_in_two_sources_is_secl002_not_secl201(tmp_path):
    root = _go(tmp_path, {"bpf/copy.bpf.c": TRACER})
    assert codes(root) == []
    found = codes(root, "--select", "SECL0,SECL2")
    assert ("bpf/tracer.bpf.c", "SECL002", 3) in found
    assert ("bpf/copy.bpf.c", "SECL002", 3) in found
    assert not [c for c in found if c[1].startswith("SECL2")]


def test_go_loader_with_a_known_object_is_not_linked_by_name(tmp_path):
    # The module is `other.bpf.o`: a `trace_open` it does not hold is no program of the
    # project's, even though tracer.bpf.c has one of that name.
    literal = GO_LOADER.replace("NewModuleFromFile(objPath)", 'NewModuleFromFile("other.bpf.o")')
    root = _go(tmp_path, {"loader/loader.go": literal, "bpf/other.bpf.c": OTHER})
    assert codes(root, "--select", "SECL0,SECL2") == []
    assert _evidence(root, "trace_open") == []


def test_go_module_handed_in_by_a_package_with_known_objects_is_not_linked_by_name(tmp_path):
    # `attach` gets its module from its caller; every object the package opens is known
    # (other.bpf.o), so the name `trace_open` is not looked up in the project.
    wrapper = """package main

import bpf "github.com/aquasecurity/libbpfgo"

func attach(m *bpf.Module) {
	prog, _ := m.GetProgram("trace_open")
	prog.AttachKprobeOffset(0x10)
}
"""
    opener = """package main

import bpf "github.com/aquasecurity/libbpfgo"

func main() {
	m, _ := bpf.NewModuleFromFile("bpf/other.bpf.o")
	_ = m
}
"""
    root = write(
        tmp_path,
        {
            "go.mod": GO_MOD,
            "bpf/tracer.bpf.c": TRACER,
            "bpf/other.bpf.c": OTHER,
            "attach.go": wrapper,
            "main.go": opener,
        },
    )
    assert codes(root, "--select", "SECL0,SECL2") == []
    # The same wrapper with the package's open unresolved is linked by name.
    (root / "main.go").write_text(opener.replace('"bpf/other.bpf.o"', "os.Args[1]"))
    assert codes(root) == [("bpf/tracer.bpf.c", "SECL201", 3)]


def test_c_object_from_argv_links_by_program_name(tmp_path):
    root = write(tmp_path, {"bpf/tracer.bpf.c": TRACER, "loader.c": C_LOADER})
    assert codes(root) == [("bpf/tracer.bpf.c", "SECL201", 3)]
    (finding,) = findings(root)
    assert "`off`" in finding["message"]
    offsets = [e for e in _evidence(root, "trace_open") if e["kind"] == "attach-offset"]
    assert [e["linked_by"] for e in offsets] == ["program-name"]
    full = secl("check", "--no-cache", ".", cwd=root).stdout
    assert "tied to this program by the name `trace_open`" in full


def test_c_object_from_argv_with_the_name_in_two_sources_is_secl002(tmp_path):
    root = write(
        tmp_path,
        {"bpf/tracer.bpf.c": TRACER, "bpf/copy.bpf.c": TRACER, "loader.c": C_LOADER},
    )
    assert codes(root) == []
    found = codes(root, "--select", "SECL0,SECL2")
    assert [c[1] for c in found] == ["SECL002", "SECL002"]


def test_a_source_of_another_library_does_not_make_the_name_ambiguous(tmp_path):
    # copy.bpf.c is built by bpf2go: cilium/ebpf loads it, a libbpf loader cannot mean it.
    bpf2go = (
        "package probes\n\n//go:generate go run github.com/cilium/ebpf/cmd/bpf2go copy copy.bpf.c\n"
    )
    root = write(
        tmp_path,
        {
            "bpf/tracer.bpf.c": TRACER,
            "loader.c": C_LOADER,
            "probes/copy.bpf.c": TRACER,
            "probes/gen.go": bpf2go,
        },
    )
    assert codes(root, "--select", "SECL0,SECL2") == [("bpf/tracer.bpf.c", "SECL201", 3)]


def test_a_c_loader_with_an_unknown_offset_variable_and_no_program_name_gives_nothing(tmp_path):
    # Without a program name there is nothing to link by.
    loader = C_LOADER.replace(
        'bpf_object__find_program_by_name(obj, "trace_open")', "bpf_object__next_program(obj, NULL)"
    )
    root = write(tmp_path, {"bpf/tracer.bpf.c": TRACER, "loader.c": loader})
    assert codes(root, "--select", "SECL0,SECL2") == []
