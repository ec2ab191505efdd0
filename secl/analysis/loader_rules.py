"""Rules for BPF sources that libbpf does not load: section names judged by the loader's own
section model (cilium/ebpf, aya), and SECL005 for loaders secl does not model.

libbpf's rules (secl.analysis.sections) skip these sources; the upgrade analysis gives their
programs `loader-not-libbpf`.
"""

from __future__ import annotations

import os
import re
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
            if verdict.code == "skip" and _typed_by_go(project, loader, site.program):
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


# cilium/ebpf: a ProgramSpec is a plain struct the caller may change between reading the
# object and loading it. collection.go (collectionLoader.loadProgram) refuses a program only
# when its spec's Type is still UnspecifiedProgram at load time, and CollectionSpec.Programs
# is keyed by the program's ELF symbol name (elf_reader.go: loadProgramSections). So
# `spec.Programs["fn"].Type = ebpf.SchedCLS`, or a `range spec.Programs` loop setting
# `p.Type`, types a program its section name leaves untyped before LoadAndAssign sees it.
_SPEC_PROGRAMS = b".Programs"
_NAMED_TYPE = re.compile(rb'\.Programs\s*\[\s*"([^"\\\n]+)"\s*\]\s*\.Type\s*=(?!=)\s*(\S+)')
_KEYED_TYPE = re.compile(rb"\.Programs\s*\[\s*[A-Za-z_]\w*\s*\]\s*\.Type\s*=(?!=)\s*(\S+)")
_NAMED_VAR = re.compile(rb'\b([A-Za-z_]\w*)\s*:?=\s*[\w.]+\.Programs\s*\[\s*"([^"\\\n]+)"\s*\]')
_RANGE_VAR = re.compile(
    rb"\bfor\s+[A-Za-z_]\w*\s*,\s*([A-Za-z_]\w*)\s*:?=\s*range\s+[\w.()]*\.Programs\b"
)
_LINE_COMMENT = re.compile(rb"//[^\n]*")


def _typed_by_go(project: Project, loader: Assignment, program: str | None) -> bool:
    """Whether Go code of the loader's packages (the directories its cilium/ebpf evidence is
    in: a bpf2go loader `load<Name>()` of a lower-case name is unexported, so its caller is
    there) sets the ProgramSpec type of `program`, or of every program, before loading."""
    typed = _go_typed_programs(project, loader)
    return typed is not None and (typed[1] or (program is not None and program in typed[0]))


def _go_typed_programs(project: Project, loader: Assignment) -> tuple[frozenset[str], bool] | None:
    directories = sorted({os.path.dirname(u.path) for u in loader.evidence if u.kind == CILIUM})
    key = "go-typed-programs:" + "\0".join(directories)
    if key in project.memo:
        return project.memo[key]  # type: ignore[return-value]
    names: set[str] = set()
    every = False
    for directory in directories:
        absolute = os.path.join(project.root, directory)
        try:
            entries = sorted(os.listdir(absolute))
        except OSError:
            continue
        for entry in entries:
            if not entry.endswith(".go") or entry.endswith("_test.go"):
                continue
            try:
                with open(os.path.join(absolute, entry), "rb") as handle:
                    data = handle.read(4 << 20)
            except OSError:
                continue
            if _SPEC_PROGRAMS not in data or b".Type" not in data:  # cheap gate
                continue
            found, all_of_them = _spec_types(_LINE_COMMENT.sub(b"", data))
            names |= found
            every = every or all_of_them
    result = (frozenset(names), every) if names or every else None
    project.memo[key] = result
    return result


def _sets_a_type(value: bytes) -> bool:
    return not value.startswith(b"ebpf.UnspecifiedProgram")


def _spec_types(data: bytes) -> tuple[set[str], bool]:
    """Program names whose ProgramSpec.Type one Go file assigns, and whether it assigns the
    Type of programs it picks at run time (a loop over spec.Programs, a variable key)."""
    names = {m.group(1).decode() for m in _NAMED_TYPE.finditer(data) if _sets_a_type(m.group(2))}
    every = any(_sets_a_type(m.group(1)) for m in _KEYED_TYPE.finditer(data))
    bound = [(m.group(1), m.group(2).decode()) for m in _NAMED_VAR.finditer(data)]
    loops = [m.group(1) for m in _RANGE_VAR.finditer(data)]
    for var, name in bound:
        if _var_type_set(data, var):
            names.add(name)
    every = every or any(_var_type_set(data, var) for var in loops)
    return names, every


def _var_type_set(data: bytes, var: bytes) -> bool:
    pattern = re.compile(rb"\b" + re.escape(var) + rb"\.Type\s*=(?!=)\s*(\S+)")
    return any(_sets_a_type(m.group(1)) for m in pattern.finditer(data))


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
