"""Which library loads a source, for the loader layouts of the fourth evaluation round (Go,
Rust and eBPF for Windows projects). Each test is a small project of our own."""

from __future__ import annotations

from pathlib import Path

from tests.analysis.test_loaders import PROBE, codes, loaders, write

GO_MOD = (
    "module example.com/demo\n\ngo 1.22\n\nrequire (\n"
    "\tgithub.com/aquasecurity/libbpfgo v0.8.0-libbpf-1.5\n"
    "\tgithub.com/cilium/ebpf v0.16.0\n)\n"
)
LIBBPFGO_MAIN = (
    'package main\n\nimport bpf "github.com/aquasecurity/libbpfgo"\n\nfunc main() {{\n'
    '\tm, _ := bpf.NewModuleFromFile("{obj}")\n\t_ = m.BPFLoadObject()\n}}\n'
)
BPF2GO_MAIN = (
    "package main\n\n//go:generate go run github.com/cilium/ebpf/cmd/bpf2go bpf {src}\n\n"
    "func main() {{\n\tobjs := bpfObjects{{}}\n\t_ = loadBpfObjects(&objs, nil)\n}}\n"
)


def test_object_opened_beside_its_source_is_as_sure_as_a_bpf2go_path(tmp_path: Path) -> None:
    """One source, two loaders: a libbpfgo program opens `probe.bpf.o` from the source's own
    directory, and a cilium/ebpf variant in a subdirectory runs bpf2go on `../probe.bpf.c`.
    libbpf opens it too, so libbpf's rules apply; a namesake elsewhere stays bpf2go's."""
    write(
        tmp_path,
        {
            "go.mod": GO_MOD,
            "ex/probe.bpf.c": PROBE.format(section="kprobe/do_unlinkat"),
            "ex/main.go": LIBBPFGO_MAIN.format(obj="probe.bpf.o"),
            "ex/cilium/main.go": BPF2GO_MAIN.format(src="../probe.bpf.c"),
            "other/probe.bpf.c": PROBE.format(section="kprobe/do_rmdir").replace("handle", "other"),
            "other/cilium/main.go": BPF2GO_MAIN.format(src="../probe.bpf.c"),
        },
    )
    found = loaders(tmp_path)
    assert found["handle"]["kind"] == "libbpfgo"
    assert {e["filename"] for e in found["handle"]["evidence"]} >= {
        "ex/main.go",
        "ex/cilium/main.go",
    }
    assert found["other"]["kind"] == "cilium-ebpf"


WINDOWS_LOADER = (
    '#include "bpf/libbpf.h"\n\nint load(void)\n{{\n'
    '\tstruct bpf_object *obj = bpf_object__open("{obj}");\n'
    "\treturn obj == NULL ? -1 : bpf_object__load(obj);\n}}\n"
)


def test_a_project_holding_ebpf_for_windows_api_is_loaded_by_it(tmp_path: Path) -> None:
    """A tree with eBPF for Windows' own API header: its libbpf-API loaders are built against
    eBPF for Windows (whose program types come from its extensions, not libbpf's table), and
    a sample no loader names (opened as a native `.sys` image) is loaded by it too."""
    write(
        tmp_path,
        {
            "include/ebpf_api.h": "#pragma once\nint ebpf_api_initiate(void);\n",
            "samples/connect.c": PROBE.format(section="cgroup/connect_authorization4"),
            "samples/bind.c": PROBE.format(section="bind").replace("handle", "bind_hook"),
            "tests/load.cpp": WINDOWS_LOADER.format(obj="connect.o"),
        },
    )
    found = loaders(tmp_path)
    assert found["handle"]["kind"] == "ebpf-for-windows"
    assert found["bind_hook"]["kind"] == "ebpf-for-windows"
    assert codes(tmp_path) == []


def test_execution_type_marks_an_ebpf_for_windows_loader(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "connect.c": PROBE.format(section="cgroup/connect_authorization4"),
            "load.cpp": WINDOWS_LOADER.format(obj="connect.o").replace(
                "\treturn obj", "\tebpf_execution_type_t how = EBPF_EXECUTION_JIT;\n\treturn obj"
            ),
        },
    )
    assert loaders(tmp_path)["handle"]["kind"] == "ebpf-for-windows"


def test_a_linux_libbpf_project_stays_libbpf(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "samples/connect.c": PROBE.format(section="cgroup/connect_authorization4"),
            "samples/bind.c": PROBE.format(section="bind").replace("handle", "bind_hook"),
            "tests/load.cpp": WINDOWS_LOADER.format(obj="connect.o"),
        },
    )
    found = loaders(tmp_path)
    assert found["handle"]["kind"] == "libbpf"
    assert found["bind_hook"]["kind"] == "libbpf-assumed"
    assert codes(tmp_path) == [("samples/connect.c", "SECL101", 1)]


AYA_LOADER = (
    "use aya::Ebpf;\n\nuse crate::config::object;\n\n"
    "pub fn load() -> Result<Ebpf, aya::EbpfError> {\n"
    "    let path = object();\n    Ebpf::load_file(&path)\n}\n"
)
# The object's path is computed in another module of the crate, as run-time configuration.
AYA_CONFIG = (
    "pub fn object() -> std::path::PathBuf {\n"
    '    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(std::env::var("OBJ").unwrap())\n'
    "}\n"
)


def test_a_virtual_workspace_bpf_dir_is_loaded_by_its_members(tmp_path: Path) -> None:
    """A workspace root with no [package] holds `bpf/prog.bpf.c`; the member crate `agent`
    loads its object with aya from a path computed at run time. The root has no code: the
    member's loader is the source's. A crate the workspace excludes says nothing."""
    files = {
        "Cargo.toml": '[workspace]\nresolver = "2"\nmembers = ["agent", "common"]\n',
        "bpf/prog.bpf.c": PROBE.format(section="xdp"),
        "agent/Cargo.toml": '[package]\nname = "agent"\n\n[dependencies]\naya = "0.13.1"\n',
        "agent/src/main.rs": AYA_LOADER,
        "agent/src/config.rs": AYA_CONFIG,
        "common/Cargo.toml": '[package]\nname = "common"\n',
        "common/src/lib.rs": "pub struct Key(u32);\n",
    }
    write(tmp_path, files)
    loader = loaders(tmp_path)["handle"]
    assert loader["kind"] == "aya"
    assert loader["version"] == "0.13.1"
    assert [e["filename"] for e in loader["evidence"]] == ["agent/src/main.rs"]


def test_an_excluded_crate_is_no_member(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "Cargo.toml": '[workspace]\nmembers = ["crates/*"]\nexclude = ["crates/agent"]\n',
            "bpf/prog.bpf.c": PROBE.format(section="xdp"),
            "crates/agent/Cargo.toml": '[package]\nname = "agent"\n\n[dependencies]\naya = "0.13"\n',
            "crates/agent/src/main.rs": AYA_LOADER,
            "crates/agent/src/config.rs": AYA_CONFIG,
        },
    )
    assert loaders(tmp_path)["handle"]["kind"] == "libbpf-assumed"


def test_a_loader_written_for_windows_is_ebpf_for_windows(tmp_path: Path) -> None:
    """libbpf builds for Linux only: a loader that includes the Windows SDK and calls
    libbpf's API calls eBPF for Windows' ebpfapi, whose program type for a section is the
    longest registered prefix it starts with (`xdp/drop` is XDP there)."""
    write(
        tmp_path,
        {
            "test/bpf/drop.c": PROBE.format(section="xdp/drop"),
            "test/lib/tests.cpp": "#include <winsock2.h>\n" + WINDOWS_LOADER.format(obj="drop.o"),
        },
    )
    assert loaders(tmp_path)["handle"]["kind"] == "ebpf-for-windows"
    assert codes(tmp_path) == []


def test_a_windows_loader_naming_no_object_stands_for_unnamed_sources(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "bpf/drop.c": PROBE.format(section="xdp/drop"),
            "tools/load.c": '#include "bpf/libbpf.h"\n\nint main(int argc, char **argv)\n{\n'
            "\tstruct bpf_object *obj = bpf_object__open(argv[1]);\n"
            "\treturn bpf_object__load(obj) == 0 ? 0 : (int)ebpf_fd_invalid;\n}\n",
        },
    )
    loader = loaders(tmp_path)["handle"]
    assert loader["kind"] == "ebpf-for-windows"
    assert [(e["filename"], e.get("certain")) for e in loader["evidence"]] == [
        ("tools/load.c", False)
    ]


def test_an_object_tc_loads_is_loaded_by_libbpf(tmp_path: Path) -> None:
    """The Go module only reads pinned maps; `tc ... bpf da obj` in a recipe loads the object,
    and iproute2 built with libbpf loads every object through it. The go.mod's cilium/ebpf
    requirement is no evidence against that command."""
    write(
        tmp_path,
        {
            "go.mod": "module example.com/relay\n\ngo 1.22\n\nrequire github.com/cilium/ebpf v0.16.0\n",
            "agent/maps.go": 'package agent\n\nimport "github.com/cilium/ebpf"\n\n'
            "func Open() (*ebpf.Map, error) {\n"
            '\treturn ebpf.LoadPinnedMap("/sys/fs/bpf/tc/globals/events", nil)\n}\n',
            "bpf/tc_prog.c": PROBE.format(section="tc_ingress"),
            "bpf/Makefile": "load: tc_prog.o\n"
            "\ttc filter add dev eth0 ingress bpf da obj tc_prog.o sec tc_ingress\n",
        },
    )
    loader = loaders(tmp_path)["handle"]
    assert loader["kind"] == "libbpf"
    assert loader["evidence"][0]["filename"] == "bpf/Makefile"
    assert codes(tmp_path) == []


def test_a_loader_that_builds_for_windows_too_stays_libbpf(tmp_path: Path) -> None:
    """The Windows SDK under `#ifdef _WIN32`: the loader builds for Linux as well, where the
    library is libbpf, whose table rejects `xdp/drop`."""
    write(
        tmp_path,
        {
            "bpf/drop.c": PROBE.format(section="xdp/drop"),
            "runner/run.cpp": "#ifdef _WIN32\n#include <windows.h>\n#endif\n"
            + WINDOWS_LOADER.format(obj="drop.o"),
        },
    )
    assert loaders(tmp_path)["handle"]["kind"] == "libbpf"
    assert [c for _, c, _ in codes(tmp_path)] == ["SECL102"]
