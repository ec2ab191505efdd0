"""One line per finding, `path:row:col: CODE [name] message`, then the closing count."""

from __future__ import annotations

from collections.abc import Sequence

from secl.findings import Finding
from secl.report.full import closing, header


def render(
    findings: Sequence[Finding],
    *,
    fixable_note: bool = True,
    color: bool = False,
    summary: bool = True,
) -> str:
    lines = [header(f, color=color, one_line=True) for f in findings]
    if summary:
        lines.extend(closing(findings, fixable_note=fixable_note))
    return "\n".join(lines) + "\n" if lines else ""
