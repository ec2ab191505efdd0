"""Plain data produced by the parse stage and read by every later stage.

Rows and columns are 1-based; columns count characters (not bytes), as ruff does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class Position:
    row: int
    column: int


@dataclass(frozen=True, slots=True)
class Span:
    start_byte: int
    end_byte: int
    start: Position
    end: Position


PieceKind = Literal["literal", "macro", "stringify", "other"]


@dataclass(frozen=True, slots=True)
class Piece:
    """One token of a section argument: `"kprobe/"`, `SYS_PREFIX`, `#fn`."""

    kind: PieceKind
    text: str  # as written in the source
    value: str | None  # decoded string for literals, None otherwise
    span: Span


SiteKind = Literal["program", "data", "prototype", "unknown"]


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

    @property
    def unresolved_pieces(self) -> tuple[Piece, ...]:
        return tuple(p for p in self.pieces if p.kind != "literal")


@dataclass(slots=True)
class ParsedFile:
    """Facts of one file; `sites` for the BPF side."""

    path: str
    sites: list[SectionSite] = field(default_factory=list)
    error_ratio: float = 0.0
