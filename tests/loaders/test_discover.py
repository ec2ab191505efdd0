"""The loader scan's reading of manifests: only the packages secl reports are asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from secl.loaders import PACKAGES
from secl.loaders.discover import extract_one, read_candidate, scan

GO_MOD = b"""module example.com/x

require (
\tgithub.com/cilium/ebpf v0.16.0 // indirect
\tgolang.org/x/sys v0.20.0
)
"""
CARGO_TOML_AYA = b'[package]\nname = "x"\n[dependencies]\naya = "0.13"\nserde = "1"\n'
CARGO_TOML_OTHER = b'[package]\nname = "y"\n[dependencies]\nserde = "1"\n'
CARGO_LOCK_ESCAPED = b'[[package]]\nname = "a\\u0079a"\nversion = "0.12.0"\n'


@pytest.mark.parametrize(
    ("name", "data", "pinned"),
    [
        ("go.mod", GO_MOD, {"github.com/cilium/ebpf": "v0.16.0"}),
        ("Cargo.toml", CARGO_TOML_AYA, {"aya": "0.13"}),
        ("Cargo.toml", CARGO_TOML_OTHER, {}),
        ("Cargo.lock", CARGO_LOCK_ESCAPED, {"aya": "0.12.0"}),  # `aya` only once unescaped
        ("go.mod", b"module example.com/y\n\nrequire golang.org/x/sys v0.20.0\n", {}),
    ],
)
def test_a_manifest_pins_the_packages_secl_reports(name: str, data: bytes, pinned: dict) -> None:
    kind, found_name, versions = extract_one(name, data)  # type: ignore[misc]
    assert (kind, found_name) == ("manifest", name)
    reported = {n for names in PACKAGES.values() for n in names}
    assert {k: v for k, v in versions.items() if k in reported} == pinned


def test_versions_are_found_through_nested_manifests(tmp_path: Path) -> None:
    (tmp_path / "crate" / "src").mkdir(parents=True)
    (tmp_path / "go.mod").write_bytes(GO_MOD)
    (tmp_path / "crate" / "Cargo.toml").write_bytes(CARGO_TOML_OTHER)
    (tmp_path / "Cargo.toml").write_bytes(CARGO_TOML_AYA)
    paths = [str(tmp_path / "go.mod"), str(tmp_path / "Cargo.toml")]
    paths.append(str(tmp_path / "crate" / "Cargo.toml"))
    assert all(read_candidate(p) is not None for p in paths)
    found = scan(paths)
    inner = str(tmp_path / "crate" / "src" / "main.rs")
    # The crate's own manifest pins no aya: the one above it does.
    assert found.version(inner, PACKAGES["aya"]) == "0.13"
    assert found.version(inner, PACKAGES["cilium-ebpf"]) == "v0.16.0"
    assert found.version(inner, PACKAGES["libbpf-rs"]) is None
