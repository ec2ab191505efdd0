"""`// secl: ignore[SECL201, SECL204]` on the line of a finding or the line before it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from secl.facts import Span
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
    if b"secl:" not in data and b"SECL:" not in data:
        return []
    found = []
    for m in _SUPPRESSION.finditer(data):
        raw = m.group("codes")
        codes = None
        if raw is not None:
            codes = tuple(c.strip().decode() for c in raw.split(b",") if c.strip())
        span = positions.span(m.start(), m.end())
        found.append(Suppression(path, span.start.row, codes, span))
    return found


def covers(s: Suppression, code: str, row: int) -> bool:
    if row not in (s.row, s.row + 1):
        return False
    return s.codes is None or any(code == c or code.startswith(c) for c in s.codes)
