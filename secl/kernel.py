"""A kernel's own lists of what kprobes may attach to, read from files or the running kernel.

- tracefs `available_filter_functions`: the functions ftrace can trace, `name` or
  `name [module]` per line (`available_filter_functions_addrs` adds an address first). On
  kernels without CONFIG_KPROBE_EVENTS_ON_NOTRACE a classic kprobe refuses a function ftrace
  cannot trace (kernel/trace/trace_kprobe.c: within_notrace_func(), EINVAL), a missing one
  fails in register_kprobe() (ENOENT), and a multi-kprobe needs the function in ftrace's
  table (kernel/trace/ftrace.c: ftrace_lookup_symbols(), ESRCH).
- debugfs `kprobes/blacklist`: `0xSTART-0xEND<TAB>name [module]` per line, the functions
  NOKPROBE_SYMBOL() keeps classic kprobes off (kernel/kprobes.c: within_kprobe_blacklist(),
  EINVAL). The fprobe behind a multi-kprobe does not consult it.

No kernel list ships with secl: users take them from the machine the programs run on.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

HOST = "host"
TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
BLACKLIST = "/sys/kernel/debug/kprobes/blacklist"
# Suffixes the compiler gives a function's clones (GCC's IPA passes), in the order a
# did-you-mean offers them.
CLONE_SUFFIXES = (".isra.", ".constprop.", ".part.", ".cold", ".")
# bpf_program__attach_ksyscall() probes `__<arch>_sys_NAME` on kernels with syscall
# wrappers, else `__se_sys_NAME` (libbpf.c: arch_specific_syscall_pfx()).
SYSCALL_ARCHES = ("x64", "ia32", "s390x", "arm", "arm64", "mips", "riscv", "powerpc",
                  "powerpc64")  # fmt: skip
# A function listed once per address: aliases are missing from available_filter_functions.
# The one alias secl knows: a syscall without arguments, whose `__<arch>_sys_NAME` wrapper is
# an alias of `__do_sys_NAME` (arch/x86/include/asm/syscall_wrapper.h: __SYS_STUB0).
_WRAPPER = re.compile(r"__(?:" + "|".join(SYSCALL_ARCHES) + r")_sys_(\w+)\Z")


class KernelListError(Exception):
    """A kernel list that cannot be read, in one line."""


@dataclass(frozen=True, slots=True)
class FunctionList:
    """A kernel's traceable functions (available_filter_functions)."""

    origin: str  # the file, or "the running kernel"
    names: frozenset[str]
    modules: dict[str, str] = field(default_factory=dict, compare=False)  # name -> module
    _by_prefix: dict[str, list[str]] = field(default_factory=dict, compare=False, repr=False)

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def clones(self, name: str) -> list[str]:
        """`name.isra.0`, `name.constprop.0` ...: the names the compiler gave `name`'s clones,
        in CLONE_SUFFIXES order."""
        found = [n for n in self._prefixed(name) if n.startswith(name + ".")]

        def rank(n: str) -> tuple[int, str]:
            rest = n[len(name) :]
            return next(i for i, s in enumerate(CLONE_SUFFIXES) if rest.startswith(s)), n

        return sorted(found, key=rank)

    def close(self, name: str, count: int = 3) -> list[str]:
        """Names like `name` (a renamed function): clones first, then by similarity."""
        import difflib

        clones = self.clones(name)
        if clones:
            return clones[:count]
        bucket = self._prefixed(name[:3])
        return difflib.get_close_matches(name, bucket, n=count, cutoff=0.8)

    def _prefixed(self, prefix: str) -> list[str]:
        key = prefix[:3]
        if not self._by_prefix:
            index: dict[str, list[str]] = {}
            for n in self.names:
                index.setdefault(n[:3], []).append(n)
            self._by_prefix.update(index)
        return sorted(n for n in self._by_prefix.get(key, ()) if n.startswith(prefix))


@dataclass(frozen=True, slots=True)
class Blacklist:
    """A kernel's kprobe blacklist (debugfs kprobes/blacklist)."""

    origin: str
    names: frozenset[str]

    def __contains__(self, name: str) -> bool:
        return name in self.names


@dataclass(frozen=True, slots=True)
class KernelLists:
    """The lists a run judges kprobe targets by; either may be missing."""

    functions: FunctionList | None = None
    blacklist: Blacklist | None = None


def parse_functions(text: str, origin: str) -> FunctionList:
    names: set[str] = set()
    modules: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) > 1 and _is_address(parts[0]) and not parts[1].startswith("["):
            parts = parts[1:]  # available_filter_functions_addrs: ADDRESS NAME [MODULE]
        names.add(parts[0])
        if len(parts) > 1 and parts[1].startswith("["):
            modules[parts[0]] = parts[1].strip("[]")
    return FunctionList(origin, frozenset(names), modules)


def parse_blacklist(text: str, origin: str) -> Blacklist:
    names: set[str] = set()
    for line in text.splitlines():
        _, tab, rest = line.partition("\t")
        parts = (rest if tab else line).split()
        if not parts or parts[0].startswith("#"):
            continue
        name = parts[-2] if len(parts) > 1 and parts[-1].startswith("[") else parts[-1]
        if "-" in name and _is_address(name.split("-", 1)[0]):
            continue  # an address range without a name
        names.add(name)
    return Blacklist(origin, frozenset(names))


def _is_address(text: str) -> bool:
    digits = text[2:] if text.lower().startswith("0x") else text
    return bool(digits) and all(c in "0123456789abcdefABCDEF" for c in digits)


def _read_text(path: str) -> str:
    """A list file's text. tracefs files say they are empty (st_size 0), so they are read to
    the end, never by their size; only regular files are opened."""
    import stat

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise KernelListError(f"{path}: not a regular file")
        with open(path, "rb") as handle:
            data = handle.read(256 * 1024 * 1024)
    except OSError as err:
        raise KernelListError(f"{path}: {err.strerror or err}") from err
    return data.decode("utf-8", "replace")


def read_functions(where: str) -> FunctionList:
    """`where` is a file or "host" (the running kernel's tracefs)."""
    if where != HOST:
        return parse_functions(_read_text(where), where)
    problems = []
    for directory in TRACEFS:
        path = os.path.join(directory, "available_filter_functions")
        try:
            return parse_functions(_read_text(path), "the running kernel")
        except KernelListError as err:
            problems.append(str(err))
    raise KernelListError("cannot read tracefs: " + "; ".join(problems))


def read_blacklist(where: str) -> Blacklist:
    if where != HOST:
        return parse_blacklist(_read_text(where), where)
    return parse_blacklist(_read_text(BLACKLIST), "the running kernel")


def load_lists(
    functions: str | None, blacklist: str | None
) -> tuple[KernelLists | None, list[tuple[str, str]]]:
    """The lists the configuration names, and (where, one line) for each list that could
    not be read: the rules that need it are then skipped."""
    if functions is None and blacklist is None:
        return None, []
    problems = []
    found_functions = found_blacklist = None
    if functions is not None:
        try:
            found_functions = read_functions(functions)
        except KernelListError as err:
            where = "--kernel-functions host" if functions == HOST else functions
            problems.append((where, f"{_without_path(err, functions)}; kernel list rules "
                             "(SECL116, SECL302) skipped"))  # fmt: skip
    if blacklist is not None:
        try:
            found_blacklist = read_blacklist(blacklist)
        except KernelListError as err:
            where = "--kprobe-blacklist host" if blacklist == HOST else blacklist
            problems.append((where, f"{_without_path(err, blacklist)}; kprobe blacklist rules "
                             "skipped"))  # fmt: skip
    if found_functions is None and found_blacklist is None:
        return None, problems
    return KernelLists(found_functions, found_blacklist), problems


def _without_path(err: KernelListError, path: str) -> str:
    return str(err).removeprefix(path + ": ")


# -- kprobe targets --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KprobeTarget:
    """The kernel function a kprobe-family section names."""

    function: str  # as the kernel lists it (a syscall: its first wrapper name)
    route: str  # "classic" (a perf-event kprobe), "upgradable" (kprobe/kretprobe) or "multi"
    candidates: tuple[str, ...]  # any of them present counts as present (ksyscall wrappers)
    syscall: str | None = None  # ksyscall/kretsyscall: the syscall as written


def kprobe_target(section: str) -> KprobeTarget | None:
    """The literal target of a kprobe-family section, None for bare sections, patterns and
    names libbpf cannot read (the suffix rules say why)."""
    from secl.libbpf.suffix import _KPROBE_PATTERN, parse_kprobe

    name = section[1:] if section.startswith("?") else section
    base, slash, suffix = name.partition("/")
    if not slash or not suffix:
        return None
    if base in ("kprobe", "kretprobe", "kprobe.single", "kretprobe.single"):
        spec = parse_kprobe(suffix)
        if not spec.symbol:
            return None
        route = "classic" if base.endswith(".single") else "upgradable"
        return KprobeTarget(spec.symbol, route, _aliases(spec.symbol))
    if base in ("kprobe.multi", "kretprobe.multi", "kprobe.session"):
        pattern = _KPROBE_PATTERN.match(suffix).group(0)  # type: ignore[union-attr]
        if not pattern or "*" in pattern or "?" in pattern:
            return None  # a pattern matches what the kernel has: nothing to judge
        return KprobeTarget(pattern, "multi", _aliases(pattern))
    if base in ("ksyscall", "kretsyscall"):
        if not all(c.isalnum() or c == "_" for c in suffix):
            return None
        wrappers = tuple(f"__{arch}_sys_{suffix}" for arch in SYSCALL_ARCHES)
        candidates = (*wrappers, f"__se_sys_{suffix}", f"__do_sys_{suffix}")
        return KprobeTarget(wrappers[0], "classic", candidates, suffix)
    return None


def _aliases(function: str) -> tuple[str, ...]:
    """The names under which the kernel's lists may show `function`."""
    m = _WRAPPER.match(function)
    return (function, f"__do_sys_{m.group(1)}") if m else (function,)
