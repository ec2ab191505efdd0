"""`// secl: ignore[SECL201, SECL204]` on the line of a finding or the line before it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from secl.facts import Span
from secl.parse import large
from secl.parse.tree import Positions

_SUPPRESSION = re.compile(
    rb"(?://|/\*)[ \t]*secl:[ \t]*ignore(?:\[(?P<codes>[^\]\n]*)\])?", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Suppression:
    """One `secl: ignore[...]` comment."""

    path: str
    row: int
    codes: tuple[str, ...] | None  # None: every code
    span: Span


def suppressions(path: str, data: bytes, positions: Positions) -> list[Suppression]:
    marks = large.marks(data)
    if marks is not None and marks.slashes is not None:
        # A huge file: every comment starts at one of its few `/`, tried there.
        matches = list(large.finditer_at(_SUPPRESSION, data, marks.slashes))
        if not matches:
            return []
        # As for any file, only one that holds `secl:` or `SECL:` (not `Secl:` alone) has any.
        if not any(_marked(m.group()) for m in matches) and not _marked(data):
            return []
    elif not _marked(data):
        return []
    else:
        matches = _SUPPRESSION.finditer(data)
    found = []
    for m in matches:
        raw = m.group("codes")
        codes = None
        if raw is not None:
            codes = tuple(c.strip().decode() for c in raw.split(b",") if c.strip())
        span = positions.span(m.start(), m.end())
        found.append(Suppression(path, span.start.row, codes, span))
    return found


def _marked(text: bytes) -> bool:
    return b"secl:" in text or b"SECL:" in text


def covers(s: Suppression, code: str, row: int) -> bool:
    if row not in (s.row, s.row + 1):
        return False
    return s.codes is None or any(code == c or code.startswith(c) for c in s.codes)
