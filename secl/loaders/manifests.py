"""What a crate's Cargo.toml or a Go module's go.mod says about its dependencies: the crates of
the project it depends on by path (whose loaders load its objects when it has none of its
own), and the loader libraries it depends on directly.

Pure functions of manifest bytes; secl.analysis.loaders decides what they are evidence of.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass

from secl.loaders import AYA, CILIUM, GOBPF, LIBBPF_RS, LIBBPFGO, OTHER

# Crates whose direct dependency says which library a crate loads its objects with
# (libbpf-cargo builds libbpf-rs skeletons: a build-dependency).
# redbpf reads objects with its own ELF parser (secl.loaders.rust `_redbpf`): `other`.
LOADER_CRATES = {"aya": AYA, "libbpf-rs": LIBBPF_RS, "libbpf-cargo": LIBBPF_RS, "redbpf": OTHER}
# Go modules, the same: cilium/ebpf, libbpfgo, gobpf, and ebpf-manager (its names and forks, and
# DataDog's cilium/ebpf fork that held its first manager package), which loads with
# cilium/ebpf (secl.loaders.golang EBPF_MANAGER_MODULES).
LOADER_MODULES = {
    "github.com/cilium/ebpf": CILIUM,
    "github.com/aquasecurity/libbpfgo": LIBBPFGO,
    "github.com/DataDog/ebpf-manager": CILIUM,
    "github.com/gojue/ebpfmanager": CILIUM,
    "github.com/ehids/ebpfmanager": CILIUM,
    "github.com/DataDog/ebpf": CILIUM,
    # gobpf (its elf and bcc packages): neither reads names by libbpf's table.
    "github.com/iovisor/gobpf": GOBPF,
    # dropbox/goebpf reads objects with an ELF reader of its own (loader.go LoadElf()).
    "github.com/dropbox/goebpf": OTHER,
}

_DEPENDENCY_TABLES = ("dependencies", "dev-dependencies", "build-dependencies")
# What a manifest that depends on a loader library must contain: the name, or for Cargo an
# inherited entry (`workspace = true`, the name then in the workspace root).
_CARGO_HINTS = (*(n.encode() for n in LOADER_CRATES), b"workspace")
_GO_HINTS = tuple(m.encode() for m in LOADER_MODULES)


def may_name_a_loader(data: bytes, go: bool) -> bool:
    """A bytes test before a manifest is parsed for its loader dependencies."""
    return any(hint in data for hint in (_GO_HINTS if go else _CARGO_HINTS))


@dataclass(frozen=True, slots=True)
class CargoDependency:
    """One entry of a dependency table: `alias = "1"`, `alias = { path = "..." }`,
    `alias = { workspace = true }` (or `alias.workspace = true`)."""

    alias: str  # the key as written
    package: str  # the crate's own name: `package = "..."` when renamed, else the key
    path: str | None  # `path`, relative to the manifest that declares it
    workspace: bool  # inherited from the workspace's [workspace.dependencies]


@dataclass(frozen=True, slots=True)
class CargoManifest:
    dependencies: tuple[CargoDependency, ...]  # every table: normal, dev, build, [target.*]
    workspace_dependencies: dict[str, CargoDependency]  # [workspace.dependencies] by alias
    is_workspace: bool  # has a [workspace] table: the root of the crates below it
    workspace_path: str | None  # `package.workspace`: the root named explicitly
    # A workspace root with no [package] (a virtual manifest) is no crate: no code of its own.
    is_package: bool = True
    members: tuple[str, ...] = ()  # [workspace].members, as written (globs allowed)
    exclude: tuple[str, ...] = ()  # [workspace].exclude


def cargo_manifest(data: bytes) -> CargoManifest:
    """A Cargo.toml's dependencies, as Cargo reads them (cargo/util/toml: every dependency
    table, `[target.'cfg(..)'.*]` included; `workspace = true` inherits the workspace root's
    entry of the same key). A manifest that does not parse declares nothing."""
    from secl.loaders.rust import _toml

    parsed = _toml(data)
    tables: list[dict] = []
    for key in _DEPENDENCY_TABLES:
        if isinstance(parsed.get(key), dict):
            tables.append(parsed[key])
    targets = parsed.get("target")
    for target in targets.values() if isinstance(targets, dict) else ():
        if isinstance(target, dict):
            tables += [target[k] for k in _DEPENDENCY_TABLES if isinstance(target.get(k), dict)]
    dependencies = tuple(d for table in tables for d in _entries(table))
    workspace = parsed.get("workspace")
    inherited: dict[str, CargoDependency] = {}
    if isinstance(workspace, dict) and isinstance(workspace.get("dependencies"), dict):
        inherited = {d.alias: d for d in _entries(workspace["dependencies"])}
    package = parsed.get("package")
    root = package.get("workspace") if isinstance(package, dict) else None
    members: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    if isinstance(workspace, dict):
        members = _strings(workspace.get("members"))
        exclude = _strings(workspace.get("exclude"))
    return CargoManifest(
        dependencies=dependencies,
        workspace_dependencies=inherited,
        is_workspace=isinstance(workspace, dict),
        workspace_path=root if isinstance(root, str) else None,
        is_package=isinstance(package, dict),
        members=members,
        exclude=exclude,
    )


def _strings(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def virtual_workspace_member(manifest: CargoManifest, workspace: str, directory: str) -> bool:
    """Whether crate `directory` (absolute) is a member of the virtual workspace `workspace`
    (its Cargo.toml has [workspace] and no [package]: a manifest with no code, whose BPF
    sources only its members can load). Cargo (core/workspace.rs: find_members,
    expand_member_paths, is_excluded): each `members` entry is a path or a glob relative to
    the root, and a path under an `exclude` entry is not a member."""
    if manifest.is_package or not manifest.is_workspace:
        return False
    rel = os.path.relpath(directory, workspace)
    if rel.startswith(os.pardir) or rel == os.curdir:
        return False
    rel = rel.replace(os.sep, "/")
    for excluded in manifest.exclude:
        prefix = os.path.normpath(excluded).replace(os.sep, "/")
        if rel == prefix or rel.startswith(prefix + "/"):
            return False
    return any(
        fnmatch.fnmatchcase(rel, os.path.normpath(member).replace(os.sep, "/"))
        for member in manifest.members
    )


def _entries(table: dict) -> list[CargoDependency]:
    out = []
    for alias, spec in table.items():
        if not isinstance(alias, str):
            continue
        package, path, workspace = alias, None, False
        if isinstance(spec, dict):
            if isinstance(spec.get("package"), str):
                package = spec["package"]
            if isinstance(spec.get("path"), str):
                path = spec["path"]
            workspace = spec.get("workspace") is True
        out.append(CargoDependency(alias, package, path, workspace))
    return out


def cargo_path_dependencies(
    manifests: dict[str, CargoManifest], crate: str, root: str
) -> list[str]:
    """The crate directories (absolute) `crate` depends on by path, directly or through other
    path dependencies, that are in `manifests` (the project's Cargo.toml files by absolute
    directory) under `root`; nearest first, each once, never `crate` itself."""
    out: list[str] = []
    seen = {crate}
    todo = [crate]
    while todo:
        directory = todo.pop(0)
        manifest = manifests.get(directory)
        if manifest is None:
            continue
        for dependency in manifest.dependencies:
            found = _dependency_directory(manifests, directory, manifest, dependency, root)
            if found is not None and found not in seen:
                seen.add(found)
                out.append(found)
                todo.append(found)
    return out


def _dependency_directory(
    manifests: dict[str, CargoManifest],
    directory: str,
    manifest: CargoManifest,
    dependency: CargoDependency,
    root: str,
) -> str | None:
    base, entry = directory, dependency
    if dependency.workspace:
        workspace = workspace_root(manifests, directory, manifest, root)
        inherited = manifests[workspace].workspace_dependencies if workspace else {}
        entry = inherited.get(dependency.alias)  # type: ignore[assignment]
        if entry is None or workspace is None:
            return None
        base = workspace
    if entry.path is None:
        return None
    found = os.path.normpath(os.path.join(base, entry.path))
    inside = found == root or found.startswith(root.rstrip(os.sep) + os.sep)
    return found if inside and found in manifests else None


def workspace_root(
    manifests: dict[str, CargoManifest], directory: str, manifest: CargoManifest, root: str
) -> str | None:
    """The workspace a crate belongs to: `package.workspace` when set, else the nearest
    directory at or above it, not above `root`, whose Cargo.toml has a [workspace] table
    (cargo/core/workspace.rs: find_workspace_root() walks up the parents)."""
    if manifest.workspace_path is not None:
        named = os.path.normpath(os.path.join(directory, manifest.workspace_path))
        return named if named in manifests else None
    probe = directory
    while True:
        found = manifests.get(probe)
        if found is not None and found.is_workspace:
            return probe
        if probe == root:
            return None
        parent = os.path.dirname(probe)
        if parent == probe:
            return None
        probe = parent


def cargo_loader_dependencies(
    manifests: dict[str, CargoManifest], crate: str, root: str
) -> list[tuple[str, str]]:
    """(alias as written, loader kind) of the crate's direct dependencies on a loader library
    (LOADER_CRATES), inherited workspace entries resolved for their crate name."""
    manifest = manifests.get(crate)
    if manifest is None:
        return []
    out = []
    for dependency in manifest.dependencies:
        package = dependency.package
        if dependency.workspace and package == dependency.alias:
            workspace = workspace_root(manifests, crate, manifest, root)
            entry = manifests[workspace].workspace_dependencies.get(dependency.alias) if (
                workspace
            ) else None  # fmt: skip
            if entry is not None:
                package = entry.package
        kind = LOADER_CRATES.get(package)
        if kind is not None and (dependency.alias, kind) not in out:
            out.append((dependency.alias, kind))
    return out


_GO_COMMENT = re.compile(r"//(.*)")


def _go_directives(data: bytes, verb: str) -> list[tuple[list[str], list[str]]]:
    """(words, comment words) of every `verb` line and `verb ( ... )` block entry of a
    go.mod (golang.org/x/mod modfile/read.go: a block is the verb and `(` on one line)."""
    out: list[tuple[list[str], list[str]]] = []
    block = False
    for raw in data.decode("utf-8", "replace").splitlines():
        m = _GO_COMMENT.search(raw)
        comment = m.group(1).split() if m else []
        line = raw[: m.start()].strip() if m else raw.strip()
        if block:
            if line == ")":
                block = False
                continue
            entry = line
        else:
            first, _, rest = line.partition(" ")
            if first == verb + "(" or (first == verb and rest.strip() == "("):
                block = True
                continue
            if first != verb:
                continue
            entry = rest.strip()
        if entry:
            out.append((entry.split(), comment))
    return out


def go_direct_requires(data: bytes) -> list[str]:
    """Module paths a go.mod requires directly: every `require` line or block entry whose
    comment does not mark it indirect (golang.org/x/mod modfile/rule.go: isIndirect(), the
    comment is `// indirect` or starts with `// indirect;`)."""
    out: list[str] = []
    for words, comment in _go_directives(data, "require"):
        indirect = (len(comment) == 1 and comment[0] == "indirect") or (
            len(comment) > 1 and comment[0] == "indirect;"
        )
        if len(words) >= 2 and not indirect:
            out.append(words[0].strip('"`'))
    return out


def go_local_replacements(data: bytes) -> list[str]:
    """The directories (as written, relative to the go.mod) that `replace` directives put in
    place of modules the go.mod requires, directly or not: `replace example.com/lib =>
    ../lib`, `replace example.com/lib v1.2.0 => ./lib`. golang.org/x/mod modfile/rule.go
    parseReplace(): the target is a directory when it is a path (IsDirectoryPath: `./`,
    `../`, absolute) and then has no version; a replacement of a module nothing requires
    changes nothing (cmd/go builds the graph from the requirements). IsDirectoryPath takes
    Unix and Windows spellings alike (`..\\lib`); a drive letter (`C:`) is outside any
    project and left out."""
    required = {w[0].strip('"`') for w, _ in _go_directives(data, "require") if len(w) >= 2}
    out: list[str] = []
    for words, _ in _go_directives(data, "replace"):
        if "=>" not in words:
            continue
        arrow = words.index("=>")
        old, new = words[:arrow], words[arrow + 1 :]
        if not old or len(new) != 1 or old[0].strip('"`') not in required:
            continue
        target = new[0].strip('"`')
        if target.startswith(("./", "../", "/", ".\\", "..\\", "\\")):
            out.append(target.replace("\\", "/"))
    return out


def go_path_dependencies(manifests: dict[str, bytes], module: str, root: str) -> list[str]:
    """The module directories (absolute) `module` uses through local `replace` directives,
    directly or through theirs, that are in `manifests` (go.mod bytes by absolute directory)
    under `root`; nearest first, each once, never `module` itself: the Go counterpart of
    `cargo_path_dependencies`."""
    out: list[str] = []
    seen = {module}
    todo = [module]
    prefix = root.rstrip(os.sep) + os.sep
    while todo:
        directory = todo.pop(0)
        data = manifests.get(directory)
        if data is None:
            continue
        for target in go_local_replacements(data):
            found = os.path.normpath(os.path.join(directory, target))
            inside = found == root or found.startswith(prefix)
            if inside and found not in seen and found in manifests:
                seen.add(found)
                out.append(found)
                todo.append(found)
    return out


def go_loader_requires(data: bytes) -> list[tuple[str, str]]:
    """(module path, loader kind) of a go.mod's direct requires of a loader library."""
    return [(m, LOADER_MODULES[m]) for m in go_direct_requires(data) if m in LOADER_MODULES]


def dependency_offset(data: bytes, name: str, go: bool) -> int:
    """Where a manifest names a dependency (its first mention as a key or module path), for
    the evidence's location; 0 when it cannot be told."""
    escaped = re.escape(name.encode())
    if go:
        pattern = rb'(?m)^[ \t]*(?:require[ \t]+)?"?' + escaped + rb'"?[ \t]'
    else:
        pattern = rb'(?m)^[ \t]*(?:\[[^\]\n]*\.)?"?' + escaped + rb'"?[ \t]*[=.\]]'
    m = re.search(pattern, data)
    if m is None:
        return 0
    return m.start() + len(m.group()) - len(m.group().lstrip())
