"""Runs cases inside QEMU on a kernel that has what the host lacks (KPROBES, FPROBE).

One boot per `secl verify` run: a minimal initramfs (busybox-static, the same static loader
as on the host, the objects and the case list) whose /init mounts proc, sysfs, devtmpfs and
tracefs, runs the loader with its results on the second serial port, and powers off. The
console goes to a file kept for diagnostics.

/dev/kvm is not trusted: on PVM hosts (module kvm_pvm) a stock kernel cannot run at all, and
where KVM fails in the guest's decompressor QEMU stays alive, paused. So KVM is tried only
where it may work, with a boot deadline, and the choice (kvm or tcg) is remembered in the
cache per host kernel and QEMU binary.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from secl.verify import process
from secl.verify.cases import Case
from secl.verify.host import BatchRun, parse_results
from secl.verify.toolchain import GuestKernel, cache_dir

BOOT_DEADLINE = 30.0  # seconds to the first marker on the console before KVM counts as failed
GUESTLISTS_TIMEOUT = 300.0  # a boot, and some 3 MB of lists through a serial port under TCG
KVM_FAILURES = ("KVM internal error", "failed to set MSR", "kvm_buf_set_msrs")
INIT = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mount -t tracefs tracefs /sys/kernel/tracing
echo SECL-BEGIN
/secl-loader /cases >/dev/ttyS1
echo "SECL-END $?"
/bin/busybox poweroff -f
"""


@dataclass(frozen=True, slots=True)
class GuestRun:
    """One QEMU boot: its batch of cases and the accelerator it used, with why."""

    batch: BatchRun
    accel: str  # "kvm" or "tcg"
    accel_reason: str


class Cpio:
    """A newc ("070701") archive, as the kernel's initramfs unpacker reads it
    (init/initramfs.c: do_header)."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.ino = 1

    def _entry(
        self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)
    ) -> None:
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(name) + 1, 0]  # fmt: skip
        self.ino += 1
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.out.write(header + name.encode() + b"\0")
        self._pad()
        self.out.write(data)
        self._pad()

    def _pad(self) -> None:
        self.out.write(b"\0" * (-self.out.tell() % 4))

    def directory(self, name: str) -> None:
        self._entry(name, 0o040755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def char_device(self, name: str, major: int, minor: int) -> None:
        self._entry(name, 0o020600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.out.getvalue()


def build_initramfs(busybox: str, loader: Path, cases: list[tuple[Case, str]], path: Path) -> None:
    archive = Cpio()
    for d in ("bin", "dev", "proc", "sys", "tmp", "objs"):
        archive.directory(d)
    archive.char_device("dev/console", 5, 1)
    archive.file("init", INIT.encode(), 0o755)
    archive.file("bin/busybox", Path(busybox).read_bytes(), 0o755)
    archive.file("secl-loader", loader.read_bytes(), 0o755)
    names: dict[str, str] = {}
    for _, obj in cases:
        if obj not in names:
            names[obj] = f"/objs/{len(names)}.o"
            archive.file(names[obj].lstrip("/"), Path(obj).read_bytes())
    lines = "".join(case.loader_line(names[obj]) + "\n" for case, obj in cases)
    archive.file("cases", lines.encode())
    path.write_bytes(gzip.compress(archive.finish(), compresslevel=1))


def _accel_key(qemu: str) -> str:
    try:
        stamp = os.stat(qemu).st_mtime_ns
    except OSError:
        stamp = 0
    return f"{platform.release()}|{qemu}|{stamp}"


def remembered_accel(qemu: str) -> str | None:
    try:
        data = json.loads((cache_dir() / "accel.json").read_text())
    except (OSError, ValueError):
        return None
    value = data.get(_accel_key(qemu)) if isinstance(data, dict) else None
    return value if value in ("kvm", "tcg") else None


def remember_accel(qemu: str, accel: str) -> None:
    path = cache_dir() / "accel.json"
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[_accel_key(qemu)] = accel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def kvm_candidate() -> tuple[bool, str]:
    """Whether KVM is worth a try, and why (not)."""
    if not os.path.exists("/dev/kvm"):
        return False, "no /dev/kvm"
    if os.path.isdir("/sys/module/kvm_pvm"):
        return False, "/dev/kvm is PVM (kvm_pvm), which cannot run a stock kernel"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm is not accessible"
    return True, "/dev/kvm"


def qemu_command(qemu: str, kernel: GuestKernel, initrd: Path, accel: str, tmp: Path) -> list[str]:
    cpu = "host" if accel == "kvm" else "max"
    return [
        qemu, "-machine", f"q35,accel={accel}", "-cpu", cpu, "-m", "256", "-smp", "1",
        "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
        "-kernel", str(kernel.image), "-initrd", str(initrd),
        "-append", "console=ttyS0 panic=-1 quiet loglevel=3",
        "-serial", f"file:{tmp / 'console'}", "-serial", f"file:{tmp / 'results'}",
    ]  # fmt: skip


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _boot(
    qemu: str, kernel: GuestKernel, initrd: Path, accel: str, tmp: Path, timeout: float
) -> tuple[process.Finished, str, bool]:
    """One QEMU run; the flag says KVM could not run the guest (only ever true for kvm)."""
    console = tmp / "console"
    for name in ("console", "results"):
        (tmp / name).write_bytes(b"")
    started = time.monotonic()
    kvm_failed = False

    def stop() -> bool:
        # KVM that fails in the guest's decompressor leaves a paused QEMU: give up early
        nonlocal kvm_failed
        if accel != "kvm":
            return False
        text = _read(console)
        if any(marker in text for marker in KVM_FAILURES) or (
            time.monotonic() - started > BOOT_DEADLINE and "SECL-BEGIN" not in text
        ):
            kvm_failed = True
        return kvm_failed

    finished = process.run(
        qemu_command(qemu, kernel, initrd, accel, tmp),
        stdout_path=str(tmp / "qemu.out"),
        stderr_path=str(tmp / "qemu.err"),
        timeout=timeout,
        stop=stop,
    )
    text = _read(console) + _read(tmp / "qemu.err")
    if accel == "kvm" and finished.returncode != 0 and "SECL-BEGIN" not in text:
        kvm_failed = True
    return finished, text, kvm_failed


def run_cases(
    qemu: str,
    kernel: GuestKernel,
    busybox: str,
    loader: Path,
    cases: list[tuple[Case, str]],
    timeout: float,
    say: Callable[[str], None] = lambda _: None,
) -> GuestRun:
    with tempfile.TemporaryDirectory(prefix="secl-guest-") as tmpdir:
        tmp = Path(tmpdir)
        initrd = tmp / "initrd.gz"
        build_initramfs(busybox, loader, cases, initrd)
        accel = remembered_accel(qemu)
        reason = "remembered for this host"
        if accel is None:
            maybe, why = kvm_candidate()
            accel, reason = ("kvm", why) if maybe else ("tcg", why)
        say(f"guest: booting {kernel.image.name} ({accel}) for {len(cases)} cases")
        finished, text, failed = _boot(qemu, kernel, initrd, accel, tmp, timeout)
        if accel == "kvm" and failed:
            remember_accel(qemu, "tcg")
            reason = "KVM could not run the guest kernel; TCG from now on"
            accel = "tcg"
            say(f"guest: KVM failed, booting again with TCG for {len(cases)} cases")
            finished, text, _ = _boot(qemu, kernel, initrd, accel, tmp, timeout)
        elif remembered_accel(qemu) is None:
            remember_accel(qemu, accel)
        observations = parse_results(_read(tmp / "results").splitlines())
    problem = None
    if finished.timed_out:
        problem = f"QEMU did not finish within {timeout:.0f} s and was killed"
    elif "SECL-END 0" not in text:
        tail = " | ".join(line for line in text.strip().splitlines()[-3:])
        problem = f"the guest did not finish its cases (QEMU exit {finished.returncode}): {tail}"
    batch = BatchRun(observations, finished.wall, finished.peak_rss_kb, problem)
    return GuestRun(batch, accel, reason)


# -- a kernel's own lists (SECL116, SECL302) -------------------------------------------------

LISTS_INIT = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t tracefs tracefs /sys/kernel/tracing
/bin/busybox mount -t debugfs debugfs /sys/kernel/debug
echo SECL-BEGIN
for list in /sys/kernel/tracing/available_filter_functions /sys/kernel/debug/kprobes/blacklist \
            /proc/kallsyms; do
    echo "SECL-LIST $list"
    /bin/busybox cat "$list"
done >/dev/ttyS1
echo "SECL-LIST end" >/dev/ttyS1
echo "SECL-END $?"
/bin/busybox poweroff -f
"""


@dataclass(frozen=True, slots=True)
class KernelLists:
    """A guest kernel's lists, as read inside it: tracefs available_filter_functions, debugfs
    kprobes/blacklist and /proc/kallsyms (file name -> text)."""

    texts: dict[str, str]
    accel: str
    problem: str | None = None

    @property
    def functions(self) -> str:
        return self.texts.get("/sys/kernel/tracing/available_filter_functions", "")

    @property
    def blacklist(self) -> str:
        return self.texts.get("/sys/kernel/debug/kprobes/blacklist", "")

    @property
    def kallsyms(self) -> str:
        return self.texts.get("/proc/kallsyms", "")


def read_kernel_lists(
    qemu: str, kernel: GuestKernel, busybox: str, timeout: float = GUESTLISTS_TIMEOUT
) -> KernelLists:
    """Boot the guest kernel once and read its lists from inside it (as root, so the
    blacklist and kallsyms carry addresses): what `--kernel-functions` and
    `--kprobe-blacklist` take, for the kernel `secl verify` runs cases on."""
    with tempfile.TemporaryDirectory(prefix="secl-guest-") as tmpdir:
        tmp = Path(tmpdir)
        archive = Cpio()
        for d in ("bin", "dev", "proc", "sys", "tmp"):
            archive.directory(d)
        archive.char_device("dev/console", 5, 1)
        archive.char_device("dev/ttyS1", 4, 65)
        archive.file("init", LISTS_INIT.encode(), 0o755)
        archive.file("bin/busybox", Path(busybox).read_bytes(), 0o755)
        initrd = tmp / "initrd.gz"
        initrd.write_bytes(gzip.compress(archive.finish(), compresslevel=1))
        accel = remembered_accel(qemu) or "tcg"
        finished, _, failed = _boot(qemu, kernel, initrd, accel, tmp, timeout)
        if failed:
            accel = "tcg"
            finished, _, _ = _boot(qemu, kernel, initrd, accel, tmp, timeout)
        output = _read(tmp / "results")
    texts: dict[str, list[str]] = {}
    current = None
    complete = False
    for line in output.splitlines():
        if line.startswith("SECL-LIST "):
            current = line.removeprefix("SECL-LIST ").strip()
            complete = current == "end"
            texts.setdefault(current, [])
        elif current is not None:
            texts[current].append(line.rstrip("\r"))
    problem = None
    if finished.timed_out:
        problem = f"QEMU did not finish within {timeout:.0f} s and was killed"
    elif not complete:
        problem = f"the guest did not print its lists (QEMU exit {finished.returncode})"
    return KernelLists({k: "\n".join(v) + "\n" for k, v in texts.items() if k != "end"}, accel,
                       problem)  # fmt: skip
