"""cilium/ebpf loaders that type programs by hand (seventh evaluation round): a ProgramSpec is a
plain struct, and collection.go refuses a program only when its Type is still unspecified
when it is loaded, so Go code that sets `spec.Programs[...].Type` before LoadAndAssign makes a
section name cilium/ebpf does not know harmless. Each test is a small project of our own."""

from __future__ import annotations

from pathlib import Path

from tests.analysis.test_loaders import codes, write

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
