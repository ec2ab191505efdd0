"""Rust loaders: libbpf-cargo build scripts, libbpf-rs skeletons and objects, aya, redbpf.

Read from the libraries' own sources (libbpf-rs/libbpf-cargo v0.27.0, aya v0.14.0):

* libbpf-cargo `SkeletonBuilder` (libbpf-cargo/src/lib.rs): `.source(x.bpf.c)` builds
  `x.o` (`build()`: the object is named after the source's file name up to its first `.`),
  `.obj(y.o)` names the object instead, and `.build_and_generate(out)` / `.generate(out)` write
  the skeleton module to `out`. The skeleton is named after the object file, again up to its
  first `.` (gen/mod.rs `gen_single()`), so `probe.bpf.c` gives `probe`. Its types are that name
  with each `_`-separated word capitalised (gen/mod.rs `capitalize_first_letter()`):
  `probe_kern` gives `ProbeKernSkelBuilder`, `OpenProbeKernSkel`, `ProbeKernSkel`,
  `ProbeKernLinks`. `skeleton_type_prefix()` does the same; `skeleton_from_type()` goes back.
  `cargo libbpf gen` still reads `[package.metadata.libbpf]` `prog_dir` / `target_dir`
  (libbpf-cargo/src/metadata.rs `get_package()`): `cargo_libbpf_prog_dir()` reads it.
* Generated skeletons (gen/mod.rs `gen_skel_contents()`): since libbpf-cargo 0.24 programs and
  links are fields (`skel.progs.NAME`, `skel.links.NAME`); before, `skel.progs().NAME()` /
  `skel.progs_mut().NAME()` (v0.23.3 `gen_skel_prog_getters()`). `skel.attach()` is
  `bpf_object__attach_skeleton()` (`gen_skel_attach()`): every program libbpf can auto-attach.
* libbpf-rs objects (libbpf-rs/src/object.rs): `ObjectBuilder::open_file(path)` /
  `open_memory(bytes)`; programs by `progs()` / `progs_mut()` iteration (0.24+) or
  `prog("name")` / `prog_mut("name")` (before 0.24).
* libbpf-rs programs (libbpf-rs/src/program.rs): each method, the libbpf call it makes, and
  the fact it gives (value: that libbpf function; api: the libbpf-rs method):

      Program::attach()                         bpf_program__attach           attach
      Program::attach_kprobe(retprobe, func)    bpf_program__attach_kprobe    attach, targets
      Program::attach_kprobe_with_opts(r, f, o) bpf_program__attach_kprobe_opts  attach, targets
          (`KprobeOpts` holds a cookie only: no offset, no attach mode)
      Program::attach_uprobe(r, pid, path, func_offset)  bpf_program__attach_uprobe  attach
      Program::attach_uprobe_with_opts(..)      bpf_program__attach_uprobe_opts  attach
          (`func_offset` is never offset evidence: uprobe_multi takes offsets; `UprobeOpts`
          has no attach mode)
      Program::attach_perf_event[_with_opts]    bpf_program__attach_perf_event[_opts]
                                                                   attach, perf-event
      Program::attach_ksyscall, other attach_*  bpf_program__attach_*         attach
      OpenProgramMut::set_attach_type(t)   bpf_program__set_expected_attach_type
                                                                   expected-attach-type
      OpenProgramMut::set_prog_type(t)          bpf_program__set_type         set-type
      OpenProgramMut::set_autoload(b)           bpf_program__set_autoload     autoload
      OpenProgramMut::set_autoattach(b)         bpf_program__set_autoattach   autoattach
      OpenProgramMut::set_flags(BPF_F_SLEEPABLE)  bpf_program__set_flags    sleepable
      Link::info() (0.26+), LinkInfo::from_fd   bpf_link_get_info_by_fd       link-info
          (when the function matches `LinkTypeInfo::PerfEvent` or
          `PerfEventType::{Kprobe,Uprobe}`; link-info-multi for
          `LinkTypeInfo::{Kprobe,Uprobe}Multi`; missed-count for
          `PerfEventType::Kprobe { missed, .. }`)
      skeleton attach()                         bpf_object__attach_skeleton   auto-attach

  libbpf-rs has no kprobe attach mode at all (no `probe_attach_mode` in its sources), and no
  `libbpf_register_prog_handler` wrapper: a direct `libbpf_sys::libbpf_register_prog_handler`
  call is read as prog-handler. Link-info values are the kernel constants the libbpf-rs enum
  variants are decoded from (libbpf-rs/src/query.rs `LinkInfo::from_fd()`), so that the
  analysis reads them as it reads C's.
* aya (aya/src/bpf.rs): `Ebpf::load(bytes)`, `Ebpf::load_file(path)`, `EbpfLoader::new()...
  .load(bytes)` / `.load_file(path)`; `Bpf` and `BpfLoader` are the deprecated aliases (0.13).
  `include_bytes_aligned!(path)` (aya/src/util.rs) embeds the object. aya never auto-attaches.
* redbpf (redbpf 2.3.0, redbpf/src/load/loader.rs, redbpf/src/lib.rs): `Loader::load(bytes)`,
  `Loader::load_file(path)`, `Module::parse(bytes)`; its own ELF reader, not libbpf's, with
  names secl does not model: kind `other` (see `_RustFile._redbpf`).

Values are followed through string literals, `const`/`static` items, `let` bindings (every
value a name is ever given in its function counts), `for` loops over literal arrays, the
arguments every caller in the file passes to a parameter, `concat!`, `env!`, `format!`,
`Path::new`/`PathBuf::from`/`.join()`/`.push()`. A path under `OUT_DIR` (or any other unknown
prefix) keeps only its base name; one under `CARGO_MANIFEST_DIR` is made relative to the file.
Macro arguments other than those are token trees: calls written inside `assert!(...)` are not
read.
"""

from __future__ import annotations

import os
import posixpath
import re
from functools import cache

from secl.facts import Span
from secl.loaders import AYA, LIBBPF_RS, OTHER, FileLoaders, LoaderUse
from secl.parse.binding import binding
from secl.parse.loader import LoaderFact, LoaderFacts, ObjectRef, ProgramRef
from secl.parse.tree import Positions, finditer_any, first_error_row, inside_error, word_start

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from tree_sitter import Node, Parser

# What a Rust file must name to be worth parsing: plain substring tests.
RUST_HINTS = (
    b"libbpf_rs",
    b"libbpf_cargo",
    b"SkeletonBuilder",
    b"SkelBuilder",
    b"skel",
    b"ObjectBuilder",
    b"aya",
    b"Ebpf",
    b"Bpf::load",
    b"BpfLoader",
    b"include_bytes_aligned",
    b"redbpf",
    b"libbpf_sys",
)

# libbpf-rs method -> the libbpf function it calls (libbpf-rs/src/program.rs, v0.27.0).
ATTACH_CALLS = {
    "attach": "bpf_program__attach",
    "attach_cgroup": "bpf_program__attach_cgroup",
    "attach_perf_event": "bpf_program__attach_perf_event",
    "attach_perf_event_with_opts": "bpf_program__attach_perf_event_opts",
    "attach_uprobe": "bpf_program__attach_uprobe",
    "attach_uprobe_with_opts": "bpf_program__attach_uprobe_opts",
    "attach_uprobe_multi": "bpf_program__attach_uprobe_multi",
    "attach_uprobe_multi_with_opts": "bpf_program__attach_uprobe_multi",
    "attach_kprobe": "bpf_program__attach_kprobe",
    "attach_kprobe_with_opts": "bpf_program__attach_kprobe_opts",
    "attach_kprobe_multi": "bpf_program__attach_kprobe_multi_opts",
    "attach_kprobe_multi_with_opts": "bpf_program__attach_kprobe_multi_opts",
    "attach_ksyscall": "bpf_program__attach_ksyscall",
    "attach_tracepoint": "bpf_program__attach_tracepoint_opts",
    "attach_tracepoint_with_opts": "bpf_program__attach_tracepoint_opts",
    "attach_raw_tracepoint": "bpf_program__attach_raw_tracepoint",
    "attach_raw_tracepoint_with_opts": "bpf_program__attach_raw_tracepoint_opts",
    "attach_lsm": "bpf_program__attach_lsm",
    "attach_trace": "bpf_program__attach_trace",
    "attach_sockmap": "bpf_prog_attach",
    "attach_xdp": "bpf_program__attach_xdp",
    "attach_netns": "bpf_program__attach_netns",
    "attach_netfilter_with_opts": "bpf_program__attach_netfilter",
    "attach_usdt": "bpf_program__attach_usdt",
    "attach_usdt_with_opts": "bpf_program__attach_usdt",
    "attach_iter": "bpf_program__attach_iter",
    "attach_iter_with_opts": "bpf_program__attach_iter",
}
_PERF_EVENT_CALLS = frozenset({"attach_perf_event", "attach_perf_event_with_opts"})
_KPROBE_CALLS = frozenset({"attach_kprobe", "attach_kprobe_with_opts"})
_SETTERS = {
    "set_attach_type": ("expected-attach-type", "bpf_program__set_expected_attach_type"),
    "set_prog_type": ("set-type", "bpf_program__set_type"),
    "set_autoload": ("autoload", "bpf_program__set_autoload"),
    "set_autoattach": ("autoattach", "bpf_program__set_autoattach"),
    "set_flags": ("sleepable", "bpf_program__set_flags"),
}
# libbpf-rs/src/query.rs `LinkInfo::from_fd()`: the kernel values behind the variants.
_PERF_LINK = re.compile(
    rb"\b(?:LinkTypeInfo\s*::\s*(PerfEvent|KprobeMulti|UprobeMulti)"
    rb"|PerfEventType\s*::\s*(Kprobe|Uprobe))\b"
)
_PERF_LINK_VALUES = {
    b"PerfEvent": "BPF_LINK_TYPE_PERF_EVENT",
    b"Kprobe": "BPF_PERF_EVENT_KPROBE",
    b"Uprobe": "BPF_PERF_EVENT_UPROBE",
}
# libbpf-rs/src/program.rs `enum ProgramAttachType`: each variant is the kernel constant of
# its name in capitals (`TraceUprobeMulti` is BPF_TRACE_UPROBE_MULTI), but one.
_ATTACH_TYPE_VARIANT = re.compile(r"\bProgramAttachType\s*::\s*(\w+)\s*\Z")
_ATTACH_TYPE_EXCEPTIONS = {"KprobeMulti": "BPF_TRACE_KPROBE_MULTI"}


def _attach_type_constant(text: str) -> str:
    """`ProgramAttachType::KprobeMulti` -> `BPF_TRACE_KPROBE_MULTI`, the value libbpf gets, so
    that the analysis reads it as it reads C's; other text stays as written."""
    m = _ATTACH_TYPE_VARIANT.search(text)
    if m is None:
        return text
    variant = m.group(1)
    return (
        _ATTACH_TYPE_EXCEPTIONS.get(variant)
        or "BPF_" + re.sub(r"(?<!^)(?=[A-Z])", "_", variant).upper()
    )


_MISSED = re.compile(rb"\bPerfEventType\s*::\s*Kprobe\s*\{[^}]*\bmissed\b")

# Sites are searched for with patterns that start with a literal (secl.parse.tree.word_start),
# each alternative apart (secl.parse.tree.finditer_any): one pattern of alternatives that start
# differently is tried at every byte of the file (most of a loader file's read).
_FACT_SITES = [
    re.compile(
        rb"\.\s*(attach\w*|set_attach_type|set_prog_type|set_autoload|set_autoattach|set_flags"
        rb"|info)\s*\("
    ),
    re.compile(rb"(" + word_start(b"LinkInfo") + rb"\s*::\s*from_fd)\s*\("),
    re.compile(rb"(" + word_start(b"libbpf_register_prog_handler") + rb")\s*\("),
    re.compile(rb"(" + word_start(b"bpf_program__attach_kprobe") + rb"(?:_opts)?)\s*\("),
]
# libbpf's `struct bpf_kprobe_opts` fields through libbpf-sys (its bindgen struct keeps C's
# names): an offset or an attach mode a libbpf-rs program gets only by calling libbpf itself.
_KPROBE_OPTS_FIELDS = frozenset({"offset", "attach_mode"})
_NULL_POINTERS = frozenset({"null", "null_mut"})
# One tuple per pattern of _FACT_SITES: bytes every match of it holds (see _sites_of).
_FACT_NEEDLES = [
    (b"attach", b"set_", b"info"),
    (b"LinkInfo",),
    (b"libbpf_register_prog_handler",),
    (b"bpf_program__attach_kprobe",),
]
_OBJECT_SITE = re.compile(rb"\.\s*(open_file|open_memory)\s*\(")
# `Ebpf::load(`, `Bpf::load(` (aya's types), then `.load(` (EbpfLoader's method)
_AYA_SITES = [
    re.compile(word_start(b"Ebpf") + rb"\s*::\s*(load_file|load)\s*\("),
    re.compile(word_start(b"Bpf") + rb"\s*::\s*(load_file|load)\s*\("),
    re.compile(rb"\.\s*(load_file|load)\s*\("),
]
# redbpf (redbpf/src/load/loader.rs `Loader::load`, `Loader::load_file`; redbpf/src/lib.rs
# `Module::parse`): `Loader::load(` and `Module::parse(` in a file that names redbpf.
_REDBPF_SITES = [
    re.compile(word_start(b"Loader") + rb"\s*::\s*(load_file|load)\s*\("),
    re.compile(word_start(b"Module") + rb"\s*::\s*(parse)\s*\("),
]
_AYA_NEEDLES = [(b"Ebpf",), (b"Bpf",), (b"load",)]
_SKELETON_BUILDER = re.compile(word_start(b"SkeletonBuilder") + rb"\b")
_SKEL_BUILDER = re.compile(rb"SkelBuilder\b")
_BPF_BUILDER = word_start(b"BpfBuilder") + rb"\b"  # compiled on first use
_SKEL_TYPE = re.compile(rb"Skel\b")
_SKEL_PATTERNS = (_SKELETON_BUILDER, _SKEL_BUILDER, _SKEL_TYPE)
_WORD_RUN = re.compile(rb"\w+")
_CONSTS = [
    re.compile(word_start(b"const") + rb"\s+(?:mut\s+)?(\w+)"),
    re.compile(word_start(b"static") + rb"\s+(?:mut\s+)?(\w+)"),
]
_CONST_NEEDLES = [(b"const",), (b"static",)]
_FN = re.compile(word_start(b"fn") + rb"\s+(\w+)")


def _prefixed(pattern: re.Pattern[bytes], data: bytes) -> list[tuple[int, int, str]]:
    """(start, end, prefix) of every `<prefix><suffix>` word, `prefix` non-empty: the suffix
    is found first and the word start read backwards (a pattern that captures the prefix
    first retries from every word of the file)."""
    out: list[tuple[int, int, str]] = []
    if pattern in _SKEL_PATTERNS and b"Skel" not in data:  # every match holds "Skel"
        return out
    for m in pattern.finditer(data):
        start = m.start()
        if start == 0:
            continue
        # The word characters right before `start` (at most 256): `\w+\Z` searched for
        # between the two would retry from every byte, each a run to the window's end.
        lo = max(0, start - 256)
        run = _WORD_RUN.match(data[lo:start][::-1])
        if run is None:
            continue
        first = start - run.end()
        if first > 0 and (data[first - 1 : first]).isalnum():
            continue  # longer than 256 characters: not a type name
        out.append((first, m.end(), data[first:start].decode()))
    return out


def _sites_of(
    patterns: list[re.Pattern[bytes]], needles: list[tuple[bytes, ...]], data: bytes
) -> Iterator[tuple[int, re.Match[bytes]]]:
    """secl.parse.tree.finditer_any over the patterns whose needles (bytes every match of
    the pattern holds, one of them at least) are in `data`, with their indices in
    `patterns`: a substring test scans a file several times faster than a regex search, and
    most of these names are in few files."""
    kept = [i for i in range(len(patterns)) if any(w in data for w in needles[i])]
    if kept:
        for j, m in finditer_any([patterns[i] for i in kept], data):
            yield kept[j], m


_INCLUDE = re.compile(rb"(" + word_start(b"include") + rb"(?:_bytes_aligned)?)\s*!")
_PATH_ATTR = re.compile(word_start(b"path") + rb'\s*=\s*"')
# Trait and helper names of libbpf-rs that look like generated skeleton types.
_NOT_SKELETONS = frozenset({"", "Open"})

# Methods that hand their receiver's value through (Option/Result/borrow plumbing).
_THROUGH = frozenset(
    {"unwrap", "expect", "context", "with_context", "as_ref", "as_mut", "borrow",
     "borrow_mut", "clone", "ok_or", "ok_or_else", "map_err", "ok", "lock", "get_mut",
     "deref", "deref_mut", "as_deref", "as_deref_mut", "unwrap_unchecked", "into",
     "to_owned", "to_string", "as_str", "as_path", "as_os_str", "to_path_buf", "as_slice",
     "to_vec", "iter", "into_iter", "as_fd", "as_ptr", "as_c_str", "take",
     "as_libbpf_object"}  # libbpf-rs/src/program.rs `AsRawLibbpf::as_libbpf_object`
)  # fmt: skip
# Iterator adaptors: `skel.progs().NAME()` is a program unless NAME is one of these.
_ITERATOR_METHODS = frozenset(
    {"next", "find", "filter", "map", "count", "for_each", "try_for_each", "collect", "any",
     "all", "enumerate", "nth", "last", "zip", "skip", "take", "position", "filter_map",
     "find_map", "flat_map", "fold", "inspect", "peekable", "rev", "by_ref", "cloned"}
)  # fmt: skip
# Functions whose value is their argument's (paths and strings).
_PATH_WRAPPERS = frozenset(
    {"Path::new", "PathBuf::from", "String::from", "OsStr::new", "OsString::from", "Some",
     "Ok", "Box::new", "Vec::from", "Cow::from", "Cow::Borrowed", "CString::new"}
)  # fmt: skip
_ENV_CALLS = frozenset({"var", "var_os"})
_MAX_DEPTH = 30
_MAX_VALUES = 32
_MAX_CALLER_DEPTH = 3

# A string value: (prefix, text). prefix None: `text` is all of it; otherwise an unknown
# prefix (the env var it comes from, or "?") stands before `text`.
Str = tuple


@cache
def rust_parser() -> Parser:
    ts = binding("tree_sitter")
    # A Parser holds no state between parse() calls; caching it only saves set-up time.
    return ts.Parser(ts.Language(binding("tree_sitter_rust").language()))


def is_rust_loader(data: bytes) -> bool:
    """A Rust file worth parsing names libbpf-rs, libbpf-cargo, a skeleton or aya."""
    return any(hint in data for hint in RUST_HINTS)


def skeleton_type_prefix(name: str) -> str:
    """`probe_kern` -> `ProbeKern`, as libbpf-cargo names the generated types
    (libbpf-cargo/src/gen/mod.rs `capitalize_first_letter()`)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def skeleton_from_type(prefix: str) -> str:
    """`ProbeKern` -> `probe_kern`: the usual inverse of `skeleton_type_prefix()` (a source
    name with capitals of its own cannot be recovered from the type alone)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", prefix).lower()


def skeleton_of_path(path: str) -> str:
    """The skeleton libbpf-cargo names after a source or object path: its file name up to
    the first `.` (libbpf-cargo/src/lib.rs `build()`, gen/mod.rs `gen_single()`)."""
    return posixpath.basename(path).split(".", 1)[0]


def parses_rust(path: str) -> bool:
    """Whether `extract_rust` parses a Rust loader file: not a skeleton module libbpf-cargo
    generated (`x.skel.rs`; the file that includes it is the evidence)."""
    return not path.endswith(".skel.rs")


def extract_rust(path: str, data: bytes) -> FileLoaders:
    """What one Rust file says about loading BPF objects. Never raises: a file that does not
    parse gives `problem` and whatever its parsed parts prove."""
    if not parses_rust(path):
        return FileLoaders(path)
    try:
        return _RustFile(path, data).run()
    except Exception as error:  # one odd file must not stop the run; the line says why
        return FileLoaders(path, problem=f"could not read as Rust: {type(error).__name__}")


def cargo_lock_versions(data: bytes) -> dict[str, str]:
    """Package name -> version from a Cargo.lock (the highest when several are locked)."""
    text = data.decode("utf-8", "replace")
    packages = _cargo_lock_packages(text)
    if packages is None:  # not as Cargo writes it: TOML decides
        packages = _toml(data).get("package", [])
    out: dict[str, str] = {}
    for package in packages if isinstance(packages, list) else []:
        if not isinstance(package, dict):
            continue
        name, version = package.get("name"), package.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            continue
        if name not in out or _version_key(version) > _version_key(out[name]):
            out[name] = version
    return out


def cargo_toml_versions(data: bytes) -> dict[str, str]:
    """Package name -> version requirement from a Cargo.toml's dependency tables
    (`[dependencies]`, `[build-dependencies]`, `[dev-dependencies]`, their `[target.*]`
    forms and `[workspace.dependencies]`), as written but without a leading `^`, `=` or `~`.
    Path-, git- and workspace-inherited dependencies without a version are left out."""
    parsed = _toml(data)
    tables: list[dict] = []
    for holder in (parsed, parsed.get("workspace", {})):
        if not isinstance(holder, dict):
            continue
        for key in ("dependencies", "build-dependencies", "dev-dependencies"):
            if isinstance(holder.get(key), dict):
                tables.append(holder[key])
    targets = parsed.get("target", {})
    for target in targets.values() if isinstance(targets, dict) else ():
        if isinstance(target, dict):
            for key in ("dependencies", "build-dependencies", "dev-dependencies"):
                if isinstance(target.get(key), dict):
                    tables.append(target[key])
    out: dict[str, str] = {}
    for table in tables:
        for alias, spec in table.items():
            name, version = alias, None
            if isinstance(spec, str):
                version = spec
            elif isinstance(spec, dict):
                version = spec.get("version")
                if isinstance(spec.get("package"), str):
                    name = spec["package"]
            if isinstance(version, str) and version.strip():
                text = version.strip()
                if "," not in text:
                    text = text.lstrip("^=~ ")
                out.setdefault(name, text)
    return out


def cargo_libbpf_prog_dir(data: bytes) -> str | None:
    """`[package.metadata.libbpf] prog_dir` of a Cargo.toml: where `cargo libbpf build`
    looks for `*.bpf.c` (default `src/bpf`; libbpf-cargo/src/metadata.rs `get_package()`).
    None when the table does not set it."""
    parsed = _toml(data)
    node: object = parsed
    for key in ("package", "metadata", "libbpf", "prog_dir"):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node if isinstance(node, str) else None


# A line of a Cargo.lock as Cargo writes it (cargo/src/cargo/core/resolver/encode.rs: a
# comment header, `version = N`, `[[package]]` tables of `key = "string"` and arrays of
# strings one a line): a small part of TOML whose meaning is plain, read without tomllib
# (a pure-Python TOML parse takes ~6 ms for a 50 KB lock file).
_LOCK_LINE = re.compile(
    r"(?:#[^\x00-\x08\x0a-\x1f\x7f]*|(\[\[package\]\])|([A-Za-z0-9_-]+)[ \t]*=[ \t]*"
    r'(?:"([^"\\\x00-\x1f\x7f]*)"|(0|[1-9][0-9]*)|\[\]|(\[)))?\Z'
)
_LOCK_ITEM = re.compile(r' *"([^"\\\x00-\x1f\x7f]*)"(,?)\Z')


def _cargo_lock_packages(text: str) -> list[dict[str, object]] | None:
    """The `[[package]]` tables of a Cargo.lock whose every line is one Cargo writes (what
    tomllib would read from it); None for anything else, which tomllib then reads."""
    top: dict[str, object] = {}
    packages: list[dict[str, object]] = []
    table = top
    lines = iter(text.split("\n"))
    for line in lines:
        m = _LOCK_LINE.match(line)
        if m is None:
            return None
        header, key, string, number, opened = m.groups()
        if header:
            if "package" in top:
                return None  # a key then a table of one name: TOML says no
            table = {}
            packages.append(table)
            continue
        if key is None:
            continue  # a comment or a blank line
        if key in table:
            return None  # a key given twice: TOML says no
        value: object = string if string is not None else int(number) if number else []
        if opened:
            items: list[str] = []  # the array's items, one a line, up to its `]`
            comma = True
            for item in lines:
                if item == "]":
                    break
                found = _LOCK_ITEM.match(item)
                if found is None or not comma:
                    return None
                items.append(found.group(1))
                comma = bool(found.group(2))
            else:
                return None  # never closed
            value = items
        table[key] = value
    return packages


def _toml(data: bytes) -> dict:
    import tomllib  # only manifests need it

    try:
        return tomllib.loads(data.decode("utf-8", "replace"))
    except (tomllib.TOMLDecodeError, ValueError):
        return {}


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else -1 for p in re.split(r"[.+-]", version))


# ----------------------------------------------------------------------------------------


def _args(call: Node) -> list[Node]:
    arguments = call.child_by_field_name("arguments")
    if arguments is None:
        return []
    return [c for c in arguments.named_children if c.type not in ("line_comment", "block_comment")]


def _last_segment(node: Node | None) -> str:
    """`a::b::c` -> `c`, `x` -> `x`, anything else -> ''."""
    if node is None:
        return ""
    if node.type in ("identifier", "field_identifier", "type_identifier"):
        return node.text.decode()
    if node.type in ("scoped_identifier", "scoped_type_identifier"):
        return _last_segment(node.child_by_field_name("name"))
    if node.type == "generic_function":
        return _last_segment(node.child_by_field_name("function"))
    return ""


def _path_text(node: Node | None) -> str:
    """`std::path::Path::new` -> `Path::new` (the last two segments)."""
    if node is None:
        return ""
    if node.type == "scoped_identifier":
        path = node.child_by_field_name("path")
        return f"{_last_segment(path)}::{_last_segment(node.child_by_field_name('name'))}"
    return _last_segment(node)


def _string_literal(node: Node) -> str | None:
    """The text of a Rust string literal (`"..."`, `b"..."`, `c"..."`, raw strings)."""
    if node.type == "raw_string_literal":
        content = next((c for c in node.children if c.type == "string_content"), None)
        return content.text.decode("utf-8", "replace") if content is not None else ""
    if node.type != "string_literal":
        return None
    out = []
    for child in node.children:
        if child.type == "string_content":
            out.append(child.text.decode("utf-8", "replace"))
        elif child.type == "escape_sequence":
            out.append(_unescape(child.text.decode("utf-8", "replace")))
    return "".join(out)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"'}


def _unescape(text: str) -> str:
    if len(text) < 2:
        return text
    if text[1] in _ESCAPES:
        return _ESCAPES[text[1]]
    if text[1] == "x" and len(text) == 4:
        return chr(int(text[2:], 16))
    if text.startswith("\\u{"):
        return chr(int(text[3:-1].replace("_", ""), 16))
    if text[1] == "\n":  # a line continuation
        return ""
    return text


def _token_items(tree: Node) -> list[list[Node]]:
    """The comma-separated items of a macro's token tree."""
    items: list[list[Node]] = [[]]
    children = tree.children
    for child in children[1:-1] if len(children) >= 2 else ():
        if child.type in ("line_comment", "block_comment"):
            continue
        if child.type == ",":
            items.append([])
        else:
            items[-1].append(child)
    return [item for item in items if item]


def _join(left: Str, right: Str) -> Str:
    """`left` followed by `right`."""
    if right[0] is not None:
        return right
    return (left[0], left[1] + right[1])


def _path_join(left: Str, right: Str) -> Str:
    """Path::join: an absolute right-hand side replaces the left."""
    if right[0] is not None or right[1].startswith("/"):
        return right
    if left[0] is None and not left[1]:
        return right
    sep = "" if left[1].endswith("/") else "/"
    return (left[0], left[1] + sep + right[1])


def _base(value: Str) -> str | None:
    """The file name of a path value, when it is known."""
    prefix, text = value
    if prefix is None:
        return posixpath.basename(text) or None
    if "/" not in text:
        return None  # the unknown prefix may end inside the file name
    return posixpath.basename(text) or None


def _is_null_pointer(node: Node) -> bool:
    """`std::ptr::null()`, `ptr::null_mut()`, `null()`, `0 as *const _`."""
    while node.type == "type_cast_expression":
        node = node.child_by_field_name("value") or node
        if node.type == "type_cast_expression":
            continue
        break
    if node.type == "integer_literal":
        return _int_literal(node.text.decode()) == 0
    if node.type == "call_expression":
        return _last_segment(node.child_by_field_name("function")) in _NULL_POINTERS
    return False


def _int_literal(text: str) -> int | None:
    """The value of a Rust integer literal (`0x10`, `16u64`, `1_000`, `0 as u64`), else
    None."""
    text = text.strip().split(" as ", 1)[0].strip().replace("_", "")
    m = re.fullmatch(r"(0x[0-9a-fA-F]+|0o[0-7]+|0b[01]+|[0-9]+)(?:[iu](?:8|16|32|64|128|size))?",
                     text)  # fmt: skip
    return int(m.group(1), 0) if m is not None else None


def _struct_fields(node: Node) -> list[tuple[str, str, Node]]:
    """(field, value text, field node) of the kprobe options a struct literal sets."""
    body = node.child_by_field_name("body")
    out = []
    for child in body.named_children if body is not None else ():
        if child.type != "field_initializer":
            continue
        field = child.child_by_field_name("field")
        value = child.child_by_field_name("value")
        if field is None or value is None:
            continue
        name = field.text.decode()
        if name in _KPROBE_OPTS_FIELDS:
            out.append((name, value.text.decode("utf-8", "replace"), child))
    return out


def _function_name(fn: Node | None) -> str | None:
    if fn is None:
        return None
    name = fn.child_by_field_name("name")
    return name.text.decode() if name is not None else None


class _RustFile:
    """One Rust file: its uses of loaders and, for libbpf-rs, the facts about programs."""

    def __init__(self, path: str, data: bytes) -> None:
        self.path = path
        self.data = data
        self.root = rust_parser().parse(data).root_node
        self.positions = Positions(data)
        self.directory = posixpath.dirname(path.replace(os.sep, "/"))
        self.uses: list[LoaderUse] = []
        self.facts: list[LoaderFact] = []
        self.skeletons: dict[str, Node] = {}  # name -> first node proving it
        self.skeleton_types: set[str] = set()  # names seen in types only
        self.objects: set[str] = set()
        self._prefixes: dict[str, str] = {}  # ProbeKern -> probe_kern, from the file's names
        self._consumed: set[int] = set()  # include macros a load call already accounts for
        self._memo: dict[tuple, frozenset] = {}
        self._active: set[tuple] = set()
        self._depth = 0
        self._bindings: dict[tuple[int, str], list[tuple[str, Node]]] = {}
        self._consts: dict[str, list[Node]] | None = None
        self._functions: dict[str, list[Node]] | None = None
        self._field_types: dict[str, list[Node]] = {}
        self.libbpf_rs = (
            b"libbpf_rs" in data
            or b"SkelBuilder" in data
            or b".skel.rs" in data
            or b"libbpf_sys" in data
        )

    # -- driver --------------------------------------------------------------------------

    def run(self) -> FileLoaders:
        problem = None
        if self.root.has_error:
            row = first_error_row(self.root)
            problem = f"Rust syntax error at line {row}; read what parses"
        self._skeleton_names()
        self._skeleton_builders()
        if self.path.endswith("build.rs") and b"BpfBuilder" in self.data:  # sched_ext's
            self._bpf_builders()
        if self.libbpf_rs or b"ObjectBuilder" in self.data:
            self._object_builders()
        if self.libbpf_rs:
            self._program_facts()
        self._skeleton_uses()
        self._aya()
        if b"redbpf::" in self.data:  # `use redbpf::load::Loader;`, `redbpf::Module::parse`
            self._redbpf()
        facts = None
        if self.libbpf_rs or self.objects or self.facts:
            skeletons = frozenset(self.skeletons) | frozenset(self.skeleton_types)
            facts = LoaderFacts(
                self.path, skeletons, frozenset(self.objects), list(dict.fromkeys(self.facts))
            )
        uses = sorted(dict.fromkeys(self.uses), key=lambda u: (u.span.start_byte, u.kind))
        return FileLoaders(self.path, uses, facts, problem)

    def span(self, node: Node) -> Span:
        return self.positions.span(node.start_byte, node.end_byte)

    def _in_error(self, node: Node) -> bool:
        """secl.parse.tree.inside_error, answered without a walk up the tree when the tree
        has no error at all (each step up is a walk down from the root in tree-sitter)."""
        return self.root.has_error and inside_error(node)

    def node_at(self, start: int, end: int, *types: str) -> Node | None:
        node = self.root.descendant_for_byte_range(start, end)
        if node is None or node.type not in types:
            return None
        return node

    # -- skeleton names ------------------------------------------------------------------

    def _skeleton_names(self) -> None:
        """Skeletons the file includes or names: `include!(... "/x.skel.rs")`,
        `#[path = "x.skel.rs"]`, `XSkelBuilder`, and (types only) `OpenXSkel` / `XSkel`."""
        for m in _INCLUDE.finditer(self.data) if b"include" in self.data else ():
            if m.group(1) != b"include":
                continue
            macro = self._macro_at(m.start(1), m.end(1))
            if macro is None:
                continue
            for value in self._macro_strings(macro):
                base = _base(value)
                if base and base.endswith(".skel.rs"):
                    self._add_skeleton(base[: -len(".skel.rs")], macro)
        for m in _PATH_ATTR.finditer(self.data) if b"path" in self.data else ():
            node = self.root.descendant_for_byte_range(m.end(), m.end())
            while node is not None and node.type != "string_literal":
                node = node.parent
            attribute = node.parent if node is not None else None
            if attribute is None or attribute.type != "attribute":
                continue
            text = _string_literal(node) or ""
            if text.endswith(".skel.rs"):
                self._add_skeleton(posixpath.basename(text)[: -len(".skel.rs")], node)
        for start, end, camel in _prefixed(_SKEL_BUILDER, self.data):
            node = self.node_at(start, end, "identifier", "type_identifier")
            if node is None or node.end_byte != end:
                continue
            self._add_skeleton(self._snake(camel), node)
        for start, end, camel in _prefixed(_SKEL_TYPE, self.data):
            node = self.node_at(start, end, "identifier", "type_identifier")
            if node is None or node.end_byte != end:
                continue
            name = self._skeleton_type(camel)
            if name:
                self.skeleton_types.add(name)

    def _add_skeleton(self, name: str, node: Node) -> None:
        if not name:
            return
        self._prefixes.setdefault(skeleton_type_prefix(name), name)
        if name not in self.skeletons or node.start_byte < self.skeletons[name].start_byte:
            self.skeletons[name] = node

    def _snake(self, camel: str) -> str:
        return self._prefixes.get(camel) or skeleton_from_type(camel)

    def _skeleton_type(self, camel: str) -> str | None:
        """The skeleton an `XSkel` / `OpenXSkel` type name means, None for libbpf-rs's own
        `Skel` / `OpenSkel` traits."""
        if camel in _NOT_SKELETONS:
            return None
        if camel in self._prefixes:
            return self._prefixes[camel]
        if camel.startswith("Open") and camel[4:] in self._prefixes:
            return self._prefixes[camel[4:]]
        if camel.startswith("Open") and camel[4:5].isupper():
            return skeleton_from_type(camel[4:])
        return skeleton_from_type(camel)

    def _skeleton_uses(self) -> None:
        auto = {
            f.program.owner.name
            for f in self.facts
            if f.kind == "auto-attach" and f.program is not None
        }
        for name, node in self.skeletons.items():
            if node.type == "macro_invocation":
                value = f"include!({name}.skel.rs)"
            elif node.type == "string_literal":
                value = f"#[path] {name}.skel.rs"
            else:
                value = node.text.decode()
            self.uses.append(
                LoaderUse(
                    LIBBPF_RS,
                    self.path,
                    self.span(node),
                    value,
                    skeletons=(name,),
                    auto_attach=True if name in auto else None,
                    certain=not self._in_error(node),
                )
            )

    # -- libbpf-cargo --------------------------------------------------------------------

    def _skeleton_builders(self) -> None:
        for m in _SKELETON_BUILDER.finditer(self.data):
            call = self._constructor(m)
            if call is not None:
                self._skeleton_builder(call)

    def _constructor(self, m: re.Match[bytes]) -> Node | None:
        """The `Type::new()` / `Type::default()` call whose type name `m` matched (the type
        maybe behind a path: `libbpf_cargo::SkeletonBuilder::new`)."""
        node = self.node_at(m.start(), m.end(), "identifier", "type_identifier")
        if node is None:
            return None
        scoped = node.parent
        while (
            scoped is not None
            and scoped.type == "scoped_identifier"
            and scoped.parent is not None
            and scoped.parent.type == "scoped_identifier"
            and scoped.parent.child_by_field_name("path") == scoped
        ):
            scoped = scoped.parent
        if scoped is None or scoped.type != "scoped_identifier":
            return None
        if _last_segment(scoped.child_by_field_name("name")) not in ("new", "default"):
            return None
        call = scoped.parent
        return call if call is not None and call.type == "call_expression" else None

    def _bpf_builders(self) -> None:
        """sched_ext's `scx_cargo::BpfBuilder` (scx_utils::BpfBuilder before it), read from
        scx rust/scx_cargo/src/bpf_builder.rs: `enable_skel(input, name)` makes the source a
        libbpf-cargo skeleton. `build()` (gen_bpf_skel()) compiles `input` alone into
        `{name}.bpf.o` and writes `{name}_skel.rs`: skeleton `name`. `compile_link_gen()`
        compiles `input` and every `add_source(x)` and links them into `bpf.bpf.o`, whose
        skeleton is always `bpf` (`bpf_skel.rs`). Either way libbpf-rs loads it."""
        for m in re.finditer(_BPF_BUILDER, self.data):
            call = self._constructor(m)
            if call is None:
                continue
            methods, top = self._builder_methods(call)
            sources: list[Str] = []
            names: list[Str] = []
            for name, args, _call in methods:
                if name == "enable_skel" and len(args) >= 2:
                    sources.extend(sorted(self.strings(args[0]), key=repr))
                    names.extend(sorted(self.strings(args[1]), key=repr))
                elif name == "add_source" and args:
                    sources.extend(sorted(self.strings(args[0]), key=repr))
            if not any(name == "enable_skel" for name, _args, _call in methods):
                continue  # another crate's BpfBuilder, or none that makes a skeleton
            linked = any(name == "compile_link_gen" for name, _args, _call in methods)
            skeletons = ["bpf"] if linked else [v for _p, v in names if _p is None and v]
            written = self._written_all(sources)
            for skeleton in skeletons:
                self._prefixes.setdefault(skeleton_type_prefix(skeleton), skeleton)
            shown = ", ".join(posixpath.basename(p) for p in written) or "?"
            self.uses.append(
                LoaderUse(
                    LIBBPF_RS,
                    self.path,
                    self.span(top),
                    f"BpfBuilder {shown}",
                    sources=tuple(written),
                    skeletons=tuple(dict.fromkeys(skeletons)),
                    certain=bool(written) and not self._in_error(top),
                )
            )

    def _builder_methods(self, start: Node) -> tuple[list[tuple[str, list[Node], Node]], Node]:
        """The method calls made on a builder, in its own chain and on the variable a `let`
        binds it to, and the outermost expression of its own chain."""
        methods, top = self._chain(start)
        variable = self._bound_name(top)
        if variable is not None:
            fn = self.function_of(start)
            for use in self._identifier_nodes(variable, fn):
                parent = use.parent
                if parent is not None and parent.type == "field_expression":
                    call = parent.parent
                    if call is not None and call.type == "call_expression":
                        more, _ = self._chain(use)
                        methods.extend(more)
        return methods, top

    def _skeleton_builder(self, start: Node) -> None:
        methods, top = self._builder_methods(start)
        sources: list[Str] = []
        objects: list[Str] = []
        outputs: list[Str] = []
        for name, args, _call in methods:
            if not args:
                continue
            values = sorted(self.strings(args[0]), key=repr)
            if name == "source":
                sources.extend(values)
            elif name == "obj":
                objects.extend(values)
            elif name in ("build_and_generate", "generate"):
                outputs.extend(values)
        written_sources = self._written_all(sources)
        written_objects = self._written_all(objects)
        names: list[str] = []
        for path in written_objects or written_sources:
            names.append(skeleton_of_path(path))
        for value in outputs:
            # The module file is what `include!(".../x.skel.rs")` names elsewhere.
            base = _base(value)
            if base and base.endswith(".skel.rs"):
                names.append(base[: -len(".skel.rs")])
        names = [n for n in dict.fromkeys(names) if n]
        for name in names:
            self._prefixes.setdefault(skeleton_type_prefix(name), name)
        shown = ", ".join(posixpath.basename(p) for p in written_sources) or "?"
        certain = bool(written_sources or written_objects) and not self._in_error(start)
        self.uses.append(
            LoaderUse(
                LIBBPF_RS,
                self.path,
                self.span(top),
                f"SkeletonBuilder {shown}",
                sources=tuple(written_sources),
                objects=tuple(written_objects),
                skeletons=tuple(names),
                certain=certain,
            )
        )

    def _chain(self, start: Node) -> tuple[list[tuple[str, list[Node], Node]], Node]:
        """The method calls made on `start`'s value in one expression (`x.a().b()?.c()`), and
        the outermost expression of the chain."""
        methods = []
        node = start
        while True:
            parent = node.parent
            if parent is None:
                break
            if parent.type in ("try_expression", "parenthesized_expression"):
                node = parent
                continue
            if parent.type == "field_expression" and parent.child_by_field_name("value") == node:
                call = parent.parent
                if call is not None and call.type == "call_expression":
                    name = parent.child_by_field_name("field")
                    methods.append((name.text.decode() if name else "", _args(call), call))
                    node = call
                    continue
            break
        return methods, node

    @staticmethod
    def _bound_name(node: Node) -> str | None:
        """`x` when `node` is the value of `let x = node;` or `let mut x = node;`."""
        parent = node.parent
        if parent is None or parent.type != "let_declaration":
            return None
        if parent.child_by_field_name("value") != node:
            return None
        pattern = parent.child_by_field_name("pattern")
        if pattern is not None and pattern.type == "identifier":
            return pattern.text.decode()
        return None

    # -- written paths -------------------------------------------------------------------

    def _written_all(self, values: list[Str]) -> list[str]:
        out = []
        for value in values:
            written = self.written(value)
            if written and written not in out:
                out.append(written)
        return out

    def written(self, value: Str) -> str | None:
        """A path value as LoaderUse wants it: relative to this file's directory when the
        whole path is known (a `CARGO_MANIFEST_DIR` prefix is the crate's directory), else
        its base name (an `OUT_DIR` output, a prefix computed at run time)."""
        prefix, text = value
        if prefix is None:
            return text or None
        if prefix == "CARGO_MANIFEST_DIR" and text.startswith("/"):
            manifest = self._manifest_dir()
            if manifest is not None:
                return posixpath.normpath(posixpath.join(manifest, text.lstrip("/")))
        return _base(value)

    def _manifest_dir(self) -> str | None:
        """The crate directory relative to this file's directory: a build script sits in it,
        other files under its `src/` (or `tests/`, `examples/`, `benches/`)."""
        if posixpath.basename(self.path) == "build.rs":
            return "."
        parts = self.directory.split("/") if self.directory else []
        for i in range(len(parts) - 1, -1, -1):
            if parts[i] in ("src", "tests", "examples", "benches"):
                up = len(parts) - i
                return "/".join([".."] * up)
        return None

    # -- libbpf-rs objects ---------------------------------------------------------------

    def _object_builders(self) -> None:
        for m in _OBJECT_SITE.finditer(self.data) if b"open_" in self.data else ():
            node = self.node_at(m.start(1), m.end(1), "field_identifier")
            if node is None:
                continue
            field = node.parent
            call = field.parent if field is not None else None
            if call is None or call.type != "call_expression":
                continue
            receiver = field.child_by_field_name("value")
            refs = self.refs(receiver)
            if not any(r[0] == "objbuilder" for r in refs) and (
                refs or b"ObjectBuilder" not in self.data
            ):
                continue
            args = _args(call)
            method = m.group(1).decode()
            names = self._object_names(call, method, args)
            for name in names:
                self.objects.add(name)
            shown = ", ".join(posixpath.basename(n) for n in names) or "?"
            self.uses.append(
                LoaderUse(
                    LIBBPF_RS,
                    self.path,
                    self.span(call),
                    f"ObjectBuilder::{method} {shown}",
                    objects=tuple(names),
                    certain=bool(names) and not self._in_error(call),
                )
            )

    def _object_names(self, call: Node, method: str, args: list[Node]) -> tuple[str, ...]:
        key = ("object-names", call.id)
        if key in self._memo:
            return tuple(self._memo[key])
        if not args:
            values: frozenset = frozenset()
        elif method in ("open_file", "load_file"):
            values = self.strings(args[0])
        elif method == "open_memory" and len(args) >= 2:
            # Before libbpf-rs 0.22 (CHANGELOG 0.22.0: "Removed object name argument from
            # `open_memory`"): `open_memory(name, mem)`, the bytes second.
            values = self.bytes_paths(args[1])
        else:
            values = self.bytes_paths(args[0])
        names = tuple(self._written_all(sorted(values, key=repr)))
        self._memo[key] = frozenset(names)
        return names

    # -- aya -----------------------------------------------------------------------------

    def _aya(self) -> None:
        # `.load(` is everywhere in libbpf-rs code (`open_skel.load()`): only a file that
        # names aya's loader type can mean EbpfLoader::load by it.
        loader_type = b"EbpfLoader" in self.data or b"BpfLoader" in self.data
        sites = _AYA_SITES if loader_type else _AYA_SITES[:2]
        for which, m in _sites_of(sites, _AYA_NEEDLES, self.data):
            if which < 2:  # `Ebpf::load(`
                node = self.node_at(m.start(1), m.end(1), "identifier")
                scoped = node.parent if node is not None else None
                if scoped is None or scoped.type != "scoped_identifier":
                    continue
                if _last_segment(scoped.child_by_field_name("path")) not in ("Ebpf", "Bpf"):
                    continue
                call = scoped.parent
                method = m.group(1).decode()
                shown = f"{_last_segment(scoped.child_by_field_name('path'))}::{method}"
            else:
                node = self.node_at(m.start(1), m.end(1), "field_identifier")
                field = node.parent if node is not None else None
                call = field.parent if field is not None else None
                if field is None or not any(
                    r[0] == "ayaloader" for r in self.refs(field.child_by_field_name("value"))
                ):
                    continue
                method = m.group(1).decode()
                shown = f"EbpfLoader::{method}"
            if call is None or call.type != "call_expression":
                continue
            names = self._object_names(call, method, _args(call))
            self.uses.append(
                LoaderUse(
                    AYA,
                    self.path,
                    self.span(call),
                    f"{shown} {', '.join(posixpath.basename(n) for n in names) or '?'}",
                    objects=names,
                    auto_attach=False,
                    certain=bool(names) and b"aya" in self.data and not self._in_error(call),
                )
            )
        # An embedded object no load call in this file accounts for (passed elsewhere).
        for m in _INCLUDE.finditer(self.data) if b"include" in self.data else ():
            if m.group(1) != b"include_bytes_aligned":
                continue
            macro = self._macro_at(m.start(1), m.end(1))
            if macro is None or macro.id in self._consumed:
                continue
            names = tuple(self._written_all(sorted(self._macro_strings(macro), key=repr)))
            self.uses.append(
                LoaderUse(
                    AYA,
                    self.path,
                    self.span(macro),
                    f"include_bytes_aligned! {', '.join(posixpath.basename(n) for n in names)}",
                    objects=names,
                    auto_attach=False,
                    certain=bool(names) and not self._in_error(macro),
                )
            )

    # -- redbpf ---------------------------------------------------------------------------

    def _redbpf(self) -> None:
        """redbpf reads the object with its own ELF parser (redbpf/src/lib.rs
        `ModuleBuilder::parse`): a section is split at its first `/`, a program section is
        `kprobe/`, `kretprobe/`, `uprobe/`, `uretprobe/`, `tracepoint/`, `xdp/`,
        `socketfilter/`, `streamparser/`, `streamverdict/`, `sk_lookup/` or `task_iter/`
        followed by a name, `maps/NAME` holds legacy maps, and every other section is skipped
        without an error. Programs are attached by hand with the target given in the call
        (`attach_kprobe(fn_name, offset)`), never from the name, and never by libbpf: neither
        libbpf's table nor its auto-upgrade applies. secl does not model redbpf's names: its
        sources are `other` (SECL005)."""
        for _, m in finditer_any(_REDBPF_SITES, self.data):
            node = self.node_at(m.start(1), m.end(1), "identifier")
            scoped = node.parent if node is not None else None
            if scoped is None or scoped.type != "scoped_identifier":
                continue
            owner = _last_segment(scoped.child_by_field_name("path"))
            if owner not in ("Loader", "Module"):
                continue
            call = scoped.parent
            if call is None or call.type != "call_expression":
                continue
            method = m.group(1).decode()
            names = self._object_names(call, method, _args(call))
            shown = ", ".join(posixpath.basename(n) for n in names) or "?"
            self.uses.append(
                LoaderUse(
                    OTHER,
                    self.path,
                    self.span(call),
                    f"redbpf {owner}::{method} {shown}",
                    objects=names,
                    auto_attach=False,
                    certain=bool(names) and not inside_error(call),
                )
            )

    def _macro_at(self, start: int, end: int) -> Node | None:
        node = self.root.descendant_for_byte_range(start, end)
        if node is None or node.type != "identifier":
            return None
        parent = node.parent
        if parent is not None and parent.type == "scoped_identifier":
            parent = parent.parent
        if parent is None or parent.type != "macro_invocation":
            return None
        return parent

    # -- libbpf-rs program facts ---------------------------------------------------------

    def _program_facts(self) -> None:
        for which, m in _sites_of(_FACT_SITES, _FACT_NEEDLES, self.data):
            if which == 0:  # `.method(`
                node = self.node_at(m.start(1), m.end(1), "field_identifier")
                field = node.parent if node is not None else None
                call = field.parent if field is not None else None
                if call is None or call.type != "call_expression" or self._in_error(call):
                    continue
                self._method_fact(m.group(1).decode(), field, call)
            else:
                word = m.group(1)
                node = self.root.descendant_for_byte_range(m.end(1) - 1, m.end(1))
                while node is not None and node.type != "call_expression":
                    if node.type not in ("identifier", "scoped_identifier"):
                        node = None
                        break
                    node = node.parent
                if node is None or self._in_error(node):
                    continue
                if word.startswith(b"LinkInfo"):
                    args = _args(node)
                    if args:
                        self._link_info(self.refs(args[0]), node)
                elif word.startswith(b"bpf_program__attach_kprobe"):
                    self._libbpf_kprobe(word.decode(), node)
                else:
                    self._prog_handler(node)

    def _method_fact(self, method: str, field: Node, call: Node) -> None:
        receiver = field.child_by_field_name("value")
        refs = self.refs(receiver)
        if not refs:
            return
        fn = self.function_of(call)
        function = _function_name(fn)
        span = self.span(call)
        if method == "info":
            self._link_info(refs, call)
            return
        progs = self._programs(refs)
        if method == "attach":
            for owner in sorted({r for r in refs if r[0] == "skel"}, key=repr):
                ref = ProgramRef(self._object_ref(owner), None)
                self.facts.append(
                    LoaderFact("auto-attach", ref, self.path, span,
                               "bpf_object__attach_skeleton", function, api="Skel::attach")
                )  # fmt: skip
        if not progs:
            return
        args = _args(call)
        if method.startswith("attach"):
            libbpf = ATTACH_CALLS.get(method)
            targets: tuple[str, ...] = ()
            if method in _KPROBE_CALLS and len(args) >= 2:
                targets = tuple(sorted({t for p, t in self.strings(args[1]) if p is None}))
            api = f"Program::{method}"
            for prog in progs:
                self.facts.append(
                    LoaderFact("attach", prog, self.path, span, libbpf, function, api=api,
                               targets=targets)
                )  # fmt: skip
                if method in _PERF_EVENT_CALLS:
                    self.facts.append(
                        LoaderFact("perf-event", prog, self.path, span, libbpf, function, api=api)
                    )
            return
        kind, libbpf = _SETTERS[method]
        value = args[0].text.decode("utf-8", "replace") if args else None
        if method == "set_flags" and (value is None or "BPF_F_SLEEPABLE" not in value):
            return
        if method == "set_attach_type" and value is not None:
            value = _attach_type_constant(value)
        for prog in progs:
            self.facts.append(
                LoaderFact(kind, prog, self.path, span, value, function,
                           api=f"OpenProgramMut::{method}")
            )  # fmt: skip

    def _programs(self, refs: frozenset) -> list[ProgramRef]:
        out = []
        for r in refs:
            if r[0] != "prog":
                continue
            owner, name = r[1], r[2]
            ref = self._object_ref(owner)
            if ref.kind == "unknown":
                if name is None:
                    continue  # every program of something unknown: too vague
                out.append(ProgramRef(ObjectRef("unknown", None), name))
            else:
                out.append(ProgramRef(ref, name))
        return sorted(set(out), key=repr)

    def _object_ref(self, owner: tuple) -> ObjectRef:
        if owner[0] == "skel" and owner[1]:
            return ObjectRef("skeleton", owner[1])
        known = set(self.skeletons) | self.skeleton_types
        if owner[0] == "skel" and len(known) == 1:
            return ObjectRef("skeleton", next(iter(known)))  # the file's only skeleton
        if owner[0] == "obj" and owner[1]:
            return ObjectRef("object", owner[1])
        return ObjectRef("unknown", None)

    def _link_info(self, refs: frozenset, call: Node) -> None:
        """`link.info()` / `LinkInfo::from_fd(link.as_fd())` of a program's link, in a function
        that matches the info against a perf-event link (libbpf-rs/src/query.rs
        `LinkTypeInfo::PerfEvent`, `PerfEventType::{Kprobe,Uprobe}`)."""
        links = frozenset(r[1] for r in refs if r[0] == "link")
        progs = self._programs(links)
        fn = self.function_of(call)
        if not progs or fn is None:
            return
        function = _function_name(fn)
        call_span = self.span(call)
        checks: list[tuple[str, Span]] = []
        multi: list[tuple[str, Span]] = []
        for m in _PERF_LINK.finditer(self.data, fn.start_byte, fn.end_byte):
            node = self.node_at(m.start(), m.start() + 1, "identifier", "type_identifier")
            if node is None or node.start_byte != m.start():
                continue  # a comment, a string
            span = self.positions.span(m.start(), m.end())
            if m.group(1) in (b"KprobeMulti", b"UprobeMulti"):
                multi.append((m.group(1)[:6].decode().lower(), span))
            else:
                checks.append((_PERF_LINK_VALUES[m.group(1) or m.group(2)], span))
        seen_rows: set[int] = set()
        for value, span in checks:
            if span.start.row in seen_rows:
                continue
            seen_rows.add(span.start.row)
            for prog in progs:
                self.facts.append(
                    LoaderFact("link-info", prog, self.path, span, value, function,
                               api="Link::info", call=call_span)
                )  # fmt: skip
        if not checks:
            return
        for group, span in multi:
            for prog in progs:
                self.facts.append(
                    LoaderFact("link-info-multi", prog, self.path, span, group, function,
                               api="Link::info", call=call_span)
                )  # fmt: skip
        for m in _MISSED.finditer(self.data, fn.start_byte, fn.end_byte):
            node = self.node_at(m.start(), m.start() + 1, "identifier", "type_identifier")
            if node is None:
                continue
            span = self.positions.span(m.start(), m.end())
            for prog in progs:
                self.facts.append(
                    LoaderFact("missed-count", prog, self.path, span, "perf_event.kprobe.missed",
                               function, api="Link::info", call=call_span)
                )  # fmt: skip

    def _libbpf_kprobe(self, name: str, call: Node) -> None:
        """`libbpf_sys::bpf_program__attach_kprobe_opts(prog.as_libbpf_object().as_ptr(),
        func, &opts)`: libbpf-rs's own `attach_kprobe*` has no offset and no attach mode
        (libbpf-rs/src/program.rs `KprobeOpts` holds a cookie only), so a loader that needs
        them calls libbpf directly. The program is the first argument (through
        `as_libbpf_object()` / `as_ptr()`); `offset` and `attach_mode` are read from the
        `bpf_kprobe_opts` struct literal and the stores to its fields that come before the
        call in the function; a null `func` with an offset is an attach by address
        (libbpf.c `bpf_program__attach_kprobe_opts`: the offset is then the address)."""
        args = _args(call)
        if not args:
            return
        progs = self._programs(self.refs(args[0]))
        if not progs:
            return
        fn = self.function_of(call)
        function = _function_name(fn)
        span = self.span(call)
        api = f"libbpf_sys::{name}"
        targets: tuple[str, ...] = ()
        if len(args) >= 2 and name == "bpf_program__attach_kprobe":
            func = args[2] if len(args) >= 3 else None
        else:
            func = args[1] if len(args) >= 2 else None
        null_func = func is not None and _is_null_pointer(func)
        if func is not None and not null_func:
            targets = tuple(sorted({t for p, t in self.strings(func) if p is None}))
        for prog in progs:
            self.facts.append(
                LoaderFact("attach", prog, self.path, span, name, function, api=api,
                           targets=targets)
            )  # fmt: skip
        if name != "bpf_program__attach_kprobe_opts" or len(args) < 3:
            return
        for field, value, at in self._kprobe_opts(args[2], call, fn):
            if field == "attach_mode":
                m = re.search(r"PROBE_ATTACH_MODE_[A-Z]+", value)
                if m is None:
                    continue
                found: list[tuple[str, str | int]] = [("attach-mode", m.group())]
            else:
                number = _int_literal(value)
                if number == 0:
                    continue  # offset 0: the multi path takes it
                shown: str | int = number if number is not None else value
                found = [("attach-offset", shown)]
                if null_func:
                    found.append(("attach-address", shown))
            for kind, shown_value in found:
                for prog in progs:
                    self.facts.append(
                        LoaderFact(kind, prog, self.path, self.span(at), shown_value, function,
                                   api=api, call=span)
                    )  # fmt: skip

    def _kprobe_opts(self, node: Node, call: Node, fn: Node | None) -> list[tuple[str, str, Node]]:
        """(field, value text, node) of `offset` / `attach_mode` given to the opts `node`
        names: a struct literal written in the call, or a variable's literal and its
        `opts.field = value` stores before the call."""
        while node.type in ("reference_expression", "type_cast_expression",
                            "parenthesized_expression", "unary_expression"):  # fmt: skip
            inner = node.child_by_field_name("value") or next(iter(node.named_children), None)
            if inner is None:
                return []
            node = inner
        if node.type == "struct_expression":
            return _struct_fields(node)
        if node.type != "identifier" or fn is None:
            return []
        name = node.text.decode()
        out: list[tuple[str, str, Node]] = []
        for kind, bound in self.bindings(name, fn):
            if kind == "let" and bound.type == "struct_expression":
                out.extend(_struct_fields(bound))
        pattern = re.compile(word_start(name.encode()) + rb"\s*\.\s*(offset|attach_mode)\s*=[^=]")
        for m in pattern.finditer(self.data, fn.start_byte, call.start_byte):
            target = self.node_at(m.start(), m.start() + len(name), "identifier")
            field = target.parent if target is not None else None
            store = field.parent if field is not None else None
            if store is None or store.type != "assignment_expression":
                continue
            right = store.child_by_field_name("right")
            if right is not None:
                out.append((m.group(1).decode(), right.text.decode("utf-8", "replace"), store))
        return out

    def _prog_handler(self, call: Node) -> None:
        args = _args(call)
        if not args:
            return
        fn = self.function_of(call)
        for prefix, text in sorted(self.strings(args[0]), key=repr):
            if prefix is None:
                self.facts.append(
                    LoaderFact("prog-handler", None, self.path, self.span(call), text,
                               _function_name(fn), api="libbpf_register_prog_handler")
                )  # fmt: skip

    # -- scopes --------------------------------------------------------------------------

    @staticmethod
    def function_of(node: Node) -> Node | None:
        current = node.parent
        while current is not None:
            if current.type == "function_item":
                return current
            current = current.parent
        return None

    def _identifier_nodes(self, name: str, fn: Node | None) -> list[Node]:
        start, end = (fn.start_byte, fn.end_byte) if fn is not None else (0, len(self.data))
        out = []
        pattern = re.compile(word_start(name.encode()) + rb"\b")
        for m in pattern.finditer(self.data, start, end):
            node = self.node_at(m.start(), m.end(), "identifier")
            if node is not None:
                out.append(node)
        return out

    def bindings(self, name: str, fn: Node | None) -> list[tuple[str, Node]]:
        """Everything that gives `name` a value in function `fn` (flow-insensitive):
        ("let", value), ("wrapped", value) for `Some(name)` patterns, ("type", type),
        ("for", iterable), ("closure", closure), ("param", parameter), ("push", argument)."""
        key = (fn.id if fn is not None else -1, name)
        found = self._bindings.get(key)
        if found is not None:
            return found
        found = []
        self._bindings[key] = found
        if fn is None:
            return found
        for node in self._identifier_nodes(name, fn):
            found.extend(self._binding(node))
        return found

    def _binding(self, node: Node) -> list[tuple[str, Node]]:
        parent = node.parent
        if parent is None:
            return []
        t = parent.type
        if (
            t in ("let_declaration", "let_condition")
            and parent.child_by_field_name("pattern") == node
        ):
            out = []
            value = parent.child_by_field_name("value")
            if value is not None:
                out.append(("let", value))
            kind = parent.child_by_field_name("type")
            if kind is not None:
                out.append(("type", kind))
            return out
        if t in ("tuple_struct_pattern", "mut_pattern", "ref_pattern", "reference_pattern"):
            # `Some(x)`, `Ok(x)`, `mut x`, `&x` in a let / if let / while let pattern.
            holder = parent
            while holder is not None and holder.type in (
                "tuple_struct_pattern", "mut_pattern", "ref_pattern", "reference_pattern"
            ):  # fmt: skip
                if holder.type == "tuple_struct_pattern" and len(holder.named_children) != 2:
                    return []
                holder = holder.parent
            if holder is not None and holder.type in ("let_declaration", "let_condition"):
                value = holder.child_by_field_name("value")
                return [("let", value)] if value is not None else []
            return []
        if t == "for_expression" and parent.child_by_field_name("pattern") == node:
            value = parent.child_by_field_name("value")
            return [("for", value)] if value is not None else []
        if t == "closure_parameters" or (
            t == "parameter" and parent.parent is not None
            and parent.parent.type == "closure_parameters"
        ):  # fmt: skip
            closure = parent if t != "parameter" else parent.parent
            closure = closure.parent if closure is not None else None
            return [("closure", closure)] if closure is not None else []
        if t == "parameter" and parent.child_by_field_name("pattern") == node:
            return [("param", parent)]
        if t == "assignment_expression" and parent.child_by_field_name("left") == node:
            right = parent.child_by_field_name("right")
            return [("let", right)] if right is not None else []
        if t == "field_expression" and parent.child_by_field_name("value") == node:
            field = parent.child_by_field_name("field")
            call = parent.parent
            if (
                field is not None
                and field.text == b"push"
                and call is not None
                and call.type == "call_expression"
            ):
                args = _args(call)
                return [("push", args[0])] if args else []
        return []

    def consts(self, name: str) -> list[Node]:
        """Values of `const NAME` / `static NAME` items anywhere in the file."""
        if self._consts is None:
            found: dict[str, list[Node]] = {}
            for _, m in _sites_of(_CONSTS, _CONST_NEEDLES, self.data):
                node = self.node_at(m.start(1), m.end(1), "identifier")
                item = node.parent if node is not None else None
                if item is None or item.type not in ("const_item", "static_item"):
                    continue
                value = item.child_by_field_name("value")
                if value is not None:
                    found.setdefault(m.group(1).decode(), []).append(value)
            self._consts = found
        return self._consts.get(name, [])

    def functions(self, name: str) -> list[Node]:
        if self._functions is None:
            found: dict[str, list[Node]] = {}
            for m in _FN.finditer(self.data):
                node = self.node_at(m.start(1), m.end(1), "identifier")
                item = node.parent if node is not None else None
                if item is not None and item.type == "function_item":
                    found.setdefault(m.group(1).decode(), []).append(item)
            self._functions = found
        return self._functions.get(name, [])

    def callers(self, fn: Node) -> list[Node]:
        """Calls of `fn` in this file: `f(..)`, `Self::f(..)`, `self.f(..)`."""
        name = _function_name(fn)
        if not name:
            return []
        out = []
        for m in re.finditer(word_start(name.encode()) + rb"\s*\(", self.data):
            node = self.node_at(m.start(), m.start() + len(name), "identifier", "field_identifier")
            parent = node.parent if node is not None else None
            while parent is not None and parent.type in ("scoped_identifier", "field_expression"):
                if (
                    parent.type == "field_expression"
                    and parent.child_by_field_name("field") != node
                ):
                    break
                node, parent = parent, parent.parent
            if (
                parent is not None
                and parent.type == "call_expression"
                and parent.child_by_field_name("function") == node
            ):
                out.append(parent)
        return out

    def parameter_values(self, param: Node) -> list[Node]:
        """The arguments every caller in the file passes for `param`."""
        plist = param.parent
        fn = plist.parent if plist is not None else None
        if plist is None or fn is None or fn.type != "function_item":
            return []
        params = [c for c in plist.named_children if c.type == "parameter"]
        if param not in params:
            return []
        index = params.index(param)
        out = []
        for call in self.callers(fn):
            args = _args(call)
            if index < len(args):
                out.append(args[index])
        return out

    def field_types(self, name: str) -> list[Node]:
        """Types of struct fields called `name` anywhere in the file."""
        found = self._field_types.get(name)
        if found is None:
            found = []
            for m in re.finditer(word_start(name.encode()) + rb"\s*:", self.data):
                node = self.node_at(m.start(), m.start() + len(name), "field_identifier")
                decl = node.parent if node is not None else None
                if decl is not None and decl.type == "field_declaration":
                    kind = decl.child_by_field_name("type")
                    if kind is not None:
                        found.append(kind)
            self._field_types[name] = found
        return found

    # -- values --------------------------------------------------------------------------

    def _memoised(self, kind: str, node: Node | None, compute) -> frozenset:
        if node is None:
            return frozenset()
        key = (kind, node.id)
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        if key in self._active or self._depth > _MAX_DEPTH:
            return frozenset()
        self._active.add(key)
        self._depth += 1
        try:
            result = compute(node)
        finally:
            self._depth -= 1
            self._active.discard(key)
        if len(result) > _MAX_VALUES:
            result = frozenset(sorted(result, key=repr)[:_MAX_VALUES])
        self._memo[key] = result
        return result

    def _name_values(self, name: str, at: Node, how) -> frozenset:
        """`how(node)` over every value `name` may have where `at` is (a string or the bytes
        of an object: `how` is `strings` or `bytes_paths`)."""
        out: set = set()
        fn = self.function_of(at)
        bindings = self.bindings(name, fn)
        pushes = [n for k, n in bindings if k == "push"]
        for kind, node in bindings:
            if kind == "let":
                values = how(node)
                if pushes and how == self.strings:
                    # `path.push(x)`: the last push in the text is the one known to end it;
                    # what comes before it depends on the order the pushes run in.
                    last = max(pushes, key=lambda n: n.start_byte)
                    tails = self.strings(last) or {("?", "")}
                    values = {_path_join(("?", ""), tail) for tail in tails}
                out |= values
            elif kind == "for" and how == self.strings:
                out |= self.strings(node)  # `for src in ["a.bpf.c", "b.bpf.c"]`
            elif kind == "param":
                for arg in self.parameter_values(node):
                    out |= how(arg)
        if not bindings:
            for value in self.consts(name):
                out |= how(value)
        return frozenset(out)

    # strings -----------------------------------------------------------------------------

    def strings(self, node: Node | None) -> frozenset:
        """Every string or path value `node` may have, as (prefix, text)."""
        return self._memoised("str", node, self._strings)

    def _strings(self, node: Node) -> frozenset:
        t = node.type
        literal = _string_literal(node)
        if literal is not None:
            return frozenset({(None, literal)})
        if t in ("reference_expression", "try_expression", "parenthesized_expression",
                 "unary_expression", "type_cast_expression"):  # fmt: skip
            inner = node.child_by_field_name("value") or next(iter(node.named_children), None)
            return self.strings(inner)
        if t == "identifier":
            return self._name_values(node.text.decode(), node, self.strings)
        if t == "scoped_identifier":
            return frozenset(
                v for value in self.consts(_last_segment(node)) for v in self.strings(value)
            )
        if t == "macro_invocation":
            return frozenset(self._macro_strings(node))
        if t == "call_expression":
            return self._call_strings(node)
        if t == "array_expression":
            return frozenset(v for child in node.named_children for v in self.strings(child))
        return frozenset()

    def _call_strings(self, call: Node) -> frozenset:
        function = call.child_by_field_name("function")
        args = _args(call)
        if function is None:
            return frozenset()
        if function.type == "field_expression":
            method = _last_segment(function.child_by_field_name("field"))
            receiver = function.child_by_field_name("value")
            if method in _THROUGH:
                return self.strings(receiver)
            if method == "join" and args:
                rights = self.strings(args[0]) or {("?", "")}
                lefts = self.strings(receiver) or {("?", "")}
                return frozenset(_path_join(a, b) for a in lefts for b in rights)
            return frozenset()
        path = _path_text(function)
        if path in _PATH_WRAPPERS and args:
            return self.strings(args[0])
        if _last_segment(function) in _ENV_CALLS and args:
            names = {text for prefix, text in self.strings(args[0]) if prefix is None}
            return frozenset((name, "") for name in names) or frozenset({("?", "")})
        if function.type == "identifier":  # a helper of this file: what it returns
            return frozenset(v for fn in self.functions(path) for v in self.strings(self._tail(fn)))
        return frozenset()

    def _macro_strings(self, macro: Node) -> set[Str]:
        name = _last_segment(macro.child_by_field_name("macro"))
        tree = next((c for c in macro.children if c.type == "token_tree"), None)
        if tree is None:
            return set()
        return self._token_strings(name, tree, macro)

    def _token_strings(self, name: str, tree: Node, at: Node) -> set[Str]:
        items = _token_items(tree)
        if name in ("include", "include_str", "include_bytes", "include_bytes_aligned"):
            return self._item_strings(items[0], at) if items else set()
        if name == "env":
            if not items:
                return set()
            names = {text for prefix, text in self._item_strings(items[0], at) if prefix is None}
            return {(n, "") for n in names}
        if name == "concat":
            values: set[Str] = {(None, "")}
            for item in items:
                parts = self._item_strings(item, at)
                if not parts:
                    return set()
                values = {_join(a, b) for a in values for b in parts}
                if len(values) > _MAX_VALUES:
                    return set()
            return values
        if name == "format":
            return self._format(items, at)
        return set()

    def _item_strings(self, item: list[Node], at: Node) -> set[Str]:
        """One token-tree item: a literal, `env!(..)`, `concat!(..)`, a name, `&name`."""
        if item and item[0].type == "&":
            item = item[1:]
        if len(item) == 1:
            literal = _string_literal(item[0])
            if literal is not None:
                return {(None, literal)}
            if item[0].type == "identifier":
                return set(self._name_values(item[0].text.decode(), at, self.strings))
            return set()
        # `name!(...)`, `std::name!(...)`
        if len(item) >= 3 and item[-2].type == "!" and item[-1].type == "token_tree":
            name = item[-3].text.decode() if item[-3].type == "identifier" else ""
            return self._token_strings(name, item[-1], at)
        return set()

    def _format(self, items: list[list[Node]], at: Node) -> set[Str]:
        """`format!("{}/x.o", dir)`, `format!("{name}.bpf.c")`: literal pieces and the values
        of the arguments they name."""
        if not items or len(items[0]) != 1:
            return set()
        template = _string_literal(items[0][0])
        if template is None:
            return set()
        positional: list[list[Node]] = []
        named: dict[str, list[Node]] = {}
        for item in items[1:]:
            if len(item) >= 3 and item[0].type == "identifier" and item[1].type == "=":
                named[item[0].text.decode()] = item[2:]
            else:
                positional.append(item)
        values: set[Str] = {(None, "")}
        index = 0
        for piece in re.split(r"(\{\{|\}\}|\{[^{}]*\})", template):
            if piece in ("{{", "}}"):
                part: set[Str] = {(None, piece[0])}
            elif piece.startswith("{") and piece.endswith("}"):
                spec = piece[1:-1].split(":", 1)[0].strip()
                if not spec:
                    arg = positional[index] if index < len(positional) else None
                    index += 1
                elif spec.isdigit():
                    position = int(spec)
                    arg = positional[position] if position < len(positional) else None
                else:
                    arg = named.get(spec)
                    if arg is None:
                        part = set(self._name_values(spec, at, self.strings))
                        values = {_join(a, b) for a in values for b in part or {("?", "")}}
                        continue
                part = (self._item_strings(arg, at) if arg is not None else set()) or {("?", "")}
            else:
                part = {(None, piece)}
            values = {_join(a, b) for a in values for b in part}
            if len(values) > _MAX_VALUES:
                return set()
        return values

    # embedded objects --------------------------------------------------------------------

    def bytes_paths(self, node: Node | None) -> frozenset:
        """The object files the bytes `node` holds come from: `include_bytes!(..)`,
        `include_bytes_aligned!(..)`, `std::fs::read(path)`, through names."""
        return self._memoised("bytes", node, self._bytes_paths)

    def _bytes_paths(self, node: Node) -> frozenset:
        t = node.type
        if t in ("reference_expression", "try_expression", "parenthesized_expression",
                 "unary_expression", "type_cast_expression"):  # fmt: skip
            inner = node.child_by_field_name("value") or next(iter(node.named_children), None)
            return self.bytes_paths(inner)
        if t == "index_expression":
            return self.bytes_paths(next(iter(node.named_children), None))
        if t == "identifier":
            return self._name_values(node.text.decode(), node, self.bytes_paths)
        if t == "scoped_identifier":
            return frozenset(
                v for value in self.consts(_last_segment(node)) for v in self.bytes_paths(value)
            )
        if t == "macro_invocation":
            name = _last_segment(node.child_by_field_name("macro"))
            if name in ("include_bytes", "include_bytes_aligned"):
                self._consumed.add(node.id)
                return frozenset(self._macro_strings(node))
            return frozenset()
        if t == "call_expression":
            function = node.child_by_field_name("function")
            args = _args(node)
            if function is not None and function.type == "field_expression":
                if _last_segment(function.child_by_field_name("field")) in _THROUGH:
                    return self.bytes_paths(function.child_by_field_name("value"))
                return frozenset()
            if _path_text(function) in ("fs::read", "Vec::from", "Cow::from", "Box::new") and args:
                if _last_segment(function) == "read":
                    return self.strings(args[0])
                return self.bytes_paths(args[0])
        return frozenset()

    # objects, programs and links ---------------------------------------------------------

    def refs(self, node: Node | None) -> frozenset:
        """What a Rust expression is, as far as loading goes (plain tuples):

            ("skelbuilder", NAME)  ("skel", NAME | None)  ("skelprogs", OWNER)
            ("skellinks", OWNER)   ("objbuilder",)        ("obj", PATH | None)
            ("progiter", OWNER)    ("prog", OWNER, NAME | None)   ("link", PROG)
            ("ayaloader",)

        OWNER is ("skel", NAME | None), ("obj", PATH | None) or ("unknown", None)."""
        return self._memoised("ref", node, self._refs)

    def _refs(self, node: Node) -> frozenset:
        t = node.type
        if t in ("reference_expression", "try_expression", "parenthesized_expression",
                 "unary_expression", "type_cast_expression", "await_expression"):  # fmt: skip
            inner = node.child_by_field_name("value") or next(iter(node.named_children), None)
            return self.refs(inner)
        if t == "identifier":
            return self._identifier_refs(node)
        if t == "field_expression":
            return self._field_refs(node)
        if t == "call_expression":
            return self._call_refs(node)
        if t == "struct_expression":
            return self._type_refs(node.child_by_field_name("name"))
        if t == "index_expression":
            return frozenset()
        return frozenset()

    def _identifier_refs(self, node: Node) -> frozenset:
        name = node.text.decode()
        fn = self.function_of(node)
        out: set = set()
        for kind, bound in self.bindings(name, fn):
            if kind == "let":
                out |= self.refs(bound)
            elif kind == "type":
                out |= self._type_refs(bound)
            elif kind == "for":
                out |= self._element_refs(self.refs(bound), node, name)
            elif kind == "closure":
                out |= self._closure_refs(bound, node, name)
            elif kind == "param":
                # What the callers pass says more (the object's path) than the declared type.
                passed: set = set()
                if self._depth < _MAX_DEPTH - _MAX_CALLER_DEPTH:
                    for arg in self.parameter_values(bound):
                        passed |= self.refs(arg)
                out |= passed or self._type_refs(bound.child_by_field_name("type"))
        return frozenset(out)

    def _element_refs(self, iterable: frozenset, use: Node, name: str) -> frozenset:
        """What `for NAME in ITER` gives NAME: every program of an object (narrowed to one
        name when the use sits under `if NAME.name() == "x"`)."""
        out = set()
        chosen = self._name_guard(use, name)
        for r in iterable:
            if r[0] == "progiter":
                out.add(("prog", r[1], chosen))
        return frozenset(out)

    def _closure_refs(self, closure: Node, use: Node, name: str) -> frozenset:
        """A closure parameter: `progs_mut().for_each(|p| ..)`, `.find(|p| p.name() == "x")`."""
        call = closure.parent.parent if closure.parent is not None else None
        if call is None or call.type != "call_expression":
            return frozenset()
        function = call.child_by_field_name("function")
        if function is None or function.type != "field_expression":
            return frozenset()
        iterable = self.refs(function.child_by_field_name("value"))
        chosen = self._compared_name(closure.child_by_field_name("body"), name)
        if chosen is None:
            chosen = self._name_guard(use, name)
        return frozenset(("prog", r[1], chosen) for r in iterable if r[0] == "progiter")

    def _name_guard(self, use: Node, name: str) -> str | None:
        """`x` when `use` sits in the body of `if NAME.name() == "x" { .. }`."""
        current = use.parent
        while current is not None and current.type not in ("function_item", "for_expression",
                                                           "closure_expression"):  # fmt: skip
            if current.type == "if_expression":
                chosen = self._compared_name(current.child_by_field_name("condition"), name)
                if chosen is not None:
                    return chosen
            current = current.parent
        return None

    def _compared_name(self, node: Node | None, name: str) -> str | None:
        """`x` from `NAME.name() == "x"` in `node` (either side; `OsStr::new("x")`,
        `NAME.name().to_str() == Some("x")` and constants too)."""
        if node is None:
            return None
        receiver = re.compile(rb"\s*" + re.escape(name.encode()) + rb"\s*\.\s*name\s*\(\s*\)")
        stack = [node]
        while stack:
            current = stack.pop()
            if current.type == "binary_expression":
                left = current.child_by_field_name("left")
                right = current.child_by_field_name("right")
                for a, b in ((left, right), (right, left)):
                    if a is None or b is None or not receiver.match(a.text):
                        continue
                    known = sorted(text for prefix, text in self.strings(b) if prefix is None)
                    if len(known) == 1:
                        return known[0]
            stack.extend(current.named_children)
        return None

    def _field_refs(self, node: Node) -> frozenset:
        value = node.child_by_field_name("value")
        field = _last_segment(node.child_by_field_name("field"))
        inner = self.refs(value)
        if field == "progs":
            owners = {r for r in inner if r[0] == "skel"} or {("unknown", None)}
            return frozenset(("skelprogs", owner) for owner in owners)
        if field == "links":
            owners = {r for r in inner if r[0] == "skel"} or {("unknown", None)}
            return frozenset(("skellinks", owner) for owner in owners)
        out: set = set()
        for r in inner:
            if r[0] == "skelprogs":
                out.add(("prog", r[1], field))
            elif r[0] == "skellinks":
                out.add(("link", ("prog", r[1], field)))
        if out:
            return frozenset(out)
        for kind in self.field_types(field):
            out |= self._type_refs(kind)
        return frozenset(out)

    def _call_refs(self, call: Node) -> frozenset:
        function = call.child_by_field_name("function")
        if function is None:
            return frozenset()
        args = _args(call)
        if function.type != "field_expression":
            return self._function_refs(function, args)
        method = _last_segment(function.child_by_field_name("field"))
        inner = self.refs(function.child_by_field_name("value"))
        if method in _THROUGH:
            return inner
        out: set = set()
        for r in inner:
            kind = r[0]
            if kind == "skelbuilder" and method in ("open", "open_opts"):
                out.add(("skel", r[1]))
            elif kind in ("skel", "obj") and method == "load":
                out.add(r)
            elif kind == "objbuilder" and method in ("open_file", "open_memory"):
                names = self._object_names(call, method, args)
                for name in names or (None,):
                    out.add(("obj", name))
            elif kind == "objbuilder":
                out.add(r)  # name(), pin_root_path(), debug(): `&mut Self`
            elif kind == "obj" and method in ("prog", "prog_mut") and args:
                names = {text for prefix, text in self.strings(args[0]) if prefix is None}
                for name in names or {None}:
                    out.add(("prog", r, name))
            elif kind == "obj" and method in ("progs", "progs_mut", "progs_iter",
                                              "progs_iter_mut"):  # fmt: skip
                out.add(("progiter", r))
            elif kind == "skel" and method in ("progs", "progs_mut"):
                out.add(("skelprogs", r))  # before libbpf-cargo 0.24
            elif kind == "skelprogs" and method not in _ITERATOR_METHODS:
                out.add(("prog", r[1], method))
            elif kind == "progiter" and method in ("filter", "skip", "take", "rev", "by_ref"):
                out.add(r)
            elif kind == "progiter" and method in ("next", "last", "nth", "find"):
                chosen = None
                if method == "find" and args and args[0].type == "closure_expression":
                    params = args[0].child_by_field_name("parameters")
                    names = [c.text.decode() for c in params.named_children] if params else []
                    param = names[0].lstrip("&").strip() if names else ""
                    chosen = self._compared_name(args[0].child_by_field_name("body"), param)
                out.add(("prog", r[1], chosen))
            elif kind == "prog" and method.startswith("attach"):
                out.add(("link", r))
            elif kind == "ayaloader" and method not in ("load", "load_file"):
                out.add(r)  # EbpfLoader's setters return `&mut Self`
        if not inner and self.libbpf_rs:
            # A receiver this file does not show: only the shapes that are libbpf-rs's alone.
            if method in ("progs", "progs_mut"):
                # Before libbpf-cargo 0.24 a skeleton's accessor struct (`.progs().NAME()`),
                # since libbpf-rs 0.24 `Object::progs_mut()`, an iterator of programs
                # (libbpf-rs/src/object.rs `ObjectCore::progs`): `.find(..)` on it.
                out.add(("skelprogs", ("unknown", None)))
                out.add(("progiter", ("unknown", None)))
            elif method in ("progs_iter", "progs_iter_mut"):
                out.add(("progiter", ("unknown", None)))
            elif method in ("prog", "prog_mut") and args:
                for prefix, text in self.strings(args[0]):
                    if prefix is None:
                        out.add(("prog", ("unknown", None), text))
        return frozenset(out)

    def _function_refs(self, function: Node, args: list[Node]) -> frozenset:
        last = _last_segment(function)
        if function.type == "scoped_identifier":
            owner = _last_segment(function.child_by_field_name("path"))
            if last in ("new", "default"):
                m = re.fullmatch(r"(\w+)SkelBuilder", owner)
                if m:
                    return frozenset({("skelbuilder", self._snake(m.group(1)))})
                if owner == "ObjectBuilder":
                    return frozenset({("objbuilder",)})
                if owner in ("EbpfLoader", "BpfLoader"):
                    return frozenset({("ayaloader",)})
            if last in ("Some", "Ok", "new") and owner in ("Box", "Rc", "Arc", "RefCell",
                                                           "Mutex", "Cell"):  # fmt: skip
                return self.refs(args[0]) if args else frozenset()
        if last in ("Some", "Ok") and args:
            return self.refs(args[0])
        # A helper of this file: what it returns (its body's last expression), else what its
        # declared return type says.
        out: set = set()
        if function.type == "identifier":
            for fn in self.functions(last):
                returned = self.refs(self._tail(fn))
                kind = fn.child_by_field_name("return_type")
                out |= returned or (self._type_refs(kind) if kind is not None else frozenset())
        return frozenset(out)

    @staticmethod
    def _tail(fn: Node) -> Node | None:
        """The expression a function's body ends with (no `;` after it)."""
        body = fn.child_by_field_name("body")
        if body is None:
            return None
        children = [c for c in body.named_children if c.type not in ("line_comment",
                                                                      "block_comment")]  # fmt: skip
        if not children:
            return None
        last = children[-1]
        if last.type == "expression_statement":
            if last.children and last.children[-1].type == ";":
                return None
            return next(iter(last.named_children), None)
        if last.type.endswith(("_declaration", "_item", "_statement")):
            return None
        return last

    def _type_refs(self, kind: Node | None) -> frozenset:
        """What a declared type says: `ProbeSkel<'_>`, `&mut OpenProbeSkel`, `Object`,
        `Result<Option<ProbeSkel>>`."""
        if kind is None:
            return frozenset()
        text = kind.text
        out: set = set()
        for _start, _end, camel in _prefixed(_SKEL_BUILDER, text):
            out.add(("skelbuilder", self._snake(camel)))
        for _start, _end, camel in _prefixed(_SKEL_TYPE, text):
            name = self._skeleton_type(camel)
            if name:
                out.add(("skel", name))
        if re.search(rb"\b(?:Open)?Object\b", text):
            out.add(("obj", None))
        if re.search(rb"\bObjectBuilder\b", text):
            out.add(("objbuilder",))
        return frozenset(out)
