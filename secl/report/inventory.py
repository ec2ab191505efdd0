"""`secl sections`: every SEC site, the libbpf entry it matches, and its auto-upgrade fate."""

from __future__ import annotations

import re
from collections.abc import Sequence

from secl.findings import Evidence, InventoryEntry, LoaderInfo, UpgradeInfo
from secl.report.full import display_width
from secl.report.json import dumps, position
from secl.report.text import printable

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any, Literal

    InventoryFormat = Literal["full", "concise", "json"]
INVENTORY_FORMATS: tuple[InventoryFormat, ...] = ("full", "concise", "json")


def _evidence(ev: Evidence) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kind": ev.kind,
        "filename": ev.path,
        "location": position(ev.span.start),
        "value": ev.value,
    }
    if not ev.certain:
        item["certain"] = False
    if ev.by_name:
        item["linked_by"] = "program-name"
    return item


def _upgrade(info: UpgradeInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "upgraded": info.upgraded,
        "reason_code": info.reason_code,
        "reason": info.reason,
        "needs_single": info.needs_single,
        "codes": list(info.codes),
        "evidence": [_evidence(ev) for ev in info.evidence],
    }


def _loader(info: LoaderInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    evidence = []
    for ev in info.evidence:
        item: dict[str, Any] = {
            "filename": ev.path,
            "location": position(ev.span.start),
            "value": ev.value,
            "kind": ev.kind,
        }
        if not ev.certain:
            item["certain"] = False
        evidence.append(item)
    return {"kind": info.kind, "version": info.version, "evidence": evidence}


def entry_object(entry: InventoryEntry) -> dict[str, Any]:
    site = entry.site
    out = _entry_object(entry)
    if site.origin is not None:
        # A site read from a compiled object: its row is the ELF section's number, and the
        # source line its line info names.
        origin = site.origin
        out["object"] = {
            "elf_section": origin.elf_section,
            "source": origin.source,
            "line": origin.line,
            "column": origin.column,
        }
    return out


def _entry_object(entry: InventoryEntry) -> dict[str, Any]:
    site = entry.site
    return {
        "filename": site.path,
        "location": position(site.span.start),
        "kind": site.kind,
        "program": site.program,
        "symbol": site.symbol,
        "section_text": site.section_text,
        "section": site.section,
        "definition": entry.definition,
        "branch": site.branch,
        "template": site.template,
        "upgrade": _upgrade(entry.upgrade),
        "loader": _loader(entry.loader),
    }


def _name(entry: InventoryEntry) -> str:
    site = entry.site
    return printable(site.program or site.symbol or "-")


def _cell(text: str) -> str:
    """Source text on one line of a table: a line break and its indentation read as one
    space, every other control character shown (see secl.report.text)."""
    return printable(re.sub(r"[ \t]*\r?\n[ \t]*", " ", text), keep="")


def _target(entry: InventoryEntry) -> str:
    if entry.site.section is None:
        return "(unresolved)"
    return entry.definition or "(no libbpf entry)"


def _fate(info: UpgradeInfo | None) -> str:
    if info is None:
        return ""
    if info.needs_single:
        codes = f": {', '.join(info.codes)}" if info.codes else ""
        return f"needs .single ({info.reason_code}{codes})"
    fate = "upgraded" if info.upgraded else "not upgraded"
    # The reason code only when it says more than the fate (not `upgraded (upgraded)`).
    if info.reason_code in (fate, fate.replace(" ", "-")):
        return fate
    return f"{fate} ({info.reason_code})"


def concise_line(entry: InventoryEntry) -> str:
    site = entry.site
    where = f"{printable(site.path)}:{site.span.start.row}:{site.span.start.column}"
    text = _cell(site.section_text)
    line = f"{where}: {site.kind} {_name(entry)} {text} -> {_target(entry)}"
    if site.branch is not None:
        line += f" [{_cell(site.branch)}]"
    if site.template:
        line += " (template)"
    fate = _fate(entry.upgrade)
    if entry.loader is not None and entry.loader.kind != "libbpf-assumed":
        line += f" [loader: {_loader_text(entry.loader)}]"
    return f"{line} {fate}" if fate else line


def _loader_text(info: LoaderInfo) -> str:
    text = info.kind + (f" {info.version}" if info.version else "")
    if info.evidence:
        ev = info.evidence[0]
        text += f", {ev.path}:{ev.span.start.row}"
    return printable(text, keep="")  # a version and a path come from the user's files


def totals(entries: Sequence[InventoryEntry]) -> str:
    programs = sum(1 for e in entries if e.site.kind == "program")
    data = sum(1 for e in entries if e.site.kind == "data")
    unresolved = sum(1 for e in entries if e.site.section is None)
    count = len(entries)
    text = (
        f"{count} site{'s' if count != 1 else ''}: {programs} program"
        f"{'s' if programs != 1 else ''}, {data} data section{'s' if data != 1 else ''}, "
        f"{unresolved} unresolved"
    )
    infos = [e.upgrade for e in entries if e.upgrade is not None]
    if infos:
        upgraded = sum(1 for i in infos if i.upgraded)
        single = sum(1 for i in infos if i.needs_single)
        text += (
            f"; upgrade: {upgraded} upgraded, {len(infos) - upgraded} not upgraded, "
            f"{single} need{'s' if single == 1 else ''} .single"
        )
    return text + "."


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(display_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(_pad(cell, w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _full(entries: Sequence[InventoryEntry]) -> str:
    if not entries:
        return "No section sites found.\n"
    by_file: dict[str, list[InventoryEntry]] = {}
    for entry in entries:
        by_file.setdefault(entry.site.path, []).append(entry)
    blocks: list[str] = []
    for path, group in by_file.items():
        rows = [["LOCATION", "KIND", "NAME", "SECTION", "LIBBPF ENTRY", "UPGRADE", "BRANCH"]]
        for e in group:
            site = e.site
            kind = site.kind + (" (template)" if site.template else "")
            rows.append(
                [
                    f"{site.span.start.row}:{site.span.start.column}",
                    kind,
                    _name(e),
                    _cell(site.section_text),
                    _target(e),
                    _fate(e.upgrade) or "-",
                    _cell(site.branch) if site.branch else "-",
                ]
            )
        header = printable(path, keep="")
        loaders = [e.loader for e in group if e.loader is not None]
        if loaders and loaders[0].kind != "libbpf-assumed":
            header += f" (loader: {_loader_text(loaders[0])})"
        lines = ("  " + line for line in _table(rows))
        blocks.append("\n".join([header, *lines]))
    return "\n\n".join([*blocks, totals(entries)]) + "\n"


def render_inventory(
    entries: list[InventoryEntry],
    fmt: InventoryFormat,
    sources: dict[str, bytes] | None = None,
) -> str:
    """Render the inventory; `sources` is accepted for parity with `render` and unused so far."""
    del sources
    if fmt == "json":
        return dumps([entry_object(e) for e in entries])
    if fmt == "concise":
        return "".join(concise_line(e) + "\n" for e in entries) + totals(entries) + "\n"
    if fmt == "full":
        return _full(entries)
    raise ValueError(f"unknown inventory format {fmt!r}; expected one of {INVENTORY_FORMATS}")
