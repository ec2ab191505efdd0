"""Renderers: format findings (and the `secl sections` inventory); they never compute anything."""

from __future__ import annotations

from collections.abc import Callable, Sequence

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from secl.catalogue import Rule
    from secl.findings import Finding

FORMATS: tuple[str, ...] = ("full", "concise", "json", "sarif", "github")
# Formats that carry rule metadata (the catalogue is read only for them).
NEEDS_RULES = frozenset({"json", "sarif"})

__all__ = ["FORMATS", "NEEDS_RULES", "render"]


def render(
    findings: Sequence[Finding],
    fmt: str,
    *,
    sources: dict[str, bytes],
    rules: dict[str, Rule] | Callable[[], dict[str, Rule]],
    root: str,
    fixable_note: bool = True,
    color: bool = False,
    summary: bool = True,
) -> str:
    """Findings in `fmt` (one of FORMATS), in the order given; the text ends with a newline
    unless it is empty (`github` with no findings, or no findings and no `summary`). The
    text formats close with the count unless `summary` is False (--quiet). `rules` may be
    a function returning the catalogue, called only by the formats that need it. Each
    format's module is imported when used: start-up time is what a pre-commit hook pays on
    every run."""
    if callable(rules):
        rules = rules() if fmt in NEEDS_RULES else {}
    if fmt == "full":
        from secl.report import full

        return full.render(
            findings, sources=sources, fixable_note=fixable_note, color=color, summary=summary
        )
    if fmt == "concise":
        from secl.report import concise

        return concise.render(findings, fixable_note=fixable_note, color=color, summary=summary)
    if fmt == "json":
        from secl.report import json as json_format

        return json_format.render(findings, rules=rules)
    if fmt == "sarif":
        from secl.report import sarif

        return sarif.render(findings, rules=rules, root=root)
    if fmt == "github":
        from secl.report import github

        return github.render(findings)
    raise ValueError(f"unknown output format {fmt!r}; expected one of {', '.join(FORMATS)}")
