"""The stages wired together: paths -> files -> facts -> project -> findings / inventory."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from secl.analysis.project import Project
from secl.config import Config, project_root
from secl.facts import SectionSite
from secl.files import (
    BINARY_SNIFF,
    FileProblem,
    SourceFile,
    discover,
    git_grep,
    git_sources,
    in_git_work_tree,
    read,
)
from secl.findings import Finding, InventoryEntry
from secl.pairing import skeleton_names, stem
from secl.parse.bpf import extract_sites
from secl.parse.macros import resolve_sites
from secl.parse.tree import parse

# Bytes that any file worth parsing contains: a section site, or loader code that opens,
# attaches or inspects programs. Everything else is skipped unparsed.
INTERESTING = re.compile(
    rb"SEC\s*\(|section\s*\(|__open|bpf_program__|bpf_object__|bpf_link|LIBBPF_OPTS|attach_"
)


@dataclass
class Run:
    """What one run read and what went wrong while reading."""

    project: Project
    problems: list[FileProblem] = field(default_factory=list)
    linted: int = 0  # files that could be read and parsed


@dataclass
class CheckResult:
    """A run and the findings of the selected rules."""

    run: Run
    findings: list[Finding]


@dataclass
class InventoryResult:
    """A run and the lines of its inventory."""

    run: Run
    entries: list[InventoryEntry]

    @property
    def sites(self) -> list[SectionSite]:
        return [e.site for e in self.entries]


def load(paths: Iterable[str], config: Config | None = None, *, pair: bool = True) -> Run:
    """Read and parse `paths`; with `pair`, also read the rest of the project so that loaders
    and BPF sources of the given files are known (findings stay limited to the given files)."""
    paths = list(paths) or ["."]
    config = config or Config()
    problems: list[FileProblem] = []
    reported: list[str] = []
    for item in discover(paths, config.exclude):
        if isinstance(item, FileProblem):
            problems.append(item)
        else:
            reported.append(item)
    explicit_files = any(os.path.isfile(p) for p in paths)
    files: dict[str, bytes] = {}
    for path in reported:
        source = read(path)
        if isinstance(source, FileProblem):
            problems.append(source)
            continue
        note = source.text_problem
        if note:
            problems.append(FileProblem(path, note))
        files[path] = source.data
    root, marked = project_root(paths[0])
    return _build(
        files, reported, problems, root, config, pair=pair and explicit_files, deep=marked
    )


def load_stdin(name: str, data: bytes, config: Config | None = None) -> Run:
    """One file read from standard input and linted as `name` (editors, pipes)."""
    config = config or Config()
    problems: list[FileProblem] = []
    if b"\0" in data[:8192]:
        problems.append(FileProblem(name, "binary input (NUL bytes), skipped"))
        files: dict[str, bytes] = {}
    else:
        files = {name: data}
        note = SourceFile(name, data).text_problem
        if note:
            problems.append(FileProblem(name, note))
    root, marked = project_root(name)
    return _build(files, [name], problems, root, config, pair=True, deep=marked)


def _build(
    files: dict[str, bytes],
    reported: list[str],
    problems: list[FileProblem],
    root: str,
    config: Config,
    *,
    pair: bool,
    deep: bool = True,
) -> Run:
    linted = len(files)
    if pair:
        _read_pairs(root, files, config, deep=deep)
    project = Project(
        root=root, files=files, sites=[], reported=frozenset(p for p in reported if p in files),
        config=config,
    )  # fmt: skip
    sites: list[SectionSite] = []
    for path, data in files.items():
        if b"SEC" not in data and b"section" not in data:
            continue
        tree = parse(data)
        project.remember_tree(path, tree)
        sites.extend(extract_sites(path, data, tree))
    resolution = resolve_sites(sites, files, config, root, project.tree)
    project.sites = resolution.sites
    problems.extend(resolution.problems)
    return Run(project=project, problems=problems, linted=linted)


_SKELETON_USE = re.compile(
    rb"\b([A-Za-z_]\w*?)__(?:open_and_load|open_opts|open|load|attach|detach|destroy)\s*\("
)
_OBJECT_NAME = re.compile(rb'["/]([\w.+-]+?)(?:\.bpf)?\.o"')


# From this many candidate files on, a git work tree is listed by `git ls-files` and searched
# by `git grep` instead of walked and read in Python (a kernel checkout: ~60,000 .c/.h files).
GIT_GREP_FROM = 2000


def _read_pairs(root: str, files: dict[str, bytes], config: Config, *, deep: bool) -> None:
    """The other sources of the project that pair with the given files: the loaders of a BPF
    source (they use its skeleton or name its object), the BPF sources a loader opens, and
    the BPF sources those loaders open (a loader of `a/probe.bpf.c` that says `probe__open()`
    may as well mean `b/probe.bpf.c`: the analysis must see both to call it ambiguous).
    Without a project marker (pyproject.toml, .secl.toml, .git) only the files' own
    directory is searched. A large git work tree is searched with git, which leaves out the
    files .gitignore hides."""
    known = {os.path.abspath(p) for p in files}
    search = None
    if deep:
        paths = []
        for item in discover([root], config.exclude):
            if isinstance(item, FileProblem):
                continue
            paths.append(item)
            # A large tree: let git list and search it, if it is a git work tree.
            if len(paths) == GIT_GREP_FROM and in_git_work_tree(root):
                listed = git_sources(root, config.exclude)
                if listed is not None:
                    paths, search = listed, git_grep
                    break
    else:
        with os.scandir(root) as entries:
            paths = sorted(e.path for e in entries if e.name.endswith((".c", ".h")) and e.is_file())
    # `root` is absolute and normalised, so are the paths under it: no abspath() per file.
    paths = [p for p in paths if p not in known]
    if not paths:
        return  # everything there is was given
    mapped = {os.path.abspath(src): name.encode() for name, src in config.skeleton_map.items()}
    candidates = _Candidates(paths, root, config, search)
    added = dict(files)
    for _hop in range(2):
        stems, uses = _wanted(added, config)
        added = {}
        for item in candidates.named(stems, mapped) + candidates.containing(uses):
            data = candidates.take(item)
            if data is not None:
                rel = os.path.relpath(item)
                added[item if rel.startswith("..") else rel] = data
        files.update(added)
        if not added:
            break


class _Candidates:
    """The files a pairing hop may add, each read at most once. Small trees are read whole
    (one regex search per file is the cheapest test); large git trees are searched by
    `git grep`, and only its hits are read."""

    def __init__(self, paths: list[str], root: str, config: Config, search) -> None:
        self._paths = paths
        self._root = root
        self._exclude = config.exclude
        self._search = search
        self._data: dict[str, bytes | None] = {}
        self._taken: set[str] = set()
        self._stems: dict[str, bytes] | None = None
        if search is None:
            for item in paths:
                self._data[item] = _read_raw(item)

    def named(self, stems: set[bytes], mapped: dict[str, bytes]) -> list[str]:
        if not stems:
            return []
        if self._stems is None:
            self._stems = {item: stem(item).encode() for item in self._paths}
        return [
            item
            for item, name in self._stems.items()
            if item not in self._taken and (name in stems or mapped.get(item) in stems)
        ]

    def containing(self, uses: list[bytes]) -> list[str]:
        if not uses:
            return []
        if self._search is not None:
            hits = self._search(self._root, uses, self._exclude)
            if hits is not None:
                wanted = set(self._paths)
                return [h for h in hits if h in wanted and h not in self._taken]
            for item in self._paths:  # git failed after all: read everything
                self._data.setdefault(item, _read_raw(item))
            self._search = None
        used = re.compile(b"|".join(re.escape(u) for u in sorted(uses)))
        return [
            item
            for item, data in self._data.items()
            if item not in self._taken and data is not None and used.search(data)
        ]

    def take(self, item: str) -> bytes | None:
        """The file's bytes, once: None if it was taken already, unreadable or binary."""
        if item in self._taken:
            return None
        self._taken.add(item)
        if item in self._data:
            return self._data[item]
        return _read_raw(item)


def _read_raw(path: str) -> bytes | None:
    """A candidate's bytes; None if unreadable (it is reported when linted itself) or binary."""
    try:
        with open(path, "rb", buffering=0) as fh:
            data = fh.read()
    except OSError:
        return None
    return None if b"\0" in data[:BINARY_SNIFF] else data


def _wanted(files: dict[str, bytes], config: Config) -> tuple[set[bytes], list[bytes]]:
    """(stems of BPF sources these loaders open, how loaders of these BPF sources name them)."""
    stems: set[bytes] = set()
    uses: list[bytes] = []
    for path, data in files.items():
        for m in _SKELETON_USE.finditer(data):
            name = m.group(1)
            stems.update({name, name[:-4] if name.endswith(b"_bpf") else name})
        stems.update(m.group(1) for m in _OBJECT_NAME.finditer(data))
        if b"SEC" in data or b"section" in data:
            uses += [name.encode() + b"__" for name in skeleton_names(path, config)]
            base = stem(path)
            uses += [f"{base}.bpf.o".encode(), f"{base}.o".encode()]
    return stems, uses


def inventory(paths: Iterable[str], config: Config | None = None) -> InventoryResult:
    from secl.analysis.inventory import build_inventory

    run = load(paths, config)
    return InventoryResult(run, build_inventory(run.project))


def check(paths: Iterable[str], config: Config | None = None) -> CheckResult:
    from secl.analysis.run import run_rules

    run = load(paths, config)
    return CheckResult(run, run_rules(run.project))
