"""Find the user-space code of other languages (Go, Rust, Python) and the build files that
open a project's BPF objects, and the library versions their manifests pin.

C loaders are read by secl.parse.loader as part of the C files of the run; this module reads
only what C analysis never sees. Each file is tested with a bytes prefilter first: a Go, Rust
or Python file is parsed only if it names one of the libraries. Vendored code (`vendor/`,
`third_party/`, ...) is skipped: its loaders open its own objects, not the project's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from secl.files import SKIP_DIRS, Exclusion, _read_bounded, link_kept
from secl.loaders import PACKAGES, FileLoaders

VENDOR_DIRS = frozenset({"vendor", "third_party", "third-party", "3rdparty", "external"})
LANGUAGE_SUFFIXES = (".go", ".rs", ".py")
BUILD_FILES = frozenset({"Makefile", "makefile", "GNUmakefile", "CMakeLists.txt", "meson.build"})
BUILD_SUFFIXES = (".mk", ".cmake")
MANIFESTS = frozenset({"go.mod", "Cargo.lock", "Cargo.toml"})
# Past this size a file is generated data, not loader code worth parsing.
MAX_LOADER_BYTES = 8 * 1024 * 1024


@dataclass(slots=True)
class LoaderScan:
    """What the user-space files of other languages say, and the versions manifests pin."""

    files: list[FileLoaders] = field(default_factory=list)
    # Cargo.toml and go.mod bytes by absolute path, read when first asked (manifest_data)
    _manifest_data: dict[str, bytes | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # directory of a manifest -> {module or crate name: version}
    manifests: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, one line)
    # (directory, names) -> version: asked for every use of every source's loaders
    _versions: dict[tuple[str, tuple[str, ...]], str | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def manifest_data(self, directory: str, name: str) -> bytes | None:
        """The bytes of manifest `name` (Cargo.toml, go.mod) in `directory` (absolute), one of
        the directories the scan found manifests in; None when there is none. Read on first
        use, not by the scan: only a crate or module with no loader code of its own needs its
        dependencies (secl.loaders.manifests), and the scan's results (cached) stay as they
        are."""
        if directory not in self.manifests:
            return None
        path = os.path.join(directory, name)
        if path not in self._manifest_data:
            self._manifest_data[path] = read_candidate(path)
        return self._manifest_data[path]

    def version(self, path: str, names: tuple[str, ...]) -> str | None:
        """The version of the first of `names` pinned by the nearest manifest above `path`."""
        # A relative path is relative to the current directory: the memo keys it with it.
        where = os.path.dirname(path)
        key = (where if os.path.isabs(path) else os.getcwd() + os.sep + where, names)
        if key not in self._versions:
            self._versions[key] = self._version(os.path.dirname(os.path.abspath(path)), names)
        return self._versions[key]

    def _version(self, directory: str, names: tuple[str, ...]) -> str | None:
        while True:
            pinned = self.manifests.get(directory)
            if pinned:
                for name in names:
                    if name in pinned:
                        return pinned[name]
            parent = os.path.dirname(directory)
            if parent == directory:
                return None
            directory = parent


def is_candidate(name: str) -> bool:
    """Whether a file of this name may open BPF objects or pin a library version."""
    return (
        name.endswith(LANGUAGE_SUFFIXES)
        or name in BUILD_FILES
        or name.endswith(BUILD_SUFFIXES)
        or name in MANIFESTS
    )


def walk(root: str, exclude: tuple[str, ...]) -> Iterator[str]:
    """Candidate files under `root`, sorted, skipping vendored and excluded directories
    (exclude patterns relative to `root`, the project root, as for the C files)."""
    excluded = Exclusion(exclude, root)
    real_root = os.path.realpath(root)
    seen: set[tuple[int, int]] = set()
    stack = [(root, "")]  # (directory as reached, its path relative to the root)
    while stack:
        directory, relative = stack.pop()
        try:
            st = os.stat(directory)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue  # the C walk reports unreadable directories
        subdirs = []
        for entry in entries:
            path = entry.path if directory != "." else entry.name
            rel = f"{relative}/{entry.name}" if relative else entry.name
            if excluded and excluded(path, rel):
                continue
            try:
                if entry.is_dir():
                    if entry.name in SKIP_DIRS or entry.name in VENDOR_DIRS:
                        continue
                    if not entry.is_symlink() or link_kept(entry.path, directory, real_root):
                        subdirs.append((path, rel))
                    continue
                if not is_candidate(entry.name) or not entry.is_file():
                    continue  # FIFOs, sockets, devices are never read
            except OSError:
                continue
            yield path
        stack.extend(reversed(subdirs))


def read_candidate(path: str) -> bytes | None:
    """A candidate's bytes; None for what is too large, unreadable or binary. Read as
    secl.files reads sources: one read of the size fstat gives (a read of the size limit
    would allocate 8 MB per file, which costs more than the read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        data = None if size > MAX_LOADER_BYTES else _read_bounded(fd, size, MAX_LOADER_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)
    return None if data is None or data.find(b"\0", 0, 8192) >= 0 else data


_read = read_candidate


def scan(paths: list[str]) -> LoaderScan:
    """Read the given candidate files (see `walk`): every file and its prefilter first, then
    the few worth reading as code one after the other (the readers' code and data stay in
    the processor's caches; the reads of a dozen other files between two evict them)."""
    results: list[tuple[str, object]] = []
    code: list[tuple[int, str, str, bytes]] = []
    for path in paths:
        data = read_candidate(path)
        if data is None:
            continue
        name = os.path.basename(path)
        if name in MANIFESTS:
            results.append((path, extract_one(path, data)))
            continue
        try:
            wanted = _wanted(name, data)
        except Exception as err:  # one bad file never stops the run
            results.append((path, _problem(err)))
            continue
        if wanted:
            code.append((len(results), path, name, data))
        results.append((path, None))
    for i, path, name, data in code:
        try:
            results[i] = (path, _read_code(path, name, data))
        except Exception as err:  # one bad file never stops the run
            results[i] = (path, _problem(err))
    return assemble(results)


def extract_one(path: str, data: bytes) -> object:
    """What one candidate file says: ("manifest", name, {module: version}), ("problem",
    line), a FileLoaders, or None. A pure function of the path and bytes (the results cache
    keeps it)."""
    name = os.path.basename(path)
    try:
        if name in MANIFESTS:
            return ("manifest", name, _versions(name, data))
        return _read_code(path, name, data) if _wanted(name, data) else None
    except Exception as err:  # one bad file never stops the run
        return _problem(err)


def _problem(err: Exception) -> tuple[str, str]:
    return ("problem", f"could not read loader code ({err!r}), skipped")


def assemble(results: list[tuple[str, object]]) -> LoaderScan:
    """The scan of the candidates' results (`extract_one`), in the walk's order."""
    out = LoaderScan()
    for path, found in results:
        if found is None:
            continue
        if isinstance(found, tuple):
            if found[0] == "problem":
                out.problems.append((path, found[1]))
                continue
            _kind, name, pinned = found
            directory = os.path.dirname(os.path.abspath(path))
            known = out.manifests.setdefault(directory, {})
            for key, version in pinned.items():
                # Cargo.lock's resolved version beats Cargo.toml's requirement.
                if name != "Cargo.toml" or key not in known:
                    known[key] = version
            continue
        if found.problem:
            out.problems.append((path, found.problem))
        if found.uses or (found.facts is not None and found.facts.facts) or found.wants_package:
            out.files.append(found)
    if any(f.wants_package for f in out.files):
        # Go loader calls whose values come from the rest of their package or module.
        from secl.loaders import golang

        golang.refine_packages(out.files, read_candidate)
        out.files = [f for f in out.files if f.uses or (f.facts is not None and f.facts.facts)]
    return out


def _wanted(name: str, data: bytes) -> bool:
    """Whether a candidate that is not a manifest is worth reading as code: its language's
    byte prefilter."""
    return _language(name)[0](data)


def _read_code(path: str, name: str, data: bytes) -> FileLoaders | None:
    """What a candidate `_wanted` keeps says, read by its language's reader."""
    return _language(name)[1](path, data)


def _language(
    name: str,
) -> tuple[Callable[[bytes], bool], Callable[[str, bytes], FileLoaders | None]]:
    """(byte prefilter, reader) of a loader candidate by its name: Go, Rust, Python, else a
    build file (each module imported on first use)."""
    if name.endswith(".go"):
        from secl.loaders import golang

        return golang.is_go_loader, golang.extract_go
    if name.endswith(".rs"):
        from secl.loaders import rust

        return rust.is_rust_loader, rust.extract_rust
    if name.endswith(".py"):
        from secl.loaders import python

        return python.is_python_loader, python.extract_python
    from secl.loaders import build

    return build.is_build_loader, build.extract_build


# Every package a version is ever asked for (PACKAGES), as bytes.
_PACKAGE_NAMES = tuple(dict.fromkeys(n.encode() for names in PACKAGES.values() for n in names))


def _names_a_package(data: bytes) -> bool:
    """Whether a manifest may pin a package of PACKAGES: it names one as written (go.mod's
    reader takes quoted paths as they are, TOML's escapes send the file to the parser). One
    that names none pins nothing `LoaderScan.version` asks for, and is not worth reading (a
    large module's go.mod has hundreds of requirements, a pure-Python TOML parse ~1 ms per
    10 KB)."""
    return b"\\u" in data or b"\\U" in data or any(n in data for n in _PACKAGE_NAMES)


def _versions(name: str, data: bytes) -> dict[str, str]:
    if not _names_a_package(data):
        return {}
    if name == "go.mod":
        from secl.loaders.golang import go_mod_versions

        return go_mod_versions(data)
    if name == "Cargo.lock":
        from secl.loaders.rust import cargo_lock_versions

        return cargo_lock_versions(data)
    from secl.loaders.rust import cargo_toml_versions

    return cargo_toml_versions(data)
