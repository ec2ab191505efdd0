"""Renderers: format findings (and the `secl sections` inventory); they never compute anything."""

from __future__ import annotations

from collections.abc import Sequence

from secl.catalogue import Rule
from secl.findings import Finding
from secl.report import concise, full, github, sarif
from secl.report import json as json_format
from secl.report.inventory import INVENTORY_FORMATS, render_inventory

FORMATS: tuple[str, ...] = ("full", "concise", "json", "sarif", "github")

__all__ = ["FORMATS", "INVENTORY_FORMATS", "render", "render_inventory"]


def render(
    findings: Sequence[Finding],
    fmt: str,
    *,
    sources: dict[str, bytes],
    rules: dict[str, Rule],
    root: str,
    fixable_note: bool = True,
    color: bool = False,
) -> str:
    """Findings in `fmt` (one of FORMATS), in the order given; the text ends with a newline
    unless it is empty (`github` with no findings)."""
    if fmt == "full":
        return full.render(findings, sources=sources, fixable_note=fixable_note, color=color)
    if fmt == "concise":
        return concise.render(findings, fixable_note=fixable_note, color=color)
    if fmt == "json":
        return json_format.render(findings, rules=rules)
    if fmt == "sarif":
        return sarif.render(findings, rules=rules, root=root)
    if fmt == "github":
        return github.render(findings)
    raise ValueError(f"unknown output format {fmt!r}; expected one of {', '.join(FORMATS)}")
