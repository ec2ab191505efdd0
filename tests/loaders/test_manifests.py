"""Dependencies read from Cargo.toml and go.mod (secl.loaders.manifests)."""

from __future__ import annotations

import os

import pytest

from secl.loaders import AYA, CILIUM, LIBBPF_RS, LIBBPFGO
from secl.loaders.manifests import (
    CargoDependency,
    cargo_loader_dependencies,
    cargo_manifest,
    cargo_path_dependencies,
    dependency_offset,
    go_direct_requires,
    go_loader_requires,
    go_local_replacements,
    go_path_dependencies,
    virtual_workspace_member,
    workspace_root,
)

ROOT = os.path.abspath(os.sep + os.path.join("src", "project"))


def at(*parts: str) -> str:
    return os.path.join(ROOT, *parts)


def test_cargo_manifest_reads_every_dependency_table() -> None:
    found = cargo_manifest(
        b"""
[package]
name = "x"
workspace = "../.."

[dependencies]
plain = "1"
local = { path = "../local" }
inherited = { workspace = true, features = ["std"] }
dotted.workspace = true
bpf = { package = "libbpf-rs", version = "0.26" }

[dev-dependencies]
helper = { path = "helper" }

[build-dependencies]
libbpf-cargo = "0.26"

[target.'cfg(target_os = "linux")'.dependencies]
linux-only = { path = "../linux" }
"""
    )
    by_alias = {d.alias: d for d in found.dependencies}
    assert by_alias["plain"] == CargoDependency("plain", "plain", None, False)
    assert by_alias["local"].path == "../local"
    assert by_alias["inherited"].workspace and by_alias["dotted"].workspace
    assert by_alias["bpf"].package == "libbpf-rs"
    assert {"helper", "libbpf-cargo", "linux-only"} <= set(by_alias)
    assert found.workspace_path == "../.." and not found.is_workspace


def test_a_manifest_that_does_not_parse_declares_nothing() -> None:
    found = cargo_manifest(b"[dependencies\nx = ")
    assert found.dependencies == () and found.workspace_dependencies == {}


def manifests(files: dict[str, str]) -> dict:
    return {at(d) if d else ROOT: cargo_manifest(text.encode()) for d, text in files.items()}


WORKSPACE = {
    "": '[workspace]\nmembers = ["lib", "tests/it"]\n\n[workspace.dependencies]\n'
    'lib = { path = "./lib" }\naya = "0.13"\nbpf = { package = "libbpf-rs", version = "1" }\n',
    "lib": '[package]\nname = "lib"\n\n[dependencies]\ncore = { path = "../core" }\n'
    "aya.workspace = true\n",
    "core": '[package]\nname = "core"\n\n[dependencies]\nlib = { path = "../lib" }\n'
    'outside = { path = "../../elsewhere" }\nmissing = { path = "../missing" }\n',
    "tests/it": '[package]\nname = "it"\n\n[dependencies]\nlib = { workspace = true }\n'
    "bpf = { workspace = true }\n",
}


def test_path_dependencies_through_the_workspace_and_transitively() -> None:
    found = manifests(WORKSPACE)
    # lib through [workspace.dependencies]; core through lib; lib's cycle back is seen once;
    # nothing outside the project root, nothing without a manifest
    assert cargo_path_dependencies(found, at("tests", "it"), ROOT) == [at("lib"), at("core")]
    assert cargo_path_dependencies(found, at("core"), ROOT) == [at("lib")]
    assert cargo_path_dependencies(found, ROOT, ROOT) == []


def test_workspace_root_is_the_nearest_workspace_above() -> None:
    found = manifests(WORKSPACE)
    assert workspace_root(found, at("tests", "it"), found[at("tests", "it")], ROOT) == ROOT
    alone = manifests({"x": '[package]\nname = "x"\n'})
    assert workspace_root(alone, at("x"), alone[at("x")], ROOT) is None


def test_workspace_root_named_by_the_package() -> None:
    found = manifests(
        {
            "ws": "[workspace]\n\n[workspace.dependencies]\nlib = { path = 'lib' }\n",
            "ws/lib": '[package]\nname = "lib"\n',
            "crates/x": '[package]\nname = "x"\nworkspace = "../../ws"\n\n'
            "[dependencies]\nlib.workspace = true\n",
        }
    )
    assert cargo_path_dependencies(found, at("crates", "x"), ROOT) == [at("ws", "lib")]


def test_loader_dependencies_resolve_renames_and_inherited_entries() -> None:
    found = manifests(WORKSPACE)
    assert cargo_loader_dependencies(found, at("tests", "it"), ROOT) == [("bpf", LIBBPF_RS)]
    assert cargo_loader_dependencies(found, at("lib"), ROOT) == [("aya", AYA)]
    assert cargo_loader_dependencies(found, at("core"), ROOT) == []


GO_MOD = b"""module example.com/x

go 1.22

require github.com/cilium/ebpf v0.16.0

require (
\tgithub.com/aquasecurity/libbpfgo v0.8.0 // indirect
\tgithub.com/gojue/ebpfmanager v0.5.0 // pinned for the probes
\tgolang.org/x/sys v0.20.0 // indirect; needed by x
\t"github.com/DataDog/ebpf-manager" v0.7.0
)

replace github.com/cilium/ebpf => ../ebpf
"""


def test_go_direct_requires_leave_indirect_ones_out() -> None:
    assert go_direct_requires(GO_MOD) == [
        "github.com/cilium/ebpf",
        "github.com/gojue/ebpfmanager",
        "github.com/DataDog/ebpf-manager",
    ]
    assert go_loader_requires(GO_MOD) == [
        ("github.com/cilium/ebpf", CILIUM),
        ("github.com/gojue/ebpfmanager", CILIUM),
        ("github.com/DataDog/ebpf-manager", CILIUM),
    ]
    assert go_loader_requires(b"module x\nrequire(\ngithub.com/aquasecurity/libbpfgo v1\n)\n") == [
        ("github.com/aquasecurity/libbpfgo", LIBBPFGO)
    ]


def test_go_local_replacements_of_required_modules_only() -> None:
    data = b"""module example.com/app

require (
\texample.com/lib v0.0.0
\texample.com/other v1.0.0 // indirect
\texample.com/fork v1.0.0
)

replace example.com/lib => ../lib
replace (
\texample.com/other v1.0.0 => ./other // a comment
\texample.com/unrequired => ../unrequired
\texample.com/fork v1.0.0 => example.com/elsewhere v1.1.0
\t"example.com/lib" v9 => ./never
)
"""
    # a module nothing requires is not replaced; a module path is no directory
    assert go_local_replacements(data) == ["../lib", "./other", "./never"]


def test_go_path_dependencies_are_transitive_and_stay_in_the_project() -> None:
    manifests = {
        at("examples"): b"module e\nrequire example.com/app v0.0.0\n"
        b"replace example.com/app => ../\n",
        ROOT: b"module example.com/app\nrequire example.com/lib v0.0.0\n"
        b"replace example.com/lib => ./lib\n",
        at("lib"): b"module example.com/lib\nrequire example.com/out v0.0.0\n"
        b"replace example.com/out => ../../out\n",
        os.path.dirname(os.path.dirname(ROOT)) + os.sep + "out": b"module example.com/out\n",
    }
    assert go_path_dependencies(manifests, at("examples"), ROOT) == [ROOT, at("lib")]
    assert go_path_dependencies(manifests, at("lib"), ROOT) == []


@pytest.mark.parametrize(
    ("data", "name", "go", "line"),
    [
        (
            GO_MOD,
            "github.com/gojue/ebpfmanager",
            True,
            "\tgithub.com/gojue/ebpfmanager v0.5.0 // pinned for the probes",
        ),
        (GO_MOD, "github.com/cilium/ebpf", True, "require github.com/cilium/ebpf v0.16.0"),
        (b'[dependencies]\naya-obj = "1"\naya = "0.13"\n', "aya", False, 'aya = "0.13"'),
        (b"[dependencies.aya]\nversion = '1'\n", "aya", False, "[dependencies.aya]"),
        (b"[dependencies]\naya.workspace = true\n", "aya", False, "aya.workspace = true"),
    ],
)
def test_dependency_offset_is_the_line_that_names_it(data, name, go, line) -> None:
    offset = dependency_offset(data, name, go)
    start = data.rfind(b"\n", 0, offset) + 1
    end = data.find(b"\n", offset)
    assert data[start:end].decode() == line
    assert data[offset:].startswith((name.encode(), b"require", b"[", b'"'))


def test_the_loader_scan_reads_cargo_toml_and_go_mod_when_asked(tmp_path) -> None:
    from secl.loaders.discover import scan

    files = {"Cargo.toml": b'[package]\nname = "x"\n', "go.mod": b"module x\n"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "Cargo.toml").write_bytes(b"[package]\n")  # not scanned
    found = scan([str(tmp_path / name) for name in sorted(files)])
    directory = str(tmp_path)
    assert found.manifest_data(directory, "Cargo.toml") == files["Cargo.toml"]
    (tmp_path / "go.mod").write_bytes(b"changed")
    assert found.manifest_data(directory, "go.mod") == b"changed"  # read on first use
    (tmp_path / "go.mod").write_bytes(b"again")
    assert found.manifest_data(directory, "go.mod") == b"changed"  # then kept
    assert found.manifest_data(str(tmp_path / "sub"), "Cargo.toml") is None


@pytest.mark.parametrize(
    ("data", "go", "expected"),
    [
        (b'[dependencies]\nserde = "1"\n', False, False),
        (b'[dependencies]\naya = "1"\n', False, True),
        (b"[dependencies]\nbpf.workspace = true\n", False, True),  # maybe libbpf-rs
        (b"module x\nrequire golang.org/x/sys v1\n", True, False),
        (b"module x\nrequire github.com/cilium/ebpf v1\n", True, True),
    ],
)
def test_may_name_a_loader(data: bytes, go: bool, expected: bool) -> None:
    from secl.loaders.manifests import may_name_a_loader

    assert may_name_a_loader(data, go) is expected


@pytest.mark.parametrize(
    ("manifest", "member", "expected"),
    [
        (b'[workspace]\nmembers = ["agent"]\n', "agent", True),
        (b'[workspace]\nmembers = ["crates/*"]\n', "crates/agent", True),
        (b'[workspace]\nmembers = ["crates/*"]\n', "tools/agent", False),
        (b'[workspace]\nmembers = ["crates/*"]\nexclude = ["crates/old"]\n', "crates/old", False),
        # a root with a [package] is a crate with code of its own, not a virtual manifest
        (b'[package]\nname = "root"\n\n[workspace]\nmembers = ["agent"]\n', "agent", False),
        (b'[package]\nname = "lone"\n', "agent", False),
    ],
)
def test_virtual_workspace_member(manifest: bytes, member: str, expected: bool) -> None:
    parsed = cargo_manifest(manifest)
    assert virtual_workspace_member(parsed, ROOT, at(*member.split("/"))) is expected
    assert not virtual_workspace_member(parsed, ROOT, ROOT)
