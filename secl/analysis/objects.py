"""Compiled objects: SECL004 (an object out of date with its source), and what every finding
on an object carries (no fix; the source line it was compiled from, in `related`)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import replace

from secl.analysis.project import Project
from secl.facts import Position, SectionSite, Span
from secl.findings import Finding, Related

MAX_LISTED = 4
_LOCAL_INCLUDE = re.compile(rb'^[ \t]*#[ \t]*include[ \t]*"([^"\n]+)"', re.MULTILINE)


def on_object(project: Project, finding: Finding) -> Finding:
    """A finding on an object: never a fix (secl does not rewrite objects), the source line
    its line info names when the source is not in view, and the twin it stands for."""
    item = project.objects[finding.path]
    related = finding.related
    notes = finding.notes
    site = next((s for s in item.sites if s.span.start_byte == finding.span.start_byte), None)
    origin = site.origin if site is not None else None
    if finding.code != "SECL004" and origin is not None and origin.source and origin.line:
        where = Position(origin.line, origin.column or 1)
        what = f"`{site.program}` is" if site is not None and site.program else "it is"
        related = (
            *related,
            Related(origin.source, Span(0, 0, where, where),
                    f"{what} compiled from here (.BTF.ext line info); that source is not "
                    "in view"),
        )  # fmt: skip
    twins = sorted(p for p, other in project.objects.items() if other.twin == finding.path)
    if twins:
        also = ", ".join(f"`{os.path.basename(p)}`" for p in twins)
        notes = (*notes, f"also {also}: the same programs and sections")
    return replace(finding, fix=None, related=related, notes=notes)


def stale_object(project: Project) -> Iterator[Finding]:
    """SECL004: an object with a program or data section that no `#if` branch of its source
    has, or without a program the source defines unconditionally."""
    for path, item in sorted(project.objects.items()):
        if item.source is None or path not in project.reported:
            continue
        differences = _differences(project, path, item.object, item.sites, item.source)
        if not differences:
            continue
        if item.twin is not None:
            continue  # its pair reports both (same programs and sections)
        first_site, _ = differences[0]
        shown = [text for _, text in differences[:MAX_LISTED]]
        if len(differences) > MAX_LISTED:
            shown.append(f"{len(differences) - MAX_LISTED} more")
        name = os.path.basename(path)
        source_name = os.path.basename(item.source)
        top = Position(1, 1)
        yield Finding(
            code="SECL004",
            name="object-out-of-date",
            severity="info",
            message=(
                f"`{name}` is out of date with its source `{source_name}`: "
                + "; ".join(shown)
                + ". Rebuild it: secl reports the source's findings, not the object's"
            ),
            path=path,
            span=first_site.span if first_site is not None else Span(0, 0, top, top),
            program=first_site.program if first_site is not None else None,
            section=first_site.section_text if first_site is not None else None,
            related=(Related(item.source, Span(0, 0, top, top), "the source it was built from"),),
        )


def _differences(
    project: Project, path: str, obj: object, sites: tuple[SectionSite, ...], source: str
) -> list[tuple[SectionSite | None, str]]:
    """(the object's site, or None, and the difference in words), object order first."""
    from secl.objects import in_view
    from secl.parse.objects import BpfObject

    assert isinstance(obj, BpfObject)
    source_sites, compared, complete = _source_sites(project, source)
    programs: dict[str, set[str | None]] = {}
    unnamed = False
    for s in source_sites:
        if s.kind == "program" or (s.kind == "unknown" and s.section is None):
            if s.program is None:
                unnamed = True  # a site secl could not read: it may be any program
            else:
                programs.setdefault(s.program, set()).add(s.section)
    data = {s.section for s in source_sites if s.kind != "program"}
    by_row = {s.origin.elf_section if s.origin else 0: s for s in sites}
    out: list[tuple[SectionSite | None, str]] = []
    named = {p.name for p in obj.programs}
    for program in obj.programs:
        if program.source is not None:
            found = in_view(program.source.file, path, project.files)
            if found is None or os.path.abspath(found) not in compared:
                continue  # from a header not in view: nothing to compare it with
        site = _site_of(sites, program.name)
        sections = programs.get(program.name)
        if sections is None:
            if not unnamed:
                out.append((site, f"program `{program.name}` (`{program.section}`) is in no "
                            "#if branch of the source"))  # fmt: skip
        elif program.section not in sections and None not in sections:
            written = ", ".join(f"`{s}`" for s in sorted(x for x in sections if x))
            out.append((site, f"program `{program.name}` is in `{program.section}`, the source "
                        f"has it in {written}"))  # fmt: skip
    if complete and None not in data:
        for section in obj.data:
            if section.section not in data:
                text = f"section `{section.section}` is in no #if branch of the source"
                out.append((by_row.get(section.elf_section), text))
    for s in source_sites:
        if (
            s.path == source
            and s.kind == "program"
            and s.program is not None
            and s.program not in named
            and s.section is not None
            and s.branch is None
            and s.configuration is None
            and not s.template
            and not s.is_static
            and not s.macro_users
        ):
            out.append((None, f"the source defines program `{s.program}` (`{s.section}`) "
                        "unconditionally, the object has no such program"))  # fmt: skip
    return out


def _site_of(sites: tuple[SectionSite, ...], program: str) -> SectionSite | None:
    return next((s for s in sites if s.program == program), None)


def _source_sites(project: Project, source: str) -> tuple[list[SectionSite], set[str], bool]:
    """The sites of the source and of the local headers it includes that are in view, those
    files (absolute), and whether every local header it includes is in view (data sections
    a header declares cannot be told apart otherwise)."""
    found = list(project.sites_in(source))
    files = {os.path.abspath(source)}
    data = project.files.get(source, b"")
    complete = True
    directory = os.path.dirname(os.path.abspath(source))
    absolute = {os.path.abspath(p): p for p in project.files}
    for m in _LOCAL_INCLUDE.finditer(data):
        name = m.group(1).decode("utf-8", "replace")
        header = absolute.get(os.path.normpath(os.path.join(directory, name)))
        if header is None:
            complete = False
            continue
        found += project.sites_in(header)
        files.add(os.path.abspath(header))
    return found, files, complete


RULES = {"SECL004": stale_object}
