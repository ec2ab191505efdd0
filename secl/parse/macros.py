"""A preprocessor subset for the sections tree-sitter cannot compute.

`SEC("kprobe/" SYS_PREFIX "sys_nanosleep")`, `#define KPROBE(fn) SEC("kprobe/" #fn)` and a
family picked with `#ifdef` are resolved here from what the file and its local headers say:
object-like and function-like macros, `#` and `##`, `#if`/`#ifdef`/`#elif` and `#include "..."`
(plus the -I directories of a compile command, else those the project's build passes:
secl.parse.includes). Every token keeps where it is spelled, so a fix
can edit a literal in the macro definition that produced it.

Conditions are evaluated three-valued. A name that no visible file defines and that the
configuration (`--define`, `--target-arch`, a compile command) does not mention is *unknown*
rather than 0: a compiler would read it as 0, but the build may well pass it with -D. A macro
defined under an unknown condition is uncertain, and a section built from it stays unresolved
with a note that names the macro. That is how secl stays free of false findings.
"""

from __future__ import annotations

import functools
import operator
import os
import re
from bisect import bisect_right
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate

from secl.facts import Piece, Position, SectionSite, Span, Spelling
from secl.files import FileProblem
from secl.parse import large
from secl.parse.bpf import negate_condition
from secl.parse.cstring import decode_literal
from secl.parse.tree import line_ends

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from tree_sitter import Node, Tree

    from secl.config import Config
    from secl.parse.clang import ClangResult
    from secl.parse.compdb import CompileCommand, CompileDb
    from secl.parse.includes import BuildIncludes

# -- the configuration ----------------------------------------------------------------------

# What clang and gcc predefine for each target, trimmed to the macros headers test, plus the
# `-D__TARGET_ARCH_<arch>` that BPF builds pass by the convention of libbpf's bpf_tracing.h.
# The kernel's syscall prefixes are not here: the headers' own #if logic picks them.
_ARCH_MACROS: dict[str, dict[str, str]] = {
    "x86_64": {"__x86_64__": "1", "__x86_64": "1", "__amd64__": "1", "__amd64": "1",
               "__LP64__": "1", "_LP64": "1", "__TARGET_ARCH_x86": "1"},
    "i386": {"__i386__": "1", "__i386": "1", "i386": "1", "__ILP32__": "1",
             "__TARGET_ARCH_x86": "1"},
    "arm64": {"__aarch64__": "1", "__ARM_64BIT_STATE": "1", "__LP64__": "1", "_LP64": "1",
              "__TARGET_ARCH_arm64": "1"},
    "arm": {"__arm__": "1", "__ARM_32BIT_STATE": "1", "__ILP32__": "1", "__TARGET_ARCH_arm": "1"},
    "s390x": {"__s390x__": "1", "__s390__": "1", "__zarch__": "1", "__LP64__": "1", "_LP64": "1",
              "__TARGET_ARCH_s390": "1"},
    "powerpc64": {"__powerpc64__": "1", "__powerpc__": "1", "__PPC64__": "1", "__PPC__": "1",
                  "__ppc64__": "1", "_ARCH_PPC": "1", "_ARCH_PPC64": "1", "__LP64__": "1",
                  "_LP64": "1", "__TARGET_ARCH_powerpc": "1"},
    "riscv64": {"__riscv": "1", "__riscv_xlen": "64", "__LP64__": "1", "_LP64": "1",
                "__TARGET_ARCH_riscv": "1"},
    "loongarch64": {"__loongarch__": "1", "__loongarch64": "1", "__loongarch_grlen": "64",
                    "__LP64__": "1", "_LP64": "1", "__TARGET_ARCH_loongarch": "1"},
    "mips": {"__mips__": "1", "__mips": "1", "__TARGET_ARCH_mips": "1"},
    "sparc64": {"__sparc__": "1", "__sparc": "1", "__sparc_v9__": "1", "__sparc64__": "1",
                "__LP64__": "1", "_LP64": "1", "__TARGET_ARCH_sparc": "1"},
    "arc": {"__arc__": "1", "__ILP32__": "1", "__TARGET_ARCH_arc": "1"},
}  # fmt: skip
_BIG_ENDIAN = frozenset({"s390x", "mips", "sparc64"})
ARCH_ALIASES = {
    "x86": "x86_64", "amd64": "x86_64", "x64": "x86_64", "i686": "i386", "aarch64": "arm64",
    "s390": "s390x", "powerpc": "powerpc64", "ppc64": "powerpc64", "ppc64le": "powerpc64",
    "ppc64el": "powerpc64", "riscv": "riscv64", "loongarch": "loongarch64", "mips64": "mips",
    "sparc": "sparc64", "armhf": "arm", "armel": "arm",
}  # fmt: skip
_ALL_ARCH_NAMES = frozenset(n for table in _ARCH_MACROS.values() for n in table) | {
    "__BYTE_ORDER__", "__ILP32__",
}  # fmt: skip
# What every clang BPF compile predefines (clang -target bpf -dM -E, trimmed).
_BUILTIN = (
    "#define __STDC__ 1\n#define __STDC_VERSION__ 201710L\n#define __STDC_HOSTED__ 1\n"
    "#define __GNUC__ 4\n#define __GNUC_MINOR__ 2\n#define __GNUC_PATCHLEVEL__ 1\n"
    "#define __clang__ 1\n#define __CHAR_BIT__ 8\n#define __ORDER_LITTLE_ENDIAN__ 1234\n"
    "#define __ORDER_BIG_ENDIAN__ 4321\n#define __ORDER_PDP_ENDIAN__ 3412\n"
    "#define __bpf__ 1\n#define __BPF__ 1\n"
)
BUILTIN_PATH = "<built-in>"
COMMAND_LINE = "<command line>"
SECTION_NAMES = frozenset({"SEC", "__section", "section", "__section__"})


def known_arch(name: str) -> str | None:
    """The canonical name of a --target-arch value, or None."""
    name = ARCH_ALIASES.get(name, name)
    return name if name in _ARCH_MACROS else None


def known_arches() -> tuple[str, ...]:
    return tuple(sorted(_ARCH_MACROS))


def arch_defines(arch: str) -> tuple[str, ...]:
    """`NAME=VALUE` for every macro clang/gcc predefine for `arch` (see `_ARCH_MACROS`)."""
    table = dict(_ARCH_MACROS[arch])
    order = "__ORDER_BIG_ENDIAN__" if arch in _BIG_ENDIAN else "__ORDER_LITTLE_ENDIAN__"
    table["__BYTE_ORDER__"] = order
    return tuple(f"{k}={v}" for k, v in table.items())


@dataclass(frozen=True, slots=True)
class Setup:
    """One configuration to preprocess with."""

    defines: tuple[str, ...] = ()  # -D texts, --define values and the arch's macros, in order
    undefines: tuple[str, ...] = ()
    quote_dirs: tuple[str, ...] = ()
    include_dirs: tuple[str, ...] = ()
    forced_includes: tuple[str, ...] = ()
    closed: frozenset[str] = frozenset()  # names known to be undefined unless defined
    closed_world: bool = False  # every name not defined is undefined (a compiler's view)


def setup_for(
    config_defines: Iterable[str],
    arch: str | None,
    command: CompileCommand | None,
    closed_world: bool = False,
    include_dirs: tuple[str, ...] = (),
) -> Setup:
    defines = list(command.defines) if command is not None else []
    closed: set[str] = set()
    if command is not None and (command.target or "").startswith("bpf"):
        # clang -target bpf predefines no arch macro, and the byte order of `bpfel` (the
        # default on the little-endian hosts BPF is built on) unless told otherwise.
        big = command.target == "bpfeb" or "-mbig-endian" in command.args
        defines.insert(0, f"__BYTE_ORDER__=__ORDER_{'BIG' if big else 'LITTLE'}_ENDIAN__")
        closed |= _ALL_ARCH_NAMES
    defines += list(config_defines)
    if arch is not None:
        defines += list(arch_defines(arch))
        closed |= _ALL_ARCH_NAMES
    return Setup(
        defines=tuple(defines),
        undefines=command.undefines if command is not None else (),
        quote_dirs=command.quote_dirs if command is not None else (),
        # the compile command's -I first, as the compiler would, then --include-dir
        include_dirs=(command.include_dirs if command is not None else ()) + include_dirs,
        forced_includes=command.forced_includes if command is not None else (),
        closed=frozenset(closed),
        closed_world=closed_world,
    )


def _command_line(setup: Setup) -> bytes:
    lines = []
    for text in setup.defines:
        name, sep, value = text.partition("=")
        lines.append(f"#define {name} {value if sep else '1'}")
    lines += [f"#undef {name}" for name in setup.undefines]
    return ("\n".join(lines) + "\n").encode()


# -- tokens ---------------------------------------------------------------------------------

_EMPTY: frozenset[str] = frozenset()


# A preprocessing token. Plain namedtuples here and below: typing.NamedTuple would import
# `typing` at start-up for no run-time gain.
Tok = namedtuple(
    "Tok",
    (
        "kind",  # str: id, str, char, num, punct, unknown, mark (a placemarker)
        "text",  # str
        "path",  # str: where it is spelled
        "start",  # int: byte offsets in `path`; -1 when no file spells it
        "end",  # int
        "space",  # bool: whitespace before it (for `#`)
        "hide",  # frozenset[str]: macros not to expand again (the hide set)
        "macro",  # str | None: the #define whose body spells it
        "created",  # str | None: "stringify" / "paste": made by the preprocessor
    ),
    defaults=(False, _EMPTY, None, None),
)


# A backslash before CR LF continues a line as before LF (a lone CR is LF by now: line_ends).
_TOKEN = re.compile(
    rb"(?P<ws>(?:[ \t\r\f\v\n]+|\\\r?\n|/\*.*?(?:\*/|\Z)|//(?:[^\n\\]|\\(?:\r\n|.))*)+)"
    rb'|(?P<str>(?:u8|u|U|L)?"(?:[^"\\\n]|\\(?:\r\n|.))*"?)'
    rb"|(?P<char>(?:u8|u|U|L)?'(?:[^'\\\n]|\\(?:\r\n|.))*'?)"
    rb"|(?P<id>[A-Za-z_$][\w$]*)"
    rb"|(?P<num>\.?[0-9](?:[eEpP][+-]|[\w.])*)"
    rb"|(?P<punct>\.\.\.|<<=|>>=|->|\+\+|--|<<|>>|[<>=!&|^+\-*/%]=|&&|\|\||\#\#|[^\s\w])",
    re.S,
)


def tokens(data: bytes, start: int, end: int, path: str, macro: str | None = None) -> list[Tok]:
    out: list[Tok] = []
    space = False
    for m in _TOKEN.finditer(data, start, end):
        kind = m.lastgroup
        if kind == "ws":
            space = True
            continue
        text = m.group().decode("utf-8", "replace")
        out.append(Tok(kind, text, path, m.start(), m.end(), space, _EMPTY, macro))  # type: ignore[arg-type]
        space = False
    return out


# Directives: a line whose first token is `#`. Comments and literals are matched only so that
# a `#` inside them is not taken for one. A directive is matched with the newline before it
# (the text scanned starts with one): every alternative then starts with one of four bytes,
# which the regex engine looks for instead of trying the pattern at every byte (`^` would
# make it). No other match ends just after a newline that starts a directive's line, so the
# directives found are those of `^` in MULTILINE mode. Each part is written as runs of plain
# bytes between the special ones (`[^*]*`, `[^\n\\]*`: counted at C speed) rather than one
# alternation per byte (`.*?`, `(?:[^\n\\]|\\.)*`): the same matches (checked on every C file of
# the evaluation projects), about twice as fast.
_SCAN = re.compile(
    rb"/\*[^*]*(?:\*+[^*/][^*]*)*(?:\*+/|\**\Z)|//[^\n\\]*(?:\\(?:\r\n|.)[^\n\\]*)*"
    rb"|\"[^\"\\\n]*(?:\\(?:\r\n|.)[^\"\\\n]*)*\"|'[^'\\\n]*(?:\\(?:\r\n|.)[^'\\\n]*)*'"
    rb"|\n(?P<d>[ \t]*\#[ \t]*(?P<w>[a-z_]*)[^\n\\]*(?:\\(?:\r\n|.)[^\n\\]*)*)",
    re.S,
)
_DEFINE_HEAD = re.compile(rb"[ \t]*([A-Za-z_]\w*)(\()?")
_IDENT = re.compile(rb"[A-Za-z_]\w*")
_SITE_CALL = re.compile(rb"\b(?:SEC|__section|section|__section__)\s*\(")
# The bytes `\w` matches in a bytes pattern (ASCII: re.LOCALE and re.UNICODE unset)
_WORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_ANY_INCLUDE = re.compile(rb'#[ \t]*include[ \t]*(?:"([^"\n]+)"|<([^>\n]+)>)')


def _site_call(data: bytes) -> bool:
    """Whether `_SITE_CALL` matches in `data`: a huge file's `SEC` and `section` are few, and
    every match starts at one (or two bytes before a `section`: `__section`)."""
    found = large.marks(data)
    if found is None or found.sec is None or found.section is None:
        # The same starts, found by bytes.find: a regex led by `\b` is tried at every byte
        # (a crawl through a project's headers searched them all that way).
        return _matches_from(data, b"SEC", 0) or _matches_from(data, b"section", 2)
    match = _SITE_CALL.match
    return any(match(data, at) for at in found.sec) or any(
        match(data, at) or (at >= 2 and match(data, at - 2)) for at in found.section
    )


def _matches_from(data: bytes, needle: bytes, back: int) -> bool:
    """Whether `_SITE_CALL` matches at an occurrence of `needle` or `back` bytes before it."""
    match = _SITE_CALL.match
    at = data.find(needle)
    while at >= 0:
        if match(data, at) or (back and at >= back and match(data, at - back)):
            return True
        at = data.find(needle, at + 1)
    return False


# word: str, start and end: int, body: int (the offset after the directive word)
Directive = namedtuple("Directive", "word start end body")


def directives(data: bytes) -> list[Directive]:
    if b"#" not in data:
        return []
    if _plain(data):
        return _plain_directives(data)
    out = []
    for m in _SCAN.finditer(b"\n" + data):  # offsets one past the file's
        if m.start("d") >= 0:
            out.append(
                Directive(m.group("w").decode(), m.start("d") - 1, m.end() - 1, m.end("w") - 1)
            )
    return out


# A large file without literals and line continuations (a vmlinux.h that bpftool dumped: a
# few directives and a comment in megabytes of declarations) has its directives where a line
# starts with `#` outside a comment, and its comments start at `/*` or `//`: two searches and
# a walk over their few hits find what the scan above finds (which takes tens of
# milliseconds per megabyte), to the byte.
_COMMENT_OPENER = re.compile(rb"/[*/]")
_PLAIN_FROM = 64 * 1024


def _plain(data: bytes) -> bool:
    if len(data) < _PLAIN_FROM:
        return False
    found = large.marks(data)  # a huge file: what memchr found
    if found is not None and found.quotes:
        # Quotes only inside comments (kernel-doc in a vmlinux.h: "don't") make no literal.
        return not found.backslash and _quotes_in_comments_only(data, found.slashes)
    if found is not None and not found.backslash:
        return True  # no backslash: no continued line
    if found is None and (b'"' in data or b"'" in data):
        return False
    # One memchr for a backslash, where the two searches below read all of the file.
    return b"\\" not in data or (
        b"\\\n" not in data and b"\\\r\n" not in data and not data.endswith(b"\\")
    )


_MAX_QUOTES = 256  # past this many, a file has literals worth the full scan


def _quotes_in_comments_only(data: bytes, slashes: tuple[int, ...] | None) -> bool:
    """Whether every `"` and `'` of a file without backslashes lies inside a comment whose
    opener, like the quote, is on no directive's line: then the file has no literal, and
    its comments are where `_plain_directives` finds them."""
    quotes: list[int] = []
    for quote in (b'"', b"'"):
        at = data.find(quote)
        while at >= 0:
            if len(quotes) == _MAX_QUOTES:
                return False
            quotes.append(at)
            at = data.find(quote, at + 1)
    quotes.sort()
    openers = (m.start() for m in large.finditer_at(_COMMENT_OPENER, data, slashes))
    covered = 0  # the end of the last comment
    comment = (0, 0)  # (opener, end) of the last comment
    for q in quotes:
        while comment[1] <= q:
            o = next(openers, None)
            if o is None or o > q:
                return False  # the quote is in no comment
            if o < covered:
                continue  # inside the comment before
            covered = _comment_end(data, o)
            comment = (o, covered)
        if comment[0] > q or _on_directive_line(data, q) or _on_directive_line(data, comment[0]):
            return False
    return True


def _comment_end(data: bytes, opener: int) -> int:
    """Where the comment opened at `opener` (`/*` or `//`) ends: past its `*/`, or at the end
    of its line; the end of the file when unclosed."""
    if data[opener + 1] == 0x2A:  # `/*`
        end = data.find(b"*/", opener + 2)
        return len(data) if end < 0 else end + 2
    end = data.find(b"\n", opener)
    return len(data) if end < 0 else end


def _on_directive_line(data: bytes, at: int) -> bool:
    line = data.rfind(b"\n", 0, at) + 1
    return data[line:at].lstrip(b" \t").startswith(b"#")


def _hash_lines(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(line start, `#`, line end) of every line whose first non-blank is `#`: memchr over
    the few `#` of a declarations file instead of a regex attempt at every line start (a
    huge file's `#` are known: secl.parse.large)."""
    marks = large.marks(data)
    hashes = marks.hashes if marks is not None else None
    if hashes is None:
        yield from _hash_lines_found(data)
        return
    after = 0  # the end of the last directive's line
    for pos in hashes:
        if pos < after:
            continue
        start = data.rfind(b"\n", 0, pos) + 1
        if data[start:pos].strip(b" \t"):
            continue  # not the first token of its line
        end = data.find(b"\n", pos)
        after = end = len(data) if end < 0 else end
        yield start, pos, end


def _hash_lines_found(data: bytes) -> Iterator[tuple[int, int, int]]:
    find = data.find
    pos = find(b"#")
    while pos >= 0:
        start = data.rfind(b"\n", 0, pos) + 1
        if data[start:pos].strip(b" \t"):
            pos = find(b"#", pos + 1)  # not the first token of its line
            continue
        end = find(b"\n", pos)
        end = len(data) if end < 0 else end
        yield start, pos, end
        pos = find(b"#", end)


_WORD = re.compile(rb"[ \t]*([a-z_]*)")


def _plain_directives(data: bytes) -> list[Directive]:
    """`directives` of a file `_plain` accepts. As in the scan, a comment hides the lines it
    covers, and a directive's line hides the comment openers on it."""
    out = []
    directives = _hash_lines(data)
    found = large.marks(data)
    slashes = found.slashes if found is not None else None
    openers = (m.start() for m in large.finditer_at(_COMMENT_OPENER, data, slashes))
    d = next(directives, None)
    o = next(openers, None)
    covered = 0  # the end of the last comment or directive
    while d is not None:
        if o is not None and o < d[0]:
            if o >= covered:
                covered = _comment_end(data, o)
            o = next(openers, None)
            continue
        start, hash_at, end = d
        if start >= covered:
            word = _WORD.match(data, hash_at + 1)
            assert word is not None
            out.append(Directive(word.group(1).decode(), start, end, word.end(1)))
            covered = end
        d = next(directives, None)
    return out


# -- macros ---------------------------------------------------------------------------------


class _Branch:
    """One branch of one #if block as it was entered, linked to the branch around its block.

    Every macro defined in a branch shares it, so a #define costs the same at any depth; what
    the branches around say (conditions, unknown names) is gathered by walking `around` only
    when a message needs it. (Issue 13: 10k nested #ifs with a #define in each took 46 s and
    4 GB when each macro kept tuples of all of it.)
    """

    __slots__ = ("around", "chain", "chain_length", "conds", "open")

    def __init__(
        self,
        around: _Branch | None,
        conds: tuple[str, ...] = (),
        chain: list[str] | None = None,
        chain_length: int = 0,
    ) -> None:
        self.around = around  # the branch being read around its block (None: the top)
        self.conds = conds  # its configuration-dependent conditions
        # Why it is undecided: the first `chain_length` unknown names of its block (the block
        # appends to one list as it goes from branch to branch).
        self.chain = chain
        self.chain_length = chain_length
        self.open = True  # being read; an #elif, #else or #endif closes it

    def outwards(self) -> Iterator[_Branch]:
        branch: _Branch | None = self
        while branch is not None:
            yield branch
            branch = branch.around

    def conditions(self) -> tuple[str, ...]:
        """The configuration-dependent conditions of the branches that are no longer being
        read, outermost first (those still open are around the use too: its `branch`)."""
        closed = []
        for branch in self.outwards():
            if branch.open:
                break  # the branches around an open one are open too
            closed.append(branch)
        return tuple(c for branch in reversed(closed) for c in branch.conds)

    def unknowns(self) -> tuple[str, ...]:
        """The names that make this branch or one around it undecidable, outermost first."""
        chains = [b for b in self.outwards() if b.chain_length]
        return tuple(
            dict.fromkeys(u for b in reversed(chains) for u in b.chain[: b.chain_length])  # type: ignore[index]
        )


# name: str; params: tuple[str, ...] | None (None for object-like; the variadic one last);
# variadic: bool; path: str; start, end: int (the body's byte range in `path`);
# where: _Branch | None (the #if branch it is defined in; None: outside any);
# certain: bool (False under an #if secl cannot decide);
# scope: _Branch | None (the undecided #if branch it is defined in: it is as good as certain
# while that branch is being read; None: never, for an uncertain macro);
# blame: tuple[_Branch, ...] (whose unknown names made it uncertain: the first branch that has
# some).
_MacroFields = namedtuple(
    "_MacroFields",
    "name params variadic path start end where certain scope blame",
    defaults=(None, True, None, ()),
)


class Macro(_MacroFields):
    """One #define. A namedtuple (as Tok and Directive are): a frozen dataclass's __init__,
    one object.__setattr__ per field, cost more than the rest of reading a #define."""

    __slots__ = ()

    @property
    def configured(self) -> bool:
        return self.path.startswith(COMMAND_LINE[:-1])

    @property
    def unknowns(self) -> tuple[str, ...]:
        """The names that made the #if around it undecidable."""
        for branch in self.blame:
            names = branch.unknowns()
            if names:
                return names
        return ()


class _Reader:
    """The bytes of every file the preprocessor reads, once per run: the linted files as they
    were read, other headers from disk."""

    def __init__(self, files: dict[str, bytes], root: str | None = None) -> None:
        self._data: dict[str, bytes | None] = {os.path.abspath(p): d for p, d in files.items()}
        from secl.parse.includes import SuffixIndex

        # The last resort for an #include no directory resolves (secl.parse.includes).
        self.suffixes = SuffixIndex(tuple(self._data), root)
        self._directives: dict[str, list[Directive]] = {}
        self._positions: dict[str, list[int]] = {}
        self._bodies: dict[tuple[str, int, str], tuple[Tok, ...]] = {}
        self._templates: dict[str, bool] = {}
        self._groups: dict[tuple[str, int, str], tuple[tuple[int, int, frozenset[str]], ...]] = {}
        self.states: dict[tuple, _State] = {}  # see Preprocessor._save
        self._data[BUILTIN_PATH] = _BUILTIN.encode()
        self._command_lines: dict[str, bytes] = {}
        self._exists: dict[str, bool] = {}

    def command_line(self, setup: Setup) -> str:
        """The pseudo-file of a configuration's -D/-U lines: one path per distinct content,
        so that macros of two configurations never share a cached body."""
        data = _command_line(setup)
        for path, known in self._command_lines.items():
            if known == data:
                return path
        n = len(self._command_lines)
        path = COMMAND_LINE if n == 0 else f"{COMMAND_LINE[:-1]} {n + 1}>"
        self._command_lines[path] = self._data[path] = data
        return path

    def data(self, path: str) -> bytes | None:
        if path not in self._data:
            try:
                with open(path, "rb") as fh:
                    self._data[path] = line_ends(fh.read())
            except OSError:
                self._data[path] = None
        return self._data[path]

    def exists(self, path: str) -> bool:
        if path not in self._data:
            found = self._exists.get(path)
            if found is None:
                found = self._exists[path] = os.path.isfile(path)
            return found
        return self._data[path] is not None

    def directives(self, path: str) -> list[Directive]:
        found = self._directives.get(path)
        if found is None:
            found = self._directives[path] = directives(self.data(path) or b"")
        return found

    def span(self, path: str, start: int, end: int) -> Span:
        return Span(start, end, self._at(path, start), self._at(path, end))

    def _at(self, path: str, offset: int) -> Position:
        # A line table per file: a file's sites and spellings ask for many positions.
        data = self.data(path) or b""
        starts = self._positions.get(path)
        if starts is None:
            # 0 and the offset after each newline, summed from the lines' lengths at C speed
            # (a match object per line cost as much as the rest of a big file's resolving)
            sums = accumulate(map((1).__add__, map(len, data.split(b"\n"))), initial=0)
            starts = self._positions[path] = list(sums)[:-1]
        line = bisect_right(starts, offset) - 1
        prefix = data[starts[line] : offset]
        column = len(prefix) if prefix.isascii() else len(prefix.decode("utf-8", "replace"))
        return Position(line + 1, column + 1)

    def body(self, m: Macro) -> tuple[Tok, ...]:
        key = (m.path, m.start, m.name)
        found = self._bodies.get(key)
        if found is None:
            found = tuple(tokens(self.data(m.path) or b"", m.start, m.end, m.path, m.name))
            self._bodies[key] = found
        return found

    def brace_groups(self, m: Macro) -> tuple[tuple[int, int, frozenset[str]], ...]:
        """The outermost `{...}` of a macro body: (index of `{`, of `}`, names inside)."""
        key = (m.path, m.start, "{}")
        found = self._groups.get(key)
        if found is None:
            out = []
            depth = 0
            start = 0
            body = self.body(m)
            for i, t in enumerate(body):
                if t.text == "{":
                    depth += 1
                    if depth == 1:
                        start = i
                elif t.text == "}" and depth:
                    depth -= 1
                    if depth == 0:
                        names = frozenset(x.text for x in body[start:i] if x.kind == "id")
                        out.append((start, i, names))
            found = self._groups[key] = tuple(out)
        return found

    def has_templates(self, path: str) -> bool:
        """Whether a #define of this file writes a section site (SEC inside a macro)."""
        found = self._templates.get(path)
        if found is None:
            data = self.data(path) or b""
            found = False
            if _site_call(data):
                found = any(
                    d.word == "define" and _SITE_CALL.search(data, d.body, d.end)
                    for d in self.directives(path)
                )
            self._templates[path] = found
        return found


# table: dict[str, Macro], ever_defined / configured / once: frozenset[str], missing:
# tuple[str, ...], counter: int, reaching: frozenset[str], mentions:
# dict[str, tuple[str, ...]]
_State = namedtuple(
    "_State", "table ever_defined configured once missing counter reaching mentions"
)


class _Frame:
    """One #if block: the state of the branch being read and what came before."""

    __slots__ = (
        "_text",
        "chain",
        "current",
        "guard",
        "here",
        "negated",
        "outer",
        "prev",
        "state",
        "taken",
        "texts",
    )

    def __init__(self, outer: bool | None, here: _Branch) -> None:
        self.here = here  # the branch being read
        self.guard = False  # an include guard: no branch worth naming
        self.texts: list[str] = []  # every earlier branch's condition
        # The branch being read, as a condition (`!A && B` in an #elif): the negations of the
        # first `negated` texts and `current`, joined when asked for (an #elif chain would
        # otherwise join ever longer texts at every #elif).
        self.negated = 0
        self.current = ""
        self._text: str | None = ""
        self.outer = outer  # the state around the block
        self.taken: bool | None = False  # a branch was (True) or may have been (None) taken
        self.state: bool | None = False
        self.prev: list[str] = []  # configuration-dependent conditions of earlier branches
        self.chain: list[str] = []  # the unknown names of this branch and earlier ones

    @property
    def text(self) -> str:
        if self._text is None:
            parts = [negate_condition(t) for t in self.texts[: self.negated]]
            self._text = " && ".join([*parts, *([self.current] if self.current else [])])
        return self._text

    def enter(self, conds: tuple[str, ...], undecided: bool) -> None:
        """Start reading the block's next branch (the one before is done)."""
        self.here.open = False
        length = len(self.chain) if undecided else 0
        self.here = _Branch(self.here.around, conds, self.chain, length)


class _Facts:
    """What evaluating one #if learnt besides its value."""

    __slots__ = ("dependent", "unknowns")

    def __init__(self) -> None:
        self.dependent = False  # the configuration (-D, --define, --target-arch) decided it
        self.unknowns: tuple[str, ...] = ()


class _Expansion:
    """What one expansion used: the macros, to know whether the result is certain."""

    __slots__ = ("blocked", "keep", "skim", "used")

    def __init__(
        self,
        blocked: frozenset[str],
        keep: Callable[[Macro], bool] | None = None,
        skim: frozenset[str] | None = None,
    ) -> None:
        self.used: list[Macro] = []
        self.blocked = blocked
        self.keep = keep  # macros not to expand (left as written)
        # With `skim`, a macro body's `{...}` blocks that name none of these (nor take an
        # argument that does) expand to `{}`: a use needs the declarations, not the code.
        self.skim = skim


_HAS_INCLUDE = frozenset({"__has_include", "__has_include_next"})
_HAS_OTHER = frozenset(
    {"__has_builtin", "__has_attribute", "__has_feature", "__has_extension", "__has_c_attribute",
     "__has_cpp_attribute", "__has_declspec_attribute", "__has_warning", "__is_identifier",
     "__building_module"}
)  # fmt: skip
_MAX_INCLUDE_DEPTH = 40
_MAX_EXPANSION = 20000  # macro expansions in one call: more is a runaway


class Preprocessor:
    """Reads one main file (and what it includes) directive by directive under one `Setup`;
    code between directives is handed to a callback that may expand macros with the table
    as it stands there."""

    def __init__(self, reader: _Reader, setup: Setup) -> None:
        self.reader = reader
        self.setup = setup
        self.table: dict[str, Macro] = {}
        self.frames: list[_Frame] = []
        self.ever_defined: set[str] = set()
        self.configured: set[str] = set(setup.undefines)
        self.once: set[str] = set()
        self.missing: list[str] = []
        self.counter = 0
        self.depth = 0
        self.reaching: set[str] = set()  # macros whose expansion may write a section site
        self._mentions: dict[str, tuple[str, ...]] = {}  # name -> macros whose body uses it
        key: tuple = (setup,)
        if not self._restore(key):
            self._include_file(BUILTIN_PATH)
            self._include_file(reader.command_line(setup))
            self.configured |= {n for n, m in self.table.items() if m.configured}
            for forced in setup.forced_includes:
                self._include_file(forced)
            self._save(key)

    # -- the state after a run of #includes, shared by the files that start the same way

    def _save(self, key: tuple) -> None:
        self.reader.states[key] = _State(
            dict(self.table), frozenset(self.ever_defined), frozenset(self.configured),
            frozenset(self.once), tuple(self.missing), self.counter,
            frozenset(self.reaching), dict(self._mentions),
        )  # fmt: skip

    def _restore(self, key: tuple) -> bool:
        state = self.reader.states.get(key)
        if state is None:
            return False
        self.table = dict(state.table)
        self.ever_defined = set(state.ever_defined)
        self.configured = set(state.configured)
        self.once = set(state.once)
        self.missing = list(state.missing)
        self.counter = state.counter
        self.reaching = set(state.reaching)
        self._mentions = dict(state.mentions)
        return True

    # -- state

    @property
    def state(self) -> bool | None:
        return self.frames[-1].state if self.frames else True

    def _here(self) -> _Branch | None:
        return self.frames[-1].here if self.frames else None

    def _pop_frames(self, depth: int) -> None:
        """Close the blocks opened beyond `depth`."""
        for frame in self.frames[depth:]:
            frame.here.open = False
        del self.frames[depth:]

    def branch(self) -> str | None:
        """The #if branches being read, as one condition (secl.parse.bpf's `branch` format)."""
        return " && ".join(f.text for f in self.frames if not f.guard and f.text) or None

    def settled(self, m: Macro) -> bool:
        """Whether `m` is as good as certain here: defined unconditionally, or in the very
        undecided #if branch being read (a use there exists only if the definition does)."""
        return m.certain or (m.scope is not None and m.scope.open)

    def closed(self, name: str) -> bool:
        """Whether an undefined `name` is known to be undefined (else it is unknown)."""
        return (
            self.setup.closed_world
            or name in self.ever_defined
            or name in self.configured
            or name in self.setup.closed
        )

    def decides(self, name: str) -> bool:
        """Whether the configuration, rather than the sources, says what `name` is."""
        return (
            name in self.configured
            or name in self.setup.closed
            or (self.setup.closed_world and name not in self.ever_defined)
        )

    # -- reading files

    def run(self, path: str, segment: Callable[[int, int, bool | None], None]) -> None:
        """Read the main file; `segment(start, end, state)` for the code between directives."""
        data = self.reader.data(path) or b""
        pos = 0
        found = self.reader.directives(path)
        # While the file only #includes, the state is that of any file that includes the same
        # headers in the same order: computed once per run. Headers not found change nothing.
        key: tuple | None = (self.setup,)
        for i, d in enumerate(found):
            if d.start > pos:
                segment(pos, d.start, self.state)
            pos = d.end
            if key is not None and d.word == "include" and not self.frames:
                target = self._include_target(path, data, d)
                if target is None:
                    continue
                key = (*key, target)
                own = list(self.missing)
                if self._restore(key):
                    self.missing = list(dict.fromkeys([*own, *self.missing]))
                    continue
                self._include_file(target)
                self._save(key)
                continue
            if key is not None:
                key = None
                self.ever_defined.update(_defined_names(data))
            self._directive(path, data, found, i)
        if key is not None:
            self.ever_defined.update(_defined_names(data))
        segment(pos, len(data), self.state)

    def _include_file(self, path: str) -> None:
        if path in self.once or self.depth > _MAX_INCLUDE_DEPTH:
            return
        data = self.reader.data(path)
        if data is None:
            return
        self.ever_defined.update(_defined_names(data))
        depth = len(self.frames)
        self.depth += 1
        found = self.reader.directives(path)
        for i in range(len(found)):
            self._directive(path, data, found, i)
        self.depth -= 1
        self._pop_frames(depth)  # an unbalanced header closes its own blocks

    def _directive(self, path: str, data: bytes, found: list[Directive], i: int) -> None:
        d = found[i]
        word = d.word
        if word in ("if", "ifdef", "ifndef"):
            self._if(path, data, found, i)
        elif word in ("elif", "elifdef", "elifndef", "else"):
            self._elif(path, data, d)
        elif word == "endif":
            if self.frames:
                self._pop_frames(len(self.frames) - 1)
        elif self.state is False:
            return
        elif word == "define":
            self._define(path, data, d)
        elif word == "undef":
            m = _IDENT.search(data, d.body, d.end)
            if m is not None:
                self._undef(m.group().decode())
        elif word in ("include", "include_next", "import"):
            self._include(path, data, d)
        elif word == "pragma" and data[d.body : d.end].split()[:1] == [b"once"]:
            self.once.add(path)

    def _if(self, path: str, data: bytes, found: list[Directive], i: int) -> None:
        d = found[i]
        frame = _Frame(self.state, _Branch(self._here()))
        self.frames.append(frame)
        if frame.outer is False:
            frame.taken = True
            return
        value, text, dependent, unknowns = self._condition(path, data, d)
        if d.word == "ifndef" or (d.word == "if" and text.startswith("!defined")):
            nxt = found[i + 1] if i + 1 < len(found) else None
            name = text.removeprefix("!defined(").rstrip(")")
            if nxt is not None and nxt.word == "define":
                m = _IDENT.search(data, nxt.body, nxt.end)
                if m is not None and m.group().decode() == name:
                    frame.guard = True
                    dependent = False  # an include guard says nothing about the configuration
        self._enter(frame, value, text, dependent, unknowns)

    def _elif(self, path: str, data: bytes, d: Directive) -> None:
        if not self.frames:
            return
        frame = self.frames[-1]
        if frame.outer is False or frame.taken is True:
            frame.state = False
            frame.enter((), False)
            return
        if d.word == "else":
            value, text, dependent, unknowns = 1, "", False, ()
        else:
            value, text, dependent, unknowns = self._condition(path, data, d)
        self._enter(frame, value, text, dependent, unknowns)

    def _enter(
        self,
        frame: _Frame,
        value: int | None,
        text: str,
        dependent: bool,
        unknowns: tuple[str, ...],
    ) -> None:
        state: bool | None = None if value is None else bool(value)
        if state is True and (frame.outer is None or frame.taken is None):
            state = None  # an earlier branch, or the block around, may have been taken
        frame.chain += unknowns
        frame.state = state
        frame.negated, frame.current, frame._text = len(frame.texts), text, None
        if text:
            frame.texts.append(text)
            conds = (text,) if dependent and state is not False else ()
            if dependent:
                frame.prev.append(text)
        else:  # #else: what it means is that no earlier branch held
            conds = tuple(negate_condition(c) for c in frame.prev) if state is not False else ()
        frame.enter(conds, state is None)
        if state is True:
            frame.taken = True
        elif state is None:
            frame.taken = None

    def _condition(
        self, path: str, data: bytes, d: Directive
    ) -> tuple[int | None, str, bool, tuple[str, ...]]:
        """(value or None when undecidable, the condition as text, whether it depends on the
        configuration, the unknown names it depends on)."""
        body = data[d.body : d.end]
        if d.word in ("ifdef", "ifndef", "elifdef", "elifndef"):
            m = _IDENT.search(body)
            if m is None:
                return None, "?", False, ()
            name = m.group().decode()
            value, unknowns = self._defined(name)
            dependent = self.decides(name)
            if d.word.endswith("ndef"):
                return (
                    (None if value is None else 1 - value),
                    f"!defined({name})",
                    dependent,
                    unknowns,
                )
            return value, f"defined({name})", dependent, unknowns
        toks = tokens(data, d.body, d.end, path)
        text = spell(toks)
        value, dependent, unknowns = self.evaluate(toks)
        return value, text, dependent, unknowns

    def _defined(self, name: str) -> tuple[int | None, tuple[str, ...]]:
        m = self.table.get(name)
        if m is not None:
            return (1, ()) if self.settled(m) else (None, m.unknowns or (name,))
        if self.closed(name):
            return 0, ()
        return None, (name,)

    def _define(self, path: str, data: bytes, d: Directive) -> None:
        head = _DEFINE_HEAD.match(data, d.body, d.end)
        if head is None:
            return
        name = head.group(1).decode()
        params: tuple[str, ...] | None = None
        variadic = False
        start = head.end()
        if head.group(2):
            close = data.find(b")", start, d.end)
            if close < 0:
                return
            names = [p.strip().decode() for p in data[start:close].split(b",")]
            names = [p for p in names if p]
            if names and names[-1].endswith("..."):
                variadic = True
                names[-1] = names[-1][:-3].strip() or "__VA_ARGS__"
            params = tuple(names)
            start = close + 1
        state = self.state
        here = self._here()
        undecided = state is None and here is not None
        macro = Macro(
            name, params, variadic, path, start, d.end, here, state is True,
            here if undecided else None, (here,) if undecided else (),  # type: ignore[arg-type]
        )  # fmt: skip
        self.table[name] = macro
        self.ever_defined.add(name)
        self._track_reach(name, data[start : d.end])

    def _undef(self, name: str) -> None:
        here = self._here()
        if self.state is None and name in self.table and here is not None:
            old = self.table[name]
            self.table[name] = old._replace(certain=False, scope=None, blame=(here, *old.blame))
        else:
            self.table.pop(name, None)
            self.reaching.discard(name)

    def _track_reach(self, name: str, body: bytes) -> None:
        names = {m.decode() for m in _IDENT.findall(body)}
        for n in names:
            self._mentions[n] = (*self._mentions.get(n, ()), name)
        if names & SECTION_NAMES or names & self.reaching:
            pending = [name]
            while pending:
                current = pending.pop()
                if current in self.reaching:
                    continue
                self.reaching.add(current)
                pending += [m for m in self._mentions.get(current, ()) if m in self.table]
        else:
            self.reaching.discard(name)

    def _include(self, path: str, data: bytes, d: Directive) -> None:
        target = self._include_target(path, data, d)
        if target is not None:
            # Under an undecided #if, the header's own directives inherit that state.
            self._include_file(target)

    def _include_target(self, path: str, data: bytes, d: Directive) -> str | None:
        """The file an #include names (None, and noted in `missing`, when not found)."""
        toks = tokens(data, d.body, d.end, path)
        if toks and toks[0].kind not in ("str", "punct"):
            toks = self.expand(toks, _Expansion(frozenset()))
        if not toks:
            return None
        if toks[0].kind == "str":
            name, angled = toks[0].text[1:-1], False
        elif toks[0].text == "<":
            close = next((i for i, t in enumerate(toks) if t.text == ">"), None)
            if close is None:
                return None
            if toks[0].start >= 0 and toks[close].path == path:
                name = data[toks[0].end : toks[close].start].decode("utf-8", "replace")
            else:
                name = "".join(t.text for t in toks[1:close])
            angled = True
        else:
            return None
        target = self.find_include(name, angled, os.path.dirname(path))
        if target is None:
            self.missing.append(f"<{name}>" if angled else f'"{name}"')
        return target

    def find_include(self, name: str, angled: bool, here: str) -> str | None:
        dirs = list(self.setup.include_dirs)
        if not angled:
            dirs = [here, *self.setup.quote_dirs, *dirs]
        if os.path.isabs(name):
            return name if self.reader.exists(name) else None
        for directory in dirs:
            candidate = os.path.normpath(os.path.join(directory, name))
            if self.reader.exists(candidate):
                return candidate
        return self.reader.suffixes.unique(name)

    # -- #if expressions

    def evaluate(self, toks: list[Tok]) -> tuple[int | None, bool, tuple[str, ...]]:
        """Value (None: undecidable), whether the configuration decided it, unknown names."""
        facts = _Facts()
        first = self._pseudo(toks, facts)
        expansion = _Expansion(frozenset({"defined"}))
        expanded = self.expand(first, expansion)
        uncertain = False
        for m in expansion.used:
            facts.dependent = facts.dependent or m.configured
            if not self.settled(m):
                uncertain = True
                facts.unknowns += m.unknowns or (m.name,)
        values: list[Tok] = []
        for t in self._pseudo(expanded, facts):
            if t.kind != "id":
                values.append(t)
            elif t.text in ("true", "false"):
                values.append(t._replace(kind="num", text="1" if t.text == "true" else "0"))
            elif self.closed(t.text):
                facts.dependent = facts.dependent or self.decides(t.text)
                values.append(t._replace(kind="num", text="0"))
            else:
                facts.unknowns += (t.text,)
                values.append(t._replace(kind="unknown"))
        try:
            value = None if uncertain else _Evaluator(values).run()
        except (_EvalError, RecursionError):
            value = None
        unknowns = tuple(dict.fromkeys(facts.unknowns)) if value is None else ()
        return value, facts.dependent, unknowns

    def _pseudo(self, toks: list[Tok], facts: _Facts) -> list[Tok]:
        """`defined X`, `__has_include(...)` and the other `__has_*` operators, to values."""
        out: list[Tok] = []
        i = 0
        n = len(toks)
        while i < n:
            t = toks[i]
            if t.kind != "id":
                out.append(t)
                i += 1
                continue
            if t.text == "defined":
                j = i + 1
                paren = j < n and toks[j].text == "("
                if paren:
                    j += 1
                if j >= n or toks[j].kind != "id":
                    out.append(t._replace(kind="unknown"))
                    i = j
                    continue
                name = toks[j].text
                j += 1
                if paren and j < n and toks[j].text == ")":
                    j += 1
                value, unknowns = self._defined(name)
                facts.dependent = facts.dependent or self.decides(name)
                facts.unknowns += unknowns
                out.append(_value_token(t, value))
                i = j
                continue
            if t.text in _HAS_INCLUDE or t.text in _HAS_OTHER:
                j, group = _paren_group(toks, i + 1)
                value = None
                if t.text == "__has_include" and group:
                    value = self._has_include(group)
                out.append(_value_token(t, value))
                if value is None:
                    facts.unknowns += (t.text,)
                i = j
                continue
            out.append(t)
            i += 1
        return out

    def _has_include(self, group: list[Tok]) -> int | None:
        if group[0].kind == "str":
            found = self.find_include(group[0].text[1:-1], False, os.path.dirname(group[0].path))
        elif group[0].text == "<":
            found = self.find_include("".join(t.text for t in group[1:-1]), True, "")
        else:
            return None
        return 1 if found is not None else None  # not found: maybe in a system directory

    # -- expansion

    def expand(self, toks: list[Tok], ctx: _Expansion) -> list[Tok]:
        """Macro-expand `toks` (C's rescanning with hide sets)."""
        out: list[Tok] = []
        append = out.append
        pending = toks[::-1]
        pop = pending.pop
        table, blocked, keep = self.table, ctx.blocked, ctx.keep
        budget = _MAX_EXPANSION
        while pending:
            t = pop()
            if t.kind != "id":
                append(t)
                continue
            name = t.text
            m = table.get(name)
            if m is None or name in t.hide or name in blocked or (keep is not None and keep(m)):
                if name == "__COUNTER__" and m is None:
                    append(t._replace(kind="num", text=str(self.counter), created="counter"))
                    self.counter += 1
                else:
                    append(t)
                continue
            budget -= 1
            if budget < 0:  # a runaway expansion: give up, leaving the rest as written
                return out + pending[::-1]
            if m.params is None:
                ctx.used.append(m)
                pending += reversed(self._substitute(m, [], t.hide | {name}, t, ctx))
                continue
            if not pending or pending[-1].text != "(":
                append(t)
                continue
            args, close = _collect_args(pending)
            if close is None or not _arity_ok(m, args):
                pending += reversed(_rejoin(args, close) if args else [])
                append(t)
                continue
            ctx.used.append(m)
            pending += reversed(self._substitute(m, args, (t.hide & close.hide) | {name}, t, ctx))
        return out

    def _substitute(
        self, m: Macro, args: list[list[Tok]], hide: frozenset[str], call: Tok, ctx: _Expansion
    ) -> list[Tok]:
        if m.variadic and m.params:
            if len(args) > len(m.params):  # the variadic argument keeps its commas
                joined: list[Tok] = []
                for k, part in enumerate(args[len(m.params) - 1 :]):
                    if k:
                        joined.append(Tok("punct", ",", "", -1, -1))
                    joined += part
                args = [*args[: len(m.params) - 1], joined]
            while len(args) < len(m.params):
                args.append([])
        body = self.reader.body(m)
        if ctx.skim is not None:
            body = self._skimmed(m, body, args, ctx.skim)
        out = self._replace_params(m, body, args, ctx, {})
        result = []
        for t in out:
            if t.kind == "mark":
                continue
            space = call.space if not result else t.space
            # Tok(...) rather than _replace: this loop is the preprocessor's hot spot.
            result.append(
                Tok(t.kind, t.text, t.path, t.start, t.end, space,
                    t.hide | hide if t.hide else hide, t.macro, t.created)
            )  # fmt: skip
        return result

    def _skimmed(
        self, m: Macro, body: tuple[Tok, ...], args: list[list[Tok]], wanted: frozenset[str]
    ) -> tuple[Tok, ...]:
        groups = self.reader.brace_groups(m)
        if not groups:
            return body
        params = {p: i for i, p in enumerate(m.params or ())}
        parts: list[tuple[Tok, ...]] = []
        last = 0
        for start, end, names in groups:
            if names & wanted or any(
                t.text in wanted for p in names if p in params for t in args[params[p]]
            ):
                continue
            parts.append(body[last : start + 1])
            last = end
        parts.append(body[last:])
        return tuple(t for part in parts for t in part)

    def _replace_params(
        self,
        m: Macro,
        body: tuple[Tok, ...] | list[Tok],
        args: list[list[Tok]],
        ctx: _Expansion,
        expanded: dict[int, list[Tok]],
    ) -> list[Tok]:
        """The body with its parameters replaced: `#p`, `a ## b`, pre-expanded arguments."""
        params = {p: i for i, p in enumerate(m.params or ())}
        va = m.params[-1] if m.variadic and m.params else None
        mark = Tok("mark", "", "", -1, -1)
        out: list[Tok] = []
        i = 0
        n = len(body)
        while i < n:
            t = body[i]
            nxt = body[i + 1] if i + 1 < n else None
            if t.text == "#" and nxt is not None and nxt.text in params:
                out.append(_stringify(args[params[nxt.text]], t))
                i += 2
                continue
            if t.text == "##" and nxt is not None:
                if nxt.text in params:
                    raw = args[params[nxt.text]]
                    if raw:
                        out[-1:] = _paste(out[-1], raw[0]) if out else [raw[0]]
                        out += raw[1:]
                    elif nxt.text == va and out and out[-1].text == ",":
                        out.pop()  # GNU `, ## __VA_ARGS__` with nothing: drop the comma
                    else:
                        out.append(mark)
                else:
                    out[-1:] = _paste(out[-1], nxt) if out else [nxt]
                i += 2
                continue
            if t.text == "__VA_OPT__" and va is not None and nxt is not None and nxt.text == "(":
                j, group = _paren_group(body, i + 1)
                if args[params[va]]:
                    out += self._replace_params(m, group, args, ctx, expanded)
                i = j
                continue
            if t.text in params:
                index = params[t.text]
                if nxt is not None and nxt.text == "##":
                    out += args[index] or [mark]
                else:
                    if index not in expanded:
                        sub = _Expansion(ctx.blocked, ctx.keep)
                        expanded[index] = self.expand(args[index], sub)
                        ctx.used.extend(sub.used)
                    out += expanded[index]
                i += 1
                continue
            out.append(t)
            i += 1
        return out


def spell(toks: Iterable[Tok]) -> str:
    """Tokens as one line of C: `defined(A) && B > 1`."""
    out = ""
    prev = None
    for t in toks:
        tight = prev is None or prev in ("(", "!", "~") or t.text in (")", ",")
        tight = tight or (t.text == "(" and prev == "defined")
        out += t.text if tight else " " + t.text
        prev = t.text
    return out


_DEFINE_NAME = re.compile(rb"[ \t]*define[ \t]+([A-Za-z_]\w*)")


def _defined_names(data: bytes) -> frozenset[str]:
    # Once per file's bytes: every #include of a header asks again (a vmlinux.h is megabytes;
    # keyed by identity, as hashing it to key a cache would read it all).
    if len(data) >= large.HUGE:
        return large.once(data, "defined", _defined_names_in)
    return _defined_names_in_small(data)


@functools.lru_cache(maxsize=64)
def _defined_names_in_small(data: bytes) -> frozenset[str]:
    return _defined_names_in(data)


def _defined_names_in(data: bytes) -> frozenset[str]:
    # The names of `^[ \t]*#[ \t]*define[ \t]+NAME` lines, found from their `#` (bytes.find):
    # a MULTILINE regex led by `^` is tried at every byte (3x the time on a project's headers).
    found = (_DEFINE_NAME.match(data, at + 1) for _start, at, _end in _hash_lines(data))
    return frozenset(m.group(1).decode() for m in found if m is not None)


def _value_token(t: Tok, value: int | None) -> Tok:
    if value is None:
        return t._replace(kind="unknown", text="?")
    return t._replace(kind="num", text=str(value))


def _paren_group(toks: list[Tok] | tuple[Tok, ...], i: int) -> tuple[int, list[Tok]]:
    """(index after the group starting at toks[i] == "(", the tokens inside)."""
    if i >= len(toks) or toks[i].text != "(":
        return i, []
    depth = 0
    for j in range(i, len(toks)):
        if toks[j].text == "(":
            depth += 1
        elif toks[j].text == ")":
            depth -= 1
            if depth == 0:
                return j + 1, list(toks[i + 1 : j])
    return len(toks), list(toks[i + 1 :])


def _collect_args(pending: list[Tok]) -> tuple[list[list[Tok]], Tok | None]:
    """Pop `( a, b )` off the reversed token stack; the arguments and the closing paren."""
    pending.pop()  # "("
    args: list[list[Tok]] = [[]]
    depth = 1
    taken: list[Tok] = []
    while pending:
        t = pending.pop()
        taken.append(t)
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
            if depth == 0:
                return args, t
        elif t.text == "," and depth == 1:
            args.append([])
            continue
        args[-1].append(t)
    pending.extend(reversed(taken))
    return [], None


def _rejoin(args: list[list[Tok]], close: Tok | None) -> list[Tok]:
    out = [Tok("punct", "(", "", -1, -1)]
    for k, part in enumerate(args):
        if k:
            out.append(Tok("punct", ",", "", -1, -1))
        out += part
    if close is not None:
        out.append(close)
    return out


def _arity_ok(m: Macro, args: list[list[Tok]]) -> bool:
    count = len(m.params or ())
    if count == 0:
        return len(args) == 1 and not args[0]
    if m.variadic:
        return len(args) >= count - 1
    return len(args) == count


def _stringify(arg: list[Tok], hash_tok: Tok) -> Tok:
    parts = []
    for k, t in enumerate(arg):
        text = t.text
        if t.kind in ("str", "char"):
            text = text.replace("\\", "\\\\").replace('"', '\\"')
        parts.append((" " if k and t.space else "") + text)
    text = '"' + "".join(parts) + '"'
    files = {t.path for t in arg}
    if arg and len(files) == 1 and all(t.start >= 0 for t in arg):
        return Tok("str", text, arg[0].path, arg[0].start, arg[-1].end, hash_tok.space,
                   _EMPTY, arg[0].macro, "stringify")  # fmt: skip
    return Tok("str", text, hash_tok.path, hash_tok.start, hash_tok.end, hash_tok.space, _EMPTY,
               hash_tok.macro, "stringify")  # fmt: skip


def _paste(left: Tok, right: Tok) -> list[Tok]:
    if left.kind == "mark":
        return [right]
    if right.kind == "mark":
        return [left]
    text = left.text + right.text
    lexed = tokens(text.encode(), 0, len(text.encode()), "")
    if len(lexed) != 1:
        return [left, right]  # not one token: clang errors, gcc keeps both
    return [
        left._replace(kind=lexed[0].kind, text=text, created="paste", hide=left.hide & right.hide)
    ]


class _EvalError(Exception):
    pass


_BINARY = {
    "*": 10, "/": 10, "%": 10, "+": 9, "-": 9, "<<": 8, ">>": 8, "<": 7, ">": 7, "<=": 7,
    ">=": 7, "==": 6, "!=": 6, "&": 5, "^": 4, "|": 3, "&&": 2, "||": 1,
}  # fmt: skip
_INT = re.compile(r"(0[xX][0-9a-fA-F]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)[uUlL]*\Z")


class _Evaluator:
    """C's #if arithmetic over three values: an int, or None for undecidable."""

    def __init__(self, toks: list[Tok]) -> None:
        self.toks = toks
        self.i = 0

    def run(self) -> int | None:
        value = self.comma()
        if self.i != len(self.toks):
            raise _EvalError("trailing tokens")
        return value

    def peek(self) -> str | None:
        return self.toks[self.i].text if self.i < len(self.toks) else None

    def comma(self) -> int | None:
        value = self.ternary()
        while self.peek() == ",":
            self.i += 1
            value = self.ternary()
        return value

    def ternary(self) -> int | None:
        cond = self.binary(1)
        if self.peek() != "?":
            return cond
        self.i += 1
        yes = self.comma()
        if self.peek() != ":":
            raise _EvalError("missing :")
        self.i += 1
        no = self.ternary()
        if cond is None:
            return yes if yes == no else None
        return yes if cond else no

    def binary(self, level: int) -> int | None:
        left = self.unary()
        while True:
            op = self.peek()
            prec = _BINARY.get(op or "")
            if prec is None or prec < level:
                return left
            self.i += 1
            right = self.binary(prec + 1)
            left = _apply(op, left, right)  # type: ignore[arg-type]

    def unary(self) -> int | None:
        op = self.peek()
        if op in ("!", "~", "-", "+"):
            self.i += 1
            value = self.unary()
            if value is None:
                return None
            return {"!": int(not value), "~": ~value, "-": -value, "+": value}[op]
        return self.primary()

    def primary(self) -> int | None:
        if self.i >= len(self.toks):
            raise _EvalError("missing operand")
        t = self.toks[self.i]
        self.i += 1
        if t.text == "(":
            value = self.comma()
            if self.peek() != ")":
                raise _EvalError("missing )")
            self.i += 1
            return value
        if t.kind == "unknown":
            return None
        if t.kind == "num":
            m = _INT.match(t.text)
            if m is None:
                raise _EvalError(f"not an integer: {t.text}")
            digits = m.group(1)
            if digits[:2] in ("0x", "0X", "0b", "0B"):
                return int(digits[2:], 16 if digits[1] in "xX" else 2)
            return int(digits, 8) if digits.startswith("0") and len(digits) > 1 else int(digits)
        if t.kind == "char":
            body = t.text[t.text.index("'") + 1 : -1]
            value = decode_literal('"' + body + '"')
            if not value:
                raise _EvalError("empty char")
            return ord(value[0])
        raise _EvalError(f"unexpected {t.text}")


def _apply(op: str, a: int | None, b: int | None) -> int | None:
    if op == "&&":
        if a == 0 or b == 0:
            return 0
        return None if a is None or b is None else 1
    if op == "||":
        if (a is not None and a != 0) or (b is not None and b != 0):
            return 1
        return None if a is None or b is None else 0
    if a is None or b is None:
        return None
    if op in ("/", "%"):
        if b == 0:
            return None
        q = abs(a) // abs(b)
        q = q if (a >= 0) == (b >= 0) else -q  # C truncates towards zero
        return q if op == "/" else a - q * b
    if op in ("<<", ">>") and not 0 <= b < 128:
        return None
    return _OPERATORS[op](a, b)


_OPERATORS: dict[str, Callable[[int, int], int]] = {
    "*": operator.mul, "+": operator.add, "-": operator.sub, "<<": operator.lshift,
    ">>": operator.rshift, "&": operator.and_, "^": operator.xor, "|": operator.or_,
    "<": lambda a, b: int(a < b), ">": lambda a, b: int(a > b), "<=": lambda a, b: int(a <= b),
    ">=": lambda a, b: int(a >= b), "==": lambda a, b: int(a == b), "!=": lambda a, b: int(a != b),
}  # fmt: skip


# -- resolving sites ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resolution:
    """The sites after macro resolution, and the problems met on the way."""

    sites: list[SectionSite]
    problems: tuple[FileProblem, ...] = ()


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one configuration made of one site's argument."""

    section: str | None
    spellings: tuple[Spelling, ...]
    configuration: str | None
    unresolved_macro: str | None = None
    reason: str | None = None


def outcome(
    final: list[Tok], used: Iterable[Macro], pre: Preprocessor, display: Callable[[str], str]
) -> _Outcome:
    """The section `final` (an expanded argument) spells, or why it is not one."""
    used = list(dict.fromkeys(used))
    # The conditions around the site itself are its `branch`, not a configuration it needs.
    conditions = tuple(
        dict.fromkeys(c for m in used if m.where is not None for c in m.where.conditions())
    )
    configuration = " && ".join(conditions) or None
    uncertain = [m for m in used if not pre.settled(m)]
    if uncertain:
        m = uncertain[0]
        unknowns = m.unknowns or (m.name,)
        hint = "--target-arch" if any(u in _ALL_ARCH_NAMES for u in unknowns) else "--define"
        names = ", ".join(f"`{u}`" for u in unknowns)
        reason = (
            f"`{m.name}` is defined under an #if on {names}, which nothing in the "
            f"configuration sets (choose with {hint} or a compile_commands.json)"
        )
        return _Outcome(None, (), configuration, m.name, reason)
    leftover = next((t for t in final if t.kind != "str"), None)
    if leftover is not None or not final:
        return _Outcome(None, (), configuration, *_why(leftover, pre))
    spellings = []
    for t in final:
        value = decode_literal(t.text)
        if value is None:
            return _Outcome(None, (), configuration, None, f"`{t.text}` is not a string literal")
        kind = (
            "literal"
            if t.created is None
            else ("stringify" if t.created == "stringify" else "other")
        )
        if t.start >= 0 and t.path and not t.path.startswith("<"):
            span = pre.reader.span(t.path, t.start, t.end)
            path = display(t.path)
        else:
            span = _NOWHERE
            path = COMMAND_LINE if t.path.startswith(COMMAND_LINE[:-1]) else (t.path or "?")
        spellings.append(Spelling(path, Piece(kind, t.text, value, span), t.macro))
    section = "".join(s.piece.value or "" for s in spellings)
    return _Outcome(section, tuple(spellings), configuration)


_NOWHERE = Span(0, 0, Position(1, 1), Position(1, 1))  # a spelling no file holds


def _why(t: Tok | None, pre: Preprocessor) -> tuple[str | None, str]:
    if t is None:
        return None, "the argument expands to nothing"
    if t.kind != "id":
        return None, f"the argument expands to `{t.text}`, not only string literals"
    via = f" (from `{t.macro}`)" if t.macro and t.macro != t.text else ""
    m = pre.table.get(t.text)
    if m is not None and m.params is not None:
        return t.text, f"`{t.text}`{via} is a function-like macro used without arguments"
    if m is not None:
        # Defined, yet left as it is: the name is in its own expansion, which the
        # preprocessor does not expand again (C11 6.10.3.4p2).
        return t.text, (
            f"`{t.text}`{via} is a recursive macro: its expansion leads back to `{t.text}`, "
            "which the preprocessor leaves unexpanded"
        )
    missing = ""
    if pre.missing:
        shown = ", ".join(dict.fromkeys(pre.missing))
        missing = f" (headers not found: {_clip(shown)})"
    return t.text, f"`{t.text}`{via} is not defined in the file or the headers secl read{missing}"


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _FileJob:
    """One main file under one configuration: its unresolved sites, and the uses of macros
    that write a section site (`KPROBE(fn)`, `TAIL_FUNC(0)`, `private(A)`)."""

    def __init__(
        self,
        pre: Preprocessor,
        path: str,
        data: bytes,
        tree: Tree | None,
        sites: list[SectionSite],
        display: Callable[[str], str],
    ) -> None:
        self.pre = pre
        self.path = path  # as the user reached it
        self.abs = os.path.abspath(path)
        self.data = data
        self.tree = tree
        self.display = display
        self.pending = sorted(
            (s for s in sites if s.section is None and not s.template),
            key=lambda s: s.span.start_byte,
        )
        self.next = 0
        self.resolved: dict[int, _Outcome] = {}  # site span start -> outcome
        self.uses: list[SectionSite] = []
        self.use_outcomes: list[_Outcome] = []
        self.consumed = 0
        self.taken = [_extent(s, data) for s in sites if not s.template]
        self._patterns: dict[frozenset[str], re.Pattern[bytes]] = {}
        self._writes_definitions: dict[tuple[str, int], bool] = {}
        self._guard: list = []  # the file's include guard node, once looked up

    def segment(self, start: int, end: int, state: bool | None) -> None:
        while self.next < len(self.pending) and self.pending[self.next].span.start_byte < end:
            site = self.pending[self.next]
            self.next += 1
            toks = tokens(self.data, site.span.start_byte, site.span.end_byte, self.abs)
            ctx = _Expansion(SECTION_NAMES)
            final = self.pre.expand(toks, ctx)
            self.resolved[site.span.start_byte] = outcome(final, ctx.used, self.pre, self.display)
        if state is False or not self.pre.reaching:
            return
        names = frozenset(self.pre.reaching)
        pattern = self._patterns.get(names)
        if pattern is None:
            alternatives = b"|".join(
                re.escape(n.encode()) for n in sorted(names, key=len, reverse=True)
            )
            # No `\b` in front: a pattern led by its names is searched for by their first
            # bytes (or common prefix), one led by `\b` is tried at every byte. The boundary
            # is checked below, as `\b` would (names are identifiers: a hit that fails it holds
            # no other hit).
            pattern = self._patterns[names] = re.compile(rb"(?:" + alternatives + rb")\b")
        data = self.data
        search = pattern.search
        pos = max(start, self.consumed)
        while (hit := search(data, pos, end)) is not None:
            at = hit.start()
            if at and data[at - 1] in _WORD_BYTES:
                pos = at + 1
                continue
            pos = hit.end()
            if at < self.consumed or self._inside_site(at):
                continue
            if not self._is_code(at, pos):
                continue
            self._use(at, hit.group().decode(), end)

    def _inside_site(self, offset: int) -> bool:
        return any(a <= offset < b for a, b in self.taken)

    def _is_code(self, start: int, end: int) -> bool:
        if self.tree is None:
            return True
        node = self.tree.root_node.descendant_for_byte_range(start, end)
        return (
            node is not None
            and node.start_byte == start
            and node.end_byte == end
            and node.type in ("identifier", "type_identifier", "field_identifier", "primitive_type")
        )

    def _use(self, start: int, name: str, limit: int) -> None:
        m = self.pre.table.get(name)
        if m is None:
            return
        invocation = _invocation(self.data, start, limit, self.abs, m.params is not None)
        if invocation is None:
            return
        end = invocation[-1].end
        ctx = _Expansion(SECTION_NAMES, self._keep, SECTION_NAMES | self.pre.reaching)
        expanded = self.pre.expand(invocation, ctx)
        rest = self._file_tokens(end)
        stream = _Stream(expanded, rest)
        found = 0
        index = 0
        while True:
            index = stream.find_site(index)
            if index is None:
                break
            site_tok = stream.get(index)
            args, after = stream.group(index + 1)
            if args is None:
                break
            sub = _Expansion(SECTION_NAMES)
            final = self.pre.expand(args, sub)
            chain = [self.pre.table[h] for h in site_tok.hide if h in self.pre.table]
            chain += [self.pre.table[h] for t in args for h in t.hide if h in self.pre.table]
            result = outcome(final, [*chain, *sub.used], self.pre, self.display)
            self.uses.append(self._use_site(name, start, end, stream, index, after, result))
            self.use_outcomes.append(result)
            found += 1
            index = after
        if found:
            self.consumed = max(self.consumed, end)

    def _keep(self, macro: Macro) -> bool:
        """Macros that write definitions (BPF_PROG(name, ...)) stay as written in a use: their
        first argument names the program, as tree-sitter reads it. So do annotations
        (`__description(...)`, `__naked`): they name nothing and cost time."""
        if macro.name in self.pre.reaching:
            return False
        if _ATTRIBUTE_LIKE.match(macro.name):
            return True
        key = (macro.path, macro.start)
        found = self._writes_definitions.get(key)
        if found is None:
            body = self.pre.reader.body(macro)
            found = self._writes_definitions[key] = any(t.text in ("{", ";") for t in body)
        return found

    def _file_tokens(self, start: int) -> Iterator[Tok]:
        from secl.parse.tree import lex

        for tok in lex(self.data, start):
            kind = _LEX_KINDS.get(tok.type, "punct")
            yield Tok(
                kind, tok.text.decode("utf-8", "replace"), self.abs, tok.start_byte, tok.end_byte
            )

    def _use_site(
        self,
        name: str,
        start: int,
        end: int,
        stream: _Stream,
        index: int,
        after: int,
        result: _Outcome,
    ) -> SectionSite:
        kind, name_tok, is_static, brace = _declared(stream, index, after)
        span = self.pre.reader.span(self.abs, start, end)
        name_span = span
        if (
            name_tok is not None
            and name_tok.path == self.abs
            and name_tok.created is None
            and name_tok.macro is None
        ):
            name_span = self.pre.reader.span(self.abs, name_tok.start, name_tok.end)
        body = None
        if brace is not None and brace.path == self.abs and brace.macro is None:
            body = _brace_range(self.data, brace.start)
        program = (
            name_tok.text if name_tok is not None and kind in ("program", "prototype") else None
        )
        symbol = name_tok.text if name_tok is not None and kind == "data" else None
        return SectionSite(
            path=self.path,
            macro=name,
            span=span,
            pieces=(),  # a use has no section argument of its own: see `spellings`
            section_text=self.data[start:end].decode("utf-8", "replace"),
            section=result.section,
            kind=kind,  # type: ignore[arg-type]
            program=program,
            symbol=symbol,
            name_span=name_span,
            is_static=is_static,
            body=body,
            branch=self.pre.branch(),  # the preprocessor knows it better than the tree
            template=False,
            resolved_by="macro" if result.section is not None else None,
            configuration=result.configuration,
            spellings=result.spellings,
            unresolved_macro=result.unresolved_macro,
            unresolved_reason=result.reason,
        )

    def _branch(self, start: int, end: int) -> str | None:
        if self.tree is None:
            return None
        from secl.parse.bpf import _include_guard, branch_condition

        if not self._guard:
            self._guard.append(_include_guard(self.tree.root_node))
        node = self.tree.root_node.descendant_for_byte_range(start, end)
        if node is None:
            return None
        return branch_condition(node, self._guard[0], self.tree.root_node)


_LEX_KINDS = {
    "identifier": "id", "struct": "id", "union": "id", "enum": "id", "static": "id", "asm": "id",
    "string_literal": "str", "char_literal": "char", "number_literal": "num",
}  # fmt: skip


def _extent(site: SectionSite, data: bytes) -> tuple[int, int]:
    """From the site's macro name to the end of its argument."""
    start = site.span.start_byte
    found = data.rfind(site.macro.encode(), max(0, start - 256), start)
    return (found if found >= 0 else start), site.span.end_byte


def _invocation(
    data: bytes, start: int, limit: int, path: str, function_like: bool
) -> list[Tok] | None:
    """The tokens of a macro use at `start`: the name, and its parenthesised arguments."""
    out: list[Tok] = []
    depth = 0
    space = False
    for m in _TOKEN.finditer(data, start, limit):
        kind = m.lastgroup
        if kind == "ws":
            space = True
            continue
        out.append(Tok(kind, m.group().decode("utf-8", "replace"), path, m.start(), m.end(), space))  # type: ignore[arg-type]
        space = False
        if len(out) == 1:
            if not function_like:
                return out
            continue
        text = out[-1].text
        if len(out) == 2 and text != "(":
            return None
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
            if depth == 0:
                return out
    return None


class _Stream:
    """An expansion followed by the file's own tokens after the macro use, read lazily."""

    def __init__(self, head: list[Tok], rest: Iterator[Tok]) -> None:
        self.toks = list(head)
        self.head = len(head)
        self.rest = rest

    def get(self, i: int) -> Tok | None:
        while i >= len(self.toks):
            nxt = next(self.rest, None)
            if nxt is None:
                return None
            self.toks.append(nxt)
        return self.toks[i]

    def find_site(self, i: int) -> int | None:
        """The next section site (`SEC(`, `__section(`, `__attribute__((section(`) inside the
        expansion itself; the file's own tokens after it are tree-sitter's."""
        while i < self.head:
            t = self.toks[i]
            if t.kind == "id" and t.text in SECTION_NAMES and self.get(i + 1) is not None:
                nxt = self.toks[i + 1]
                if nxt.text == "(" and (
                    t.text in ("SEC", "__section") or _in_attribute(self.toks, i)
                ):
                    return i
            i += 1
        return None

    def group(self, i: int) -> tuple[list[Tok] | None, int]:
        """The tokens inside the parenthesised group at i, and the index after it."""
        if (t := self.get(i)) is None or t.text != "(":
            return None, i
        depth = 0
        j = i
        while (t := self.get(j)) is not None:
            if t.text == "(":
                depth += 1
            elif t.text == ")":
                depth -= 1
                if depth == 0:
                    return self.toks[i + 1 : j], j + 1
            j += 1
        return None, j


def _in_attribute(toks: list[Tok], i: int) -> bool:
    for t in reversed(toks[max(0, i - 12) : i]):
        if t.text in ("__attribute__", "__attribute"):
            return True
        if t.text in (";", "{", "}"):
            return False
    return False


def _declared(stream: _Stream, site: int, after: int) -> tuple[str, Tok | None, bool, Tok | None]:
    """What the site at `site` decorates: (kind, name token, static, the body's `{`). The same
    reading as tree-sitter's side (secl.parse.bpf), over expanded tokens."""
    from secl.parse.bpf import _WRAPPER, ATTRIBUTE_CALLEES

    i = after
    if stream.toks[site].text in ("section", "__section__"):
        depth = 2  # finish the enclosing __attribute__((...))
        while depth and (t := stream.get(i)) is not None:
            depth += {"(": 1, ")": -1}.get(t.text, 0)
            i += 1
    calls: list[tuple[Tok, Tok]] = []
    prev: Tok | None = None
    prev2: Tok | None = None
    idents: list[Tok] = []
    guessed: tuple[Tok, Tok] | None = None
    is_static = False
    for _ in range(600):
        t = stream.get(i)
        if t is None:
            break
        i += 1
        text = t.text
        if text == "(":
            callee = prev if prev is not None and prev.kind == "id" else None
            first, single, close, i = _group_info(stream, i)
            if close is None:
                break
            if callee is not None:
                if callee.text in _TYPEOF:
                    pass  # `typeof(expr) name(...)`: a return type, not the declarator
                elif callee.text in ATTRIBUTE_CALLEES or _ATTRIBUTE_LIKE.match(callee.text):
                    if idents and idents[-1] is callee:
                        idents.pop()  # `x __contains(...)`: still `x`
                    if callee.text not in ATTRIBUTE_CALLEES:
                        guessed = (callee, close)  # `__x(...)` right before `{` is a function
                else:
                    name = first if _WRAPPER.match(callee.text) and single and first else callee
                    calls.append((name, close))
            prev2, prev = prev, close
            continue
        if text == "{":
            if (prev is not None and prev.text in _TYPE_KEYWORDS) or (
                prev is not None
                and prev.kind == "id"
                and prev2 is not None
                and prev2.text in _TYPE_KEYWORDS
            ):
                i = _skip_braces(stream, i)
                prev2, prev = prev, None
                continue
            if calls:
                return "program", calls[-1][0], is_static, t
            if guessed is not None and guessed[1] is prev:
                return "program", guessed[0], is_static, t
            break
        if text in (";", "=", ","):
            if prev is None:
                return "data", _symbol_before(stream.toks, site), False, None
            if text == ";" and calls and calls[-1][1] is prev:
                return "prototype", calls[-1][0], is_static, None
            return "data", _declarator(idents), False, None
        if t.kind == "id":
            if text in SECTION_NAMES:
                break
            if text == "static":
                is_static = True
            idents.append(t)
        prev2, prev = prev, t
    return "unknown", None, is_static, None


_TYPE_KEYWORDS = frozenset({"struct", "union", "enum"})
# GNU C's typeof operators (C23's typeof too): `typeof(f(0)) f(...)` names a type.
_TYPEOF = frozenset({"typeof", "__typeof__", "__typeof", "typeof_unqual"})
# `head __contains(foo, node)`, `__arg_ctx`, `__ksym`: lower-case `__` macros annotate a
# declaration; they are never the program's name.
_ATTRIBUTE_LIKE = re.compile(r"__[a-z]")


# Words that are never a declarator's name.
_C_WORDS = frozenset(
    {"void", "char", "short", "int", "long", "float", "double", "signed", "unsigned", "const",
     "volatile", "static", "extern", "struct", "union", "enum", "inline", "_Bool", "__u8",
     "__u16", "__u32", "__u64", "__s32", "__s64", "u8", "u16", "u32", "u64"}
)  # fmt: skip


def _declarator(idents: list[Tok]) -> Tok | None:
    last = idents[-1] if idents else None
    return None if last is None or last.text in _C_WORDS else last


def _group_info(stream: _Stream, i: int) -> tuple[Tok | None, bool, Tok | None, int]:
    depth = 1
    first: Tok | None = None
    single = False
    index = 0
    while (t := stream.get(i)) is not None:
        i += 1
        if index == 1 and depth == 1:
            single = first is not None and first.kind == "id" and t.text in (",", ")")
        index += 1
        if index == 1:
            first = t
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
            if depth == 0:
                return first, single, t, i
    return first, single, None, i


def _skip_braces(stream: _Stream, i: int) -> int:
    depth = 1
    while (t := stream.get(i)) is not None:
        i += 1
        if t.text == "{":
            depth += 1
        elif t.text == "}":
            depth -= 1
            if depth == 0:
                break
    return i


def _symbol_before(toks: list[Tok], site: int) -> Tok | None:
    """The declarator before a trailing site: `void *name __attribute__((section("x")))`."""
    from secl.parse.bpf import ATTRIBUTE_CALLEES

    i = site - 1
    while i >= 0 and toks[i].text in ("(", "__attribute__", "__attribute"):
        i -= 1
    depth = 0
    skip_callee = False
    while i >= 0:
        t = toks[i]
        i -= 1
        if t.text in (")", "]"):
            depth += 1
        elif t.text in ("(", "["):
            depth -= 1
            skip_callee = depth == 0 and t.text == "("
        elif depth == 0:
            if t.kind == "id":
                if (
                    skip_callee
                    or t.text in ATTRIBUTE_CALLEES
                    or t.text in ("__attribute__", "__attribute")
                ):
                    skip_callee = False
                    continue
                return None if t.text in _C_WORDS else t
            if t.text in (";", "{", "}"):
                return None
    return None


def _brace_range(data: bytes, start: int) -> tuple[int, int] | None:
    from secl.parse.tree import lex

    depth = 0
    for tok in lex(data, start):
        if tok.type == "{":
            depth += 1
        elif tok.type == "}":
            depth -= 1
            if depth == 0:
                return start, tok.end_byte
    return None


# -- the entry point ------------------------------------------------------------------------

# A section call, and its argument when that is one string literal (no macro writes it).
_SEC_OPEN = re.compile(rb"SEC\s*\(")
_LITERAL_ARGUMENT = re.compile(rb'\s*"[^"\n]*"\s*\)')


def may_read_tree(data: bytes) -> bool:
    """Whether `resolve_sites` is likely to read this file's tree: it has a section that
    macros may write (a `SEC(` whose argument is not one string literal), or a macro that
    writes sections (a `SEC(` on a `#define` line or after a line continuation). A hint
    only, for where to parse the file (secl.parallel: the tree stays in the process that
    parsed it): files whose tree is read for a header's macros are not foreseen, and a
    wrong answer costs nothing but time."""
    if b"SEC" not in data:
        return False
    for m in _SEC_OPEN.finditer(data):
        if not _LITERAL_ARGUMENT.match(data, m.end()):
            return True
        line = data.rfind(b"\n", 0, m.start())
        if data[line + 1 : m.start()].lstrip(b" \t").startswith(b"#") or (
            line > 0 and data[line - 1 : line] == b"\\"
        ):
            return True
    return False


_DEFINE_ARG = re.compile(r"[A-Za-z_]\w*(\([\w\s,.]*\))?(=.*)?\Z", re.S)
_MAX_CRAWL = 6  # levels of #include "..." followed to find a header whose macros write SEC


def resolve_sites(
    sites: list[SectionSite],
    files: dict[str, bytes],
    config: Config,
    root: str,
    tree_of: Callable[[str], Tree],
    presolved: Mapping[str, list[SectionSite]] | None = None,
    build: BuildIncludes | None = None,
) -> Resolution:
    """`sites` with every unresolved section computed where the configuration allows, plus a
    site for each use of a macro that writes `SEC(...)`. With a compile_commands.json (found
    under `root` or configured) libclang settles the sites of the files it lists.
    `presolved` has the sites of files that a `FileResolver` resolved already (where their
    trees were: a worker process), for the same files and configuration. `build` gives the
    include directories the project's build compiles each file with (secl.parse.includes)."""
    from secl.parse import compdb

    # A lone CR ends a line as LF does (see tree.line_ends); offsets do not move.
    files = {path: line_ends(data) for path, data in files.items()}
    reader = _Reader(files, root)
    by_path: dict[str, list[SectionSite]] = {}
    for s in sites:
        by_path.setdefault(s.path, []).append(s)
    problems: list[FileProblem] = []
    db: CompileDb | None = None
    try:
        located = compdb.locate(root, config.compile_commands)
        if located is not None:
            db = compdb.load(located, compdb.in_view(files))
    except compdb.CompileCommandsError as err:
        problems.append(FileProblem(err.path, f"{err.message}; resolving macros without it"))
    include_dirs = tuple(os.path.abspath(d) for d in config.include_dirs)
    candidates = _candidates(by_path, files, reader, db, include_dirs, build)
    lost = _lost_programs(by_path, files, reader, db, include_dirs, tree_of, build)
    if not candidates:
        return Resolution(sites + lost, tuple(problems))
    arch = None
    if config.target_arch:
        arch = known_arch(config.target_arch)
        if arch is None:
            known = ", ".join(known_arches())
            problems.append(
                FileProblem(
                    "target-arch", f"unknown architecture {config.target_arch!r} (known: {known})"
                )
            )
    defines = []
    for text in config.defines:
        if _DEFINE_ARG.match(text):
            defines.append(text)
        else:
            problems.append(
                FileProblem("defines", f"{text!r} is not NAME, NAME=VALUE or NAME(ARGS)=BODY")
            )
    display = _display(files)
    clang = _Clang(problems, [*defines, *(arch_defines(arch) if arch else ())])
    replaced: dict[str, list[SectionSite]] = {}
    for path in candidates:
        if presolved is not None and db is None and path in presolved:
            replaced[path] = presolved[path]
            continue
        replaced[path] = _resolve_file(
            path,
            files[path],
            by_path.get(path, []),
            reader,
            db,
            defines,
            arch,
            tree_of,
            display,
            clang,
            _file_dirs(path, db, include_dirs, build),
        )
    out: list[SectionSite] = []
    for path in dict.fromkeys([*by_path, *replaced]):
        out += replaced.get(path, by_path.get(path, []))
    return Resolution(_share(out) + lost, tuple(problems))


class FileResolver:
    """What `resolve_sites` does for one file, done where its tree is: in the process that
    parsed it (secl.parallel), so that the main process takes the result instead of parsing
    the file again. Only without a compile_commands.json (libclang and its problems stay in
    the main process) and for the files `resolve_sites` resolves; the same files and
    configuration give the same sites in any process (the reader's tables are caches)."""

    def __init__(
        self,
        files: dict[str, bytes],
        config: Config,
        root: str,
        build: BuildIncludes | None = None,
    ) -> None:
        from secl.parse import compdb

        try:
            self.enabled = compdb.locate(root, config.compile_commands) is None
        except compdb.CompileCommandsError:
            self.enabled = False
        self._config = config
        self._files = files
        self._root = root
        self._ready = False
        self._build = build
        if self.enabled and build is not None:
            build.rules()  # read once here, before the workers fork

    def _prepare(self) -> None:
        # As resolve_sites prepares (its problems are its own to report).
        config = self._config
        self._files = {path: line_ends(data) for path, data in self._files.items()}
        self._reader = _Reader(self._files, self._root)
        self._include_dirs = tuple(os.path.abspath(d) for d in config.include_dirs)
        self._arch = known_arch(config.target_arch) if config.target_arch else None
        self._defines = [text for text in config.defines if _DEFINE_ARG.match(text)]
        arch_extra = arch_defines(self._arch) if self._arch else ()
        self._clang = _Clang([], [*self._defines, *arch_extra])
        self._display = _display(self._files)
        self._memo: dict[tuple[str, tuple[str, ...]], bool] = {}
        self._ready = True

    def sites(
        self, path: str, sites: Sequence[SectionSite], tree: Tree
    ) -> list[SectionSite] | None:
        """The sites of `path` once resolved, or None when `resolve_sites` leaves them."""
        if not self.enabled or path not in self._files:
            return None
        if not self._ready:
            self._prepare()
        data = self._files[path]
        reader, dirs, build = self._reader, self._include_dirs, self._build
        if not _is_candidate(path, data, sites, reader, None, dirs, self._memo, build):
            return None
        return _resolve_file(
            path, data, list(sites), reader, None, self._defines, self._arch,
            lambda _path: tree, self._display, self._clang, _file_dirs(path, None, dirs, build),
        )  # fmt: skip


def _candidates(
    by_path: dict[str, list[SectionSite]],
    files: dict[str, bytes],
    reader: _Reader,
    db: CompileDb | None,
    include_dirs: tuple[str, ...] = (),
    build: BuildIncludes | None = None,
) -> list[str]:
    """Files with a site to resolve, a #define that writes a site, or a local header that has
    one (its uses become sites)."""
    memo: dict[tuple[str, tuple[str, ...]], bool] = {}
    return [
        path
        for path, data in files.items()
        if _is_candidate(path, data, by_path.get(path, ()), reader, db, include_dirs, memo, build)
    ]


def _is_candidate(
    path: str,
    data: bytes,
    sites: Sequence[SectionSite],
    reader: _Reader,
    db: CompileDb | None,
    include_dirs: tuple[str, ...],
    memo: dict[tuple[str, tuple[str, ...]], bool],
    build: BuildIncludes | None = None,
) -> bool:
    if any(s.template or s.section is None for s in sites):
        return True
    if not _may_include(data):
        return False
    dirs = _search_dirs(path, db, include_dirs, build)
    return _reaches_templates(os.path.abspath(path), data, reader, dirs, memo, 0)


def _may_include(data: bytes) -> bool:
    """Whether `_ANY_INCLUDE` may match: each match starts at a `#` (a huge file: tried at
    its few, not searched for `include` in megabytes)."""
    if b"#" not in data:
        return False
    found = large.marks(data)
    if found is None or found.hashes is None:
        return b"include" in data
    return large.search_at(_ANY_INCLUDE, data, found.hashes) is not None


def _search_dirs(
    path: str,
    db: CompileDb | None,
    include_dirs: tuple[str, ...],
    build: BuildIncludes | None = None,
) -> tuple[str, ...]:
    """The -I directories a file is read with: its compile command's, then --include-dir,
    then (without a compile command) those its build passes."""
    if db is not None and (entries := db.for_file(path)):
        return entries[0].quote_dirs + entries[0].include_dirs + include_dirs
    return _file_dirs(path, db, include_dirs, build)


def _file_dirs(
    path: str,
    db: CompileDb | None,
    include_dirs: tuple[str, ...],
    build: BuildIncludes | None,
) -> tuple[str, ...]:
    """--include-dir, then the directories the build compiles `path` with when no compile
    command says how (a compile command is the compiler's own view)."""
    if build is None or (db is not None and db.for_file(path)):
        return include_dirs
    extra = build.dirs_for(path)
    return include_dirs + tuple(d for d in extra if d not in include_dirs)


def _reaches_templates(
    path: str,
    data: bytes,
    reader: _Reader,
    dirs: tuple[str, ...],
    memo: dict[str, bool],
    depth: int,
) -> bool:
    if depth > _MAX_CRAWL:
        return False
    here = os.path.dirname(path)
    for m in _ANY_INCLUDE.finditer(data):
        name = (m.group(1) or m.group(2)).decode("utf-8", "replace")
        # `<...>` headers are searched in the -I directories only (system ones never hold a
        # project's SEC-writing macros).
        for directory in (here, *dirs) if m.group(1) else dirs:
            target = os.path.normpath(os.path.join(directory, name))
            if reader.exists(target):
                break
        else:
            target = reader.suffixes.unique(name)
            if target is None:
                continue
        # Keyed by the directories too: what a header reaches depends on them.
        key = (target, dirs)
        if key not in memo:
            memo[key] = False  # cycles end here
            memo[key] = reader.has_templates(target) or _reaches_templates(
                target, reader.data(target) or b"", reader, dirs, memo, depth + 1
            )
        if memo[key]:
            return True
    return False


def _find(name: str, dirs: Iterable[str], reader: _Reader) -> str | None:
    """The file an #include names: in the first of `dirs` that has it, else by a unique path
    suffix among the project's files (secl.parse.includes)."""
    for directory in dirs:
        target = os.path.normpath(os.path.join(directory, name))
        if reader.exists(target):
            return target
    return reader.suffixes.unique(name)


# -- programs behind macros of headers secl cannot find -------------------------------------

# Headers of the C library, the kernel's uapi and libbpf: found or not, they define no macro
# that writes a program's section around a name (libbpf's BPF_KPROBE() goes after a SEC()).
_SYSTEM_HEADER = re.compile(
    r"(?:linux|asm|asm-generic|bpf|sys|net|netinet|arpa|uapi|bits|gnu)/|vmlinux\.h$"
    r"|(?:assert|ctype|errno|fcntl|float|inttypes|limits|signal|stdarg|stdbool|stddef|stdint"
    r"|stdio|stdlib|string|strings|time|unistd|endian|byteswap|getopt|libgen|pthread)\.h$"
)


_WRAPPER_CALL = rb"(?!SEC\b|__section|__attribute__|section\b)[A-Za-z_]\w*[ \t]*\("
_WRAPPER_LINE = re.compile(rb"(?m)^" + _WRAPPER_CALL)
# The same after a newline: a pattern led by a byte is searched for, one led by `^` is tried
# at every byte (the first line is matched apart).
_WRAPPER_AFTER_NEWLINE = re.compile(rb"\n" + _WRAPPER_CALL)


def _has_wrapper_line(data: bytes) -> bool:
    """Whether `_WRAPPER_LINE.search(data)` finds a line that starts with a macro call."""
    return _WRAPPER_LINE.match(data) is not None or _WRAPPER_AFTER_NEWLINE.search(data) is not None


def _lost_programs(
    by_path: dict[str, list[SectionSite]],
    files: dict[str, bytes],
    reader: _Reader,
    db: CompileDb | None,
    include_dirs: tuple[str, ...],
    tree_of: Callable[[str], Tree],
    build: BuildIncludes | None = None,
) -> list[SectionSite]:
    """Sites for programs a wrapper macro defines (`KPROBE_PROG(do_x) { ... }`) when the
    macro is defined in no file secl can read because a project header is not found: with
    no section and the reason, so SECL001 says which macro and which header, and the
    program is never dropped silently."""
    out: list[SectionSite] = []
    memo: dict[tuple[str, tuple[str, ...]], tuple[list[str], list[str]]] = {}
    for path, data in files.items():
        if not _may_include(data):
            continue
        if not (path.endswith(".bpf.c") or path in by_path or b"bpf_helpers.h" in data):
            continue
        if not _has_wrapper_line(data):
            continue  # no line starts with a macro call: no function a macro introduces
        dirs = _search_dirs(path, db, include_dirs, build)
        missing, found = _project_headers(os.path.abspath(path), data, reader, dirs, memo)
        if not missing:
            continue
        uses = _wrapper_uses(tree_of(path), by_path.get(path, []))
        if uses:
            uses = _at_file_scope(data, uses)
        if not uses:
            continue
        defined = _defined_names(data)
        for header in found:
            defined |= _defined_names(reader.data(header) or b"")
        shown = ", ".join(missing)
        for name, start, end, program, body in uses:
            if name in defined or name in SECTION_NAMES:
                continue
            span = reader.span(os.path.abspath(path), start, end)
            name_span = span
            if program is not None:
                name_span = reader.span(os.path.abspath(path), program.start_byte, program.end_byte)
            out.append(
                SectionSite(
                    path=path,
                    macro=name,
                    span=span,
                    pieces=(),
                    section_text=data[start:end].decode("utf-8", "replace"),
                    section=None,
                    kind="program",
                    program=program.text.decode() if program is not None else None,
                    symbol=None,
                    name_span=name_span,
                    is_static=False,
                    body=(body.start_byte, body.end_byte),
                    branch=None,
                    template=False,
                    unresolved_macro=name,
                    unresolved_reason=(
                        f"`{name}` is defined in no file secl can read and may write the "
                        f"section of the function that follows; not found: {_clip(shown)} "
                        "(give its directory with --include-dir or `include-dirs`)"
                    ),
                )
            )
    return out


def _wrapper_uses(
    tree: Tree, sites: list[SectionSite]
) -> list[tuple[str, int, int, Node | None, Node]]:
    """(macro, start and end of its use, the program name if written, the body) for every
    function at file
    scope introduced by a macro call instead of a type: `NAME(arg) { ... }`,
    `NAME(a, b) { ... }`, `NAME(a, b) int f(...) { ... }`, with no section site of its own."""
    taken = {s.body for s in sites if s.body is not None}
    out = []
    children = tree.root_node.children
    for i, node in enumerate(children):
        if node.type == "function_definition":
            kind = node.child_by_field_name("type")
            declarator = node.child_by_field_name("declarator")
            body = node.child_by_field_name("body")
            if (
                kind is not None
                and kind.type == "type_identifier"
                and declarator is not None
                and declarator.type == "parenthesized_declarator"
                and body is not None
                and node.children[0] == kind
                and (body.start_byte, body.end_byte) not in taken
            ):
                out.append((kind.text.decode(), kind.start_byte, declarator.end_byte, None, body))
            continue
        if node.type != "expression_statement" or i + 1 >= len(children):
            continue
        last = node.child(node.child_count - 1)
        call = node.named_children[0] if node.named_children else None
        if last is None or not last.is_missing or call is None or call.type != "call_expression":
            continue
        callee = call.child_by_field_name("function")
        if callee is None or callee.type != "identifier":
            continue
        following = children[i + 1]
        program = None
        if following.type == "compound_statement":
            body = following
        elif following.type == "function_definition":
            body = following.child_by_field_name("body")
            declarator = following.child_by_field_name("declarator")
            while declarator is not None and declarator.type != "function_declarator":
                declarator = declarator.child_by_field_name("declarator")
            program = declarator.child_by_field_name("declarator") if declarator else None
            if program is not None and program.type != "identifier":
                program = None
        else:
            continue
        if body is None or (body.start_byte, body.end_byte) in taken:
            continue
        out.append((callee.text.decode(), call.start_byte, call.end_byte, program, body))
    return out


def _at_file_scope(data: bytes, uses: list) -> list:
    """The uses outside every brace: a tree-sitter error can make a statement of a function
    body (`bpf_for(i, 0, n) { ... }`) look like a definition at file scope."""
    out = []
    depth = 0
    # Braces outside comments, strings and character literals, every #if branch counted (as
    # the lexer's every_branch mode does), found by one regex: a whole-file token stream
    # cost more than the rest of the check on a 7,000-line BPF source.
    braces = _BRACES.finditer(data)
    pending: re.Match[bytes] | None = None
    for use in sorted(uses, key=lambda u: u[1]):
        while True:
            m = pending or next(braces, None)
            pending = None
            if m is None:
                break
            if m.start() >= use[1]:
                pending = m
                break
            if m.group() == b"{":
                depth += 1
            elif m.group() == b"}":
                depth = max(0, depth - 1)
        if depth == 0:
            out.append(use)
    return out


# (Runs of plain bytes between the special ones, as in _SCAN: the same matches, faster.)
_BRACES = re.compile(
    rb"//[^\r\n\\]*(?:\\.[^\r\n\\]*)*|/\*[^*]*(?:\*+[^*/][^*]*)*(?:\*+/|\**\Z)"
    rb"|\"[^\"\\\r\n]*(?:\\.[^\"\\\r\n]*)*\"?|'[^'\\\r\n]*(?:\\.[^'\\\r\n]*)*'?|[{}]",
    re.S,
)


def _project_headers(
    path: str,
    data: bytes,
    reader: _Reader,
    dirs: tuple[str, ...],
    memo: dict[tuple[str, tuple[str, ...]], tuple[list[str], list[str]]],
    depth: int = 0,
) -> tuple[list[str], list[str]]:
    """(the project headers `path` includes that are not found, as written; the headers that
    are found, through their includes). Headers are crawled once per run."""
    key = (path, dirs)
    known = memo.get(key)
    if known is not None:
        return known
    memo[key] = ([], [])  # an include cycle ends here
    missing: list[str] = []
    found: list[str] = []
    here = os.path.dirname(path)
    for m in _ANY_INCLUDE.finditer(data):
        quoted = m.group(1) is not None
        name = (m.group(1) or m.group(2)).decode("utf-8", "replace")
        target = _find(name, (here, *dirs) if quoted else dirs, reader)
        if target is None:
            if not _SYSTEM_HEADER.search(name):
                missing.append(f'"{name}"' if quoted else f"<{name}>")
            continue
        if target not in found:
            found.append(target)
            if depth < _MAX_CRAWL:
                more, deeper = _project_headers(
                    target, reader.data(target) or b"", reader, dirs, memo, depth + 1
                )
                missing += [h for h in more if h not in missing]
                found += [h for h in deeper if h not in found]
    memo[key] = (missing, found)
    return missing, found


def _display(files: dict[str, bytes]) -> Callable[[str], str]:
    """Absolute path -> the path as the user reached it (relative stays relative)."""
    known = {os.path.abspath(p): p for p in files}

    def display(path: str) -> str:
        if path in known:
            return known[path]
        rel = os.path.relpath(path)
        return path if rel.startswith("..") else rel

    return display


class _Clang:
    """libclang for one run: found and reported once, used only when a site needs it."""

    def __init__(self, problems: list[FileProblem], extra_defines: list[str]) -> None:
        self.problems = problems
        self.extra = tuple(extra_defines)
        self.resource: str | None = None
        self.failed = False
        self.predefined: tuple[str, ...] = ()  # libclang's version macros, once it ran

    def _version(self) -> tuple[str, ...]:
        from secl.parse import clang

        found = clang.compiler_version()
        if found is None:
            return ()
        names = ("__clang_major__", "__clang_minor__", "__clang_patchlevel__")
        return tuple(f"{n}={v}" for n, v in zip(names, found, strict=True))

    def parse(self, path: str, data: bytes, command: CompileCommand) -> ClangResult | None:
        if self.failed:
            return None
        from secl.parse import clang

        if self.resource is None:
            self.resource = clang.find_resource_include([command.compiler])
            if self.resource is None:
                self._fail(clang.missing_resource_message())
                return None
        try:
            found = clang.parse_sections(path, data, command, self.resource, self.extra)
            if not self.predefined:
                self.predefined = self._version() or ("__clang__=1",)
            return found
        except clang.ClangUnavailable as err:
            self._fail(str(err))
            return None

    def _fail(self, message: str) -> None:
        self.failed = True
        self.problems.append(
            FileProblem(
                "libclang", f"{message}; sections are resolved without compile_commands.json"
            )
        )


def _resolve_file(
    path: str,
    data: bytes,
    sites: list[SectionSite],
    reader: _Reader,
    db: CompileDb | None,
    defines: list[str],
    arch: str | None,
    tree_of: Callable[[str], Tree],
    display: Callable[[str], str],
    clang: _Clang,
    include_dirs: tuple[str, ...] = (),
) -> list[SectionSite]:
    entries = db.for_file(path) if db is not None else ()
    commands: list[CompileCommand | None] = list(dict.fromkeys(entries)) or [None]
    tree = tree_of(path)
    variants: dict[tuple, list[tuple[int, SectionSite]]] = {}
    for number, command in enumerate(commands):
        # libclang first: when it runs, secl's own reading may take the compiler's view (an
        # undefined name is undefined), since libclang checks every section it computes.
        found = clang.parse(path, data, command) if command is not None else None
        # Taking libclang's view means knowing its version too (`#if __clang_major__ >= 18`).
        extra = [*clang.predefined, *defines] if found is not None else defines
        setup = setup_for(
            extra, arch, command, closed_world=found is not None, include_dirs=include_dirs
        )
        pre = Preprocessor(reader, setup)
        job = _FileJob(pre, path, data, tree, sites, display)
        pre.run(os.path.abspath(path), job.segment)
        for key, site in _merge(job, sites, found, data):
            variants.setdefault(key, []).append((number, site))
        if found is not None and not found.sections and found.errors and job.pending:
            # libclang saw no section at all: say why, once per file.
            clang.problems.append(
                FileProblem(path, f"libclang: {found.errors[0]}; resolved without libclang")
            )
    labels = [
        (c.configuration or f"compile command {i + 1}") if c is not None else None
        for i, c in enumerate(commands)
    ]
    out = [s for s in sites if s.section is not None or s.template]
    for choices in variants.values():
        out += _pick(choices, labels)
    out.sort(key=lambda s: s.span.start_byte)
    return out


def _merge(
    job: _FileJob, sites: list[SectionSite], found: ClangResult | None, data: bytes
) -> Iterator[tuple[tuple, SectionSite]]:
    """The sites of one configuration: secl's outcome, overruled by libclang's when it has one
    (secl's spellings are kept when both agree)."""
    by_offset: dict[int, list] = {}
    if found is not None:
        for cs in found.sections:
            if cs.path == job.abs:
                by_offset.setdefault(cs.offset, []).append(cs)
    claimed: set[int] = {_extent(s, data)[0] for s in sites if not s.template}
    for site in job.pending:
        result = job.resolved.get(site.span.start_byte)
        if result is None:
            continue
        clang_hit = _named(
            by_offset.get(_extent(site, data)[0], []), site.program or site.symbol, 0
        )
        yield ("site", site.span.start_byte), _with_outcome(site, result, clang_hit)
    seen: dict[int, int] = {}
    for use, result in zip(job.uses, job.use_outcomes, strict=True):
        start = use.span.start_byte
        claimed.add(start)
        k = seen[start] = seen.get(start, -1) + 1
        clang_hit = _named(by_offset.get(start, []), use.program or use.symbol, k)
        yield ("use", start, k), _with_outcome(use, result, clang_hit)
    for offset, hits in by_offset.items():
        if offset in claimed:
            continue
        for cs in hits:
            yield ("clang", offset, cs.name), _clang_only(job, cs)


def _named(hits: list, name: str | None, k: int):
    for cs in hits:
        if cs.name == name:
            return cs
    return hits[k] if k < len(hits) else None


def _with_outcome(site: SectionSite, result: _Outcome, clang_hit) -> SectionSite:
    if clang_hit is not None:
        agree = result.section == clang_hit.section
        return replace(
            site,
            section=clang_hit.section,
            resolved_by="clang",
            configuration=result.configuration if agree else None,
            spellings=result.spellings if agree else (),
            unresolved_macro=None,
            unresolved_reason=None,
        )
    return replace(
        site,
        section=result.section,
        resolved_by="macro" if result.section is not None else None,
        configuration=result.configuration,
        spellings=result.spellings,
        unresolved_macro=result.unresolved_macro,
        unresolved_reason=result.reason,
    )


def _clang_only(job: _FileJob, cs) -> SectionSite:
    """A site only libclang saw (a macro secl's preprocessor could not follow)."""
    m = _IDENT.match(job.data, cs.offset)
    end = cs.end if cs.end is not None and cs.end > cs.offset else (m.end() if m else cs.offset)
    span = job.pre.reader.span(job.abs, cs.offset, end)
    return SectionSite(
        path=job.path,
        macro=m.group().decode() if m else "?",
        span=span,
        pieces=(),
        section_text=job.data[cs.offset : end].decode("utf-8", "replace"),
        section=cs.section,
        kind=cs.kind,
        program=cs.name if cs.kind == "program" else None,
        symbol=cs.name if cs.kind == "data" else None,
        name_span=span,
        is_static=False,
        body=None,
        branch=job._branch(cs.offset, end),
        template=False,
        resolved_by="clang",
    )


def _pick(choices: list[tuple[int, SectionSite]], labels: list[str | None]) -> list[SectionSite]:
    """One site per distinct section the configurations give it; when they differ, each says
    which configuration it holds for."""
    resolved = [(n, s) for n, s in choices if s.section is not None]
    if not resolved:
        return [choices[0][1]]
    distinct: dict[str, list[tuple[int, SectionSite]]] = {}
    for n, s in resolved:
        distinct.setdefault(s.section or "", []).append((n, s))
    if len(distinct) == 1 and len(resolved) == len(choices):
        return [resolved[0][1]]
    out = []
    for group in distinct.values():
        n, site = group[0]
        label = site.configuration or " | ".join(str(labels[k]) for k, _ in group if labels[k])
        out.append(replace(site, configuration=label or None))
    return out


def _share(sites: list[SectionSite]) -> list[SectionSite]:
    """Fill `shared` and `macro_users`: the other programs whose section uses a literal that
    a #define spells, so that a fix there is known to rename them too."""
    users: dict[tuple[str, int, str], set[str]] = {}
    for s in sites:
        name = s.program or s.symbol
        if not s.spellings or name is None:
            continue
        for sp in s.spellings:
            if sp.macro is not None:
                users.setdefault((sp.path, sp.piece.span.start_byte, sp.piece.text), set()).add(
                    name
                )
    if not users:
        return sites
    out = []
    for s in sites:
        name = s.program or s.symbol
        if not s.spellings or name is None:
            out.append(s)
            continue
        spellings = []
        everyone: set[str] = set()
        for sp in s.spellings:
            others = users.get((sp.path, sp.piece.span.start_byte, sp.piece.text), set()) - {name}
            everyone |= others
            spellings.append(replace(sp, shared=tuple(sorted(others))) if others else sp)
        out.append(replace(s, spellings=tuple(spellings), macro_users=tuple(sorted(everyone))))
    return out


def prefix_spelling(site: SectionSite) -> Spelling | None:
    """The literal that spells the start of a macro-built section (its program type): where a
    fix that renames the type edits, at the site or in the #define. None when that text comes
    from `#`, `##` or the command line. Its `shared` names the other programs the same edit
    renames (a fix there is unsafe)."""
    for sp in site.spellings:
        if sp.piece.value:
            usable = sp.piece.kind == "literal" and not sp.path.startswith("<")
            return sp if usable else None
    return None
