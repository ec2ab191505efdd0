"""The include directories a project's build passes when it compiles its BPF C.

Without a compile_commands.json, secl's preprocessor (secl.parse.macros) searches the file's
own directory and `--include-dir`. Builds put the rest on the compiler's command line, and a
header secl cannot find hides the macros that write sections (`BPF_STRUCT_OPS(name)` from
`<scx/common.bpf.h>`). Read conservatively, from what the build really passes for the BPF C:

* Makefiles, CMake and meson files (secl.parse.buildfiles: the -I flags of the recipes and
  custom commands that compile BPF C, and the include directories of CMake targets built
  for BPF);
* bpf2go `//go:generate` lines: bpf2go runs clang in the Go package's directory with the
  words after `--` and those of `-cflags` (cmd/bpf2go/main.go newB2G(), gen/compile.go
  Compile(): `cmd.Dir = args.Workdir`, the current directory of go generate);
* libbpf-cargo build scripts: `SkeletonBuilder::source(...)` with `clang_args([...])`
  (libbpf-cargo/src/build.rs: the arguments are passed to clang as given; cargo runs a build
  script in its package's directory).

A directory the build names but that does not exist (generated, or outside the checkout) is
kept out. As a last resort the preprocessor may find an `#include "dir/x.h"` that no
directory resolves by a unique path suffix among the project's files (`locate`).
"""

from __future__ import annotations

import os
import re
import sys
import weakref
from collections import namedtuple

from secl.parse.buildfiles import include_flags

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from secl.analysis.project import Project


# One build step that compiles BPF C with include directories. A plain namedtuple (as in
# secl.parse.macros): this module is imported by every run that reads C, a dataclass costs
# more to define.
IncludeRule = namedtuple(
    "IncludeRule",
    (
        "origin",  # str: the build file or Go file that says so
        "scope",  # str: the absolute directory the step runs in
        # str: what it compiles: an absolute path (`%` for any stem), or a base name (`%`
        # allowed) when the directory is not known; then any file at or under `scope`
        "source",
        "dirs",  # tuple[str, ...]: absolute, in the order given
    ),
)


class BuildIncludes:
    """The include directories of each BPF C file, computed on first use (most runs resolve
    no macro that needs them) from `compute`."""

    def __init__(self, compute: Callable[[], Iterable[IncludeRule]] | None = None) -> None:
        self._compute = compute
        self._rules: tuple[IncludeRule, ...] | None = None if compute is not None else ()
        self._memo: dict[str, tuple[str, ...]] = {}

    def rules(self) -> tuple[IncludeRule, ...]:
        if self._rules is None:
            assert self._compute is not None
            self._rules = tuple(self._compute())
        return self._rules

    def dirs_for(self, path: str) -> tuple[str, ...]:
        """The include directories the build compiles `path` with (memoised by the path as
        given: asked once per file and header crawl)."""
        found = self._memo.get(path)
        if found is None:
            dirs: list[str] = []
            rules = self.rules()
            if rules:
                absolute = os.path.abspath(path)
                for rule in rules:
                    if _applies(rule, absolute):
                        dirs += [d for d in rule.dirs if d not in dirs]
            found = self._memo[path] = tuple(dirs)
        return found


def _applies(rule: IncludeRule, path: str) -> bool:
    if os.path.isabs(rule.source):
        return _matches(rule.source, path)
    if not path.startswith(rule.scope + os.sep):
        return False
    return _matches(rule.source, os.path.basename(path))


def _matches(pattern: str, name: str) -> bool:
    if "%" not in pattern:
        return pattern == name
    head, _, tail = pattern.partition("%")
    return name.startswith(head) and name.endswith(tail) and len(name) > len(head + tail)


def build_includes(project: Project) -> BuildIncludes:
    """The project's BuildIncludes, one per run (memoised on the project)."""
    found = project.memo.get("c-build-includes")
    if found is None:
        # Through a weak reference: a memo entry that held its project would keep a run's
        # trees and facts alive until the cyclic collector found them.
        ref = weakref.ref(project)
        found = project.memo["c-build-includes"] = BuildIncludes(lambda: _rules(ref()))
    return found  # type: ignore[return-value]


def _rules(project: Project) -> list[IncludeRule]:
    from secl.analysis.builds import build_files

    out: list[IncludeRule] = []
    # The build files the loader analysis reads (its needles include `-i` and
    # `include_directories`): one look at each directory serves both.
    for build in build_files(project):
        here = os.path.dirname(os.path.abspath(build.path))
        by_source: dict[str, list[str]] = {}
        for source, directory in build.includes:
            by_source.setdefault(source, []).append(directory)
        for source, written in by_source.items():
            out += _rule(build.path, here, source, written)
    scan = project.loader_scan
    for f in scan.files if scan is not None else ():
        if f.path.endswith(".go"):
            here = os.path.dirname(os.path.abspath(f.path))
            for u in f.uses:
                if u.include_dirs and len(u.sources) == 1:
                    out += _rule(f.path, here, u.sources[0], u.include_dirs)
        elif os.path.basename(f.path) == "build.rs" and f.uses:
            out += _cargo_rules(f.path)
    return out


def _rule(origin: str, here: str, source: str, written: Iterable[str]) -> list[IncludeRule]:
    dirs = tuple(
        dict.fromkeys(
            d
            for d in (os.path.normpath(os.path.join(here, w)) for w in written)
            if os.path.isdir(d)
        )
    )
    if not dirs or not source or "$" in source:
        return []
    if "/" in source:
        source = os.path.normpath(os.path.join(here, source))
    return [IncludeRule(origin, here, source, dirs)]


# -- bpf2go ----------------------------------------------------------------------------------


def bpf2go_includes(args: list[str]) -> tuple[str, list[str]] | None:
    """(SOURCE, the -I directories clang is given) of bpf2go's arguments, parsed as its flag
    set does (cmd/bpf2go/main.go newB2G(): flags up to the first non-flag or `--`; IDENT and
    SOURCE; the words after the next `--`, after those of -cflags, split like a shell)."""
    from secl.loaders.golang import _UNKNOWN_VAR, bpf2go_flags

    flags, i, _certain = bpf2go_flags(args)
    # A word go generate takes from the environment is unknown: `$` to what reads it here.
    args = [w.replace(_UNKNOWN_VAR, "$") for w in args]
    cflags: list[str] = []
    for name, value in flags:
        if name in ("cflags", "cc"):
            split = _split_flags(value.replace(_UNKNOWN_VAR, "$"))
            if split is None:
                return None
            cflags += split if name == "cflags" else split[1:]
    rest = args[i:]
    after: list[str] = []
    if "--" in rest:
        after = rest[rest.index("--") + 1 :]
        rest = rest[: rest.index("--")]
    if len(rest) < 2:
        return None
    return rest[1], include_flags(cflags + after)


def _split_flags(value: str) -> list[str] | None:
    """Words as a shell splits them (bpf2go: splitArguments()); shlex only for quotes and
    escapes, as it costs a parser per call."""
    if not any(c in value for c in "\"'\\"):
        return value.split()
    import shlex

    try:
        return shlex.split(value)
    except ValueError:
        return None


# -- libbpf-cargo build scripts ----------------------------------------------------------------

_BUILDER = rb"\.source\s*\(\s*(?:\"([^\"]+)\"|(\w+))\s*\)|\.clang_args\s*\("
_RUST_STRING = rb'"((?:[^"\\]|\\.)*)"'


def _cargo_rules(path: str) -> list[IncludeRule]:
    """`SkeletonBuilder::new().source("src/bpf/x.bpf.c").clang_args(["-I", "src/bpf"])`: the
    string literals of each clang_args call; any other argument
    (`vmlinux::include_path_root()`) is unknown, and so is a directory it is the value of.
    A source may be a `const NAME: &str = "..."` of the file. A build script with one source
    gives it every clang_args call; with several, a call serves the source() before it in
    the same chain (a `;` ends a chain)."""
    data = _read(path) or b""
    here = os.path.dirname(os.path.abspath(path))
    consts = {
        m.group(1): m.group(2).decode("utf-8", "replace")
        for m in re.finditer(rb'\bconst\s+(\w+)\s*:\s*&(?:\'static\s+)?str\s*=\s*"([^"]+)"', data)
    }
    calls: list[tuple[str | None, list[str]]] = []  # (source of the chain, words)
    source: str | None = None
    sources: set[str | None] = set()
    last = 0
    for m in re.finditer(_BUILDER, data):
        if b";" in data[last : m.start()]:
            source = None
        last = m.end()
        if m.group(1) is not None or m.group(2) is not None:
            source = m.group(1).decode("utf-8", "replace") if m.group(1) else None
            if source is None:
                source = consts.get(m.group(2))
            sources.add(source)
            continue
        end = _closing(data, m.end())
        words: list[str] = []
        for piece in re.split(rb",", data[m.end() : end]):
            piece = piece.strip().strip(b"[]&").strip()
            literal = re.search(_RUST_STRING, piece)
            if literal is None or piece.count(b'"') != 2:
                words.append("$?")  # an expression: its value is not known
            else:
                words.append(literal.group(1).decode("utf-8", "replace"))
        calls.append((source, words))
        last = end
    only = next(iter(sources)) if len(sources) == 1 else None
    out: list[IncludeRule] = []
    for chained, words in calls:
        target = only if only is not None else chained
        if target is not None:
            out += _rule(path, here, target, include_flags(words))
    return out


def _closing(data: bytes, start: int) -> int:
    depth = 1
    for i in range(start, min(len(data), start + 4096)):
        depth += (data[i : i + 1] == b"(") - (data[i : i + 1] == b")")
        if depth == 0:
            return i
    return start


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


# -- the last resort: a unique path suffix -------------------------------------------------


# Headers of the C library, the kernel's uapi and libbpf: never looked for by suffix (a copy
# of one in the project is no evidence that the build uses it).
_SYSTEM = frozenset(
    {"linux", "asm", "asm-generic", "bpf", "sys", "net", "netinet", "arpa", "uapi", "bits", "gnu"}
)


def suffix_key(name: str) -> str | None:
    """The path suffix an `#include` name is looked for by, or None when it is not looked
    for: a name with a directory (`proj/lib/x.h`; a bare `x.h` could be any), no `..`, and
    not a system or libbpf header."""
    name = os.path.normpath(name)
    if "/" not in name or os.path.isabs(name) or name.startswith(".."):
        return None
    if "/../" in "/" + name:
        return None
    top, _, rest = name.partition("/")
    # libbpf installs its headers flat into include/bpf (tools/lib/bpf/Makefile:
    # install_headers), so `bpf/DIR/x.h` is never one of them: a project's own tree.
    if top in _SYSTEM and not (top == "bpf" and "/" in rest):
        return None
    return name


class SuffixIndex:
    """Where an #include that no directory resolves is looked for: at the project root (a
    build that roots includes there: `#include "proj/lib/x.h"`; one look, so that a run of
    one file finds it too), else by a unique path suffix among the project's files (their
    base names indexed on first use)."""

    def __init__(self, paths: Iterable[str], root: str | None = None) -> None:
        self._root = os.path.abspath(root) if root is not None else None
        self._paths = paths
        self._by_name: dict[str, list[str]] | None = None
        self._found: dict[str, str | None] = {}

    def unique(self, name: str) -> str | None:
        """The one project file whose path ends with `/name`, or None (none, or several)."""
        if "/" not in name:
            return None  # a bare name (suffix_key): the common case, without a lookup
        if name in self._found:
            return self._found[name]
        found = self._found[name] = self._unique(name)
        if found is not None and os.environ.get("SECL_DEBUG", "0") not in ("", "0"):
            print(f"secl: debug: #include {name!r} found at the root or by suffix: {found}",
                  file=sys.stderr)  # fmt: skip
        return found

    def _unique(self, name: str) -> str | None:
        key = suffix_key(name)
        if key is None:
            return None
        if self._root is not None:
            at_root = os.path.join(self._root, key)
            if os.path.isfile(at_root):
                return at_root
        if self._by_name is None:
            self._by_name = {}
            for p in self._paths:
                self._by_name.setdefault(os.path.basename(p), []).append(p)
        tail = os.sep + key
        found = [p for p in self._by_name.get(os.path.basename(key), ()) if p.endswith(tail)]
        return found[0] if len(found) == 1 else None
