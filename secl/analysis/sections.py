"""SECL1xx: section names libbpf rejects, mis-parses, or that need a newer libbpf.

Each rule is a pure function of the project model. A site secl could not resolve (a macro
piece) never reaches these rules: SECL001 reports it instead.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from secl.analysis.manual_links import linked_by_hand
from secl.analysis.project import Project
from secl.facts import SectionSite
from secl.files import is_cpp
from secl.findings import Edit, Finding, Fix, Related
from secl.libbpf.suffix import SuffixProblem, check_suffix
from secl.libbpf.table import (
    SectionMatch,
    Target,
    Version,
    did_you_mean,
    load_table,
    lookup_any,
    match,
    removed_name,
    strip_question_mark,
)
from secl.pairing import nearest, skeleton_names, stem
from secl.parse import large
from secl.parse.filefacts import has_body
from secl.parse.pasted import macros_that_open, pasted_skeletons
from secl.parse.tree import lex

TYPE_CHECKING = False
if TYPE_CHECKING:
    from secl.analysis.builds import CommandLoad

LIBBPF_1_0 = Version.parse("1.0")
_MANUAL_LINK_SKIPPED = Version.parse("0.8")  # skeleton attach skips links set by hand
NAMES = {
    "SECL101": "unknown-section-name",
    "SECL102": "suffix-on-exact-section-name",
    "SECL104": "malformed-section-suffix",
    "SECL105": "silently-misparsed-section-suffix",
    "SECL106": "relative-uprobe-path",
    "SECL107": "usdt-sleepable-never-attaches",
    "SECL108": "section-removed-in-libbpf-1",
    "SECL109": "section-needs-newer-libbpf",
    "SECL110": "double-question-mark",
    "SECL111": "static-program-function",
    "SECL112": "redundant-target-prefix",
    "SECL113": "btf-target-required",
    "SECL114": "sleepable-call-in-non-sleepable-program",
    "SECL115": "unreferenced-struct-ops-program",
    "SECL117": "btf-target-not-an-identifier",
}
# The suffix problems (secl.libbpf.suffix kinds) each of these rules reports.
SUFFIX_KINDS = {
    "SECL105": {"truncated-symbol", "offset-not-parsed", "usdt-extra-field", "empty-binary"},
    "SECL106": {"relative-path"},
    "SECL107": {"usdt-sleepable-never-attaches"},
    "SECL112": {"redundant-prefix"},
    "SECL113": {"btf-target-required"},
    "SECL117": {"btf-name-not-identifier"},
}
_CODE_OF_KIND = {kind: code for code, kinds in SUFFIX_KINDS.items() for kind in kinds}


def _finding(
    code: str, site: SectionSite, message: str, *, fix: Fix | None = None,
    notes: tuple[str, ...] = (), related: tuple[Related, ...] = (),
) -> Finding:  # fmt: skip
    if site.configuration and site.configuration != site.branch:
        notes = (*notes, f"holds for the configuration `{site.configuration}`")
    elif site.branch:
        notes = (*notes, f"only when `{site.branch}`")
    return Finding(
        code=code,
        name=NAMES[code],
        severity="error",
        message=message,
        path=site.path,
        span=site.span,
        program=site.program,
        section=site.section_text,
        related=related,
        fix=fix,
        notes=notes,
    )


_REGISTER = re.compile(
    rb'libbpf_register_prog_handler\s*\(\s*(?:"((?:[^"\\\n]|\\.)*)"|(NULL|0|nullptr)\s*,)'
)


@dataclass(frozen=True, slots=True)
class CustomHandlers:
    """Section names the project's loaders claim with libbpf_register_prog_handler(); libbpf
    consults them before its own table (libbpf.c: find_sec_def())."""

    names: tuple[str, ...]
    fallback: bool  # a handler registered for NULL takes every unknown name

    def claims(self, section: str) -> bool:
        name, _ = strip_question_mark(section)
        for handler in self.names:  # libbpf.c: sec_def_matches()
            if handler.endswith("+"):
                base = handler[:-1]
                if name == base or name.startswith(base + "/"):
                    return True
            elif handler.endswith("/"):
                if name.startswith(handler):
                    return True
            elif name == handler:
                return True
        return False


def custom_handlers(project: Project, paths: list[str] | None = None) -> CustomHandlers:
    """Handlers registered in `paths` (default: every file of the project)."""
    names: list[str] = []
    fallback = False
    for path in project.files if paths is None else paths:
        data = project.files[path]
        # (a huge header without a function body registers nothing: has_body)
        if not has_body(data) or b"libbpf_register_prog_handler" not in data:
            continue
        for m in _REGISTER.finditer(data):
            if m.group(2) is not None:
                fallback = True
            else:
                names.append(m.group(1).decode("utf-8", "replace"))
    return CustomHandlers(tuple(names), fallback)


def _handlers_for(project: Project, path: str, cache: dict[str, CustomHandlers]) -> CustomHandlers:
    """Handlers of the loaders that open this object (handlers are per process); with no such
    loader in view, those of the whole project."""
    if path not in cache:
        loaders = loaders_of(project, path)
        bound = _bound_handlers(project, path)
        if loaders or bound is not None:
            found = custom_handlers(project, loaders)
            if bound is not None:
                found = CustomHandlers(found.names + bound.names, found.fallback or bound.fallback)
            cache[path] = found
        else:
            everywhere = project.memo.get("handlers")
            if everywhere is None:
                everywhere = project.memo["handlers"] = custom_handlers(project)
            cache[path] = everywhere  # type: ignore[assignment]
    return cache[path]


def _bound_handlers(project: Project, path: str) -> CustomHandlers | None:
    """Handlers registered by Go or Rust code (through cgo or libbpf-sys) in the package of a
    libbpf-family loader that opens `path`: a Go package is one directory, and a handler is
    registered for the whole process. None when no such loader opens it."""
    from secl.analysis.loaders import all_libbpf, assignment
    from secl.loaders import LIBBPF

    scan = project.loader_scan
    if all_libbpf(project):
        return None
    uses = [u for u in assignment(project, path).evidence if u.kind != LIBBPF]
    if scan is None or not uses:
        return None
    by_directory = project.memo.get("bound-handlers")
    if by_directory is None:
        by_directory = {}
        for lf in scan.files:
            for fact in lf.facts.facts if lf.facts is not None else ():
                if fact.kind == "prog-handler":
                    directory = os.path.dirname(os.path.abspath(lf.path))
                    by_directory.setdefault(directory, []).append(fact.value)
        project.memo["bound-handlers"] = by_directory
    values = [
        v
        for d in sorted({os.path.dirname(os.path.abspath(u.path)) for u in uses})
        for v in by_directory.get(d, ())  # type: ignore[attr-defined]
    ]
    names = tuple(str(v) for v in values if v is not None)
    return CustomHandlers(names, any(v is None for v in values))


def _program_sites(project: Project) -> list[SectionSite]:
    """Program sites of reported files with a resolved section that libbpf's own table, not
    a custom handler, decides."""
    found = project.memo.get("section-program-sites")
    if found is None:
        cache: dict[str, CustomHandlers] = {}
        found = project.memo["section-program-sites"] = [
            site
            for site in project.sites
            if site.path in project.reported
            and site.kind == "program"
            and not site.template
            and site.section is not None
            and not strip_question_mark(site.section)[0].startswith(".")
            and libbpf_loads(project, site.path)
            and not _handlers_for(project, site.path, cache).claims(site.section)
        ]
    return found  # type: ignore[return-value]


def libbpf_loads(project: Project, path: str) -> bool:
    """Whether libbpf (from C, Go or Rust, or assumed) opens the object built from `path`: only
    then do libbpf's section table and its rules apply."""
    from secl.analysis.loaders import judged_as

    return judged_as(project, path)


def _target(project: Project) -> Target:
    return Target.parse(project.config.target_libbpf)


def _quote(section: str) -> str:
    return json.dumps(section, ensure_ascii=False)


def replace_section(site: SectionSite, new: str, applicability: str, message: str) -> Fix | None:
    """A fix that rewrites the whole section when it is one plain literal (no escapes)."""
    if len(site.pieces) != 1 or site.pieces[0].kind != "literal":
        return None
    piece = site.pieces[0]
    if "\\" in piece.text or not piece.text.startswith('"'):
        return None
    return Fix(applicability, message, (Edit(site.path, piece.span, _quote(new)),))  # type: ignore[arg-type]


def _classify(site: SectionSite, target: Target) -> tuple[str, object]:
    """Which of the name rules applies to a site: one per site, most specific first."""
    return _classify_section(site.section or "", target)


@lru_cache(maxsize=4096)
def _classify_section(section: str, target: Target) -> tuple[str, object]:
    # A pure function of the name and the target: real code repeats names a lot.
    if section.startswith("??"):
        return "SECL110", None
    if not target.is_upgrade and target.version is not None and target.version < LIBBPF_1_0:
        # Before 1.0 libbpf also matched exact names as prefixes (not modelled): only a name
        # that a newer release introduced is certain to be unknown.
        found = match(section, target)
        if found is not None:
            return "ok", found
        anywhere = lookup_any(section)
        if anywhere is not None and anywhere.requires is not None:
            return "SECL109", anywhere
        return "old", None
    removed = removed_name(section)
    if removed is not None and match(section, target) is None:
        return "SECL108", removed
    found = match(section, target)
    if found is not None:
        return "ok", found
    anywhere = lookup_any(section)
    if anywhere is not None:
        return "SECL109", anywhere
    exact = _exact_with_suffix(section)
    if exact is not None:
        rest = strip_question_mark(section)[0][len(exact) :]
        # `xdp/prog`, `sk_skb1`, `xdp_prog`: a name tacked on. `tcx` or `cgroup/sock_ops` are
        # other names altogether: SECL101 with its suggestions says more.
        if rest[0] == "/" or (
            rest[0] in "_-0123456789" and did_you_mean(section, target)[:1] in ([], [exact])
        ):
            return "SECL102", exact
    return "SECL101", None


def _exact_with_suffix(section: str) -> str | None:
    """The exact entry a name extends (`xdp/foo`, `xdp_prog`, `socket1`), if any: libbpf < 1.0
    matched such names by prefix; libbpf >= 1.0 compares exact entries with strcmp()."""
    name, _ = strip_question_mark(section)
    best = None
    for definition in load_table().definitions:
        if (
            definition.match == "exact"
            and name.startswith(definition.name)
            and name != definition.name
            and (best is None or len(definition.name) > len(best))
        ):
            best = definition.name
    return best


def unknown_section(project: Project) -> Iterator[Finding]:
    """SECL101, SECL102, SECL108, SECL109, SECL110: names libbpf of the target does not know."""
    target = _target(project)
    cache: dict[str, CustomHandlers] = {}
    for site in _program_sites(project):
        code, extra = _classify(site, target)
        if code in ("ok", "old"):
            continue
        if code in ("SECL101", "SECL102") and _unknown_is_expected(project, site, target, cache):
            continue
        yield _name_finding(code, extra, site, target)


def _unknown_is_expected(
    project: Project, site: SectionSite, target: Target, cache: dict[str, CustomHandlers]
) -> bool:
    """Unknown names libbpf never has to understand: a fallback handler takes them, the loader
    sets the program type by hand (libbpf.c: bpf_object_load_prog() only needs a type), or the
    object is not a libbpf object at all (iproute2's tc/ip pick the section on their command
    line: no loader opens it and none of its programs is in libbpf's table)."""
    if _handlers_for(project, site.path, cache).fallback:
        return True
    loaders = loaders_of(project, site.path)
    if any(_sets_program_type(project.files[p]) for p in loaders):
        return True
    if site.program and any(_autoload_off(project.files[p], site.program) for p in loaders):
        return True
    if loaders and not any(_may_load_object(project, site.path, p) for p in loaders):
        return True  # opened to read its BTF or maps, never loaded: no program type needed
    if loaders and all(_BPFTOOL_SKELETON in project.files[p][:256] for p in loaders):
        # Only a skeleton bpftool generated (a build makes one of every source) and no
        # file that calls it: what loads the object is a command (`tc ... obj` run by
        # system()), if any.
        loads = _command_loads(project, site.path, shelled=True)
        if loads and all(load.typed for load in loads):
            return True
    if not loaders:
        loads = _command_loads(project, site.path, shelled=True)
        if loads and all(load.typed for load in loads):
            return True  # `tc ... obj`, `ip ... xdp obj`, `bpftool prog load ... type T`
        if not loads and _written_for_iproute2(project, site.path):
            return True
        if (site.section or "") in _libxdp_sections(project):
            return True  # libxdp picks the program by this name and types it itself
        if not loads:
            libxdp, every = _run_time_typing(project)
            if every or (libxdp and strip_question_mark(site.section or "")[0].startswith("xdp")):
                return True  # a loader of objects named at run time types their programs
    if loaders or did_you_mean(site.section or "", target):
        return False
    return not any(
        _classify(other, target)[0] == "ok"
        for other in _program_sites(project)
        if other.path == site.path
    )


# libxdp's opens that pick a program by its section name: xdp_program__open_file(filename,
# section_name, opts) and xdp_program__find_file(...) (xdp-tools headers/xdp/libxdp.h), the
# object's name not a literal (a run-time path: the object cannot be told).
_LIBXDP_SECTION_OPEN = re.compile(
    rb'\bxdp_program__(?:open|find)_file\s*\(\s*[^",()]+(?:\([^()]*\))?\s*,\s*"([^"\\]*)"\s*,'
)


def _libxdp_sections(project: Project) -> frozenset[str]:
    """Section names that a C loader of the project hands libxdp to pick a program from an
    object it names only at run time. libxdp finds the program by that section name
    (libxdp.c: xdp_program__create_from_obj(), bpf_program_by_section_name()) and sets its
    type before loading it (BPF_PROG_TYPE_XDP in xdp_program__attach_single(),
    BPF_PROG_TYPE_EXT in xdp_multiprog__link_prog()), so libbpf's table never types it."""
    found = project.memo.get("libxdp-sections")
    if found is None:
        names: set[str] = set()
        for path, data in project.files.items():
            if b"xdp_program__" not in data or not (path.endswith((".c", ".h")) or is_cpp(path)):
                continue
            names |= {m.group(1).decode("utf-8", "replace")
                      for m in _LIBXDP_SECTION_OPEN.finditer(data)}  # fmt: skip
        found = project.memo["libxdp-sections"] = frozenset(names)
    return found  # type: ignore[return-value]


# Loaders that open an object whose file name comes at run time (an argument, a test
# description) and type its programs themselves, so libbpf's table types none of them:
# * libxdp: xdp_program__open_file(PATH, SECTION, ...) or xdp_program__create() with
#   `.open_filename` and `.prog_name` (xdp-tools headers/xdp/libxdp.h, struct
#   xdp_program_opts), none of them a literal (a literal section or name picks that program
#   only: _libxdp_sections); libxdp loads XDP programs only and sets BPF_PROG_TYPE_XDP on
#   them (libxdp.c xdp_program__attach_single());
# * libbpf: bpf_object__open(PATH) / bpf_object__open_file(PATH, ...) and, in a
#   bpf_object__for_each_program() loop, bpf_program__set_type() on each program from
#   something other than its section name (libbpf.c bpf_object_load_prog() then needs no
#   type from the name; bpftool's `prog load` derives it from bpf_program__section_name()
#   and still fails on unknown names, so a loop that reads the name does not count).
# (Patterns, not compiled ones: re compiles them on first use, so a run that never needs
# them never pays for them.)
_LIBXDP_RUN_TIME_OPEN = (
    rb'\bxdp_program__open_file\s*\(\s*[^"\s,()][^,;]*,\s*[^"\s]|\.open_filename\s*=\s*[^"\s,]'
)
# A literal program or section for libxdp to pick: that one only is loaded (see
# _libxdp_sections), not any program of the object.
_LIBXDP_LITERAL_PICK = rb'\.prog_name\s*=\s*"'
_LIBBPF_RUN_TIME_OPEN = rb'\bbpf_object__open(?:_file)?\s*\(\s*[^"\s,()]'
_EACH_PROGRAM = rb"\bbpf_object__for_each_program\s*\("


def _run_time_typing(project: Project) -> tuple[bool, bool]:
    """(libxdp, libbpf): whether a C loader of the project opens objects named at run time
    and types their programs itself (see _LIBXDP_RUN_TIME_OPEN), through libxdp (XDP
    programs) or through libbpf (every program of the object). A source no loader or command
    names is taken to be loaded by it."""
    found = project.memo.get("run-time-typing")
    if found is None:
        libxdp = every = False
        for path, data in project.files.items():
            if not (path.endswith(".c") or is_cpp(path)) or b"open" not in data:
                continue
            if b"LIBBPF_API" in data or _BPFTOOL_SKELETON in data[:256]:
                continue  # libbpf itself, or a generated skeleton
            if (
                b"xdp_program__" in data
                and re.search(_LIBXDP_RUN_TIME_OPEN, data)
                and not re.search(_LIBXDP_LITERAL_PICK, data)
            ):
                libxdp = True
            if b"bpf_program__set_type" in data and re.search(_LIBBPF_RUN_TIME_OPEN, data):
                every = every or _types_each_program(data)
        found = project.memo["run-time-typing"] = (libxdp, every)
    return found  # type: ignore[return-value]


def _types_each_program(data: bytes) -> bool:
    """Whether a bpf_object__for_each_program() loop body sets each program's type without
    reading the program's section name (the loop's braces matched, not its statements)."""
    for m in re.finditer(_EACH_PROGRAM, data):
        brace = data.find(b"{", m.end())
        if brace < 0:
            continue
        depth, i = 0, brace
        while i < len(data):
            depth += {123: 1, 125: -1}.get(data[i], 0)
            if depth == 0:
                break
            i += 1
        body = data[brace:i]
        if b"bpf_program__set_type" in body and b"section_name" not in body:
            return True
    return False


# iproute2's include/bpf_elf.h: "a contract between the application and the BPF loader in
# tc" (its `struct bpf_elf_map` and section names); include/bpf_api.h includes it.
_IPROUTE2_MARKS = (b"bpf_elf.h", b"bpf_elf_map", b"bpf_api.h")
_IPROUTE2_INCLUDE = re.compile(rb'#\s*include\s*[<"]([^">]*bpf_(?:elf|api)\.h)[">]')


def _written_for_iproute2(project: Project, path: str) -> bool:
    """Whether a BPF source no loader of the project opens is written for iproute2's loader
    (tc/ip): it includes iproute2's bpf_elf.h (directly, or through a bpf_api.h that does)
    or declares its maps with `struct bpf_elf_map`. Both of iproute2's loaders give every
    program the type of the command (lib/bpf_libbpf.c load_bpf_object():
    bpf_program__set_type(p, cfg->type); lib/bpf_legacy.c bpf_obj_open(): the `type`
    argument) and pick the program by the section named on the command line."""
    data = project.files.get(path, b"")
    if not any(mark in data for mark in _IPROUTE2_MARKS):
        return False
    if re.search(rb"\bstruct\s+bpf_elf_map\b", data):
        return True
    for m in _IPROUTE2_INCLUDE.finditer(data):
        header = m.group(1).decode("utf-8", "replace")
        if header.endswith("bpf_elf.h") or "iproute2/" in header:
            return True
        # a bpf_api.h of the project: iproute2's when it includes bpf_elf.h
        here = os.path.normpath(os.path.join(os.path.dirname(path), header))
        if b"bpf_elf.h" in project.files.get(here, b""):
            return True
    return False


def _name_finding(code: str, extra: object, site: SectionSite, target: Target) -> Finding:
    section = site.section or ""
    question = "?" if section.startswith("?") else ""
    if code == "SECL110":
        fixed = section[1:]
        return _finding(
            code, site,
            f"`{section}`: libbpf strips only one leading `?`, so it looks up "
            f"`{section[1:]}`, which matches no section",
            fix=replace_section(site, fixed, "safe", f"Use `{fixed}`"),
        )  # fmt: skip
    if code == "SECL108":
        removed = extra
        replacement = removed.replacement[0] if removed.replacement else None  # type: ignore[attr-defined]
        if removed.name == "maps":  # type: ignore[attr-defined]
            message = "legacy `maps` section: libbpf 1.0 and later refuse to open the object"
            return _finding(code, site, message)
        since = removed.removed_in  # type: ignore[attr-defined]
        message = (
            f"`{section}` was removed in libbpf {since}: libbpf {since} and later reject it "
            "as an unknown section"
        )
        fix = None
        if replacement is not None:
            message += f"; use `{question}{replacement}`"
            safe = removed.kind in ("section_def", "spelling")  # type: ignore[attr-defined]
            fix = replace_section(
                site, question + replacement, "safe" if safe else "unsafe",
                f"Use `{question}{replacement}`",
            )  # fmt: skip
        return _finding(code, site, message, fix=fix)
    if code == "SECL109":
        found: SectionMatch = extra  # type: ignore[assignment]
        if found.requires is None:
            message = (
                f"`{found.definition.name}` exists only with the proposed kprobe/uprobe "
                f"auto-upgrade; libbpf {_shown(target)} rejects `{section}` as unknown"
            )
        else:
            message = (
                f"`{section}` needs libbpf {found.requires} or newer "
                f"(target-libbpf is {_shown(target)})"
            )
        return _finding(code, site, message)
    if code == "SECL102":
        exact = extra
        return _finding(
            code, site,
            f"`{section}`: `{exact}` takes no suffix; libbpf 1.0 and later compare it exactly "
            "and reject the program at load (\"missing BPF prog type\")",
            fix=replace_section(site, question + str(exact), "unsafe", f"Use `{question}{exact}`"),
        )  # fmt: skip
    suggestions = did_you_mean(section, target)
    hint = _unknown_hint(section)
    message = f"unknown section `{section}`"
    if hint:
        message += f": {hint}"
    message += '; the program fails to load ("missing BPF prog type")'
    fix = None
    if suggestions:
        message += "; did you mean " + " or ".join(f"`{s}`" for s in suggestions) + "?"
        fix = replace_section(site, suggestions[0], "unsafe", f"Use `{suggestions[0]}`")
    return _finding("SECL101", site, message, fix=fix)


def _unknown_hint(section: str) -> str | None:
    name, _ = strip_question_mark(section)
    if name != name.strip():
        return "libbpf does not trim whitespace"
    if name != name.lower() and lookup_any(name.lower()) is not None:
        return "libbpf compares section names case-sensitively"
    base = name.split("/", 1)[0]
    if base.endswith(".s") and lookup_any(base[:-2]) is not None:
        return f"there is no sleepable variant of `{base[:-2]}`"
    return None


def _shown(target: Target) -> str:
    return "with the auto-upgrade" if target.is_upgrade else str(target)


def suffix_problems(project: Project) -> Iterator[Finding]:
    """SECL104-SECL107, SECL112, SECL113: what libbpf's attach (or load) step makes of the
    text after the section's base name."""
    target = _target(project)
    for site in _program_sites(project):
        code, found = _classify(site, target)
        if code != "ok" or found is None:
            continue
        for problem in check_suffix(found):  # type: ignore[arg-type]
            rule = _CODE_OF_KIND.get(problem.kind)
            if rule is None:
                if problem.severity != "error":
                    continue
                rule = "SECL104"
            if rule == "SECL113" and not _loaded_without_attach_target(project, site):
                continue
            if rule == "SECL117" and (
                (site.section or "").startswith("?")
                or _may_set_attach_target(project, site)
                or _never_loaded(project, site)
            ):
                continue
            if problem.phase == "attach" and not _may_auto_attach(project, site):
                continue  # libbpf parses the suffix only when it attaches the program itself
            yield _finding(rule, site, problem.message, fix=_suffix_fix(site, problem))


def _may_auto_attach(project: Project, site: SectionSite) -> bool:
    """Whether libbpf may auto-attach the program, the only time it reads an attach suffix
    (libbpf.c: bpf_program__attach() and bpf_object__attach_skeleton() call the section's
    attach function). With its loaders in view and none of them auto-attaching, a suffix that
    only names the target for readers (`uretprobe/readline`, attached by hand) is harmless."""
    loaders = loaders_of(project, site.path)
    bound = _bound_auto_attach(project, site)
    if bound:
        return True
    if not loaders:
        # no loader in view: it may well be auto-attached; Go and Rust libbpf loaders that
        # never attach it generically are in view when `bound` is False
        if bound is not None:
            return False
        # A source no loader names, in a Go module or crate whose loaders never attach
        # generically (aya and cilium/ebpf never do): nothing there parses its suffix.
        from secl.analysis.loaders import module_uses

        uses = module_uses(project, site.path)
        # A command that loads the object (`bpftool prog load` attaches only with
        # `autoattach`; ip and tc attach by their own arguments, never by the name).
        loads = _command_loads(project, site.path)
        if any(load.autoattach for load in loads):
            return True
        if not uses:
            return not loads
        generic = _generic_attach_files(project)
        return any(u.auto_attach or (u.auto_attach is None and u.path in generic) for u in uses)
    names = [
        n.encode() + attach
        for n in skeleton_names(site.path, project.config)
        for attach in (b"__attach(", b"::attach(")  # C++: bpftool's `probe_bpf::attach(skel)`
    ]
    program = site.program or ""

    def attaches(data: bytes) -> bool:
        if _BPFTOOL_SKELETON in data[:256]:
            # a skeleton header bpftool generated defines `X__attach()` around
            # bpf_object__attach_skeleton() (bpftool gen.c do_skeleton()): a definition,
            # called only by a loader that includes it (read on its own)
            return False
        if b"bpf_program__attach(" in data:
            return True  # attaches whatever it is given, autoattach or not
        attach_calls = [*names, b"bpf_object__attach_skeleton("]
        calls = [i for n in attach_calls if (i := data.find(n)) >= 0]
        if not calls:
            return False
        # libbpf.c bpf_object__attach_skeleton() skips a program whose autoload or
        # autoattach is off (bpf_program__set_autoattach(prog, false)), or, since libbpf 0.8
        # (commit 0d834905, "Allow BPF program auto-attach handlers to bail out"), whose link
        # the loader has already set by hand (secl.analysis.manual_links).
        return not (
            _autoload_off(data, program)
            or _autoattach_off(data, program)
            or (
                _target(project).allows_version(_MANUAL_LINK_SKIPPED)
                and linked_by_hand(
                    project, data, program, lambda at: _runs_before(data, at, min(calls))
                )
            )
        )

    return any(attaches(project.files[p]) for p in loaders)


# The mark bpftool writes at the top of every skeleton header it generates (gen.c
# do_skeleton(), do_subskeleton()).
_BPFTOOL_SKELETON = b"THIS FILE IS AUTOGENERATED BY BPFTOOL!"

# Library calls that attach a program the generic way, parsing its section's suffix
# (libbpf.c: bpf_program__attach(); libbpfgo: BPFProg.AttachGeneric(); libbpf-rs:
# ProgramImpl::attach()).
GENERIC_ATTACH = frozenset({"bpf_program__attach", "AttachGeneric", "attach"})


def _bound_auto_attach(project: Project, site: SectionSite) -> bool | None:
    """Whether a Go or Rust libbpf loader of this program may attach it generically (a
    skeleton's attach(), Module.AttachPrograms(), prog.AttachGeneric() of this program); None
    when no such loader opens it."""
    from secl.analysis.loaders import all_libbpf, assignment
    from secl.loaders import LIBBPF, LIBBPF_FAMILY

    if all_libbpf(project):
        return None
    uses = [
        u for u in assignment(project, site.path).evidence
        if u.kind != LIBBPF and u.kind in LIBBPF_FAMILY
    ]  # fmt: skip
    if not uses or project.loader_scan is None:
        return None
    skeleton = any(u.auto_attach for u in uses)
    switched_off = False
    files = {u.path for u in uses}
    for lf in project.loader_scan.files:
        if lf.path not in files or lf.facts is None:
            continue
        for fact in lf.facts.facts:
            ref = fact.program
            if ref is None or ref.name not in (None, site.program):
                continue
            if fact.kind == "attach" and fact.api in GENERIC_ATTACH:
                return True  # attaches whatever it is given, autoattach or not
            if fact.kind == "auto-attach":
                skeleton = True
            elif fact.kind in ("autoload", "autoattach") and ref.name == site.program:
                switched_off |= str(fact.value).strip() in ("false", "0")
    # libbpf.c bpf_object__attach_skeleton() skips a program whose autoload or autoattach is
    # off (libbpf-rs `OpenProgramMut::set_autoload(false)` / `set_autoattach(false)`).
    return skeleton and not switched_off


def _generic_attach_files(project: Project) -> frozenset[str]:
    """Go/Rust loader files that attach some program the generic way, or a whole object."""
    found = project.memo.get("generic-attach-files")
    if found is None:
        files = set()
        for lf in project.loader_scan.files if project.loader_scan is not None else ():
            for fact in lf.facts.facts if lf.facts is not None else ():
                if fact.kind == "auto-attach" or (
                    fact.kind == "attach" and fact.api in GENERIC_ATTACH
                ):
                    files.add(lf.path)
                    break
        found = project.memo["generic-attach-files"] = frozenset(files)
    return found  # type: ignore[return-value]


def _loaded_without_attach_target(project: Project, site: SectionSite) -> bool:
    """True when loader code that opens this object is in view and none of it calls
    bpf_program__set_attach_target(): only then is a bare BTF name a certain load failure."""
    if (site.section or "").startswith("?"):
        return False  # not loaded unless a loader turns autoload on
    loaders = loaders_of(project, site.path)
    return bool(loaders) and not any(
        b"bpf_program__set_attach_target" in project.files[p] for p in loaders
    )


_SET_ATTACH_TARGET = re.compile(
    rb"\b(?:bpf_program__set_attach_target|SetAttachTarget|set_attach_target)\s*\(\s*([^,)]*)"
)


def _may_set_attach_target(project: Project, site: SectionSite) -> bool:
    """Whether a loader of this program may call bpf_program__set_attach_target() (or
    libbpfgo's SetAttachTarget(), libbpf-rs's set_attach_target()) for it:
    libbpf then has the BTF id already and never looks the section's name up (libbpf.c:
    libbpf_prepare_prog_load() skips it when prog->attach_btf_id is set). A call on another
    program (`skel->progs.other`) does not count; one on a variable may be this program."""
    from secl.analysis.loaders import assignment

    paths = set(loaders_of(project, site.path))
    paths |= {u.path for u in assignment(project, site.path).evidence}
    program = (site.program or "").encode()
    for path in paths:
        data = project.files.get(path)
        if data is None:
            return True  # Go or Rust loader code: its calls are not read here
        for m in _SET_ATTACH_TARGET.finditer(data):
            target = m.group(1)
            named = re.search(rb"progs\s*\.\s*(\w+)\s*$", target)
            if named is None or named.group(1) == program:
                return True
    return False


def _never_loaded(project: Project, site: SectionSite) -> bool:
    """A loader turns autoload off for the program: its load-time checks never run."""
    return bool(site.program) and any(
        _autoload_off(project.files[p], site.program or "") for p in loaders_of(project, site.path)
    )


def _autoload_off(data: bytes, program: str) -> bool:
    """The loader turns autoload off for this program: libbpf then never loads it, whatever its
    section (libbpf.c: bpf_object__load_progs() skips programs with autoload off)."""
    return _switched_off(data, program, b"autoload")


def _autoattach_off(data: bytes, program: str) -> bool:
    """The loader turns autoattach off for this program (a tail-call target attached by
    nothing): the skeleton's attach leaves it alone."""
    return _switched_off(data, program, b"autoattach")


def _runs_before(data: bytes, at: int, attach: int) -> bool:
    """Whether code at `at` runs before the call at `attach`: earlier in the same function,
    or in a function whose first call in the file comes before it (or that the file never
    calls: its callers are out of view)."""
    here, there = _function_at(data, at), _function_at(data, attach)
    if here is None or there is None or here[0] == there[0]:
        return at < attach
    callers = [
        m.start()
        for m in re.finditer(rb"\b" + re.escape(here[0]) + rb"\s*\(", data)
        if not (here[1] <= m.start() < here[2]) and _function_at(data, m.start()) is not None
    ]
    return not callers or min(callers) < attach


def _function_at(data: bytes, at: int) -> tuple[bytes, int, int] | None:
    """(name, head start, body end) of the function whose body holds offset `at`."""
    found = None
    for m in _FUNCTION_HEAD.finditer(data, 0, at):
        if m.group(1) not in _NOT_FUNCTIONS:
            found = m
    if found is None:
        return None
    end = _body_end(data, found.end())
    return (found.group(1), found.start(), end) if at < end else None


def _switched_off(data: bytes, program: str, what: bytes) -> bool:
    if b"set_" + what not in data:
        return False
    pattern = (
        rb"bpf_program__set_" + what + rb"\s*\(\s*[\w.>-]*progs\." + re.escape(program.encode())
        + rb"\s*,\s*(?:false|0)\s*\)"
    )  # fmt: skip
    return re.search(pattern, data) is not None


# Found from the rare `__open` outwards: a pattern starting at every identifier is slow.
_SKELETON_CALL = re.compile(rb"__open(?:_and_load|_opts)?\s*\(")
_IDENT_BEFORE = re.compile(rb"[A-Za-z_]\w*\Z")
_OBJECT_NAME = re.compile(rb'["/]([\w.+-]+?\.o)"')
# bpftool's C++ skeleton: `probe_bpf::open_and_load()` (gen.c, under `#ifdef __cplusplus`).
# (compiled on first use: a run without C++ loaders does not pay for it)
_CPP_SKELETON_CALL = rb"\b([A-Za-z_]\w*)::open(?:_and_load)?\s*\("


# Calls that open an object file by its name: libbpf's bpf_object__open*(), and libxdp's
# (xdp-tools lib/libxdp/libxdp.c: xdp_program__open_file(), xdp_program__find_file(), and
# xdp_program__create() with `.open_filename` / `.find_filename`, all over
# bpf_object__open_file()).
_LIBXDP_OPENS = (b"xdp_program__open_file", b"xdp_program__find_file", b"xdp_program__create")
# libbpf before 1.0: bpf_prog_load_xattr(&attr, &obj, &fd) opens attr.file with
# bpf_object__open_xattr() and loads it (libbpf.c of 0.x; removed in 1.0).
_LEGACY_OPENS = (b"bpf_prog_load_xattr",)
_OPENS_OBJECT = (b"bpf_object__open", *_LIBXDP_OPENS, *_LEGACY_OPENS)


def _sets_program_type(data: bytes) -> bool:
    """The loader sets its programs' type itself, so libbpf never needs the section's: by
    bpf_program__set_type(), or through libxdp, which sets BPF_PROG_TYPE_XDP (libxdp.c:
    xdp_program__attach_single()) or BPF_PROG_TYPE_EXT (xdp_multiprog__link_prog()) on the
    program before it loads it."""
    return (
        b"bpf_program__set_type" in data
        or b"xdp_program__from_bpf_obj" in data  # libxdp over an object libbpf opened
        or any(call in data for call in _LIBXDP_OPENS)
        or (b"bpf_prog_load_xattr" in data and _LEGACY_TYPE.search(data) is not None)
    )


# bpf_prog_load_xattr() with `.prog_type` given sets it on every program of the object
# (libbpf.c of 0.x, bpf_prog_load_xattr(): bpf_program__set_type(prog, attr->prog_type) when
# it is not BPF_PROG_TYPE_UNSPEC), so the section's name types none.
_LEGACY_TYPE = re.compile(rb"\.prog_type\s*=\s*(?!BPF_PROG_TYPE_UNSPEC\b|0\b)\w")


# An object file named after the program's own executable: `snprintf(path, n, "%s_kern.o",
# argv[0])` opens `tool_kern.o` when the build links executable `tool` from this file.
_EXECUTABLE_OBJECT = re.compile(rb'"%s([\w.+-]*\.o)"')


def named_objects(project: Project, path: str, data: bytes) -> set[str]:
    """The object files a C file names: string literals (`"x_kern.o"`), the project's macros
    that name one, and `"%s_kern.o"` of argv[0] through the build's executables. Read alike
    for libbpf loaders (_loader_index) and own ELF loaders (secl.analysis.ownelf)."""
    names = {m.group(1).decode() for m in _OBJECT_NAME.finditer(data)}
    for macro, objects in _object_macros(project).items():
        if macro in data and re.search(rb"\b" + macro + rb"\b", data):
            names.update(objects)
    if b"argv[0]" in data and b"%s" in data:
        names.update(_named_after_executable(project, path, data))
    return names


def _named_after_executable(project: Project, path: str, data: bytes) -> set[str]:
    from secl.analysis.builds import executables_of, samples_executable

    suffixes = {m.group(1).decode() for m in _EXECUTABLE_OBJECT.finditer(data)}
    if not suffixes:
        return set()
    executables = executables_of(project, path) or samples_executable(path)
    return {exe + suffix for exe in executables for suffix in suffixes}


# A C function definition's head, up to its body's brace (the return type may span lines).
_FUNCTION_HEAD = re.compile(
    rb"(?m)^[A-Za-z_][\w \t*]*?\b([A-Za-z_]\w*)[ \t]*\([^;{}()]*(?:\([^;{}()]*\)[^;{}()]*)*\)\s*\{"
)
# A C++ member function defined out of its class: `T Class::name(...) const {`.
_METHOD_HEAD = re.compile(
    rb"(?m)^[\w \t*&:<>,]*?\b\w+::(~?[A-Za-z_]\w*)[ \t]*\([^;{}()]*(?:\([^;{}()]*\)[^;{}()]*)*\)"
    rb"[ \t]*(?:const\b[ \t]*)?(?:noexcept\b[ \t]*)?\s*\{"
)
_NOT_FUNCTIONS = frozenset({b"if", b"for", b"while", b"switch", b"return", b"sizeof"})


# Calls that load an opened object's programs (libbpf.c bpf_object__load(), which runs
# bpf_object_load_prog() and its "missing BPF prog type" check; a skeleton's X__load() and
# X__open_and_load() call it; libxdp loads on attach): anything else only opens the object
# (to read its BTF, maps or program names). Kept broad: any `NAME__load...(` but BTF's.
_LOAD_CALL = re.compile(
    rb"(?:\b(?!btf__)\w+__(?:open_and_load|load\w*)|::(?:open_and_load|load)|(?:\.|->)load\w*"
    rb"|\bxdp_program__attach\w*|\bxdp_multiprog__attach\w*|\bbpf_prog_load_xattr)\s*\("
)


def _command_loads(project: Project, bpf_path: str, shelled: bool = False) -> list[CommandLoad]:
    from secl.analysis.builds import command_loads

    return command_loads(project, bpf_path, shelled)


def _may_load_object(project: Project, bpf_path: str, loader: str) -> bool:
    """Whether `loader` may load the object of `bpf_path`: a loader through its skeleton is
    taken to (a skeleton is made to be loaded); one that opens the object file must call a
    load function."""
    data = project.files[loader]
    if any((n + "__").encode() in data for n in skeleton_names(bpf_path, project.config)):
        return True
    return _may_load(project, data)


# Substrings every match of _LOAD_CALL holds one of: files without them are not searched.
_LOAD_NEEDLES = (b"load", b"xdp_program__attach", b"xdp_multiprog__attach")


def _may_load(project: Project, data: bytes) -> bool:
    """Whether a loader file may load the objects it opens: it calls a load function, or a
    function of the project that does (a `load_and_attach()` of a helper file)."""
    if _LOAD_CALL.search(data) is not None:
        return True
    loaders = project.memo.get("load-wrappers")
    if loaders is None:
        names = _functions_calling(project, _LOAD_CALL, _LOAD_NEEDLES)
        loaders = project.memo["load-wrappers"] = (
            re.compile(rb"\b(" + b"|".join(re.escape(n) for n in sorted(names)) + rb")\s*\(")
            if names
            else False
        )
    if not loaders:
        return False
    # a function of the file itself is no call elsewhere (two files' `main`s)
    own = {m.group(1) for m in _FUNCTION_HEAD.finditer(data)}
    return any(m.group(1) not in own for m in loaders.finditer(data))  # type: ignore[union-attr]


def _functions_calling(
    project: Project, call: re.Pattern[bytes], needles: tuple[bytes, ...]
) -> set[bytes]:
    """Names of the project's C functions whose body has a match of `call` (searched in
    the files that hold one of `needles`)."""
    names: set[bytes] = set()
    for path, data in project.files.items():
        if not path.endswith((".c", ".h", ".cc", ".cpp", ".cxx")):
            continue
        # (_FUNCTION_HEAD ends in `) {`: a huge file without one has no function, has_body)
        if not has_body(data) or not any(n in data for n in needles):
            continue
        for m in _FUNCTION_HEAD.finditer(data):
            name = m.group(1)
            if name in _NOT_FUNCTIONS or name.startswith((b"bpf_", b"xdp_program__")):
                continue
            if call.search(data, m.end(), _body_end(data, m.end())) is not None:
                names.add(name)
    return names


_OPEN_CALL = re.compile(b"|".join(re.escape(c) for c in _OPENS_OBJECT))


def _wrapper_calls(project: Project) -> re.Pattern[bytes] | None:
    """Calls, with an object file's name, of the project's own functions that open an
    object (`open_bpf_file("x.o", NULL)` over bpf_object__open_file(), a library of the
    project's tools): the caller opens x.o. None when the project has no such function."""
    if "open-wrappers" not in project.memo:
        names = _functions_calling(project, _OPEN_CALL, _OPENS_OBJECT)
        project.memo["open-wrappers"] = (
            re.compile(
                rb"\b(?:" + b"|".join(re.escape(n) for n in sorted(names)) + rb')\s*\(\s*"[^"\n]*"'
            )
            if names
            else None
        )
    return project.memo["open-wrappers"]  # type: ignore[return-value]


_WORD_BEFORE_CALL = re.compile(rb"(\w+)[ \t]*\Z")
_KEYWORDS_BEFORE_CALL = frozenset({b"return", b"else", b"case", b"do"})


def _is_call(data: bytes, at: int) -> bool:
    """Whether the name at `at` is called, not declared: a declaration has its type (a
    word, or `*`) before the name (`struct bpf_object *open_obj(...);`)."""
    before = data[max(0, at - 64) : at].rstrip(b" \t")
    if before.endswith(b"*"):
        return False
    word = _WORD_BEFORE_CALL.search(before)
    return word is None or word.group(1) in _KEYWORDS_BEFORE_CALL


_STATIC = re.compile(rb"\bstatic\b")
_NO_PARAMETERS = re.compile(rb"\(\s*(?:void\s*)?\)\s*\{\Z")


def _wrapper_definers(project: Project) -> tuple[re.Pattern[bytes], dict[bytes, list[str]]] | None:
    """Any call of the project's own functions that open an object, or of a function of the
    same file that calls one (`load_link_pin(cfg)` over `load(cfg)` over
    bpf_object__open_file(cfg->file)), with the files defining each: a file that names an
    object and hands it to one (through a struct field or a variable) opens it there. None
    when the project has no such function."""
    if "open-wrapper-definers" not in project.memo:
        definers: dict[bytes, list[str]] = {}
        for path, data in project.files.items():
            if not path.endswith((".c", ".h", ".cc", ".cpp", ".cxx")):
                continue
            if not has_body(data) or not any(n in data for n in _OPENS_OBJECT):
                continue
            bodies = {}
            # Functions another file can call and hand a name to: not `static` (but in a
            # header), with parameters (C++ member functions hold it in the object too).
            shared: set[bytes] = set()
            heads = [_FUNCTION_HEAD]
            if b"::" in data and is_cpp(path):
                heads.append(_METHOD_HEAD)  # `int Loader::open(const std::string &p) {`
            for head in heads:
                for m in head.finditer(data):
                    name = m.group(1)
                    if name in _NOT_FUNCTIONS or name.startswith((b"bpf_", b"xdp_program__")):
                        continue
                    bodies.setdefault(name, (m.end(), _body_end(data, m.end())))
                    text = m.group(0)
                    if head is _METHOD_HEAD or (
                        (path.endswith(".h") or not _STATIC.search(text))
                        and _NO_PARAMETERS.search(text) is None
                    ):
                        shared.add(name)
            reached = {n for n, (a, b) in bodies.items() if _OPEN_CALL.search(data, a, b)}
            if reached:  # one level more: the file's own functions over those
                calls = re.compile(
                    rb"\b(?:" + b"|".join(map(re.escape, sorted(reached))) + rb")\s*\("
                )
                reached |= {n for n, (a, b) in bodies.items() if calls.search(data, a, b)}
            for name in (reached & shared) - {b"main"}:
                definers.setdefault(name, []).append(path)
        project.memo["open-wrapper-definers"] = (
            (
                re.compile(
                    rb"\b(" + b"|".join(re.escape(n) for n in sorted(definers)) + rb")\s*\("
                ),
                definers,
            )
            if definers
            else None
        )
    return project.memo["open-wrapper-definers"]  # type: ignore[return-value]


def _body_end(data: bytes, start: int) -> int:
    """The end of a function body whose `{` is just before `start` (braces counted)."""
    depth = 1
    for m in _BRACE.finditer(data, start):
        depth += 1 if m.group() == b"{" else -1
        if depth == 0:
            return m.start()
    return len(data)


_BRACE = re.compile(rb"[{}]")


_OBJECT_MACRO = re.compile(rb'(?m)^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+("[^"\n]*\.o")[ \t]*$')


def _object_macros(project: Project) -> dict[bytes, set[str]]:
    """Object-like macros of the project that name an object file (`#define RAW_OBJ
    "raw.o"` in a header): a loader that opens objects and uses the macro opens that one."""
    found = project.memo.get("object-macros")
    if found is None:
        found = {}
        for data in project.files.values():
            marks = large.marks(data)  # a huge file without a `"` names no object
            if (marks is not None and not marks.quotes) or b'.o"' not in data:
                continue
            if b"define" not in data:
                continue
            for m in _OBJECT_MACRO.finditer(data):
                names = {n.group(1).decode() for n in _OBJECT_NAME.finditer(m.group(2))}
                found.setdefault(m.group(1), set()).update(names)
        project.memo["object-macros"] = found
    return found  # type: ignore[return-value]


def _pastes(data: bytes) -> bool:
    """Whether `data` holds `##` (a huge file: at one of its few `#`, secl.parse.large)."""
    marks = large.marks(data)
    if marks is None or marks.hashes is None:
        return b"##" in data
    return any(data.startswith(b"##", at) for at in marks.hashes)


_XXD_ARRAY = re.compile(rb"\b[A-Za-z_]\w*_o\b")


def _xxd_name(file_name: str) -> str:
    """The C array `xxd -i FILE` writes for a file (xxd.c: every character of the name but
    letters and digits becomes `_`; a leading digit gets `__`)."""
    name = re.sub(r"[^A-Za-z0-9]", "_", file_name)
    return "__" + name if name[:1].isdigit() else name


_TEMPLATE_HEAD = re.compile(
    rb"\btemplate\s*<\s*(?:typename|class)\s+(\w+)\s*>\s*(?:class|struct)\s+(\w+)"
)


def _skeleton_templates(project: Project) -> re.Pattern[bytes] | None:
    """Instantiations `Tmpl<NAME>` of the project's C++ class templates that open their
    parameter as a skeleton (`T::open(opts)`, `T::open_and_load()`: bpftool's C++ skeleton
    static members, gen.c do_skeleton()): group 1 is the skeleton NAME. None without such
    a template."""
    if "skeleton-templates" not in project.memo:
        names: set[bytes] = set()
        for path, data in project.files.items():
            if not (is_cpp(path) or path.endswith(".h")) or not has_body(data):
                continue  # (a huge header without a function body holds no template)
            if b"::open" not in data or b"template" not in data:
                continue
            for m in _TEMPLATE_HEAD.finditer(data):
                parameter = re.escape(m.group(1))
                if re.search(rb"\b" + parameter + rb"\s*::\s*open(?:_and_load)?\s*\(", data):
                    names.add(m.group(2))
        project.memo["skeleton-templates"] = (
            re.compile(
                rb"\b(?:" + b"|".join(re.escape(n) for n in sorted(names)) + rb")\s*<\s*"
                rb"(?:struct\s+)?([A-Za-z_]\w*)\s*>"
            )
            if names
            else None
        )
    return project.memo["skeleton-templates"]  # type: ignore[return-value]


def _loader_index(project: Project) -> dict[str, list[str]]:
    """Skeleton and object names -> the files that open them, built once per run."""
    index = project.memo.get("loader-index")
    if index is None:
        built: dict[str, list[str]] = {}
        wrappers = _wrapper_calls(project)
        handed = _wrapper_definers(project)
        templates = _skeleton_templates(project)
        pasting = macros_that_open(
            [d for d in project.files.values() if _pastes(d) and b"__open" in d]
        )
        for path, data in project.files.items():
            if not has_body(data):
                continue  # a huge header without a function body opens nothing
            if (
                b"__open" not in data
                and b"::open" not in data
                and b"xdp_program__" not in data
                and b"bpf_prog_load_xattr" not in data
                and (handed is None or handed[0].search(data) is None)
                and not any(name in data for name in pasting)
                and (templates is None or templates.search(data) is None)
            ):
                continue
            if b"LIBBPF_API" in data:
                # libbpf itself (a vendored copy of its headers or sources): it marks its
                # exported functions so (libbpf_common.h defines LIBBPF_API); its own
                # `bpf_object__open()` declarations open nothing
                continue
            names = set()
            for m in _SKELETON_CALL.finditer(data):
                ident = _IDENT_BEFORE.search(data, max(0, m.start() - 128), m.start())
                if ident is not None:
                    names.add(ident.group().decode())
            if b"::open" in data and is_cpp(path):
                names.update(m.group(1).decode() for m in re.finditer(_CPP_SKELETON_CALL, data))
            if templates is not None and is_cpp(path):
                names.update(m.group(1).decode() for m in templates.finditer(data))
            # An object named in a file that never opens one (bpf_object__open*(), or libxdp
            # over libbpf) is loaded by something else (a shell-out to `ip`/`tc`): not a
            # libbpf loader of it.
            opens = any(call in data for call in _OPENS_OBJECT)
            called = (
                set()
                if opens or handed is None
                else {m.group(1) for m in handed[0].finditer(data) if _is_call(data, m.start())}
            )
            if called:  # a function of the file's own by that name is the one it calls
                called -= {m.group(1) for m in _FUNCTION_HEAD.finditer(data)}
            if opens or called:
                named = named_objects(project, path, data)
                if b"bpf_object__open_mem" in data or called:
                    # an object embedded by `xxd -i`, opened from memory (see _xxd_name)
                    named.update(m.group().decode() for m in _XXD_ARRAY.finditer(data))
                names.update(named)
                # handed to a function of another file that opens it: that file opens it
                # too (where bpf_program__set_type() and the attach calls are)
                for definer in sorted({d for n in called for d in handed[1][n]} - {path}):  # type: ignore[index]
                    for name in named:
                        built.setdefault(name, []).append(definer)
            if pasting:
                names.update(pasted_skeletons(data, pasting))
            if wrappers is not None:
                for m in wrappers.finditer(data):
                    names.update(n.group(1).decode() for n in _OBJECT_NAME.finditer(m.group(0)))
            for name in names:
                built.setdefault(name, []).append(path)
        project.memo["loader-index"] = index = built
    return index  # type: ignore[return-value]


def loaders_of(project: Project, bpf_path: str) -> list[str]:
    """Files that open the object built from `bpf_path`: through its skeleton (`NAME__open`,
    NAME = the file's base name, or with `_bpf` as bpftool names `x.bpf.o`, or as configured
    in skeleton-map) or by object file name (`"x.bpf.o"`, `"x.o"`)."""
    from secl.analysis.builds import linked_skeletons

    memo = project.memo.setdefault("loaders-of", {})
    known = memo.get(bpf_path)  # type: ignore[attr-defined]
    if known is not None:
        return known
    index = _loader_index(project)
    if not index:  # no C file of the run opens anything (a Go or Rust project)
        memo[bpf_path] = []  # type: ignore[index]
        return []
    base = stem(bpf_path)
    names = skeleton_names(bpf_path, project.config) | {f"{base}.bpf.o", f"{base}.o"}
    # CMake names the object of source `x.c` `x.c.o` (an OBJECT library's objects,
    # `CMakeFiles/T.dir/x.c.o`): a loader may open it by that name.
    names.add(os.path.basename(bpf_path) + ".o")
    # An object embedded with `xxd -i x.bpf.o` is the array `x_bpf_o` (xxd names it after
    # the file, every character but letters and digits made `_`), opened from memory.
    names |= {_xxd_name(n) for n in names if n.endswith(".o")}
    linked = project.memo.get("linked-skeletons")
    if linked is None:
        sources = sorted({s.path for s in project.sites if s.kind == "program"})
        linked = project.memo["linked-skeletons"] = linked_skeletons(project, sources)
    chosen = {n for n, paths in linked.items() if bpf_path in paths}  # type: ignore[attr-defined]
    absolute = os.path.abspath(bpf_path)
    chosen |= {n for n, src in project.config.skeleton_pairs() if os.path.abspath(src) == absolute}
    shared = _sources_by_name(project)
    found = set()
    for name in names | chosen:
        for path in index.get(name, ()):
            if path == bpf_path:
                continue
            # A name several sources answer to (their file names are the same): a loader
            # opens the nearest one (pairing.nearest); a linked or configured name is exact.
            if (
                name in shared
                and name not in chosen
                and bpf_path not in nearest(path, shared[name])
            ):
                continue
            found.add(path)
    if not found and bpf_path.endswith(".c"):
        # A BPF `.c` another BPF source #includes is compiled into that one's object: it
        # is loaded by what loads the includer.
        memo[bpf_path] = []  # (an include cycle ends here)
        for includer in _c_includers(project).get(os.path.basename(bpf_path), ()):
            if includer != bpf_path:
                found.update(loaders_of(project, includer))
    memo[bpf_path] = result = sorted(found)  # type: ignore[index]
    return result


_C_INCLUDE = re.compile(rb'(?m)^[ \t]*#[ \t]*include[ \t]*"(?:[^"\n]*/)?([\w.+-]+\.c)"')


def _c_includers(project: Project) -> dict[str, list[str]]:
    """Base names of `.c` files -> the BPF sources that `#include` them, built once per run
    from the BPF sources only (the files with a SEC site)."""
    found = project.memo.get("c-includers")
    if found is None:
        found = {}
        for path in sorted({s.path for s in project.sites}):
            data = project.files.get(path, b"")
            if b'.c"' not in data:
                continue
            for m in _C_INCLUDE.finditer(data):
                found.setdefault(m.group(1).decode(), []).append(path)
        project.memo["c-includers"] = found
    return found  # type: ignore[return-value]


def _sources_by_name(project: Project) -> dict[str, list[str]]:
    """Skeleton and object names derived from file names -> the BPF sources answering to
    them, for the names more than one source answers to."""
    found = project.memo.get("sources-by-name")
    if found is None:
        by_name: dict[str, list[str]] = {}
        for path in sorted({s.path for s in project.sites if s.kind == "program"}):
            base = stem(path)
            for name in skeleton_names(path, project.config) | {f"{base}.bpf.o", f"{base}.o"}:
                by_name.setdefault(name, []).append(path)
        found = project.memo["sources-by-name"] = {
            n: paths for n, paths in by_name.items() if len(paths) > 1
        }
    return found  # type: ignore[return-value]


def _suffix_fix(site: SectionSite, problem: SuffixProblem) -> Fix | None:
    section = site.section or ""
    if problem.kind == "relative-path":
        head, sep, rest = section.partition("/")
        if sep:
            new = f"{head}//{rest}"
            return replace_section(site, new, "unsafe", f"Use the absolute path: `{new}`")
    return None


def static_program(project: Project) -> Iterator[Finding]:
    """SECL111: libbpf refuses to open an object with a static function in a program section,
    whether `static` is written after the site or before it (`static SEC("xdp") int f`,
    `static __attribute__((section("x"))) int f`): either way the symbol is local."""
    for site in _program_sites(project):
        if site.is_static or _static_before(project.files[site.path], site):
            yield _finding(
                "SECL111", site,
                f"program `{site.program}` is `static`: libbpf refuses to open the object "
                "(\"program is static and not supported\")",
            )  # fmt: skip


_STATEMENT_END = re.compile(rb"[;{}]")
_NOT_CODE = re.compile(rb'/\*.*?\*/|//[^\n]*|"(?:[^"\\\n]|\\.)*"|(?m:^[ \t]*#[^\n]*)', re.S)


def _static_before(data: bytes, site: SectionSite) -> bool:
    """`static` in the same declaration, before the site's macro."""
    if not site.pieces:
        return False  # a wrapper macro's use: the declaration is inside the macro
    start = site.span.start_byte
    head = data.rfind(site.macro.encode(), max(0, start - 256), start)
    if head < 0 or data.find(b"static", max(0, head - 512), head) < 0:
        return False
    window = _NOT_CODE.sub(b" ", data[max(0, head - 512) : head])
    ends = list(_STATEMENT_END.finditer(window))
    if ends:
        window = window[ends[-1].end() :]
    return re.search(rb"\bstatic\b", window) is not None


def legacy_maps(project: Project) -> Iterator[Finding]:
    """SECL108 for data: the legacy `SEC("maps")` map definitions."""
    target = _target(project)
    if not target.is_upgrade and target.version is not None and target.version < LIBBPF_1_0:
        return
    for site in project.sites:
        if (
            site.path in project.reported
            and site.kind == "data"
            and site.section == "maps"
            and libbpf_loads(project, site.path)
        ):
            yield _finding(
                "SECL108", site,
                "legacy `maps` section: libbpf 1.0 and later refuse to open the object; "
                "define maps with BTF in `.maps`",
            )  # fmt: skip


# Helpers and kfuncs the kernel lets only sleepable programs call (kernel/bpf/helpers.c,
# kernel/trace/bpf_trace.c: `.might_sleep = true`; BTF_ID_FLAGS(..., KF_SLEEPABLE) in
# kernel/bpf/helpers.c, fs/bpf_fs_kfuncs.c, kernel/bpf/crypto.c ...). Linux 7.2.
SLEEPABLE_CALLS = frozenset(
    {
        "bpf_copy_from_user", "bpf_copy_from_user_task", "bpf_ima_inode_hash",
        "bpf_ima_file_hash", "bpf_copy_from_user_str", "bpf_copy_from_user_task_str",
        "bpf_copy_from_user_dynptr", "bpf_copy_from_user_str_dynptr",
        "bpf_copy_from_user_task_dynptr", "bpf_copy_from_user_task_str_dynptr",
        "bpf_get_file_xattr", "bpf_get_dentry_xattr", "bpf_set_dentry_xattr",
        "bpf_remove_dentry_xattr", "bpf_lookup_user_key", "bpf_verify_pkcs7_signature",
        "bpf_crypto_ctx_create",
    }
)  # fmt: skip
_SLEEPABLE_CALL = re.compile(
    rb"\b(" + b"|".join(n.encode() for n in sorted(SLEEPABLE_CALLS)) + rb")\s*\("
)


def sleepable_call(project: Project) -> Iterator[Finding]:
    """SECL114: a program that cannot sleep calls a helper or kfunc that may; the verifier
    rejects it at load (kernel/bpf/verifier.c: check_helper_call(), check_kfunc_call())."""
    target = _target(project)
    for site in _program_sites(project):
        if site.body is None:
            continue
        data = project.files[site.path]
        start, end = site.body
        if _SLEEPABLE_CALL.search(data, start, end) is None:
            continue
        code, found = _classify(site, target)
        if code != "ok" or found is None or found.definition.sleepable:  # type: ignore[attr-defined]
            continue
        if not found.autoload or found.definition.prog_type == "BPF_PROG_TYPE_EXT":  # type: ignore[attr-defined]
            # `?` programs are often negative tests enabled on purpose; freplace programs
            # take their sleepability from the program they replace.
            continue
        if any(b"BPF_F_SLEEPABLE" in project.files[p] for p in loaders_of(project, site.path)):
            continue  # made sleepable by hand with bpf_program__set_flags()
        calls = _calls_in(data, start, end)
        if not calls:
            continue
        base = found.definition.base  # type: ignore[attr-defined]
        sleepable = lookup_any(base + ".s")
        if sleepable is not None:
            head, sep, rest = (site.section or "").partition("/")
            new = f"{head}.s{sep}{rest}"
            advice = f"; use `{new}`"
            fix = replace_section(site, new, "unsafe", f"Use `{new}`")
        else:
            advice, fix = f"; `{base}` programs cannot sleep", None
        yield _finding(
            "SECL114", site,
            f"`{site.program}` calls `{calls[0]}`, which may sleep, from the non-sleepable "
            f"section `{site.section}`: the verifier rejects the program{advice}",
            fix=fix,
        )  # fmt: skip


def _calls_in(data: bytes, start: int, end: int) -> list[str]:
    """Sleepable callees really called in the body (not named in comments or strings)."""
    found = []
    previous = None
    for tok in lex(data, start, end):
        if tok.type == "(" and previous is not None and previous.type == "identifier":
            name = previous.text.decode()
            if name in SLEEPABLE_CALLS:
                found.append(name)
        previous = tok
    return found


_STRUCT_OPS_DATA = (".struct_ops", ".struct_ops.link", "?.struct_ops", "?.struct_ops.link")


def unreferenced_struct_ops(project: Project) -> Iterator[Finding]:
    """SECL115: a struct_ops program no `.struct_ops` map of its file refers to fails to load
    (libbpf.c: bpf_object_prepare_struct_ops() leaves it without a BTF target)."""
    for site in _program_sites(project):
        name = strip_question_mark(site.section or "")[0].split("/", 1)[0]
        if name not in ("struct_ops", "struct_ops.s") or (site.section or "").startswith("?"):
            continue
        maps = _struct_ops_maps(project).get(site.path, [])
        if not maps or site.program is None:
            continue  # the maps may live in another object linked with this one
        data = project.files[site.path]
        initializers = [
            # A map declared through a wrapper macro (`OPS_DEFINE(name, .op = (void *)prog)`):
            # the macro's arguments list the members.
            _macro_arguments(data, m) if not m.pieces and m.macro not in _SECTION_MACROS
            else data[m.span.end_byte : _initializer_end(data, m.span.end_byte)]
            for m in maps
        ]  # fmt: skip
        if any(_MACRO_CALL.search(text) for text in initializers):
            continue  # members filled by macros (`F(x)` -> `.x = (void *)prog_##x`): not seen
        word = re.compile(rb"\b" + re.escape(site.program.encode()) + rb"\b")
        if any(word.search(text) for text in initializers):
            continue
        yield _finding(
            "SECL115", site,
            f"struct_ops program `{site.program}` is not referenced by any `.struct_ops` map in "
            "this file: libbpf fails the load (\"program isn't referenced anywhere\")",
        )  # fmt: skip


def _struct_ops_maps(project: Project) -> dict[str, list[SectionSite]]:
    maps = project.memo.get("struct-ops-maps")
    if maps is None:
        maps = project.memo["struct-ops-maps"] = {}
        for s in project.sites:
            if s.kind == "data" and s.section in _STRUCT_OPS_DATA:
                maps.setdefault(s.path, []).append(s)  # type: ignore[union-attr]
    return maps  # type: ignore[return-value]


_MACRO_CALL = re.compile(rb"[A-Za-z_]\w*\s*\(")


_SECTION_MACROS = frozenset({"SEC", "section", "__section", "__section__"})


def _macro_arguments(data: bytes, site: SectionSite) -> bytes:
    """The argument text of the wrapper-macro use a map site stands for."""
    text = data[site.span.start_byte : site.span.end_byte]
    open_at, close_at = text.find(b"("), text.rfind(b")")
    return text[open_at + 1 : close_at] if 0 <= open_at < close_at else text


def _initializer_end(data: bytes, start: int) -> int:
    """End of the `= { ... };` after a struct_ops variable's site."""
    end = data.find(b"};", start)
    return len(data) if end == -1 else end


RULES = {
    "SECL101": unknown_section,
    "SECL104": suffix_problems,
    "SECL108": legacy_maps,
    "SECL111": static_program,
    "SECL114": sleepable_call,
    "SECL115": unreferenced_struct_ops,
}
