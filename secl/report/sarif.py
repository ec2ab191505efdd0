"""SARIF 2.1.0 for code scanning: one run, the rules that fired, results with fixes.

URIs are relative to the project root under `%SRCROOT%` so uploads from different checkouts
match; fingerprints leave line numbers out so moving code does not reopen alerts.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import secl
from secl.facts import Span
from secl.findings import Finding, Fix
from secl.report.json import dumps

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any

    from secl.catalogue import Rule
    from secl.findings import Severity

SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "secl/v1"
LEVELS: dict[Severity, str] = {"error": "error", "warning": "warning", "info": "note"}


def artifact_location(path: str, root: str) -> dict[str, str]:
    """Relative to `root` under %SRCROOT% when inside it, else an absolute file URI."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute, os.path.abspath(root))
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return {"uri": Path(absolute).as_uri()}
    posix = PurePosixPath(*Path(relative).parts).as_posix()
    # The name's bytes, percent-encoded: a name that is not UTF-8 stays a valid URI.
    return {"uri": quote(os.fsencode(posix)), "uriBaseId": SRCROOT}


def region(span: Span) -> dict[str, int]:
    return {
        "startLine": span.start.row,
        "startColumn": span.start.column,
        "endLine": span.end.row,
        "endColumn": span.end.column,
    }


def fingerprint(finding: Finding, uri: str) -> str:
    parts = (finding.code, uri, finding.section or "", finding.program or "")
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def rule_descriptor(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.explanation},
        "help": {"text": rule.fix or rule.summary},
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
    }


def _fix(fix: Fix, root: str) -> dict[str, Any]:
    by_path: dict[str, list[dict[str, Any]]] = {}
    for edit in fix.edits:
        by_path.setdefault(edit.path, []).append(
            {"deletedRegion": region(edit.span), "insertedContent": {"text": edit.content}}
        )
    return {
        "description": {"text": fix.message},
        "artifactChanges": [
            {"artifactLocation": artifact_location(path, root), "replacements": replacements}
            for path, replacements in by_path.items()
        ],
        # SARIF has no notion of unsafe fixes; keep ours so consumers can filter.
        "properties": {"applicability": fix.applicability},
    }


def result(finding: Finding, rule_index: dict[str, int], root: str) -> dict[str, Any]:
    location = artifact_location(finding.path, root)
    out: dict[str, Any] = {"ruleId": finding.code}
    if finding.code in rule_index:
        out["ruleIndex"] = rule_index[finding.code]
    out["level"] = LEVELS[finding.severity]
    out["message"] = {"text": finding.message}
    out["locations"] = [
        {"physicalLocation": {"artifactLocation": location, "region": region(finding.span)}}
    ]
    if finding.related:
        out["relatedLocations"] = [
            {
                "id": index,
                "physicalLocation": {
                    "artifactLocation": artifact_location(rel.path, root),
                    "region": region(rel.span),
                },
                "message": {"text": rel.message},
            }
            for index, rel in enumerate(finding.related)
        ]
    out["partialFingerprints"] = {FINGERPRINT_KEY: fingerprint(finding, location["uri"])}
    if finding.fix is not None:
        out["fixes"] = [_fix(finding.fix, root)]
    properties = {"name": finding.name, "program": finding.program, "section": finding.section}
    out["properties"] = {k: v for k, v in properties.items() if v is not None}
    return out


def document(findings: Sequence[Finding], *, rules: dict[str, Rule], root: str) -> dict[str, Any]:
    fired = sorted({f.code for f in findings if f.code in rules})
    rule_index = {code: index for index, code in enumerate(fired)}
    root_uri = Path(os.path.abspath(root)).as_uri().rstrip("/") + "/"
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "secl",
                        "version": secl.__version__,
                        "rules": [rule_descriptor(rules[code]) for code in fired],
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": root_uri}},
                # Our columns count code points, not UTF-16 units (the SARIF default).
                "columnKind": "unicodeCodePoints",
                "results": [result(f, rule_index, root) for f in findings],
            }
        ],
    }


def render(findings: Sequence[Finding], *, rules: dict[str, Rule], root: str) -> str:
    return dumps(document(findings, rules=rules, root=root))
