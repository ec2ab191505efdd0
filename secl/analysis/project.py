"""The project model every rule reads: all files, their trees (parsed once) and their sites."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial

from secl.facts import SectionSite
from secl.files import is_cpp
from secl.parse.tree import Positions, parse

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from collections.abc import Callable

    from tree_sitter import Tree

    from secl.config import Config
    from secl.kernel import KernelLists
    from secl.loaders.discover import LoaderScan
    from secl.objects import LintedObject
    from secl.parse.filefacts import FileFacts
    from secl.parse.loader import LoaderFacts


@dataclass
class Project:
    """Everything the analysis knows. `files` holds every file read (the ones reported on and
    the ones they pair with); `reported` the paths findings may be reported for."""

    root: str
    files: dict[str, bytes]
    sites: list[SectionSite]
    reported: frozenset[str]
    config: Config
    # Loader code of other languages and build files (secl.loaders.discover); None when the
    # run did not look (a caller that builds a project by hand).
    loader_scan: LoaderScan | None = None
    # Compiled BPF objects of the run by path (their `files` entry is secl's listing of
    # them, see secl/parse/objects.py), and the kernel lists kprobe targets are judged by.
    objects: dict[str, LintedObject] = field(default_factory=dict)
    kernel: KernelLists | None = None
    # Per-run caches of derived indexes (name -> value), so rules stay pure functions of the
    # project without recomputing shared joins.
    memo: dict[str, object] = field(default_factory=dict, repr=False)
    _trees: dict[str, Tree] = field(default_factory=dict, repr=False)
    _positions: dict[str, Positions] = field(default_factory=dict, repr=False)
    # What a worker process or the results cache read from a file's tree (parse/filefacts):
    # the analysis asks these before it parses a file again.
    _facts: dict[str, FileFacts] = field(default_factory=dict, repr=False)
    # The directory the run reads relative paths from, and their absolute forms.
    _cwd: str = field(default_factory=os.getcwd, repr=False)
    _absolute: dict[str, str] = field(default_factory=dict, repr=False)

    def absolute(self, path: str) -> str:
        """`os.path.abspath(path)` for the run, remembered (the rules ask it thousands of
        times, each a `getcwd` system call and a normalisation)."""
        return _absolute(self._cwd, self._absolute, path)

    def absolute_paths(self) -> Callable[[str], str]:
        """`absolute` for a record the project's memo keeps: it shares the paths but holds
        no reference to the project (the bound method would make a cycle through the memo,
        keeping every tree of the run alive until the cyclic collector ran)."""
        return partial(_absolute, self._cwd, self._absolute)

    def tree(self, path: str) -> Tree:
        """The tree of `path`, parsed once per run whichever stage asks first."""
        tree = self._trees.get(path)
        if tree is None:
            tree = self._trees[path] = parse(self.files[path], is_cpp(path))
        return tree

    def known_facts(self, path: str) -> FileFacts | None:
        return self._facts.get(path)

    def remember_tree(self, path: str, tree: Tree) -> None:
        self._trees[path] = tree

    def remember_facts(self, path: str, facts: FileFacts) -> None:
        self._facts[path] = facts

    def loader_facts(self, path: str, defines: dict[str, str] | None = None) -> LoaderFacts:
        """The C loader facts of `path` (secl.parse.loader.extract_loader_facts); the ones a
        worker or the cache found serve when no build-time `defines` are given."""
        from secl.parse.loader import extract_loader_facts

        known = self._facts.get(path)
        if defines is None and known is not None and known.loader is not None:
            return known.loader
        return extract_loader_facts(
            path, self.files[path], self.tree(path), self.positions(path), defines=defines
        )

    def functions(self, path: str) -> dict[str, tuple[int, int]]:
        """Name -> body byte range of the functions defined in `path`."""
        from secl.parse.filefacts import function_bodies

        known = self._facts.get(path)
        if known is not None and known.functions is not None:
            return dict(known.functions)
        return function_bodies(self.tree(path))

    def positions(self, path: str) -> Positions:
        pos = self._positions.get(path)
        if pos is None:
            pos = self._positions[path] = Positions(self.files[path])
        return pos

    def sites_in(self, path: str) -> list[SectionSite]:
        return [s for s in self.sites if s.path == path]

    @property
    def has_probe_programs(self) -> bool:
        """Whether any program could be a kprobe/uprobe-family one: without one, the upgrade
        analysis (and its imports) has nothing to do."""
        return any(
            "probe" in (s.section or s.section_text) for s in self.sites if s.kind == "program"
        )

    @property
    def programs(self) -> list[SectionSite]:
        return [s for s in self.sites if s.kind == "program" and not s.template]


def _absolute(cwd: str, known: dict[str, str], path: str) -> str:
    """`os.path.abspath(path)` run in `cwd`, remembered in `known`."""
    found = known.get(path)
    if found is None:
        found = known[path] = os.path.normpath(os.path.join(cwd, path))
    return found
