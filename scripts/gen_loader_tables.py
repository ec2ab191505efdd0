#!/usr/bin/env python3
"""Generate secl's section models of cilium/ebpf and aya from the libraries' own sources.

    python scripts/gen_loader_tables.py cilium-ebpf --git PATH/TO/ebpf.git RELEASE...
    python scripts/gen_loader_tables.py aya --checkout PATH/TO/aya RELEASE

The committed tables come from every release tag of github.com/cilium/ebpf from v0.13.0 (the
first with the generated table and matchSectionName) on, and of github.com/aya-rs/aya from
0.12.0 (the first with aya-obj's parser in this shape) on:

    ... cilium-ebpf --git ebpf.git v0.13.0 v0.13.1 v0.13.2 v0.14.0 v0.15.0 v0.16.0 v0.17.0 \
        v0.17.1 v0.17.2 v0.17.3 v0.18.0 v0.19.0 v0.20.0 v0.21.0 v0.22.0
    ... aya --git aya.git 0.12.0 0.13.0 0.13.1 0.14.0

With `--git` each release is read at its tag (`vX.Y.Z` for cilium/ebpf, `aya-vX.Y.Z` for
aya) with `git show`; with `--checkout` one release is read from a work tree. The newest
release given is the one the model is pinned to; the older ones only date the entries
(`since`, `until`), so that a project pinned to an older release is judged by that release's
table. The output (rules/loaders/<loader>.json) is deterministic: sorted keys, one entry per
line.

What is read, and why (the model in secl/loaders/models.py depends on every point):

cilium/ebpf
  * elf_sections.go `elfSectionDefs`: the table, generated there from libbpf's section_defs by
    internal/cmd/gensections.awk, in match order.
  * elf_reader.go `init()` (v0.13.0 to v0.20.0): compatibility entries prepended to the table
    (`xdp_devmap/`, `seccomp`, ...); v0.21.0 dropped them.
  * elf_reader.go `getProgType`: strips one leading `?` (strings.TrimPrefix; the program is
    still loaded, `?` only means "optional" to libbpf), the first matching entry wins, no match
    gives UnspecifiedProgram. `matchSectionName`: `X+` matches when the text before the first
    `/` is `X`; `X/` also needs the `/`; every other entry is a *prefix* match
    (strings.HasPrefix), so `socket1` is a socket filter and `xdp_foo` an XDP program.
  * elf_reader.go `LoadCollectionSpecFromReader`: sections named `license*`, `version*` and
    `maps*` (legacy `struct bpf_map_def` maps, still read), `.maps` and the data sections are
    classified before any program section, so a function there is never a program.
  * collection.go `NewCollectionWithOptions` skips UnspecifiedProgram programs;
    `(*collectionLoader).loadProgram`, which `CollectionSpec.LoadAndAssign` calls for every
    program field of the struct it is given, fails with "program type is unspecified".
aya
  * aya-obj/src/obj.rs `impl FromStr for ProgramSection`: splits the name at `/`, compares the
    first piece exactly (no `?`, no prefixes); `sk_skb`, `cgroup_skb` and `cgroup` need one of
    a fixed set of second pieces, `xdp`, `xdp.frags` and `sk_reuseport` allow none or one of a
    fixed set, every other kind ignores the rest. An error fails `Object::parse` and with it
    `EbpfLoader::load` (aya/src/bpf.rs) for the whole object.
  * aya-obj/src/obj.rs `EbpfSectionKind::from_name`: the name prefixes read as data (license,
    version, legacy `maps`, `.maps`, `.text`, `.bss`, `.data`, `.rodata`) before an executable
    section becomes a program section.

The generator refuses a source whose matching code no longer has the shape described above
(see FINGERPRINTS): then the semantics must be read again before the table is trusted.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = "secl-loader-table/1"
HERE = Path(__file__).resolve().parent
OUTPUT_DIR = HERE.parent / "rules" / "loaders"

CILIUM = "cilium-ebpf"
AYA = "aya"

# File paths inside each library's repository.
CILIUM_FILES = {
    "sections": "elf_sections.go",
    "reader": "elf_reader.go",
    "collection": "collection.go",
    "struct_ops": "struct_ops.go",  # absent before v0.21.0
}
AYA_FILES = {"obj": "aya-obj/src/obj.rs", "loader": "aya/src/bpf.rs"}
OPTIONAL_FILES = {"struct_ops"}


class GeneratorError(Exception):
    """The input does not look like the library's source, or its matching code changed."""


# -- small helpers ---------------------------------------------------------------------------


def release_key(text: str) -> tuple[int, int, int]:
    """(major, minor, patch) of "v0.22.0" or "0.14.0"."""
    found = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", text.strip())
    if found is None:
        raise GeneratorError(f"not a release number: {text!r}")
    return int(found.group(1)), int(found.group(2)), int(found.group(3))


_GO_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)


def strip_comments(source: str) -> str:
    """Go and Rust comments removed (the sources' comments quote section names)."""
    return _GO_COMMENT.sub(" ", source)


def function_body(source: str, header: str) -> str:
    """The text inside the braces of the first function or block whose header (a regular
    expression ending with its opening brace) matches."""
    found = re.search(header, source)
    if found is None or not found.group(0).endswith("{"):
        raise GeneratorError(f"no {header!r} in the source")
    return _balanced(source, found.end() - 1)


def _balanced(source: str, open_at: int) -> str:
    """The text inside the brace at `open_at` and its partner."""
    depth = 0
    for position in range(open_at, len(source)):
        char = source[position]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return source[open_at + 1 : position]
    raise GeneratorError("unbalanced braces")


def depths(text: str) -> list[int]:
    """Bracket depth ({, (, [) before every character of `text`."""
    result: list[int] = []
    depth = 0
    for char in text:
        result.append(depth)
        if char in "{([":
            depth += 1
        elif char in "})]":
            depth -= 1
    return result


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A piece of matching code the model relies on; its absence stops the generator."""

    file: str  # key in CILIUM_FILES / AYA_FILES
    pattern: str  # regular expression, searched in the file without comments
    meaning: str


FINGERPRINTS: dict[str, tuple[Fingerprint, ...]] = {
    CILIUM: (
        Fingerprint("reader", r'sectionName\s*=\s*strings\.TrimPrefix\(sectionName,\s*"\?"\)',
                    "getProgType strips one leading `?`"),
        Fingerprint("reader", r"for\s+_,\s*t\s*:=\s*range\s+elfSectionDefs\s*\{",
                    "getProgType walks elfSectionDefs in order"),
        Fingerprint("reader", r"return\s+UnspecifiedProgram,\s*AttachNone",
                    "getProgType gives UnspecifiedProgram when nothing matches"),
        Fingerprint("reader", r'have,\s*extra,\s*found\s*:=\s*strings\.Cut\(sectionName,\s*"/"\)',
                    "matchSectionName cuts at the first `/`"),
        Fingerprint("reader", r'want\s*:=\s*strings\.TrimRight\(pattern,\s*"\+/"\)',
                    "matchSectionName drops the trailing `+` or `/` of the pattern"),
        Fingerprint("reader", r'strings\.HasSuffix\(pattern,\s*"/"\)\s*\{\s*[^}]*?'
                    r"return\s+extra,\s*have\s*==\s*want\s*&&\s*found",
                    "`X/` needs the first piece to be X and a `/`"),
        Fingerprint("reader", r'strings\.HasSuffix\(pattern,\s*"\+"\)\s*\{\s*[^}]*?'
                    r"return\s+extra,\s*have\s*==\s*want\s*\}",
                    "`X+` needs the first piece to be X"),
        Fingerprint("reader", r'return\s+"",\s*strings\.HasPrefix\(sectionName,\s*pattern\)',
                    "every other pattern is a prefix match"),
        Fingerprint("reader", r'if\s+p\.SectionName\s*==\s*"\.text"\s*\{\s*delete\(progs,\s*n\)',
                    "loadProgramSections hides the functions of .text (sub-programs)"),
        Fingerprint("collection", r"if\s+prog\.Type\s*==\s*UnspecifiedProgram\s*\{\s*continue",
                    "NewCollectionWithOptions skips unspecified programs"),
        Fingerprint("collection", r'"cannot load program %s: program type is unspecified"',
                    "collectionLoader.loadProgram (LoadAndAssign) fails on them"),
    ),
    AYA: (
        Fingerprint("obj", r"let\s+mut\s+pieces\s*=\s*section\.split\('/'\)",
                    "ProgramSection::from_str splits the name at `/`"),
        Fingerprint("obj", r"let\s+kind\s*=\s*next\(\)\?;\s*Ok\(match\s+kind\s*\{",
                    "ProgramSection::from_str matches the first piece exactly"),
        Fingerprint("obj", r"ProgramSection::from_str\(section\.name\)\?",
                    "parse_programs fails on the first name from_str rejects"),
        Fingerprint("obj", r"SectionKind::Text\s*&&\s*section\.size\(\)\s*>\s*0",
                    "any other non-empty executable section is a program section"),
        Fingerprint("loader", r"Object::parse\(data\)\?",
                    "EbpfLoader::load fails when Object::parse fails"),
    ),
}  # fmt: skip


def check_fingerprints(loader: str, release: str, files: dict[str, str]) -> None:
    for fingerprint in FINGERPRINTS[loader]:
        text = files.get(fingerprint.file)
        if text is None or re.search(fingerprint.pattern, text) is None:
            raise GeneratorError(
                f"{loader} {release}: the source no longer shows that {fingerprint.meaning} "
                f"(looked for /{fingerprint.pattern}/ in {fingerprint.file}); read it again"
            )


# -- cilium/ebpf -----------------------------------------------------------------------------

# elf_reader.go: libbpfElfSectionFlag, the values of libbpf's enum sec_def_flags, plus
# ignoreExtra (v0.13.0 to v0.20.0: the suffix is not kept as AttachTo).
CILIUM_FLAGS = {
    "_SEC_NONE": (),
    "0": (),
    "_SEC_EXP_ATTACH_OPT": ("SEC_EXP_ATTACH_OPT",),
    "_SEC_ATTACHABLE": ("SEC_ATTACHABLE",),
    "_SEC_ATTACHABLE_OPT": ("SEC_ATTACHABLE", "SEC_EXP_ATTACH_OPT"),
    "_SEC_ATTACH_BTF": ("SEC_ATTACH_BTF",),
    "_SEC_SLEEPABLE": ("SEC_SLEEPABLE",),
    "_SEC_XDP_FRAGS": ("SEC_XDP_FRAGS",),
    "_SEC_USDT": ("SEC_USDT",),
    "ignoreExtra": ("ignoreExtra",),
}

_CILIUM_ENTRY = re.compile(
    r"""\{\s*"(?P<name>[^"\\]*)"\s*,\s*
        sys\.BPF_PROG_TYPE_(?P<ptype>[A-Z0-9_]+)\s*,\s*
        (?P<atype>0|sys\.[A-Z0-9_]+)\s*,\s*
        (?P<flags>[A-Za-z0-9_|\s]+?)\s*\}""",
    re.VERBOSE,
)
_CILIUM_TABLE = re.compile(r"var\s+elfSectionDefs\s*=\s*\[\]libbpfElfSectionDef\s*\{")
_CILIUM_PREPEND = re.compile(
    r"elfSectionDefs\s*=\s*append\(\s*\[\]libbpfElfSectionDef\s*\{(?P<body>.*?)\}\s*,\s*"
    r"elfSectionDefs\.\.\.\s*\)",
    re.DOTALL,
)
_CILIUM_CASE = re.compile(r"case\s+(?P<cond>[^\n]+?):\s*\n\s*(?P<stmt>[^\n]+)")
_GO_NAME_TEST = re.compile(
    r'strings\.HasPrefix\(\s*\w+(?:\.Name)?\s*,\s*"(?P<prefix>[^"]+)"\s*\)'
    r'|\w+(?:\.Name)?\s*==\s*"(?P<exact>[^"]+)"'
)
# LoadCollectionSpecFromReader: what each case of its section switch does with the section
# (`licenseSection = sec`, `sections[idx] = newElfSection(sec, mapSection)`, ...).
CILIUM_ROLES = {
    "licenseSection": "license",
    "versionSection": "version",
    "mapSection": "legacy-maps",
    "btfMapSection": "btf-maps",
    "dataSection": "data",
}
_CILIUM_CASE_ACTION = re.compile(r"newElfSection\(\s*sec\s*,\s*(\w+)\s*\)|(\w+)\s*=\s*sec\b")


def _cilium_entries(body: str, origin: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for found in _CILIUM_ENTRY.finditer(body):
        flags: list[str] = []
        for token in (part.strip() for part in found.group("flags").split("|")):
            if token not in CILIUM_FLAGS:
                raise GeneratorError(f"unknown flag {token!r} in {found.group('name')!r}")
            flags.extend(flag for flag in CILIUM_FLAGS[token] if flag not in flags)
        name = found.group("name")
        match = "plus" if name.endswith("+") else "slash" if name.endswith("/") else "prefix"
        prog_type = "BPF_PROG_TYPE_" + found.group("ptype")
        attach = found.group("atype")
        entries.append(
            {
                "name": name,
                "match": match,
                "base": name.rstrip("+/"),  # strings.TrimRight(pattern, "+/")
                "prog_type": prog_type,
                "attach_type": None if attach == "0" else attach.removeprefix("sys."),
                "flags": sorted(flags),
                "sleepable": "SEC_SLEEPABLE" in flags,
                "attach_btf": "SEC_ATTACH_BTF" in flags,
                "probe_family": probe_family(prog_type, name),
                "origin": origin,
            }
        )
    written = body.count('{"')
    if written != len(entries):
        raise GeneratorError(f"{origin}: found {written} entries, could parse {len(entries)}")
    return entries


def probe_family(prog_type: str, name: str) -> str | None:
    """The probe family of a BPF_PROG_TYPE_KPROBE entry, by the first letter of its name:
    every such entry is k... (kprobe, kretprobe, ksyscall, kprobe.multi, ...) or u... (uprobe,
    uretprobe, usdt, uprobe.multi, ...). None for other program types."""
    if prog_type != "BPF_PROG_TYPE_KPROBE":
        return None
    if name.startswith("k"):
        return "kprobe"
    if name.startswith("u"):
        return "uprobe"
    raise GeneratorError(f"BPF_PROG_TYPE_KPROBE entry {name!r} is neither k... nor u...")


def cilium_release(files: dict[str, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(entries in match order, data sections in classification order) of one release."""
    sections = strip_comments(files["sections"])
    reader = strip_comments(files["reader"])
    table = _CILIUM_TABLE.search(sections)
    if table is None:
        raise GeneratorError("no `var elfSectionDefs = []libbpfElfSectionDef{` in elf_sections.go")
    entries = _cilium_entries(_balanced(sections, table.end() - 1), "elf_sections.go")
    prepend = _CILIUM_PREPEND.search(reader)
    if prepend is not None:
        entries = _cilium_entries(prepend.group("body"), "elf_reader.go init()") + entries

    loader = function_body(reader, r"func\s+LoadCollectionSpecFromReader\b[^{]*\{")
    switch = loader[loader.index("switch {") :]
    switch = switch[: switch.index("elf.SHT_REL")]
    helpers = {
        name: function_body(reader, rf"func\s+{name}\s*\([^)]*\)\s*bool\s*\{{")
        for name in set(re.findall(r"\b(is\w+Section)\(sec\.Name\)", switch))
    }
    data: list[dict[str, Any]] = []
    for case in _CILIUM_CASE.finditer(switch):
        action = _CILIUM_CASE_ACTION.search(case.group("stmt"))
        role = None if action is None else CILIUM_ROLES.get(action.group(1) or action.group(2))
        if role is None:
            raise GeneratorError(f"unknown section case {case.group(0)!r}")
        condition = case.group("cond")
        for helper, helper_body in helpers.items():
            condition = condition.replace(f"{helper}(sec.Name)", helper_body)
        tests = list(_GO_NAME_TEST.finditer(condition))
        if not tests:
            raise GeneratorError(f"cannot read the section test {case.group('cond')!r}")
        for test in tests:
            exact = test.group("exact")
            data.append(
                {
                    "name": exact if exact is not None else test.group("prefix"),
                    "match": "exact" if exact is not None else "prefix",
                    "role": role,
                }
            )
    # v0.21.0 and later: `.struct_ops.link` holds struct_ops maps, `.struct_ops` is refused.
    constants = dict(
        re.findall(r'const\s+(structOps\w*Sec)\s*=\s*"([^"]+)"', files.get("struct_ops", ""))
    )
    for constant, value in constants.items():
        branch = re.search(rf"sec\.Name\s*==\s*{constant}\s*\{{(?P<then>[^}}]*)\}}", loader)
        if branch is None:
            continue
        role = "unsupported" if "ErrNotSupported" in branch.group("then") else "struct-ops"
        data.append({"name": value, "match": "exact", "role": role})
    # loadProgramSections: the functions of .text are sub-programs, never programs.
    data.append({"name": ".text", "match": "exact", "role": "text"})
    return entries, data


# -- aya -------------------------------------------------------------------------------------

# ProgramSection variant -> the program type its aya::programs type loads with
# (aya/src/programs/<file>.rs, `load()`: load_program*(BPF_PROG_TYPE_..., ...)). Variants of
# aya-obj 0.1/0.2 (aya 0.12/0.13) that 0.3 folded into one are listed too.
AYA_PROG_TYPES = {
    "KProbe": "BPF_PROG_TYPE_KPROBE",  # kprobe.rs
    "KRetProbe": "BPF_PROG_TYPE_KPROBE",  # kprobe.rs
    "UProbe": "BPF_PROG_TYPE_KPROBE",  # uprobe.rs
    "URetProbe": "BPF_PROG_TYPE_KPROBE",  # uprobe.rs
    "TracePoint": "BPF_PROG_TYPE_TRACEPOINT",  # trace_point.rs
    "SocketFilter": "BPF_PROG_TYPE_SOCKET_FILTER",  # socket_filter.rs
    "Xdp": "BPF_PROG_TYPE_XDP",  # xdp.rs
    "SkMsg": "BPF_PROG_TYPE_SK_MSG",  # sk_msg.rs
    "SkSkbStream": "BPF_PROG_TYPE_SK_SKB",  # sk_skb.rs
    "SkSkbStreamParser": "BPF_PROG_TYPE_SK_SKB",
    "SkSkbStreamVerdict": "BPF_PROG_TYPE_SK_SKB",
    "SockOps": "BPF_PROG_TYPE_SOCK_OPS",  # sock_ops.rs
    "SchedClassifier": "BPF_PROG_TYPE_SCHED_CLS",  # tc.rs
    "CgroupSkb": "BPF_PROG_TYPE_CGROUP_SKB",  # cgroup_skb.rs
    "CgroupSkbIngress": "BPF_PROG_TYPE_CGROUP_SKB",
    "CgroupSkbEgress": "BPF_PROG_TYPE_CGROUP_SKB",
    "CgroupSockAddr": "BPF_PROG_TYPE_CGROUP_SOCK_ADDR",  # cgroup_sock_addr.rs
    "CgroupSysctl": "BPF_PROG_TYPE_CGROUP_SYSCTL",  # cgroup_sysctl.rs
    "CgroupSockopt": "BPF_PROG_TYPE_CGROUP_SOCKOPT",  # cgroup_sockopt.rs
    "LircMode2": "BPF_PROG_TYPE_LIRC_MODE2",  # lirc_mode2.rs
    "PerfEvent": "BPF_PROG_TYPE_PERF_EVENT",  # perf_event.rs
    "RawTracePoint": "BPF_PROG_TYPE_RAW_TRACEPOINT",  # raw_trace_point.rs
    "Lsm": "BPF_PROG_TYPE_LSM",  # lsm.rs
    "LsmCgroup": "BPF_PROG_TYPE_LSM",  # lsm_cgroup.rs
    "BtfTracePoint": "BPF_PROG_TYPE_TRACING",  # tp_btf.rs
    "FEntry": "BPF_PROG_TYPE_TRACING",  # fentry.rs
    "FExit": "BPF_PROG_TYPE_TRACING",  # fexit.rs
    "FlowDissector": "BPF_PROG_TYPE_FLOW_DISSECTOR",  # flow_dissector.rs
    "Extension": "BPF_PROG_TYPE_EXT",  # extension.rs
    "SkLookup": "BPF_PROG_TYPE_SK_LOOKUP",  # sk_lookup.rs
    "SkReuseport": "BPF_PROG_TYPE_SK_REUSEPORT",  # sk_reuseport.rs
    "CgroupSock": "BPF_PROG_TYPE_CGROUP_SOCK",  # cgroup_sock.rs
    "CgroupDevice": "BPF_PROG_TYPE_CGROUP_DEVICE",  # cgroup_device.rs
    "Iter": "BPF_PROG_TYPE_TRACING",  # iter.rs
}
AYA_PROBE_FAMILY = {
    "KProbe": "kprobe",
    "KRetProbe": "kprobe",
    "UProbe": "uprobe",
    "URetProbe": "uprobe",
}
# EbpfSectionKind::from_name (BpfSectionKind in aya-obj 0.1) -> role.
AYA_ROLES = {
    "License": "license",
    "Version": "version",
    "Maps": "legacy-maps",
    "BtfMaps": "btf-maps",
    "Text": "text",
    "Bss": "data",
    "Data": "data",
    "Rodata": "data",
    "Btf": "btf",
    "BtfExt": "btf-ext",
}

_RUST_ARM = re.compile(r'(?m)^[ \t]*(?P<pattern>"[^"]*"(?:\s*\|\s*"[^"]*")*)\s*=>')
# Second pieces: `"x" =>` / `Some("x") =>` arms of an inner match, or `== "x" { ... }` tests.
_RUST_CHOICE_ARM = re.compile(r'(?m)^[ \t]*(?:Some\(\s*)?"(?P<choice>[^"]*)"\s*\)?\s*=>')
_RUST_CHOICE_TEST = re.compile(r'==\s*"(?P<choice>[^"]*)"\s*\{')
# A ProgramSection variant: a capitalised name, bare or after Self::, that is not itself a path.
_RUST_VARIANT = re.compile(r"(?<![:\w])(?:Self::)?(?P<name>[A-Z]\w*)\b(?!\s*::)")
_RUST_DETAIL = re.compile(r"\b(?P<path>[A-Z]\w*(?:AttachType|Kind)::\w+)")
_NOT_VARIANTS = {"Some", "None", "Ok", "Err", "Self"}


def _variant(text: str) -> str | None:
    for found in _RUST_VARIANT.finditer(text):
        if found.group("name") not in _NOT_VARIANTS:
            return found.group("name")
    return None


def _detail(text: str) -> str | None:
    found = _RUST_DETAIL.search(text)
    return found.group("path") if found else None


def _expression(text: str) -> str:
    """The Rust expression `text` starts with: up to a comma outside brackets, or to the
    bracket that closes around it."""
    depth = 0
    for position, char in enumerate(text):
        if char in "{([":
            depth += 1
        elif char in "})]":
            depth -= 1
            if depth < 0:
                return text[:position]
        elif char == "," and depth == 0:
            return text[:position]
    return text


def _arms(body: str, pattern: re.Pattern[str]) -> list[tuple[re.Match[str], str]]:
    """Each depth-0 match of `pattern` in `body` with the expression after it."""
    level = depths(body)
    starts = [found for found in pattern.finditer(body) if level[found.start()] == 0]
    arms: list[tuple[re.Match[str], str]] = []
    for position, found in enumerate(starts):
        end = starts[position + 1].start() if position + 1 < len(starts) else len(body)
        arms.append((found, _expression(body[found.end() : end])))
    return arms


def _choices(arm: str) -> list[tuple[str, str]]:
    """(second piece, the expression it gives) of an arm that reads a second piece."""
    found: list[tuple[str, str]] = []
    inner = re.search(r"match\s+[\w.()]+\s*\{", arm)
    if inner is not None:
        body = _balanced(arm, inner.end() - 1)
        found.extend((m.group("choice"), value) for m, value in _arms(body, _RUST_CHOICE_ARM))
    for test in _RUST_CHOICE_TEST.finditer(arm):
        found.append((test.group("choice"), _balanced(arm, test.end() - 1)))
    return found


def _bare_value(arm: str) -> str | None:
    """The expression an optional second piece gives when it is absent."""
    none = re.search(r"None\s*=>", arm)
    if none is not None:
        return _expression(arm[none.end() :])
    for block in re.finditer(r"\belse\s*\{", arm):
        value = _balanced(arm, block.end() - 1)
        if "Err" not in value:
            return value
    return None


def _aya_entry(
    name: str,
    kind: str,
    choice: str | None,
    second: str,
    match: str,
    variant: str | None,
    detail: str | None,
    arm: str,
) -> dict[str, Any]:
    if variant is None or variant not in AYA_PROG_TYPES:
        raise GeneratorError(f"aya section {name!r}: unknown ProgramSection variant {variant!r}")
    frags = re.search(rf'frags:\s*(?:true|kind\s*==\s*"{re.escape(kind)}")', arm) is not None
    return {
        "name": name,
        "match": match,
        "base": kind,
        "choice": choice,
        "second_piece": second,
        "variant": variant,
        "detail": detail,
        "prog_type": AYA_PROG_TYPES[variant],
        "attach_type": None,
        "flags": [],
        "sleepable": re.search(r"sleepable:\s*true", arm) is not None,
        "frags": frags,
        "attach_btf": False,  # aya takes BTF targets as arguments of load(), never the name
        "probe_family": AYA_PROBE_FAMILY.get(variant),
        "origin": "aya-obj/src/obj.rs",
    }


def aya_release(files: dict[str, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(entries in source order, data sections in classification order) of one release."""
    source = strip_comments(files["obj"])
    parser = function_body(source, r"impl\s+FromStr\s+for\s+ProgramSection\s*\{")
    match_at = re.search(r"match\s+kind\s*\{", parser)
    if match_at is None:
        raise GeneratorError("no `match kind {` in ProgramSection::from_str")
    body = _balanced(parser, match_at.end() - 1)
    entries: list[dict[str, Any]] = []
    for found, arm in _arms(body, _RUST_ARM):
        kinds = re.findall(r'"([^"]*)"', found.group("pattern"))
        outer = _variant(arm)
        # `next()?` fails without a second piece; `pieces.next()` alone lets it be absent.
        second = "required" if "next()?" in arm else "optional" if "pieces.next()" in arm else None
        for kind in kinds:
            if second is None:
                entries.append(_aya_entry(kind, kind, None, "ignored", "kind", outer, None, arm))
                continue
            if second == "optional":
                bare = _bare_value(arm)
                if bare is None:
                    raise GeneratorError(f"aya section {kind!r}: no case without a second piece")
                entries.append(
                    _aya_entry(kind, kind, None, second, "bare", outer, _detail(bare), arm)
                )
            choices = _choices(arm)
            if not choices:
                raise GeneratorError(f"aya section {kind!r}: no second pieces found")
            for choice, value in choices:
                entries.append(
                    _aya_entry(
                        f"{kind}/{choice}",
                        kind,
                        choice,
                        second,
                        "choice",
                        _variant(value) or outer,
                        _detail(value),
                        arm,
                    )
                )
    if not entries:
        raise GeneratorError("no arms in ProgramSection::from_str")

    kinds_body = function_body(source, r"fn\s+from_name\s*\(\s*name\s*:\s*&str\s*\)[^{]*\{")
    data: list[dict[str, Any]] = []
    for found in re.finditer(
        r'name\.starts_with\("(?P<prefix>[^"]+)"\)\s*\{\s*(?:Self|\w*SectionKind)::(?P<k>\w+)'
        r'|name\s*==\s*"(?P<exact>[^"]+)"\s*\{\s*(?:Self|\w*SectionKind)::(?P<k2>\w+)',
        kinds_body,
    ):
        kind = found.group("k") or found.group("k2")
        if kind not in AYA_ROLES:
            raise GeneratorError(f"unknown EbpfSectionKind::{kind}")
        exact = found.group("exact")
        data.append(
            {
                "name": exact if exact is not None else found.group("prefix"),
                "match": "exact" if exact is not None else "prefix",
                "role": AYA_ROLES[kind],
            }
        )
    if not data:
        raise GeneratorError("no names in EbpfSectionKind::from_name")
    return entries, data


# -- releases, document, output --------------------------------------------------------------

LIBRARIES: dict[str, dict[str, Any]] = {
    CILIUM: {
        "library": "cilium/ebpf",
        "files": CILIUM_FILES,
        "tag": "{release}",
        "read": cilium_release,
        "source": (
            "elf_sections.go: elfSectionDefs; elf_reader.go: init() (compatibility entries), "
            "getProgType, matchSectionName, LoadCollectionSpecFromReader, "
            "loadProgramSections; collection.go: NewCollectionWithOptions, "
            "collectionLoader.loadProgram"
        ),
        # getProgType: strings.TrimPrefix(sectionName, "?") removes one `?`; NewCollection
        # still loads the program.
        "question_mark": "strip-one",
        # getProgType: UnspecifiedProgram; NewCollection skips it, LoadAndAssign fails on it.
        "unknown": "unspecified-program",
    },
    AYA: {
        "library": "aya",
        "files": AYA_FILES,
        "tag": "aya-v{release}",
        "read": aya_release,
        "source": (
            "aya-obj/src/obj.rs: impl FromStr for ProgramSection, EbpfSectionKind::from_name, "
            "Object::parse_programs; aya/src/bpf.rs: EbpfLoader::load"
        ),
        # from_str sees the name as written: `?x` is the unknown kind `?x`.
        "question_mark": "none",
        # from_str's error fails Object::parse and EbpfLoader::load for the whole object.
        "unknown": "load-fails",
    },
}


def merge_releases(
    per_release: Sequence[tuple[str, list[dict[str, Any]]]], key: Callable[[dict], Any]
) -> list[dict[str, Any]]:
    """One list over all releases (oldest first in `per_release`), each item dated with
    `since` and `until` (None: still in the newest), in an order that every release's own
    list keeps. The newest release's fields win for an item several releases have."""
    merged: list[dict[str, Any]] = []
    newest_release = per_release[-1][0]
    for release, items in reversed(per_release):  # newest first: its order is the base
        previous: int = -1
        for item in items:
            found = next((i for i, old in enumerate(merged) if key(old) == key(item)), None)
            if found is None:
                merged.insert(previous + 1, dict(item, since=release, until=release))
                previous += 1
            else:
                if found < previous:
                    raise GeneratorError(f"{release}: {key(item)!r} moved in the table order")
                merged[found]["since"] = release
                previous = found
    for item in merged:
        if item["until"] == newest_release:
            item["until"] = None
    # Every release must see its own list, in its own order, when it filters the merge.
    for release, items in per_release:
        seen = [key(item) for item in merged if _in_release(item, release)]
        if seen != [key(item) for item in items]:
            raise GeneratorError(f"{release}: cannot merge its table with the others")
    return merged


def _in_release(item: dict[str, Any], release: str) -> bool:
    since = release_key(item["since"])
    until = None if item["until"] is None else release_key(item["until"])
    return since <= release_key(release) and (until is None or release_key(release) <= until)


def build_document(
    loader: str, sources: dict[str, dict[str, str]], commit: str | None
) -> dict[str, Any]:
    """The model of `loader` from the files of each release (release -> file key -> text)."""
    library = LIBRARIES[loader]
    releases = sorted(sources, key=release_key)
    entries_by_release: list[tuple[str, list[dict[str, Any]]]] = []
    data_by_release: list[tuple[str, list[dict[str, Any]]]] = []
    for release in releases:
        files = sources[release]
        stripped = {name: strip_comments(text) for name, text in files.items()}
        check_fingerprints(loader, release, stripped)
        entries, data = library["read"](files)
        entries_by_release.append((release, entries))
        data_by_release.append((release, data))
    entries = merge_releases(entries_by_release, key=lambda item: item["name"])
    for index, entry in enumerate(entries):
        entry["index"] = index
    data = merge_releases(data_by_release, key=lambda item: (item["name"], item["match"]))
    newest = releases[-1]
    return {
        "schema": SCHEMA,
        "loader": loader,
        "library": library["library"],
        "release": newest,
        "commit": commit,
        "releases": releases,
        "source": library["source"],
        "question_mark": library["question_mark"],
        "unknown": library["unknown"],
        "count": len(entries_by_release[-1][1]),
        "entries": entries,
        "data_sections": data,
    }


def render(document: dict[str, Any]) -> str:
    """JSON with sorted keys and one list element per line, so diffs stay readable."""
    lines = ["{"]
    keys = sorted(document)
    for position, key in enumerate(keys):
        comma = "," if position < len(keys) - 1 else ""
        value = document[key]
        if isinstance(value, list) and value and isinstance(value[0], dict):
            lines.append(f"  {json.dumps(key)}: [")
            for item_position, item in enumerate(value):
                item_comma = "," if item_position < len(value) - 1 else ""
                lines.append(f"    {json.dumps(item, sort_keys=True)}{item_comma}")
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, sort_keys=True)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def read_git(loader: str, git_dir: Path, release: str) -> tuple[dict[str, str], str]:
    """(file key -> text, commit) of one release, read at its tag with `git show`."""
    library = LIBRARIES[loader]
    tag = library["tag"].format(release=release)
    files: dict[str, str] = {}

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-C", str(git_dir), *args], capture_output=True, text=True, check=False
        )

    commit = git("rev-parse", "--verify", "--quiet", f"{tag}^{{commit}}")
    if commit.returncode != 0:
        raise GeneratorError(f"no tag {tag} in {git_dir}")
    for name, path in library["files"].items():
        shown = git("show", f"{tag}:{path}")
        if shown.returncode == 0:
            files[name] = shown.stdout
        elif name not in OPTIONAL_FILES:
            raise GeneratorError(f"{tag}: no {path}")
    return files, commit.stdout.strip()


def read_checkout(loader: str, root: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for name, path in LIBRARIES[loader]["files"].items():
        file = root / path
        if file.is_file():
            files[name] = file.read_text(encoding="utf-8", errors="replace")
        elif name not in OPTIONAL_FILES:
            raise GeneratorError(f"no {path} in {root}")
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("loader", choices=sorted(LIBRARIES))
    parser.add_argument("releases", nargs="+", help="releases to read; the newest is pinned")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--git", type=Path, help="the library's git directory (reads tags)")
    where.add_argument("--checkout", type=Path, help="a work tree of the one release given")
    parser.add_argument("-o", "--output", type=Path, help="default: rules/loaders/LOADER.json")
    args = parser.parse_args(argv)

    output = args.output or OUTPUT_DIR / f"{args.loader}.json"
    try:
        releases = sorted(set(args.releases), key=release_key)
        sources: dict[str, dict[str, str]] = {}
        commit: str | None = None
        if args.checkout is not None:
            if len(releases) != 1:
                raise GeneratorError("--checkout reads exactly one release")
            sources[releases[0]] = read_checkout(args.loader, args.checkout)
        else:
            for release in releases:
                sources[release], commit = read_git(args.loader, args.git, release)
        document = build_document(args.loader, sources, commit)
    except (OSError, GeneratorError) as error:
        print(f"gen_loader_tables: {error}", file=sys.stderr)
        return 2

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(document), encoding="utf-8")
    print(
        f"{document['library']} {document['release']}: {document['count']} entries "
        f"({len(document['entries'])} over {len(releases)} releases), "
        f"{len(document['data_sections'])} data sections; wrote {output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
