"""Run every rule over the project; apply selection and suppressions."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from secl.analysis.project import Project
from secl.analysis.suppress import Suppression, covers, suppressions
from secl.config import selected
from secl.findings import Finding

Rule = Callable[[Project], Iterator[Finding]]


def _rule_sets() -> list[dict[str, Rule]]:
    from secl.analysis import kernel, loader_rules, notes, objects, sections

    return [notes.RULES, sections.RULES, loader_rules.RULES, objects.RULES, kernel.RULES]


def run_rules(project: Project) -> list[Finding]:
    # Every rule runs whatever the selection: a suppression is stale only if no finding, selected
    # or not, sits under it.
    findings: list[Finding] = []
    for rules in _rule_sets():
        for rule in rules.values():
            findings.extend(f for f in rule(project) if f.path in project.reported)
    findings.extend(_upgrade_findings(project))
    findings = [_name_loader(project, f) for f in findings]
    if project.objects:
        from secl.analysis.objects import on_object

        findings = [on_object(project, f) if f.path in project.objects else f for f in findings]
    findings = _apply_suppressions(project, findings)
    findings = [f for f in findings if selected(f.code, project.config, f.path)]
    findings.sort(key=lambda f: f.sort_key)
    return findings


def _name_loader(project: Project, finding: Finding) -> Finding:
    """A SECL1xx/SECL2xx finding on a source that Go or Rust code loads through libbpf says
    so (`full` shows it under the caret): the user should know what secl assumed."""
    if finding.code[:5] not in ("SECL1", "SECL2") or any("judged as" in n for n in finding.notes):
        return finding
    from secl.analysis.loaders import all_libbpf, assignment
    from secl.loaders import LIBBPF, LIBBPF_ASSUMED

    if all_libbpf(project):
        return finding
    loader = assignment(project, finding.path)
    if loader.kind in (LIBBPF, LIBBPF_ASSUMED):
        return finding
    from dataclasses import replace

    use = loader.evidence[0] if loader.evidence else None
    where = f" ({use.path}:{use.span.start.row})" if use is not None else " (configured)"
    return replace(finding, notes=(*finding.notes, f"judged as loaded by {loader.display}{where}"))


def _upgrade_findings(project: Project) -> list[Finding]:
    if not project.has_probe_programs:
        return []
    try:
        from secl.analysis.upgrade import analyse_upgrades
    except ImportError:  # pragma: no cover - during development of the upgrade analysis
        return []
    return [f for f in analyse_upgrades(project).findings if f.path in project.reported]


def _apply_suppressions(project: Project, findings: list[Finding]) -> list[Finding]:
    by_path: dict[str, list[Suppression]] = {}
    for path in project.reported:
        by_path[path] = suppressions(path, project.files[path], project.positions(path))
    used: set[Suppression] = set()
    kept = []
    for finding in findings:
        matches = [
            s
            for s in by_path.get(finding.path, ())
            if covers(s, finding.code, finding.span.start.row)
        ]
        if matches:
            used.update(matches)
            continue
        kept.append(finding)
    from secl.analysis.notes import stale_suppression

    for sups in by_path.values():
        kept.extend(stale_suppression(s) for s in sups if s not in used)
    return kept
