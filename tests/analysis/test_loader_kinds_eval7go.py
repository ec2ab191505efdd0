"""cilium/ebpf loaders that type programs by hand (seventh evaluation round): a ProgramSpec is a
plain struct, and collection.go refuses a program only when its Type is still unspecified
when it is loaded, so Go code that sets `spec.Programs[...].Type` before LoadAndAssign makes a
section name cilium/ebpf does not know harmless. Each test is a small project of our own."""

from __future__ import annotations

from pathlib import Path

from tests.analysis.test_loaders import codes, loaders, write

GO_MOD = "module example.com/shaper\n\ngo 1.22\n\nrequire github.com/cilium/ebpf v0.16.0\n"
TWO_PROGRAMS = (
    "#define SEC(n) __attribute__((section(n), used))\n"
    'SEC("shaper_lpm") int lpm_lookup(void *skb) { return 0; }\n'
    'SEC("shaper_exact") int exact_lookup(void *skb) { return 0; }\n'
    'char _license[] SEC("license") = "GPL";\n'
)
LOADER = (
    "package shaper\n\n"
    'import "github.com/cilium/ebpf"\n\n'
    "//go:generate go run github.com/cilium/ebpf/cmd/bpf2go shaper ../bpf/shaper.c\n\n"
    "func open() (*shaperObjects, error) {{\n"
    "\tspec, err := loadShaper()\n"
    "\tif err != nil {{\n\t\treturn nil, err\n\t}}\n"
    "{body}"
    "\tobjs := &shaperObjects{{}}\n"
    "\treturn objs, spec.LoadAndAssign(objs, nil)\n"
    "}}\n"
)


def _project(root: Path, body: str, extra: dict[str, str] | None = None) -> Path:
    files = {
        "go.mod": GO_MOD,
        "bpf/shaper.c": TWO_PROGRAMS,
        "shaper/load.go": LOADER.format(body=body),
    }
    files.update(extra or {})
    return write(root, files)


def test_untyped_names_are_secl101_when_nothing_sets_a_type(tmp_path: Path) -> None:
    """The control: bpf2go's generated loader is LoadAndAssign over both programs, which
    fails on a program whose section cilium/ebpf cannot type."""
    _project(tmp_path, "\t_ = ebpf.SchedCLS\n")
    assert codes(tmp_path) == [("bpf/shaper.c", "SECL101", 2), ("bpf/shaper.c", "SECL101", 3)]


def test_a_loop_over_spec_programs_setting_the_type_types_every_program(tmp_path: Path) -> None:
    body = (
        "\tfor _, p := range spec.Programs {\n"
        "\t\tif p.Type == ebpf.UnspecifiedProgram {\n"
        "\t\t\tp.Type = ebpf.SchedCLS\n"
        "\t\t}\n"
        "\t}\n"
    )
    _project(tmp_path, body)
    assert codes(tmp_path) == []


def test_a_named_spec_typed_by_hand_leaves_the_other_program_untyped(tmp_path: Path) -> None:
    """`spec.Programs["lpm_lookup"].Type = ...` types that program only: the map is keyed by
    the program's symbol name, so the other one still fails LoadAndAssign."""
    _project(tmp_path, '\tspec.Programs["lpm_lookup"].Type = ebpf.SchedCLS\n')
    assert codes(tmp_path) == [("bpf/shaper.c", "SECL101", 3)]


def test_a_spec_bound_to_a_variable_then_typed_counts_for_its_program(tmp_path: Path) -> None:
    body = '\tps := spec.Programs["exact_lookup"]\n\tps.Type = ebpf.SchedCLS\n'
    _project(tmp_path, body)
    assert codes(tmp_path) == [("bpf/shaper.c", "SECL101", 2)]


def test_comparisons_comments_and_unspecified_types_set_nothing(tmp_path: Path) -> None:
    body = (
        "\tfor _, p := range spec.Programs {\n"
        "\t\tif p.Type == ebpf.UnspecifiedProgram {\n"
        "\t\t\tp.Type = ebpf.UnspecifiedProgram\n"
        "\t\t}\n"
        "\t}\n"
        '\t// spec.Programs["lpm_lookup"].Type = ebpf.SchedCLS\n'
    )
    _project(tmp_path, body)
    assert codes(tmp_path) == [("bpf/shaper.c", "SECL101", 2), ("bpf/shaper.c", "SECL101", 3)]


def test_a_type_set_only_in_a_go_test_file_does_not_count(tmp_path: Path) -> None:
    """A `_test.go` file is not built into the program that loads the object."""
    test_file = (
        'package shaper\n\nimport (\n\t"testing"\n\n\t"github.com/cilium/ebpf"\n)\n\n'
        "func TestLoad(t *testing.T) {\n\tspec, _ := loadShaper()\n"
        "\tfor _, p := range spec.Programs {\n\t\tp.Type = ebpf.SchedCLS\n\t}\n}\n"
    )
    _project(tmp_path, "\t_ = ebpf.SchedCLS\n", {"shaper/load_test.go": test_file})
    assert codes(tmp_path) == [("bpf/shaper.c", "SECL101", 2), ("bpf/shaper.c", "SECL101", 3)]


FORK_GO_MOD = (
    "module example.com/cover\n\ngo 1.22\n\nrequire github.com/someone/libbpfgo v0.8.0-fork.1\n"
)
FORK_LOADER = (
    "package probe\n\n"
    'import bpf "github.com/someone/libbpfgo"\n\n'
    "func attach(obj []byte, exe string, offsets []uint64) error {\n"
    '\tm, err := bpf.NewModuleFromBuffer(obj, "cover.bpf.o")\n'
    "\tif err != nil {\n\t\treturn err\n\t}\n"
    '\tp, err := m.GetProgram("on_call")\n'
    "\tif err != nil {\n\t\treturn err\n\t}\n"
    "\tif err := m.BPFLoadObject(); err != nil {\n\t\treturn err\n\t}\n"
    "\t_, err = p.AttachUprobeMulti(-1, exe, offsets, nil)\n"
    "\treturn err\n"
    "}\n"
)
UPROBE_NO_TARGET = (
    "#define SEC(n) __attribute__((section(n), used))\n"
    'SEC("uprobe/on_call") int on_call(void *ctx) { return 0; }\n'
    'char _license[] SEC("license") = "GPL";\n'
)


def test_a_libbpfgo_fork_imported_under_its_own_path_is_libbpfgo(tmp_path: Path) -> None:
    """A fork keeps the package name and API: its NewModuleFromBuffer / AttachUprobeMulti
    are libbpfgo's, which attaches through bpf_program__attach_uprobe_multi with explicit
    offsets, never by parsing the section's suffix, so `uprobe/on_call` (no `:function`)
    is not SECL104 as it would be for a libbpf skeleton's auto-attach."""
    write(
        tmp_path,
        {
            "go.mod": FORK_GO_MOD,
            "bpf/cover.bpf.c": UPROBE_NO_TARGET,
            "pkg/probe/probe.go": FORK_LOADER,
        },
    )
    loader = loaders(tmp_path)["on_call"]
    assert loader["kind"] == "libbpfgo"
    assert codes(tmp_path) == []


def test_a_go_package_named_otherwise_is_not_libbpfgo(tmp_path: Path) -> None:
    """The control: the same code over a package whose path does not end in `libbpfgo`
    is nobody's loader, so libbpf is assumed and the skeleton rule applies."""
    write(
        tmp_path,
        {
            "go.mod": FORK_GO_MOD.replace("libbpfgo", "bpfwrap"),
            "bpf/cover.bpf.c": UPROBE_NO_TARGET,
            "pkg/probe/probe.go": FORK_LOADER.replace("someone/libbpfgo", "someone/bpfwrap"),
        },
    )
    assert loaders(tmp_path)["on_call"]["kind"] == "libbpf-assumed"
    assert codes(tmp_path) == [("bpf/cover.bpf.c", "SECL104", 2)]
