"""The default format: a ruff/rustc-style header, the source line(s) with a caret, notes, help.

path:row:col: CODE [name] message
  |
3 |     SEC("kprobe/foo+0x10")
  |         ^^^^^^^^^^^^^^^^^
  |
  = note: loader.c:12:5: attach offset set here
help: Use `kprobe.single/foo+0x10` (unsafe)
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from secl.facts import Span
from secl.findings import Finding
from secl.report.text import printable

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from secl.findings import Severity

TAB_WIDTH = 4

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_BLUE = "\x1b[1;34m"
_CYAN = "\x1b[1;36m"
_SEVERITY_COLOR: dict[Severity, str] = {
    "error": "\x1b[1;31m",
    "warning": "\x1b[1;33m",
    "info": "\x1b[1;36m",
}


def char_width(ch: str) -> int:
    """Terminal cells one character takes: combining marks none, wide East Asian two."""
    if unicodedata.combining(ch):
        return 0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 2
    return 1


def display_width(text: str) -> int:
    return sum(char_width(ch) for ch in text)


def expand_line(text: str) -> tuple[str, list[int]]:
    """The line with tabs expanded, and the display cell where each character starts.

    The returned offsets have one extra entry for the end of the line, so a span ending
    at the line end (or a zero-width span there) still has a cell.
    """
    out: list[str] = []
    starts: list[int] = []
    cell = 0
    for ch in text:
        starts.append(cell)
        if ch == "\t":
            pad = TAB_WIDTH - cell % TAB_WIDTH
            out.append(" " * pad)
            cell += pad
        else:
            out.append(ch)
            cell += char_width(ch)
    starts.append(cell)
    return "".join(out), starts


def source_lines(data: bytes) -> tuple[str, ...]:
    """Rows as the parser counts them: a row ends at LF, CR LF or a lone CR. Split once per
    file, not once per finding (a file with thousands of findings would cost its size each
    time); bytes cache their hash, so the lookup is cheap."""
    return _split_rows(data)


@lru_cache(maxsize=8)
def _split_rows(data: bytes) -> tuple[str, ...]:
    text = data.decode("utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return tuple(text.split("\n"))


def _paint(text: str, style: str, color: bool) -> str:
    return f"{style}{text}{_RESET}" if color and text else text


def location(path: str, row: int, column: int) -> str:
    return f"{printable(path)}:{row}:{column}"


def header(finding: Finding, *, color: bool = False, one_line: bool = False) -> str:
    """`path:row:col: CODE [name] message`, shared with the concise format.

    `one_line` folds line breaks in the message so line-oriented consumers see one record.
    """
    message = " ".join(finding.message.splitlines()) if one_line else finding.message
    message = printable(message)
    where = location(finding.path, finding.span.start.row, finding.span.start.column)
    code = _paint(finding.code, _SEVERITY_COLOR[finding.severity], color)
    return f"{_paint(where, _BOLD, color)}: {code} [{finding.name}] {message}"


def _underline_range(row: int, line: str, span: Span, starts: list[int]) -> tuple[int, int]:
    """First and last display cells (end exclusive) to underline on `row`."""
    last_char = len(line)
    if row == span.start.row:
        first = min(max(span.start.column - 1, 0), last_char)
    else:
        # Continuation rows of a multi-line span: skip the indentation.
        first = len(line) - len(line.lstrip())
    end = min(max(span.end.column - 1, 0), last_char) if row == span.end.row else last_char
    start_cell = starts[first]
    end_cell = starts[end] if end > first else start_cell
    if end_cell <= start_cell:
        # Zero-width spans and empty rows still get one caret.
        end_cell = start_cell + 1
    return start_cell, end_cell


def snippet(
    span: Span, data: bytes | None, *, severity: Severity, color: bool = False
) -> list[str]:
    """The gutter, the source rows of `span` and the carets under it; [] without a source."""
    if data is None:
        return []
    lines = source_lines(data)
    first_row, last_row = span.start.row, max(span.end.row, span.start.row)
    if first_row < 1 or first_row > len(lines):
        return []
    last_row = min(last_row, len(lines))
    width = len(str(last_row))
    gutter = _paint(" " * width + " |", _BLUE, color)
    out = [gutter]
    for row in range(first_row, last_row + 1):
        line = printable(lines[row - 1], keep="\t")  # one character for one
        expanded, starts = expand_line(line)
        start_cell, end_cell = _underline_range(row, line, span, starts)
        number = _paint(f"{row:>{width}} |", _BLUE, color)
        out.append(f"{number} {expanded}".rstrip())
        carets = _paint("^" * (end_cell - start_cell), _SEVERITY_COLOR[severity], color)
        out.append(f"{gutter} {' ' * start_cell}{carets}")
    out.append(gutter)
    return out


def _note_prefix(width: int, color: bool) -> str:
    return " " * (width + 1) + _paint("= note", _BOLD, color) + ": "


def render_finding(finding: Finding, data: bytes | None, *, color: bool = False) -> str:
    lines = [header(finding, color=color)]
    lines.extend(snippet(finding.span, data, severity=finding.severity, color=color))
    width = len(str(max(finding.span.end.row, finding.span.start.row)))
    prefix = _note_prefix(width, color)
    lines.extend(prefix + printable(note) for note in finding.notes)
    for rel in finding.related:
        where = location(rel.path, rel.span.start.row, rel.span.start.column)
        lines.append(f"{prefix}{where}: {printable(rel.message)}")
    if finding.fix is not None:
        unsafe = " (unsafe)" if finding.fix.applicability == "unsafe" else ""
        help_text = printable(finding.fix.message)
        lines.append(f"{_paint('help', _CYAN, color)}: {help_text}{unsafe}")
    return "\n".join(lines)


def closing(findings: Sequence[Finding], *, fixable_note: bool = True) -> list[str]:
    """The closing lines: the count, then how many fixes `--fix` / `--unsafe-fixes` apply."""
    if not findings:
        return ["All checks passed!"]
    count = len(findings)
    lines = [f"Found {count} finding{'s' if count != 1 else ''}."]
    if not fixable_note:
        return lines
    safe = sum(1 for f in findings if f.fix is not None and f.fix.applicability == "safe")
    unsafe = sum(1 for f in findings if f.fix is not None and f.fix.applicability == "unsafe")
    if safe and unsafe:
        lines.append(f"[*] {safe} fixable with `--fix` ({unsafe} more with `--unsafe-fixes`).")
    elif safe:
        lines.append(f"[*] {safe} fixable with `--fix`.")
    elif unsafe:
        lines.append(f"No safe fixes; {unsafe} fixable with `--fix --unsafe-fixes`.")
    return lines


def render(
    findings: Sequence[Finding],
    *,
    sources: dict[str, bytes],
    fixable_note: bool = True,
    color: bool = False,
    summary: bool = True,
) -> str:
    blocks = [render_finding(f, sources.get(f.path), color=color) for f in findings]
    if summary:
        blocks.append("\n".join(closing(findings, fixable_note=fixable_note)))
    return "\n\n".join(blocks) + "\n" if blocks else ""
