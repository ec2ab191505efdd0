"""Go loaders: which library a Go file opens BPF objects with, and what it does to programs.

Read with tree-sitter-go. A file is parsed only when `is_go_loader` finds one of the libraries
in its bytes; sites are then found by a bytes search for the calls that matter and checked
against the tree (comments and strings never count), and values are followed backwards on
demand, flow-insensitively (every value a variable is ever given counts):

* string literals, constants and variables of the file and of the function, `+`,
  `filepath.Join` / `path.Join`, `fmt.Sprintf` with `%s`;
* `//go:embed` variables (`[]byte`, `string`, `embed.FS` and its `ReadFile`), files read with
  `os.ReadFile` / `ioutil.ReadFile`, readers over either (`bytes.NewReader`);
* composite literals (`NewModuleArgs{BPFObjPath: ...}`, `range` over a slice or map literal,
  fields of anonymous structs), struct fields assigned anywhere in the file (`t.mod = ...`);
* parameters, to the arguments every caller in the file passes (a wrapper whose program comes
  from its parameters is read once per call: each call's program gets that call's values);
  the returns of the file's own functions;
* the rest of the package, when the file needs it (`refine_packages`): names, functions,
  methods and field stores declared in its other files, the calls there; for an exported
  function of a libbpfgo loader, the calls `pkg.F(...)` of the module's other packages.

Libraries (module paths as imported):

* cilium/ebpf (`CILIUM`): `//go:generate` lines running bpf2go, `ebpf.LoadCollectionSpec`,
  `LoadCollectionSpecFromReader` (what bpf2go's generated `loadX()` calls), `LoadCollection`,
  `NewCollection*` on a spec the file does not show, `loadXObjects()` of a generated file.
  cilium/ebpf never attaches anything by itself: `auto_attach` is False.
* libbpfgo (`LIBBPFGO`): `NewModuleFrom*` opens an object with libbpf; its programs
  (`GetProgram`, `Iterator().NextProgram()`) get the C extractor's facts. `api` is the libbpfgo
  method (what a finding shows as `X()` here); an "attach" fact's `value` is the libbpf call
  behind it.
* gobpf (`GOBPF`): `bcc.NewModule(source, cflags)` (BCC compiles C text), `elf.NewModule*`.
* dropbox/goebpf (`OTHER`): `LoadElf(path)` of its System reads the object with its own ELF
  reader (loader.go: legacy `maps` section, programs by exact section name), not libbpf.
* aws/aws-ebpf-sdk-go (`OTHER`): `LoadBpfFile(path, pinPath)` and
  `LoadBpfFileWithCustomData(BpfCustomData{FilePath: path, ...})` of its elfparser client
  (pkg/elfparser/elf.go: the object read with Go's debug/elf, the legacy `maps` section,
  programs typed by the section's first word, parseSection()), not libbpf.
* cgo: `C.libbpf_register_prog_handler(...)` in Go, and the C code of the preamble (the comment
  right before `import "C"`), read by the C extractor; `C.bpf_object__open*` (C libbpf).
* ebpf-manager (`EBPF_MANAGER_MODULES`): `Init` / `InitWithOptions` / `LoadELF` of a manager
  load the object with cilium/ebpf (kind `cilium-ebpf`); the object is the `.o` name that
  flows into the reader, through calls the evaluator cannot follow.
"""

from __future__ import annotations

import os
import posixpath
import re
from functools import cache, partial

from secl.loaders import CILIUM, GOBPF, LIBBPF, LIBBPFGO, OTHER, FileLoaders, LoaderUse
from secl.parse.binding import binding
from secl.parse.loader import LoaderFact, LoaderFacts, ObjectRef, ProgramRef
from secl.parse.tree import Positions, finditer_any, inside_error, word_start

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from collections.abc import Callable

    from tree_sitter import Node, Parser, Query, Tree

    from secl.facts import Span

CILIUM_MODULE = "github.com/cilium/ebpf"
LIBBPFGO_MODULE = "github.com/aquasecurity/libbpfgo"
# Import paths that are one of the libraries under an older name: libbpfgo lived in tracee's
# repository (github.com/aquasecurity/tracee/libbpfgo) before its own. A fork imported under
# its own path (`bpf "github.com/someone/libbpfgo"`) is the same package, libbpfgo, with the
# same API over libbpf: any import path whose last element is `libbpfgo` stands for it.
_IMPORT_ALIASES = {"github.com/aquasecurity/tracee/libbpfgo": LIBBPFGO_MODULE}
_LIBBPFGO_PACKAGE = "/libbpfgo"
GOBPF_BCC = "github.com/iovisor/gobpf/bcc"
GOBPF_ELF = "github.com/iovisor/gobpf/elf"
GOEBPF_MODULE = "github.com/dropbox/goebpf"
AWS_ELFPARSER = "github.com/aws/aws-ebpf-sdk-go/pkg/elfparser"
# ebpf-manager: github.com/DataDog/ebpf-manager, its fork github.com/gojue/ebpfmanager (named
# github.com/ehids/ebpfmanager before: its go.mod history), and the older manager package of
# DataDog's cilium/ebpf fork. All load with cilium/ebpf (see _MANAGER_INIT).
EBPF_MANAGER_MODULES = (
    "github.com/DataDog/ebpf-manager",
    "github.com/gojue/ebpfmanager",
    "github.com/ehids/ebpfmanager",
    "github.com/DataDog/ebpf/manager",
)

# Plain substring tests, cheaper than one regex over every Go file of a tree.
_HINTS = (
    CILIUM_MODULE.encode(),
    # libbpfgo's import path, or a fork's (an import string ending in /libbpfgo; only its
    # /helpers package alone, which loads nothing, no longer passes)
    b'/libbpfgo"',
    b"github.com/iovisor/gobpf",
    b"bpf2go",
    b"libbpf_register_prog_handler",
    b"C.bpf_object__open",
    b"ebpf-manager",
    b"ebpfmanager",
    b"github.com/DataDog/ebpf/manager",
    b"github.com/dropbox/goebpf",
    b"github.com/aquasecurity/tracee/libbpfgo",
    b"aws-ebpf-sdk-go/pkg/elfparser",
    b"BPF2GO",  # `//go:generate $BPF2GO ...` (_tool_variable), as text only
)
_EMBED_OBJECT = re.compile(rb"//go:embed[ \t][^\n]*\.o\b")
# What makes a parse worth it (a file with only bpf2go go:generate lines needs no tree).
_PARSE_HINTS = _HINTS[:3] + _HINTS[4:-1] + (b"go:embed",)

# Call sites that become uses or facts, per library: (the literal a name starts with, the
# pattern of the rest). The names are checked against the tree.
_SITE_NAMES = {
    "libbpfgo": (
        (b"NewModule", rb"\w*"), (b"Attach", rb"\w+"),
        (b"Set", rb"(?:ExpectedAttachType|AttachType|Type|ProgramType|Autoload)"),
    ),
    "gobpf": ((b"NewModule", rb"\w*"),),
    "goebpf": ((b"LoadElf", b""),),
    "awssdk": ((b"LoadBpfFile", rb"(?:WithCustomData)?"),),
    "cilium": (
        (b"LoadCollection", rb"\w*"), (b"NewCollection", rb"\w*"), (b"load", rb"\w+Objects"),
        (b"Load", rb"\w+Objects"),
    ),
    "cgo": ((b"libbpf_register_prog_handler", b""), (b"bpf_object__open", rb"\w*")),
}  # fmt: skip


def _site_names(libraries: list[str]) -> list[bytes]:
    """The name patterns of `libraries`' sites, each led by its literal
    (secl.parse.tree.word_start), in `_SITE_NAMES` order without repeats."""
    return list(
        dict.fromkeys(
            word_start(lit) + rest for name in libraries for lit, rest in _SITE_NAMES[name]
        )
    )


def _site_regex(libraries: list[str]) -> re.Pattern[bytes]:
    """`\\b(NAME|...)\\s*\\(` for the names of `libraries` (a search of one broken chunk)."""
    return re.compile(rb"(" + b"|".join(_site_names(libraries)) + rb")\s*\(")


_SITE = _site_regex(list(_SITE_NAMES))


# libbpfgo attach methods used as values: `attach = prog.AttachKprobeOffset`.
_METHOD_VALUE = re.compile(rb"\.[ \t]*(Attach\w+)\b(?![ \t]*\()")


@cache
def _site_patterns(libraries: frozenset[str]) -> list[re.Pattern[bytes]]:
    """The site search for the libraries a file imports: `(NAME)\\s*\\(` per name, for
    secl.parse.tree.finditer_any (the matches of the alternation `_site_regex`). Each is
    searched for by its literal; one pattern of alternatives with different first bytes is
    tried at every byte of the file."""
    return [re.compile(rb"(" + name + rb")\s*\(") for name in _site_names(sorted(libraries))]


# At the start of a line (`^` in MULTILINE), checked behind the literal so that the literal
# leads the search.
_GENERATE = re.compile(rb"//go:generate(?<![^\n]//go:generate)[ \t]([^\n]*)")
_GENERATED_BY_BPF2GO = b"Code generated by bpf2go; DO NOT EDIT."

# libbpfgo (module.go): NewModuleFromFile(path), NewModuleFromFileArgs(NewModuleArgs{BPFObjPath}),
# NewModuleFromBuffer(buf, name), NewModuleFromBufferArgs(NewModuleArgs{BPFObjBuff,
# BPFObjName}); all four end in libbpf's bpf_object__open_file / bpf_object__open_mem.
_LIBBPFGO_OPEN = frozenset(
    {"NewModuleFromFile", "NewModuleFromFileArgs", "NewModuleFromBuffer", "NewModuleFromBufferArgs"}
)
_LIBBPFGO_ARGS_OPEN = frozenset({"NewModuleFromFileArgs", "NewModuleFromBufferArgs"})
# libbpfgo prog.go: BPFProg method -> the libbpf call it makes. Every one is an "attach".
_LIBBPFGO_ATTACH = {
    # attachKprobeCommon(): cgo_bpf_kprobe_opts_new(cookie 0, offset, retprobe, attach mode 0,
    # i.e. PROBE_ATTACH_MODE_DEFAULT: libbpfgo never sets a mode) then
    # bpf_program__attach_kprobe_opts(prog, C.CString(symName), opts).
    "AttachKprobe": "bpf_program__attach_kprobe_opts",
    "AttachKretprobe": "bpf_program__attach_kprobe_opts",
    # The same with symName "" and offset = the address: the kernel takes an empty name as
    # none (kernel/trace/trace_event_perf.c: perf_kprobe_init()) and probes the address that
    # libbpf passes in config2 (libbpf.c: perf_event_open_probe()). libbpfgo's own
    # selftest/tracing-by-offset passes a kallsyms address.
    "AttachKprobeOffset": "bpf_program__attach_kprobe_opts",
    "AttachKretprobeOnOffset": "bpf_program__attach_kprobe_opts",
    # doAttachUprobe(): bpf_program__attach_uprobe(prog, ret, pid, path, offset);
    # doAttachUprobeOpts(): libbpfgo.c cgo_bpf_program__attach_uprobe_opts(), a
    # bpf_uprobe_opts with ref_ctr_offset, cookie and retprobe only (no attach mode). A file
    # offset is no SECL201 evidence: uprobe_multi takes offsets.
    "AttachUprobe": "bpf_program__attach_uprobe",
    "AttachURetprobe": "bpf_program__attach_uprobe",
    "AttachUprobeWithOpts": "bpf_program__attach_uprobe_opts",
    "AttachURetprobeWithOpts": "bpf_program__attach_uprobe_opts",
    "AttachUprobeMulti": "bpf_program__attach_uprobe_multi",
    "AttachURetprobeMulti": "bpf_program__attach_uprobe_multi",
    "AttachUSDT": "bpf_program__attach_usdt",
    # AttachGeneric(): bpf_program__attach(), the section's own attach function.
    "AttachGeneric": "bpf_program__attach",
    "AttachPerfEvent": "bpf_program__attach_perf_event",
    "AttachTracepoint": "bpf_program__attach_tracepoint",
    "AttachRawTracepoint": "bpf_program__attach_raw_tracepoint",
    "AttachLSM": "bpf_program__attach_lsm",
    "AttachXDP": "bpf_program__attach_xdp",
    "AttachCgroup": "bpf_program__attach_cgroup",
    "AttachNetns": "bpf_program__attach_netns",
    "AttachIter": "bpf_program__attach_iter",
    "AttachGenericFD": "bpf_prog_attach",
    # libbpfgo.c cgo_bpf_prog_attach_cgroup_legacy(): the bpf() syscall itself.
    "AttachCgroupLegacy": "BPF_PROG_ATTACH",
    "AttachXDPLegacy": "bpf_xdp_attach",
}
_BY_ADDRESS = frozenset({"AttachKprobeOffset", "AttachKretprobeOnOffset"})
_KPROBE_BY_NAME = frozenset({"AttachKprobe", "AttachKretprobe"})
# libbpfgo reads no link info (link.go: a BPFLink offers Destroy, FileDescriptor, Pin, Unpin
# and Reader only), so it gives no "link-info" facts, and no "attach-mode" ones (above).
# prog.go: SetExpectedAttachType / SetAttachType (deprecated alias) ->
# bpf_program__set_expected_attach_type; SetType / SetProgramType (deprecated alias) ->
# bpf_program__set_type; SetAutoload -> bpf_program__set_autoload.
_LIBBPFGO_SET = {
    "SetExpectedAttachType": "expected-attach-type",
    "SetAttachType": "expected-attach-type",
    "SetType": "set-type",
    "SetProgramType": "set-type",
    "SetAutoload": "autoload",
}
# cilium/ebpf: elf_reader.go LoadCollectionSpec(file), LoadCollectionSpecFromReader(rd);
# collection.go LoadCollection(file), NewCollection(spec), NewCollectionWithOptions(spec, o).
_CILIUM_SPEC = frozenset({"LoadCollectionSpec", "LoadCollectionSpecFromReader", "LoadCollection"})
_CILIUM_NEW = frozenset({"NewCollection", "NewCollectionWithOptions"})
# gobpf: bcc/module.go NewModule(code, cflags); elf/module.go NewModule(fileName),
# NewModuleWithLog(fileName, size), NewModuleFromReader(r), NewModuleFromReaderWithLog(r, size).
_GOBPF_ELF_OPEN = frozenset(
    {"NewModule", "NewModuleWithLog", "NewModuleFromReader", "NewModuleFromReaderWithLog"}
)
_C_OPEN = frozenset({"bpf_object__open_file", "bpf_object__open", "bpf_object__open_mem"})
# ebpf-manager's (*Manager) methods that read the object, with their argument count. Both
# libraries' manager.go: Init(elf io.ReaderAt) calls InitWithOptions(elf, Options{}), which
# reads the object with cilium/ebpf's ebpf.LoadCollectionSpecFromReader(elf) (DataDog: through
# initState() -> loadELF(); gojue: in InitWithOptions itself); DataDog's LoadELF(elf) calls
# loadELF() alone. Programs are attached by the manager from its Probe structs (probe.go:
# HookFuncName / AttachToFuncName / MatchFuncName / SyscallFuncName, else cilium/ebpf's own
# ProgramSpec.AttachTo in DataDog's internalInit(); tracepoint.go: `tracepoint/CAT/NAME` split
# from the section), never by libbpf's reading of the section suffix: cilium/ebpf's rules.
_MANAGER_INIT = {"Init": 1, "InitWithOptions": 2, "LoadELF": 1}
_MANAGER_SITE = re.compile(rb"\b(Init|InitWithOptions|LoadELF)\s*\(")
# `bytecode/probe.o`, `tracer-debug.o`: a file name, not a bare suffix such as `_core.o`.
_OBJECT_NAME = re.compile(r"(?:.*/)?[^\W_][\w.+-]*\.o")
_MAX_LOOSE = 256  # expressions visited to find the object names of one reader

# cmd/bpf2go/main.go newB2G(): the flags that take no value; every other one takes the next
# word (or `=value`).
_BPF2GO_BOOL_FLAGS = frozenset({"verbose", "no-strip", "no-global-types"})
_BPF2GO_FLAGS = frozenset(
    {"cc", "strip", "cflags", "tags", "target", "makebase", "type", "output-stem",
     "output-suffix", "output-dir", "go-package"}
)  # fmt: skip
# cmd/bpf2go/gen/target.go targetsByGoArch: GOARCH -> (clang target, linux arch). Arches with
# no linux arch (mipsle, mips64, mips64le, wasm) are rejected as -target by FindTarget().
_BPF2GO_ARCHES = {
    "386": ("bpfel", "x86"), "amd64": ("bpfel", "x86"), "arm": ("bpfel", "arm"),
    "arm64": ("bpfel", "arm64"), "loong64": ("bpfel", "loongarch"), "mips": ("bpfeb", "mips"),
    "ppc64": ("bpfeb", "powerpc"), "ppc64le": ("bpfel", "powerpc"),
    "riscv64": ("bpfel", "riscv"), "s390x": ("bpfeb", "s390"),
}  # fmt: skip
# `go run` / `go tool` flags that take the next word as their value.
_GO_VALUE_FLAGS = frozenset(
    {"-C", "-p", "-o", "-tags", "-mod", "-modfile", "-ldflags", "-gcflags", "-asmflags",
     "-gccgoflags", "-buildmode", "-compiler", "-installsuffix", "-pkgdir", "-overlay", "-pgo",
     "-exec", "-toolexec", "-coverpkg", "-covermode", "-buildvcs"}
)  # fmt: skip
# Calls whose result carries their first argument's contents.
_TRANSPARENT = frozenset(
    {("bytes", "NewReader"), ("bytes", "NewBuffer"), ("strings", "NewReader"), ("C", "CString"),
     ("C", "CBytes")}
)  # fmt: skip
# Every byte but LF to a space, in one C pass (bytes.translate), not one regex match per byte.
_BLANK_BUT_NEWLINES = bytes(10 if b == 10 else 32 for b in range(256))
_UNKNOWN_VAR = "\x00"  # stands for an environment variable go generate would expand

_MAX_VALUES = 64
_MAX_DEPTH = 12
_MAX_PINNED = 32  # elements of a range literal tried one by one
_UNKNOWN_OWNER = ObjectRef("unknown", None)
# Go's predeclared functions and types (the spec's Universe block): a call of one is never a
# function of another file of the package.
_GO_PREDECLARED = frozenset(
    {"append", "cap", "clear", "close", "complex", "copy", "delete", "imag", "len", "make",
     "max", "min", "new", "panic", "print", "println", "real", "recover", "bool", "byte",
     "complex64", "complex128", "error", "float32", "float64", "int", "int8", "int16", "int32",
     "int64", "rune", "string", "uint", "uint8", "uint16", "uint32", "uint64", "uintptr", "any",
     "true", "false", "iota", "nil"}
)  # fmt: skip


@cache
def go_parser() -> Parser:
    # A Parser holds no state between parse() calls; caching it only saves set-up time.
    ts = binding("tree_sitter")
    return ts.Parser(ts.Language(binding("tree_sitter_go").language()))


def parse_go(data: bytes) -> Tree:
    return go_parser().parse(data)


# The statements `scope` reads (`_GoFile._bind_statement`).
_BINDERS = ("short_var_declaration", "assignment_statement", "var_spec", "const_spec",
            "range_clause", "func_literal")  # fmt: skip


@cache
def _binders() -> Query:
    """The statements `scope` reads, found by tree-sitter in C rather than by a walk."""
    ts = binding("tree_sitter")
    language = ts.Language(binding("tree_sitter_go").language())
    return ts.Query(language, " ".join(f"({k}) @n" for k in _BINDERS))


def _binding_nodes(body: Node) -> list[Node]:
    """The binding statements under `body`, in the order a right-to-left preorder walk meets
    them (the order `scope` has always recorded values in): by end descending, then start."""
    cursor = binding("tree_sitter").QueryCursor(_binders())
    cursor.set_byte_range(body.start_byte, body.end_byte)
    start, end = body.start_byte, body.end_byte
    found = [
        n
        for nodes in cursor.captures(body).values()
        for n in nodes
        if n.start_byte >= start and n.end_byte <= end
    ]
    found.sort(key=lambda n: (-n.end_byte, n.start_byte))
    return found


def is_go_loader(data: bytes) -> bool:
    """Whether a Go file is worth parsing: it names one of the loader libraries, bpf2go, a
    cgo prog handler or C libbpf, or embeds an object file."""
    # Every hint holds `bpf` or `BPF` (tests/loaders/test_golang.py keeps it so): two scans
    # turn most Go files of a project away, where a dozen would.
    if (b"bpf" in data or b"BPF" in data) and any(hint in data for hint in _HINTS):
        return True
    return b"go:embed" in data and _EMBED_OBJECT.search(data) is not None


def parses_go(data: bytes) -> bool:
    """Whether `extract_go` parses a Go loader file: one with only bpf2go `go:generate` lines
    is read as text."""
    return any(hint in data for hint in _PARSE_HINTS)


def extract_go(path: str, data: bytes) -> FileLoaders:
    """Every loader use and libbpf-family fact of one Go file. Never raises: a file that does
    not parse where it matters gets a one-line `problem`, and what is certain."""
    go = _GoFile(path, data)
    try:
        return go.run()
    except RecursionError:
        return FileLoaders(path, problem="Go file too deeply nested to read; loaders skipped")
    except Exception as err:  # a bug here must not stop the run: say it, in one line
        return FileLoaders(path, problem=f"could not read Go loader code ({err!r}); skipped")
    finally:
        go.release()


# -- packages ------------------------------------------------------------------------------

_MAX_MODULE_FILES = 4000  # Go files of a module read to find the callers of a package


def refine_packages(files: list[FileLoaders], read: Callable[[str], bytes | None]) -> None:
    """Read again, with the other files of their package, the Go files whose loader calls
    need values from them (FileLoaders.wants_package): names and functions declared next
    to them, the callers of their functions; and, for an exported function no call in the
    package gives values, the calls of the module's other packages (`loader.Load("./bpf/" +
    name)` in cmd/). Each call passes its own values; a value no caller shows stays unknown.
    `read(path)` gives a file's bytes (None: unreadable). Replaces entries of `files`."""
    wanted: dict[str, list[int]] = {}
    for i, found in enumerate(files):
        if found.wants_package and found.path.endswith(".go"):
            wanted.setdefault(os.path.dirname(found.path), []).append(i)
    for directory, indexes in wanted.items():
        # One reading of the directory for all its files (test files apart: their package
        # holds more files, and what is worked out in one package is kept with its files).
        parsed: dict[bool, dict[str, _GoFile]] = {False: {}, True: {}}
        for i in indexes:
            path = files[i].path
            test = path.endswith("_test.go")
            me = parsed[test].get(path)
            data = me.data if me is not None else read(path)
            if data is None:
                continue
            me = me or _GoFile(path, data)
            package = _package_files(directory, me, read, test, parsed[test])
            result = _run_in(me, package, {})
            # The module's other packages are read for libbpf-family loaders only: what
            # their callers pass decides SECL2xx evidence (cilium/ebpf never gets any).
            if me.wants_outside and me._imports_libbpfgo():
                outside = _module_callers(directory, me.wants_outside, read)
                if outside:
                    me = _GoFile(path, data)
                    package = _package_files(directory, me, read, test, {})
                    result = _run_in(me, package, outside)
                    for go in [*package, *(f for calls in outside.values() for f, _ in calls)]:
                        go.release()
            files[i] = result
        for group in parsed.values():
            for go in group.values():
                go.release()


def _run_in(me: _GoFile, package: list[_GoFile], outside: dict) -> FileLoaders:
    me.package = package
    me.outside = outside
    for other in package:
        other.package = package
    try:
        return me.run()
    except RecursionError:
        return FileLoaders(me.path, problem="Go file too deeply nested to read; loaders skipped")
    except Exception as err:  # a bug here must not stop the run: say it, in one line
        return FileLoaders(me.path, problem=f"could not read Go loader code ({err!r}); skipped")


def _package_files(
    directory: str,
    me: _GoFile,
    read: Callable[[str], bytes | None],
    test: bool,
    parsed: dict[str, _GoFile],
) -> list[_GoFile]:
    """`me` and the other Go files of its directory in the same package (test files only
    for a test file), parsed as far as their declarations; `parsed` keeps the files read
    (path -> file) for the next file of the directory."""
    out = [me]
    parsed[me.path] = me
    package = me._package_name()
    try:
        names = sorted(os.listdir(directory or "."))
    except OSError:
        return out
    for name in names:
        path = os.path.join(directory, name) if directory else name
        if not name.endswith(".go") or path == me.path or (name.endswith("_test.go") and not test):
            continue
        other = parsed.get(path)
        if other is None:
            data = read(path)
            if data is None:
                continue
            other = parsed[path] = _GoFile(path, data)
        if other._package_name() != package:
            continue
        other.prepare()
        out.append(other)
    return out


def _module_callers(
    directory: str, names: set[str], read: Callable[[str], bytes | None]
) -> dict[str, list[tuple[_GoFile, Node]]]:
    """Calls `pkg.Name(...)` of the exported functions `names` of the package in
    `directory`, from the other packages of its Go module (vendored and testdata
    directories skipped, as the loader walk skips them)."""
    root = os.path.abspath(directory or ".")
    module_dir = root
    while not os.path.isfile(os.path.join(module_dir, "go.mod")):
        parent = os.path.dirname(module_dir)
        if parent == module_dir:
            return {}
        module_dir = parent
    mod = read(os.path.join(module_dir, "go.mod")) or b""
    m = re.search(rb"^module[ \t]+\"?([^\s\"]+)", mod, re.M)
    if m is None:
        return {}
    rel = os.path.relpath(root, module_dir).replace(os.sep, "/")
    import_path = m.group(1).decode() + ("" if rel == "." else "/" + rel)
    quoted = b'"' + import_path.encode() + b'"'
    # A file is parsed only if its bytes call one of the functions as `x.Name(`.
    called = re.compile(
        rb"\.[ \t]*(?:" + b"|".join(re.escape(n.encode()) for n in names) + rb")\s*\("
    )
    out: dict[str, list[tuple[_GoFile, Node]]] = {}
    seen = 0
    for current, dirs, files in os.walk(module_dir):
        # Another module's directories are not this module's packages.
        dirs[:] = sorted(
            d for d in dirs
            if d not in ("vendor", "testdata") and not d.startswith((".", "_"))
            and not os.path.isfile(os.path.join(current, d, "go.mod"))
        )  # fmt: skip
        if os.path.abspath(current) == root:
            continue
        for name in sorted(files):
            if not name.endswith(".go") or name.endswith("_test.go"):
                continue
            seen += 1
            if seen > _MAX_MODULE_FILES:
                return out
            path = os.path.join(current, name)
            data = read(path)
            if data is None or quoted not in data or called.search(data) is None:
                continue
            shown = os.path.relpath(path)  # as the scan shows paths: relative inside the cwd
            caller = _GoFile(path if shown.startswith("..") else shown, data)
            caller.prepare()
            aliases = {a for a, target in caller.imports.items() if target == import_path}
            for function in names:
                for call in caller.calls_to(function, True):
                    selector = call.child_by_field_name("function")
                    operand = selector.child_by_field_name("operand") if selector else None
                    if operand is not None and _text(operand) in aliases:
                        out.setdefault(function, []).append((caller, call))
    return out


# -- go.mod --------------------------------------------------------------------------------


def go_mod_versions(data: bytes) -> dict[str, str]:
    """Module path -> version from a go.mod: `require` lines and blocks. A `replace` of a
    required module is noted in its value: `v1.2.3 (replaced by example.org/fork v1.2.4)`, or
    `v1.2.3 (replaced by ../local)` for a directory; the first word stays the version the
    go.mod requires, so `value.split()[0]` is always a version."""
    text = data.decode("utf-8", "replace")
    versions: dict[str, str] = {}
    replaced: dict[str, tuple[str | None, str]] = {}  # old path -> (old version, new text)
    block: str | None = None
    for raw in text.splitlines():
        line = raw.partition("//")[0].strip()  # splitlines(): no newline left in `raw`
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
                continue
            _go_mod_line(block, line, versions, replaced)
            continue
        verb, _, rest = line.partition(" ")
        rest = rest.strip()
        if verb in ("require", "replace"):
            if rest == "(":
                block = verb
            elif rest:
                _go_mod_line(verb, rest, versions, replaced)
        elif line in ("require(", "replace("):
            block = line[:-1]
    for old, (old_version, new) in replaced.items():
        if old not in versions or (old_version is not None and versions[old] != old_version):
            continue
        versions[old] = f"{versions[old]} (replaced by {new})"
    return versions


def _go_mod_line(
    verb: str, line: str, versions: dict[str, str], replaced: dict[str, tuple[str | None, str]]
) -> None:
    words = [w.strip('"`') for w in line.split()]
    if verb == "require":
        if len(words) >= 2:
            versions[words[0]] = words[1]
        return
    if "=>" not in words:
        return
    arrow = words.index("=>")
    old, new = words[:arrow], words[arrow + 1 :]
    if not old or not new:
        return
    replaced[old[0]] = (old[1] if len(old) > 1 else None, " ".join(new))


# -- go:generate bpf2go --------------------------------------------------------------------


def _generate_words(line: str) -> list[str] | None:
    """A go:generate line split as `go generate` does (cmd/go/internal/generate: split()):
    spaces and tabs separate words, a word starting with `"` is a Go string literal."""
    words: list[str] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            return words
        if line[i] == '"':
            j = i + 1
            while j < n and line[j] != '"':
                j += 2 if line[j] == "\\" else 1
            if j >= n:
                return None
            words.append(_go_unquote(line[i : j + 1]))
            i = j + 1
            if i < n and line[i] not in " \t":
                return None  # go generate: "expect space after quoted argument"
            continue
        j = i
        while j < n and line[j] not in " \t":
            j += 1
        words.append(line[i:j])
        i = j


_EXPAND = re.compile(r"\$(?:\{([^}]*)\}|([A-Za-z0-9_]+|[*#$@!?\-]))")


def _expand(word: str, variables: dict[str, str]) -> str:
    """os.Expand with go generate's variables (generate.go: expandVar); anything it would take
    from the environment is unknown here."""
    return _EXPAND.sub(lambda m: variables.get(m.group(1) or m.group(2), _UNKNOWN_VAR), word)


def _bpf2go_args(words: list[str]) -> list[str] | None:
    """bpf2go's own arguments when the command runs bpf2go: `go run .../cmd/bpf2go[@v]`,
    `go tool bpf2go`, a `bpf2go` binary (also behind `env VAR=x`)."""
    while words and (words[0] == "env" or ("=" in words[0] and not words[0].startswith("-"))):
        words = words[1:]
    if not words:
        return None
    if words[0] == "go" and len(words) > 1 and words[1] in ("run", "tool"):
        i = 2
        while i < len(words) and words[i].startswith("-"):
            i += 2 if words[i] in _GO_VALUE_FLAGS else 1
        if i < len(words) and _is_bpf2go(words[i].partition("@")[0]):
            return words[i + 1 :]
        return None
    if _is_bpf2go(words[0]):
        return words[1:]
    return None


# `$BPF2GO`, `${BPF2GO}`: the tool named by an environment variable the build exports (a
# Makefile's `generate: export BPF2GO := $(TOOLS_DIR)/bpf2go`). go generate expands it from
# the environment (cmd/go/internal/generate/generate.go: expandVar()), which secl cannot see;
# a variable named after bpf2go stands for bpf2go.
_TOOL_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _tool_variable(word: str) -> str | None:
    """`bpf2go` for a word that is only a variable whose name holds `bpf2go` (any case)."""
    m = _TOOL_VARIABLE.fullmatch(word)
    if m is None or "bpf2go" not in (m.group(1) or m.group(2)).lower():
        return None
    return "bpf2go"


def _is_bpf2go(word: str) -> bool:
    return word == "bpf2go" or word.endswith("/bpf2go")


def bpf2go_flags(words: list[str]) -> tuple[list[tuple[str, str]], int, bool]:
    """bpf2go's flags as its flag set reads them (cmd/bpf2go/main.go newB2G(): Go's flag
    package stops at the first non-flag or after `--`): (name, value) in order, the index of
    the first word after them, and whether every flag is one bpf2go is known to have."""
    flags: list[tuple[str, str]] = []
    certain = True
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            i += 1
            break
        if word == _UNKNOWN_VAR and i + 1 < len(words) and words[i + 1].startswith("-"):
            # `"$BPF_STRIP_FLAG" -cflags ...`: a whole word from the environment before more
            # flags is one flag (`-no-strip`, `-strip=...`): Go's flag package stops at the
            # first non-flag, so were it none, the next flag would be bpf2go's SOURCE
            # (cmd/bpf2go/main.go newB2G(): args[1]) and the line could never have worked.
            i += 1
            continue
        if not word.startswith("-") or word == "-":
            break
        name, has_value, value = word.lstrip("-").partition("=")
        if not has_value and name not in _BPF2GO_BOOL_FLAGS:
            if name not in _BPF2GO_FLAGS:
                certain = False  # a flag of another release: assume it takes a value
            value = words[i + 1] if i + 1 < len(words) else ""
            i += 1
        flags.append((name, value))
        i += 1
    return flags, i, certain


def _bpf2go_use(path: str, words: list[str], span: Span, package_version: str) -> LoaderUse:
    """A LoaderUse from bpf2go's arguments, parsed as its flag set does (cmd/bpf2go/main.go:
    newB2G(): Go's flag package stops at the first non-flag or after `--`; then
    splitCFlagsFromArgs() cuts at the next `--`; IDENT and SOURCE are the first two left)."""
    parsed, i, certain = bpf2go_flags(words)
    flags = dict(parsed)
    rest = words[i:]
    if "--" in rest:
        rest = rest[: rest.index("--")]
    ident = rest[0] if rest else ""
    source = rest[1] if len(rest) > 1 else ""
    known_ident = bool(ident) and _UNKNOWN_VAR not in ident
    known_source = bool(source) and _UNKNOWN_VAR not in source
    if not (known_ident and known_source):
        certain = False
    objects: list[str] = []
    stem = flags.get("output-stem") or (ident.lower() if known_ident else "")
    # The default suffix is `_test` for a go:generate line in a _test.go file (newB2G).
    suffix = flags.get("output-suffix", "_test" if path.endswith("_test.go") else "")
    directory = flags.get("output-dir", "")
    if stem and _UNKNOWN_VAR not in stem + suffix + directory:
        for target in flags.get("target", "bpfel,bpfeb").split(","):
            for tag in _bpf2go_suffixes(target.strip()):
                name = f"{stem}_{tag}{suffix}.o"
                objects.append(posixpath.join(directory, name) if directory else name)
    # The output stem names the generated files too (probe_bpfel.o from -output-stem probe):
    # listed with the identifier so that either links the objects.
    idents: tuple[str, ...] = ()
    if known_ident:
        names = (ident, flags.get("output-stem", ""))
        idents = tuple(dict.fromkeys(n for n in names if n and _UNKNOWN_VAR not in n))
    shown_ident = ident.replace(_UNKNOWN_VAR, "$?") or "?"
    shown_source = source.replace(_UNKNOWN_VAR, "$?") or "?"
    from secl.parse.includes import bpf2go_includes

    found = bpf2go_includes(words)
    return LoaderUse(
        kind=CILIUM,
        path=path,
        span=span,
        value=f"bpf2go{package_version} {shown_ident} {shown_source}",
        include_dirs=tuple(found[1]) if found is not None else (),
        sources=(source,) if known_source else (),
        objects=tuple(dict.fromkeys(objects)),
        idents=idents,
        auto_attach=False,
        certain=certain,
    )


def _bpf2go_suffixes(target: str) -> tuple[str, ...]:
    """File-name tags bpf2go gives a target's outputs: gen/target.go Target.Suffix(),
    `<linux>_<clang>` for an arch since v0.16.0, and ObsoleteSuffix(), `<clang>_<linux>`,
    the name before it. `native` and `$GOARCH` depend on the build host: unknown."""
    if target in ("bpf", "bpfel", "bpfeb"):
        return (target,)
    arch = _BPF2GO_ARCHES.get(target)
    if arch is None:
        return ()
    clang, linux = arch
    return (f"{linux}_{clang}", f"{clang}_{linux}")


# -- values --------------------------------------------------------------------------------

_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
               "\\": "\\", "'": "'", '"': '"'}  # fmt: skip
_GO_ESCAPE = re.compile(r"\\(?:([abfnrtv\\'\"])|([0-7]{3})|x([0-9a-fA-F]{2})"
                        r"|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))")  # fmt: skip


def _go_unquote(text: str) -> str:
    """A Go interpreted or raw string literal's value (bytes escapes taken as code points)."""
    if text.startswith("`"):
        return text[1:-1].replace("\r", "")
    body = text[1:-1] if len(text) >= 2 and text.endswith('"') else text[1:]

    def one(m: re.Match[str]) -> str:
        simple, octal, hexa, u4, u8 = m.groups()
        if simple:
            return _GO_ESCAPES[simple]
        if octal:
            return chr(int(octal, 8))
        return chr(int(hexa or u4 or u8, 16))

    return _GO_ESCAPE.sub(one, body)


def _go_int(text: str) -> int | None:
    text = text.replace("_", "")
    try:
        if text[:2] in ("0x", "0X", "0b", "0B", "0o", "0O"):
            return int(text, 0)
        if len(text) > 1 and text.startswith("0"):
            return int(text, 8)
        return int(text)
    except ValueError:
        return None


def _go_join(parts: list[str]) -> str:
    """filepath.Join: the non-empty elements joined with `/`, then cleaned."""
    kept = [p for p in parts if p]
    if not kept:
        return ""
    return posixpath.normpath("/".join(kept))


def _sprintf(fmt: str, args: list[str]) -> str | None:
    """fmt.Sprintf for `%s`/`%v`/`%d` of known strings; None for anything else."""
    out: list[str] = []
    i = n = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        verb = fmt[i + 1 : i + 2]
        if verb == "%":
            out.append("%")
        elif verb in ("s", "v", "d") and n < len(args):
            out.append(args[n])
            n += 1
        else:
            return None
        i += 2
    return "".join(out) if n == len(args) else None


def _bpf2go_ident(name: str) -> str | None:
    """`loadProbe` -> `probe`, `LoadProbe` -> `Probe`: cmd/bpf2go/gen/output.go
    templateName.Load() is "load" + the identifier with its first letter upper-cased, exported
    (`Load...`) exactly when the identifier is (maybeExport())."""
    m = re.fullmatch(r"([lL])oad(\w+)", name)
    if m is None:
        return None
    rest = m.group(2)
    return rest if m.group(1) == "L" else rest[:1].lower() + rest[1:]


class _GoFile:
    """One Go file: its tree, its imports and declarations, and the evaluator."""

    def __init__(self, path: str, data: bytes) -> None:
        self.path = path
        self.data = data
        self.positions = Positions(data)
        self.uses: list[LoaderUse] = []
        self.facts: list[LoaderFact] = []
        self.problem: str | None = None
        self.tree: Tree | None = None
        self.imports: dict[str, str] = {}  # local package name -> import path
        self.dot_imports: list[str] = []
        # Package-level declarations, read when a value needs them.
        self._top: dict[str, list[tuple]] | None = None
        self._top_nodes: list[Node] = []
        self._types: dict[str, Node] | None = None
        self._type_nodes: list[Node] = []
        self.embeds: dict[str, tuple[tuple[str, ...], bool, int]] = {}
        # Function and method declarations, by name when a value needs them.
        self._functions: dict[str, list[Node]] | None = None
        self._methods: dict[str, list[Node]] | None = None
        self._function_nodes: list[Node] = []
        self._method_nodes: list[Node] = []
        self._scopes: dict[int, dict[str, list[tuple]]] = {}
        self._heads: dict[int, dict[str, list[tuple]]] = {}  # parameters, receiver
        self._bound: dict[tuple[int, str], list[tuple] | None] = {}  # (fn, name) -> refs
        self._memo: dict[tuple, frozenset] = {}
        self._active: set[tuple] = set()
        self._opens: dict[int, list[tuple[ObjectRef, tuple[str, ...]]]] = {}
        self._field_stores: dict[str, list[tuple]] = {}
        self._calls: dict[str, list[Node]] = {}
        self._cgo_preamble: list[Node] = []
        # libbpfgo uses waiting for auto_attach: (use fields, owners)
        self._libbpfgo_uses: list[tuple[dict, tuple[ObjectRef, ...]]] = []
        self._generic_unknown = False  # AttachGeneric/AttachPrograms on something unknown
        self._explicit: set[ObjectRef] = set()
        self._auto: set[ObjectRef] = set()
        self._c_skeletons: set[str] = set()
        self._c_objects: set[str] = set()
        self._seen_facts: set[LoaderFact] = set()
        self._pins: dict[int, int] = {}  # range expression -> the element standing for it
        # function -> the one call (file, call) standing for all its callers (_call_pins_for)
        self._call_pin: dict[int, tuple[_GoFile, Node]] = {}
        # The files of the package (this one among them) and the calls of other packages of
        # the module to its exported functions, when refine_packages reads them together.
        self.package: list[_GoFile] = []
        self.outside: dict[str, list[tuple[_GoFile, Node]]] = {}
        self.wants_package = False  # a value needed comes from outside the file
        # Exported functions whose parameters no call in the package gives a value.
        self.wants_outside: set[str] = set()

    # -- driver ----------------------------------------------------------------------------

    def run(self) -> FileLoaders:
        self._generate_lines()
        data = self.data
        if parses_go(data):
            self.prepare()
            self._check_errors()
            self._sites()
            self._cgo()
            self._manager_sites()
        uses = list(self.uses)
        for fields, owners in self._libbpfgo_uses:
            if self._generic_unknown or any(o in self._auto for o in owners):
                auto: bool | None = True
            elif any(o in self._explicit for o in owners):
                auto = False  # every program it is seen to attach is attached by hand
            else:
                auto = None
            uses.append(LoaderUse(auto_attach=auto, **fields))
        uses.sort(key=lambda u: (u.span.start_byte, u.kind))
        out = FileLoaders(self.path, uses=uses, problem=self.problem)
        out.wants_package = self.wants_package and not self.package
        libbpf_family = any(u.kind in (LIBBPFGO, LIBBPF) for u in uses)
        if self.facts or libbpf_family or LIBBPFGO_MODULE in self.imports.values():
            objects = {o for u in uses if u.kind in (LIBBPFGO, LIBBPF) for o in u.objects}
            out.facts = LoaderFacts(
                self.path,
                frozenset(self._c_skeletons),
                frozenset(objects | self._c_objects),
                self.facts,
            )
        return out

    def release(self) -> None:
        """Let go of what refers back to this file and its package (the package list holds
        the file, memoised values name their file): without it a file read for a run, its
        tree and its values, stays alive until the cyclic collector finds them."""
        self.package, self.outside = [], {}
        self._memo, self._call_pin, self._opens, self._bound = {}, {}, {}, {}

    def prepare(self) -> None:
        """The tree and the top-level declarations: all another file of the package reads."""
        if self.tree is None:
            self.tree = parse_go(self.data)
            self._declarations()

    def _generate_lines(self) -> None:
        """bpf2go `//go:generate` lines. go generate reads them as text at the start of a line
        (generate.go: isGoGenerate()), `-command` aliases included, in file order."""
        data = self.data
        if b"//go:generate" not in data:
            return
        aliases: dict[str, list[str]] = {}
        base = posixpath.basename(self.path.replace("\\", "/"))
        package = self._package_name()
        variables = {"GOFILE": base, "GOPACKAGE": package, "DOLLAR": "$"}
        for m in _GENERATE.finditer(data):
            line = m.group(1).decode("utf-8", "replace").rstrip("\r")
            words = _generate_words(line)
            if not words:
                continue
            words = [_tool_variable(w) or _expand(w, variables) for w in words]
            if words[0] == "-command":
                if len(words) >= 3:
                    aliases[words[1]] = words[2:]
                continue
            if words[0] in aliases:
                words = aliases[words[0]] + words[1:]
            args = _bpf2go_args(words)
            if args is None:
                continue
            version = ""
            for w in words:
                if "bpf2go@" in w:
                    version = "@" + w.partition("@")[2]
            span = self.positions.span(m.start(), m.end(1))
            self.uses.append(_bpf2go_use(self.path, args, span, version))

    def _package_name(self) -> str:
        m = re.search(rb"^package[ \t]+(\w+)", self.data, re.M)
        return m.group(1).decode() if m else ""

    # -- declarations ----------------------------------------------------------------------

    def _declarations(self) -> None:
        """Imports, package-level values, functions, types and go:embed variables: the top
        level of the tree only."""
        assert self.tree is not None
        pending: list[tuple[str, int]] = []  # go:embed directives waiting for their var
        previous: Node | None = None
        functions = self._function_nodes
        for node in self.tree.root_node.children:
            t = node.type
            if t == "function_declaration":  # most of a file: tested first
                functions.append(node)
                if pending:
                    pending = []
                previous = node
                continue
            if t == "comment":
                # The comment's bytes are the file's: only a go:embed one is cut out of it.
                start, end = node.start_byte, node.end_byte
                data = self.data
                after = data[start + 10 : start + 11]
                if data.startswith(b"//go:embed", start, end) and after in (b" ", b"\t"):
                    pending.append((data[start + 11 : end].decode("utf-8", "replace"), start))
                previous = node
                continue
            if t == "import_declaration":
                self._imports(node, previous)
            elif t in ("var_declaration", "const_declaration"):
                self._top_nodes.append(node)
                if pending and t == "var_declaration":
                    self._embed(node, pending)
            elif t == "method_declaration":
                self._method_nodes.append(node)
            elif t == "type_declaration":
                self._type_nodes.append(node)
            pending = []
            previous = node

    @property
    def functions(self) -> dict[str, list[Node]]:
        """Function name -> its declarations."""
        if self._functions is None:
            self._functions = _by_name(self._function_nodes)
        return self._functions

    @property
    def methods(self) -> dict[str, list[Node]]:
        """Method name -> its declarations."""
        if self._methods is None:
            self._methods = _by_name(self._method_nodes)
        return self._methods

    @property
    def top(self) -> dict[str, list[tuple]]:
        """Package-level name -> value refs."""
        if self._top is None:
            self._top = {}
            for node in self._top_nodes:
                for spec in _specs(node):
                    self._bind_spec(spec, self._top, None)
        return self._top

    @property
    def types(self) -> dict[str, Node]:
        """Type name -> its type node."""
        if self._types is None:
            self._types = {}
            for node in self._type_nodes:
                for spec in node.named_children:
                    if spec.type in ("type_spec", "type_alias"):
                        name = spec.child_by_field_name("name")
                        kind = spec.child_by_field_name("type")
                        if name is not None and kind is not None:
                            self._types[_text(name)] = kind
        return self._types

    def _imports(self, node: Node, previous: Node | None) -> None:
        specs = [c for c in node.named_children if c.type == "import_spec"]
        for group in node.named_children:
            if group.type == "import_spec_list":
                specs.extend(c for c in group.named_children if c.type == "import_spec")
        for spec in specs:
            path_node = spec.child_by_field_name("path")
            if path_node is None:
                continue
            target = _go_unquote(_text(path_node))
            target = _IMPORT_ALIASES.get(target, target)
            if target.endswith(_LIBBPFGO_PACKAGE):
                target = LIBBPFGO_MODULE
            name_node = spec.child_by_field_name("name")
            name = _text(name_node) if name_node is not None else target.rsplit("/", 1)[-1]
            if name == ".":
                self.dot_imports.append(target)
            elif name != "_":
                self.imports[name] = target
            if target == "C":
                self._cgo_preamble = self._comments_before(node)

    def _comments_before(self, node: Node) -> list[Node]:
        """The comment group right before `node` (go/ast: no blank line in between)."""
        out: list[Node] = []
        current = node
        sibling = node.prev_sibling
        while sibling is not None and sibling.type == "comment":
            gap = self.data[sibling.end_byte : current.start_byte]
            if gap.count(b"\n") > 1 or gap.strip():
                break
            out.append(sibling)
            current = sibling
            sibling = sibling.prev_sibling
        out.reverse()
        return out

    def _embed(self, node: Node, pending: list[tuple[str, int]]) -> None:
        specs = list(_specs(node))
        if len(specs) != 1:
            return
        spec = specs[0]
        names = spec.children_by_field_name("name")
        kind = spec.child_by_field_name("type")
        if len(names) != 1 or kind is None:
            return
        patterns: list[str] = []
        for text, _ in pending:
            words = _embed_patterns(text)
            if words is None:
                return
            patterns.extend(words)
        is_fs = _text(kind).endswith("FS")
        self.embeds[_text(names[0])] = (tuple(patterns), is_fs, pending[0][1])

    def _bind_spec(
        self, spec: Node, scope: dict[str, list[tuple]], fn: Node | None, region=None
    ) -> None:
        names = spec.children_by_field_name("name")
        value = spec.child_by_field_name("value")
        values = _expressions(value) if value is not None else []
        self._bind(names, values, scope, fn, region)

    def _bind(
        self, left: list[Node], right: list[Node], scope, fn: Node | None, region=None
    ) -> None:
        """Name -> ("expr", value, result index, its function, the byte range the name is
        visible in: None for the whole function or file)."""
        if len(left) == len(right):
            pairs = [(name, value, 0) for name, value in zip(left, right, strict=True)]
        elif len(right) == 1:
            pairs = [(name, right[0], i) for i, name in enumerate(left)]
        else:
            return
        for name, value, index in pairs:
            if name.type == "identifier" and name.text != b"_":
                scope.setdefault(_text(name), []).append(("expr", value, index, fn, region))

    # -- errors ----------------------------------------------------------------------------

    def _check_errors(self) -> None:
        """One line when a broken part of the file is one that names a library call."""
        assert self.tree is not None
        root = self.tree.root_node
        if not root.has_error:
            return
        for node in root.children:
            if not node.has_error and node.type != "ERROR":
                continue
            chunk = self.data[node.start_byte : node.end_byte]
            if not (_SITE.search(chunk) or any(h in chunk for h in _PARSE_HINTS)):
                continue
            where = _first_error(node) or node
            row = self.positions.at(where.start_byte).row
            self.problem = (
                f"Go syntax error at line {row}; loader calls in the broken part were skipped"
            )
            return

    # -- sites -----------------------------------------------------------------------------

    def _sites(self) -> None:
        assert self.tree is not None
        root = self.tree.root_node
        # Only the calls of the libraries the file imports can matter.
        imported = set(self.imports.values()) | set(self.dot_imports)
        libraries = {
            name
            for name, paths in (
                ("libbpfgo", (LIBBPFGO_MODULE,)),
                ("cilium", (CILIUM_MODULE,)),
                ("gobpf", (GOBPF_BCC, GOBPF_ELF)),
                ("goebpf", (GOEBPF_MODULE,)),
                ("awssdk", (AWS_ELFPARSER,)),
                ("cgo", ("C",)),
            )
            if any(p in imported for p in paths)
        }
        if not libraries:
            return
        broken = root.has_error
        for _, m in finditer_any(_site_patterns(frozenset(libraries)), self.data):
            name = m.group(1).decode()
            node = root.descendant_for_byte_range(m.start(1), m.end(1))
            call = _call_of(node, name)
            if call is None or (broken and _broken(call)):
                continue
            self._site(name, call)
        if "libbpfgo" in libraries:
            for m in _METHOD_VALUE.finditer(self.data):
                name = m.group(1).decode()
                if name not in _LIBBPFGO_ATTACH:
                    continue
                node = root.descendant_for_byte_range(m.start(1), m.end(1))
                selector = node.parent if node is not None else None
                if (
                    selector is None
                    or node.type != "field_identifier"
                    or selector.type != "selector_expression"
                    or (broken and _broken(selector))
                ):
                    continue
                parent = selector.parent
                if parent is not None and parent.type == "call_expression":
                    continue  # a call, or an argument of one (read above)
                receiver = selector.child_by_field_name("operand")
                if receiver is not None:
                    self._program_call(selector, receiver, _function_of(selector), name)

    def _site(self, name: str, call: Node) -> None:
        function = call.child_by_field_name("function")
        assert function is not None
        package = self._package_of(function)
        fn = _function_of(call)
        if package is not None:
            if package == LIBBPFGO_MODULE and name in _LIBBPFGO_OPEN:
                self._libbpfgo_use(call, fn, name)
            elif package == CILIUM_MODULE and (name in _CILIUM_SPEC or name in _CILIUM_NEW):
                self._cilium_use(call, fn, name)
            elif package == GOBPF_BCC and name == "NewModule":
                self._bcc_use(call, fn)
            elif package == GOBPF_ELF and name in _GOBPF_ELF_OPEN:
                self._gobpf_elf_use(call, fn, name)
            elif package == "C" and name == "libbpf_register_prog_handler":
                self._go_prog_handler(call, fn)
            elif package == "C" and name in _C_OPEN:
                self._c_open_use(call, fn, name)
            return
        if function.type == "identifier":
            if name.endswith("Objects"):
                self._bpf2go_objects_call(call, name)
            return
        if function.type != "selector_expression":
            return
        receiver = function.child_by_field_name("operand")
        if receiver is None:
            return
        if name == "LoadElf" and GOEBPF_MODULE in self.imports.values():
            self._goebpf_use(call, fn)
        elif name.startswith("LoadBpfFile") and AWS_ELFPARSER in self.imports.values():
            self._aws_sdk_use(call, fn, name)
        elif name in _LIBBPFGO_ARGS_OPEN and self._libbpfgo_args(call):
            # A wrapper with libbpfgo's own method name (an interface kept for mocks:
            # `r.impl.NewModuleFromBufferArgs(&bpf.NewModuleArgs{...})`): the literal's type
            # is libbpfgo's, and a wrapper of that name passes it on to libbpfgo.
            self._libbpfgo_use(call, fn, name)
        elif name in _LIBBPFGO_ATTACH or name in _LIBBPFGO_SET:
            self._program_call(call, receiver, fn, name)
        elif name == "AttachPrograms":
            self._attach_programs(call, receiver, fn)

    def _libbpfgo_args(self, call: Node) -> bool:
        """Whether the call's only argument is a `libbpfgo.NewModuleArgs{...}` literal (or
        its address)."""
        args = _args(call)
        if len(args) != 1:
            return False
        arg = args[0]
        if arg.type == "unary_expression" and arg.named_child_count == 1:
            arg = arg.named_children[0]
        kind = arg.child_by_field_name("type") if arg.type == "composite_literal" else None
        if kind is None or kind.type != "qualified_type":
            return False
        package = kind.child_by_field_name("package")
        name = kind.child_by_field_name("name")
        return (
            package is not None
            and name is not None
            and _text(name) == "NewModuleArgs"
            and self.imports.get(_text(package)) == LIBBPFGO_MODULE
        )

    def _package_of(self, function: Node) -> str | None:
        """The import path of `pkg.F` (or of a dot-imported F)."""
        if function.type == "selector_expression":
            operand = function.child_by_field_name("operand")
            if operand is not None and operand.type == "identifier":
                return self.imports.get(_text(operand))
            return None
        if function.type == "identifier" and self.dot_imports:
            name = _text(function)
            if name in _LIBBPFGO_OPEN and LIBBPFGO_MODULE in self.dot_imports:
                return LIBBPFGO_MODULE
            if (name in _CILIUM_SPEC or name in _CILIUM_NEW) and CILIUM_MODULE in self.dot_imports:
                return CILIUM_MODULE
        return None

    # -- uses ------------------------------------------------------------------------------

    def _libbpfgo_use(self, call: Node, fn: Node | None, name: str) -> None:
        opens = self._libbpfgo_opens(call, fn, name)
        objects = tuple(dict.fromkeys(o for _, names in opens for o in names))
        owners = tuple(owner for owner, _ in opens)
        fields = dict(
            kind=LIBBPFGO,
            path=self.path,
            span=self.span(call),
            value=f"{name} {', '.join(objects) or '?'}",
            objects=objects,
            certain=bool(objects),
        )
        self._libbpfgo_uses.append((fields, owners))

    def _libbpfgo_opens(
        self, call: Node, fn: Node | None, name: str
    ) -> list[tuple[ObjectRef, tuple[str, ...]]]:
        """What one NewModuleFrom*() call opens: (owner of its programs, object names)."""
        key = call.id
        found = self._opens.get(key)
        if found is not None:
            return found
        self._opens[key] = []  # a call whose arguments lead back to itself
        args = _args(call)
        paths: list[str] = []
        names: list[str] = []
        if name == "NewModuleFromFile" and args:
            paths = self.strings(self.eval(args[0], fn))
        elif name == "NewModuleFromFileArgs" and args:
            paths = self.strings(self.field(self.eval(args[0], fn), "BPFObjPath"))
        elif name == "NewModuleFromBuffer" and args:
            paths = self.embedded(self.eval(args[0], fn))
            if len(args) > 1:
                names = self.strings(self.eval(args[1], fn))
        elif name == "NewModuleFromBufferArgs" and args:
            literal = self.eval(args[0], fn)
            paths = self.embedded(self.field(literal, "BPFObjBuff"))
            names = self.strings(self.field(literal, "BPFObjName"))
        # The object's own file, when the code shows it, is what its programs link to; else
        # the name given to libbpf (bpf_object_open_opts.object_name).
        everything = tuple(dict.fromkeys(paths + names))
        owners = paths or names
        found = [(ObjectRef("object", o), everything) for o in owners] or [
            (_UNKNOWN_OWNER, everything)
        ]
        self._opens[key] = found
        return found

    def _cilium_use(self, call: Node, fn: Node | None, name: str) -> None:
        args = _args(call)
        objects: list[str] = []
        idents: tuple[str, ...] = ()
        if name in _CILIUM_NEW:
            spec = self.eval(args[0], fn) if args else frozenset()
            if any(v[0] == "spec" for v in spec):
                return  # the spec's own load is the use
            idents = tuple(sorted({v[1] for v in spec if v[0] == "bpf2go"}))
        elif args:
            values = self.eval(args[0], fn)
            objects = self.strings(values) if name != "LoadCollectionSpecFromReader" else []
            objects += self.embedded(values)
            if name == "LoadCollectionSpecFromReader":
                idents = self._generated_ident(fn)
            if not objects and not idents:
                # the `.o` names that flow in through calls the evaluator cannot follow
                # (go-bindata's `Asset("probe.o")`, a helper of another package)
                objects = self._loose_objects(args[0], fn)
        objects = list(dict.fromkeys(objects))
        if objects:
            shown = ", ".join(objects)
        else:
            shown = f"(bpf2go {', '.join(idents)})" if idents else "?"
        self.uses.append(
            LoaderUse(
                kind=CILIUM,
                path=self.path,
                span=self.span(call),
                value=f"{name} {shown}",
                objects=tuple(objects),
                idents=idents,
                auto_attach=False,
                # An identifier read off a generated file's own loadX() is certain; one
                # guessed from a call to loadX() elsewhere is not.
                certain=bool(objects) or (bool(idents) and name not in _CILIUM_NEW),
            )
        )

    def _generated_ident(self, fn: Node | None) -> tuple[str, ...]:
        """The bpf2go identifier of a generated file's `loadX()`."""
        if fn is None or _GENERATED_BY_BPF2GO not in self.data[:512]:
            return ()
        ident = _bpf2go_ident(_function_name(fn) or "")
        return (ident,) if ident else ()

    def _bpf2go_load(self, name: str) -> str | None:
        """The bpf2go identifier behind a call of `loadX()` that the file does not define."""
        if name in self.functions or CILIUM_MODULE not in self.imports.values():
            return None
        return _bpf2go_ident(name)

    def _bpf2go_objects_call(self, call: Node, name: str) -> None:
        """`loadXObjects(&objs, opts)` of a bpf2go-generated file of the same package
        (gen/output.go templateName.LoadObjects()): names the identifier only."""
        ident = self._bpf2go_load(name[: -len("Objects")])
        if ident is None or len(_args(call)) != 2:
            return
        self.uses.append(
            LoaderUse(
                kind=CILIUM,
                path=self.path,
                span=self.span(call),
                value=f"{name} (bpf2go {ident})",
                idents=(ident,),
                auto_attach=False,
                certain=False,
            )
        )

    def _bcc_use(self, call: Node, fn: Node | None) -> None:
        args = _args(call)
        values = self.eval(args[0], fn) if args else frozenset()
        sources = [v[1] for v in values if v[0] == "file"] + self.embedded(values)
        sources = list(dict.fromkeys(sources))
        inline = any(v[0] in ("str", "text") for v in values)
        shown = ", ".join(sources) or ("inline C" if inline else "?")
        self.uses.append(
            LoaderUse(
                kind=GOBPF,
                path=self.path,
                span=self.span(call),
                value=f"bcc.NewModule {shown}",
                sources=tuple(sources),
                certain=bool(sources) or inline,
            )
        )

    def _gobpf_elf_use(self, call: Node, fn: Node | None, name: str) -> None:
        args = _args(call)
        values = self.eval(args[0], fn) if args else frozenset()
        objects = list(dict.fromkeys(self.strings(values) + self.embedded(values)))
        if not objects and args:
            # gobpf's users embed the object with go-bindata and open a reader over
            # `Asset("x.o")` (elf/module.go NewModuleFromReader takes any io.ReaderAt): the
            # `.o` name that flows into the reader, as for ebpf-manager.
            objects = self._loose_objects(args[0], fn)
        self._object_use(GOBPF, call, f"elf.{name}", objects)

    def _object_use(self, kind: str, call: Node, label: str, objects: list[str]) -> None:
        """A use of `call` that opens `objects` (certain when any is known)."""
        self.uses.append(
            LoaderUse(
                kind=kind,
                path=self.path,
                span=self.span(call),
                value=f"{label} {', '.join(objects) or '?'}",
                objects=tuple(objects),
                certain=bool(objects),
            )
        )

    def _goebpf_use(self, call: Node, fn: Node | None) -> None:
        """dropbox/goebpf: `system.LoadElf(path)` (ebpf.go System; loader.go LoadElf() opens
        the file with Go's debug/elf and reads the sections itself)."""
        args = _args(call)
        objects: list[str] = []
        if len(args) == 1:
            values = self.eval(args[0], fn)
            objects = list(dict.fromkeys(self.strings(values))) or self._loose_objects(args[0], fn)
        self._object_use(OTHER, call, "goebpf LoadElf", objects)

    def _aws_sdk_use(self, call: Node, fn: Node | None, name: str) -> None:
        """aws-ebpf-sdk-go: `client.LoadBpfFile(path, pinPath)` and
        `client.LoadBpfFileWithCustomData(data)` with the path in `data.FilePath`
        (pkg/elfparser/elf.go: both end in doLoadELF() over Go's debug/elf)."""
        args = _args(call)
        objects: list[str] = []
        if args:
            if name == "LoadBpfFile":
                values = self.eval(args[0], fn)
                objects = list(dict.fromkeys(self.strings(values)))
            objects = objects or self._loose_objects(args[0], fn)
        self._object_use(OTHER, call, f"aws-ebpf-sdk-go {name}", objects)

    def _c_open_use(self, call: Node, fn: Node | None, name: str) -> None:
        """C libbpf called from Go through cgo."""
        args = _args(call)
        objects: list[str] = []
        if args and name != "bpf_object__open_mem":
            objects = self.strings(self.eval(args[0], fn))
        self._object_use(LIBBPF, call, f"C.{name}", objects)

    # -- ebpf-manager ----------------------------------------------------------------------

    def _manager_sites(self) -> None:
        """`m.Init(reader)`, `m.InitWithOptions(reader, options)`, `m.LoadELF(reader)` in a
        file that imports ebpf-manager (_MANAGER_INIT)."""
        assert self.tree is not None
        imported = set(self.imports.values()) | set(self.dot_imports)
        if not any(m in imported for m in EBPF_MANAGER_MODULES):
            return
        root = self.tree.root_node
        broken = root.has_error
        for m in _MANAGER_SITE.finditer(self.data):
            name = m.group(1).decode()
            node = root.descendant_for_byte_range(m.start(1), m.end(1))
            call = _call_of(node, name)
            if call is None or (broken and _broken(call)):
                continue
            function = call.child_by_field_name("function")
            receiver = function.child_by_field_name("operand") if function is not None else None
            args = _args(call)
            if (
                receiver is None  # a method, never a package's function
                or len(args) != _MANAGER_INIT[name]
                or (receiver.type == "identifier" and _text(receiver) in self.imports)
                or not self._may_be_manager(receiver, _function_of(call))
            ):
                continue
            self._manager_use(call, _function_of(call), name, args[0])

    def _manager_use(self, call: Node, fn: Node | None, name: str, reader: Node) -> None:
        objects = self._loose_objects(reader, fn)
        self.uses.append(
            LoaderUse(
                kind=CILIUM,
                path=self.path,
                span=self.span(call),
                value=f"ebpf-manager {name} {', '.join(objects) or '?'}",
                objects=tuple(objects),
                # The manager attaches its Probes itself, but never through libbpf's reading
                # of a section suffix (what auto_attach stands for).
                auto_attach=False,
                certain=bool(objects),
            )
        )

    def _may_be_manager(self, receiver: Node, fn: Node | None) -> bool:
        """False when the file shows the receiver's type and it is no `Manager` (a
        struct field declared here, a composite literal): `cfg.Init(x)` of another type."""
        types: list[str] = []
        if receiver.type == "selector_expression":
            field = receiver.child_by_field_name("field")
            if field is not None:
                types += self._field_types(_text(field))
        for v in self.eval(receiver, fn):
            if v[0] == "lit" and v[1].parent is not None:
                kind = v[1].parent.child_by_field_name("type")
                types.append(_text(kind))
        return not types or any(t.rstrip().endswith("Manager") for t in types)

    def _field_types(self, name: str) -> list[str]:
        """The declared types of the struct fields called `name` in the file's types."""
        out: list[str] = []
        for kind in self.types.values():
            if kind.type != "struct_type":
                continue
            for decl_list in kind.named_children:
                for decl in decl_list.named_children:
                    if decl.type != "field_declaration":
                        continue
                    names = [_text(n) for n in decl.children_by_field_name("name")]
                    declared = decl.child_by_field_name("type")
                    if name in names and declared is not None:
                        out.append(_text(declared))
        return out

    def _loose_objects(self, node: Node, fn: Node | None) -> list[str]:
        """Object file names a reader holds: what the evaluator finds (go:embed, os.ReadFile),
        and the `.o` names that flow into it through calls it cannot follow, as far as their
        arguments: ecapture's `assets.Asset(p.GetBPFName("bytecode/bash_kern.o"))`, DataDog's
        agent's `bytecode.GetReader(dir, "tracer.o")`, a helper of the file that derives the
        name from its argument."""
        found: set[str] = set()
        self._loose(node, fn, 0, found, set(), 0)
        return sorted(found)

    def _loose(
        self, node: Node, fn: Node | None, index: int, found: set[str], seen: set, depth: int
    ) -> None:
        key = (node.id, fn.id if fn is not None else None, index)
        if key in seen or depth > _MAX_DEPTH or len(seen) >= _MAX_LOOSE:
            return
        seen.add(key)
        values = self.eval(node, fn, index)
        found.update(self.embedded(values))
        found.update(s for s in self.strings(values) if _OBJECT_NAME.fullmatch(s))
        if not any(v[0] == "unknown" for v in values):
            return
        t = node.type
        depth += 1
        if t in ("parenthesized_expression", "unary_expression"):
            for inner in node.named_children:
                self._loose(inner, fn, index, found, seen, depth)
        elif t == "identifier":
            refs = self.bound(fn, _text(node)) if fn is not None else None
            refs = _visible(refs, node.start_byte) if refs else None
            scope_fn = fn if refs else None
            for ref in refs or self.top.get(_text(node)) or ():
                if ref[0] == "expr":
                    self._loose(ref[1], ref[3], ref[2], found, seen, depth)
                elif ref[0] == "param" and scope_fn is not None:
                    self._loose_params(ref[1], ref[2], found, seen, depth)
        elif t == "selector_expression":
            field = node.child_by_field_name("field")
            stores = self._field_stores.get(_text(field)) if field is not None else None
            if field is not None and stores is None:
                stores = self._field_stores[_text(field)] = self._find_field_stores(_text(field))
            for value, position, where in stores or ():
                self._loose(value, where, position, found, seen, depth)
        elif t == "call_expression":
            for arg in _args(node):
                self._loose(arg, fn, 0, found, seen, depth)
            function = node.child_by_field_name("function")
            if function is None:
                return
            name = _text(function.child_by_field_name("field") or function)
            if function.type == "identifier":
                declarations = self.functions.get(name, [])
            else:
                declarations = self.methods.get(name, [])
            for decl in declarations:
                body = decl.child_by_field_name("body")
                for ret in _returns_of(body) if body is not None else ():
                    lists = [c for c in ret.named_children if c.type == "expression_list"]
                    exprs = _expressions(lists[0]) if lists else []
                    if len(exprs) == 1:
                        self._loose(exprs[0], decl, index, found, seen, depth)
                    elif index < len(exprs):
                        self._loose(exprs[index], decl, 0, found, seen, depth)

    def _loose_params(self, fn: Node, index: int, found: set[str], seen: set, depth: int) -> None:
        name_node = fn.child_by_field_name("name")
        if name_node is None or index < 0:
            return
        for call in self.calls_to(_text(name_node), fn.type == "method_declaration"):
            args = _args(call)
            if index < len(args):
                self._loose(args[index], _function_of(call), 0, found, seen, depth)

    # -- libbpfgo facts --------------------------------------------------------------------

    def _program_call(self, call: Node, receiver: Node, fn: Node | None, name: str) -> None:
        """A libbpfgo BPFProg method: its facts, once per element of a `range` over a literal
        when the element decides which program it is (the attach target of `{prog, sym}`
        pairs stays with its own program)."""
        found_any = False
        pins = self._pins_for(receiver, fn)
        callers = self._call_pins_for(receiver, fn) if pins == [None] else [None]
        facts = partial(self._program_facts, call, receiver, fn, name)
        for pin in pins:
            for caller in callers:
                found_any |= self._called(caller, fn, partial(self._pinned, pin, facts))
        if not found_any and name == "AttachGeneric" and self._imports_libbpfgo():
            self._generic_unknown = True

    def _program_facts(self, call: Node, receiver: Node, fn: Node | None, name: str) -> bool:
        progs = self._progs(receiver, fn)
        if not progs:
            return False
        call_span = self.span(call)
        function = _function_name(fn)
        # A method value (`attach = prog.AttachKprobeOffset`, called later) counts as a call
        # whose arguments are not known.
        args = _args(call) if call.type == "call_expression" else []
        if name in _LIBBPFGO_SET:
            kind = _LIBBPFGO_SET[name]
            text = _text(args[0]) if args else ""
            for owner, prog in progs:
                self._fact(
                    LoaderFact(kind, ProgramRef(owner, prog), self.path, call_span, text,
                               function, api=name)
                )  # fmt: skip
            return True
        libbpf = _LIBBPFGO_ATTACH[name]
        targets: tuple[str, ...] = ()
        if name in _KPROBE_BY_NAME and args:
            targets = tuple(sorted(set(self.strings(self.eval(args[0], fn)))))
        for owner, prog in progs:
            ref = ProgramRef(owner, prog)
            self._fact(
                LoaderFact("attach", ref, self.path, call_span, libbpf, function, api=name,
                           targets=targets)
            )  # fmt: skip
            if name == "AttachGeneric":
                self._auto.add(owner)
            else:
                self._explicit.add(owner)
            if name == "AttachPerfEvent":
                self._fact(
                    LoaderFact("perf-event", ref, self.path, call_span, libbpf, function, api=name)
                )
        if name in _BY_ADDRESS:
            self._address(progs, args[0] if args else call, fn, call_span, function, name)
        return True

    def _fact(self, fact: LoaderFact) -> None:
        if fact not in self._seen_facts:
            self._seen_facts.add(fact)
            self.facts.append(fact)

    def _progs(self, receiver: Node, fn: Node | None) -> tuple[tuple[ObjectRef, str | None], ...]:
        values = self.eval(receiver, fn)
        found = {(v[1], v[2]) for v in values if v[0] == "prog" and v[2] != "?"}
        return tuple(sorted(found, key=repr))

    def _pins_for(self, receiver: Node, fn: Node | None) -> list[tuple[Node, int] | None]:
        """The `range` literal whose element picks the program, as (range expression, element
        index) pins; [None] when there is none."""
        if fn is None:
            return [None]
        body = fn.child_by_field_name("body")
        if body is None or self.data.find(b"range", body.start_byte, body.end_byte) < 0:
            return [None]  # no `range` clause: nothing to pin (and no scope to build)
        seen: set[int] = set()
        for refs in self.scope(fn).values():
            for ref in refs:
                if ref[0] != "range" or ref[1].id in seen:
                    continue
                right = ref[1]
                seen.add(right.id)
                literals = [v for v in self.eval(right, ref[3]) if v[0] == "lit"]
                if len(literals) != 1:
                    continue
                count = len(_literal_elements(literals[0][1]))
                if not 1 < count <= _MAX_PINNED:
                    continue
                pins = [(right, i) for i in range(count)]
                chosen = {self._pinned(pin, lambda: self._progs(receiver, fn)) for pin in pins}
                if len(chosen) > 1:
                    return pins  # type: ignore[return-value]
        return [None]

    def _call_pins_for(self, receiver: Node, fn: Node | None) -> list:
        """The calls of the enclosing function, one by one, when the program it touches
        comes from its parameters and differs from call to call (`t.attach("a", 0x10)`,
        `t.attach("b", 0)`): each call's program gets that call's values, not every
        caller's. [None] when one evaluation over every caller will do."""
        if fn is None or fn.child_by_field_name("parameters") is None:
            return [None]
        params = fn.child_by_field_name("parameters")
        if params is None or not params.named_child_count:
            return [None]
        callers = self.callers(fn)
        if not 1 < len(callers) <= _MAX_PINNED:
            return [None]
        chosen = {self._called(c, fn, lambda: self._progs(receiver, fn)) for c in callers}
        return callers if len(chosen) > 1 else [None]  # type: ignore[return-value]

    def _called(self, caller: tuple[_GoFile, Node] | None, fn: Node | None, compute):
        """`compute()` with one call of `fn` standing for all its callers."""
        if caller is None or fn is None:
            return compute()
        saved_memo, saved_pins = self._memo, self._call_pin
        self._memo, self._call_pin = {}, {**saved_pins, fn.id: caller}
        try:
            return compute()
        finally:
            self._memo, self._call_pin = saved_memo, saved_pins

    def _pinned(self, pin: tuple[Node, int] | None, compute):
        """`compute()` with one element of a range literal standing for the loop variable."""
        if pin is None:
            return compute()
        saved_memo, saved_pins = self._memo, self._pins
        self._memo, self._pins = {}, {**saved_pins, pin[0].id: pin[1]}
        try:
            return compute()
        finally:
            self._memo, self._pins = saved_memo, saved_pins

    def _address(self, progs, arg: Node, fn, call_span: Span, function, name: str) -> None:
        """AttachKprobeOffset(addr): libbpf gets a non-NULL empty func_name and
        bpf_kprobe_opts.offset = addr, an attach by address with a nonzero offset."""
        values = self.eval(arg, fn)
        shown: list[tuple[int | str, str, Span]] = []
        for v in values:
            if v[0] == "int":
                # A value a caller in another file passes is shown where it is written.
                where = v[4] if len(v) > 4 else self
                if v[1] != 0:  # offset 0: the multi path takes it
                    shown.append((v[1], where.path, where.positions.span(v[2], v[3])))
            elif v[0] == "unknown" and len(v) > 3:
                # What a caller in another file passes, unknown there: shown at that call.
                where, start, end = v[3], v[1], v[2]
                text = where.data[start:end].decode("utf-8", "replace")
                shown.append((text, where.path, where.positions.span(start, end)))
            else:
                shown.append((_text(arg), self.path, self.span(arg)))
        for value, path, span in dict.fromkeys(shown):
            for owner, prog in progs:
                ref = ProgramRef(owner, prog)
                for kind in ("attach-offset", "attach-address"):
                    self._fact(
                        LoaderFact(kind, ref, path, span, value, function, api=name,
                                   call=call_span if path == self.path else None)
                    )  # fmt: skip

    def _attach_programs(self, call: Node, receiver: Node, fn: Node | None) -> None:
        """Module.AttachPrograms() (module.go): AttachGeneric() on every program that is
        loaded and set to auto-attach, like bpf_object__attach_skeleton()."""
        if not self._imports_libbpfgo():
            return
        owners = sorted(
            {v[2] for v in self.eval(receiver, fn) if v[0] == "module" and v[1] == "libbpfgo"},
            key=repr,
        )
        if not owners or _UNKNOWN_OWNER in owners:
            self._generic_unknown = True
        for owner in owners:
            self._auto.add(owner)
            self._fact(
                LoaderFact("auto-attach", ProgramRef(owner, None), self.path, self.span(call),
                           "AttachPrograms", _function_name(fn), api="AttachPrograms")
            )  # fmt: skip

    def _imports_libbpfgo(self) -> bool:
        return LIBBPFGO_MODULE in self.imports.values() or LIBBPFGO_MODULE in self.dot_imports

    # -- prog handlers ---------------------------------------------------------------------

    def _go_prog_handler(self, call: Node, fn: Node | None) -> None:
        """C.libbpf_register_prog_handler(sec, ...): NULL (Go nil) takes every name libbpf's
        own table does not know (libbpf.c: find_sec_def())."""
        args = _args(call)
        if not args:
            return
        values = self.eval(args[0], fn)
        sections: list[str | None] = [v[1] for v in values if v[0] == "str"]
        if any(v[0] == "nil" or (v[0] == "int" and v[1] == 0) for v in values):
            sections.append(None)
        for section in dict.fromkeys(sections):
            self._fact(
                LoaderFact("prog-handler", None, self.path, self.span(call), section,
                           _function_name(fn), api="libbpf_register_prog_handler")
            )  # fmt: skip

    def _cgo(self) -> None:
        """The cgo preamble is C: the C extractor reads it in place (everything else blanked,
        so that offsets and lines stay the file's)."""
        if not self._cgo_preamble:
            return
        from secl.parse.loader import extract_loader_facts, is_loader
        from secl.parse.tree import parse

        masked = bytearray(self.data.translate(_BLANK_BUT_NEWLINES))
        for comment in self._cgo_preamble:
            start, end = comment.start_byte + 2, comment.end_byte
            if self.data[comment.start_byte : start] == b"/*":
                end -= 2
            masked[start:end] = self.data[start:end]
        c_data = bytes(masked)
        registers = b"libbpf_register_prog_handler" in c_data
        if not registers and not is_loader(c_data) and b"bpf_object__open" not in c_data:
            return
        tree = parse(c_data)
        found = extract_loader_facts(self.path, c_data, tree, self.positions)
        self.facts.extend(found.facts)
        self._c_skeletons |= found.skeletons
        self._c_objects |= found.objects
        if registers:
            self._c_null_handlers(c_data, tree)
        if found.objects or found.skeletons:
            first, last = self._cgo_preamble[0], self._cgo_preamble[-1]
            self.uses.append(
                LoaderUse(
                    kind=LIBBPF,
                    path=self.path,
                    span=self.positions.span(first.start_byte, last.end_byte),
                    value="cgo preamble " + ", ".join(sorted(found.objects | found.skeletons)),
                    objects=tuple(sorted(found.objects)),
                    skeletons=tuple(sorted(found.skeletons)),
                    certain=True,
                )
            )

    def _c_null_handlers(self, c_data: bytes, tree: Tree) -> None:
        """libbpf_register_prog_handler(NULL, ...) in the preamble: the C extractor keeps
        only named sections."""
        pattern = re.compile(rb"\blibbpf_register_prog_handler\s*\(\s*(NULL|nullptr|0)\s*,")
        for m in pattern.finditer(c_data):
            node = tree.root_node.descendant_for_byte_range(m.start(), m.start() + 28)
            while node is not None and node.type != "call_expression":
                node = node.parent
            if node is None:
                continue
            fn = node.parent
            while fn is not None and fn.type != "function_definition":
                fn = fn.parent
            function = None
            if fn is not None:
                declarator = fn.child_by_field_name("declarator")
                while declarator is not None and declarator.type != "identifier":
                    declarator = declarator.child_by_field_name("declarator")
                function = _text(declarator) if declarator is not None else None
            self.facts.append(
                LoaderFact("prog-handler", None, self.path,
                           self.positions.span(node.start_byte, node.end_byte), None, function,
                           api="libbpf_register_prog_handler")
            )  # fmt: skip

    # -- evaluation ------------------------------------------------------------------------

    def span(self, node: Node) -> Span:
        return self.positions.span(node.start_byte, node.end_byte)

    @staticmethod
    def strings(values: frozenset) -> list[str]:
        return sorted({v[1] for v in values if v[0] == "str"})

    @staticmethod
    def embedded(values: frozenset) -> list[str]:
        """Files a value holds the contents of: go:embed patterns, files read at run time."""
        out: list[str] = []
        for v in values:
            if v[0] == "embed" and not v[2]:
                out.extend(v[1])
            elif v[0] == "file":
                out.append(v[1])
        return sorted(set(out))

    def eval(self, node: Node, fn: Node | None, index: int = 0, depth: int = 0) -> frozenset:
        key = (node.id, fn.id if fn is not None else None, index)
        found = self._memo.get(key)
        if found is not None:
            return found
        if key in self._active or depth > _MAX_DEPTH:
            return frozenset()
        self._active.add(key)
        try:
            found = self._eval(node, fn, index, depth + 1)
        finally:
            self._active.discard(key)
        if len(found) > _MAX_VALUES:
            found = frozenset(sorted(found, key=repr)[:_MAX_VALUES])
        self._memo[key] = found
        return found

    def _eval(self, node: Node, fn: Node | None, index: int, depth: int) -> frozenset:
        t = node.type
        if t in ("interpreted_string_literal", "raw_string_literal"):
            value = _go_unquote(_text(node))
            return frozenset({("str", value, node.start_byte, node.end_byte)})
        if t == "int_literal":
            number = _go_int(_text(node))
            if number is not None:
                return frozenset({("int", number, node.start_byte, node.end_byte)})
        elif t == "nil":
            return frozenset({("nil", node.start_byte, node.end_byte)})
        elif t == "identifier":
            return self._eval_identifier(node, fn, depth)
        elif t in ("parenthesized_expression", "unary_expression"):
            inner = node.child_by_field_name("operand") or (
                node.named_children[0] if node.named_children else None
            )
            if inner is not None and _text_of(node, 0) in ("(", "&", "*"):
                return self.eval(inner, fn, index, depth)
        elif t == "binary_expression":
            return self._eval_binary(node, fn, depth)
        elif t == "type_conversion_expression":
            operand = node.child_by_field_name("operand")
            if operand is not None:
                return self.eval(operand, fn, 0, depth)
        elif t == "call_expression":
            return self._eval_call(node, fn, index, depth)
        elif t == "composite_literal":
            body = node.child_by_field_name("body")
            kind = node.child_by_field_name("type")
            if body is not None:
                fields = self._struct_fields(kind)
                return frozenset({("lit", body, fn, fields, _element_fields(self, kind))})
        elif t == "selector_expression":
            return self._eval_selector(node, fn, depth)
        elif t == "index_expression":
            operand = node.child_by_field_name("operand")
            if operand is not None:
                return self._elements(self.eval(operand, fn, 0, depth), "value", depth)
        return frozenset({("unknown", node.start_byte, node.end_byte)})

    def _eval_identifier(self, node: Node, fn: Node | None, depth: int) -> frozenset:
        name = _text(node)
        refs = self.bound(fn, name) if fn is not None else None
        if refs:
            refs = _visible(refs, node.start_byte) or None
        scope_fn = fn
        if refs is None:
            refs = self.top.get(name)
            scope_fn = None
        out: set = set()
        if name in self.embeds and (refs is None or scope_fn is None):
            patterns, is_fs, _ = self.embeds[name]
            out.add(("embed", patterns, is_fs))
        for ref in refs or ():
            out |= self._eval_ref(ref, scope_fn, depth)
        if refs is None and name not in self.embeds:
            out |= self._package_value(name, depth)
        if not out:
            return frozenset({("unknown", node.start_byte, node.end_byte)})
        return frozenset(out)

    def _package_value(self, name: str, depth: int) -> frozenset:
        """A package-level name declared in another file of the package (`var probes = ...`
        next to the loader, a `//go:embed` variable of an embed.go)."""
        out: set = set()
        for other in self.package:
            if other is self:
                continue
            if name in other.embeds:
                patterns, is_fs, _ = other.embeds[name]
                out.add(("embed", patterns, is_fs))
            for ref in other.top.get(name) or ():
                out |= _tag(other, other._eval_ref(ref, None, depth))
        if not out and not self.package and name not in _GO_PREDECLARED:
            self.wants_package = True
        return frozenset(out)

    def _eval_ref(self, ref: tuple, fn: Node | None, depth: int) -> frozenset:
        kind = ref[0]
        if kind == "expr":
            return self.eval(ref[1], ref[3], ref[2], depth)
        if kind == "param":
            return self._param_values(ref[1], ref[2], depth)
        if kind == "range":
            values = self.eval(ref[1], ref[3], 0, depth)
            return self._elements(values, ref[2], depth, self._pins.get(ref[1].id))
        return frozenset()

    def _eval_binary(self, node: Node, fn: Node | None, depth: int) -> frozenset:
        operator = node.child_by_field_name("operator")
        left = node.child_by_field_name("left")
        right = node.child_by_field_name("right")
        if operator is None or left is None or right is None or _text(operator) != "+":
            return frozenset({("unknown", node.start_byte, node.end_byte)})
        lefts = self.strings(self.eval(left, fn, 0, depth))
        rights = self.strings(self.eval(right, fn, 0, depth))
        if not lefts or not rights or len(lefts) * len(rights) > _MAX_VALUES:
            return frozenset({("unknown", node.start_byte, node.end_byte)})
        return frozenset(
            ("str", a + b, node.start_byte, node.end_byte) for a in lefts for b in rights
        )

    def _eval_call(self, call: Node, fn: Node | None, index: int, depth: int) -> frozenset:
        function = call.child_by_field_name("function")
        unknown = frozenset({("unknown", call.start_byte, call.end_byte)})
        if function is None:
            return unknown
        args = _args(call)
        package = self._package_of(function)
        name = _text(function.child_by_field_name("field") or function)
        if package is not None:
            return self._eval_package_call(call, package, name, args, fn, index, depth) or unknown
        if function.type == "identifier":
            if name in ("string", "append") and args:
                return self.eval(args[0], fn, 0, depth)
            if name in self.functions:
                return self._returns(self.functions[name], index, depth) or unknown
            ident = self._bpf2go_load(name)
            if ident is not None and index == 0 and not args:
                return frozenset({("bpf2go", ident)})
            if name not in _GO_PREDECLARED:
                found = self._package_returns(name, False, index, depth)
                if found is not None:
                    return found or unknown
            return unknown
        if function.type != "selector_expression":
            return unknown
        receiver = function.child_by_field_name("operand")
        if receiver is None:
            return unknown
        if name == "GetProgram" and args:
            modules = [
                v[2] for v in self.eval(receiver, fn, 0, depth)
                if v[0] == "module" and v[1] == "libbpfgo"
            ]  # fmt: skip
            if not modules and self._imports_libbpfgo():
                modules = [_UNKNOWN_OWNER]  # `t.mod.GetProgram("x")` with t.mod not seen
            names = self.strings(self.eval(args[0], fn, 0, depth)) or ["?"]
            return frozenset(("prog", owner, n) for owner in modules for n in names) or unknown
        if name == "Iterator":
            owners = [v[2] for v in self.eval(receiver, fn, 0, depth) if v[0] == "module"]
            return frozenset(("iter", owner) for owner in owners) or unknown
        if name == "NextProgram":
            owners = [v[1] for v in self.eval(receiver, fn, 0, depth) if v[0] == "iter"]
            return frozenset(("prog", owner, None) for owner in owners) or unknown
        if name == "ReadFile" and args:
            fs = [v for v in self.eval(receiver, fn, 0, depth) if v[0] == "embed" and v[2]]
            if fs:
                paths = self.strings(self.eval(args[0], fn, 0, depth))
                return frozenset(("embed", (p,), False) for p in paths) or unknown
        if name in self.methods:
            return self._returns(self.methods[name], index, depth) or unknown
        return self._package_returns(name, True, index, depth) or unknown

    def _package_returns(self, name: str, method: bool, index: int, depth: int):
        """What a function or method of another file of the package returns; None when no
        file of the package declares it."""
        out: set = set()
        declared = False
        for other in self.package:
            if other is self:
                continue
            declarations = (other.methods if method else other.functions).get(name)
            if declarations:
                declared = True
                out |= _tag(other, other._returns(declarations, index, depth))
        if not declared:
            if not self.package:
                self.wants_package = True
            return None
        return frozenset(out)

    def _eval_package_call(
        self, call: Node, package: str, name: str, args: list[Node], fn, index: int, depth: int
    ) -> frozenset:
        if package == LIBBPFGO_MODULE and name in _LIBBPFGO_OPEN:
            if index != 0:
                return frozenset()
            opens = self._libbpfgo_opens(call, fn, name)
            return frozenset(("module", "libbpfgo", owner) for owner, _ in opens)
        if package == GOBPF_ELF and name in _GOBPF_ELF_OPEN:
            return frozenset({("module", "gobpf", _UNKNOWN_OWNER)})
        if package == CILIUM_MODULE and name in _CILIUM_SPEC:
            return frozenset({("spec",)}) if index == 0 else frozenset()
        if package in ("path/filepath", "path") and name == "Join":
            parts = [self.strings(self.eval(a, fn, 0, depth)) for a in args]
            if not parts or any(len(p) != 1 for p in parts):
                return frozenset()
            joined = _go_join([p[0] for p in parts])
            return frozenset({("str", joined, call.start_byte, call.end_byte)})
        if package == "fmt" and name == "Sprintf" and args:
            parts = [self.strings(self.eval(a, fn, 0, depth)) for a in args]
            if any(len(p) != 1 for p in parts):
                return frozenset()
            text = _sprintf(parts[0][0], [p[0] for p in parts[1:]])
            if text is None:
                return frozenset()
            return frozenset({("str", text, call.start_byte, call.end_byte)})
        if package in ("os", "io/ioutil") and name == "ReadFile" and args:
            if index != 0:
                return frozenset()
            paths = self.strings(self.eval(args[0], fn, 0, depth))
            return frozenset(("file", p) for p in paths)
        if (package, name) in _TRANSPARENT:
            return self.eval(args[0], fn, 0, depth) if args else frozenset()
        if package == "strings" and name in ("Replace", "ReplaceAll", "TrimSpace") and args:
            # A source text edited before BCC compiles it still comes from the same file, or
            # is still text written in this one.
            out: set = set()
            for v in self.eval(args[0], fn, 0, depth):
                if v[0] in ("file", "embed"):
                    out.add(v)
                elif v[0] in ("str", "text"):
                    out.add(("text", call.start_byte, call.end_byte))
            return frozenset(out)
        return frozenset()

    def _returns(self, declarations: list[Node], index: int, depth: int) -> frozenset:
        """Values the file's own function returns at result `index`."""
        out: set = set()
        for decl in declarations:
            body = decl.child_by_field_name("body")
            if body is None:
                continue
            for ret in _returns_of(body):
                values = [c for c in ret.named_children if c.type == "expression_list"]
                exprs = _expressions(values[0]) if values else []
                if len(exprs) == 1 and index > 0:
                    out |= self.eval(exprs[0], decl, index, depth)
                elif index < len(exprs):
                    out |= self.eval(exprs[index], decl, 0, depth)
        return frozenset(out)

    def _eval_selector(self, node: Node, fn: Node | None, depth: int) -> frozenset:
        operand = node.child_by_field_name("operand")
        field = node.child_by_field_name("field")
        unknown = frozenset({("unknown", node.start_byte, node.end_byte)})
        if operand is None or field is None:
            return unknown
        if operand.type == "identifier" and _text(operand) in self.imports:
            return unknown  # another package's name
        name = _text(field)
        values = self.field(self.eval(operand, fn, 0, depth), name, depth)
        if not values:
            values = self._stored(name, depth)
        return values or unknown

    def field(self, values: frozenset, name: str, depth: int = 0) -> frozenset:
        """Field `name` of the composite literals among `values`."""
        out: set = set()
        for v in values:
            if v[0] != "lit":
                continue
            if len(v) > 5:  # a literal of another file of the package: read there
                out |= _tag(v[5], v[5].field(frozenset({v[:5]}), name, depth))
                continue
            _, body, fn, fields, _ = v
            for i, element in enumerate(_literal_elements(body)):
                if element.type == "keyed_element":
                    key = element.child_by_field_name("key")
                    value = element.child_by_field_name("value")
                    if key is not None and value is not None and _text(key).strip() == name:
                        out |= self._element_value(value, fn, fields, depth)
                elif i < len(fields) and fields[i] == name:
                    out |= self._element_value(element, fn, (), depth)
        return frozenset(out)

    def _element_value(self, element: Node, fn, fields: tuple, depth: int) -> frozenset:
        """A literal_element's value; an elided `{...}` keeps the element type's fields."""
        inner = element.named_children[0] if element.named_children else element
        if inner.type == "literal_value":
            return frozenset({("lit", inner, fn, fields, ())})
        return self.eval(inner, fn, 0, depth)

    def _elements(
        self, values: frozenset, which: str, depth: int, only: int | None = None
    ) -> frozenset:
        """The keys (`which` "key") or values of slice, array and map literals (element
        `only`, when one stands for the loop variable)."""
        out: set = set()
        for v in values:
            if v[0] != "lit":
                continue
            if len(v) > 5:  # a literal of another file of the package: read there
                out |= _tag(v[5], v[5]._elements(frozenset({v[:5]}), which, depth, only))
                continue
            _, body, fn, _, element_fields = v
            for i, element in enumerate(_literal_elements(body)):
                if only is not None and i != only:
                    continue
                if element.type == "keyed_element":
                    part = element.child_by_field_name("key" if which == "key" else "value")
                    if part is not None:
                        out |= self._element_value(part, fn, element_fields, depth)
                elif which == "value":
                    out |= self._element_value(element, fn, element_fields, depth)
        return frozenset(out)

    def _stored(self, name: str, depth: int) -> frozenset:
        """Every value the file (or another file of its package) assigns to a field called
        `name` (`t.mod, err = ...`)."""
        out = set(self._stored_here(name, depth))
        for other in self.package:
            if other is not self:
                out |= _tag(other, other._stored_here(name, depth))
        if not out and not self.package:
            self.wants_package = True
        return frozenset(out)

    def _stored_here(self, name: str, depth: int) -> frozenset:
        """The stores to field `name` written in this file."""
        stores = self._field_stores.get(name)
        if stores is None:
            stores = self._field_stores[name] = self._find_field_stores(name)
        out: set = set()
        for value, index, fn in stores:
            out |= self.eval(value, fn, index, depth)
        return frozenset(out)

    def _find_field_stores(self, name: str) -> list[tuple]:
        assert self.tree is not None
        root = self.tree.root_node
        out: list[tuple] = []
        for m in re.finditer(rb"\.\s*(" + re.escape(name.encode()) + rb")\b", self.data):
            node = root.descendant_for_byte_range(m.start(1), m.end(1))
            if node is None or node.type != "field_identifier":
                continue
            selector = node.parent
            left = selector.parent if selector is not None else None
            statement = left.parent if left is not None else None
            if (
                statement is None
                or left is None
                or left.type != "expression_list"
                or statement.type != "assignment_statement"
                or statement.child_by_field_name("left") != left
            ):
                continue
            right = statement.child_by_field_name("right")
            lefts = _expressions(left)
            rights = _expressions(right) if right is not None else []
            position = next(i for i, n in enumerate(lefts) if n == selector)
            fn = _function_of(statement)
            if len(lefts) == len(rights):
                out.append((rights[position], 0, fn))
            elif len(rights) == 1:
                out.append((rights[0], position, fn))
        return out

    def _param_values(self, fn: Node, index: int, depth: int) -> frozenset:
        """A parameter's values: the arguments every call of its function passes (in the
        file; with refine_packages, in the package and, for an exported function, in the
        other packages of the module), or the one call pinned for it (_call_pins_for)."""
        if fn.child_by_field_name("name") is None or index < 0:
            return frozenset()
        pinned = self._call_pin.get(fn.id)
        callers = [pinned] if pinned is not None else self.callers(fn)
        if not callers and not self.package:
            self.wants_package = True
        elif not callers and fn.type == "function_declaration":
            name = _function_name(fn) or ""
            if name[:1].isupper() and name not in self.outside:
                self.wants_outside.add(name)
        out: set = set()
        for owner, call in callers:
            args = _args(call)
            if index < len(args):
                values = owner.eval(args[index], _function_of(call), 0, depth)
                out |= values if owner is self else _tag(owner, values)
        return frozenset(out)

    def callers(self, fn: Node) -> list[tuple[_GoFile, Node]]:
        """Every call of function or method `fn` that secl sees, with the file it is in."""
        name = _function_name(fn) or ""
        method = fn.type == "method_declaration"
        out = [(self, call) for call in self.calls_to(name, method)]
        for other in self.package:
            if other is not self:
                out.extend((other, call) for call in other.calls_to(name, method))
        if not method:
            out.extend(self.outside.get(name, ()))
        return out

    def calls_to(self, name: str, method: bool) -> list[Node]:
        key = ("." if method else "") + name
        found = self._calls.get(key)
        if found is not None:
            return found
        assert self.tree is not None
        root = self.tree.root_node
        found = []
        for m in re.finditer(word_start(name.encode()) + rb"\s*\(", self.data):
            node = root.descendant_for_byte_range(m.start(), m.start() + len(name))
            call = _call_of(node, name)
            if call is None:
                continue
            function = call.child_by_field_name("function")
            if function is not None and (function.type == "selector_expression") == method:
                found.append(call)
        self._calls[key] = found
        return found

    def scope(self, fn: Node) -> dict[str, list[tuple]]:
        """Every name a function (with its closures) binds, and the values it gives them."""
        found = self._scopes.get(fn.id)
        if found is not None:
            return found
        scope = self._head(fn)
        self._scopes[fn.id] = scope
        body = fn.child_by_field_name("body")
        for node in _binding_nodes(body) if body is not None else ():
            self._bind_statement(node, scope, fn)
        return scope

    def bound(self, fn: Node, name: str) -> list[tuple] | None:
        """`scope(fn).get(name)`, reading only the statements of the body that may bind
        `name`: those around its occurrences in the body's bytes (a name is bound by an
        identifier at most three levels below its statement), in `scope`'s order. A lookup
        asks for a few names of a function that binds many."""
        whole = self._scopes.get(fn.id)
        if whole is not None:
            return whole.get(name)
        key = (fn.id, name)
        if key in self._bound:
            return self._bound[key]
        head = self._heads.get(fn.id)
        if head is None:
            head = self._heads[fn.id] = self._head(fn)
        body = fn.child_by_field_name("body")
        needle = name.encode()
        if body is None or "\ufffd" in name:  # no bytes to search for: the whole scope
            found = self.scope(fn).get(name)
            self._bound[key] = found
            return found
        start, end = body.start_byte, body.end_byte
        root = fn
        statements: dict[int, Node] = {}
        at = self.data.find(needle, start, end)
        while at >= 0:
            node = root.descendant_for_byte_range(at, at + len(needle))
            if (
                node is not None
                and node.type == "identifier"
                and node.start_byte == at
                and node.end_byte == at + len(needle)
            ):
                holder = node.parent
                for _ in range(3):
                    if holder is None or holder.start_byte < start or holder.end_byte > end:
                        break
                    if holder.type in _BINDERS:
                        statements[holder.id] = holder
                    holder = holder.parent
            at = self.data.find(needle, at + len(needle), end)
        found = list(head[name]) if name in head else None
        if statements:
            local: dict[str, list[tuple]] = {}
            ordered = sorted(statements.values(), key=lambda n: (-n.end_byte, n.start_byte))
            for node in ordered:
                self._bind_statement(node, local, fn)
            if name in local:
                found = (found or []) + local[name]
        self._bound[key] = found
        return found

    def _head(self, fn: Node) -> dict[str, list[tuple]]:
        """The names a function's parameters and receiver bind (the start of its scope)."""
        scope: dict[str, list[tuple]] = {}
        params = fn.child_by_field_name("parameters")
        index = 0
        for decl in params.named_children if params is not None else ():
            if decl.type not in ("parameter_declaration", "variadic_parameter_declaration"):
                continue
            names = decl.children_by_field_name("name")
            for name in names or [None]:
                if name is not None:
                    scope.setdefault(_text(name), []).append(("param", fn, index, None))
                index += 1
        receiver = fn.child_by_field_name("receiver")
        for decl in receiver.named_children if receiver is not None else ():
            for name in decl.children_by_field_name("name"):
                scope.setdefault(_text(name), [])
        return scope

    def _bind_statement(self, node: Node, scope: dict[str, list[tuple]], fn: Node) -> None:
        """What one binding statement of `_binding_nodes` gives the names it binds."""
        t = node.type
        if t in ("short_var_declaration", "assignment_statement"):
            operator = node.child_by_field_name("operator")
            if t == "assignment_statement" and (operator is None or operator.text != b"="):
                return
            left = node.child_by_field_name("left")
            right = node.child_by_field_name("right")
            # `:=` declares a name for its block only; `=` stores to one declared
            # elsewhere, seen from everywhere.
            region = _region(node) if t == "short_var_declaration" else None
            if left is not None and right is not None:
                self._bind(_expressions(left), _expressions(right), scope, fn, region)
        elif t in ("var_spec", "const_spec"):
            self._bind_spec(node, scope, fn, _region(node))
        elif t == "range_clause":
            left = node.child_by_field_name("left")
            right = node.child_by_field_name("right")
            if left is not None and right is not None:
                for which, name in zip(("key", "value"), _expressions(left), strict=False):
                    if name.type == "identifier" and name.text != b"_":
                        ref = ("range", right, which, fn, _region(node))
                        scope.setdefault(_text(name), []).append(ref)
        elif t == "func_literal":
            params = node.child_by_field_name("parameters")
            for decl in params.named_children if params is not None else ():
                for name in decl.children_by_field_name("name"):
                    scope.setdefault(_text(name), [])

    def _struct_fields(self, kind: Node | None) -> tuple[str, ...]:
        """Field names, in order, of a struct type (written out or declared in the file)."""
        seen = 0
        while kind is not None and seen < 4:
            seen += 1
            if kind.type == "struct_type":
                out: list[str] = []
                for decl_list in kind.named_children:
                    for decl in decl_list.named_children:
                        if decl.type == "field_declaration":
                            names = decl.children_by_field_name("name")
                            out.extend(_text(n) for n in names)
                            if not names:
                                out.append("")
                return tuple(out)
            if kind.type == "type_identifier":
                kind = self.types.get(_text(kind))
            elif kind.type == "pointer_type":
                kind = kind.named_children[0] if kind.named_children else None
            else:
                return ()
        return ()


# -- tree helpers --------------------------------------------------------------------------


def _tag(owner: _GoFile, values: frozenset) -> frozenset:
    """Values another file of the package computed, marked with that file: a literal is read
    there, a number shown where it is written."""
    out = set()
    for v in values:
        if (
            (v[0] == "int" and len(v) == 4)
            or (v[0] == "lit" and len(v) == 5)
            or (v[0] == "unknown" and len(v) == 3)
        ):
            out.add((*v, owner))
        else:
            out.add(v)
    return frozenset(out)


def _by_name(declarations: list[Node]) -> dict[str, list[Node]]:
    found: dict[str, list[Node]] = {}
    for node in declarations:
        name = node.child_by_field_name("name")
        if name is not None:
            found.setdefault(_text(name), []).append(node)
    return found


def _text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace")


def _text_of(node: Node, index: int) -> str:
    child = node.child(index)
    return _text(child) if child is not None else ""


def _specs(node: Node):
    for child in node.named_children:
        if child.type in ("var_spec", "const_spec"):
            yield child
        elif child.type in ("var_spec_list", "const_spec_list"):
            yield from (c for c in child.named_children if c.type in ("var_spec", "const_spec"))


def _expressions(node: Node | None) -> list[Node]:
    if node is None:
        return []
    if node.type == "expression_list":
        return [c for c in node.named_children if c.type != "comment"]
    return [node]


def _args(call: Node) -> list[Node]:
    arguments = call.child_by_field_name("arguments")
    if arguments is None:
        return []
    return [c for c in arguments.named_children if c.type != "comment"]


# Where a name declared with `:=` or `var` stays visible: its block, or the statement whose
# header declares it (`if x := ...`, `for k, v := range ...`, a switch case).
_SCOPES = frozenset(
    {"block", "if_statement", "for_statement", "expression_switch_statement",
     "type_switch_statement", "select_statement", "expression_case", "type_case",
     "default_case", "communication_case", "func_literal"}
)  # fmt: skip


def _region(node: Node) -> tuple[int, int] | None:
    current = node.parent
    while current is not None:
        if current.type in _SCOPES:
            return (current.start_byte, current.end_byte)
        current = current.parent
    return None


def _visible(refs: list[tuple], at: int) -> list[tuple]:
    """The bindings of a name seen from byte `at`: the innermost declarations around it
    (Go's shadowing; redeclarations in one block all count), and every plain store."""
    seen = [r for r in refs if r[-1] is None or r[-1][0] <= at < r[-1][1]]
    sizes = [r[-1][1] - r[-1][0] for r in seen if r[-1] is not None]
    if not sizes:
        return seen
    inner = min(sizes)
    return [r for r in seen if r[-1] is None or r[-1][1] - r[-1][0] == inner]


def _literal_elements(body: Node) -> list[Node]:
    return [c for c in body.named_children if c.type in ("literal_element", "keyed_element")]


def _element_fields(go: _GoFile, kind: Node | None) -> tuple[str, ...]:
    """Field names of the elements of a slice, array or map literal type."""
    if kind is None:
        return ()
    if kind.type in ("slice_type", "array_type", "implicit_length_array_type"):
        return go._struct_fields(kind.child_by_field_name("element"))
    if kind.type == "map_type":
        return go._struct_fields(kind.child_by_field_name("value"))
    return ()


def _embed_patterns(text: str) -> list[str] | None:
    """The patterns of a go:embed line: space-separated, each maybe a Go string literal."""
    out: list[str] = []
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"|`[^`]*`|\S+', text):
        word = m.group()
        out.append(_go_unquote(word) if word[0] in '"`' else word)
    return out or None


def _call_of(node: Node | None, name: str) -> Node | None:
    """The call whose function is `name` or `x.name`, from the node of the name."""
    if node is None or node.type not in ("identifier", "field_identifier") or _text(node) != name:
        return None
    parent = node.parent
    if parent is None:
        return None
    if node.type == "field_identifier":
        if parent.type != "selector_expression" or parent.child_by_field_name("field") != node:
            return None
        function, call = parent, parent.parent
    else:
        function, call = node, parent
    if call is None or call.type != "call_expression":
        return None
    return call if call.child_by_field_name("function") == function else None


def _broken(node: Node) -> bool:
    return node.has_error or inside_error(node)


def _first_error(node: Node) -> Node | None:
    current = node
    while True:
        if current.type == "ERROR" or current.is_missing:
            return current
        child = next((c for c in current.children if c.has_error or c.is_missing), None)
        if child is None:
            return None
        current = child


def _function_of(node: Node) -> Node | None:
    """The named function or method a node is in (closures count as their function)."""
    current = node.parent
    while current is not None:
        if current.type in ("function_declaration", "method_declaration"):
            return current
        current = current.parent
    return None


def _function_name(fn: Node | None) -> str | None:
    if fn is None:
        return None
    name = fn.child_by_field_name("name")
    return _text(name) if name is not None else None


def _returns_of(body: Node) -> list[Node]:
    """return statements of a function body, not of the closures in it."""
    out: list[Node] = []
    stack = [body]
    while stack:
        node = stack.pop()
        if node.type == "return_statement":
            out.append(node)
            continue
        if node.type == "func_literal":
            continue
        stack.extend(node.named_children)
    return out
