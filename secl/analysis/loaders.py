"""Which library loads each BPF source: the loader uses found in the project's code and build
files, linked to the sources by source path, object file name, skeleton name or bpf2go
identifier, then overridden by the configuration.

A source reached by several loaders takes the libbpf-family one (libbpf's table and its
auto-upgrade then apply), with all of them kept as evidence. A source no loader reaches is
"libbpf (assumed)", as secl always assumed.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, replace

from secl.analysis.builds import command_uses
from secl.analysis.ownelf import VALUE, loader_use, own_loaders, own_uses
from secl.analysis.project import Project
from secl.files import is_cpp
from secl.loaders import (
    AYA,
    BCC,
    CILIUM,
    EBPF_FOR_WINDOWS,
    GOBPF,
    LIBBPF,
    LIBBPF_ASSUMED,
    LIBBPF_FAMILY,
    LIBBPF_RS,
    LIBBPFGO,
    OTHER,
    PACKAGES,
    LoaderUse,
)
from secl.pairing import skeleton_names, stem
from secl.parse.filefacts import has_body

# Which kind wins when several reach one source: libbpf-family first (the issue of secl is
# libbpf's behaviour; a source also opened by libbpf must satisfy it), C before the bindings.
PRIORITY = (LIBBPF, LIBBPFGO, LIBBPF_RS, CILIUM, AYA, BCC, GOBPF, EBPF_FOR_WINDOWS, OTHER)
DISPLAY = {
    LIBBPF: "libbpf",
    LIBBPF_ASSUMED: "libbpf (assumed)",
    LIBBPFGO: "libbpfgo",
    LIBBPF_RS: "libbpf-rs",
    CILIUM: "cilium/ebpf",
    AYA: "aya",
    BCC: "BCC",
    GOBPF: "gobpf",
    EBPF_FOR_WINDOWS: "eBPF for Windows",
    OTHER: "another loader",
}
# bpf2go's object names: <stem>_<target>.o, target bpfel/bpfeb or <arch>_bpfel... (cmd/bpf2go).
_BPF2GO_OBJECT = re.compile(r"(.+?)_(?:\w+_)?bpfe[lb]\.o\Z")


@dataclass(frozen=True, slots=True)
class Assignment:
    """The loader judged to load one BPF source."""

    kind: str
    version: str | None
    evidence: tuple[LoaderUse, ...]  # every use that reaches the source, the chosen kind's first
    configured: bool = False  # set by `loaders` / `--loader`, not found

    @property
    def libbpf_family(self) -> bool:
        return self.kind in LIBBPF_FAMILY

    @property
    def display(self) -> str:
        name = DISPLAY.get(self.kind, self.kind)
        return f"{name} {self.version}" if self.version else name


ASSUMED = Assignment(LIBBPF_ASSUMED, None, ())


def assignment(project: Project, path: str) -> Assignment:
    """The loader of BPF source `path`."""
    return assignments(project).get(path, ASSUMED)


def assignments(project: Project) -> dict[str, Assignment]:
    """Every BPF source of the project (a file with a program site) -> its loader."""
    found = project.memo.get("loader-assignments")
    if found is None:
        found = project.memo["loader-assignments"] = _assign(project)
    return found  # type: ignore[return-value]


def _sources(project: Project) -> list[str]:
    """Files with programs, and C files with only data sections (legacy `maps` objects)."""
    return sorted({s.path for s in project.sites if s.kind == "program" or s.path.endswith(".c")})


def _index(project: Project) -> _Index | None:
    """The project's BPF sources indexed for linking, built once per run (None without a
    loader scan or sources)."""
    if "loader-link-index" not in project.memo:
        scan = project.loader_scan
        sources = _sources(project)
        project.memo["loader-link-index"] = (
            _Index(
                project.root,
                sources,
                scan.files,
                project.config,
                frozenset(scan.manifests),
                _object_aliases(project),
                lambda d: scan.manifest_data(d, "Cargo.toml") is not None,
                project.absolute_paths(),
            )
            if scan is not None and sources
            else None
        )
    return project.memo["loader-link-index"]  # type: ignore[return-value]


def _object_aliases(project: Project) -> dict[str, str]:
    """Compiled objects of the run by absolute path -> the path whose sites stand for them: a
    loader that opens or embeds the object (`//go:embed probe_bpfel.o`) loads the source it
    was built from when that is in view, the other object of its bpf2go pair when that one is
    analysed for both, else the object itself."""
    out = {}
    for path, item in project.objects.items():
        target = item.source or item.twin or path
        out[os.path.abspath(path)] = target
    return out


def named_sources(project: Project) -> dict[str, list[str]]:
    """Skeleton and object names that Go/Rust loaders and build files tie to BPF sources
    (`SkeletonBuilder::new().source("src/bpf/x.bpf.c")` makes skeleton `x` that file)."""
    found = project.memo.get("loader-named-sources")
    if found is None:
        found = {}
        scan = project.loader_scan
        index = _index(project)
        if scan is not None and index is not None:
            for lf in scan.files:
                for use in lf.uses:
                    if not use.sources or not (use.skeletons or use.objects):
                        continue
                    linked = [p for s in use.sources for p in index.source(use, s)]
                    for name in use.skeletons + use.objects:
                        found.setdefault(name, [])
                        found[name] += [p for p in linked if p not in found[name]]
        project.memo["loader-named-sources"] = found
    return found  # type: ignore[return-value]


def file_named_sources(project: Project) -> dict[tuple[str, str], list[str]]:
    """(loader file, object or skeleton name) -> the BPF sources that file's own uses link
    the name to: a Go or Rust fact about `GetProgram("x")` of a module opened from
    `main.bpf.o` means the source that open links to (the same module, the nearest), not
    every `main.bpf.c` of the project."""
    found = project.memo.get("loader-file-named-sources")
    if found is None:
        found = {}
        scan = project.loader_scan
        index = _index(project)
        if scan is not None and index is not None:
            for lf in scan.files:
                for use in lf.uses:
                    linked = sorted(index.links(use))
                    for name in use.skeletons + use.objects:
                        known = found.setdefault((lf.path, name), [])
                        known += [p for p in linked if p not in known]
        project.memo["loader-file-named-sources"] = found
    return found  # type: ignore[return-value]


def _assign(project: Project) -> dict[str, Assignment]:
    sources = _sources(project)
    if not sources:
        return {}
    config = project.config
    uses: dict[str, list[tuple[LoaderUse, bool]]] = {p: [] for p in sources}
    index = _index(project)
    if project.loader_scan is not None and index is not None:
        for lf in project.loader_scan.files:
            for use in lf.uses:
                for path, exact in index.links(use).items():
                    if path in uses:
                        uses[path].append((use, exact))
    out: dict[str, Assignment] = {}
    forced = config.loader
    by_module: dict[str | None, list[LoaderUse]] | None = None
    outside: list[LoaderUse] | None = None
    for path in sources:
        found = (
            _closest(path, uses[path], index)
            + _c_uses(project, path)
            + own_uses(project, path)
            + command_uses(project, path)
        )
        if not found and index is not None:
            if by_module is None:
                by_module = _uses_by_module(project, index)
            module = index.module_of(path)
            if module is not None:
                found = _module_default(by_module.get(module, []))
                if not found and by_module.get(module):
                    found = _unnamed_default(project, index, module, by_module[module])
                if not by_module.get(module):
                    found = _inherited_default(project, module, by_module)
            else:
                if outside is None:  # the same for every such source: once per run
                    outside = _project_default(project, index, by_module)
                found = outside
        configured = forced or _configured(path, project)
        if configured:
            version = _version(project, configured, found)
            ordered = tuple(sorted(found, key=lambda u: u.kind != configured))
            out[path] = Assignment(configured, version, ordered, configured=True)
            continue
        if not found:
            continue
        kind = min((u.kind for u in found), key=_rank)
        ordered = tuple(sorted(found, key=lambda u: (_rank(u.kind), u.path)))
        out[path] = Assignment(kind, _version(project, kind, found), ordered)
    return out


def all_libbpf(project: Project) -> bool:
    """Whether every BPF source of the run is loaded through libbpf, known without linking a
    single one: no Go, Rust, Python or build-file loader was found, nothing is configured, and
    no C file uses eBPF for Windows. The C-only case (the Linux selftests, libbpf-tools) then
    skips the assignment on its hot path."""
    found = project.memo.get("all-libbpf")
    if found is None:
        scan = project.loader_scan
        found = (
            not project.config.loader
            and not project.config.loaders
            and (scan is None or not any(lf.uses for lf in scan.files))
            and not any(_windows(data) for data in project.files.values())
            and not _windows_api_header(project)
            and not _manifests_name_a_loader(project)
            and not own_loaders(project)
            and not _windows_platform_loaders(project)
        )
        project.memo["all-libbpf"] = found
    return found  # type: ignore[return-value]


def judged_as(project: Project, path: str) -> bool:
    """Whether libbpf's rules apply to `path`: its own loader is libbpf-family, or, for a
    header no loader names, one of the BPF sources that include it is."""
    if all_libbpf(project):
        return True
    found = assignment(project, path)
    if found is not ASSUMED or not path.endswith(".h"):
        return found.libbpf_family
    name = re.escape(os.path.basename(path).encode())
    include = re.compile(rb'#\s*include\s*[<"](?:[^">]*/)?' + name + rb'[">]')
    includers = [
        p for p in assignments(project)
        if p != path and include.search(project.files.get(p, b"")) is not None
    ]  # fmt: skip
    return not includers or any(assignment(project, p).libbpf_family for p in includers)


def module_uses(project: Project, path: str) -> list[LoaderUse]:
    """Every loader use in the Go module or crate `path` is in (empty: in none)."""
    scan = project.loader_scan
    if scan is None or not scan.manifests:
        return []
    index = _index(project)
    if index is None:
        return []
    by_module = project.memo.get("loader-module-uses")
    if by_module is None:
        by_module = project.memo["loader-module-uses"] = _uses_by_module(project, index)
    module = index.module_of(path)
    return [] if module is None else by_module.get(module, [])


def _uses_by_module(project: Project, index: _Index) -> dict[str | None, list[LoaderUse]]:
    """Every loader use of the project by the Go module or crate its file is in, C libbpf
    loader files included (as uses of kind libbpf)."""
    from secl.analysis.sections import _loader_index

    out: dict[str | None, list[LoaderUse]] = {}
    scan = project.loader_scan
    assert scan is not None
    for lf in scan.files:
        for use in lf.uses:
            out.setdefault(index.module_of(use.path), []).append(use)
    for loader in sorted({f for files in _loader_index(project).values() for f in files}):
        span = project.positions(loader).span(0, 0)
        if _windows_loader(project, project.files[loader]):
            use = LoaderUse(EBPF_FOR_WINDOWS, loader, span, _WINDOWS_VALUE, certain=False)
        else:
            value = f"{'C++' if is_cpp(loader) else 'C'} libbpf loader"
            use = LoaderUse(LIBBPF, loader, span, value, certain=False)
        out.setdefault(index.module_of(loader), []).append(use)
    for own in own_loaders(project).values():  # C loaders with an ELF reader of their own
        out.setdefault(index.module_of(own.path), []).append(
            loader_use(project, own, certain=False)
        )
    return out


def _module_default(uses: list[LoaderUse]) -> list[LoaderUse]:
    """For a BPF source no loader names, the loaders of its Go module or crate, if they are
    all of one library: a loader that reads its object from a buffer filled elsewhere
    (`NewModuleFromBufferArgs(args)` with the bytes from another package) still tells which
    library the module's objects are for. Kept as uncertain evidence.

    A BCC use whose C is known (`src_file` read, or the text written in the script) stands
    for nothing else: BCC compiles the C it is handed at run time and opens no object built
    elsewhere (bcc src/python/bcc/__init__.py `BPF.__init__`: the `src_file` read into
    `text`, then `lib.bpf_module_create_c_from_string(text, ...)`), so a script beside other
    sources says nothing about them."""
    kinds = {u.kind for u in uses}
    if BCC in kinds:
        uses = [u for u in uses if u.kind != BCC or not (u.sources or u.certain)]
        kinds = {u.kind for u in uses}
    if len(kinds) != 1:
        return []
    return [replace(u, certain=False) for u in uses[:4]]


def _unnamed_default(
    project: Project, index: _Index, module: str, uses: list[LoaderUse]
) -> list[LoaderUse]:
    """For a BPF source no loader names, in a module whose loaders use several libraries:
    those of its loaders that reach no source of the run (a run-time path, bytes from another
    package), if they are all of one library. A loader that opens a source of its own (a C
    skeleton loader, a bpf2go line) says nothing about the others."""
    memo = project.memo.setdefault("loader-unnamed-default", {})
    assert isinstance(memo, dict)
    found = memo.get(module)
    if found is None:
        unnamed = [
            u for u in uses
            if u.value not in _C_LOADER_VALUES and VALUE not in u.value and not index.links(u)
        ]  # fmt: skip
        found = memo[module] = _module_default(unnamed)
    return found


# The values of the uses _uses_by_module makes of C loader files, each linked to a source.
_C_LOADER_VALUES = frozenset({"C libbpf loader", "C++ libbpf loader"})


def _project_default(
    project: Project, index: _Index, by_module: dict[str | None, list[LoaderUse]]
) -> list[LoaderUse]:
    """For a BPF source no loader names and no go.mod or Cargo.toml is above: a GOPATH-era
    project (the repository is the package tree, `vendor/` beside it), or BPF C beside the
    module that loads it (`bpf/` next to `agent/go.mod`). The project's loaders that reach
    no source of the run (their object's name comes from elsewhere: a run-time path, a build
    that renames it) stand for it as a module's do, when they are all of one library and no
    loader of the project is libbpf itself (a C loader may well be the one that opens it).
    A loader that names its own source says nothing about the others; only Go loaders and C
    loaders with an ELF reader of their own count (their objects are found at run time or
    embedded; a script's BCC text is no evidence)."""
    uses = [u for found in by_module.values() for u in found]
    if any(u.kind == LIBBPF for u in uses):
        return []
    if not any(u.kind == EBPF_FOR_WINDOWS for u in uses):
        uses += _windows_loaders(project)
    # eBPF for Windows builds each program into a native image (`X.sys`, bpf2c) that its
    # loaders open by a name secl does not link: with no libbpf loader beside them, the
    # project's sources are theirs.
    kept = [
        u for u in uses
        if (u.path.endswith(".go") and not index.links(u)) or VALUE in u.value
        or u.kind == EBPF_FOR_WINDOWS
    ]  # fmt: skip
    return _module_default(sorted(kept, key=lambda u: u.path.endswith(".h")))  # code first


def _inherited_default(
    project: Project, module: str, by_module: dict[str | None, list[LoaderUse]]
) -> list[LoaderUse]:
    """For a BPF source no loader names, in a crate or Go module with no loader of its own
    (a workspace's integration tests, loaded through another crate of it): the uses of the
    project's crates it depends on by path and of the Go modules its go.mod replaces with a
    directory of the project (`replace example.com/lib => ../lib`), transitively, those of
    the member crates of a virtual workspace (a root Cargo.toml with no [package] has no code:
    its `bpf/` is loaded by a member), and its own manifest's direct dependencies on a loader
    library (as evidence of that library); like `_module_default`, only when they are all of
    one library, and uncertain."""
    memo = project.memo.setdefault("loader-inherited", {})
    assert isinstance(memo, dict)
    found = memo.get(module)
    if found is None:
        from secl.loaders.manifests import (
            cargo_path_dependencies,
            go_path_dependencies,
            virtual_workspace_member,
        )

        manifests = _manifests(project)
        root = os.path.abspath(project.root)
        workspace = manifests.cargo.get(module)
        members = (
            [
                m for m in sorted(d for d in by_module if d is not None)
                if virtual_workspace_member(workspace, module, m)  # type: ignore[arg-type]
            ]
            if workspace is not None and not workspace.is_package  # type: ignore[attr-defined]
            else []
        )  # fmt: skip
        uses = [
            u
            for crate in cargo_path_dependencies(manifests.cargo, module, root) + members
            for u in by_module.get(crate, [])
        ] + [
            u
            for dependency in go_path_dependencies(manifests.go, module, root)
            for u in by_module.get(dependency, [])
        ]
        found = memo[module] = _module_default(uses + manifests.evidence(module, root))
    return found


TYPE_CHECKING = False  # the loader scan's module is not needed to judge sources
if TYPE_CHECKING:
    from collections.abc import Callable

    from secl.loaders.discover import LoaderScan


def _manifests_name_a_loader(project: Project) -> bool:
    """Whether a Cargo.toml or go.mod of the project depends directly on a loader library:
    a crate or module with no loader code of its own may then be judged by it."""
    scan = project.loader_scan
    if scan is None or not scan.manifests:
        return False
    manifests = _manifests(project)
    root = os.path.abspath(project.root)
    return any(manifests.evidence(directory, root) for directory in sorted(scan.manifests))


class _Manifests:
    """The project's Cargo.toml and go.mod files by directory (secl.loaders.discover
    LoaderScan.manifest_data), each parsed when first asked."""

    def __init__(self, scan: LoaderScan | None) -> None:
        self._scan = scan
        # The scan, not this object: a child that held its parent would make a cycle.
        self.cargo = _CargoManifests(scan)
        self.go = _GoManifests(scan)
        self._evidence: dict[str, list[LoaderUse]] = {}

    def read(self, directory: str, name: str) -> tuple[str, bytes] | None:
        return _read_manifest(self._scan, directory, name)

    def evidence(self, directory: str, root: str) -> list[LoaderUse]:
        """Uncertain uses from the loader libraries the manifests of `directory` depend on
        directly (secl.loaders.manifests LOADER_CRATES, LOADER_MODULES)."""
        found = self._evidence.get(directory)
        if found is None:
            found = self._evidence[directory] = self._read_evidence(directory, root)
        return found

    def _read_evidence(self, directory: str, root: str) -> list[LoaderUse]:
        from secl.loaders.manifests import (
            cargo_loader_dependencies,
            dependency_offset,
            go_loader_requires,
            may_name_a_loader,
        )
        from secl.parse.tree import Positions

        out: list[LoaderUse] = []
        for name, go in (("Cargo.toml", False), ("go.mod", True)):
            found = self.read(directory, name)
            if found is None or not may_name_a_loader(found[1], go):
                continue
            path, data = found
            if go:
                named = go_loader_requires(data)
            else:
                named = cargo_loader_dependencies(self.cargo, directory, root)
            for dependency, kind in named:
                at = dependency_offset(data, dependency, go)
                end = data.find(b"\n", at)
                span = Positions(data).span(at, len(data) if end < 0 else end)
                verb = "requires" if go else "depends on"
                out.append(
                    LoaderUse(kind, path, span, f"{name} {verb} {dependency}", certain=False)
                )
        return out


def _read_manifest(scan: LoaderScan | None, directory: str, name: str) -> tuple[str, bytes] | None:
    """(the path as the run shows paths, bytes) of manifest `name` in `directory`."""
    data = scan.manifest_data(directory, name) if scan is not None else None
    if data is None:
        return None
    path = os.path.join(directory, name)
    rel = os.path.relpath(path)  # as secl.api shows a path: relative inside the cwd
    return (path if rel.startswith("..") else rel), data


class _CargoManifests:
    """Parsed Cargo.toml files by absolute directory (the mapping the functions of
    secl.loaders.manifests read), each parsed on first access."""

    def __init__(self, scan: LoaderScan | None) -> None:
        self._scan = scan
        self._parsed: dict[str, object] = {}

    def get(self, directory: str) -> object:
        if directory not in self._parsed:
            from secl.loaders.manifests import cargo_manifest

            found = _read_manifest(self._scan, directory, "Cargo.toml")
            self._parsed[directory] = None if found is None else cargo_manifest(found[1])
        return self._parsed[directory]

    def __getitem__(self, directory: str) -> object:
        found = self.get(directory)
        if found is None:
            raise KeyError(directory)
        return found

    def __contains__(self, directory: object) -> bool:
        return isinstance(directory, str) and self.get(directory) is not None


class _GoManifests:
    """go.mod bytes by absolute directory (what secl.loaders.manifests.go_path_dependencies
    reads), each read on first access."""

    def __init__(self, scan: LoaderScan | None) -> None:
        self._scan = scan

    def get(self, directory: str) -> bytes | None:
        found = _read_manifest(self._scan, directory, "go.mod")
        return None if found is None else found[1]

    def __contains__(self, directory: object) -> bool:
        return isinstance(directory, str) and self.get(directory) is not None


def _manifests(project: Project) -> _Manifests:
    found = project.memo.get("loader-manifests")
    if found is None:
        found = project.memo["loader-manifests"] = _Manifests(project.loader_scan)
    return found  # type: ignore[return-value]


def _closest(
    path: str, links: list[tuple[LoaderUse, bool]], index: _Index | None = None
) -> list[LoaderUse]:
    """The uses that reach a source by path; with none, of those that reach it only by a name
    (an object or skeleton name other sources may share), the ones nearest to it in the tree."""
    exact = [u for u, by_path in links if by_path]
    if exact or not links:
        return exact
    # The index knows the directories (each an abspath, which asks for the cwd).
    directory = index._directory if index is not None else _directory_of
    loader_dir = index._here if index is not None else _directory_of
    here = directory(path)
    # One prefix length per use (not one for the maximum and one more for the filter).
    shared = [len(os.path.commonpath([here, loader_dir(u.path)])) for u, _ in links]
    best = max(shared)
    return [u for (u, _), size in zip(links, shared, strict=True) if size == best]


def _directory_of(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def _rank(kind: str) -> int:
    return PRIORITY.index(kind) if kind in PRIORITY else len(PRIORITY)


def _configured(path: str, project: Project) -> str | None:
    """The kind `loaders` in the configuration gives this source (the last matching glob
    wins, as in a table read top to bottom)."""
    table = project.config.loaders
    if not table:
        return None
    rel = os.path.relpath(os.path.abspath(path), project.config.root).replace(os.sep, "/")
    kind = None
    for pattern, value in table.items():
        if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(os.path.basename(path), pattern):
            kind = value
    return kind


def _version(project: Project, kind: str, uses: list[LoaderUse]) -> str | None:
    scan = project.loader_scan
    names = PACKAGES.get(kind)
    if scan is None or not names:
        return None
    # One look-up per loader file and library, not one per source each of its uses reaches.
    known = project.memo.setdefault("loader-versions", {})
    assert isinstance(known, dict)
    for use in uses:
        if use.kind == kind:
            key = (use.path, names)
            if key not in known:
                known[key] = scan.version(use.path, names)
            version = known[key]
            if version:
                # go.mod's `v0.8.0 (replaced by ../fork)` reads as the required version
                return version.split()[0]
    return None


def _c_uses(project: Project, path: str) -> list[LoaderUse]:
    """C libbpf loaders of `path` (skeleton or object name), as uses with the first line
    that names it."""
    from secl.analysis.sections import loaders_of

    out = []
    base = stem(path)
    skeletons = sorted(skeleton_names(path, project.config))
    names = [n + "__" for n in skeletons] + [f"{base}.bpf.o", f"{base}.o"]
    for loader in loaders_of(project, path):
        data = project.files[loader]
        cpp = is_cpp(loader)
        shown = names + [n + "::open" for n in skeletons] if cpp else names
        at = min((i for n in shown if (i := data.find(n.encode())) >= 0), default=0)
        end = data.find(b"\n", at)
        span = project.positions(loader).span(at, at if end < 0 else end)
        if _windows_loader(project, data):
            out.append(LoaderUse(EBPF_FOR_WINDOWS, loader, span, _WINDOWS_VALUE))
        else:
            out.append(LoaderUse(LIBBPF, loader, span, f"{'C++' if cpp else 'C'} libbpf loader"))
    return out


# eBPF for Windows offers libbpf's API from its own ebpfapi: its loaders include its headers
# or call its own functions (ebpf-for-windows include/ebpf_api.h). Whole names of its
# `ebpf_object_*` functions: projects name helpers of their own `ebpf_object_...` too.
_WINDOWS_MARKS = (
    b"ebpf_api.h",
    b"ebpf_program_attach",
    b"ebpf_object_get_execution_type",
    b"ebpf_object_set_execution_type",
    b"ebpf_object_get_info_by_fd",
    b"ebpf_object_unpin",
    b"ebpf_store_",
    # how a program runs (JIT, interpreter, native image): include/ebpf_execution_type.h's
    # ebpf_execution_type_t, named by the tests that load each sample every way
    b"ebpf_execution_type",
    b"ebpf_fd_invalid",  # include/ebpf_api.h: the invalid fd_t
)
_WINDOWS_VALUE = "eBPF for Windows loader"
# Windows SDK headers. libbpf builds for Linux only: a loader that includes one of them and
# calls libbpf's API calls eBPF for Windows' (its ebpfapi offers libbpf's names there).
_WINDOWS_PLATFORM = re.compile(rb"#\s*include\s*[<\"](?i:windows|winsock2|ntddndis)\.h[>\"]")


def _windows_loader(project: Project, data: bytes) -> bool:
    """Whether a C loader file uses eBPF for Windows' API (libbpf's names, its library): it
    names that API, is written for Windows, or the project holds eBPF for Windows' own API
    header (ebpf-for-windows include/ebpf_api.h), so its `bpf/libbpf.h` is the one that API
    ships, not libbpf's."""
    return (
        any(mark in data for mark in _WINDOWS_MARKS)
        or _windows_api_header(project)
        or _for_windows_only(data)
    )


def _for_windows_only(data: bytes) -> bool:
    """Whether a file includes a Windows SDK header outside any `#if`: one that includes it
    under `#ifdef _WIN32` builds for Linux too, where libbpf is the library."""
    for m in _WINDOWS_PLATFORM.finditer(data):
        before = data[: m.start()]
        opened = len(re.findall(rb"(?m)^[ \t]*#[ \t]*if", before))
        if opened == len(re.findall(rb"(?m)^[ \t]*#[ \t]*endif", before)):
            return True
    return False


def _windows_platform_loaders(project: Project) -> bool:
    """Whether a C loader file of the project (one that opens an object it names: the index
    the section rules build anyway) is written for Windows (_WINDOWS_PLATFORM)."""
    from secl.analysis.sections import _loader_index

    loaders = {f for files in _loader_index(project).values() for f in files}
    return any(_for_windows_only(project.files[f]) for f in sorted(loaders))


def _windows_loaders(project: Project) -> list[LoaderUse]:
    """The project's files that use eBPF for Windows' API, as uncertain uses (asked only for
    a source no loader names: a Windows loader opens the native image `X.sys` bpf2c makes
    of it, or a path it builds at run time)."""
    found = project.memo.get("windows-loaders")
    if found is None:
        found = project.memo["windows-loaders"] = [
            LoaderUse(
                EBPF_FOR_WINDOWS, path, project.positions(path).span(0, 0), _WINDOWS_VALUE,
                certain=False,
            )
            for path, data in sorted(project.files.items())
            if _windows(data)
        ]  # fmt: skip
    return found  # type: ignore[return-value]


def _windows_api_header(project: Project) -> bool:
    """Whether the project holds eBPF for Windows' API header (see _windows_loader)."""
    found = project.memo.get("windows-api-header")
    if found is None:
        found = project.memo["windows-api-header"] = any(
            p.endswith("ebpf_api.h") and os.path.basename(p) == "ebpf_api.h" for p in project.files
        )
    return found  # type: ignore[return-value]


def _windows(data: bytes) -> bool:
    """Whether `data` uses eBPF for Windows' API. Every mark holds `ebpf_`: one search, not
    four; none for a huge header without a function body (no loader code: has_body)."""
    return has_body(data) and b"ebpf_" in data and any(mark in data for mark in _WINDOWS_MARKS)


class _Index:
    """BPF sources by absolute path, base name and stem, to link uses to."""

    def __init__(
        self,
        root: str,
        sources: list[str],
        files: list,
        config: object,
        modules: frozenset[str] = frozenset(),
        objects: dict[str, str] | None = None,
        is_crate: Callable[[str], bool] | None = None,
        absolute: Callable[[str], str] = os.path.abspath,
    ) -> None:
        self._root = root
        self._abs = absolute
        self._is_crate = is_crate or (lambda _directory: False)
        self._objects = objects or {}  # compiled objects (absolute) -> what stands for them
        self._modules = modules  # directories holding a go.mod, Cargo.toml or Cargo.lock
        self._module_cache: dict[str, str | None] = {}
        self._loader_dirs: dict[str, str] = {}
        self._absolute = {absolute(p): p for p in sources}
        # modules with loader code of their own (Go, Rust, Python or build files)
        self._loader_modules = {
            self._module_of(self._here(u.path)) for lf in files for u in lf.uses
        }
        self._dir_of = {p: os.path.dirname(a) for a, p in self._absolute.items()}
        self._source_modules: dict[str, str | None] = {}  # a source -> its module, on first ask
        # id(use) -> (use, what it links to): asked by the assignment and by named sources
        self._groups: dict[int, tuple[list[str], dict]] = {}  # see _module_groups
        self._above: dict[str, list[str]] = {}  # see _enclosing
        self._links: dict[int, tuple[LoaderUse, dict[str, bool]]] = {}
        self._by_name: dict[str, list[str]] = {}
        self._by_stem: dict[str, list[str]] = {}
        for p in sources:
            self._by_name.setdefault(os.path.basename(p), []).append(p)
            for name in skeleton_names(p, config):  # type: ignore[arg-type]
                self._by_stem.setdefault(name, []).append(p)
        # bpf2go identifier (and output stem) -> the sources its go:generate line names, per
        # directory the generated files are written to: an identifier is a name in one Go
        # package (cmd/bpf2go writes `<stem>_<target>.go/.o` and `load<Ident>()` into the
        # package directory, or -output-dir), and many packages reuse `bpf`.
        self._idents: dict[str, set[str]] = {}
        self._ident_dirs: dict[tuple[str, str], set[str]] = {}
        for lf in files:
            for use in lf.uses:
                if use.idents and use.sources:
                    linked = {p for s in use.sources for p in self.source(use, s)}
                    here = self._here(use.path)
                    homes = {here} | {
                        os.path.dirname(os.path.normpath(os.path.join(here, o)))
                        for o in use.objects
                    }
                    for ident in use.idents:
                        for name in (ident, ident.lower()):
                            self._idents.setdefault(name, set()).update(linked)
                            for home in homes:
                                self._ident_dirs.setdefault((home, name), set()).update(linked)
        self._ident_homes: dict[str, set[str]] = {}
        for home, name in self._ident_dirs:
            self._ident_homes.setdefault(name, set()).add(home)
        # (module, skeleton or object name) -> what a build use of that module makes it from
        # (SkeletonBuilder::source, bpf2go), whether or not that source is in this run
        self._produced: dict[tuple[str | None, str], set[str]] = {}
        self._produced_at: dict[str, set[str]] = {}  # the same, by the object's own path
        for lf in files:
            for use in lf.uses:
                if use.sources and (use.skeletons or use.objects):
                    module = self._module_of(self._here(use.path))
                    made = {self._written(use, s) for s in use.sources}
                    for name in use.skeletons + use.objects:
                        self._produced.setdefault((module, name), set()).update(made)
                    for name in use.objects:  # bpf2go writes them beside its go:generate line
                        at = os.path.normpath(os.path.join(self._here(use.path), name))
                        self._produced_at.setdefault(at, set()).update(made)

    def _here(self, path: str) -> str:
        """The absolute directory of a loader file (asked for every use it links)."""
        found = self._loader_dirs.get(path)
        if found is None:
            found = self._loader_dirs[path] = os.path.dirname(self._abs(path))
        return found

    def _directory(self, path: str) -> str:
        known = self._dir_of.get(path)
        return known if known is not None else os.path.dirname(self._abs(path))

    def module_of(self, path: str) -> str | None:
        """The Go module or crate directory `path` is in (None: none)."""
        return self._module_of(os.path.dirname(self._abs(path)))

    def _module_of(self, directory: str) -> str | None:
        known = self._module_cache.get(directory, False)
        if known is not False:
            return known  # type: ignore[return-value]
        found: str | None = None
        probe = directory
        while True:
            if probe in self._modules:
                found = probe
                break
            parent = os.path.dirname(probe)
            if parent == probe:
                break
            probe = parent
        self._module_cache[directory] = found
        return found

    def sources_of(self, use: LoaderUse) -> list[str]:
        return sorted(self.links(use))

    def links(self, use: LoaderUse) -> dict[str, bool]:
        """The sources `use` reaches -> whether by path (exact: a source path, a bpf2go
        identifier, a name this module's build makes from a source) or only by a name that
        sources elsewhere may share. Found once per use (the mapping is not to be changed)."""
        known = self._links.get(id(use))
        if known is not None and known[0] is use:
            return known[1]
        found = self._find_links(use)
        self._links[id(use)] = (use, found)
        return found

    def _find_links(self, use: LoaderUse) -> dict[str, bool]:
        found: dict[str, bool] = {}
        if self._objects:
            # An object file of the run that the use names by its path (bpf2go's outputs,
            # an embedded or opened object) is exactly that object.
            here = self._here(use.path)
            for name in use.objects:
                alias = self._objects.get(os.path.normpath(os.path.join(here, name)))
                if alias is not None:
                    found[alias] = True
        for source in use.sources:
            found.update(dict.fromkeys(self.source(use, source), True))
        for ident in use.idents:
            found.update(dict.fromkeys(self._ident_sources(use, ident), True))
        if use.sources:
            # The object and skeleton names of a use that names its sources are what those
            # sources build (SkeletonBuilder, bpf2go): not other sources of the same name.
            return found
        module = self._module_of(self._here(use.path))
        for name in use.objects + use.skeletons:
            made = (
                self._produced_at.get(os.path.normpath(os.path.join(self._here(use.path), name)))
                if name in use.objects
                else None
            )
            made = (
                made
                or self._produced.get((module, name))
                or self._produced.get((module, os.path.basename(name)))
            )
            if made is not None:
                # this module's build says what the name is made from: that, or nothing
                found.update(
                    dict.fromkeys((self._absolute[p] for p in made if p in self._absolute), True)
                )
            else:
                fuzzy = (
                    self._object(use, name)
                    if name in use.objects
                    else self._near(use, self._by_stem.get(name, []))
                )
                beside = self._beside(use, name) if name in use.objects else ()
                for path in fuzzy:
                    found.setdefault(path, path in beside)
        return found

    def _beside(self, use: LoaderUse, obj: str) -> tuple[str, ...]:
        """The sources of the object's stem in the very directory its path as written names,
        read from the loader's directory (`NewModuleFromFile("probe.bpf.o")` beside
        `probe.bpf.c`): the object built there, as sure as a source path, not a namesake."""
        at = os.path.dirname(os.path.normpath(os.path.join(self._here(use.path), obj)))
        return tuple(p for p in self._object(use, obj) if self._directory(p) == at)

    def _ident_sources(self, use: LoaderUse, ident: str) -> set[str]:
        """The sources bpf2go identifier `ident` is generated from, as `use` sees it: those
        of its own directory's go:generate lines; with none there, those of the one directory
        that has the identifier, if only one does (a generated file copied elsewhere)."""
        found = self._ident_dirs.get((self._here(use.path), ident))
        if found is not None:
            return found
        homes = self._ident_homes.get(ident, ())
        return self._idents.get(ident, set()) if len(homes) == 1 else set()

    def _written(self, use: LoaderUse, source: str) -> str:
        """The absolute path a source path as written means (relative to the file)."""
        return os.path.normpath(os.path.join(self._here(use.path), source))

    def source(self, use: LoaderUse, source: str) -> list[str]:
        """A source path as written: relative to the file that names it, else to the root;
        else by base name when one source of the project has it."""
        base_dir = self._here(use.path)
        for directory in (base_dir, self._root):
            written = os.path.normpath(os.path.join(directory, source))
            hit = self._absolute.get(written)
            if hit is not None:
                return [hit]
            if os.path.exists(written):
                return []  # a file outside this run, not a namesake of one in it
        return self._near(use, self._by_name.get(os.path.basename(source), []))

    def _object(self, use: LoaderUse, obj: str) -> list[str]:
        name = os.path.basename(obj)
        m = _BPF2GO_OBJECT.match(name)
        if m is not None and m.group(1) in self._idents:
            return sorted(self._ident_sources(use, m.group(1)))
        # (`.elf`: what aws-ebpf-sdk-go's users name their objects, `x.bpf.elf`)
        for suffix in (".bpf.o", ".o", ".bpf.elf", ".elf"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        # the stems are kept as skeleton names (secl.pairing.skeleton_names: `\W` -> `_`):
        # `straceback-main-bpf.o` is built from `straceback-main-bpf.c`
        return self._near(use, self._by_stem.get(re.sub(r"\W", "_", name), []))

    def _module_groups(self, candidates: list[str]) -> dict[str | None, list[tuple[int, str]]]:
        """The candidates of one name by the module each is in, with their positions: a
        name many sources share (`main` in a tree of examples) is asked for by every loader
        that opens one of them."""
        known = self._groups.get(id(candidates))
        if known is not None and known[0] is candidates:
            return known[1]
        groups: dict[str | None, list[tuple[int, str]]] = {}
        for i, p in enumerate(candidates):
            theirs = self._source_modules.get(p, False)
            if theirs is False:
                theirs = self._source_modules[p] = self._module_of(self._directory(p))
            groups.setdefault(theirs, []).append((i, p))  # type: ignore[arg-type]
        self._groups[id(candidates)] = (candidates, groups)  # holds the list: its id stays
        return groups

    def _enclosing(self, module: str) -> list[str]:
        """`module` and the directories above it that a module enclosing it would be."""
        found = self._above.get(module)
        if found is None:
            found = self._above[module] = []
            probe = module
            while True:
                if probe == module or module.startswith(probe + os.sep):
                    found.append(probe)
                parent = os.path.dirname(probe)
                if parent == probe:
                    break
                probe = parent
        return found

    def _near(self, use: LoaderUse, candidates: list[str]) -> list[str]:
        """Of the sources a name may mean, those in the loader's own Go module or crate (the
        nearest directory with go.mod or Cargo.toml) when there are any; of several, those
        sharing the longest directory prefix with the file that names them (a project with
        `a/probe.bpf.c` and `b/probe.bpf.c` and a loader in `b/`)."""
        here = self._here(use.path)
        module = self._module_of(here)
        if module is not None:
            # A source inside another module is that module's (a monorepo of crates); one in
            # no module, or in an enclosing one (a workspace), may be this loader's, and so
            # may one in a Go module without loader code (`bpf/go.mod` written only to keep
            # the go tool out of a directory of C); a crate's are its own or its path
            # dependencies' (_inherited_default). In the candidates' order.
            groups = self._module_groups(candidates)
            enclosing = self._enclosing(module)
            kept = list(groups.get(None, ()))
            for above in enclosing:
                kept += groups.get(above, ())
            for theirs, members in groups.items():
                if (
                    theirs is not None
                    and theirs not in enclosing
                    and theirs not in self._loader_modules
                    and not self._is_crate(theirs)
                ):
                    kept += members
            candidates = [p for _, p in sorted(kept)]
        if len(candidates) <= 1:
            return list(candidates)
        shared = [len(os.path.commonpath([here, self._directory(p)])) for p in candidates]
        best = max(shared)
        return [p for p, size in zip(candidates, shared, strict=True) if size == best]
