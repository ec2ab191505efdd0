"""GitHub Actions workflow commands: one `::error|warning|notice ...::message` per finding."""

from __future__ import annotations

from collections.abc import Sequence

from secl.findings import Finding
from secl.report.text import printable

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from secl.findings import Severity

LEVELS: dict[Severity, str] = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    # `%` first, or the escapes themselves would be escaped again. Other control characters
    # are shown, not sent: the log viewer reads ESC sequences.
    text = printable(text, keep="\t\n\r")
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(finding: Finding) -> str:
    start, end = finding.span.start, finding.span.end
    props = ",".join(
        [
            f"file={escape_property(finding.path)}",
            f"line={start.row}",
            f"col={start.column}",
            f"endLine={end.row}",
            f"endColumn={end.column}",
            f"title={escape_property(f'{finding.code} {finding.name}')}",
        ]
    )
    # The loader evidence of a SECL2xx finding is the point of it: keep it in the annotation.
    text = "\n".join(
        [
            finding.message,
            *(
                f"note: {r.path}:{r.span.start.row}:{r.span.start.column}: {r.message}"
                for r in finding.related
            ),
        ]
    )
    return f"::{LEVELS[finding.severity]} {props}::{escape_data(text)}"


def render(findings: Sequence[Finding]) -> str:
    return "".join(command(f) + "\n" for f in findings)
