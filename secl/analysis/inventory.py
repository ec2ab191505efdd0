"""`secl sections`: every site, the libbpf entry it matches, and its fate under the upgrade."""

from __future__ import annotations

from secl.analysis.project import Project
from secl.findings import InventoryEntry, UpgradeInfo
from secl.libbpf.table import Target, lookup_any, match


def build_inventory(project: Project) -> list[InventoryEntry]:
    target = Target.parse(project.config.target_libbpf)
    upgrades = _upgrades(project)
    entries = []
    for site in project.sites:
        if site.path not in project.reported:
            continue
        definition = None
        if site.section is not None and site.kind != "data" and not site.template:
            found = match(site.section, target) or lookup_any(site.section)
            definition = found.definition.name if found is not None else None
        upgrade = upgrades.get(site.key)
        entries.append(InventoryEntry(site=site, definition=definition, upgrade=upgrade))
    entries.sort(key=lambda e: (e.site.path, e.site.span.start_byte))
    return entries


def _upgrades(project: Project) -> dict[tuple[str, int, str | None], UpgradeInfo]:
    if not project.has_probe_programs:
        return {}
    try:
        from secl.analysis.upgrade import analyse_upgrades
    except ImportError:  # pragma: no cover - while the upgrade analysis is being written
        return {}
    return analyse_upgrades(project).info
