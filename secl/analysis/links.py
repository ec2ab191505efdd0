"""Program <-> loader linking: which BPF source a skeleton or an object file in loader code is.

A BPF source's skeleton is named after its file: `probe.bpf.c` and `probe.c` both give
`probe` (bpftool gen skeleton names it after the object, and build systems name the object
after the source), unless `skeleton-map` in the configuration says otherwise. An object file
`probe.bpf.o` comes from `probe.bpf.c` (else `probe.c`), `probe.o` from `probe.c` (else
`probe.bpf.c`). Only files that define programs are candidates, so a loader `probe.c` next
to `probe.bpf.c` never competes with it.

A skeleton linked from several objects (`bpftool gen object OUT A.bpf.o B.bpf.o` then
`bpftool gen skeleton OUT name X`, read from the build files, or a list in `skeleton-map`)
holds the programs of every source linked into it.

A program reference whose skeleton the loader does not show (its type is a build-time macro
nobody defines, an opaque or `void *` pointer) is linked by the program's name: to the one
BPF source of the project that defines a program of that name.

A loader whose object cannot be resolved (C: `bpf_object__open_file(path)` with `path` from
argv; Go: `NewModuleFromFile(objPath)` with `objPath` a parameter no caller shows, or a module
handed in from another package) is linked the same way, by program name, to the sources it
could load (`name_sources`: libbpf-family, not vendored). A loader whose objects are all
resolved is never linked by name: a program its objects lack is not the project's. Facts
linked by name are marked (`LinkedFact.by_name`), and their evidence says so.

When more than one source fits, the link is ambiguous: callers report SECL002 rather than
guess.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from secl.analysis.loaders import all_libbpf, assignment
from secl.analysis.project import Project
from secl.facts import SectionSite
from secl.loaders import LIBBPF_FAMILY, FileLoaders
from secl.loaders.discover import VENDOR_DIRS
from secl.pairing import nearest
from secl.parse.loader import LoaderFact, LoaderFacts, ObjectRef, ProgramRef
from secl.records import quick_init

_C_FILES = (".c", ".h", ".cc", ".cpp", ".cxx")


@quick_init
@dataclass(frozen=True, slots=True)
class Resolution:
    """The program sites a loader reference names; `ambiguous` lists every BPF source it
    could mean when there is more than one."""

    sites: tuple[SectionSite, ...]
    ambiguous: tuple[str, ...] = ()
    by_name: bool = False  # linked by the program's name alone: the object is not known


def skeleton_name(path: str) -> str:
    """`dir/probe.bpf.c` -> `probe`, `probe.c` -> `probe`; compiled objects (`probe.bpf.o`,
    `probe.o`) as their sources."""
    base = os.path.basename(path)
    for suffix in (".bpf.c", ".c", ".bpf.o", ".o"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def skeleton_names(path: str) -> tuple[str, ...]:
    """Names a skeleton of `path` goes by: the base name (what build systems such as the
    kernel selftests pass to `bpftool gen skeleton ... name X`) and, for `x.bpf.c`, bpftool's
    own default `x_bpf` (it names the skeleton after the object `x.bpf.o`, with every
    character that is not alphanumeric replaced by `_`: bpftool gen.c get_obj_name())."""
    base = skeleton_name(path)
    names = [base]
    if os.path.basename(path).endswith((".bpf.c", ".bpf.o")):
        names.append(re.sub(r"\W", "_", base) + "_bpf")
    return tuple(names)


def object_stem(path: str) -> tuple[str, str]:
    """(`probe`, preferred source suffix) for `./out/probe.bpf.o` or `probe.o`."""
    base = os.path.basename(path)
    if base.endswith(".bpf.o"):
        return base[: -len(".bpf.o")], ".bpf.c"
    if base.endswith(".o"):
        return base[: -len(".o")], ".c"
    return base, ".bpf.c"


@dataclass
class Linker:
    """The project's programs by BPF source and skeleton name, to tie loader facts to."""

    project: Project
    # skeleton or object name -> BPF sources, from Go/Rust loader uses and build files
    # (secl.analysis.loaders.named_sources); `skeleton-map` wins over it
    named: dict[str, list[str]] = field(default_factory=dict)
    # (loader file, skeleton or object name) -> BPF sources, as that file's Go/Rust loader
    # uses link them (secl.analysis.loaders.file_named_sources); consulted first
    file_named: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # skeleton name -> every BPF source linked into it (secl.analysis.builds); a program of
    # any of them is a program of the skeleton, not an ambiguity
    linked: dict[str, list[str]] = field(default_factory=dict)
    # BPF source path -> program name -> sites (several under #if branches)
    programs: dict[str, dict[str, list[SectionSite]]] = field(default_factory=dict)
    by_skeleton: dict[str, list[str]] = field(default_factory=dict)
    _mapped: dict[str, list[str]] = field(default_factory=dict)
    _linked: dict[str, list[str]] = field(default_factory=dict)
    _by_program: dict[str, list[str]] = field(default_factory=dict)
    # The BPF sources a loader with an unresolved object may mean (None: every source with
    # programs), see name_sources; and, per directory of non-C loaders (a Go package), the
    # objects its files open and whether one of its opens is unresolved (see open_state).
    name_candidates: Callable[[str], bool] | None = None
    opens: dict[str, tuple[frozenset[str], bool, bool]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for site in self.project.programs:
            if site.program is None:
                continue
            self.programs.setdefault(site.path, {}).setdefault(site.program, []).append(site)
        for path in self.programs:
            for name in skeleton_names(path):
                self.by_skeleton.setdefault(name, []).append(path)
        for path, progs in self.programs.items():
            for name in progs:
                self._by_program.setdefault(name, []).append(path)
        for name, paths in self.named.items():
            self._mapped[name] = [p for p in paths if p in self.programs]
        for name, paths in self.linked.items():
            self._mapped.pop(name, None)
            self._linked[name] = [p for p in paths if p in self.programs]
        skeleton_map = self.project.config.skeleton_map
        absolute = {self.project.absolute(p): p for p in self.programs} if skeleton_map else {}
        for name, targets in skeleton_map.items():
            found = [absolute.get(self.project.absolute(t)) for t in targets]
            sources = [p for p in found if p is not None]
            self._mapped.pop(name, None)
            self._linked.pop(name, None)
            if len(targets) > 1:
                self._linked[name] = sources
            else:
                self._mapped[name] = sources

    def is_linked(self, owner: ObjectRef) -> bool:
        """Whether `owner` is one skeleton or object holding the programs of all its
        sources, rather than one of several sources it may be."""
        if not owner.name:
            return False
        keys = [owner.name]
        if owner.kind == "object":
            keys += [os.path.basename(owner.name), object_stem(owner.name)[0]]
        return any(k in self._linked for k in keys)

    def sources(self, owner: ObjectRef, near: str | None = None) -> list[str]:
        """Every BPF source `owner` may be (empty: none in the project); for a linked
        skeleton, every source linked into it. With `near` (the loader file), of several
        sources that answer to the name by their file names, the nearest (pairing.nearest)."""
        if owner.kind in ("skeleton", "object") and owner.name:
            keys = [owner.name]
            if owner.kind == "object":
                keys += [os.path.basename(owner.name), object_stem(owner.name)[0]]
            for key in keys:
                if key in self._linked:
                    return self._linked[key]
        if owner.kind == "skeleton" and owner.name:
            if owner.name in self._mapped:
                return self._mapped[owner.name]
            return self._near(near, sorted(self.by_skeleton.get(owner.name, ())))
        if owner.kind == "object" and owner.name:
            base = os.path.basename(owner.name)
            stem, preferred = object_stem(owner.name)
            for key in (owner.name, base, stem):
                if key in self._mapped:
                    return self._mapped[key]
            found = self._near(near, sorted(self.by_skeleton.get(stem, ())))
            exact = [p for p in found if os.path.basename(p) == stem + preferred]
            return exact if len(exact) == 1 else found
        return []

    @staticmethod
    def _near(here: str | None, candidates: list[str]) -> list[str]:
        return candidates if here is None else nearest(here, candidates)

    def resolve(self, ref: ProgramRef, loader: LoaderFacts) -> Resolution:
        """The sites a loader's program reference means."""
        if ref.owner.kind == "unknown":
            # `ptr->progs.P` whose pointer type the loader does not show: any skeleton or
            # object the file uses that has a program P.
            candidates: list[str] = []
            for name in sorted(loader.skeletons):
                candidates.extend(self.sources(ObjectRef("skeleton", name), loader.path))
            for name in sorted(loader.objects):
                candidates.extend(self.sources(ObjectRef("object", name), loader.path))
            paths = sorted(
                {p for p in candidates if ref.name is None or ref.name in self.programs.get(p, {})}
            )
            if ref.name is None:
                return Resolution(())  # "every program of something": too vague to use
            by_name = False
            if not paths and not loader.path.endswith(_C_FILES):
                paths, by_name = self._package_or_name(ref.name, loader)
            elif not paths:
                # Nothing the C file names has it: the one source of the project that
                # defines a program of that name, or an ambiguity between several.
                paths = sorted(self._named(ref.name, ()))
                by_name = bool(paths)
            linked = False
        elif ref.owner.name is not None and (loader.path, ref.owner.name) in self.file_named:
            paths = [
                p for p in self.file_named[(loader.path, ref.owner.name)] if p in self.programs
            ]
            linked = by_name = False
        elif ref.owner.kind == "object" and ref.owner.name is None:
            # An object opened from a path the loader does not show (C: from argv): the
            # program's name is all there is to go by.
            paths = sorted(self._named(ref.name, ())) if ref.name is not None else []
            linked, by_name = False, True
        else:
            paths = self.sources(ref.owner, loader.path)
            linked = self.is_linked(ref.owner)
            by_name = False
        if not paths:
            return Resolution(())
        sites = []
        for path in paths:
            progs = self.programs.get(path, {})
            if ref.name is None:
                for group in progs.values():
                    sites.extend(group)
            else:
                sites.extend(progs.get(ref.name, ()))
        if linked:
            # One skeleton of several sources: ambiguous only if two of them define it.
            holders = sorted({s.path for s in sites})
            if len(holders) > 1 and ref.name is not None:
                return Resolution(tuple(sites), tuple(holders))
            return Resolution(tuple(sites))
        if len(paths) > 1 and sites:
            return Resolution(tuple(sites), tuple(paths), by_name)
        return Resolution(tuple(sites), (), by_name)

    def _named(self, name: str, default: tuple = ()) -> list[str]:
        """The sources defining a program `name` that a loader of unknown object may load."""
        found = self._by_program.get(name, default)
        keep = self.name_candidates
        return [p for p in found if keep(p)] if keep is not None else list(found)

    def _package_or_name(self, name: str, loader: LoaderFacts) -> tuple[list[str], bool]:
        """A Go or Rust program reference whose module the file does not show: the objects
        the other files of its package (directory) open, else, when an open of the package
        is unresolved or the package opens nothing (the module comes from elsewhere), the
        sources that define a program `name`. (paths, linked by name)"""
        objects, unresolved, known = self.opens.get(
            _directory(loader.path), (frozenset(), True, False)
        )
        paths = sorted(
            {
                p
                for o in objects
                for p in self.sources(ObjectRef("object", o))
                if name in self.programs.get(p, {})
            }
        )
        if paths:
            return paths, False
        if known and not unresolved:
            return [], False  # every object the package opens is named: none has it
        found = sorted(self._named(name, ()))
        return found, bool(found)


def _directory(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def open_state(files: list[FileLoaders]) -> dict[str, tuple[frozenset[str], bool, bool]]:
    """Per directory of Go/Rust loader files: the objects their libbpf-family opens name,
    whether one of those opens names nothing (its object is not known), and whether one
    names something (an object, a source, a skeleton: known, even where no source of the
    project answers to it)."""
    out: dict[str, tuple[frozenset[str], bool, bool]] = {}
    for found in files:
        for use in found.uses:
            if use.kind not in LIBBPF_FAMILY:
                continue
            directory = _directory(found.path)
            objects, unresolved, known = out.get(directory, (frozenset(), False, False))
            named = bool(use.objects or use.sources or use.skeletons or use.idents)
            out[directory] = (
                objects | frozenset(use.objects),
                unresolved or not named,
                known or named,
            )
    return out


def name_sources(project: Project) -> Callable[[str], bool]:
    """Whether a loader with an unresolved object could load BPF source `path`: one judged
    by a libbpf-family loader (a source cilium/ebpf or aya loads is none of a libbpf
    loader's business), outside vendored directories (their loaders are not read either).
    Asked only when a link by name is tried: the assignments are not computed otherwise."""

    def could_load(path: str) -> bool:
        parts = os.path.relpath(os.path.abspath(path), project.root).split(os.sep)
        if any(p in VENDOR_DIRS for p in parts[:-1]):
            return False
        return all_libbpf(project) or assignment(project, path).libbpf_family

    return could_load


@quick_init
@dataclass(frozen=True, slots=True)
class LinkedFact:
    """A loader fact tied to a program site."""

    fact: LoaderFact
    ambiguous: tuple[str, ...] = ()  # the BPF sources it could mean, when more than one
    by_name: bool = False  # tied by the program's name alone (Resolution.by_name)


def link_facts(
    linker: Linker, loaders: list[LoaderFacts]
) -> dict[tuple[str, int, str | None], list[LinkedFact]]:
    """Loader facts per program site, keyed like UpgradeInfo: (path, SEC span start)."""
    out: dict[tuple[str, int, str | None], list[LinkedFact]] = {}
    cache: dict[tuple[int, ProgramRef], Resolution] = {}
    for index, loader in enumerate(loaders):
        for fact in loader.facts:
            if fact.program is None:
                continue
            key = (index, fact.program)
            resolution = cache.get(key)
            if resolution is None:
                resolution = cache[key] = linker.resolve(fact.program, loader)
            for site in resolution.sites:
                out.setdefault(site.key, []).append(
                    LinkedFact(fact, resolution.ambiguous, resolution.by_name)
                )
    return out
