"""What the analysis produces and every renderer, the fixer and the tests consume."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from secl.facts import Span

Severity = Literal["error", "warning", "info"]
Applicability = Literal["safe", "unsafe"]


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace bytes [span.start_byte, span.end_byte) of `path` with `content`."""

    path: str
    span: Span
    content: str


@dataclass(frozen=True, slots=True)
class Fix:
    applicability: Applicability
    message: str
    edits: tuple[Edit, ...]


@dataclass(frozen=True, slots=True)
class Related:
    path: str
    span: Span
    message: str


@dataclass(frozen=True, slots=True)
class Finding:
    code: str  # SECL101
    name: str  # kebab-case rule name
    severity: Severity
    message: str
    path: str
    span: Span
    program: str | None = None
    section: str | None = None  # the section as written
    related: tuple[Related, ...] = ()
    fix: Fix | None = None
    # Extra words for the `full` format (a note under the caret), never needed to act.
    notes: tuple[str, ...] = field(default=())

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.span.start.row, self.span.start.column, self.code)
