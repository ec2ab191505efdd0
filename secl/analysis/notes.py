"""SECL0xx: notes about the input itself."""

from __future__ import annotations

from collections.abc import Iterator

from secl.analysis.project import Project
from secl.analysis.suppress import Suppression
from secl.findings import Finding


def unresolved_section(project: Project) -> Iterator[Finding]:
    """SECL001: a site whose section string secl cannot compute (a macro piece)."""
    for site in project.sites:
        if site.template or site.section is not None or site.kind == "data":
            continue
        names = ", ".join(p.text for p in site.unresolved_pieces) or site.section_text
        what = f"program `{site.program}`" if site.program else "this site"
        macro = site.unresolved_macro or next(
            (p.text for p in site.unresolved_pieces if p.kind == "macro"), None
        )
        # The resolver's reason names the macro and what would settle it.
        why = site.unresolved_reason or (
            f"`{macro}` is not defined where secl can see it" if macro else None
        )
        yield Finding(
            code="SECL001",
            name="unresolved-section",
            severity="info",
            message=f"section of {what} is built from {names}, which secl cannot resolve"
            + (f": {why}" if why else "")
            + "; no section rule checked it",
            path=site.path,
            span=site.span,
            program=site.program,
            section=site.section_text,
        )


def stale_suppression(s: Suppression) -> Finding:
    what = "secl: ignore" + (f"[{', '.join(s.codes)}]" if s.codes is not None else "")
    return Finding(
        code="SECL003",
        name="unused-suppression",
        severity="info",
        message=f"`{what}` suppresses nothing on this line or the next",
        path=s.path,
        span=s.span,
    )


RULES = {"SECL001": unresolved_section}
