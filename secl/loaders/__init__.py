"""Which library loads each BPF object, and what loader code in any language does with it.

Every language module (`golang`, `rust`, `python`, `build`; C stays in `secl.parse.loader`)
turns one file into a `FileLoaders`: the places that open BPF objects with a library
(`LoaderUse`, linked to BPF sources by source path, object file name, skeleton name or
bpf2go identifier) and, for libbpf-family loaders, the same per-program `LoaderFact`s the C
extractor produces, so that the upgrade analysis stays one pass that does not care about the
language.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from secl.records import quick_init

TYPE_CHECKING = False  # typing and the C loader extractor are not needed at run time here
if TYPE_CHECKING:
    from secl.facts import Span
    from secl.parse.loader import LoaderFacts

# The loader kinds of ARCHITECTURE.md. `libbpf-assumed` is never found, only assumed.
LIBBPF = "libbpf"
LIBBPF_ASSUMED = "libbpf-assumed"
LIBBPFGO = "libbpfgo"
LIBBPF_RS = "libbpf-rs"
CILIUM = "cilium-ebpf"
AYA = "aya"
BCC = "bcc"
GOBPF = "gobpf"
EBPF_FOR_WINDOWS = "ebpf-for-windows"
OTHER = "other"
KINDS = (LIBBPF, LIBBPF_ASSUMED, LIBBPFGO, LIBBPF_RS, CILIUM, AYA, BCC, GOBPF,
         EBPF_FOR_WINDOWS, OTHER)  # fmt: skip
# Loaders that hand the object to libbpf: libbpf's section table, its auto-upgrade and the
# SECL2xx analysis apply to them.
LIBBPF_FAMILY = frozenset({LIBBPF, LIBBPF_ASSUMED, LIBBPFGO, LIBBPF_RS})
# Loaders with a section model of their own (secl.loaders.models).
MODELLED = frozenset({CILIUM, AYA})
# The module or crate whose version a manifest pins, per kind: the only versions secl asks
# manifests for (secl.analysis.loaders, secl.loaders.discover.LoaderScan.version).
PACKAGES = {
    LIBBPFGO: ("github.com/aquasecurity/libbpfgo",),
    CILIUM: ("github.com/cilium/ebpf",),
    GOBPF: ("github.com/iovisor/gobpf",),
    LIBBPF_RS: ("libbpf-rs", "libbpf-cargo"),
    AYA: ("aya", "aya-obj"),
}


@quick_init
@dataclass(frozen=True, slots=True)
class LoaderUse:
    """One place in user-space code or a build file that opens BPF objects with a library.

    The link keys say which BPF sources it means; any of them may be empty. Paths in `sources`
    and `objects` are as written; a relative one is relative to the directory of `path` (for
    build files: of the build file; for `go:generate`: of the Go file)."""

    kind: str  # one of KINDS (never LIBBPF_ASSUMED)
    path: str  # the file it is written in
    span: Span  # the call, directive or rule that proves it
    value: str  # short text shown as evidence: `bpf2go probe probe.bpf.c`, `NewModuleFromFile`
    sources: tuple[str, ...] = ()  # BPF C sources named (`probe.bpf.c`, `src/bpf/x.bpf.c`)
    objects: tuple[str, ...] = ()  # object files named (`probe.bpf.o`, `probe_bpfel.o`)
    skeletons: tuple[str, ...] = ()  # skeleton names (`probe` for ProbeSkelBuilder, probe.skel.rs)
    idents: tuple[str, ...] = ()  # bpf2go identifiers (`probe` gives probe_bpfel.o/.go)
    # Whether this use may attach every program itself (skeleton attach(), AttachPrograms(),
    # bpf2go objects are never auto-attached): None when it cannot be told.
    auto_attach: bool | None = None
    certain: bool = True  # False when read from a build file or by a loose text match
    # bpf2go: the -I directories clang is given, as written (secl.parse.includes)
    include_dirs: tuple[str, ...] = ()


@dataclass(slots=True)
class FileLoaders:
    """What one user-space or build file says about loading BPF objects."""

    path: str
    uses: list[LoaderUse] = field(default_factory=list)
    # Per-program facts of libbpf-family loaders (libbpfgo, libbpf-rs), in the C extractor's
    # terms: ObjectRef("object", "probe.bpf.o") / ObjectRef("skeleton", "probe") owners,
    # fact kinds "attach", "auto-attach", "attach-offset", "attach-address", "attach-mode",
    # "link-info", "perf-event", "expected-attach-type", "set-type", "autoload",
    # "prog-handler" (program None, value = the section prefix registered).
    facts: LoaderFacts | None = None
    problem: str | None = None  # one line when the file could not be parsed with confidence
    # Go: a value its loader calls need comes from the rest of its package (a parameter no
    # caller in the file shows, a name or function declared in another file): the scan reads
    # the package's other files and reads this one again with them (golang.refine_packages).
    wants_package: bool = False
