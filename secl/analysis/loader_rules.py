"""Rules for BPF sources that libbpf does not load: section names judged by the loader's own
section model (cilium/ebpf, aya), and SECL005 for loaders secl does not model.

libbpf's rules (secl.analysis.sections) skip these sources; the upgrade analysis gives their
programs `loader-not-libbpf`.
"""

from __future__ import annotations

from collections.abc import Iterator

from secl.analysis.loaders import Assignment, all_libbpf, assignments
from secl.analysis.project import Project
from secl.analysis.sections import NAMES, _finding, replace_section
from secl.facts import SectionSite
from secl.findings import Finding, Related
from secl.loaders import CILIUM, LIBBPF_FAMILY, MODELLED


def _sites(project: Project, path: str) -> list[SectionSite]:
    return [
        s
        for s in project.sites
        if s.path == path and s.kind == "program" and not s.template and s.section is not None
    ]


def _reported(project: Project) -> Iterator[tuple[str, Assignment]]:
    if all_libbpf(project):
        return
    for path, loader in sorted(assignments(project).items()):
        if path in project.reported and not loader.libbpf_family:
            yield path, loader


def loader_section_names(project: Project) -> Iterator[Finding]:
    """SECL101/SECL102/SECL104 for sources cilium/ebpf or aya load, by that library's rules."""
    for path, loader in _reported(project):
        if loader.kind not in MODELLED:
            continue
        from secl.loaders.models import judge  # only with such a loader: start-up

        where = _where(loader)
        generated = _generated_loader(loader)
        for site in _sites(project, path):
            verdict = judge(loader.kind, site.section or "", loader.version)
            code = verdict.code_for(generated)
            if code not in NAMES:
                continue
            fix = None
            if verdict.did_you_mean:
                best = verdict.did_you_mean[0]
                fix = replace_section(site, best, "unsafe", f"Use `{best}`")
            finding = _finding(code, site, verdict.full_message, fix=fix)
            yield _with_loader(finding, loader, where)


def _generated_loader(loader: Assignment) -> bool:
    """Whether the object is loaded through bpf2go's generated `load<Name>Objects()` (its
    LoadAndAssign fails on a program cilium/ebpf cannot type, where NewCollection skips it):
    a bpf2go use, or a generated `*_bpfel.go`/`*_bpfeb.go`, reaches the source."""
    return any(
        u.kind == CILIUM and u.certain and (u.idents or "bpf2go" in u.value)
        for u in loader.evidence
    )


def unmodelled_loader(project: Project) -> Iterator[Finding]:
    """SECL005: the source is loaded by a library whose section names secl does not model;
    no SECL1xx or SECL2xx is given for it. Once per source, at its first program."""
    for path, loader in _reported(project):
        if loader.kind in MODELLED or loader.kind in LIBBPF_FAMILY:
            continue
        sites = [s for s in project.sites if s.path == path and s.kind == "program"]
        if not sites:
            continue
        site = min(sites, key=lambda s: s.span.start_byte)
        use = loader.evidence[0] if loader.evidence else None
        found = (
            f" (found at {use.path}:{use.span.start.row}: {use.value})" if use is not None else ""
        )
        how = "configured" if loader.configured else "loaded"
        message = (
            f"{how} by {loader.display}{found}: secl does not model its section names, so "
            "no section or auto-upgrade rule checks this file"
        )
        finding = Finding(
            code="SECL005",
            name="unmodelled-loader",
            severity="info",
            message=message,
            path=site.path,
            span=site.span,
            program=site.program,
            section=site.section_text,
            related=_related(loader),
        )
        yield finding


def _where(loader: Assignment) -> str:
    if not loader.evidence:
        return "configured"
    use = loader.evidence[0]
    return f"{use.path}:{use.span.start.row}"


def _related(loader: Assignment) -> tuple[Related, ...]:
    return tuple(
        Related(u.path, u.span, f"loaded with {u.kind} here: {u.value}")
        for u in loader.evidence[:4]
    )


def _with_loader(finding: Finding, loader: Assignment, where: str) -> Finding:
    from dataclasses import replace

    return replace(
        finding,
        related=finding.related + _related(loader),
        notes=(*finding.notes, f"judged as loaded by {loader.display} ({where})"),
    )


RULES = {
    "SECL005": unmodelled_loader,
    "SECL101": loader_section_names,  # also SECL102, SECL104
}
