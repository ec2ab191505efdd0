"""Fixtures of the runtime verifier's tests: BPF objects compiled with clang at test time, the
static loader, and two `secl verify` runs shared by the whole session: one in the pinned guest
kernel (its answers are constants) and one routed as on any user's machine (its answers are
the host kernel's, so only what secl does with them is asserted).

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from secl.verify import toolchain

HERE = Path(__file__).parent
PROGS = HERE / "progs"
ROOT = HERE.parent.parent
# The kernel scripts/fetch-guest-kernel fetches; the observations the tests hold as constants
# are this kernel's. Any other kernel's answers are observations, checked for what secl does.
PINNED_KERNEL = "6.12.95+deb12-amd64"


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


def _verify_run(*args: str, env: dict[str, str] | None = None) -> VerifyRun:
    start = time.monotonic()
    proc = run_secl("verify", *args, "--output-format", "json", env=env)
    wall = time.monotonic() - start
    try:
        document = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON from secl verify (exit {proc.returncode}): {proc.stderr}")
    return VerifyRun(proc.returncode, document, proc.stderr, wall)


def pinned_kernel() -> Path:
    """The guest kernel scripts/fetch-guest-kernel pins: the only kernel whose answers the
    tests hold as constants."""
    image = toolchain.cache_dir() / "kernel" / "boot" / f"vmlinuz-{PINNED_KERNEL}"
    if not image.is_file():
        missing(f"the pinned guest kernel {image} is missing: run scripts/fetch-guest-kernel")
    return image


def guest_pieces() -> None:
    for piece in (toolchain.find_qemu(), toolchain.find_busybox()):
        if isinstance(piece, toolchain.Skip):
            missing(str(piece))


@pytest.fixture(scope="session")
def pinned_run(objects: dict[str, Path]) -> VerifyRun:
    """Every case of both test objects in one boot of the pinned guest kernel (--kernel): the
    run whose observations are constants."""
    guest_pieces()
    return _verify_run(
        str(objects["probes"]), str(objects["sections"]),
        "--sources", str(PROGS.relative_to(ROOT)), "--kernel", str(pinned_kernel()),
        "--require-runtime",
    )  # fmt: skip


@pytest.fixture(scope="session")
def host_run(objects: dict[str, Path]) -> VerifyRun:
    """`secl verify` as a user runs it: each program where this host's kernel can run it (the
    host, as root, when it has the probe type and its multi link), the rest in the guest.
    What the host kernel answers is not known in advance: tests of this run check what secl
    does with the answers. With SECL_TEST_NO_GUEST=1 (inside a guest, see
    test_in_guest_kernel.py) the guest part is a named skip instead of a nested QEMU."""
    env = {"SECL_QEMU": "/nonexistent/qemu"} if os.environ.get("SECL_TEST_NO_GUEST") else None
    if env is None:
        guest_pieces()
    return _verify_run(
        str(objects["probes"]), str(objects["sections"]),
        "--sources", str(PROGS.relative_to(ROOT)), env=env,
    )  # fmt: skip


def processes_with(needle: str) -> list[int]:
    """PIDs of the processes whose command line contains `needle` (but this one)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if needle.encode() in cmdline:
            found.append(int(pid))
    return found


def wait_for(condition: Callable[[], object], seconds: float = 60.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return False


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "host_kernel: runs cases on the running kernel and asserts only what secl does with its "
        "answers (these also run inside other guest kernels: test_in_guest_kernel.py)",
    )
