"""SECL116 and SECL302: kprobe targets judged by a kernel's own lists (secl/kernel.py).

Only programs libbpf may attach itself are judged (the target is the section's), only
literal targets (a pattern matches what the kernel has), and only with the list a verdict
needs: absence needs `available_filter_functions`, the blacklist needs `kprobes/blacklist`,
"blacklisted but traceable" both.
"""

from __future__ import annotations

from collections.abc import Iterator

from secl.analysis.project import Project
from secl.analysis.sections import _may_auto_attach, libbpf_loads, replace_section
from secl.facts import SectionSite
from secl.findings import Finding, Fix, UpgradeInfo
from secl.libbpf.suffix import parse_kprobe

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    # secl.kernel is read only when kernel lists are configured (start-up of every run)
    from secl.kernel import FunctionList, KprobeTarget

NAMES = {
    "SECL116": ("kprobe-target-not-in-kernel", "error"),
    "SECL302": ("upgraded-kprobe-on-blacklisted-target", "info"),
}


def _finding(code: str, site: SectionSite, message: str, fix: Fix | None = None) -> Finding:
    name, severity = NAMES[code]
    notes: tuple[str, ...] = ()
    if site.configuration and site.configuration != site.branch:
        notes = (f"holds for the configuration `{site.configuration}`",)
    elif site.branch:
        notes = (f"only when `{site.branch}`",)
    return Finding(
        code=code, name=name, severity=severity, message=message,  # type: ignore[arg-type]
        path=site.path, span=site.span, program=site.program, section=site.section_text,
        fix=fix, notes=notes,
    )  # fmt: skip


def _judged(project: Project) -> Iterator[tuple[SectionSite, KprobeTarget]]:
    """Reported kprobe-family programs libbpf loads and may attach, with a literal target."""
    from secl.kernel import kprobe_target

    for site in project.programs:
        if site.path not in project.reported or site.section is None:
            continue
        target = kprobe_target(site.section)
        if target is None or not libbpf_loads(project, site.path):
            continue
        if not _may_auto_attach(project, site):
            continue  # attached by hand to whatever the loader names
        yield site, target


def _upgrades(project: Project) -> dict[tuple[str, int, str | None], UpgradeInfo]:
    from secl.analysis.upgrade import analyse_upgrades

    return analyse_upgrades(project).info


def _origin(functions: FunctionList | None, what: str) -> str:
    if functions is None:
        return what
    return f"{what} of {functions.origin}"


def absent_target(project: Project) -> Iterator[Finding]:
    """SECL116: the target is not a function the kernel can trace (the attach fails, as
    written and upgraded), or it is on the kprobe blacklist and libbpf attaches it as a
    classic kprobe."""
    lists = project.kernel
    if lists is None:
        return
    functions, blacklist = lists.functions, lists.blacklist
    upgrades = _upgrades(project) if blacklist is not None else {}
    for site, target in _judged(project):
        if functions is not None and not any(c in functions for c in target.candidates):
            yield _absent(site, target, functions)
            continue
        if blacklist is None:
            continue
        listed = [c for c in target.candidates if c in blacklist]
        if not listed:
            continue
        info = upgrades.get(site.key)
        multi_now = target.route == "multi" or (
            target.route == "upgradable"
            and project.config.target_libbpf == "upgrade"
            and info is not None
            and info.upgraded
            and not info.needs_single
        )
        if multi_now:
            continue  # the fprobe behind a multi-kprobe does not consult the blacklist
        traceable = functions is not None and any(c in functions for c in target.candidates)
        hint = ""
        if traceable and target.syscall is None:
            hint = f"; a multi-kprobe can (`kprobe.multi/{target.function}`)"
        yield _finding(
            "SECL116", site,
            f"`{listed[0]}` is on the kprobe blacklist of {blacklist.origin}: libbpf attaches "
            f"this program as a classic kprobe, which the kernel refuses there (EINVAL){hint}",
        )  # fmt: skip


def _absent(site: SectionSite, target: KprobeTarget, functions: FunctionList) -> Finding:
    if target.syscall is not None:
        what = f"syscall `{target.syscall}` has no wrapper (`{target.function}`, ...)"
        suggestions = [
            n.removeprefix(target.function.removesuffix(target.syscall))
            for n in functions.close(target.function)
        ]
    else:
        what = f"`{target.function}` is not"
        suggestions = functions.close(target.function)
    module = " (it may also live in a module that was not loaded when the list was taken)"
    message = (
        f"{what} in the traceable functions (available_filter_functions) of "
        f"{functions.origin}: the attach fails on that kernel (a kprobe with EINVAL or "
        f"ENOENT, a multi-kprobe with ESRCH or, from libbpf, ENOENT){module}"
    )
    fix = None
    if suggestions:
        message += "; did you mean " + " or ".join(f"`{s}`" for s in suggestions) + "?"
        section = site.section or ""
        new = _retarget(section, target, suggestions[0])
        if new is not None:
            fix = replace_section(site, new, "unsafe", f"Use `{new}` (that kernel's name)")
    return _finding("SECL116", site, message, fix)


def _retarget(section: str, target: KprobeTarget, name: str) -> str | None:
    """The section with its target function replaced (offset and the rest kept)."""
    head, _, suffix = section.partition("/")
    if target.syscall is not None:
        return f"{head}/{name}"
    if target.route == "multi":
        return f"{head}/{name}" if suffix == target.function else None
    spec = parse_kprobe(suffix)
    return f"{head}/{name}{suffix[len(spec.symbol) :]}"


def blacklisted_upgrade(project: Project) -> Iterator[Finding]:
    """SECL302: an upgraded kprobe whose target is on the kprobe blacklist but traceable:
    today's classic kprobe fails there, the upgraded multi-kprobe attaches."""
    lists = project.kernel
    if lists is None or lists.functions is None or lists.blacklist is None:
        return
    upgrades = _upgrades(project)
    for site, target in _judged(project):
        if target.route != "upgradable" or target.function not in lists.blacklist:
            continue
        if not any(c in lists.functions for c in target.candidates):
            continue  # not traceable: SECL116
        info = upgrades.get(site.key)
        if info is None or not info.upgraded:
            continue
        message = (
            f"`{target.function}` is on the kprobe blacklist of {lists.blacklist.origin} but "
            "traceable: as written today (a classic kprobe) the attach fails with EINVAL; "
            "upgraded to a multi-kprobe it attaches"
        )
        if info.needs_single:
            codes = ", ".join(info.codes)
            message += f". The `.single` section {codes} asks for would fail there again"
        yield _finding("SECL302", site, message)


RULES = {"SECL116": absent_target, "SECL302": blacklisted_upgrade}
