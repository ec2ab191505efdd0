"""What `secl verify` needs on this machine, where it is, and the static loader build.

Every missing piece is a named `Skip` with the command that fixes it; nothing here installs
anything. The cache is `${SECL_CACHE:-~/.cache/secl}/verify`, which scripts/fetch-guest-kernel
fills with the bookworm-backports kernel and libbpf-dev (sysroot/).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

LOADER_SOURCE = Path(__file__).with_name("loader.c")
MIN_LIBBPF = (1, 4)  # bpf_program__attach_uprobe_multi, bpf_link_get_info_by_fd, attach_mode
FETCH_HINT = "run scripts/fetch-guest-kernel (from a secl checkout)"


@dataclass(frozen=True, slots=True)
class Skip:
    """A piece the runtime verifier needs and does not have."""

    what: str  # short name: "not root", "no qemu", ...
    detail: str  # why, and how to get it

    def __str__(self) -> str:
        return f"{self.what}: {self.detail}"


def cache_dir() -> Path:
    root = os.environ.get("SECL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "secl")
    return Path(root) / "verify"


@dataclass(frozen=True, slots=True)
class Sysroot:
    """Where libbpf >= 1.4 headers and libbpf.a are (a dpkg -x of libbpf-dev, or /)."""

    root: Path
    version: tuple[int, int]

    @property
    def include(self) -> Path:
        return self.root / "usr" / "include"

    @property
    def libbpf_a(self) -> Path:
        return self.root / "usr" / "lib" / "x86_64-linux-gnu" / "libbpf.a"

    def include_flags(self) -> list[str]:
        """Headers for the loader and for BPF objects: the sysroot's UAPI headers (newer than
        the system's, they know the multi link types) before the system's."""
        flags = [f"-I{self.include}"]
        multiarch = self.include / "x86_64-linux-gnu"
        if multiarch.is_dir():
            flags.append(f"-I{multiarch}")
        return flags


def libbpf_version(include: Path) -> tuple[int, int] | None:
    try:
        text = (include / "bpf" / "libbpf_version.h").read_text()
    except OSError:
        return None
    major = re.search(r"LIBBPF_MAJOR_VERSION\s+(\d+)", text)
    minor = re.search(r"LIBBPF_MINOR_VERSION\s+(\d+)", text)
    if major is None or minor is None:
        return None
    return int(major.group(1)), int(minor.group(1))


def find_sysroot() -> Sysroot | Skip:
    candidates = []
    if os.environ.get("SECL_VERIFY_SYSROOT"):
        candidates.append(Path(os.environ["SECL_VERIFY_SYSROOT"]))
    candidates += [cache_dir() / "sysroot", Path("/")]
    seen = []
    for root in candidates:
        version = libbpf_version(root / "usr" / "include")
        if version is None:
            continue
        sysroot = Sysroot(root, version)
        seen.append(f"{version[0]}.{version[1]} in {root}")
        if version >= MIN_LIBBPF and sysroot.libbpf_a.is_file():
            return sysroot
    found = f" (found {', '.join(seen)})" if seen else ""
    return Skip(
        "libbpf too old",
        f"the loader needs libbpf >= {MIN_LIBBPF[0]}.{MIN_LIBBPF[1]} headers and libbpf.a{found}; "
        f"{FETCH_HINT}, or set SECL_VERIFY_SYSROOT to an unpacked libbpf-dev",
    )


def find_compiler() -> str | Skip:
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not cc:
        return Skip("no C compiler", "the loader is built with gcc: apt-get install gcc")
    return cc


def find_clang() -> str | None:
    return shutil.which(os.environ.get("CLANG", "clang"))


def build_loader(sysroot: Sysroot, cc: str) -> Path | Skip:
    """The static loader, built on first use into the cache (keyed by its source, the libbpf
    and the compiler), so later runs cost nothing."""
    source = LOADER_SOURCE.read_bytes()
    key = hashlib.sha256()
    key.update(source)
    key.update(str(sysroot.root.resolve()).encode())
    key.update(repr(sysroot.version).encode())
    with contextlib.suppress(OSError):
        key.update(str(sysroot.libbpf_a.stat().st_mtime_ns).encode())
    key.update(cc.encode())
    target = cache_dir() / f"loader-{key.hexdigest()[:16]}" / "secl-loader"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        out = Path(tmp) / "secl-loader"
        cmd = [
            cc, "-O2", "-static", *sysroot.include_flags(), "-o", str(out), str(LOADER_SOURCE),
            str(sysroot.libbpf_a), "-lelf", "-lz",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not out.is_file():
            tail = " ".join(proc.stderr.strip().splitlines()[-3:])
            return Skip(
                "loader build failed",
                f"{' '.join(cmd[:3])} ... exited {proc.returncode}: {tail} "
                "(the static link needs libelf-dev and zlib1g-dev)",
            )
        os.replace(out, target)
    # earlier builds (another source or libbpf) are never used again; a running one keeps
    # its inode
    for old in cache_dir().glob("loader-*"):
        if old != target.parent:
            shutil.rmtree(old, ignore_errors=True)
    return target


def is_static(path: str) -> bool:
    """An ELF file without a PT_INTERP program header (runs without a dynamic loader)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                return False
            phoff = int.from_bytes(head[32:40], "little")
            phentsize = int.from_bytes(head[54:56], "little")
            phnum = int.from_bytes(head[56:58], "little")
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    for i in range(phnum):
        if int.from_bytes(table[i * phentsize : i * phentsize + 4], "little") == 3:  # PT_INTERP
            return False
    return True


def find_busybox() -> str | Skip:
    for candidate in (os.environ.get("SECL_BUSYBOX"), shutil.which("busybox"), "/bin/busybox"):
        if candidate and os.path.isfile(candidate) and is_static(candidate):
            return candidate
    return Skip(
        "no static busybox", "the guest initramfs needs one: apt-get install busybox-static"
    )


def find_qemu() -> str | Skip:
    qemu = shutil.which(os.environ.get("SECL_QEMU", "qemu-system-x86_64"))
    if qemu is None:
        return Skip("no qemu", "qemu-system-x86_64 not on PATH: apt-get install qemu-system-x86")
    return qemu


@dataclass(frozen=True, slots=True)
class GuestKernel:
    """The guest kernel image and its config, when known."""

    image: Path
    config: Path | None  # boot/config-VERSION next to the image, when there is one


def find_kernel(explicit: str | None) -> GuestKernel | Skip:
    """--kernel, else $SECL_VM_KERNEL, else the kernel scripts/fetch-guest-kernel unpacked.
    A kernel whose config is known must have KPROBES and FPROBE (kprobe_multi needs it:
    kernel/trace/bpf_trace.c builds bpf_kprobe_multi_link_attach only with CONFIG_FPROBE)."""
    if explicit:
        image = Path(explicit)
        if not image.is_file():
            return Skip("no kernel", f"--kernel {explicit}: no such file")
    elif os.environ.get("SECL_VM_KERNEL"):
        image = Path(os.environ["SECL_VM_KERNEL"])
        if not image.is_file():
            return Skip("no kernel", f"SECL_VM_KERNEL={image}: no such file")
    else:
        images = sorted((cache_dir() / "kernel" / "boot").glob("vmlinuz-*"))
        if not images:
            return Skip("no kernel", f"no guest kernel with KPROBES and FPROBE; {FETCH_HINT}")
        image = images[-1]
    version = image.name.removeprefix("vmlinuz-")
    config = image.with_name(f"config-{version}") if image.name.startswith("vmlinuz-") else None
    if config is not None and config.is_file():
        text = config.read_text(errors="replace")
        lacking = [o for o in ("CONFIG_KPROBES", "CONFIG_FPROBE") if f"\n{o}=y" not in text]
        if lacking:
            return Skip("kernel lacks features", f"{image} has no {', '.join(lacking)}=y")
    else:
        config = None
    return GuestKernel(image, config)


@dataclass(frozen=True, slots=True)
class HostSupport:
    """Which probe types the running kernel can attach, as root, with their multi links."""

    root: bool
    kprobe: bool
    uprobe: bool
    kprobe_multi: bool
    uprobe_multi: bool

    def supports(self, group: str) -> bool:
        if group == "kprobe":
            return self.kprobe and self.kprobe_multi
        return self.uprobe and self.uprobe_multi

    def why_not(self, group: str) -> str:
        if group == "kprobe":
            if not self.kprobe:
                return (
                    "no kprobe PMU (/sys/bus/event_source/devices/kprobe): kernel without KPROBES"
                )
            return "kernel without FPROBE (no kprobe_multi link)"
        if not self.uprobe:
            return "no uprobe PMU (/sys/bus/event_source/devices/uprobe)"
        return "kernel without the uprobe_multi link (Linux < 6.6)"


def host_support() -> HostSupport:
    pmus = Path("/sys/bus/event_source/devices")
    symbols = _kallsyms_names({"register_fprobe_ips", "bpf_uprobe_multi_link_attach"})
    return HostSupport(
        root=os.geteuid() == 0,
        kprobe=(pmus / "kprobe").is_dir(),
        uprobe=(pmus / "uprobe").is_dir(),
        # register_fprobe_ips exists only with CONFIG_FPROBE (kernel/trace/fprobe.c), which
        # bpf_kprobe_multi_link_attach needs; bpf_uprobe_multi_link_attach came with 6.6.
        kprobe_multi="register_fprobe_ips" in symbols,
        uprobe_multi="bpf_uprobe_multi_link_attach" in symbols,
    )


def _kallsyms_names(wanted: set[str]) -> set[str]:
    found: set[str] = set()
    try:
        with open("/proc/kallsyms", "rb") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    name = parts[2].decode(errors="replace")
                    if name in wanted:
                        found.add(name)
                        if found == wanted:
                            break
    except OSError:
        pass
    return found
