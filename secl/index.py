"""What pairing and the loader scan need to know about a project tree, kept between runs.

A one-file run must find the loaders of its BPF source (and the sources its loader opens)
among every C file of the project, and read the Go, Rust, Python and build files of it. The
`TreeIndex` of a project root remembers, per C file, the names pairing asks about
(`PairingNames`: skeletons used, objects named), per loader candidate file what the loader
scan found, and per directory its entries; each with the file's stat signature.

Freshness, and what it costs: a warm run stats every indexed directory (a new, renamed or
removed entry changes its directory's mtime; that directory alone is listed again) and every
indexed file (size, mtime, ctime and inode; a changed file is read again). A file modified
within RACY_NS of its last reading is read again at the next run too (its timestamp cannot
tell a later write in the same tick). In a git work tree of GIT_GREP_FROM C files or more the
C files are git's (tracked or untracked, not ignored); git is asked again when a directory,
a `.gitignore`, `.git/info/exclude` or the index `.git/index` changed (for the last alone,
only `git ls-files --cached`). git runs as secl.files runs it (no fsmonitor, hooks or
pager): nothing but a stat tells secl that a file changed.

The stats are the floor of a warm run (a kernel tree: 64,000 C files, 6,000 directories);
the rest is kept small by the stored form (`TreeIndex`): paths joined in one string and
signatures packed in one bytes object per kind, so that loading costs a few copies and
"nothing changed" is one comparison of bytes. Only a run that finds a directory or git's
state changed rebuilds the dictionaries to update (`_thaw`, `Indexer._refresh`).

What the whole-tree linking reads beyond the direct names (so that a one-file run reads the
same loaders, secl.api._Context): names made with the project's macros (skeletons pasted
by function-like macros, objects of `#define NAME "x.o"`: `Definitions`, from every file's
`defines`; a change of them rebuilds the index), objects named after the executable
(`"%s_kern.o"`, resolved with the build files that link the file: `executable_names`, kept
fresh by a stat of those build files and their directories), program references whose
skeleton is not shown, the functions and macros a file provides to loaders elsewhere, and
the loaders every run must see (own ELF readers, eBPF for Windows: `roles`).
"""

from __future__ import annotations

import operator
import os
import re
import struct
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import starmap

from secl.files import (
    SKIP_DIRS,
    SOURCE_SUFFIXES,
    Exclusion,
    FileProblem,
    git_answers,
    git_grep,
    git_sources,
    git_tracked,
    in_git_work_tree,
    link_kept,
    read,
)

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

# How loader code names a BPF source: a skeleton function (`probe__open_and_load(`, in C++
# also bpftool's static member `probe::open_and_load(`) or an object file in a string
# (`"probe.bpf.o"`, `"/usr/lib/x/probe.o"`).
SKELETON_USE = re.compile(
    rb"\b([A-Za-z_]\w*?)(?:__(?:open_and_load|open_opts|open|load|attach|detach|destroy)"
    rb"|::(?:open_and_load|open))\s*\("
)
OBJECT_NAME = re.compile(rb'["/]([\w.+-]+?)(?:\.bpf)?\.o"')
# SKELETON_USE from its tail: a regex that starts with `\b` and a name is tried at every byte
# of a file; the tail is found first and the name read back from it.
_SKELETON_TAIL = re.compile(
    rb"(?:__(?:open_and_load|open_opts|open|load|attach|detach|destroy)|::(?:open_and_load|open))"
    rb"\s*\("
)
_NAME_START = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_WORD_BYTES = _NAME_START | frozenset(b"0123456789")


def skeleton_uses(data: bytes) -> frozenset[bytes]:
    """The names of SKELETON_USE in `data` (`probe` of `probe__open_and_load(`)."""
    out = set()
    for m in _SKELETON_TAIL.finditer(data):
        end = start = m.start()
        while start and data[start - 1] in _WORD_BYTES:
            start -= 1
        while start < end and data[start] not in _NAME_START:
            start += 1  # (a name starts with a letter or `_`)
        if start < end:
            out.add(data[start:end])
    return frozenset(out)


# A section site's call, or a wrapper macro's (KPROBE_SEC(f)): a file without one is no BPF
# source (a loader that only mentions "section" in a comment or calls
# bpf_program__section_name() must not send pairing after loaders of its own).
SITE_CALL = re.compile(rb"\b\w*SEC\w*\s*\(|\b(?:section|__section|__section__)\s*\(")
# Fixed strings every match of SKELETON_USE or OBJECT_NAME contains: files without one have
# no names (git grep finds the others in one pass over a large tree).
NAME_HINTS = (b"__open", b"__load", b"__attach", b"__detach", b"__destroy", b'.o"', b"::open")

# From this many C files on, a git work tree is listed by `git ls-files` and searched by
# `git grep` instead of walked and read in Python (a kernel checkout: ~60,000 .c/.h files).
GIT_GREP_FROM = 2000
RACY_NS = 2_000_000_000
INDEX_FORMAT = 6  # 5: PairingNames beyond direct names, TreeIndex.defines; 6: libxdp role


@dataclass(frozen=True, slots=True)
class PairingNames:
    """The names by which a C file refers to BPF sources (see SKELETON_USE, OBJECT_NAME),
    and what the whole-tree linking (secl.analysis.sections._loader_index, secl.analysis.
    ownelf) reads from it besides: names it makes with the project's definitions, the
    definitions it gives other files, and whether it is a loader every run must see."""

    skeletons: frozenset[bytes] = frozenset()
    objects: frozenset[bytes] = frozenset()
    # skeletons the project's token-pasting macros open here (secl.parse.pasted)
    pasted: frozenset[bytes] = frozenset()
    # object stems named by the project's `#define NAME "x.o"` macros used here
    macro_objects: frozenset[bytes] = frozenset()
    # `"%s_kern.o"` after argv[0]: the object is the executable's name + `_kern`; these
    # tails (b"" for `"%s.o"`); the build files name the executable
    executable_objects: frozenset[bytes] = frozenset()
    # program names of `progs.NAME` references: where the skeleton's type is not shown
    # (`struct SKEL_NAME *`), the analysis links them by the program's name
    # (secl.analysis.links)
    unowned_programs: frozenset[bytes] = frozenset()
    # functions and macros loader code elsewhere may rely on: open and load wrappers,
    # an own ELF loader's functions, macros that paste skeleton names or name objects
    provides: frozenset[bytes] = frozenset()
    defines: bytes = b""  # the macro definitions of `provides` (Definitions)
    roles: int = 0  # OWN_ELF, WINDOWS: project-wide facts every run must see

    def __bool__(self) -> bool:
        return bool(
            self.skeletons or self.objects or self.pasted or self.macro_objects
            or self.executable_objects or self.unowned_programs or self.provides
            or self.roles
        )  # fmt: skip


NO_NAMES = PairingNames()

# Roles (PairingNames.roles): a loader with an ELF reader of its own (secl.analysis.ownelf)
# and a file using eBPF for Windows: each makes the whole project not all-libbpf
# (secl.analysis.loaders.all_libbpf), so a one-file run must read them as the whole tree.
OWN_ELF = 1
WINDOWS = 2
# A loader that hands libxdp a section name to pick a program from an object named at run
# time (secl.analysis.sections._libxdp_sections): any source's program of that section
# name is typed by libxdp, so a one-file run of that source must read the loader.
LIBXDP_SECTIONS = 4


def pairing_names(data: bytes) -> PairingNames:
    """The names a file uses directly (no project definitions): what `_wanted` and the
    candidates without an index test."""
    if not any(hint in data for hint in NAME_HINTS):
        return NO_NAMES
    return PairingNames(
        skeleton_uses(data),
        frozenset(m.group(1) for m in OBJECT_NAME.finditer(data)),
    )


@dataclass(frozen=True, slots=True)
class Definitions:
    """The project's macros that make names in other files: function-like macros that paste
    a skeleton's name (secl.parse.pasted), object-like ones that name an object file. Built
    from the `defines` of every indexed file (`text`, in index order)."""

    text: bytes = b""
    pasting: dict = field(default_factory=dict)  # name -> secl.parse.pasted.Macro
    objects: dict = field(default_factory=dict)  # macro name -> object stems

    @classmethod
    def of(cls, text: bytes) -> Definitions:
        if not text:
            return NO_DEFINITIONS
        from secl.parse.pasted import macros_that_open

        objects: dict[bytes, set[bytes]] = {}
        for m in OBJECT_MACRO.finditer(text):
            found = {n.group(1) for n in OBJECT_NAME.finditer(m.group(2))}
            objects.setdefault(m.group(1), set()).update(found)
        return cls(text, macros_that_open([text]), objects)


NO_DEFINITIONS = Definitions()

# secl.analysis.sections._OBJECT_MACRO: `#define RAW_OBJ "raw.o"`
OBJECT_MACRO = re.compile(rb'(?m)^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+("[^"\n]*\.o")[ \t]*$')
_FUNCTION_MACRO = re.compile(
    rb"(?m)^[ \t]*#[ \t]*define[ \t]+(\w+)\([^)]*\)(?:[^\n]*\\\r?\n)*[^\n]*"
)
# secl.analysis.sections._EXECUTABLE_OBJECT
_EXECUTABLE_OBJECT = re.compile(rb'"%s([\w.+-]*)\.o"')
_PROGRAM_REF = re.compile(rb"progs\s*(?:\.|->)\s*([A-Za-z_]\w*)")  # (\b: checked after)
# What marks a file worth reading beyond NAME_HINTS: an own ELF reader (secl.analysis.
# ownelf: it reads section names with elf_strptr(); one that walks the headers itself through
# `sh_name` and names no object is not seen in a git tree), eBPF for Windows (secl.analysis.
# loaders._WINDOWS_MARKS). libxdp's loaders open or attach (`__open`, `__attach`); program
# references (`progs.`) are read where the file is (a git tree's files without a hint, which
# neither attach nor load, are not). Each more needle costs a git grep of a kernel tree a
# tenth more.
ROLE_HINTS = (b"elf_strptr", b"ebpf_")


def file_names(data: bytes, defs: Definitions = NO_DEFINITIONS) -> PairingNames:
    """Everything pairing asks about one C file (PairingNames), with the project's
    definitions `defs`. A pure function of the bytes and `defs`."""
    direct = any(hint in data for hint in NAME_HINTS)
    pasting = defs.pasting and any(name in data for name in defs.pasting)
    if (
        not direct
        and not pasting
        and b"progs" not in data
        and not any(hint in data for hint in ROLE_HINTS)
    ):
        return NO_NAMES
    from secl.parse.filefacts import has_body

    skeletons = skeleton_uses(data) if direct else frozenset()
    objects = frozenset(m.group(1) for m in OBJECT_NAME.finditer(data)) if direct else frozenset()
    pasted: frozenset[bytes] = frozenset()
    if pasting:
        from secl.parse.pasted import pasted_skeletons

        pasted = frozenset(n.encode() for n in pasted_skeletons(data, defs.pasting))
    macro_objects = frozenset(
        o
        for macro, found in defs.objects.items()
        if macro in data and re.search(rb"\b" + re.escape(macro) + rb"\b", data)
        for o in found
    )
    executable = frozenset()
    if b"argv[0]" in data and b"%s" in data:
        executable = frozenset(
            _object_stem(m.group(1) + b".o") for m in _EXECUTABLE_OBJECT.finditer(data)
        )
    unowned = _unowned_programs(data, skeletons | pasted) if b"progs" in data else frozenset()
    provides, defines, roles = (
        _definitions(data) if has_body(data) or b"define" in data else (frozenset(), b"", 0)
    )
    names = PairingNames(
        skeletons, objects, pasted, macro_objects, executable, unowned, provides, defines, roles
    )
    return names if names else NO_NAMES


# secl.analysis.sections._LOAD_CALL, found from its literals (`load`, `xdp_`): a regex that
# starts with an alternation is tried at every byte of a file.
_LOAD_BEFORE = (b"__", b"::", b".", b"->", b"__open_and_", b"::open_and_", b"bpf_prog_")
_CALL_AFTER = re.compile(rb"\w*\s*\(")
_XDP_ATTACH = re.compile(rb"\bxdp_(?:program|multiprog)__attach\w*\s*\(")


def _load_calls(data: bytes) -> list[int]:
    """Where `data` calls a load function (secl.analysis.sections._LOAD_CALL): offsets
    within the call, in order."""
    out = []
    at = data.find(b"load")
    while at >= 0:
        after = _CALL_AFTER.match(data, at + 4)
        if after is not None:
            for before in _LOAD_BEFORE:
                start = at - len(before)
                if start < 0 or not data.startswith(before, start):
                    continue
                if before == b"bpf_prog_":
                    if data.startswith(b"_xattr", at + 4) and (
                        not start or data[start - 1] not in _WORD_BYTES
                    ):
                        out.append(at)
                        break
                    continue
                if before.startswith(b"__"):  # `NAME__load...(`: a name, not btf's
                    if not start or data[start - 1] not in _WORD_BYTES:
                        continue
                    if data[max(0, start - 3) : start] == b"btf" and (
                        start < 4 or data[start - 4] not in _WORD_BYTES
                    ):
                        continue
                elif before.startswith(b"::") and data[at + 4 : after.end()].strip(b" \t\n(")[:1]:
                    continue  # `::load(` and `::open_and_load(` only
                out.append(at)
                break
        at = data.find(b"load", at + 4)
    if b"xdp_" in data:
        out += [m.start() for m in _XDP_ATTACH.finditer(data)]
        out.sort()
    return out


def _unowned_programs(data: bytes, skeletons: frozenset[bytes]) -> frozenset[bytes]:
    """The programs of `VAR->progs.NAME` references whose VAR is not declared a pointer to
    a skeleton the file uses (`struct SKEL_NAME *skel`, a `void *`, a parameter of another
    type): the analysis may link those by the program's name alone."""
    out = set()
    owned: dict[bytes, bool] = {}
    for m in _PROGRAM_REF.finditer(data):
        at = m.start()
        if at and data[at - 1] in _WORD_BYTES:
            continue
        var = _VAR_BEFORE.search(data, max(0, at - 64), at)
        name = var.group(1) if var is not None else b""
        known = owned.get(name)
        if known is None:
            types = set(
                re.findall(rb"\bstruct\s+(\w+)\s*\*\s*" + re.escape(name) + rb"\b", data)
            ) if name else set()  # fmt: skip
            known = owned[name] = bool(types) and types <= skeletons
        if not known:
            out.add(m.group(1))
    return frozenset(out)


_VAR_BEFORE = re.compile(rb"(\w+)\s*(?:->|\.)\s*\Z")


def _object_stem(name: bytes) -> bytes:
    for suffix in (b".bpf.o", b".o"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _definitions(data: bytes) -> tuple[frozenset[bytes], bytes, int]:
    """(what the file provides, the text of its macro definitions, its roles)."""
    from secl.analysis.loaders import _windows
    from secl.analysis.ownelf import _reaching, detect
    from secl.analysis.sections import (
        _FUNCTION_HEAD,
        _LIBXDP_SECTION_OPEN,
        _LOAD_NEEDLES,
        _NOT_FUNCTIONS,
        _OPENS_OBJECT,
        _body_end,
    )

    provides: set[bytes] = set()
    texts: list[bytes] = []
    roles = 0
    if b"define" in data:
        if b"##" in data and b"__open" in data:  # secl.analysis.sections._loader_index
            from secl.parse.pasted import macros_that_open

            # Only the macros that open here are kept (a chain through a macro of another
            # file that neither pastes nor opens is not followed).
            opening = macros_that_open([data])
            provides.update(opening)
            texts += [m.group(0) for m in _FUNCTION_MACRO.finditer(data) if m.group(1) in opening]
        if b'.o"' in data:
            for m in OBJECT_MACRO.finditer(data):
                texts.append(m.group(0))
                provides.add(m.group(1))
    # secl.analysis.sections._functions_calling: the functions whose body opens or loads.
    # One pass for the calls, one for the function heads; the function of a call is the
    # last head before it (C has no nested functions).
    hits: list[int] = []
    if any(n in data for n in _OPENS_OBJECT):
        for needle in _OPENS_OBJECT:  # (_OPEN_CALL, by its literals)
            at = data.find(needle)
            while at >= 0:
                hits.append(at)
                at = data.find(needle, at + len(needle))
    if any(n in data for n in _LOAD_NEEDLES):
        hits += _load_calls(data)
    if hits:
        heads = [(m.end(), m.group(1)) for m in _FUNCTION_HEAD.finditer(data)]
        starts = [end for end, _name in heads]
        ends: dict[int, int] = {}
        for at in sorted(set(hits)):
            i = bisect_right(starts, at) - 1
            if i < 0:
                continue
            body, name = heads[i]
            if name in provides or name in _NOT_FUNCTIONS or name == b"main":
                continue  # (no other file calls `main`)
            if name.startswith((b"bpf_", b"xdp_program__")):
                continue
            if i not in ends:
                ends[i] = _body_end(data, body)
            if at < ends[i]:
                provides.add(name)
    if detect(data) is not None:
        roles |= OWN_ELF
        provides.update(_reaching(data))
    if _windows(data):
        roles |= WINDOWS
    if b"xdp_program__" in data and _LIBXDP_SECTION_OPEN.search(data) is not None:
        roles |= LIBXDP_SECTIONS
    return frozenset(provides), b"\n".join(texts), roles


# size, mtime_ns, ctime_ns, inode, packed: three objects per indexed file instead of eight
# make a kernel tree's index load in a third of the time.
Signature = bytes
_SIG = struct.Struct("<QqqQ")
_PACK = _SIG.pack
_SIG_SIZE = _SIG.size
_FIRST = operator.itemgetter(0)
_STAT_FIELDS = operator.attrgetter("st_size", "st_mtime_ns", "st_ctime_ns", "st_ino")
_MTIME = operator.attrgetter("st_mtime_ns")


def signature(st: os.stat_result, now: int) -> Signature | None:
    """None for a file written so recently that a later write could keep its timestamp."""
    if now - st.st_mtime_ns < RACY_NS or now - st.st_ctime_ns < RACY_NS:
        return None
    return _PACK(*_STAT_FIELDS(st))


@dataclass(slots=True)
class _Dir:
    mtime: int
    subdirs: tuple[str, ...]
    c_files: tuple[str, ...]
    loader_files: tuple[str, ...]
    vendored: bool  # under a vendored directory: no loader candidates of its own
    gitignore: bool = False  # holds a .gitignore (git's listing depends on it)


@dataclass(slots=True)
class _Tree:
    """The index being built or brought up to date: dictionaries to change in place."""

    root: str
    dirs: dict[str, _Dir] = field(default_factory=dict)
    # C file (relative path) -> (signature, names); for every C file pairing may consider
    c_files: dict[str, tuple[Signature | None, PairingNames]] = field(default_factory=dict)
    # loader candidate (relative path) -> (signature, what the loader scan found)
    loader_files: dict[str, tuple[Signature | None, object]] = field(default_factory=dict)
    git: bool = False
    git_state: tuple = ()  # signatures of .git/index and the ignore files (git mode)
    tracked: frozenset[str] = frozenset()  # git mode: the tracked C files
    named: set[str] = field(default_factory=set)  # the C files with pairing names
    matched_excludes: frozenset[str] = frozenset()
    defines: bytes = b""

    def path(self, rel: str) -> str:
        return self.root if rel == "." else f"{self.root}/{rel}"


# The signature of a file not to trust (unread, unreadable or racy): no stat packs to it (a
# size of 2**64 - 1 bytes).
UNTRUSTED = b"\xff" * _SIG_SIZE


@dataclass(slots=True)
class TreeIndex:
    """The index of one project tree as the results cache keeps it (see the module's
    docstring), in columns a warm run loads and checks without building an object per file:
    the relative paths of a kind joined by NUL (which no name holds) and their signatures
    packed end to end in the same order, so that one comparison of bytes tells that none
    changed. A warm run that finds a directory or git's state changed rebuilds the
    dictionaries (`_thaw`)."""

    root: str
    git: bool
    git_state: tuple
    matched_excludes: frozenset[str]
    walked: int  # C files in the listed directories (git mode needs GIT_GREP_FROM of them)
    dir_text: str  # the directories, NUL-separated
    dir_mtimes: bytes  # their mtimes (-1: listed within RACY_NS), packed `<q`
    dir_entries: bytes  # encoded tuple of (subdirs, c_files, loader_files, vendored, gitignore)
    gitignores: tuple[str, ...]  # the directories with a .gitignore (git's listing)
    c_text: str  # the C files: sorted (git mode) or in the walk's order
    c_sigs: bytes  # their signatures, UNTRUSTED for one to read again
    base_text: str  # their names (the last component), in the same order
    named: dict[str, PairingNames]  # the C files with pairing names, in c_text order
    untracked: frozenset[str]  # git mode: the C files git does not track
    loader_text: str  # the loader candidates, in the walk's order
    loader_sigs: bytes
    loaders: dict[str, object]  # what the loader scan found, where it found anything
    format: int = INDEX_FORMAT
    defines: bytes = b""  # the Definitions text the derived names were made with
    # Objects named after the executable (PairingNames.executable_objects), resolved with
    # the build files that link each file: rel -> object stems; the tails they were resolved
    # for, and the state of the build files read (executable_names)
    executables: dict = field(default_factory=dict)
    executable_tails: dict = field(default_factory=dict)
    executable_state: tuple = ()
    # The columns split into lists, once per run (not kept: secl.cache pickles init fields)
    _lists: dict[str, list[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def path(self, rel: str) -> str:
        return self.root if rel == "." else f"{self.root}/{rel}"

    @property
    def c_files(self) -> list[str]:
        """The C files pairing may consider (relative paths, in c_text order)."""
        return self._list("c_text")

    def _list(self, column: str) -> list[str]:
        found = self._lists.get(column)
        if found is None:
            found = self._lists[column] = _split(getattr(self, column))
        return found


def _split(text: str) -> list[str]:
    return text.split("\0") if text else []


def _paths(root: str, text: str) -> list[str]:
    """The absolute paths of NUL-separated relative ones (built in C: one replace, one
    split)."""
    if not text:
        return []
    prefix = f"{root}/"
    return (prefix + text.replace("\0", "\0" + prefix)).split("\0")


def _walk_order(tree: _Tree, table: str) -> list[str]:
    """The files of `table` (`c_files` or `loader_files` of the directories) in the walk's
    order: a directory's own files, then its subdirectories in name order."""
    out = []
    stack = ["."]
    reached = set()
    while stack:
        rel = stack.pop()
        entry = tree.dirs.get(rel)
        if entry is None or rel in reached:
            continue
        reached.add(rel)
        out.extend(_rel(rel, n) for n in getattr(entry, table))
        stack.extend(_rel(rel, s) for s in reversed(entry.subdirs))
    return out


def _freeze(tree: _Tree) -> TreeIndex:
    from secl.cache import encode

    dirs = list(tree.dirs.items())
    if tree.git:
        c_order = sorted(tree.c_files)
    else:
        c_order = _walk_order(tree, "c_files")
        c_order += [r for r in tree.c_files.keys() - set(c_order)]  # none: all are reached
    c_files = tree.c_files
    loader_order = [r for r in _walk_order(tree, "loader_files") if r in tree.loader_files]
    loader_order += [r for r in tree.loader_files.keys() - set(loader_order)]
    return TreeIndex(
        root=tree.root,
        git=tree.git,
        git_state=tree.git_state,
        matched_excludes=tree.matched_excludes,
        walked=sum(len(d.c_files) for _rel, d in dirs),
        dir_text="\0".join(rel for rel, _d in dirs),
        dir_mtimes=struct.pack(f"<{len(dirs)}q", *(d.mtime for _rel, d in dirs)),
        dir_entries=encode(
            tuple((d.subdirs, d.c_files, d.loader_files, d.vendored, d.gitignore) for _r, d in dirs)
        ),
        gitignores=tuple(rel for rel, d in dirs if d.gitignore),
        c_text="\0".join(c_order),
        c_sigs=b"".join(c_files[r][0] or UNTRUSTED for r in c_order),
        base_text="\0".join(r.rpartition("/")[2] for r in c_order),
        named={r: c_files[r][1] for r in c_order if r in tree.named},
        untracked=frozenset(c_files.keys() - tree.tracked) if tree.git else frozenset(),
        loader_text="\0".join(loader_order),
        loader_sigs=b"".join(tree.loader_files[r][0] or UNTRUSTED for r in loader_order),
        loaders={r: found for r in loader_order if (found := tree.loader_files[r][1]) is not None},
        defines=tree.defines,
    )


def _thaw(index: TreeIndex) -> _Tree | None:
    """The dictionaries of `index`, or None when its columns do not fit together."""
    try:
        return _thawed(index)
    except (ValueError, TypeError, struct.error):
        return None


def _thawed(index: TreeIndex) -> _Tree | None:
    from secl.cache import decode

    entries = decode(index.dir_entries)
    rels = _split(index.dir_text)
    if not isinstance(entries, tuple) or len(entries) != len(rels):
        return None
    mtimes = struct.unpack(f"<{len(rels)}q", index.dir_mtimes)
    tree = _Tree(index.root, git=index.git, git_state=index.git_state)
    tree.matched_excludes = index.matched_excludes
    tree.defines = index.defines
    tree.dirs = {rel: _Dir(m, *e) for rel, m, e in zip(rels, mtimes, entries, strict=True)}
    c_rels = _split(index.c_text)
    names = index.named
    tree.c_files = {
        rel: (None if sig == UNTRUSTED else sig, names.get(rel, NO_NAMES))
        for rel, sig in zip(c_rels, _chunks(index.c_sigs), strict=True)
    }
    tree.named = set(names)
    if index.git:
        tree.tracked = frozenset(c_rels).difference(index.untracked)
    found = index.loaders
    tree.loader_files = {
        rel: (None if sig == UNTRUSTED else sig, found.get(rel))
        for rel, sig in zip(_split(index.loader_text), _chunks(index.loader_sigs), strict=True)
    }
    return tree


def _chunks(sigs: bytes) -> list[bytes]:
    return [sigs[i : i + _SIG_SIZE] for i in range(0, len(sigs), _SIG_SIZE)]


def _rel(base: str, name: str) -> str:
    return name if base == "." else f"{base}/{name}"


class Indexer:
    """Builds or refreshes a TreeIndex. `extract_loader(path, data)` is the loader scan's
    reading of one candidate file (secl.loaders.discover.extract_one, with the path as the
    run shows it), `is_loader_candidate(name)` whether a file of that name is one."""

    def __init__(
        self,
        root: str,
        exclusion: Exclusion,
        max_size: int,
        extract_loader: Callable[[str, bytes], object],
        is_loader_candidate: Callable[[str], bool],
        vendor_dirs: frozenset[str],
        preread: dict[str, bytes] | None = None,
    ) -> None:
        import time

        self.preread = preread or {}  # absolute path -> bytes this run has read already
        self.root = root
        self.real_root = os.path.realpath(root)
        self.exclusion = exclusion
        self.max_size = max_size
        self.extract_loader = extract_loader
        self.is_candidate = is_loader_candidate
        self.vendor_dirs = vendor_dirs
        self.now = time.time_ns()
        self.changed = False
        self.defs = NO_DEFINITIONS  # the project's definitions derived names are made with
        self._kept: dict[str, bytes] | None = None

    # -- walking ------------------------------------------------------------------------------

    def _list(self, index: _Tree, rel: str, vendored: bool, seen: set) -> list[str]:
        """List directory `rel` into the index; the subdirectories to walk."""
        directory = index.path(rel)
        try:
            st = os.stat(directory)
            if (st.st_dev, st.st_ino) in seen:
                return []  # a symbolic link loop
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            index.dirs.pop(rel, None)
            return []
        subdirs, c_files, loader_files = [], [], []
        exclusion = self.exclusion
        gitignore = False
        for entry in entries:
            name = entry.name
            gitignore = gitignore or name == ".gitignore"
            relative = _rel(rel, name)
            if exclusion and exclusion(entry.path, relative):
                continue
            try:
                if entry.is_dir():
                    if name not in SKIP_DIRS and (
                        not entry.is_symlink() or link_kept(entry.path, directory, self.real_root)
                    ):
                        subdirs.append(name)
                    continue
                if name.endswith(SOURCE_SUFFIXES) and (
                    not entry.is_symlink() or os.path.exists(entry.path)
                ):
                    c_files.append(name)
                if not vendored and self.is_candidate(name) and entry.is_file():
                    loader_files.append(name)
            except OSError:
                continue
        # A directory changed within RACY_NS may change again in the same timestamp tick:
        # it is listed again next time (-1 is no mtime).
        mtime = st.st_mtime_ns if self.now - st.st_mtime_ns >= RACY_NS else -1
        index.dirs[rel] = _Dir(
            mtime, tuple(subdirs), tuple(c_files), tuple(loader_files), vendored, gitignore
        )
        return [_rel(rel, s) for s in subdirs]

    def _walk(self, index: _Tree, start: str, vendored: bool, seen: set) -> None:
        stack = [(start, vendored)]
        while stack:
            rel, vend = stack.pop()
            for sub in reversed(self._list(index, rel, vend, seen)):
                stack.append((sub, vend or os.path.basename(sub) in self.vendor_dirs))

    def _drop(self, index: _Tree, rel: str) -> None:
        """Forget directory `rel` and everything under it."""
        prefix = rel + "/"
        for table in (index.dirs, index.c_files, index.loader_files):
            for key in [k for k in table if k == rel or k.startswith(prefix)]:
                del table[key]

    # -- building and refreshing -----------------------------------------------------------

    def build(self) -> TreeIndex:
        return self._resolved(_freeze(self._build()))

    def refresh(self, index: TreeIndex) -> TreeIndex:
        """Bring `index` up to date with the tree (see the module docstring for the cost)."""
        return self._resolved(self._refreshed(index))

    def _resolved(self, index: TreeIndex) -> TreeIndex:
        """`index` with its objects named after executables resolved anew when the files
        naming them or the build files read for them changed (a stat of each)."""
        tails = {r: n.executable_objects for r, n in index.named.items() if n.executable_objects}
        if tails == index.executable_tails and _same_state(index.executable_state):
            return index
        index.executables, index.executable_state = executable_names(index.root, tails)
        index.executable_tails = tails
        self.changed = True
        return index

    def _refreshed(self, index: TreeIndex) -> TreeIndex:
        if index.format != INDEX_FORMAT or index.root != self.root:
            return _freeze(self._build())
        self.exclusion.matched.update(index.matched_excludes)
        self.defs = Definitions.of(index.defines)
        if self._same_listing(index):
            found = self._restat_columns(index)
            if not self.changed or _defines_text(found.named) == index.defines:
                return found
            return _freeze(self._build())  # a definition changed: other files' names with it
        tree = _thaw(index)
        if tree is None:
            return _freeze(self._build())
        refreshed = self._refresh(tree)
        if (
            _defines_text({r: refreshed.c_files[r][1] for r in refreshed.named})
            != refreshed.defines
        ):
            return _freeze(self._build())
        frozen = _freeze(refreshed)
        frozen.executables = index.executables  # (kept: _resolved says whether still true)
        frozen.executable_tails = index.executable_tails
        frozen.executable_state = index.executable_state
        return frozen

    def _same_listing(self, index: TreeIndex) -> bool:
        """Whether the files to index are those `index` has: no directory changed (one
        comparison of the packed mtimes), nor anything git's listing depends on."""
        prefix = f"{index.root}/"
        paths = [index.root if r == "." else prefix + r for r in _split(index.dir_text)]
        try:
            mtimes = list(map(_MTIME, map(os.stat, paths)))
        except OSError:
            return False
        if struct.pack(f"<{len(mtimes)}q", *mtimes) != index.dir_mtimes:
            return False
        if index.git:
            return index.walked >= GIT_GREP_FROM and (
                self._git_state(index.root, index.gitignores) == index.git_state
            )
        # A large tree that git can list now is built again (as `_refresh` does).
        return index.walked < GIT_GREP_FROM or not (
            in_git_work_tree(self.root) and git_answers(self.root)
        )

    def _restat_columns(self, index: TreeIndex) -> TreeIndex:
        """Read again the files of `index` whose signature changed (same listing)."""
        found = self._restat_kind(
            index, index.c_text, index.c_files, index.c_sigs, index.named, self._c_entry,
            NO_NAMES, bool,
        )  # fmt: skip
        if found is not None:
            index.c_sigs, index.named = found
        found = self._restat_kind(
            index, index.loader_text, _split(index.loader_text), index.loader_sigs,
            index.loaders, self._loader_entry, None, lambda f: f is not None,
        )  # fmt: skip
        if found is not None:
            index.loader_sigs, index.loaders = found
        return index

    def _restat_kind(
        self,
        index: TreeIndex,
        text: str,
        rels: Sequence[str],
        packed: bytes,
        facts: dict[str, Any],
        entry: Callable[[str, Any], tuple[Signature | None, Any]],
        absent: object,
        kept: Callable[[Any], bool],
    ) -> tuple[bytes, dict[str, Any]] | None:
        """One kind of file (C or loader) of `_restat_columns`: the new packed signatures and
        facts, or None when no signature changed. `absent` is what a file without facts
        stands for; `kept` says which facts the table holds."""
        changed = _changed(index.root, text, packed)
        if not changed:
            return None
        sigs = bytearray(packed)
        out = dict(facts)
        for i in changed:
            rel = rels[i]
            sig, found = entry(index.path(rel), None)
            at = slice(i * _SIG_SIZE, (i + 1) * _SIG_SIZE)
            if (sig or UNTRUSTED) == sigs[at] and found == out.get(rel, absent):
                continue
            self.changed = True
            sigs[at] = sig or UNTRUSTED
            if kept(found):
                out[rel] = found
            else:
                out.pop(rel, None)
        if out.keys() != facts.keys():
            out = {r: out[r] for r in rels if r in out}  # in the listing's order
        return bytes(sigs), out

    def _build(self) -> _Tree:
        index = _Tree(self.root)
        self._walk(index, ".", False, set())
        self.changed = True
        self.defs = NO_DEFINITIONS
        self._kept = {}  # what this build read, by path: the second look (definitions)
        walked = self._walked_c(index)
        if (
            len(walked) >= GIT_GREP_FROM
            and in_git_work_tree(self.root)
            and git_answers(self.root)
            and self._git_list(index, full=True)
        ):
            index.git = True
            self._git_names(index)
        else:
            for rel in walked:
                self._read_c(index, rel)
        kept, self._kept = self._kept, None
        # The project's definitions, then the names the files read make with them. (In a
        # git tree only the files with NAME_HINTS or ROLE_HINTS were read: a file there that
        # uses a pasting macro and calls no skeleton function itself is not seen; another
        # git grep of the tree would cost a third of this build.)
        index.defines = _defines_text({r: index.c_files[r][1] for r in index.named})
        self.defs = Definitions.of(index.defines)
        words = [*self.defs.pasting, *self.defs.objects]
        if words:
            for rel, (sig, _names) in list(index.c_files.items()):
                data = kept.get(index.path(rel))
                if data is None or not any(w in data for w in words):
                    continue
                names = file_names(data, self.defs)
                index.c_files[rel] = (sig, names)
                if names:
                    index.named.add(rel)
                else:
                    index.named.discard(rel)
        for rel in self._walked_loaders(index):
            self._read_loader(index, rel)
        index.matched_excludes = frozenset(self.exclusion.matched)
        return index

    def _refresh(self, index: _Tree) -> _Tree:
        moved = False
        seen: set = set()
        for rel in list(index.dirs):
            entry = index.dirs.get(rel)
            if entry is None:
                continue  # dropped with its parent
            try:
                mtime = os.stat(index.path(rel)).st_mtime_ns
            except OSError:
                self._drop(index, rel)
                moved = True
                continue
            if mtime == entry.mtime:
                continue
            moved = True
            old = set(entry.subdirs)
            new = set(self._list(index, rel, entry.vendored, seen))
            for sub in old - {os.path.basename(s) for s in new}:
                self._drop(index, _rel(rel, sub))
            for sub in new:
                if os.path.basename(sub) not in old:
                    self._walk(index, sub, entry.vendored or _vendor(sub, self.vendor_dirs), seen)
        if moved:
            self.changed = True
        walked_count = sum(len(d.c_files) for d in index.dirs.values())
        if index.git:
            if walked_count < GIT_GREP_FROM:
                return self._build()
            state = self._git_state(index.root, _gitignores(index))
            if moved or state[1:] != index.git_state[1:]:
                if not self._git_list(index, full=True):
                    return self._build()
            elif state != index.git_state and not self._git_list(index, full=False):
                return self._build()
        elif (
            walked_count >= GIT_GREP_FROM and in_git_work_tree(self.root) and git_answers(self.root)
        ):
            return self._build()  # a large tree git can list now: let it
        else:
            walked = self._walked_c(index)
            listed = set(walked)
            for rel in [r for r in index.c_files if r not in listed]:
                del index.c_files[rel]
                self.changed = True
            for rel in walked:
                if rel not in index.c_files:
                    index.c_files[rel] = (None, NO_NAMES)
        self._restat(index.c_files, index, self._read_c)
        loaders = set(self._walked_loaders(index))
        for rel in [r for r in index.loader_files if r not in loaders]:
            del index.loader_files[rel]
            self.changed = True
        for rel in loaders:
            if rel not in index.loader_files:
                index.loader_files[rel] = (None, None)
        self._restat(index.loader_files, index, self._read_loader)
        index.named.intersection_update(index.c_files)
        return index

    def _restat(
        self,
        table: dict[str, tuple[Signature | None, object]],
        index: _Tree,
        reread: Callable[[_Tree, str, os.stat_result | None], None],
    ) -> None:
        """Read again every file of `table` whose signature changed (or was never trusted).
        The stats and their packing run in C (map, starmap): a kernel tree has 64,000 files,
        and a loop in Python would cost a third of the stats themselves."""
        keys = list(table)
        prefix = index.root + "/"
        try:
            now = list(starmap(_PACK, map(_STAT_FIELDS, map(os.stat, [prefix + k for k in keys]))))
        except OSError:  # a file is gone (its directory changed too): one at a time
            now = None
        if now is not None:
            olds = list(map(_FIRST, table.values()))
            if now != olds:
                for rel, sig, old in zip(keys, now, olds, strict=True):
                    if sig != old:
                        reread(index, rel, None)
            return
        for rel, (old, _value) in list(table.items()):
            try:
                st = os.stat(prefix + rel)
            except OSError:
                st = None
            if st is not None and old == _PACK(*_STAT_FIELDS(st)):
                continue
            reread(index, rel, st)

    def _walked_c(self, index: _Tree) -> list[str]:
        return [_rel(rel, n) for rel, d in index.dirs.items() for n in d.c_files]

    def _walked_loaders(self, index: _Tree) -> list[str]:
        return [_rel(rel, n) for rel, d in index.dirs.items() for n in d.loader_files]

    def _c_entry(
        self, path: str, st: os.stat_result | None
    ) -> tuple[Signature | None, PairingNames]:
        """(signature, names) of a C file, read now (or given by the run)."""
        data = self.preread.get(path)
        if data is None:
            source = read(path, self.max_size)
            data = None if isinstance(source, FileProblem) else source.data
        if data is None:
            return None, NO_NAMES
        if self._kept is not None:
            self._kept[path] = data
        names = file_names(data, self.defs)
        return self._sig(path, st), names

    def _read_c(self, index: _Tree, rel: str, st: os.stat_result | None = None) -> None:
        entry = self._c_entry(index.path(rel), st)
        if index.c_files.get(rel) != entry:
            index.c_files[rel] = entry
            self.changed = True
        if entry[1]:
            index.named.add(rel)
        else:
            index.named.discard(rel)

    def _loader_entry(
        self, path: str, st: os.stat_result | None
    ) -> tuple[Signature | None, object]:
        """(signature, what the loader scan finds) of a loader candidate, read now."""
        from secl.loaders.discover import read_candidate

        sig = self._sig(path, st)
        data = read_candidate(path)
        return sig, None if data is None else self.extract_loader(path, data)

    def _read_loader(self, index: _Tree, rel: str, st: os.stat_result | None = None) -> None:
        entry = self._loader_entry(index.path(rel), st)
        if index.loader_files.get(rel) != entry:
            index.loader_files[rel] = entry
            self.changed = True

    def _sig(self, path: str, st: os.stat_result | None) -> Signature | None:
        try:
            st = st if st is not None else os.stat(path)
        except OSError:
            return None
        return signature(st, self.now)

    # -- git --------------------------------------------------------------------------------

    def _git_state(self, root: str, gitignores: Iterable[str]) -> tuple:
        """Signatures of what decides git's listing: the index, the ignore files (those of
        the directories `gitignores`)."""
        from secl.files import git_dir

        gitdir = git_dir(self.root) or ""
        config = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
        paths = [os.path.join(gitdir, "index"), os.path.join(gitdir, "info", "exclude")]
        paths.append(os.path.join(config, "git", "ignore"))
        paths += [
            os.path.join(root if r == "." else f"{root}/{r}", ".gitignore") for r in gitignores
        ]
        out = []
        for path in paths:
            try:
                st = os.stat(path)
            except OSError:
                out.append((path, None))
                continue
            if self.now - st.st_mtime_ns < RACY_NS or self.now - st.st_ctime_ns < RACY_NS:
                out.append((path, "racy", self.now))  # never equal: asked again next time
            else:
                out.append((path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
        return tuple(out)

    def _git_list(self, index: _Tree, *, full: bool) -> bool:
        """Ask git for the C files: all of them (`full`), or only the tracked ones when only
        the index changed. False when git does not answer."""
        state = self._git_state(index.root, _gitignores(index))
        tracked = git_tracked(self.root, self.exclusion)
        if tracked is None:
            return False
        cut = len(os.path.join(self.root, ""))  # git's paths are root + "/" + relative
        tracked_rel = frozenset(p[cut:] for p in tracked)
        if full:
            listing = git_sources(self.root, self.exclusion)
            if listing is None:
                return False
            listed = {p[cut:] for p in listing}
        else:
            if index.tracked - tracked_rel:
                return self._git_list(index, full=True)  # untracked now: ignored or not?
            listed = set(index.c_files) | tracked_rel
        for rel in [r for r in index.c_files if r not in listed]:
            del index.c_files[rel]
        for rel in listed:
            if rel not in index.c_files:
                index.c_files[rel] = (None, NO_NAMES)
        index.tracked = tracked_rel
        index.git_state = state
        self.changed = True
        return True

    def _git_names(self, index: _Tree) -> None:
        """Names of every listed C file on a first build: one git grep for NAME_HINTS finds
        the few files that have any; the others are stat'ed only."""
        hits = git_grep(self.root, NAME_HINTS + ROLE_HINTS, self.exclusion)
        cut = len(os.path.join(self.root, ""))
        hit = {p[cut:] for p in hits} if hits is not None else None
        rels = list(index.c_files)
        if hit is not None:
            rest = [r for r in rels if r not in hit]
            for rel, sig in zip(rest, self._sigs([index.path(r) for r in rest]), strict=True):
                index.c_files[rel] = (sig, NO_NAMES)
                index.named.discard(rel)
            rels = [r for r in rels if r in hit]
        for rel in rels:
            self._read_c(index, rel)

    def _sigs(self, paths: list[str]) -> list[Signature | None]:
        """`_sig` of many files, the stats in C (a kernel tree: 60,000 of them)."""
        try:
            stats = list(map(os.stat, paths))
        except OSError:  # one is gone: one at a time
            return [self._sig(p, None) for p in paths]
        now = self.now
        fields = list(map(_STAT_FIELDS, stats))
        return [None if now - f[1] < RACY_NS or now - f[2] < RACY_NS else _PACK(*f) for f in fields]


def named(index: TreeIndex, stems: set[bytes]) -> list[str]:
    """The C files whose stem (`probe` of `probe.bpf.c`, `probe.c`, `probe.h`) is one of
    `stems`, as absolute paths in `c_paths` order."""
    from secl.pairing import stem

    wanted = set()
    for s in stems:
        name = os.fsdecode(s)
        wanted.update((f"{name}.c", f"{name}.bpf.c", f"{name}.h"))
    # A set of the names finds the few present; their places are found in the joined text.
    present = wanted.intersection(index._list("base_text"))
    if not present:
        return []
    text = f"\0{index.base_text}\0"
    offsets = []
    for name in present:
        needle = f"\0{name}\0"
        at = text.find(needle)
        while at >= 0:
            offsets.append(at)
            at = text.find(needle, at + 1)
    rels = index.c_files
    hits = []
    place, last = 0, 0
    for at in sorted(offsets):  # the NULs before a name count the names before it
        place += text.count("\0", last, at)
        last = at
        rel = rels[place]
        if stem(rel).encode() in stems:
            hits.append(index.path(rel))
    return hits


def c_paths(index: TreeIndex) -> list[str]:
    """Every C file pairing may consider, as absolute paths: sorted as git lists them, or
    in the walk's order."""
    return _paths(index.root, index.c_text)


def users(index: TreeIndex, skeletons: set[bytes], objects: set[bytes]) -> list[str]:
    """The C files that use one of `skeletons` or name one of `objects`, in `c_paths`
    order: directly, through the project's macros, or (an object named after the
    executable, `"%s_kern.o"`) by a tail any of `objects` ends with."""
    executables = index.executables
    return [
        index.path(rel)
        for rel, names in index.named.items()
        if uses(names, skeletons, objects)
        or (rel in executables and not executables[rel].isdisjoint(objects))
    ]


def uses(names: PairingNames, skeletons: set[bytes], objects: set[bytes]) -> bool:
    """Whether a file of `names` uses one of `skeletons` or names one of `objects`."""
    return bool(
        names.skeletons & skeletons
        or names.objects & objects
        or names.pasted & skeletons
        or names.macro_objects & objects
    )


def executable_names(
    root: str, tails: dict[str, frozenset[bytes]]
) -> tuple[dict[str, frozenset[bytes]], tuple]:
    """The object stems of `"%s<tail>.o"` after argv[0] in the C files `tails` (relative to
    `root`): the executables the build files of the file's directory and above link from
    it (secl.analysis.builds.executables_of), each with the tail. And the state those names
    depend on: the mtimes of those directories and the signatures of their build files."""
    from secl.analysis.builds import _build_files_in, samples_executable
    from secl.parse.buildfiles import is_build_file

    out: dict[str, frozenset[bytes]] = {}
    listed: set[str] = set()
    state: list[tuple[str, bytes | None]] = []
    for rel, found in tails.items():
        path = root if rel == "." else f"{root}/{rel}"
        own = os.path.splitext(os.path.basename(path))[0]
        directory = os.path.dirname(path)
        exes: list[str] = []
        while True:
            # Only the build files that spell the file's name are parsed (a kernel's top
            # Makefile takes a second): one whose variables compose it is not followed.
            builds = _build_files_in(directory, (os.fsencode(own).lower(),))
            if directory not in listed:
                listed.add(directory)
                state.append((directory, _stat_sig(directory)))
                try:
                    with os.scandir(directory) as entries:
                        names = sorted(e.name for e in entries if is_build_file(e.name))
                except OSError:
                    names = []
                state += [(p, _stat_sig(p)) for p in (os.path.join(directory, n) for n in names)]
            for build in builds:
                for name, members in build.executables:
                    if any(os.path.splitext(m)[0] == own for m in members) and name not in exes:
                        exes.append(name)
            if directory == root or not directory.startswith(root + os.sep):
                break
            directory = os.path.dirname(directory)
        exes = exes or samples_executable(path)
        stems = frozenset(os.fsencode(e) + t for e in exes for t in found)
        if stems:
            out[rel] = stems
    return out, tuple(state)


def _stat_sig(path: str) -> bytes | None:
    try:
        return _PACK(*_STAT_FIELDS(os.stat(path)))
    except OSError:
        return None


def _same_state(state: tuple) -> bool:
    return all(_stat_sig(path) == sig for path, sig in state)


def everywhere(index: TreeIndex) -> list[str]:
    """The C files every run must read: loaders with an ELF reader of their own and eBPF
    for Windows code (each changes how the whole project is judged)."""
    return [index.path(rel) for rel, names in index.named.items() if names.roles]


def providers(index: TreeIndex) -> dict[bytes, list[str]]:
    """Function or macro name -> the C files that define it, for the definitions loader code
    elsewhere may rely on (PairingNames.provides)."""
    out: dict[bytes, list[str]] = {}
    for rel, names in index.named.items():
        for name in names.provides:
            out.setdefault(name, []).append(index.path(rel))
    return out


def by_program(index: TreeIndex, programs: set[bytes]) -> list[str]:
    """The C files that reference one of `programs` without naming a skeleton (linked by
    the program's name)."""
    return [
        index.path(rel) for rel, names in index.named.items() if names.unowned_programs & programs
    ]


def loader_results(index: TreeIndex) -> list[tuple[str, object]]:
    """(path, what the loader scan found) for every candidate where it found anything, in
    the walk's order."""
    return [(index.path(rel), found) for rel, found in index.loaders.items()]


def _changed(root: str, text: str, sigs: bytes) -> list[int]:
    """The positions of the files of `text` whose signature is not the one in `sigs`. The
    stats and their packing run in C (map, starmap): a kernel tree has 64,000 files, and a
    loop in Python would cost a third of the stats themselves."""
    paths = _paths(root, text)
    size = _SIG_SIZE
    try:
        now = b"".join(starmap(_PACK, map(_STAT_FIELDS, map(os.stat, paths))))
    except OSError:  # a file is gone, or a link broken: one at a time
        out = []
        for i, path in enumerate(paths):
            try:
                sig = _PACK(*_STAT_FIELDS(os.stat(path)))
            except OSError:
                sig = None
            if sig is None or sig != sigs[i * size : (i + 1) * size]:
                out.append(i)
        return out
    if now == sigs:
        return []
    out = []
    block = 1024 * size
    for start in range(0, len(now), block):
        if now[start : start + block] != sigs[start : start + block]:
            for at in range(start, min(start + block, len(now)), size):
                if now[at : at + size] != sigs[at : at + size]:
                    out.append(at // size)
    return out


def _defines_text(named: dict[str, PairingNames]) -> bytes:
    """The Definitions text of the files `named` (by path: the same whatever the order)."""
    return b"\n".join(named[r].defines for r in sorted(named) if named[r].defines)


def _gitignores(tree: _Tree) -> list[str]:
    return [rel for rel, entry in tree.dirs.items() if entry.gitignore]


def _vendor(rel: str, vendor_dirs: frozenset[str]) -> bool:
    return any(part in vendor_dirs for part in rel.split("/"))
