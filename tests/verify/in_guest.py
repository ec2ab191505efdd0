"""Run tests inside another kernel: a QEMU guest whose root file system is this machine's,
shared read-only over virtio-9p, so that the same Python, venv, clang and worktree run there.

The guest boots the chosen kernel with an initramfs secl writes (busybox, the kernel's own
9p and virtio modules, an /init), mounts the host's / read-only, gives it fresh proc, sysfs,
devtmpfs, devpts and a tmpfs /tmp, and runs pytest chrooted into it; pytest's output comes
back on the second serial port. Nothing in the guest can write to the host's files.

A kernel is given as its vmlinuz; its modules are looked for where `dpkg -x` of a Debian
linux-image package puts them (<root>/boot/vmlinuz-V -> <root>/lib/modules/V or
<root>/usr/lib/modules/V; <root>/usr/lib/modules/V/vmlinuz), else in /lib/modules/V.
"""

from __future__ import annotations

import lzma
import os
import shlex
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from secl.verify import process
from secl.verify.guest import Cpio
from secl.verify.toolchain import cache_dir

# The 9p file system over virtio, and the virtio PCI transport (a module in Debian's 6.1)
WANTED_MODULES = ("virtio_pci", "9pnet_virtio", "9p")
MODULE_SUFFIXES = (".ko", ".ko.xz")
TAG = "hostroot"


@dataclass(frozen=True, slots=True)
class GuestPytest:
    """One pytest run inside a guest kernel."""

    kernel: str  # the guest's `uname -r`, as it printed it
    returncode: int | None  # pytest's, None when it did not finish
    output: str  # pytest's output
    console: str  # the guest's console (kernel messages, /init's)
    wall: float


def kernel_version(image: Path) -> str:
    """boot/vmlinuz-VERSION, or (newer Debian packages) usr/lib/modules/VERSION/vmlinuz."""
    if image.name == "vmlinuz":
        return image.parent.name
    return image.name.removeprefix("vmlinuz-")


def modules_dir(image: Path) -> Path:
    if image.name == "vmlinuz":
        return image.parent
    version = kernel_version(image)
    for beside in (image.parent.parent / "lib", image.parent.parent / "usr" / "lib"):
        if (beside / "modules" / version).is_dir():
            return beside / "modules" / version
    return Path("/lib/modules") / version


def _modinfo_depends(data: bytes) -> list[str]:
    """The `depends=` of a module: its .modinfo section holds NUL-separated key=value pairs
    (include/linux/module.h: MODULE_INFO; scripts/mod/modpost.c adds depends)."""
    if data[:4] != b"\x7fELF":
        return []
    (shoff,) = struct.unpack_from("<Q", data, 40)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 58)

    def header(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from(
            "<IIQQQQ", data, shoff + i * shentsize
        )
        return name, offset, size

    strings = header(shstrndx)[1]
    for i in range(shnum):
        name, offset, size = header(i)
        if data[strings + name : data.index(b"\0", strings + name)] == b".modinfo":
            for item in data[offset : offset + size].split(b"\0"):
                if item.startswith(b"depends="):
                    return [d for d in item[8:].decode().split(",") if d]
    return []


def _find_module(root: Path, name: str) -> Path | None:
    stems = {name, name.replace("_", "-"), name.replace("-", "_")}
    for path in sorted(root.rglob("*.ko*")):
        for suffix in MODULE_SUFFIXES:
            if path.name.endswith(suffix) and path.name.removesuffix(suffix) in stems:
                return path
    return None


def _read_module(path: Path) -> bytes:
    data = path.read_bytes()
    return lzma.decompress(data) if path.name.endswith(".xz") else data


def module_closure(root: Path, names: tuple[str, ...]) -> list[tuple[str, bytes]]:
    """The modules to insmod, dependencies first; a name without a file is built in."""
    ordered: list[tuple[str, bytes]] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        key = name.replace("-", "_")
        if key in seen:
            return
        seen.add(key)
        path = _find_module(root, name)
        if path is None:
            return  # built into the kernel
        data = _read_module(path)
        for dependency in _modinfo_depends(data):
            visit(dependency)
        ordered.append((key, data))

    for name in names:
        visit(name)
    return ordered


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _init_script(workdir: Path, command: list[str], env: dict[str, str]) -> str:
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    run = f"cd {shlex.quote(str(workdir))} && exec env -i {exports} {shlex.join(command)}"
    return f"""#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t devtmpfs devtmpfs /dev
for m in $($B cat /modules/order); do $B insmod /modules/$m.ko || echo "insmod $m failed"; done
$B mkdir -p /newroot
$B mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 {TAG} /newroot \\
    || echo "SECL-NO-ROOT"
$B mount -t proc proc /newroot/proc
$B mount -t sysfs sysfs /newroot/sys
$B mount -t devtmpfs devtmpfs /newroot/dev
$B mkdir -p /newroot/dev/pts
$B mount -t devpts devpts /newroot/dev/pts
$B mount -t tmpfs tmpfs /newroot/tmp
$B mount -t tmpfs tmpfs /newroot/run
echo "SECL-KERNEL $($B uname -r)"
$B chroot /newroot /bin/sh -c {shlex.quote(run)} >/dev/ttyS1 2>&1
echo "SECL-END $?"
$B poweroff -f
"""


def run_pytest(
    qemu: str,
    busybox: str,
    image: Path,
    pytest_args: list[str],
    workdir: Path,
    timeout: float,
    memory_mb: int = 2048,
) -> GuestPytest:
    """Boot `image` with this machine's / as its root (read-only) and run
    `python -m pytest PYTEST_ARGS` in `workdir` there."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/tmp/home",
        "PYTHONPATH": str(workdir),
        "PYTHONDONTWRITEBYTECODE": "1",
        # the loader built on this machine, read-only in the guest
        "SECL_CACHE": str(cache_dir().parent),
        "SECL_TEST_NO_GUEST": "1",  # no QEMU inside TCG
        "LANG": "C.UTF-8",
    }
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--color=no", *pytest_args]
    with tempfile.TemporaryDirectory(prefix="secl-hostroot-") as tmpdir:
        tmp = Path(tmpdir)
        archive = Cpio()
        for d in ("bin", "dev", "proc", "sys", "modules"):
            archive.directory(d)
        archive.char_device("dev/console", 5, 1)
        archive.file("init", _init_script(workdir, command, env).encode(), 0o755)
        archive.file("bin/busybox", Path(busybox).read_bytes(), 0o755)
        modules = module_closure(modules_dir(image), WANTED_MODULES)
        for name, data in modules:
            archive.file(f"modules/{name}.ko", data)
        archive.file("modules/order", " ".join(name for name, _ in modules).encode())
        initrd = tmp / "initrd"
        initrd.write_bytes(archive.finish())
        cmd = [
            qemu, "-machine", "q35,accel=tcg", "-cpu", "max", "-m", str(memory_mb),
            "-smp", "1", "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
            "-kernel", str(image), "-initrd", str(initrd),
            "-append", "console=ttyS0 panic=-1 quiet loglevel=3",
            "-virtfs", f"local,path=/,mount_tag={TAG},security_model=none,readonly=on,"
            "multidevs=remap",
            "-serial", f"file:{tmp / 'console'}", "-serial", f"file:{tmp / 'output'}",
        ]  # fmt: skip
        finished = process.run(
            cmd, stdout_path=os.devnull, stderr_path=str(tmp / "qemu.err"), timeout=timeout
        )
        console = _read(tmp / "console") + _read(tmp / "qemu.err")
        output = _read(tmp / "output").replace("\r\n", "\n")
    kernel, returncode = "?", None
    for line in console.splitlines():
        if line.startswith("SECL-KERNEL "):
            kernel = line.split()[1]
        elif line.startswith("SECL-END "):
            returncode = int(line.split()[1])
    return GuestPytest(kernel, returncode, output, console, finished.wall)
