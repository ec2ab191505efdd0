"""What libbpf makes of the text after a section's `base/`.

libbpf parses that suffix in the auto-attach function of the matched entry (attach_kprobe(),
attach_uprobe(), attach_usdt(), attach_tp(), ... in libbpf.c), so most mistakes only show up
when a skeleton's `__attach()` runs. BTF targets (fentry/..., lsm/..., tp_btf/..., iter/...)
are resolved earlier, at load (libbpf.c: libbpf_prepare_prog_load()).

`check_suffix(match)` reproduces those parsers on the section string and reports what goes
wrong. Severity "error" means libbpf fails (at load or at attach), "warning" means it silently
does something other than what the name suggests, "info" means the text has no effect.
The `parse_*` helpers return what libbpf extracts, for callers that need the pieces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from secl.libbpf.table import SectionMatch

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Literal

    Severity = Literal["error", "warning", "info"]
    Phase = Literal["load", "attach"]

# The sscanf character classes of libbpf.c.
_KPROBE_SYMBOL = re.compile(r"[A-Za-z0-9_.]*")  # attach_kprobe(): %m[a-zA-Z0-9_.]
_KPROBE_PATTERN = re.compile(r"[A-Za-z0-9_.*?]*")  # attach_kprobe_multi(), attach_kprobe_session()
_TRACING_PATTERN = re.compile(r"[A-Za-z0-9_.*?:]*")  # attach_tracing_multi()

# libbpf.c: arch_specific_syscall_pfx() and bpf_program__attach_ksyscall() build
# "__<arch>_sys_<name>" (or "__se_sys_<name>" without syscall wrappers).
_SYSCALL_ARCHES = ("x64", "ia32", "s390x", "arm", "arm64", "mips", "riscv", "powerpc", "powerpc64")
_SYSCALL_PREFIXES = (
    *(f"__{arch}_sys_" for arch in _SYSCALL_ARCHES),
    "__se_sys_",
    "__sys_",
    "sys_",
)

# libbpf.c: btf_get_kernel_prefix_kind() prepends these to the name after the "/".
_BTF_NAME_PREFIX = {
    "BPF_TRACE_RAW_TP": "btf_trace_",
    "BPF_LSM_MAC": "bpf_lsm_",
    "BPF_LSM_CGROUP": "bpf_lsm_",
    "BPF_TRACE_ITER": "bpf_iter_",
}

# Spellings attach_tp() and attach_raw_tp() try, in their order.
_TP_PREFIXES = ("tp.s", "tp", "tracepoint.s", "tracepoint")
_RAW_TP_PREFIXES = (
    "raw_tp",
    "raw_tracepoint",
    "raw_tp.w",
    "raw_tracepoint.w",
    "raw_tp.s",
    "raw_tracepoint.s",
)

_RETPROBE_BASES = ("kretprobe", "kretprobe.single", "uretprobe", "uretprobe.s", "uretprobe.single")


@dataclass(frozen=True, slots=True)
class SuffixProblem:
    """What libbpf does wrong with one section suffix."""

    kind: str  # stable slug, e.g. "empty-suffix", "truncated-symbol"
    severity: Severity
    message: str  # one line: what libbpf does with this name
    phase: Phase  # when libbpf acts on it
    attaches_to: str | None = None  # what libbpf really uses, when that differs from the text


@dataclass(frozen=True, slots=True)
class KprobeSpec:
    """attach_kprobe(): SYMBOL[+OFFSET], read with sscanf("%m[a-zA-Z0-9_.]+%li")."""

    symbol: str  # empty when nothing valid starts the suffix
    offset: int
    ignored: str  # trailing text the parser never looked at


@dataclass(frozen=True, slots=True)
class UprobeSpec:
    """attach_uprobe() / attach_uprobe_multi(): BINARY:FUNCTION.

    Read with sscanf("%m[^/]/%m[^:]:%m[^\\n]") on the whole section name.
    """

    fields: int  # how many of the three sscanf fields were filled (1 = no binary)
    binary: str | None
    function: str | None  # after offset removal (attach_uprobe) or the glob (multi)
    offset: int  # attach_uprobe only: a clean trailing +N
    offset_text: str | None  # the "+N" that was removed


@dataclass(frozen=True, slots=True)
class UsdtSpec:
    """attach_usdt(): sscanf("usdt/%m[^:]:%m[^:]:%m[^:]")."""

    fields: int
    path: str | None
    provider: str | None
    name: str | None
    ignored: str  # text after the third field


def scan_long(text: str) -> tuple[int, int] | None:
    """scanf's %li: (value, characters used), or None when no number starts `text`.

    Leading white space is skipped, a sign is allowed, and the base follows the prefix as for
    strtol(..., 0): 0x/0X hexadecimal, a leading 0 octal, otherwise decimal.
    """
    position = len(text) - len(text.lstrip(" \t\n\v\f\r"))
    sign = 1
    if position < len(text) and text[position] in "+-":
        sign = -1 if text[position] == "-" else 1
        position += 1
    if text[position : position + 2].lower() == "0x" and _is_digit(text, position + 2, 16):
        position += 2
        base = 16
    elif text[position : position + 1] == "0":
        base = 8
    else:
        base = 10
    start = position
    while _is_digit(text, position, base):
        position += 1
    if position == start:
        return None
    return sign * int(text[start:position], base), position


def _is_digit(text: str, position: int, base: int) -> bool:
    if position >= len(text):
        return False
    return text[position].lower() in "0123456789abcdef"[:base]


def parse_kprobe(suffix: str) -> KprobeSpec:
    """libbpf.c: attach_kprobe()."""
    symbol = _KPROBE_SYMBOL.match(suffix).group(0)  # type: ignore[union-attr]
    rest = suffix[len(symbol) :]
    offset = 0
    if symbol and rest.startswith("+"):
        scanned = scan_long(rest[1:])
        if scanned is not None:
            offset, used = scanned
            rest = rest[1 + used :]
    return KprobeSpec(symbol, offset, rest)


def _split_probe(suffix: str | None) -> tuple[int, str | None, str | None]:
    """The sscanf("%m[^/]/%m[^:]:%m[^\\n]") of attach_uprobe(), given the text after "/"."""
    if suffix is None or suffix == "" or suffix.startswith(":"):
        return 1, None, None
    binary, colon, rest = suffix.partition(":")
    function = rest.split("\n", 1)[0]
    if not colon or not function:
        return 2, binary, None
    return 3, binary, function


def parse_uprobe(suffix: str | None) -> UprobeSpec:
    """libbpf.c: attach_uprobe(), including its "+OFFSET only if it runs to the end" rule."""
    fields, binary, function = _split_probe(suffix)
    if fields < 3 or function is None:
        return UprobeSpec(fields, binary, function, 0, None)
    plus = function.rfind("+")
    if plus >= 0:
        scanned = scan_long(function[plus + 1 :])
        if scanned is not None and plus + 1 + scanned[1] == len(function):
            return UprobeSpec(fields, binary, function[:plus], scanned[0], function[plus:])
    return UprobeSpec(fields, binary, function, 0, None)


def parse_uprobe_multi(suffix: str | None) -> UprobeSpec:
    """libbpf.c: attach_uprobe_multi(); the function part is a glob, never an offset."""
    fields, binary, function = _split_probe(suffix)
    return UprobeSpec(fields, binary, function, 0, None)


def _scan_field(text: str) -> tuple[str, str] | None:
    """One %m[^:] conversion: a non-empty run up to ":"; None when empty."""
    field = text.split(":", 1)[0]
    return (field, text[len(field) :]) if field else None


def parse_usdt(section: str) -> UsdtSpec:
    """libbpf.c: attach_usdt(); `section` is the whole name without "?"."""
    if not section.startswith("usdt/"):
        return UsdtSpec(0, None, None, None, "")
    values: list[str] = []
    rest = section[len("usdt/") :]
    for position in range(3):
        if position > 0:
            if not rest.startswith(":"):
                break
            rest = rest[1:]
        scanned = _scan_field(rest)
        if scanned is None:
            break
        value, rest = scanned
        values.append(value)
    padded = [*values, None, None, None]
    return UsdtSpec(len(values), padded[0], padded[1], padded[2], rest if len(values) == 3 else "")


def _match_prefix(section: str, prefixes: tuple[str, ...]) -> str | None:
    """libbpf.c: sec_name_match_prefix(): the text after "PREFIX/", "" for bare, None."""
    for prefix in prefixes:
        if not section.startswith(prefix):
            continue
        rest = section[len(prefix) :]
        if rest == "":
            return ""
        if not rest.startswith("/") or rest == "/":
            continue
        return rest[1:]
    return None


def _relative_path(binary: str | None, form: str) -> list[SuffixProblem]:
    """A path with a "/" that is not absolute: libbpf opens it relative to the working
    directory (libbpf.c: bpf_program__attach_uprobe_opts() resolves only names without "/")."""
    if not binary:
        return []
    path = binary.split("!/", 1)[0]  # ARCHIVE!/MEMBER: the archive is the file opened
    if "/" not in path or path.startswith(("/", "./", "../")):
        return []
    message = (
        f"'{path}' is a relative path, opened from the working directory; "
        f"write {form}//{path}:... for the absolute path"
    )
    return [SuffixProblem("relative-path", "warning", message, "attach")]


def _kprobe(match: SectionMatch) -> list[SuffixProblem]:
    suffix = match.suffix
    base = match.definition.base
    if suffix is None:
        return []  # bare: valid, attached by hand
    if suffix == "":
        return [
            SuffixProblem(
                "empty-suffix", "error", f"'{base}/' names no function: attach fails", "attach"
            )
        ]
    spec = parse_kprobe(suffix)
    if not spec.symbol:
        return [
            SuffixProblem(
                "invalid-symbol",
                "error",
                f"libbpf reads a function name of [A-Za-z0-9_.] and finds none in '{suffix}'",
                "attach",
            )
        ]
    if spec.offset < 0:
        return [
            SuffixProblem(
                "negative-offset",
                "error",
                f"libbpf rejects the negative offset {spec.offset} (libbpf 1.8; older releases"
                " pass it to the kernel)",
                "attach",
            )
        ]
    problems: list[SuffixProblem] = []
    if base in _RETPROBE_BASES and spec.offset != 0:
        problems.append(
            SuffixProblem(
                "offset-not-allowed",
                "error",
                f"kretprobes take no offset: libbpf refuses '+{suffix.split('+', 1)[1]}'",
                "attach",
            )
        )
    if spec.ignored:
        real = spec.symbol if spec.offset == 0 else f"{spec.symbol}+{spec.offset:#x}"
        problems.append(
            SuffixProblem(
                "truncated-symbol",
                "warning",
                f"libbpf stops reading at '{spec.ignored[0]}' and probes '{real}', "
                f"ignoring '{spec.ignored}'",
                "attach",
                attaches_to=real,
            )
        )
    return problems


def _ksyscall(match: SectionMatch) -> list[SuffixProblem]:
    suffix = match.suffix
    base = match.definition.base
    if suffix is None:
        return []
    if suffix == "":
        return [
            SuffixProblem(
                "empty-suffix",
                "error",
                f"'{base}/' names no syscall: libbpf probes the bare wrapper prefix"
                " ('__x64_sys_' on x86-64), which does not exist",
                "attach",
            )
        ]
    for prefix in _SYSCALL_PREFIXES:
        if suffix.startswith(prefix):
            plain = suffix[len(prefix) :]
            return [
                SuffixProblem(
                    "redundant-prefix",
                    "error",
                    f"libbpf adds the syscall wrapper prefix itself and would probe "
                    f"'__x64_sys_{suffix}' on x86-64; write {base}/{plain}",
                    "attach",
                    attaches_to=f"__x64_sys_{suffix}",
                )
            ]
    return []


def _no_binary(base: str, suffix: str | None) -> list[SuffixProblem]:
    """`uprobe` / `uprobe/` / `uprobe/:f`: the sscanf in attach_uprobe() and
    attach_uprobe_multi() fills no binary, and auto-attach skips the program silently."""
    if suffix is None:
        return []
    what = "no binary" if suffix == "" else "an empty binary path"
    kind = "empty-suffix" if suffix == "" else "empty-binary"
    message = f"libbpf reads {what} and silently skips auto-attach of '{base}/{suffix}'"
    return [SuffixProblem(kind, "warning", message, "attach")]


def _uprobe(match: SectionMatch) -> list[SuffixProblem]:
    base = match.definition.base
    suffix = match.suffix
    spec = parse_uprobe(suffix)
    if spec.fields == 1:
        return _no_binary(base, suffix)
    if spec.fields == 2:
        return [
            SuffixProblem(
                "missing-function",
                "error",
                f"'{spec.binary}' has no ':function[+offset]': libbpf refuses to attach",
                "attach",
            )
        ]
    problems = _relative_path(spec.binary, base)
    if spec.offset < 0:
        problems.append(
            SuffixProblem(
                "negative-offset",
                "warning",
                f"libbpf adds the offset {spec.offset} to the address of '{spec.function}', "
                "probing before the function",
                "attach",
            )
        )
    if base in _RETPROBE_BASES and spec.offset != 0:
        problems.append(
            SuffixProblem(
                "offset-not-allowed",
                "error",
                f"uretprobes take no offset: libbpf refuses '{spec.offset_text}'",
                "attach",
            )
        )
    if spec.offset_text is None and spec.function is not None and "+" in spec.function:
        problems.append(
            SuffixProblem(
                "offset-not-parsed",
                "warning",
                f"'{spec.function[spec.function.rfind('+') :]}' is not a whole number, so libbpf"
                f" looks for a symbol literally named '{spec.function}'",
                "attach",
                attaches_to=spec.function,
            )
        )
    return problems


def _uprobe_multi(match: SectionMatch) -> list[SuffixProblem]:
    base = match.definition.base
    suffix = match.suffix
    spec = parse_uprobe_multi(suffix)
    if spec.fields == 1:
        return _no_binary(base, suffix)
    if spec.fields == 2:
        return [
            SuffixProblem(
                "missing-pattern",
                "error",
                f"'{spec.binary}' has no ':pattern': libbpf refuses the section at attach",
                "attach",
            )
        ]
    problems = _relative_path(spec.binary, base)
    pattern = spec.function or ""
    plus = pattern.rfind("+")
    if plus >= 0:
        scanned = scan_long(pattern[plus + 1 :])
        if scanned is not None and plus + 1 + scanned[1] == len(pattern):
            problems.append(
                SuffixProblem(
                    "offset-not-allowed",
                    "error",
                    f"{base} takes a symbol glob, not an offset: libbpf looks for a symbol "
                    f"matching '{pattern}' and finds none",
                    "attach",
                )
            )
    return problems


def _kprobe_multi(match: SectionMatch) -> list[SuffixProblem]:
    return _glob(match, _KPROBE_PATTERN, "[A-Za-z0-9_.*?]")


def _tracing_multi(match: SectionMatch) -> list[SuffixProblem]:
    return _glob(match, _TRACING_PATTERN, "[A-Za-z0-9_.*?:]")


def _glob(match: SectionMatch, allowed: re.Pattern[str], described: str) -> list[SuffixProblem]:
    suffix = match.suffix
    base = match.definition.base
    if suffix is None:
        return []
    if suffix == "":
        return [
            SuffixProblem(
                "empty-suffix", "error", f"'{base}/' has no pattern: attach fails", "attach"
            )
        ]
    pattern = allowed.match(suffix).group(0)  # type: ignore[union-attr]
    if not pattern:
        return [
            SuffixProblem(
                "invalid-pattern",
                "error",
                f"libbpf reads a pattern of {described} and finds none in '{suffix}'",
                "attach",
            )
        ]
    ignored = suffix[len(pattern) :]
    if ignored:
        return [
            SuffixProblem(
                "truncated-symbol",
                "warning",
                f"libbpf stops reading at '{ignored[0]}' and uses the pattern '{pattern}', "
                f"ignoring '{ignored}'",
                "attach",
                attaches_to=pattern,
            )
        ]
    return []


def _usdt(match: SectionMatch) -> list[SuffixProblem]:
    base = match.definition.base
    if base != "usdt":
        # attach_usdt() only knows the literal spelling "usdt", so every usdt.s name fails.
        return [
            SuffixProblem(
                "usdt-sleepable-never-attaches",
                "error",
                f"libbpf's USDT parser only accepts 'usdt' and 'usdt/...': auto-attach of a"
                f" {base} program always fails with -EINVAL (attach it by hand)",
                "attach",
            )
        ]
    if match.suffix is None:
        return []
    if match.suffix == "":
        return [
            SuffixProblem("empty-suffix", "error", "'usdt/' names no probe: attach fails", "attach")
        ]
    spec = parse_usdt(match.section)
    if spec.fields != 3:
        return [
            SuffixProblem(
                "usdt-fields",
                "error",
                f"libbpf wants usdt/BINARY:PROVIDER:NAME and reads {spec.fields} of the three"
                " fields: attach fails",
                "attach",
            )
        ]
    problems = _relative_path(spec.path, "usdt")
    if spec.ignored:
        problems.append(
            SuffixProblem(
                "usdt-extra-field",
                "warning",
                f"libbpf reads three fields and ignores '{spec.ignored}'",
                "attach",
                attaches_to=f"{spec.path}:{spec.provider}:{spec.name}",
            )
        )
    return problems


def _tracepoint(match: SectionMatch) -> list[SuffixProblem]:
    rest = _match_prefix(match.section, _TP_PREFIXES)
    base = match.definition.base
    if rest is None:
        return [
            SuffixProblem(
                "empty-suffix", "error", f"'{base}/' names no tracepoint: attach fails", "attach"
            )
        ]
    if rest == "":
        return []
    category, slash, name = rest.partition("/")
    if not slash:
        return [
            SuffixProblem(
                "tracepoint-category-missing",
                "error",
                f"libbpf needs {base}/CATEGORY/NAME; '{rest}' has no category, attach fails"
                " with -EINVAL",
                "attach",
            )
        ]
    if not category:
        return [
            SuffixProblem(
                "tracepoint-category-missing",
                "error",
                f"'{rest}' has an empty category: the tracepoint is not found at attach",
                "attach",
            )
        ]
    if not name:
        return [
            SuffixProblem(
                "tracepoint-name-missing",
                "error",
                f"'{rest}' has an empty event name: attach fails",
                "attach",
            )
        ]
    if "/" in name:
        return [
            SuffixProblem(
                "tracepoint-extra-component",
                "error",
                f"libbpf looks for the event '{name}' in category '{category}', which cannot"
                " exist: attach fails",
                "attach",
            )
        ]
    return []


def _raw_tracepoint(match: SectionMatch) -> list[SuffixProblem]:
    rest = _match_prefix(match.section, _RAW_TP_PREFIXES)
    base = match.definition.base
    if rest is None:
        return [
            SuffixProblem(
                "empty-suffix", "error", f"'{base}/' names no tracepoint: attach fails", "attach"
            )
        ]
    if "/" in rest:
        event = rest.rsplit("/", 1)[1]
        return [
            SuffixProblem(
                "raw-tp-category",
                "error",
                f"raw tracepoints take the bare event name: libbpf passes '{rest}' to the"
                f" kernel, which fails at attach; write {base}/{event}",
                "attach",
                attaches_to=rest,
            )
        ]
    return []


def _btf_target(match: SectionMatch) -> list[SuffixProblem]:
    definition = match.definition
    base = definition.base
    suffix = match.suffix
    is_freplace = definition.prog_type == "BPF_PROG_TYPE_EXT"
    if suffix is None:
        return [
            SuffixProblem(
                "btf-target-required",
                "warning",
                f"bare '{base}' has no BTF target: the load fails unless the loader calls"
                " bpf_program__set_attach_target() first",
                "load",
            )
        ]
    problems: list[SuffixProblem] = []
    if is_freplace:
        problems.append(
            SuffixProblem(
                "btf-target-required",
                "warning",
                "freplace needs the target program: the load fails unless the loader calls"
                " bpf_program__set_attach_target() with its fd",
                "load",
            )
        )
        name = suffix
    else:
        # libbpf.c: find_kernel_btf_id() reads "MODULE:NAME".
        name = suffix.split(":", 1)[1] if ":" in suffix else suffix
    problems += _btf_identifier(base, suffix, name, is_freplace)
    if name == "":
        problems.append(
            SuffixProblem(
                "empty-suffix",
                "error",
                f"'{base}/{suffix}' names no BTF target: the load fails",
                "load",
            )
        )
        return problems
    prefix = _BTF_NAME_PREFIX.get(definition.expected_attach_type or "", "")
    if prefix and name.startswith(prefix):
        problems.append(
            SuffixProblem(
                "redundant-prefix",
                "error",
                f"libbpf adds '{prefix}' itself and looks for '{prefix}{name}': the load fails;"
                f" write {base}/{name[len(prefix) :]}",
                "load",
                attaches_to=prefix + name,
            )
        )
    if "/" in name:
        kind = "raw-tp-category" if prefix == "btf_trace_" else "invalid-btf-name"
        problems.append(
            SuffixProblem(
                kind,
                "error",
                f"libbpf looks up '{prefix}{name}' in BTF, and no BTF name contains '/':"
                " the load fails",
                "load",
                attaches_to=prefix + name,
            )
        )
    return problems


# BTF names of functions, typedefs and iterators are identifiers: the kernel accepts
# [A-Za-z_.][A-Za-z0-9_.]* (kernel/bpf/btf.c: btf_name_valid_identifier() with
# __btf_name_char_ok(), which allows `.` for compiler-made names such as `foo.isra.0`);
# module names are [A-Za-z0-9_], `-` being turned into `_` by the module loader.
_IDENTIFIER = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*")
_MODULE = re.compile(r"[A-Za-z0-9_]+")


def _btf_identifier(base: str, suffix: str, name: str, is_freplace: bool) -> list[SuffixProblem]:
    """libbpf passes the suffix to a BTF lookup by name as it stands (libbpf.c:
    libbpf_prepare_prog_load() -> libbpf_find_attach_btf_id() -> find_kernel_btf_id(), which
    splits a `MODULE:` prefix off and compares the rest with btf__find_by_name_kind();
    libbpf_find_prog_btf_id() for freplace). A name no BTF type can have never matches: the
    load fails with -ESRCH (or -ENOENT)."""
    if "/" in name or name == "":
        return []  # told apart by the empty-suffix and category checks
    module = suffix.split(":", 1)[0] if ":" in suffix and not is_freplace else None
    # An empty module (`fentry/:func`) compares equal to "vmlinux" over zero characters.
    bad_module = bool(module) and not _MODULE.fullmatch(module or "")
    if _IDENTIFIER.fullmatch(name) and not bad_module:
        return []
    shown = module if bad_module else name
    allowed = "_" if bad_module else "_."
    bad = sorted({c for c in shown if not (c.isascii() and (c.isalnum() or c in allowed))})
    what = "module name" if bad_module else "BTF name"
    if bad:
        chars = " ".join(repr(c) for c in bad)
        why = f"has {chars}, which no BTF name contains"
    else:
        why = "starts with a digit"
    return [
        SuffixProblem(
            "btf-name-not-identifier",
            "error",
            f"the {what} '{shown}' in '{base}/{suffix}' {why}: libbpf's BTF lookup of it "
            "fails and the program does not load",
            "load",
            attaches_to=name,
        )
    ]


def _struct_ops(match: SectionMatch) -> list[SuffixProblem]:
    if not match.suffix:
        return []
    return [
        SuffixProblem(
            "suffix-ignored",
            "info",
            f"libbpf ignores '/{match.suffix}': the struct_ops map that refers to the program"
            " decides which member it implements",
            "load",
        )
    ]


def check_suffix(match: SectionMatch) -> list[SuffixProblem]:
    """Problems libbpf has with the suffix of a matched section name (empty when none)."""
    definition = match.definition
    attach_fn = definition.attach_fn
    if attach_fn == "attach_kprobe":
        return _kprobe(match)
    if attach_fn == "attach_ksyscall":
        return _ksyscall(match)
    if attach_fn == "attach_uprobe":
        return _uprobe(match)
    if attach_fn == "attach_uprobe_multi":
        return _uprobe_multi(match)
    if attach_fn in ("attach_kprobe_multi", "attach_kprobe_session"):
        return _kprobe_multi(match)
    if attach_fn == "attach_tracing_multi":
        return _tracing_multi(match)
    if attach_fn == "attach_usdt":
        return _usdt(match)
    if attach_fn == "attach_tp":
        return _tracepoint(match)
    if attach_fn == "attach_raw_tp":
        return _raw_tracepoint(match)
    if definition.attach_btf:
        return _btf_target(match)
    if definition.prog_type == "BPF_PROG_TYPE_STRUCT_OPS":
        return _struct_ops(match)
    return []
