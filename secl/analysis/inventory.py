"""`secl sections`: every site, the libbpf entry it matches, and its fate under the upgrade."""

from __future__ import annotations

from secl.analysis.project import Project
from secl.findings import InventoryEntry, LoaderEvidence, LoaderInfo, UpgradeInfo
from secl.libbpf.table import Target, lookup_any, match
from secl.loaders import MODELLED


def build_inventory(project: Project) -> list[InventoryEntry]:
    target = Target.parse(project.config.target_libbpf)
    upgrades = _upgrades(project)
    entries = []
    for site in project.sites:
        if site.path not in project.reported:
            continue
        definition = None
        loader = _loader(project, site.path) if site.kind == "program" else None
        if site.section is not None and site.kind != "data" and not site.template:
            if loader is not None and loader.kind in MODELLED:
                # the entry of the loader's own table (cilium/ebpf, aya), not libbpf's
                from secl.loaders.models import judge

                definition = judge(loader.kind, site.section, loader.version).entry
            else:
                found = match(site.section, target) or lookup_any(site.section)
                definition = found.definition.name if found is not None else None
        upgrade = upgrades.get(site.key)
        entries.append(
            InventoryEntry(site=site, definition=definition, upgrade=upgrade, loader=loader)
        )
    entries.sort(key=lambda e: (e.site.path, e.site.span.start_byte))
    return entries


def _loader(project: Project, path: str) -> LoaderInfo:
    from secl.analysis.loaders import assignment

    found = assignment(project, path)
    evidence = tuple(
        LoaderEvidence(u.path, u.span, u.value, u.kind, u.certain) for u in found.evidence
    )
    return LoaderInfo(found.kind, found.version, evidence)


def _upgrades(project: Project) -> dict[tuple[str, int, str | None], UpgradeInfo]:
    if not project.has_probe_programs:
        return {}
    try:
        from secl.analysis.upgrade import analyse_upgrades
    except ImportError:  # pragma: no cover - while the upgrade analysis is being written
        return {}
    return analyse_upgrades(project).info
