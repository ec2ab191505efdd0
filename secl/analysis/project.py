"""The project model every rule reads: all files, their trees (parsed once) and their sites."""

from __future__ import annotations

from dataclasses import dataclass, field

from secl.facts import SectionSite
from secl.parse.tree import Positions, parse

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from tree_sitter import Tree

    from secl.config import Config
    from secl.kernel import KernelLists
    from secl.loaders.discover import LoaderScan
    from secl.objects import LintedObject


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

    def tree(self, path: str) -> Tree:
        """The tree of `path`, parsed once per run whichever stage asks first."""
        tree = self._trees.get(path)
        if tree is None:
            tree = self._trees[path] = parse(self.files[path])
        return tree

    def remember_tree(self, path: str, tree: Tree) -> None:
        self._trees[path] = tree

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
