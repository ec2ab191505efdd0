"""Plain data produced by the parse stage and read by every later stage.

Rows and columns are 1-based; columns count characters (not bytes), as ruff does.
"""

from __future__ import annotations

from dataclasses import dataclass

from secl.records import quick_init

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Literal

    PieceKind = Literal["literal", "macro", "stringify", "other"]
    SiteKind = Literal["program", "data", "prototype", "unknown"]


@dataclass(frozen=True, slots=True)
class Position:
    """A 1-based row and character column."""

    row: int
    column: int


_new_object = object.__new__
_set_row = Position.__dict__["row"].__set__
_set_column = Position.__dict__["column"].__set__


def position(row: int, column: int) -> Position:
    """`Position(row, column)` for the hot path of Positions.at (thousands a run): a frozen
    dataclass's __init__ sets each field through object.__setattr__, twice the cost of setting
    the slots directly as here. Same object, same equality and hash."""
    made = _new_object(Position)
    _set_row(made, row)
    _set_column(made, column)
    return made


@quick_init
@dataclass(frozen=True, slots=True)
class Span:
    """A byte range of a file with the positions of both ends."""

    start_byte: int
    end_byte: int
    start: Position
    end: Position


@quick_init
@dataclass(frozen=True, slots=True)
class Piece:
    """One token of a section argument: `"kprobe/"`, `SYS_PREFIX`, `#fn`."""

    kind: PieceKind
    text: str  # as written in the source
    value: str | None  # decoded string for literals, None otherwise
    span: Span


@quick_init
@dataclass(frozen=True, slots=True)
class SectionSite:
    """One `SEC(...)` / `__attribute__((section(...)))` in a source file."""

    path: str
    macro: str  # SEC, section, __section, ...
    span: Span  # the whole argument (what a caret points at)
    pieces: tuple[Piece, ...]
    section_text: str  # the argument as written
    section: str | None  # resolved string, None when a piece is not a literal
    kind: SiteKind
    program: str | None  # function name for programs
    symbol: str | None  # variable name for data sections, when seen
    name_span: Span | None  # where the program or symbol name is written
    is_static: bool
    body: tuple[int, int] | None  # byte range of the function body, when found
    branch: str | None  # the #if condition the site sits under
    template: bool  # inside a #define body
    template_macro: str | None = None  # the #define that holds it
    # Filled by macro resolution (secl/parse/macros.py, secl/parse/clang.py) for sites whose
    # section tree-sitter could not compute, and for the uses of macros that wrap SEC:
    resolved_by: str | None = None  # "macro" (secl's preprocessor) or "clang" (libclang)
    configuration: str | None = None  # the #if / -D condition the resolved section holds for
    spellings: tuple[Spelling, ...] = ()  # where each piece of `section` is written, in order
    macro_users: tuple[str, ...] = ()  # other programs sharing a literal spelled in a #define
    unresolved_macro: str | None = None  # the macro that kept `section` None
    unresolved_reason: str | None = None  # why, in words (SECL001 says it)
    # Set for a site read from a compiled object (secl/parse/objects.py), whose `path` is
    # the object and whose spans point into secl's listing of it (one row per ELF section).
    origin: ObjectOrigin | None = None

    @property
    def key(self) -> tuple[str, int, str | None]:
        """Identifies a site in a run: the programs one wrapper-macro use makes share a span."""
        return (self.path, self.span.start_byte, self.program)

    @property
    def unresolved_pieces(self) -> tuple[Piece, ...]:
        return tuple(p for p in self.pieces if p.kind != "literal")


@dataclass(frozen=True, slots=True)
class Spelling:
    """Where one piece of a macro-built section is written: a literal at the site, a literal in
    a #define (maybe in a header), or text that `#` made from a macro argument. The pieces of
    a site's `spellings` concatenate to its `section`; a fix edits the literal where it is."""

    path: str  # the file; "<command line>" for -D / --define / --target-arch values
    piece: Piece  # kind literal, stringify or other; span in `path`
    macro: str | None  # the #define it is spelled in; None when written at the site itself
    shared: tuple[str, ...] = ()  # other programs whose section uses this very spelling


@dataclass(frozen=True, slots=True)
class ObjectOrigin:
    """Where a site read from a compiled BPF object comes from: the object's ELF section
    (the site's row), and the source line its `.BTF.ext` line info names, when it has one."""

    object: str
    elf_section: int
    source: str | None = None  # the file name as the compiler recorded it
    line: int | None = None
    column: int | None = None
