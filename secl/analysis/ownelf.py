"""C loaders that read BPF objects with an ELF reader of their own instead of libbpf.

Before libbpf, a loader walked the object's ELF sections itself and loaded each program with
a raw load call, typing it from the section's name by rules of its own. The pattern is the
kernel's old `samples/bpf/bpf_load.c` (removed in Linux 5.12): do_load_bpf_file() opens the
file with libelf (elf_begin(), gelf_getehdr()), get_sec() reads each section header
(elf_getscn(), gelf_getshdr()) and its name (elf_strptr()), the legacy `maps`, `license` and
`version` sections are compared by name with strcmp(), and load_and_attach() picks the
program type with strncmp()/memcmp() on prefixes such as "kprobe/" or "socket" before
bpf_load_program(). Copies of it live on in tutorials and older projects, and some projects
grew their own (deepflow's agent/src/ebpf/user/load.c: get_prog_type() compares prefixes with
memcmp(), load_obj__progs() reads sections with gelf_getshdr()/elf_strptr(), loading with
bcc_prog_load()). Such a loader is of kind `other`: libbpf's table does not judge its names.

A file is such a loader when it does all of these (each alone is common: libbpf-tools'
trace_helpers.c reads ELF sections for symbols and probes features with bpf_prog_load()):
reads section headers (libelf calls, or its own `->e_shoff` walk), reads their names
(elf_strptr(), `->sh_name`), loads with a raw call (bpf_prog_load(), bpf_load_program(),
bcc_prog_load(), or bpf(BPF_PROG_LOAD, ...) itself), compares a string with a literal that
names a BPF section (a libbpf section prefix, `maps`, `license`), and never opens an object
through libbpf (bpf_object__open*(), a skeleton, `struct bpf_object`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache

from secl.analysis.project import Project
from secl.files import is_cpp
from secl.loaders import OTHER, LoaderUse
from secl.pairing import nearest, stem
from secl.parse.filefacts import has_body

# Every evidence value of an own loader starts so (secl.analysis.loaders tells them by it).
VALUE = "loader with its own ELF reader"

# Substrings each group needs (rarest group first): files without them are not searched.
_NAME_NEEDLES = (b"elf_strptr", b"sh_name")
_HEADER_NEEDLES = (b"getshdr", b"elf_getscn", b"elf_nextscn", b"e_shoff")
_LOAD_NEEDLES = (b"bpf_prog_load", b"bpf_load_program", b"bcc_prog_load", b"BPF_PROG_LOAD")
# Section headers read through libelf (gelf_getshdr(), elf64_getshdr(), elf_getscn(),
# elf_nextscn()) or walked by hand from the ELF header (`ehdr->e_shoff`).
_HEADER_CALLS = (b"gelf_getshdr", b"elf64_getshdr", b"elf32_getshdr", b"elf_getscn",
                 b"elf_nextscn")  # fmt: skip
# Raw loads: libbpf's bpf.c bpf_prog_load() (libbpf >= 0.7) and bpf_load_program() (before
# 1.0), bcc's libbpf.c bcc_prog_load(), samples/bpf's early libbpf.c bpf_prog_load().
_LOAD_CALLS = (b"bcc_prog_load", b"bpf_load_program", b"bpf_prog_load")
# bpf(BPF_PROG_LOAD, ...) / syscall(__NR_bpf, BPF_PROG_LOAD, ...): the command as an argument.
_SYSCALL_BEFORE = re.compile(rb"\(\s*(?:\w+\s*,\s*)?\Z")
# Opening through libbpf (libbpf.c bpf_object__open*(); the old bpf_prog_load_xattr() and the
# deprecated 4-argument bpf_prog_load(file, type, &obj, &fd) open a struct bpf_object too).
_LIBBPF_OBJECT = re.compile(
    rb"bpf_object__open|bpf_prog_load_xattr|\bstruct\s+bpf_object\b"
    rb"|\w__open(?:_and_load|_opts)?\s*\(|::open(?:_and_load)?\s*\("
)
# A string compared with a literal: strcmp() and its kin, C++ compare()/find(), `== "..."`.
_COMPARED = re.compile(
    rb"(?:\b(?:memcmp|strn?cmp|strn?casecmp|strstr|\w*prefix\w*|starts_with|compare|r?find)"
    rb"\s*\(|==\s*)[^;{}\"]{0,160}?\"([A-Za-z_][\w./+-]{0,39})\""
)


@dataclass(frozen=True, slots=True)
class OwnLoader:
    """A C or C++ file that loads BPF objects with an ELF reader of its own."""

    path: str
    at: int  # byte offset of its first raw load call (the evidence)
    call: str  # that call: `bcc_prog_load`, `bpf_load_program`, `BPF_PROG_LOAD`
    functions: frozenset[bytes]  # its functions that read or load objects, or call one that does


def detect(data: bytes) -> tuple[int, str] | None:
    """Where a C/C++ file loads with its own ELF reader: (offset of the first raw load call,
    its name), or None. A pure function of the bytes."""
    return _reads_elf(data) or _library_load(data)


# Libraries with ELF readers of their own, by the call that loads and the header it needs:
# - DPDK's lib/bpf/bpf_load_elf.c: rte_bpf_elf_load(prm, fname, sname) opens the file with
#   libelf, finds the one section named `sname` (find_elf_code(): elf_strptr() on each
#   section header) and loads its code into DPDK's own eBPF VM (rte_bpf_load()). No program
#   types: any section name is fine.
# - Linux samples/bpf/bpf_load.c (removed in 5.12), which loaders of that era built beside
#   themselves: load_bpf_file() and load_bpf_file_fixup_map(), declared in bpf_load.h, type
#   programs by prefixes of their own and read legacy `maps`. Its callers count only while
#   bpf_load.c itself is out of view (own_loaders); in view, it is the loader.
_LIBRARY_LOADS = (
    (b"rte_bpf_elf_load", b"rte_bpf_elf_load"),
    (b"load_bpf_file", b"bpf_load.h"),
    (b"load_bpf_file_fixup_map", b"bpf_load.h"),
)
_BPF_LOAD_CALLS = frozenset({"load_bpf_file", "load_bpf_file_fixup_map"})


def _library_load(data: bytes) -> tuple[int, str] | None:
    """Where a C/C++ file loads through a library's own ELF reader (_LIBRARY_LOADS): (offset
    of the first such call, its name), or None."""
    if b"rte_bpf_elf_load" not in data and b"bpf_load.h" not in data:
        return None
    calls = [(name, needed) for name, needed in _LIBRARY_LOADS if needed in data]
    hit = _first_call(data, tuple(name for name, _ in calls))
    if hit is None or _LIBBPF_OBJECT.search(data) is not None:
        return None
    return hit[0], hit[1].decode()


def _reads_elf(data: bytes) -> tuple[int, str] | None:
    if not any(n in data for n in _NAME_NEEDLES) or not any(n in data for n in _HEADER_NEEDLES):
        return None
    if not any(n in data for n in _LOAD_NEEDLES):
        return None
    if _first_call(data, _HEADER_CALLS) is None and _member(data, b"e_shoff") < 0:
        return None
    if _first_call(data, (b"elf_strptr",)) is None and _member(data, b"sh_name") < 0:
        return None
    load = _first_call(data, _LOAD_CALLS)
    syscall = _syscall_load(data)
    if load is None and syscall < 0:
        return None
    if _LIBBPF_OBJECT.search(data) is not None:
        return None
    if not any(_names_section(m.group(1)) for m in _COMPARED.finditer(data)):
        return None
    if load is None or 0 <= syscall < load[0]:
        return syscall, "BPF_PROG_LOAD"
    return load[0], load[1].decode()


def _first_call(data: bytes, names: tuple[bytes, ...]) -> tuple[int, bytes] | None:
    """The first call (or declaration) of one of `names`: the name as a whole word, then
    `(`."""
    best: tuple[int, bytes] | None = None
    for name in names:
        start = 0
        while (i := data.find(name, start)) >= 0:
            start = i + len(name)
            if i and (data[i - 1 : i].isalnum() or data[i - 1 : i] == b"_"):
                continue
            if data[start:].lstrip(b" \t")[:1] == b"(":
                if best is None or i < best[0]:
                    best = (i, name)
                break
    return best


def _member(data: bytes, field: bytes) -> int:
    """The first access of struct member `field` (`->field` or `.field`), or -1."""
    start = 0
    while (i := data.find(field, start)) >= 0:
        start = i + len(field)
        after = data[start : start + 1]
        if after.isalnum() or after == b"_":
            continue
        if data[max(0, i - 8) : i].rstrip().endswith((b"->", b".")):
            return i
    return -1


def _syscall_load(data: bytes) -> int:
    """The first BPF_PROG_LOAD passed as a call's argument, or -1."""
    start = 0
    while (i := data.find(b"BPF_PROG_LOAD", start)) >= 0:
        start = i + len(b"BPF_PROG_LOAD")
        if data[start:].lstrip()[:1] != b"," or data[i - 1 : i] == b"_":
            continue
        if _SYSCALL_BEFORE.search(data, max(0, i - 64), i) is not None:
            return i
    return -1


@cache
def _section_words() -> frozenset[str]:
    """The first words of the section names a BPF loader looks for: libbpf's program
    prefixes (`kprobe`, `xdp`, `cgroup`, `tp_btf` ...), the names libbpf 1.0 removed, and the
    legacy data sections every pre-libbpf loader read (samples/bpf/bpf_load.c
    do_load_bpf_file(): `license`, `version`, `maps`)."""
    from secl.libbpf.table import load_table

    table = load_table()
    words = {d.base.split("/")[0] for d in table.definitions}
    words |= {r.name.split("/")[0] for r in table.removed}
    return frozenset(w for w in words if w) | {"maps", "license", "version"}


def _names_section(literal: bytes) -> bool:
    """Whether a compared literal names a BPF section or its prefix (`kprobe/`, `xdp`,
    `maps`), not a file or symbol (`.text`, `[vdso]`)."""
    return literal.decode("ascii", "replace").split("/")[0] in _section_words()


# -- the project ------------------------------------------------------------------------------

_C_SUFFIXES = (".c", ".h")


def own_loaders(project: Project) -> dict[str, OwnLoader]:
    """The project's C/C++ files that load with an ELF reader of their own, by path."""
    found = project.memo.get("own-elf-loaders")
    if found is None:
        found = {}
        bpf = {s.path for s in project.sites}  # BPF code loads nothing: half a tree's bytes
        for path, data in project.files.items():
            if path in bpf or not (path.endswith(_C_SUFFIXES) or is_cpp(path)):
                continue
            if not has_body(data):  # a huge header without a function body: no loader code
                continue
            hit = detect(data)
            if hit is not None:
                found[path] = OwnLoader(path, hit[0], hit[1], _reaching(data))
        # A bpf_load.c in view is the loader its callers reach (_links): they are not.
        defined = {f for o in found.values() if o.call not in _BPF_LOAD_CALLS for f in o.functions}
        for path, own in list(found.items()):
            if own.call in _BPF_LOAD_CALLS and own.call.encode() in defined:
                del found[path]
        project.memo["own-elf-loaders"] = found
    return found  # type: ignore[return-value]


# Calls that start reading an object: libelf's elf_begin()/elf_memory(), and what detect()
# looks for.
_READS = re.compile(
    rb"\b(?:elf_begin|elf_memory|gelf_getshdr|elf64_getshdr|elf_getscn|elf_nextscn"
    rb"|bcc_prog_load|bpf_load_program|bpf_prog_load|rte_bpf_elf_load|load_bpf_file\w*)\s*\("
    rb"|\bBPF_PROG_LOAD\b"
)


def _reaching(data: bytes) -> frozenset[bytes]:
    """The file's functions whose body reads or loads an object, or calls (in the file) one
    that does: bpf_load.c's load_bpf_file() only calls do_load_bpf_file()."""
    from secl.analysis.sections import _FUNCTION_HEAD, _NOT_FUNCTIONS, _body_end

    bodies: dict[bytes, tuple[int, int]] = {}
    for m in _FUNCTION_HEAD.finditer(data):
        name = m.group(1)
        if name not in _NOT_FUNCTIONS and name not in bodies:
            bodies[name] = (m.end(), _body_end(data, m.end()))
    reached = {n for n, (s, e) in bodies.items() if _READS.search(data, s, e) is not None}
    while True:
        if not reached:
            break
        calls = re.compile(
            rb"\b(?:" + b"|".join(re.escape(n) for n in sorted(reached)) + rb")\s*\("
        )
        more = {
            n for n, (s, e) in bodies.items()
            if n not in reached and calls.search(data, s, e) is not None
        }  # fmt: skip
        if not more:
            break
        reached |= more
    return frozenset(reached - {b"main"})


@dataclass(frozen=True, slots=True)
class _Link:
    """A file that names an object an own loader loads: the loader itself, or a file that
    calls one of its functions (`load_bpf_file(filename)` after `"%s_kern.o"` of argv[0])."""

    loader: OwnLoader
    path: str  # the file naming the object
    at: int  # the call of the loader's function there (the loader's load call in itself)
    function: str | None  # that function (None: the loader names it itself)


def _links(project: Project) -> dict[str, list[_Link]]:
    """Object file names -> the own-loader links that name them, built once per run."""
    found = project.memo.get("own-elf-links")
    if found is not None:
        return found  # type: ignore[return-value]
    from secl.analysis.sections import _FUNCTION_HEAD, named_objects

    out: dict[str, list[_Link]] = {}
    loaders = own_loaders(project)
    by_function: dict[bytes, OwnLoader] = {}
    for loader in loaders.values():
        for name in loader.functions:
            by_function.setdefault(name, loader)
    calls = (
        re.compile(rb"\b(" + b"|".join(re.escape(n) for n in sorted(by_function)) + rb")\s*\(")
        if by_function
        else None
    )
    for path, data in project.files.items():
        if not (path.endswith(_C_SUFFIXES) or is_cpp(path)):
            continue
        mine = loaders.get(path)
        links: list[_Link] = []
        if mine is not None:
            links.append(_Link(mine, path, mine.at, None))
        elif calls is not None and any(n in data for n in by_function):
            own = {m.group(1) for m in _FUNCTION_HEAD.finditer(data)}
            for m in calls.finditer(data):
                name = m.group(1)
                if name not in own:
                    links.append(_Link(by_function[name], path, m.start(), name.decode()))
                    break
        if not links:
            continue
        names = named_objects(project, path, data)
        if b"_o_len" in data:
            names |= _embedded_by_xxd(data)
        for name in sorted(names):
            out.setdefault(name, []).extend(links)
    project.memo["own-elf-links"] = out
    return out


# `xxd -i DIR/x.o` writes the object as a C array named after the path it was given, every
# character but letters and digits made `_` (`dir_x_o`), and its size as `dir_x_o_len` (xxd's
# `-i` output): a loader that uses both holds the object in memory (DPDK's tests write it to
# a file for rte_bpf_elf_load()).
_XXD_LENGTH = re.compile(rb"\b([A-Za-z_]\w*)_o_len\b")


def _embedded_by_xxd(data: bytes) -> set[str]:
    """The object files the xxd-made arrays of a file may hold: the path's separators are
    lost with the other characters, so every tail of the name (`x.o`, `dir_x.o`) is one."""
    out: set[str] = set()
    for m in _XXD_LENGTH.finditer(data):
        stem = m.group(1)
        if re.search(rb"\b" + re.escape(stem) + rb"_o\b", data) is None:
            continue
        parts = stem.decode("utf-8", "replace").split("_")
        out.update("_".join(parts[i:]) + ".o" for i in range(len(parts)) if parts[i])
    return out


def own_uses(project: Project, bpf_path: str) -> list[LoaderUse]:
    """The own-ELF loaders that name the object built from `bpf_path` (`x.o`, `x.bpf.o`), as
    uses: the file naming it (a caller of the loader's function, or the loader) and the
    loader's load call. A name several sources share means the one nearest the file."""
    if not own_loaders(project):
        return []
    from secl.analysis.sections import _sources_by_name

    base = stem(bpf_path)
    shared = _sources_by_name(project)
    links = _links(project)
    out: list[LoaderUse] = []
    for name in (f"{base}.bpf.o", f"{base}.o"):
        for link in links.get(name, ()):
            if link.path == bpf_path:
                continue
            if name in shared and bpf_path not in nearest(link.path, shared[name]):
                continue
            for use in _uses_of(project, link):
                if use not in out:
                    out.append(use)
    return out


def _uses_of(project: Project, link: _Link) -> list[LoaderUse]:
    loader = link.loader
    uses = [loader_use(project, loader)]
    if link.function is not None:
        span = _line(project, link.path, link.at)
        value = f"{link.function}() of {os.path.basename(loader.path)}, a {VALUE}"
        uses.insert(0, LoaderUse(OTHER, link.path, span, value))
    return uses


def loader_use(project: Project, loader: OwnLoader, *, certain: bool = True) -> LoaderUse:
    """The use that stands for an own loader: its first raw load call."""
    language = "C++" if is_cpp(loader.path) else "C"
    value = f"{language} {VALUE} ({loader.call})"
    return LoaderUse(OTHER, loader.path, _line(project, loader.path, loader.at), value,
                     certain=certain)  # fmt: skip


def _line(project: Project, path: str, at: int):  # type: ignore[no-untyped-def]
    data = project.files[path]
    end = data.find(b"\n", at)
    return project.positions(path).span(at, len(data) if end < 0 else end)
