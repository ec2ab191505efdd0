"""`--output-format json`: ruff's field names plus secl's own (see ARCHITECTURE.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from secl.facts import Position
from secl.findings import Finding, Fix
from secl.report.text import undecodable_as_escapes

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any

    from secl.catalogue import Rule


def position(pos: Position) -> dict[str, int]:
    return {"row": pos.row, "column": pos.column}


def _fix(fix: Fix | None) -> dict[str, Any] | None:
    if fix is None:
        return None
    return {
        "applicability": fix.applicability,
        "message": fix.message,
        "edits": [
            {
                "content": edit.content,
                "location": position(edit.span.start),
                "end_location": position(edit.span.end),
            }
            for edit in fix.edits
        ],
    }


def finding_object(finding: Finding, rules: dict[str, Rule]) -> dict[str, Any]:
    rule = rules.get(finding.code)
    return {
        "code": finding.code,
        "message": finding.message,
        "filename": finding.path,
        "location": position(finding.span.start),
        "end_location": position(finding.span.end),
        "fix": _fix(finding.fix),
        "url": rule.url if rule is not None else None,
        "name": finding.name,
        "severity": finding.severity,
        "program": finding.program,
        "section": finding.section,
        "related": [
            {"filename": r.path, "location": position(r.span.start), "message": r.message}
            for r in finding.related
        ],
    }


def dumps(value: Any) -> str:
    """Two-space indent, keys in the order built, UTF-8 kept readable, trailing newline. The
    undecodable bytes of a file name are written `\\xNN` in the string, so that the output
    is valid UTF-8 (JSON escapes the control characters itself)."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return undecodable_as_escapes(text, backslash="\\\\") + "\n"


def render(findings: Sequence[Finding], *, rules: dict[str, Rule]) -> str:
    return dumps([finding_object(f, rules) for f in findings])
