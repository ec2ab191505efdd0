"""Which library loads each BPF source: discovery, linking, configuration, and what the rules
make of it. Loader code of every language is written here as small projects of our own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "loaders"

PROBE = 'SEC("{section}")\nint handle(void *ctx)\n{{\n\treturn 0;\n}}\n'


def secl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "secl", *args],
        cwd=cwd, capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip


def write(root: Path, files: dict[str, str]) -> Path:
    (root / ".git").mkdir(exist_ok=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def inventory(root: Path, *args: str) -> list[dict]:
    r = secl("sections", "--output-format", "json", *args, ".", cwd=root)
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)


def loaders(root: Path, *args: str) -> dict[str, dict]:
    return {e["program"]: e["loader"] for e in inventory(root, *args) if e["kind"] == "program"}


def findings(root: Path, *args: str) -> list[dict]:
    r = secl("check", "--output-format", "json", *args, ".", cwd=root)
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)


def codes(root: Path, *args: str) -> list[tuple[str, str, int]]:
    return sorted(
        (os.path.normpath(f["filename"]), f["code"], f["location"]["row"])
        for f in findings(root, *args)
    )


def test_no_loader_found_is_libbpf_assumed(tmp_path):
    write(tmp_path, {"probe.bpf.c": PROBE.format(section="kprobe/do_unlinkat")})
    loader = loaders(tmp_path)["handle"]
    assert loader == {"kind": "libbpf-assumed", "version": None, "evidence": []}


def test_c_libbpf_loader_is_found_by_skeleton(tmp_path):
    write(
        tmp_path,
        {
            "probe.bpf.c": PROBE.format(section="kprobe/do_unlinkat"),
            "probe.c": '#include "probe.skel.h"\nint main(void)\n{\n'
            "\tstruct probe *skel = probe__open_and_load();\n\treturn !skel;\n}\n",
        },
    )
    loader = loaders(tmp_path)["handle"]
    assert loader["kind"] == "libbpf"
    assert [(e["filename"], e["location"]["row"]) for e in loader["evidence"]] == [
        ("probe.c", 4)  # the open call
    ]


UNKNOWN = {"bpf/probe.c": PROBE.format(section="kprobes/do_unlinkat")}


def test_unknown_name_is_secl101_when_libbpf_is_assumed(tmp_path):
    write(tmp_path, UNKNOWN)
    assert codes(tmp_path) == [("bpf/probe.c", "SECL101", 1)]


def test_configured_loader_table_takes_the_source_off_libbpf(tmp_path):
    write(tmp_path, UNKNOWN)
    (tmp_path / ".secl.toml").write_text('[loaders]\n"bpf/*.c" = "bcc"\n')
    assert codes(tmp_path) == []  # SECL005 is a note, off by default
    assert codes(tmp_path, "--select", "ALL") == [("bpf/probe.c", "SECL005", 1)]
    loader = loaders(tmp_path)["handle"]
    assert loader["kind"] == "bcc"
    note = findings(tmp_path, "--select", "SECL005")[0]["message"]
    assert note.startswith("configured by BCC") and "does not model" in note


def test_configured_loader_glob_that_does_not_match_changes_nothing(tmp_path):
    write(tmp_path, UNKNOWN)
    (tmp_path / ".secl.toml").write_text('[loaders]\n"src/*.c" = "bcc"\n')
    assert codes(tmp_path) == [("bpf/probe.c", "SECL101", 1)]


def test_loader_option_overrides_everything(tmp_path):
    write(tmp_path, UNKNOWN)
    (tmp_path / ".secl.toml").write_text('[loaders]\n"bpf/*.c" = "libbpf"\n')
    assert codes(tmp_path) == [("bpf/probe.c", "SECL101", 1)]
    assert codes(tmp_path, "--loader", "gobpf", "--select", "ALL") == [
        ("bpf/probe.c", "SECL005", 1)
    ]


@pytest.mark.parametrize(
    ("config", "args", "message"),
    [
        ('[loaders]\n"*.c" = "libbpf-assumed"\n', (), "`loaders.*.c` must be one of"),
        ('[loaders]\n"*.c" = 3\n', (), "`loaders.*.c` must be one of"),
        ("loaders = 3\n", (), "`loaders` must be a dict"),
        ("", ("--loader", "nope"), "--loader must be one of"),
    ],
)
def test_bad_loader_configuration_is_a_usage_error(tmp_path, config, args, message):
    write(tmp_path, UNKNOWN)
    (tmp_path / ".secl.toml").write_text(config)
    r = secl("check", *args, ".", cwd=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_makefile_bpf2go_rule_makes_cilium_the_loader(tmp_path):
    write(
        tmp_path,
        {
            "bpf/probe.c": PROBE.format(section="socket1"),
            "Makefile": "generate:\n\tgo run github.com/cilium/ebpf/cmd/bpf2go -cc clang "
            "-cflags '-O2 -g' Probe bpf/probe.c -- -I./headers\n",
        },
    )
    loader = loaders(tmp_path)["handle"]
    assert loader["kind"] == "cilium-ebpf"
    assert loader["evidence"][0]["filename"] == "Makefile"
    assert codes(tmp_path) == []  # cilium/ebpf prefix-matches `socket`


def test_a_source_reached_by_several_loaders_takes_the_libbpf_one(tmp_path):
    write(
        tmp_path,
        {
            "probe.bpf.c": PROBE.format(section="socket1"),
            "loader.c": "int main(void)\n{\n\tstruct probe_bpf *skel = probe_bpf__open();\n"
            "\treturn !skel;\n}\n",
            "Makefile": "gen:\n\tbpf2go probe probe.bpf.c\n",
        },
    )
    loader = loaders(tmp_path)["handle"]
    assert loader["kind"] == "libbpf"
    assert sorted(e["kind"] for e in loader["evidence"]) == ["cilium-ebpf", "libbpf"]
    assert codes(tmp_path) == [("probe.bpf.c", "SECL102", 1)]  # libbpf rejects `socket1`


def test_vendored_loaders_are_not_read(tmp_path):
    write(
        tmp_path,
        {
            "probe.bpf.c": PROBE.format(section="kprobes/x"),
            "vendor/github.com/x/Makefile": "gen:\n\tbpf2go probe ../../../probe.bpf.c\n",
            "third_party/y/Makefile": "gen:\n\tbpf2go probe ../../probe.bpf.c\n",
        },
    )
    assert loaders(tmp_path)["handle"]["kind"] == "libbpf-assumed"


def test_a_loader_that_names_a_source_elsewhere_does_not_link_to_a_namesake(tmp_path):
    write(
        tmp_path,
        {
            "a/probe.bpf.c": PROBE.format(section="socket1"),
            "b/probe.bpf.c": PROBE.format(section="socket1"),
            "b/Makefile": "gen:\n\tbpf2go probe probe.bpf.c\n",
        },
    )
    by_file = {
        e["filename"]: e["loader"]["kind"] for e in inventory(tmp_path) if e["kind"] == "program"
    }
    assert by_file == {"a/probe.bpf.c": "libbpf-assumed", "b/probe.bpf.c": "cilium-ebpf"}


# -- the fixture projects, one per loader family ---------------------------------------------

FAMILIES = {
    # fixture directory -> the loader kind of every BPF source in it
    "aya": "aya",
    "bcc": "bcc",
    "cilium": "cilium-ebpf",
    "ebpf-manager": "cilium-ebpf",
    "gobpf": "gobpf",
    "libbpf-rs": "libbpf-rs",
    "libbpfgo": "libbpfgo",
}


def _copy(name: str, tmp_path: Path) -> Path:
    import shutil

    source = FIXTURES / name
    if not source.is_dir():
        pytest.fail(f"fixture project {source} is missing")
    root = tmp_path / name
    shutil.copytree(source, root)
    (root / ".git").mkdir()
    return root


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_fixture_project_loader_and_markers(name, tmp_path):
    """Every `// ruleid: CODE` marker of the project's BPF C is reported, nothing marked
    `// ok: CODE` is, and every program is judged as loaded by the family's library."""
    from tests.catalogue_harness import markers

    root = _copy(name, tmp_path)
    kinds = {e["filename"]: e["loader"]["kind"] for e in inventory(root) if e["loader"]}
    assert kinds and set(kinds.values()) == {FAMILIES[name]}, kinds
    got = {(os.path.normpath(f["filename"]), f["location"]["row"], f["code"])
           for f in findings(root, "--select", "ALL")}  # fmt: skip
    for path in sorted(root.rglob("*.c")):
        rel = str(path.relative_to(root))
        must, must_not = markers(path.read_text())
        for row, code in sorted(must):
            assert (rel, row, code) in got, f"{rel}:{row}: expected {code}; got {sorted(got)}"
        for row, code in sorted(must_not):
            assert (rel, row, code) not in got, f"{rel}:{row}: {code} reported where marked ok"
    if FAMILIES[name] not in ("libbpf-rs", "libbpfgo"):
        assert not [g for g in got if g[2].startswith("SECL2")]  # no auto-upgrade there


def test_a_go_or_rust_file_that_does_not_parse_is_one_line_and_the_run_goes_on(tmp_path):
    write(
        tmp_path,
        {
            "bpf/probe.c": PROBE.format(section="kprobes/do_unlinkat"),
            "main.go": 'package main\n\nimport "github.com/cilium/ebpf"\n\n'
            'func main() {\n\tspec, _ := ebpf.LoadCollectionSpec("probe.o"\n\t{{{\n}\n',
            "src/main.rs": "use libbpf_rs::ObjectBuilder;\nfn main() { let o = "
            'ObjectBuilder::default().open_file("probe.o") {{{ }\n',
        },
    )
    r = secl("check", "--output-format", "concise", ".", cwd=tmp_path)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line]
    assert len([line for line in lines if "main.go" in line]) == 1, r.stderr
    assert len([line for line in lines if "main.rs" in line]) == 1, r.stderr
    assert "bpf/probe.c:1:5: SECL1" in r.stdout  # the C is still linted


GO_LIBBPFGO = """package main

import bpf "github.com/aquasecurity/libbpfgo"

func main() {{
	m, _ := bpf.NewModuleFromFile("probe.bpf.o")
	m.BPFLoadObject()
	p, _ := m.GetProgram("handle")
	{call}
}}
"""


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("p.AttachKprobeOffset(0xffffffff81000000)", ["SECL201"]),
        ('p.AttachKprobe("do_unlinkat")', []),
        # setting the attach type the upgrade sets anyway changes nothing (a trap)
        ("p.SetExpectedAttachType(bpf.BPFAttachTypeTraceKprobeMulti)", []),
        ("p.SetExpectedAttachType(bpf.BPFAttachTypeTraceUprobeMulti)", ["SECL207"]),
    ],
)
def test_libbpfgo_evidence_in_one_module_of_many(tmp_path, call, expected):
    """Every Go module of the project opens a `probe.bpf.o`: the evidence of one module's
    loader is about its own source only."""
    for module in ("a", "b"):
        write(
            tmp_path,
            {
                f"{module}/go.mod": "module x\n\nrequire github.com/aquasecurity/libbpfgo v0.8.0\n",
                f"{module}/probe.bpf.c": PROBE.format(section="kprobe/do_unlinkat"),
                f"{module}/main.go": GO_LIBBPFGO.format(
                    call=call if module == "a" else 'p.AttachKprobe("x")'
                ),
            },
        )
    got = [(f["filename"], f["code"]) for f in findings(tmp_path)]
    assert got == [("a/probe.bpf.c", code) for code in expected]


def test_vendored_bpf_sources_are_not_linted_by_default(tmp_path):
    write(
        tmp_path,
        {
            "bpf/probe.bpf.c": PROBE.format(section="kprobe/do_unlinkat"),
            "vendor/github.com/x/y/testdata/bad.c": PROBE.format(section="kprobes/x"),
            "third_party/z/bad.c": PROBE.format(section="kprobes/x"),
        },
    )
    assert codes(tmp_path) == []
    (tmp_path / ".secl.toml").write_text('exclude = ["build"]\n')  # replaces the defaults
    assert [c[:2] for c in codes(tmp_path)] == [
        ("third_party/z/bad.c", "SECL101"),
        ("vendor/github.com/x/y/testdata/bad.c", "SECL101"),
    ]


# -- crates and Go modules with no loader of their own ----------------------------------------

# A kprobe that reads a register kprobe_multi does not fill (SECL209 when libbpf loads it), and
# a suffix libbpf refuses on `classifier` (SECL102; aya reads only the text before the `/`).
REGS = """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("kprobe/schedule")
int dump(struct pt_regs *regs)
{
	unsigned long bx = regs->bx;
	return bx != 0;
}

SEC("classifier/egress")
int egress(void *skb)
{
	return 0;
}
"""
AYA_CRATE = {
    "Cargo.toml": '[package]\nname = "{name}"\n\n[dependencies]\naya = "0.13"\n',
    "src/lib.rs": "use aya::Ebpf;\n\npub fn load(path: &str) -> anyhow::Result<Ebpf> {\n"
    "    Ok(Ebpf::load_file(path)?)\n}\n",
}
LIBBPF_RS_CRATE = {
    "Cargo.toml": '[package]\nname = "{name}"\n\n[dependencies]\nlibbpf-rs = "0.26"\n',
    "src/lib.rs": "use libbpf_rs::ObjectBuilder;\n\npub fn load(path: &str) {\n"
    "    let object = ObjectBuilder::default().open_file(path).unwrap().load().unwrap();\n"
    "    for program in object.progs_mut() {\n        program.attach().unwrap();\n    }\n}\n",
}


def crate(directory: str, name: str, files: dict[str, str]) -> dict[str, str]:
    return {f"{directory}/{k}": v.replace("{name}", name) for k, v in files.items()}


def member_without_loaders(dependencies: str) -> dict[str, str]:
    """A workspace member with BPF sources and no loader code: the integration tests of the
    crates it depends on."""
    return {
        "tests/it/Cargo.toml": f'[package]\nname = "it"\n\n[dependencies]\n{dependencies}',
        "tests/it/src/main.rs": 'fn main() { println!("see the loader crates"); }\n',
        "tests/it/bpf/regs.bpf.c": REGS,
    }


def test_a_crate_without_loaders_takes_the_loader_of_its_workspace_dependency(tmp_path):
    """bpfman's integration tests: `loader = { workspace = true }` is the workspace root's
    `[workspace.dependencies]` path entry, a crate that loads with aya."""
    write(
        tmp_path,
        {
            "Cargo.toml": '[workspace]\nmembers = ["loader", "tests/it"]\n\n'
            '[workspace.dependencies]\nloader = { path = "./loader" }\n',
            **crate("loader", "loader", AYA_CRATE),
            **member_without_loaders("loader.workspace = true\n"),
        },
    )
    found = loaders(tmp_path)
    assert {p: v["kind"] for p, v in found.items()} == {"dump": "aya", "egress": "aya"}
    (evidence,) = found["dump"]["evidence"]
    assert evidence["filename"] == "loader/src/lib.rs" and evidence["certain"] is False
    assert found["dump"]["version"] == "0.13"
    assert codes(tmp_path) == []


def test_path_dependencies_count_transitively(tmp_path):
    write(
        tmp_path,
        {
            **crate("core", "core", LIBBPF_RS_CRATE),
            "api/Cargo.toml": '[package]\nname = "api"\n\n[dependencies]\n'
            'core = { path = "../core" }\n',
            "api/src/lib.rs": "pub use core::load;\n",
            **member_without_loaders('api = { path = "../../api", version = "0.1" }\n'),
        },
    )
    assert {v["kind"] for v in loaders(tmp_path).values()} == {"libbpf-rs"}
    # still loaded by libbpf: its rules and the auto-upgrade analysis apply
    assert [c[1] for c in codes(tmp_path)] == ["SECL102", "SECL209"]


def test_path_dependencies_of_several_libraries_give_no_default(tmp_path):
    write(
        tmp_path,
        {
            **crate("a", "a", AYA_CRATE),
            **crate("b", "b", LIBBPF_RS_CRATE),
            **member_without_loaders('a = { path = "../../a" }\nb = { path = "../../b" }\n'),
        },
    )
    assert {v["kind"] for v in loaders(tmp_path).values()} == {"libbpf-assumed"}
    assert [c[1] for c in codes(tmp_path)] == ["SECL102", "SECL209"]


def test_a_crate_with_loaders_of_its_own_keeps_them(tmp_path):
    """The path dependency's aya does not count where the crate's own code decides."""
    write(
        tmp_path,
        {
            **crate("a", "a", AYA_CRATE),
            **crate("tests/it", "it", LIBBPF_RS_CRATE),
            "tests/it/Cargo.toml": '[package]\nname = "it"\n\n[dependencies]\n'
            'libbpf-rs = "0.26"\na = { path = "../../a" }\n',
            "tests/it/bpf/regs.bpf.c": REGS,
        },
    )
    assert {v["kind"] for v in loaders(tmp_path).values()} == {"libbpf-rs"}


@pytest.mark.parametrize(
    ("dependencies", "kind", "value"),
    [
        ('aya = "0.13"\n', "aya", "Cargo.toml depends on aya"),
        ('bpf = { package = "libbpf-rs", version = "0.26" }\n', "libbpf-rs",
         "Cargo.toml depends on bpf"),
        # a path dependency outside the project is no crate of it: the manifest decides
        ('aya = "0.13"\nx = { path = "../../../elsewhere" }\n', "aya", "Cargo.toml depends on aya"),
        ('aya = "0.13"\nlibbpf-rs = "0.26"\n', "libbpf-assumed", None),
        ('serde = "1"\n', "libbpf-assumed", None),
    ],
)  # fmt: skip
def test_a_crate_manifest_dependency_on_a_loader_library(tmp_path, dependencies, kind, value):
    write(tmp_path, member_without_loaders(dependencies))
    found = loaders(tmp_path)["dump"]
    assert found["kind"] == kind
    # the check agrees: libbpf's rules only where libbpf loads
    expected = [] if kind == "aya" else ["SECL102", "SECL209"]
    assert [c[1] for c in codes(tmp_path)] == expected
    if value is None:
        assert found["evidence"] == []
        return
    (evidence,) = found["evidence"]
    assert evidence["value"] == value and evidence["certain"] is False
    assert evidence["filename"] == "tests/it/Cargo.toml"
    assert evidence["location"]["row"] == 5  # the dependency's line


@pytest.mark.parametrize(
    ("requires", "kind"),
    [
        ("require github.com/cilium/ebpf v0.16.0\n", "cilium-ebpf"),
        ("require (\n\tgithub.com/gojue/ebpfmanager v0.5.0\n\tgolang.org/x/sys v0.20.0\n)\n",
         "cilium-ebpf"),
        ("require github.com/cilium/ebpf v0.16.0 // indirect\n", "libbpf-assumed"),
        ("require github.com/iovisor/gobpf v0.2.0\n", "gobpf"),
        ("require github.com/dropbox/goebpf v0.0.0-20210223223402-d54e462ac389\n", "other"),
        ("require (\n\tgithub.com/cilium/ebpf v0.16.0\n"
         "\tgithub.com/aquasecurity/libbpfgo v0.8.0\n)\n", "libbpf-assumed"),
    ],
)  # fmt: skip
def test_a_go_module_requiring_a_loader_library(tmp_path, requires, kind):
    write(
        tmp_path,
        {
            "go.mod": f"module example.com/x\n\ngo 1.22\n\n{requires}",
            "main.go": 'package main\n\nfunc main() { println("loads through a plugin") }\n',
            "bpf/regs.bpf.c": REGS,
        },
    )
    found = loaders(tmp_path)["dump"]
    assert found["kind"] == kind
    expected = ["SECL102", "SECL209"] if kind == "libbpf-assumed" else []
    assert [c[1] for c in codes(tmp_path)] == expected
    if kind != "libbpf-assumed":
        (evidence,) = found["evidence"]
        assert evidence["value"].startswith("go.mod requires github.com/")
        assert evidence["certain"] is False


WINDOWS_LOADER = (
    "#include <ebpf_api.h>\nint main(void)\n{\n"
    '\tstruct bpf_object *obj = bpf_object__open("probe.bpf.o");\n'
    "\treturn bpf_object__load(obj);\n}\n"
)


@pytest.mark.parametrize("header", ["", "struct ebpf_like { int ebpf_x; };\n"])
def test_an_ebpf_for_windows_loader_is_not_judged_by_libbpf(tmp_path, header):
    # ebpf_api.h is eBPF for Windows' user-space API; the marks are searched only in files
    # that hold `ebpf_`, and a header that merely holds it (`header`) decides nothing.
    write(
        tmp_path,
        {
            "probe.bpf.c": PROBE.format(section="kprobes/do_unlinkat"),
            "loader.c": WINDOWS_LOADER,
            "vmlinux.h": header,
        },
    )
    assert codes(tmp_path) == []
    assert codes(tmp_path, "--select", "ALL") == [("probe.bpf.c", "SECL005", 1)]
    assert loaders(tmp_path)["handle"]["kind"] == "ebpf-for-windows"
    (tmp_path / "loader.c").write_text(WINDOWS_LOADER.replace("<ebpf_api.h>", "<bpf/libbpf.h>"))
    assert codes(tmp_path) == [("probe.bpf.c", "SECL101", 1)]


GENERATED = (
    "// Code generated by bpf2go; DO NOT EDIT.\n\npackage {pkg}\n\n"
    'import (\n\t"bytes"\n\t_ "embed"\n\n\t"github.com/cilium/ebpf"\n)\n\n'
    "func loadBpf() (*ebpf.CollectionSpec, error) {{\n"
    "\treturn ebpf.LoadCollectionSpecFromReader(bytes.NewReader(_BpfBytes))\n}}\n\n"
    "//go:embed bpf_x86_bpfel.o\nvar _BpfBytes []byte\n"
)


def test_a_bpf2go_identifier_belongs_to_its_package(tmp_path):
    """Two packages both call their bpf2go identifier `bpf` (run through `$BPF2GO`, the
    binary a Makefile exports): each generated loader is evidence for its own source only."""
    files = {"go.mod": "module x\n\nrequire github.com/cilium/ebpf v0.16.0\n"}
    for pkg in ("a", "b"):
        files[f"bpf/{pkg}.c"] = PROBE.format(section=f"socket/{pkg}").replace(
            "handle", f"handle_{pkg}"
        )
        files[f"pkg/{pkg}/{pkg}.go"] = (
            f"package {pkg}\n\n//go:generate $BPF2GO -cc $BPF_CLANG -target amd64 bpf "
            f"../../bpf/{pkg}.c -- -I../../bpf\n"
        )
        files[f"pkg/{pkg}/bpf_x86_bpfel.go"] = GENERATED.format(pkg=pkg)
    write(tmp_path, files)
    found = loaders(tmp_path)
    for pkg in ("a", "b"):
        loader = found[f"handle_{pkg}"]
        assert loader["kind"] == "cilium-ebpf"
        assert {e["filename"] for e in loader["evidence"]} == {
            f"pkg/{pkg}/{pkg}.go", f"pkg/{pkg}/bpf_x86_bpfel.go"
        }  # fmt: skip
        assert all(e.get("certain", True) for e in loader["evidence"])


GOBPF_ASSET = (
    'package tracer\n\nimport (\n\t"bytes"\n\n\tbpflib "github.com/iovisor/gobpf/elf"\n)\n\n'
    "func load() *bpflib.Module {{\n\tbuf, _ := Asset({name})\n"
    "\treturn bpflib.NewModuleFromReader(bytes.NewReader(buf))\n}}\n"
)
# a legacy `maps` section, which libbpf 1.0 refuses (SECL108)
GOBPF_PROBE = (
    'struct bpf_map_def SEC("maps") conn = {{ .type = 1 }};\n\n'
    'SEC("kprobe/tcp_v4_connect")\nint {name}(void *ctx)\n{{\n\treturn 0;\n}}\n'
)


def test_a_gopath_project_without_go_mod_is_judged_by_its_go_loaders(tmp_path):
    """No go.mod anywhere (GOPATH layout, vendored dependencies): the Go loaders of the
    project say which library its objects are for, even when the object's name (from the
    build) matches no source."""
    write(
        tmp_path,
        {
            "tracer-bpf.c": GOBPF_PROBE.format(name="trace"),
            "pkg/tracer/tracer.go": GOBPF_ASSET.format(name='"tracer-ebpf.o"'),
            "vendor/github.com/iovisor/gobpf/elf/module.go": "package elf\n",
        },
    )
    loader = loaders(tmp_path)["trace"]
    assert loader["kind"] == "gobpf"
    assert [e["certain"] for e in loader["evidence"]] == [False]
    assert codes(tmp_path) == []
    (tmp_path / "pkg/tracer/tracer.go").unlink()
    assert loaders(tmp_path)["trace"]["kind"] == "libbpf-assumed"
    assert [c[1] for c in codes(tmp_path)] == ["SECL108"]


def test_an_object_name_links_to_a_source_in_a_module_without_loader_code(tmp_path):
    """`bpf/go.mod` that only keeps the go tool out of a directory of C does not hide its
    sources from the loaders of the enclosing module; a `-` in the name is kept."""
    write(
        tmp_path,
        {
            "go.mod": "module x\n\nrequire github.com/iovisor/gobpf v0.2.0\n",
            "bpf/go.mod": "module x/bpf\n",
            "bpf/trace-main.c": GOBPF_PROBE.format(name="trace"),
            "bpf/other.c": GOBPF_PROBE.format(name="other"),
            "pkg/tracer/tracer.go": GOBPF_ASSET.format(name='"trace-main.o"'),
        },
    )
    found = loaders(tmp_path)
    assert found["trace"]["kind"] == "gobpf"
    assert found["trace"]["evidence"][0]["filename"] == "pkg/tracer/tracer.go"
    assert found["trace"]["evidence"][0].get("certain", True) is True
    # `other.c` is named by no loader and its module has none: libbpf's rules
    assert found["other"]["kind"] == "libbpf-assumed"


CILIUM_LOADER = (
    'package probe\n\nimport "github.com/cilium/ebpf"\n\n'
    "func Load(path string) (*ebpf.CollectionSpec, error) {\n"
    "\treturn ebpf.LoadCollectionSpec(path)\n}\n"
)


@pytest.mark.parametrize("replace", [True, False])
def test_a_go_module_takes_the_loaders_of_modules_it_replaces_with_a_directory(tmp_path, replace):
    """`examples/` is a module of its own with BPF C and no loader code; its go.mod replaces
    the project's module (which loads with cilium/ebpf) with `../`: cilium/ebpf's rules, as
    for a crate's path dependency. Without the replace directive, nothing says so."""
    directive = "replace example.com/probe => ../\n" if replace else ""
    write(
        tmp_path,
        {
            "go.mod": "module example.com/probe\n",
            "probe/load.go": CILIUM_LOADER,
            "examples/go.mod": "module example.com/probe/examples\n\n"
            f"require example.com/probe v0.0.0\n\n{directive}",
            "examples/main.go": 'package main\n\nimport "example.com/probe/probe"\n\n'
            'func main() { probe.Load("socket.o") }\n',
            "examples/bpf/socket.c": PROBE.format(section="socket1"),
        },
    )
    loader = loaders(tmp_path)["handle"]
    if replace:
        assert loader["kind"] == "cilium-ebpf"
        assert loader["evidence"][0]["filename"] == "probe/load.go"
        assert codes(tmp_path) == []  # cilium/ebpf prefix-matches `socket`
    else:
        assert loader["kind"] == "libbpf-assumed"
        assert [c[1] for c in codes(tmp_path)] == ["SECL102"]


@pytest.mark.parametrize("c_loader", [False, True])
def test_a_source_outside_every_module_takes_the_project_loaders(tmp_path, c_loader):
    """BPF C in `bpf/` beside `agent/go.mod`, whose loader reads the object path at run
    time: cilium/ebpf's rules (uncertain). A C libbpf loader in the project may be the one
    that opens it: then libbpf's."""
    files = {
        "bpf/socket.c": PROBE.format(section="socket1"),
        "agent/go.mod": "module example.com/agent\n\nrequire github.com/cilium/ebpf v0.16.0\n",
        "agent/probe/load.go": CILIUM_LOADER,
    }
    if c_loader:
        files["tools/dump.c"] = (
            "#include <bpf/libbpf.h>\nint main(void)\n{\n"
            '\treturn !bpf_object__open_file("dump.bpf.o", NULL);\n}\n'
        )
    write(tmp_path, files)
    loader = loaders(tmp_path)["handle"]
    if c_loader:
        assert loader["kind"] == "libbpf-assumed"
        assert [c[1] for c in codes(tmp_path)] == ["SECL102"]
    else:
        assert loader["kind"] == "cilium-ebpf"
        assert [e["filename"] for e in loader["evidence"]] == ["agent/probe/load.go"]
        assert loader["evidence"][0]["certain"] is False
        assert codes(tmp_path) == []


def test_a_module_of_several_libraries_takes_those_that_name_no_source(tmp_path):
    """A module with a C skeleton loader of its own source and a Go loader that reads its
    object path at run time: a source neither names is the Go loader's. With two loaders
    that name nothing and use different libraries, nothing is assumed."""
    files = {
        "go.mod": "module example.com/x\n\nrequire github.com/cilium/ebpf v0.16.0\n",
        "probe/load.go": CILIUM_LOADER,
        "bpf/socket.c": PROBE.format(section="socket1"),
        "tools/tool.bpf.c": PROBE.format(section="kprobe/do_unlinkat").replace("handle", "tool"),
        "tools/tool.c": '#include "tool.skel.h"\nint main(void)\n{\n'
        "\tstruct tool_bpf *s = tool_bpf__open_and_load();\n\treturn !s;\n}\n",
    }
    write(tmp_path, files)
    found = loaders(tmp_path)
    assert found["tool"]["kind"] == "libbpf"
    assert found["handle"]["kind"] == "cilium-ebpf"
    assert [e["filename"] for e in found["handle"]["evidence"]] == ["probe/load.go"]
    assert codes(tmp_path) == []
    (tmp_path / "probe/libbpfgo.go").write_text(
        'package probe\n\nimport bpf "github.com/aquasecurity/libbpfgo"\n\n'
        "func Open(p string) { bpf.NewModuleFromFile(p) }\n"
    )
    assert loaders(tmp_path)["handle"]["kind"] == "libbpf-assumed"
