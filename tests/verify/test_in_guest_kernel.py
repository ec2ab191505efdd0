"""Opt-in: the `host_kernel` tests, run inside other kernels, prove that they do not depend on
the kernel that runs them. Each kernel boots under QEMU with this machine's / as its root
(tests/verify/in_guest.py) and runs `pytest -m host_kernel tests/verify` there:

    SECL_TEST_GUEST_KERNELS=/k/6.1/boot/vmlinuz-6.1.0-50-amd64:/k/6.12/boot/vmlinuz-6.12.95+deb12-amd64 \\
        python -m pytest -s tests/verify/test_in_guest_kernel.py

A kernel is a vmlinuz with its modules beside it as `dpkg -x` of a Debian linux-image package
leaves them (the guest needs its 9p and virtio modules). Under TCG one kernel takes 2 to 3
minutes on a 2-core machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from secl.verify import toolchain

from .conftest import HERE, ROOT, Tools, missing
from .in_guest import kernel_version, run_pytest

KERNELS = [Path(p) for p in os.environ.get("SECL_TEST_GUEST_KERNELS", "").split(os.pathsep) if p]
TIMEOUT = 1800.0


@pytest.mark.skipif(
    not KERNELS or bool(os.environ.get("SECL_TEST_NO_GUEST")),
    reason="opt-in: SECL_TEST_GUEST_KERNELS=vmlinuz[:vmlinuz...] (not inside a guest)",
)
@pytest.mark.parametrize("image", KERNELS, ids=[kernel_version(k) for k in KERNELS])
def test_host_kernel_tests_pass_inside(image: Path, tools: Tools) -> None:
    # `tools` built the loader into the cache: the guest sees the cache read-only
    qemu, busybox = toolchain.find_qemu(), toolchain.find_busybox()
    for piece in (qemu, busybox):
        if isinstance(piece, toolchain.Skip):
            missing(str(piece))
    assert image.is_file(), f"{image}: no such kernel image"
    run = run_pytest(str(qemu), str(busybox), image, ["-q", "-rs", "-m", "host_kernel",
                     str(HERE.relative_to(ROOT))], ROOT, timeout=TIMEOUT)  # fmt: skip
    summary = run.output.strip().splitlines()[-1] if run.output.strip() else "(no output)"
    print(f"\n{run.kernel}: {summary} ({run.wall:.0f} s under QEMU)")
    assert run.kernel == kernel_version(image), run.console[-2000:]
    assert run.returncode == 0, run.output[-6000:] or run.console[-3000:]
    assert " passed" in summary and " failed" not in summary, run.output[-6000:]
