"""Compiled BPF objects in a run: read them, find the source each was built from, and give
the analysis their sites.

An object whose source is in view (its `.BTF.ext` line info names a file the run read, or
secl could read from the project) adds no sites: its findings are the source's, reported
once on the source. Only SECL004 compares the two. An object without its source in view adds
its own sites (secl/parse/objects.py), and its findings point at it with the source line in
`related`. Of a bpf2go `_bpfel.o`/`_bpfeb.o` pair with the same programs and sections, only
the first adds sites.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass

from secl.facts import SectionSite
from secl.files import FileProblem, is_excluded, read
from secl.parse.objects import ELF_MAGIC, BpfObject, ObjectError, listing, read_bpf_object

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from secl.analysis.project import Project
    from secl.config import Config

# bpf2go's outputs: <stem>_<target><suffix>.o, target bpfel/bpfeb or <arch>_bpfel ...
# (cmd/bpf2go gen/target.go: Target.Suffix()).
_BPF2GO = re.compile(r"(?P<stem>.+?)_(?P<arch>(?:\w+?_)?)bpfe(?P<order>[lb])(?P<suffix>\w*)\.o\Z")
_SOURCE_SUFFIXES = (".c", ".h")
EM_BPF = 247  # include/uapi/linux/elf-em.h


@dataclass(frozen=True, slots=True)
class LintedObject:
    """A compiled object of the run and how it relates to the sources in view."""

    object: BpfObject
    sites: tuple[SectionSite, ...]  # over secl's listing of it, whether analysed or not
    source: str | None = None  # the source in view it was built from: its findings go there
    twin: str | None = None  # the other object of a bpf2go pair that stands for this one

    @property
    def analysed(self) -> bool:
        """Whether its own sites are in the project (no source in view, not a twin)."""
        return self.source is None and self.twin is None


def read_objects(
    paths: list[str],
    given: list[str],
    config: Config,
    root: str,
    files: dict[str, bytes],
    problems: list[FileProblem],
) -> dict[str, BpfObject]:
    """The BPF objects among `paths`, each read once; the sources their line info names are
    read into `files` when they lie in the project and are not read yet. A `.o` file found in
    a walk that is no BPF object (a user-space object) is skipped without a word; any other
    object that cannot be read is one line in `problems`."""
    explicit = {os.path.normpath(p) for p in given}
    out: dict[str, BpfObject] = {}
    seen: set[tuple[int, int]] = set()
    for path in paths:
        quiet = os.path.normpath(path) not in explicit and not _named_bpf(path)
        if quiet and _not_bpf(path):
            continue  # a user-space object of the walk: not even read
        found = read(path, config.max_file_size, binary=True)
        if isinstance(found, FileProblem):
            problems.append(found)
            continue
        if found.identity is not None:
            if found.identity in seen:
                continue
            seen.add(found.identity)
        try:
            obj = read_bpf_object(path, found.data)
        except ObjectError as err:
            problems.append(FileProblem(path, f"{err}; skipped"))
            continue
        except Exception as err:  # a bug in secl: this object is skipped, the run goes on
            from secl.api import internal_error

            problems.append(internal_error(path, err))
            continue
        if obj.line_info_problem:
            problems.append(FileProblem(path, f"{obj.line_info_problem} (the object is linted)"))
        out[path] = obj
    _read_sources(out, config, root, files)
    return out


def _not_bpf(path: str) -> bool:
    """Whether the first bytes of `path` say it is no BPF object (not ELF, or an ELF file
    for another machine): a tree of build products is not read whole to find that out."""
    import stat
    import struct

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False  # read() says what it is
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            head = os.read(fd, 20)
        finally:
            os.close(fd)
    except OSError:
        return False
    if len(head) < 20 or head[:4] != ELF_MAGIC or head[5] not in (1, 2):
        return True
    (machine,) = struct.unpack_from("<H" if head[5] == 1 else ">H", head, 18)
    return machine != EM_BPF


def _named_bpf(path: str) -> bool:
    name = os.path.basename(path)
    return name.endswith(".bpf.o") or _BPF2GO.match(name) is not None


def _read_sources(
    objects: dict[str, BpfObject], config: Config, root: str, files: dict[str, bytes]
) -> None:
    """Read the source files objects name that the run has not read, when they are in the
    project (under its root, not excluded) or next to the object."""
    known = {os.path.abspath(p) for p in files}
    for path, obj in objects.items():
        for recorded in _main_sources(obj):
            if in_view(recorded, path, files) is not None:
                break
            candidate = _on_disk(recorded, path, root)
            if candidate is None or os.path.abspath(candidate) in known:
                continue
            if is_excluded(candidate, config.exclude, config.root):
                continue
            found = read(candidate, config.max_file_size)
            if isinstance(found, FileProblem):
                continue
            rel = os.path.relpath(candidate)
            shown = candidate if rel.startswith("..") else rel
            files[shown] = found.data
            known.add(os.path.abspath(candidate))
            break


def _main_sources(obj: BpfObject) -> list[str]:
    """The files the programs come from, most programs first (headers last), then the other
    files the line info names."""
    counts = Counter(p.source.file for p in obj.programs if p.source is not None)
    ranked = sorted(counts, key=lambda f: (f.endswith(".h"), -counts[f], f))
    return ranked + [f for f in obj.sources if f not in counts and f.endswith(".c")]


def _on_disk(recorded: str, obj_path: str, root: str) -> str | None:
    """Where a recorded source file is in this checkout: as recorded when that is under the
    root, else the longest tail of it under the root, else its name next to the object."""
    root = os.path.abspath(root)
    parts = [p for p in recorded.replace("\\", "/").split("/") if p and p != "."]
    if not parts or not parts[-1].endswith(_SOURCE_SUFFIXES):
        return None
    candidates = []
    if os.path.isabs(recorded):
        candidates.append(os.path.normpath(recorded))
    candidates += [os.path.join(root, *parts[i:]) for i in range(len(parts))]
    candidates.append(os.path.join(os.path.dirname(os.path.abspath(obj_path)), parts[-1]))
    for candidate in candidates:
        inside = candidate == root or candidate.startswith(root + os.sep)
        if inside and os.path.isfile(candidate):
            return candidate
    return None


def in_view(recorded: str, obj_path: str, files: dict[str, bytes]) -> str | None:
    """The file of the run a recorded source path means: the same absolute path, else the
    file sharing the longest tail of path components with it (the object may have been
    built in another checkout), nearest to the object on a tie."""
    parts = [p for p in recorded.replace("\\", "/").split("/") if p and p != "."]
    if not parts or not parts[-1].endswith(_SOURCE_SUFFIXES):
        return None
    absolute = os.path.normpath(recorded) if os.path.isabs(recorded) else None
    best: list[str] = []
    best_len = 0
    for path in files:
        if not path.endswith(parts[-1]):
            continue
        full = os.path.abspath(path)
        if absolute is not None and full == absolute:
            return path
        mine = full.split(os.sep)
        shared = 0
        while shared < min(len(mine), len(parts)) and mine[-1 - shared] == parts[-1 - shared]:
            shared += 1
        if shared > best_len:
            best, best_len = [path], shared
        elif shared == best_len and shared:
            best.append(path)
    if not best:
        return None
    here = os.path.dirname(os.path.abspath(obj_path))
    return max(
        sorted(best),
        key=lambda p: len(os.path.commonpath([here, os.path.dirname(os.path.abspath(p))])),
    )


def attach_objects(project: Project, objects: dict[str, BpfObject]) -> None:
    """Put the objects into the project: their listings into `files`, the sites of those
    without a source in view into `sites`, the sources of reported objects into `reported`."""
    if not objects:
        return
    linted: dict[str, LintedObject] = {}
    for path, obj in sorted(objects.items()):
        data, sites = listing(obj)
        project.files[path] = data
        linted[path] = LintedObject(obj, tuple(sites), _source_of(project, path, obj))
    for first, second in _pairs(linted):
        if _shape(linted[first].object) == _shape(linted[second].object):
            old = linted[second]
            linted[second] = LintedObject(old.object, old.sites, old.source, first)
    reported = set(project.reported) | set(linted)
    for path, item in linted.items():
        if item.analysed:
            project.sites.extend(item.sites)
        if item.source is not None and path in reported:
            reported.add(item.source)
    project.reported = frozenset(reported)
    project.objects = linted


def _source_of(project: Project, path: str, obj: BpfObject) -> str | None:
    """The source in view `obj` was built from: by its line info, else by name (`x.bpf.o` from
    `x.bpf.c` or `x.c`; a bpf2go object from the source its go:generate line names)."""
    for recorded in _main_sources(obj):
        found = in_view(recorded, path, project.files)
        if found is not None:
            return found
    if obj.sources:
        return None  # its sources are known and not in view
    name = os.path.basename(path)
    m = _BPF2GO.match(name)
    if m is not None and project.loader_scan is not None:
        here = os.path.dirname(os.path.abspath(path))
        for lf in project.loader_scan.files:
            for use in lf.uses:
                directory = os.path.dirname(os.path.abspath(use.path))
                made = {os.path.normpath(os.path.join(directory, o)) for o in use.objects}
                if use.sources and os.path.join(here, name) in made:
                    for source in use.sources:
                        found = in_view(os.path.join(directory, source), path, project.files)
                        if found is not None:
                            return found
    stem = name.removesuffix(".o").removesuffix(".bpf")
    for suffix in (".bpf.c", ".c"):
        found = in_view(os.path.join(os.path.dirname(os.path.abspath(path)), stem + suffix),
                         path, project.files)  # fmt: skip
        if found is not None and os.path.basename(found) == stem + suffix:
            return found
    return None


def _pairs(linted: dict[str, LintedObject]) -> list[tuple[str, str]]:
    """(little-endian, big-endian) objects bpf2go made for one target from one source."""
    by_key: dict[tuple[str, ...], dict[str, str]] = {}
    for path in linted:
        m = _BPF2GO.match(os.path.basename(path))
        if m is None:
            continue
        key = (os.path.dirname(path), m.group("stem"), m.group("arch"), m.group("suffix"))
        by_key.setdefault(key, {})[m.group("order")] = path
    return [(pair["l"], pair["b"]) for pair in by_key.values() if len(pair) == 2]


def _shape(obj: BpfObject) -> tuple[object, ...]:
    return (
        tuple((p.name, p.section, p.is_static, p.calls) for p in obj.programs),
        tuple((d.section, d.symbols, d.value) for d in obj.data),
    )
