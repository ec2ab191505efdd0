"""Fixtures of the runtime verifier's tests: BPF objects compiled with clang at test time, the
static loader, and one `secl verify` run (one QEMU boot) shared by the whole session.

Outside CI a missing piece (not root, no clang, no libbpf >= 1.4, no qemu or guest kernel)
skips these tests; with CI=true it fails them, because CI installs everything
(scripts/test's APT_PACKAGES and scripts/fetch-guest-kernel).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from secl.verify import toolchain

HERE = Path(__file__).parent
PROGS = HERE / "progs"
ROOT = HERE.parent.parent


def is_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def missing(what: str) -> None:
    if is_ci():
        pytest.fail(f"CI must have the runtime verifier's pieces: {what}")
    pytest.skip(what)


@dataclass(frozen=True)
class Tools:
    sysroot: toolchain.Sysroot
    clang: str
    loader: Path

    def compile(self, source: Path, out: Path) -> Path:
        cmd = [self.clang, "-O2", "-g", "-target", "bpf", *self.sysroot.include_flags(),
               "-c", str(source), "-o", str(out)]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        return out


@pytest.fixture(scope="session")
def tools() -> Tools:
    if os.geteuid() != 0:
        missing("not root")
    sysroot = toolchain.find_sysroot()
    if isinstance(sysroot, toolchain.Skip):
        missing(str(sysroot))
    clang = toolchain.find_clang()
    if clang is None:
        missing("no clang")
    cc = toolchain.find_compiler()
    if isinstance(cc, toolchain.Skip):
        missing(str(cc))
    loader = toolchain.build_loader(sysroot, cc)  # type: ignore[arg-type]
    if isinstance(loader, toolchain.Skip):
        missing(str(loader))
    return Tools(sysroot, clang, loader)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def objects(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("objects")
    return {
        src.name.removesuffix(".bpf.c"): tools.compile(src, out / src.name.replace(".c", ".o"))
        for src in sorted(PROGS.glob("*.bpf.c"))
    }


@dataclass(frozen=True)
class VerifyRun:
    returncode: int
    document: dict[str, Any]
    stderr: str
    wall: float

    def program(self, name: str) -> dict[str, Any]:
        for obj in self.document["objects"]:
            for program in obj["programs"]:
                if program["program"] == name:
                    return program
        raise KeyError(name)

    def case(self, program: str, label: str) -> dict[str, Any]:
        for case in self.program(program)["cases"]:
            if case["label"] == label or case["label"].startswith(label + " ("):
                return case
        raise KeyError(f"{program}: {label}")


def run_secl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secl", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="session")
def probes_run(objects: dict[str, Path]) -> VerifyRun:
    """`secl verify` of both test objects with the predictions of tests/verify/progs: the
    uprobe programs on the host, one loader run per object, the kprobe programs of both in
    one guest boot."""
    for piece in (toolchain.find_qemu(), toolchain.find_kernel(None), toolchain.find_busybox()):
        if isinstance(piece, toolchain.Skip):
            missing(str(piece))
    start = time.monotonic()
    proc = run_secl(
        "verify", str(objects["probes"]), str(objects["sections"]),
        "--sources", str(PROGS.relative_to(ROOT)), "--require-runtime", "--output-format", "json",
    )  # fmt: skip
    wall = time.monotonic() - start
    try:
        document = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON from secl verify (exit {proc.returncode}): {proc.stderr}")
    return VerifyRun(proc.returncode, document, proc.stderr, wall)
