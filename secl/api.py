"""The stages wired together: paths -> files -> facts -> project -> findings / inventory."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from secl.analysis.project import Project
from secl.collector import collecting_less
from secl.config import DEFAULT_EXCLUDE, Config, project_root
from secl.facts import SectionSite
from secl.files import (
    BINARY_SNIFF,
    SOURCE_SUFFIXES,
    AlsoFound,
    Exclusion,
    FileProblem,
    SourceFile,
    discover,
    git_answers,
    git_grep,
    git_sources,
    in_git_work_tree,
    is_cpp,
    read,
    split_objects,
)
from secl.findings import Finding, InventoryEntry
from secl.index import GIT_GREP_FROM, SITE_CALL, PairingNames, c_paths, pairing_names, uses
from secl.pairing import skeleton_names, stem
from secl.parse.filefacts import survey
from secl.parse.macros import resolve_sites
from secl.parse.tree import parse

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import TypeVar

    from tree_sitter import Tree

    from secl.cache import Store
    from secl.index import TreeIndex
    from secl.kernel import KernelLists
    from secl.loaders.discover import LoaderScan
    from secl.parse.filefacts import FileFacts
    from secl.parse.macros import FileResolver

    T = TypeVar("T")

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
    # Exclude patterns (from the configuration or the command line) that matched no path.
    unmatched_excludes: list[str] = field(default_factory=list)
    reported_problems: int = 0  # how many of `problems` the command has printed

    @property
    def internal_errors(self) -> bool:
        """Whether secl failed on a file (a bug; the run exits 2)."""
        return any(p.internal for p in self.problems)


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


@collecting_less()
def load(paths: Iterable[str], config: Config | None = None, *, pair: bool = True) -> Run:
    """Read and parse `paths`; with `pair`, also read the rest of the project so that loaders
    and BPF sources of the given files are known (findings stay limited to the given files)."""
    paths = list(paths) or ["."]
    config = config or Config()
    problems: list[FileProblem] = []
    reported: list[str] = []
    exclusion = Exclusion(config.exclude, config.root)
    root, marked = project_root(paths[0])
    also = _loader_candidates(paths, root, config) if marked else None
    for item in discover(paths, exclusion, objects=config.objects, also=also):
        if isinstance(item, FileProblem):
            problems.append(item)
        else:
            reported.append(item)
    objects: list[str] = []
    if config.objects:  # compiled BPF objects (secl/objects.py)
        reported, objects = split_objects(reported, paths)
    explicit_files = any(os.path.isfile(p) for p in paths)
    files: dict[str, bytes] = {}
    seen: dict[tuple[int, int], str] = {}  # one file by two paths is read under the first
    for path in reported:
        source = read(path, config.max_file_size)
        if isinstance(source, FileProblem):
            problems.append(source)
            continue
        if source.identity is not None:
            if source.identity in seen:
                continue
            seen[source.identity] = path
        note = source.text_problem
        if note:
            problems.append(FileProblem(path, note))
        survey(source.data)
        files[path] = source.data
    run = _build(
        files, reported + objects, problems, root, config, pair=pair and explicit_files,
        deep=marked, exclusion=exclusion, identities=set(seen), objects=(objects, paths),
        walked=also,
    )  # fmt: skip
    run.unmatched_excludes = [p for p in exclusion.unmatched() if p not in DEFAULT_EXCLUDE]
    return run


@collecting_less()
def load_stdin(name: str, data: bytes, config: Config | None = None) -> Run:
    """One file read from standard input and linted as `name` (editors, pipes)."""
    config = config or Config()
    problems: list[FileProblem] = []
    if b"\0" in data[:BINARY_SNIFF]:
        problems.append(FileProblem(name, "binary input (NUL bytes), skipped"))
        files: dict[str, bytes] = {}
    else:
        files = {name: data}
        note = SourceFile(name, data).text_problem
        if note:
            problems.append(FileProblem(name, note))
    root, marked = project_root(name)
    # The file on disk (if any) is the one read from standard input: pairing must not read it.
    identities = set()
    with contextlib.suppress(OSError):
        st = os.stat(name)
        identities.add((st.st_dev, st.st_ino))
    return _build(
        files, [name], problems, root, config, pair=True, deep=marked, identities=identities
    )


def _build(
    files: dict[str, bytes],
    reported: list[str],
    problems: list[FileProblem],
    root: str,
    config: Config,
    *,
    pair: bool,
    deep: bool = True,
    exclusion: Exclusion | None = None,
    identities: set[tuple[int, int]] | None = None,
    objects: tuple[list[str], list[str]] = ([], []),
    walked: AlsoFound | None = None,
) -> Run:
    compiled = {}
    if objects[0]:  # before pairing: the sources objects name pair with their loaders
        from secl.objects import read_objects

        compiled = read_objects(*objects, config, root, files, problems)
    from secl.cache import open_store

    store = open_store(config, root)
    exclusion = exclusion if exclusion is not None else Exclusion(config.exclude, config.root)
    # A marked project's tree is indexed once per run, for pairing and the loader scan.
    index = None
    if deep and store is not None:
        index = _tree_index(store, root, config, exclusion, files)
    if pair:
        _read_pairs(
            root, files, config, deep=deep, exclusion=exclusion, identities=identities,
            index=index,
        )  # fmt: skip
    scan = _scan_loaders(root, reported, config, deep=deep, index=index, walked=walked)
    problems.extend(FileProblem(path, message) for path, message in scan.problems)
    project = Project(
        root=root, files=files, sites=[], reported=frozenset(p for p in reported if p in files),
        config=config, loader_scan=scan, kernel=_kernel_lists(config, problems),
    )  # fmt: skip
    sites, failed, resolved = _parse_files(project, problems, store)
    project.sites = sites
    if failed:
        project = without(project, *failed)
        resolved = {}  # resolved with the files that failed still there
    whole = project
    from secl.parse.includes import build_includes

    resolution, project = isolating(
        lambda p: resolve_sites(
            p.sites,
            _c_files(p.files),
            config,
            root,
            p.tree,
            resolved if p is whole else None,
            build_includes(p),
        ),
        project,
        problems,
    )
    project.sites = resolution.sites
    problems.extend(resolution.problems)
    if compiled:
        from secl.objects import attach_objects

        attach_objects(project, compiled)
    linted = sum(1 for p in set(reported) if p in project.files)
    if store is not None:
        store.finish()
    return Run(project=project, problems=problems, linted=linted)


def _c_files(files: dict[str, bytes]) -> dict[str, bytes]:
    """The files macros may write sites in: C++ code is never a BPF source."""
    return {path: data for path, data in files.items() if not is_cpp(path)}


def _kernel_lists(config: Config, problems: list[FileProblem]) -> KernelLists | None:
    """The kernel lists the configuration names (secl/kernel.py); one line per list that
    cannot be read."""
    if config.kernel_functions is None and config.kprobe_blacklist is None:
        return None
    from secl.kernel import load_lists

    lists, notes = load_lists(config.kernel_functions, config.kprobe_blacklist)
    problems.extend(FileProblem(where, message) for where, message in notes)
    return lists


def _parse_files(
    project: Project, problems: list[FileProblem], store: Store | None
) -> tuple[list[SectionSite], list[str], dict[str, list[SectionSite]]]:
    """The section sites of every file that may have one, and what the analysis reads from
    the trees of those files and of the C loaders (secl.parse.filefacts): from the results
    cache where it has the file's path and bytes, else parsed, in worker processes when the
    run is large enough (`jobs`), and cached. With workers, also the sites resolve_sites
    gives the files it resolves, resolved where each file's tree is (the work is shared
    out; secl.parse.macros.FileResolver)."""
    from secl.cache import key
    from secl.parse.filefacts import FileFacts, file_facts, has_sites, needs_parse
    from secl.parse.loader import is_loader

    config = project.config
    known: dict[str, FileFacts] = {}
    todo: list[str] = []
    names: dict[str, str] = {}
    flags: dict[str, tuple[bool, bool]] = {}  # has_sites, is_loader: each read once per file
    for path, data in project.files.items():
        loads = is_loader(data)
        sites = not is_cpp(path) and has_sites(data)  # C++ code is read as a loader only
        if not sites and not loads:
            continue
        flags[path] = (sites, loads)
        if store is not None:
            names[path] = key("c", path, data)
            cached = store.get("files", names[path])
            if isinstance(cached, FileFacts):
                known[path] = cached
                continue
        todo.append(path)
    failed: list[str] = []
    resolved: dict[str, list[SectionSite]] = {}
    jobs = _jobs(config, todo, project.files)
    resolver = None
    if jobs > 1:
        from secl.parse.includes import build_includes
        from secl.parse.macros import FileResolver

        # The files resolve_sites is given (C++ code is never a BPF source).
        resolver = FileResolver(
            _c_files(project.files), config, project.root, build_includes(project)
        )

    def here(path: str) -> FileFacts | FileProblem:
        data = project.files[path]
        try:
            tree = None
            sites, loads = flags[path]
            if needs_parse(data, path, sites=sites, loads=loads):
                tree = parse(data, is_cpp(path))
                project.remember_tree(path, tree)
            # Without the results cache the tree stays with the project: the functions of
            # the file are read from it if the analysis asks.
            facts = file_facts(path, data, tree, sites=sites, loads=loads, bodies=store is not None)
        except Exception as err:  # a bug in secl: this file is skipped, the run goes on
            return internal_error(path, err)
        if resolver is not None and tree is not None:
            _resolve_early(resolver, path, facts, tree, resolved)
        return facts

    if jobs > 1:
        from secl.parallel import facts_in_workers
        from secl.parse.macros import may_read_tree

        def keep(path: str) -> bool:  # read here: resolve_sites will want the tree
            return may_read_tree(project.files[path])

        def resolve(path: str, facts: FileFacts, tree: Tree) -> list[SectionSite] | None:
            assert resolver is not None
            return resolver.sites(path, facts.sites, tree)

        outcomes = facts_in_workers(
            todo, project.files, jobs, here, store, names, keep, resolve, resolved
        )
    else:
        outcomes = ((path, here(path)) for path in todo)
    for path, outcome in outcomes:
        if isinstance(outcome, FileProblem):
            problems.append(outcome)
            failed.append(path)
            continue
        blob, facts = outcome if isinstance(outcome, tuple) else (None, outcome)
        known[path] = facts
        if store is not None:
            if blob is None:
                store.put("files", names[path], facts)
            elif blob:  # not stored already (secl.parallel.STORED)
                store.put_blob("files", names[path], blob)
    sites: list[SectionSite] = []
    for path in project.files:
        facts = known.get(path)
        if facts is not None:
            project.remember_facts(path, facts)
            sites.extend(facts.sites)
            if facts.problem is not None:  # cached or not, the same line
                problems.append(FileProblem(path, facts.problem))
    return sites, failed, resolved


def _resolve_early(
    resolver: FileResolver,
    path: str,
    facts: FileFacts,
    tree: Tree,
    resolved: dict[str, list[SectionSite]],
) -> None:
    try:
        found = resolver.sites(path, facts.sites, tree)
    except Exception:  # left to resolve_sites, which reports it as it would
        return
    if found is not None:
        resolved[path] = found


# A pool of processes costs tens of milliseconds to start: below this many files to parse, one
# process is done first (a pool pays off from about a hundred files).
PARALLEL_FROM = 100


def _jobs(config: Config, todo: list[str], files: dict[str, bytes]) -> int:
    """How many processes parse `todo`: `jobs` (default: the CPUs this process may use), one
    for a small run or where processes cannot be forked."""
    if len(todo) < PARALLEL_FROM:
        return 1
    jobs = config.jobs
    if jobs is None:
        try:
            jobs = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            jobs = os.cpu_count() or 1
    if jobs > 1:
        from secl.parallel import can_fork

        if not can_fork():
            return 1
    return min(jobs, len(todo))


def _tree_index(
    store: Store, root: str, config: Config, exclusion: Exclusion, files: dict[str, bytes]
) -> TreeIndex:
    """The project tree's index, brought up to date (and saved when it changed)."""
    from secl.cache import key
    from secl.index import Indexer, TreeIndex
    from secl.loaders.discover import VENDOR_DIRS, extract_one, is_candidate

    name = key("tree", root, os.getcwd(), repr(exclusion.patterns), str(config.max_file_size))
    indexer = Indexer(
        root, exclusion, config.max_file_size,
        lambda path, data: extract_one(_shown(path), data), is_candidate, VENDOR_DIRS,
        {os.path.abspath(p): data for p, data in files.items()},
    )  # fmt: skip
    old = store.get("trees", name)
    index = indexer.refresh(old) if isinstance(old, TreeIndex) else indexer.build()
    if indexer.changed:
        store.put("trees", name, index)
    return index


def _shown(path: str) -> str:
    """An absolute path as the run shows it: relative to the current directory inside it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _loader_candidates(paths: list[str], root: str, config: Config) -> AlsoFound | None:
    """What the walk of the C files gathers for the loader scan when it walks the project
    root as the scan would (the same exclusion root; paths as the scan shows them): None
    where the tree's index answers instead (the results cache) or no argument is the root."""
    if config.cache or os.path.abspath(config.root) != root:
        return None
    from secl.loaders.discover import VENDOR_DIRS, is_candidate

    for arg in paths:
        if arg == root or (arg == "." and os.getcwd() == root):
            return AlsoFound(arg, is_candidate, VENDOR_DIRS)
    return None


def _scan_loaders(
    root: str,
    reported: list[str],
    config: Config,
    *,
    deep: bool,
    index: TreeIndex | None = None,
    walked: AlsoFound | None = None,
) -> LoaderScan:
    """The Go, Rust and Python loader code and the build files of the project: the whole
    tree under a marked project root (gathered by the walk of the C files when that walked
    it), else the directories of the given files."""
    from secl.loaders.discover import assemble, is_candidate, scan, walk

    if index is not None:
        from secl.index import loader_results

        found = [(_shown(path), f) for path, f in loader_results(index) if f is not None]
        return assemble(found)
    if deep:
        if walked is not None and walked.complete:
            paths = walked.found
        else:
            paths = list(walk(root, config.exclude))
    else:
        paths = []
        for directory in sorted({os.path.dirname(p) or "." for p in reported}):
            try:
                with os.scandir(directory) as entries:
                    found = [e for e in entries if is_candidate(e.name)]
            except OSError:
                continue
            for entry in sorted(found, key=lambda e: e.name):
                with contextlib.suppress(OSError):  # a link that loops is no loader
                    if entry.is_file():
                        paths.append(entry.path)
    # As reached from the current directory, like the files of the run.
    cwd = os.getcwd() + os.sep
    shown = [p[len(cwd) :] if p.startswith(cwd) else p for p in paths]
    return scan(shown)


# -- internal errors ------------------------------------------------------------------------


def internal_error(path: str, err: BaseException) -> FileProblem:
    """The one line for a file secl failed on (with the traceback for --verbose)."""
    import traceback

    from secl import __version__

    detail = "".join(traceback.format_exception(err))
    what = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return FileProblem(
        path,
        f"internal error in secl {__version__} ({_one_line(what)}); file skipped",
        internal=True,
        detail=detail,
    )


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def without(project: Project, *paths: str) -> Project:
    """The project without `paths`: their bytes, sites and trees are gone."""
    return subproject(project, [p for p in project.files if p not in paths])


def subproject(project: Project, keep: Iterable[str]) -> Project:
    """A fresh project (no memoised joins) of the files `keep`, reusing their parse trees."""
    kept = {p: project.files[p] for p in keep}
    new = Project(
        root=project.root, files=kept, sites=[s for s in project.sites if s.path in kept],
        reported=frozenset(p for p in project.reported if p in kept), config=project.config,
        loader_scan=project.loader_scan, kernel=project.kernel,
        objects={p: o for p, o in project.objects.items() if p in kept},
    )  # fmt: skip
    for path in kept:
        tree = project._trees.get(path)
        if tree is not None:
            new.remember_tree(path, tree)
        facts = project.known_facts(path)
        if facts is not None:
            new.remember_facts(path, facts)
    return new


# Past this many files that break a stage, the stage's own failure is the run's.
MAX_FAILING_FILES = 8


def isolating(
    stage: Callable[[Project], T], project: Project, problems: list[FileProblem]
) -> tuple[T, Project]:
    """`stage(project)` and the project it ran on. When the stage raises, the file that makes
    it fail is found, reported as an internal error (one line naming it) and dropped, and the
    stage runs again without it. The culprit is the file whose addition, in sorted order,
    makes the stage fail (a binary search: log2(files) runs, on the error path only). A stage
    that fails on an empty project, or on more than MAX_FAILING_FILES files, raises. The
    stage must not change anything but the project it is given."""
    for _ in range(MAX_FAILING_FILES):
        try:
            return stage(project), project
        except Exception as err:  # a bug in secl: find the file, skip it, go on
            culprit = _culprit(stage, project)
            if culprit is None:
                raise
            problems.append(internal_error(culprit, err))
            project = without(project, culprit)
    return stage(project), project


def _culprit(stage: Callable[[Project], object], project: Project) -> str | None:
    order = sorted(project.files)

    def fails(count: int) -> bool:
        try:
            stage(subproject(project, order[:count]))
        except Exception:
            return True
        return False

    if not order or fails(0) or not fails(len(order)):
        return None
    low, high = 0, len(order)  # fails(high), not fails(low)
    while high - low > 1:
        middle = (low + high) // 2
        if fails(middle):
            high = middle
        else:
            low = middle
    return order[high - 1]


def _read_pairs(
    root: str,
    files: dict[str, bytes],
    config: Config,
    *,
    deep: bool,
    exclusion: Exclusion | None = None,
    identities: set[tuple[int, int]] | None = None,
    index: TreeIndex | None = None,
) -> None:
    """The other sources of the project that pair with the given files: the loaders of a BPF
    source (they call its skeleton's functions or name its object in a string), the BPF
    sources a loader opens, and the BPF sources those loaders open (a loader of
    `a/probe.bpf.c` that says `probe__open()` may as well mean `b/probe.bpf.c`: the analysis
    must see both to call it ambiguous). Without a project marker (pyproject.toml,
    .secl.toml, .git) only the files' own directory is searched. A large git work tree is
    searched with git, which leaves out the files .gitignore hides; with the results cache,
    the tree's index answers (secl.index). A file already read (`identities`: (st_dev,
    st_ino)) is not read again under another path, nor is one file under two."""
    exclusion = exclusion if exclusion is not None else Exclusion(config.exclude, config.root)
    reader = _Reader(config.max_file_size, identities)
    known = {os.path.abspath(p) for p in files}
    candidates: _Candidates | _GitCandidates | _IndexCandidates | None = None
    if index is not None:
        if len(known) >= len(index.c_files) and known.issuperset(c_paths(index)):
            return  # everything there is was given
        candidates = _IndexCandidates(index, config, known, reader)
    elif deep:
        paths = []
        for item in discover([root], exclusion):
            if isinstance(item, FileProblem):
                continue
            paths.append(item)
            # A large tree: let git search it, if it is a git work tree git can answer for.
            if len(paths) == GIT_GREP_FROM and in_git_work_tree(root) and git_answers(root):
                candidates = _GitCandidates(root, config, known, reader, exclusion)
                break
    else:
        paths = _own_directory(root)
    if candidates is None:
        # `root` is absolute and normalised, so are the paths under it: no abspath() per file.
        paths = [p for p in paths if p not in known]
        if not paths:
            return  # everything there is was given
        candidates = _Candidates(paths, config, reader, root)
    given = dict(files)
    if isinstance(candidates, _Context):
        files.update(candidates.includers(files, exclusion))
    added = dict(files)
    for _hop in range(2):
        stems, skeletons, objects = _wanted(added, config, root)
        added = {}
        for item in candidates.named(stems) + candidates.containing(skeletons, objects):
            data = candidates.take(item)
            if data is not None:
                added[_shown(item)] = data
        files.update(added)
        if not added:
            break
    if isinstance(candidates, _Context):
        files.update(candidates.context(files, given))


def _own_directory(root: str) -> list[str]:
    """The sources in `root` itself (no project marker: pairing looks no further). A missing
    directory (--stdin-filename names one) has none; an entry that cannot be examined (a
    link that loops) is none."""
    paths = []
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                if not entry.name.endswith(SOURCE_SUFFIXES):
                    continue
                with contextlib.suppress(OSError):
                    if entry.is_file():
                        paths.append(entry.path)
    except OSError:
        return []
    return sorted(paths)


class _Reader:
    """Reads pairing candidates: regular files within the size limit, each file once however
    many paths lead to it; None for the rest (a file given explicitly is reported when
    read; these are only candidates)."""

    def __init__(self, max_size: int, identities: set[tuple[int, int]] | None) -> None:
        self.max_size = max_size
        self.seen = set(identities or ())

    def __call__(self, path: str) -> bytes | None:
        source = read(path, self.max_size)
        if isinstance(source, FileProblem):
            return None
        if source.identity is not None:
            if source.identity in self.seen:
                return None
            self.seen.add(source.identity)
        survey(source.data)
        return source.data


class _Context:
    """What a one-file run reads besides the loaders that name its sources, so that it links
    as the whole-tree run does (the candidates' `_names`: secl.index.PairingNames of every
    C file, with the project's definitions)."""

    def _names(self) -> list[tuple[str, PairingNames]]:
        raise NotImplementedError

    def _paths_holding(self, needles: list[bytes], exclusion: Exclusion) -> list[str]:
        raise NotImplementedError

    def _is_taken(self, item: str) -> bool:
        raise NotImplementedError

    def take(self, item: str) -> bytes | None:
        raise NotImplementedError

    def includers(self, files: dict[str, bytes], exclusion: Exclusion) -> dict[str, bytes]:
        """The BPF sources that include a header of `files` that has section sites: the
        header is judged by their loaders (secl.analysis.loaders.judged_as)."""
        headers = {
            os.path.basename(p).encode()
            for p, data in files.items()
            if p.endswith(".h") and SITE_CALL.search(data)
        }
        if not headers:
            return {}
        paths = self._paths_holding(sorted(headers), exclusion)
        out: dict[str, bytes] = {}
        for item in paths:
            if self._is_taken(item):
                continue
            source = read(item, self._reader.max_size)
            if isinstance(source, FileProblem) or not SITE_CALL.search(source.data):
                continue
            if any(_includes(source.data, h) for h in headers if h in source.data):
                data = self.take(item)
                if data is not None:
                    out[_shown(item)] = data
        return out

    def context(self, files: dict[str, bytes], given: dict[str, bytes]) -> dict[str, bytes]:
        """The other files the whole-tree linking would read for `files`: loaders that may
        link a program of the `given` files by its name alone (secl.analysis.links), loaders
        that change how the whole project is judged (own ELF readers, eBPF for Windows), and
        the files that define the functions and macros the loader code read relies on, until
        none is new."""
        from secl.analysis.sections import _FUNCTION_HEAD

        out: dict[str, bytes] = {}
        programs: set[bytes] = set()
        for data in given.values():  # (findings are the given files')
            for m in SITE_CALL.finditer(data):
                programs.update(_program_names(data, m.end()))
        named = self._names()
        todo = [p for p, n in named if n.roles or n.unowned_programs & programs]
        given: dict[bytes, list[str]] | None = None
        macros: set[bytes] = set()
        scanned = list(files.values())
        while True:
            for item in todo:
                data = self.take(item)
                if data is not None:
                    out[_shown(item)] = data
                    scanned.append(data)
            if not scanned:
                return out
            if given is None:
                given = {}
                for path, n in named:
                    for name in n.provides:
                        given.setdefault(name, []).append(path)
                    if n.defines:
                        macros.update(_MACRO_NAME.findall(n.defines))
                if not given:
                    return out
            # What a file relies on: the functions it calls and does not define, the macros
            # it uses.
            words: set[bytes] = set()
            for data in scanned:
                own = {m.group(1) for m in _FUNCTION_HEAD.finditer(data)}
                words.update(w for w in _CALLED.findall(data) if w not in own)
                if macros:
                    words.update(macros.intersection(_WORD.findall(data)))
            scanned = []
            todo = [p for w in words.intersection(given) for p in given[w] if not self._is_taken(p)]


class _Candidates(_Context):
    """The files a pairing hop may add, read whole once: one regex search per file is the
    cheapest test there is for a tree of a few thousand files."""

    def __init__(self, paths: list[str], config: Config, reader: _Reader, root: str) -> None:
        # In walk order, so that of one file's paths the first in the sorted walk is kept.
        self._data = {item: reader(item) for item in paths}
        self._mapped = {os.path.abspath(src): n.encode() for n, src in config.skeleton_pairs()}
        self._stems: dict[str, bytes] | None = None
        self._reader = reader
        self._root = root
        self._all: list[tuple[str, PairingNames]] | None = None
        self._executables: dict[str, frozenset[bytes]] | None = None

    def named(self, stems: set[bytes]) -> list[str]:
        """Files whose name (or configured skeleton name) is one of `stems`."""
        if not stems:
            return []
        if self._stems is None:
            self._stems = {item: stem(item).encode() for item in self._data}
        return [
            item
            for item, name in self._stems.items()
            if item in self._data and (name in stems or self._mapped.get(item) in stems)
        ]

    def containing(self, skeletons: set[bytes], objects: set[bytes]) -> list[str]:
        """Files that use one of `skeletons` or name one of `objects` (secl.index)."""
        if not skeletons and not objects:
            return []
        if self._executables is None:  # (secl.index.TreeIndex.executables)
            from secl.index import executable_names

            root = self._root
            tails = {
                os.path.relpath(item, root): n.executable_objects
                for item, n in self._names()
                if n.executable_objects
            }
            found = executable_names(root, tails)[0] if tails else {}
            self._executables = {os.path.join(root, r): stems for r, stems in found.items()}
        executables = self._executables
        return [
            item for item, names in self._names()
            if item in self._data and (
                uses(names, skeletons, objects)
                or not executables.get(item, frozenset()).isdisjoint(objects)
            )
        ]  # fmt: skip

    def take(self, item: str) -> bytes | None:
        """The file's bytes, once: None if taken already, unreadable or binary."""
        return self._data.pop(item, None)

    def _is_taken(self, item: str) -> bool:
        return item not in self._data

    def _names(self) -> list[tuple[str, PairingNames]]:
        """Every candidate's names with the definitions of all of them (as secl.index)."""
        if self._all is None:
            from secl.index import Definitions, file_names

            first = {item: file_names(data) for item, data in self._data.items() if data}
            text = b"\n".join(n.defines for _i, n in sorted(first.items()) if n.defines)
            defs = Definitions.of(text)
            if defs.text:
                first = {item: file_names(data, defs) for item, data in self._data.items() if data}
            self._all = [(item, names) for item, names in first.items() if names]
        return self._all

    def _paths_holding(self, needles: list[bytes], exclusion: Exclusion) -> list[str]:
        return [
            item for item, data in self._data.items() if data and any(n in data for n in needles)
        ]


class _GitCandidates:
    """The same questions asked of git (`ls-files` by name, `grep` by text), so that only the
    answers are read: a kernel checkout has ~60,000 .c/.h files, 1 GB. If git stops
    answering, the tree is walked and read after all."""

    # Past this many names, one listing of every file filtered here beats one pathspec per
    # name (git compares every pathspec with every file).
    _PATHSPECS = 32

    def __init__(
        self, root: str, config: Config, known: set[str], reader: _Reader, exclusion: Exclusion
    ) -> None:
        self._root = root
        self._config = config
        self._exclusion = exclusion
        self._reader = reader
        self._taken = set(known)
        self._listing: list[str] | None = None
        self._walked: _Candidates | None = None
        self._kept: dict[str, bytes] = {}  # read by `containing`, not yet taken

    def named(self, stems: set[bytes]) -> list[str]:
        if self._walked is not None:
            return self._walked.named(stems)
        if not stems:
            return []
        names = sorted({os.fsdecode(s) for s in stems})
        if len(names) <= self._PATHSPECS:
            found = git_sources(self._root, self._exclusion, names=names)
        else:
            if self._listing is None:
                self._listing = git_sources(self._root, self._exclusion)
            found = self._listing and [p for p in self._listing if stem(p).encode() in stems]
        if found is None:
            return self._walk().named(stems)
        for name, src in self._config.skeleton_pairs():
            path = os.path.abspath(src)
            if name.encode() in stems and self._inside(path) and os.path.isfile(path):
                found.append(path)
        return [p for p in found if p not in self._taken]

    def containing(self, skeletons: set[bytes], objects: set[bytes]) -> list[str]:
        if self._walked is not None:
            return self._walked.containing(skeletons, objects)
        if not skeletons and not objects:
            return []
        # Fixed strings that every use of the names contains; what git finds is read and
        # tested as the other candidates are.
        needles = [name + suffix for name in skeletons for suffix in (b"__", b"::open")]
        needles += [o + suffix for o in objects for suffix in (b'.o"', b'.bpf.o"')]
        found = git_grep(self._root, needles, self._exclusion)
        if found is None:
            return self._walk().containing(skeletons, objects)
        out = []
        for path in found:
            if path in self._taken:
                continue
            data = self.take(path)
            if data is not None and _uses(data, skeletons, objects):
                self._kept[path] = data
                out.append(path)
        return out

    def take(self, item: str) -> bytes | None:
        if self._walked is not None:
            return self._walked.take(item)
        if item in self._kept:
            return self._kept.pop(item)
        if item in self._taken:
            return None
        self._taken.add(item)
        return self._reader(item)

    def _inside(self, path: str) -> bool:
        # A configured source counts as a walk would count it: under the root, not excluded.
        relative = os.path.relpath(path, self._root)
        return not relative.startswith("..") and not self._exclusion(path)

    def _walk(self) -> _Candidates:
        if self._walked is None:
            paths = [
                p
                for p in discover([self._root], self._exclusion)
                if not isinstance(p, FileProblem) and p not in self._taken
            ]
            self._walked = _Candidates(paths, self._config, self._reader, self._root)
        return self._walked


class _IndexCandidates(_Context):
    """The same questions answered by the tree's index (secl.index): nothing is read but
    the answers."""

    def __init__(self, index: TreeIndex, config: Config, known: set[str], reader: _Reader) -> None:
        self._index = index
        self._config = config
        self._reader = reader
        self._taken = set(known)

    def named(self, stems: set[bytes]) -> list[str]:
        from secl.index import named

        if not stems:
            return []
        found = named(self._index, stems)
        listed = set(found)
        for name, src in self._config.skeleton_pairs():
            path = os.path.abspath(src)
            inside = not os.path.relpath(path, self._index.root).startswith("..")
            if name.encode() in stems and inside and path not in listed and os.path.isfile(path):
                found.append(path)  # configured, as the git listing takes it
        return [p for p in found if p not in self._taken]

    def containing(self, skeletons: set[bytes], objects: set[bytes]) -> list[str]:
        from secl.index import users

        if not skeletons and not objects:
            return []
        return [p for p in users(self._index, skeletons, objects) if p not in self._taken]

    def take(self, item: str) -> bytes | None:
        if item in self._taken:
            return None
        self._taken.add(item)
        return self._reader(item)

    def _is_taken(self, item: str) -> bool:
        return item in self._taken

    def _names(self) -> list[tuple[str, PairingNames]]:
        index = self._index
        return [(index.path(rel), names) for rel, names in index.named.items()]

    def _paths_holding(self, needles: list[bytes], exclusion: Exclusion) -> list[str]:
        index = self._index
        if index.git:
            found = git_grep(index.root, needles, exclusion)
            if found is not None:
                return found
        return c_paths(index)


def _includes(data: bytes, header: bytes) -> bool:
    # as secl.analysis.loaders.judged_as finds an includer
    return (
        re.search(rb'#\s*include\s*[<"](?:[^">]*/)?' + re.escape(header) + rb'[">]', data)
        is not None
    )


_CALLED = re.compile(rb"\b([A-Za-z_]\w*)\s*\(")
_MACRO_NAME = re.compile(rb"define[ \t]+(\w+)")
# What follows a section site's `)`: the function's head, `int handle(` or a macro's
# `int BPF_KPROBE(handle, ...`.
_PROGRAM_HEAD = re.compile(rb"\s*(?:[A-Za-z_]\w*[\s*]+){0,6}?([A-Za-z_]\w*)\s*\(\s*([A-Za-z_]\w*)?")


def _program_names(data: bytes, start: int) -> list[bytes]:
    """The names a program defined by the section site whose call opens at `start` may
    have: the function's, or a wrapper macro's first argument."""
    end = data.find(b")", start, start + 512)
    if end < 0:
        return []
    m = _PROGRAM_HEAD.match(data, end + 1)
    return [] if m is None else [n for n in m.groups() if n]


_WORD = re.compile(rb"[A-Za-z_]\w*")


def _uses(data: bytes | None, skeletons: set[bytes], objects: set[bytes]) -> bool:
    if data is None:
        return False
    names = pairing_names(data)
    return bool(names.skeletons & skeletons or names.objects & objects)


def _wanted(
    files: dict[str, bytes], config: Config, root: str = "."
) -> tuple[set[bytes], set[bytes], set[bytes]]:
    """(stems of BPF sources these loaders open, skeleton names and object stems by which
    loaders of these BPF sources name them). Skeletons that `bpftool gen object` links from
    several sources (read from the build files near each file) count for each of those
    sources."""
    from secl.analysis.builds import linked_near

    stems: set[bytes] = set()
    skeletons: set[bytes] = set()
    objects: set[bytes] = set()
    for path, data in files.items():
        names = pairing_names(data)
        linked: dict[str, set[str]] | None = None
        for name in names.skeletons:
            stems.update({name, name[:-4] if name.endswith(b"_bpf") else name})
            if linked is None:
                linked = linked_near(path, root)
            stems.update(s.encode() for s in linked.get(name.decode(), ()))
        stems.update(names.objects)
        if SITE_CALL.search(data):  # a BPF source: its loaders are wanted
            skeletons.update(name.encode() for name in skeleton_names(path, config))
            base = stem(path)
            objects.add(base.encode())
            if linked is None:
                linked = linked_near(path, root)
            skeletons.update(n.encode() for n, members in linked.items() if base in members)
    return stems, skeletons, objects


@collecting_less()
def inventory(paths: Iterable[str], config: Config | None = None) -> InventoryResult:
    from secl.analysis.inventory import build_inventory

    run = load(paths, config)
    return InventoryResult(run, build_inventory(run.project))


@collecting_less()
def check(paths: Iterable[str], config: Config | None = None) -> CheckResult:
    from secl.analysis.run import run_rules

    run = load(paths, config)
    return CheckResult(run, run_rules(run.project))
