"""Which kprobe/uprobe programs the proposed libbpf auto-upgrade breaks, from loader code.

The predicate (secl.libbpf.upgrade) says which programs libbpf would load as
BPF_TRACE_KPROBE_MULTI / BPF_TRACE_UPROBE_MULTI. Whether that breaks a program depends on
what its loader does with it (the breakage catalogue K1-K22/U1-U10 of the auto-upgrade notes):
attach offsets, explicit attach modes, link-info checks, perf-event fds, hand-set attach
types; and on what its own body does (registers, prog arrays).

Each rule is one small pure function of a `Program` (the site, its upgrade decision, the
loader facts linked to it, what its body does), returning a `Hit` or None. `analyse_upgrades`
builds the programs, runs the rules and turns hits into findings and inventory entries.
"""

from __future__ import annotations

import functools
import os
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from secl.analysis.builds import linked_skeletons, loader_defines
from secl.analysis.links import LinkedFact, Linker, link_facts, name_sources, open_state
from secl.analysis.loaders import all_libbpf, assignment, file_named_sources, named_sources
from secl.analysis.project import Project
from secl.facts import SectionSite, Span
from secl.findings import Edit, Evidence, Finding, Fix, Related, UpgradeInfo
from secl.libbpf.upgrade import UpgradeDecision, is_probe_family, single_rewrite, upgrade_decision
from secl.loaders import LIBBPF_FAMILY
from secl.parse.filefacts import has_body
from secl.parse.loader import LoaderFact, LoaderFacts, ObjectRef, is_loader
from secl.parse.tree import lex, lex_all

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Literal

    from secl.findings import Severity

    Group = Literal["kprobe", "uprobe"]

# Registers x86-64 kprobe_multi leaves out of the pt_regs it builds from ftrace_regs
# (kernel/trace/bpf_trace.c: kprobe_multi_link_prog_run() -> ftrace_partial_regs()): only the
# argument and return registers, ip, sp and bp are saved by the ftrace trampoline.
UNRELIABLE_REGISTERS = frozenset(
    {"bx", "r10", "r11", "r12", "r13", "r14", "r15", "orig_ax", "cs", "ss", "flags"}
)
# Helpers whose kprobe implementation depends on the attach type the program was loaded
# with (kernel/trace/bpf_trace.c: kprobe_prog_func_proto() picks the kprobe_multi versions).
CONTEXT_HELPERS = frozenset({"bpf_get_func_ip", "bpf_get_attach_cookie"})
_TAIL_CALLS = frozenset({"bpf_tail_call", "bpf_tail_call_static"})
_ASSIGNMENT_OPS = frozenset(
    {"=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=", "++", "--"}
)


@dataclass(frozen=True, slots=True)
class RuleMeta:
    """Code, name and severity of one upgrade rule."""

    code: str
    name: str
    severity: Severity


RULE_META: dict[str, RuleMeta] = {
    m.code: m
    for m in (
        RuleMeta("SECL002", "ambiguous-program-link", "info"),
        RuleMeta("SECL201", "upgraded-probe-attached-with-offset", "warning"),
        RuleMeta("SECL202", "upgraded-kprobe-attached-in-link-mode", "warning"),
        RuleMeta("SECL203", "upgraded-kprobe-perf-mode-with-context-helpers", "warning"),
        RuleMeta("SECL204", "upgraded-probe-link-info-expects-perf-event", "warning"),
        RuleMeta("SECL205", "upgraded-kprobe-missed-count-scenario", "warning"),
        RuleMeta("SECL206", "upgraded-probe-attached-to-perf-event", "warning"),
        RuleMeta("SECL207", "upgraded-probe-expected-attach-type-set", "warning"),
        RuleMeta("SECL208", "upgraded-probe-in-mixed-prog-array", "warning"),
        RuleMeta("SECL209", "upgraded-kprobe-reads-unsaved-registers", "warning"),
        RuleMeta("SECL301", "upgraded-uprobe-explicit-attach-mode", "info"),
    )
}


# -- the model the rules read -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BodyFacts:
    """What a program's body does, through the file's own functions it calls."""

    calls: dict[str, Span] = field(default_factory=dict)  # callee -> first call
    register_reads: tuple[tuple[str, Span], ...] = ()  # (register or "whole struct", where)
    tail_calls: dict[str, Span] = field(default_factory=dict)  # prog array map -> call


# What may lie between two tokens (secl.parse.tree's lexer skips it): blanks, comments, line
# continuations. A directive may too: a body with `#` is always lexed.
_SKIP = rb"(?:[ \t\r\n\f\v]+|//(?:[^\r\n\\]|\\(?:\r\n|.))*|/\*.*?(?:\*/|\Z)|\\(?:\r\n?|\n))*"
_REGISTER_WORD = re.compile(
    rb"(?<!\w)(?:" + b"|".join(sorted(r.encode() for r in UNRELIABLE_REGISTERS)) + rb")(?!\w)"
)


@functools.cache
def _deref_of(name: bytes) -> re.Pattern[bytes]:
    return re.compile(rb"=" + _SKIP + rb"\*" + _SKIP + re.escape(name) + rb"(?!\w)", re.S)


@functools.cache
def _sizeof_of(name: bytes) -> re.Pattern[bytes]:
    """`sizeof(*NAME)`: the whole-struct read `register_reads` looks for (`sizeof(struct
    pt_regs)` holds `pt_regs`, searched for on its own)."""
    return re.compile(
        rb"(?<!\w)sizeof" + _SKIP + rb"\(" + _SKIP + rb"\*" + _SKIP + re.escape(name) + rb"(?!\w)",
        re.S,
    )


def _may_read_registers(data: bytes, body: tuple[int, int], ctx_names: set[bytes]) -> bool:
    """Whether `register_reads` can find anything in the body: each read it looks for has
    bytes that show in the body whatever blanks and comments its tokens are spread with (a
    register's name as a word, `pt_regs`, `sizeof(*ctx)`, `= *ctx`), which a
    few searches tell without lexing a large program's body."""
    start, end = body
    text = data[start:end]
    if b"#" in text or b"pt_regs" in text or _REGISTER_WORD.search(text):
        return True
    if b"sizeof" in text and any(_sizeof_of(n).search(text) for n in ctx_names):
        return True
    return b"=" in text and any(_deref_of(n).search(text) for n in ctx_names)


class LazyBody:
    """BodyFacts of one program, read from its source on first use."""

    __slots__ = ("_facts", "_reads", "_site", "_source")

    def __init__(self, source: _BpfSource, site: SectionSite) -> None:
        self._source = source
        self._site = site
        self._facts: BodyFacts | None = None
        self._reads: tuple[tuple[str, Span], ...] | None = None

    def _get(self) -> BodyFacts:
        if self._facts is None:
            self._facts = self._source.walk_body(self._site)
        return self._facts

    @property
    def calls(self) -> dict[str, Span]:
        return self._get().calls

    @property
    def register_reads(self) -> tuple[tuple[str, Span], ...]:
        # the program's own body only: no walk through the functions it calls
        if self._facts is not None:
            return self._facts.register_reads
        if self._reads is None:
            self._reads = self._source.register_reads(self._site)
        return self._reads

    @property
    def tail_calls(self) -> dict[str, Span]:
        return self._get().tail_calls


@dataclass(frozen=True, slots=True)
class Program:
    """A kprobe/uprobe-family program with what the analysis knows of it."""

    site: SectionSite
    section: str  # what the predicate saw (macro pieces filled in)
    decision: UpgradeDecision
    group: Group
    facts: tuple[LoaderFact, ...]  # loader facts tied to this program of this object
    body: BodyFacts | LazyBody
    type_taken_over: tuple[Related, ...] = ()  # set_type / custom prog handler
    scenario: tuple[Related, ...] = ()  # K9 proof, filled in across programs
    prog_array: tuple[Related, ...] = ()  # K19 proof, filled in across programs

    @property
    def name(self) -> str:
        return self.site.program or "?"

    @property
    def upgraded(self) -> bool:
        """Upgraded by the predicate, and still a probe program: a loader that changes the
        program type (bpf_program__set_type) or registers its own handler for the section
        (libbpf_register_prog_handler) makes it something the predicate's name check
        cannot speak for (auto-upgrade notes, section 2, uncertainty 3)."""
        return self.decision.upgraded and not self.type_taken_over

    @property
    def upgraded_kprobe(self) -> bool:
        return self.upgraded and self.group == "kprobe"

    def of(self, *kinds: str) -> list[LoaderFact]:
        """Facts of these kinds in source order (values come from sets: the order of their
        discovery would change from run to run)."""
        found = [f for f in self.facts if f.kind in kinds and f.certain]
        return sorted(found, key=lambda f: (f.path, f.span.start_byte, f.span.end_byte, f.kind))


@dataclass(frozen=True, slots=True)
class Hit:
    """What a rule found for one program: its message and the lines behind it."""

    message: str
    related: tuple[Related, ...]


@dataclass
class UpgradeAnalysis:
    """The upgrade fate of every program site, and the findings it gives."""

    info: dict[tuple[str, int, str | None], UpgradeInfo]
    findings: list[Finding]
    programs: list[Program] = field(default_factory=list)

    def inventory_totals(self) -> dict[str, object]:
        """Programs of the family, how many are upgraded, the others by reason_code."""
        by_reason: dict[str, int] = {}
        upgraded = 0
        for info in self.info.values():
            if info.upgraded:
                upgraded += 1
            else:
                by_reason[info.reason_code] = by_reason.get(info.reason_code, 0) + 1
        return {
            "programs": len(self.info),
            "upgraded": upgraded,
            "not_upgraded": dict(sorted(by_reason.items())),
            "needs_single": sum(1 for i in self.info.values() if i.needs_single),
        }


MAX_RELATED = 8


def _where(fact: LoaderFact) -> str:
    return f"{os.path.basename(fact.path)}:{fact.span.start.row}"


def _related(
    facts: list[LoaderFact], say: Callable[[LoaderFact], str], with_call: bool = True
) -> tuple[Related, ...]:
    """The proving lines, nearest first: each distinct statement once, each call it goes
    through once, at most MAX_RELATED lines."""
    out: list[Related] = []
    seen_rows: set[tuple[str, int]] = set()
    seen_messages: set[tuple[str, str]] = set()
    for fact in sorted(facts, key=lambda f: (f.path, f.span.start_byte)):
        message = say(fact)
        key = (fact.path, fact.span.start.row)
        if key not in seen_rows and (fact.path, message) not in seen_messages:
            seen_rows.add(key)
            seen_messages.add((fact.path, message))
            out.append(Related(fact.path, fact.span, message))
        if with_call and fact.call is not None:
            key = (fact.path, fact.call.start.row)
            if key not in seen_rows:
                seen_rows.add(key)
                how = "attached here by" if fact.api and "attach" in fact.api else "read by"
                out.append(Related(fact.path, fact.call, f"{how} `{fact.api}()`"))
    return tuple(out[:MAX_RELATED])


# -- the rules: one small pure function each ------------------------------------------------


def nonzero_attach_offset(p: Program) -> Hit | None:
    """SECL201 (K4): a nonzero or unknown bpf_kprobe_opts.offset, or attach by address.
    libbpf would only route offset 0 to the multi path; the perf path then creates a perf
    link for a multi-typed program, which link_create rejects (kernel/bpf/syscall.c:
    bpf_prog_attach_check_attach_type)."""
    if not p.upgraded_kprobe:
        return None
    facts = p.of("attach-offset", "attach-address")
    if not facts:
        return None
    by_address = any(f.kind == "attach-address" for f in facts)
    first = facts[0]
    if isinstance(first.value, int):
        shown = f"with offset {first.value:#x}"
    elif first.value:
        # A run-time value: the expression the loader stores, which secl cannot prove is 0.
        shown = f"with offset `{first.value}`, a value computed at run time"
    else:
        shown = "with an offset computed at run time"
    if by_address:
        address = f" `{first.value}`" if isinstance(first.value, str) and first.value else ""
        how = f"by address (no symbol, the address{address} as offset)"
    else:
        how = shown
    return Hit(
        f"`{p.name}` is attached {how} ({_where(first)}); upgraded to kprobe_multi it can only "
        "be attached at a symbol with offset 0, so the attach fails with EINVAL",
        _related(facts, _offset_said),
    )


def _offset_said(fact: LoaderFact) -> str:
    if isinstance(fact.value, int):
        return f"offset set here ({fact.value:#x})"
    if fact.value:
        return f"offset set here (`{fact.value}`, known only at run time)"
    return "offset set here"


def explicit_link_mode(p: Program) -> Hit | None:
    """SECL202 (K2): PROBE_ATTACH_MODE_LINK asks for a perf-event link, which the kernel
    refuses for a program loaded as BPF_TRACE_KPROBE_MULTI."""
    if not p.upgraded_kprobe:
        return None
    facts = [f for f in p.of("attach-mode") if f.value == "PROBE_ATTACH_MODE_LINK"]
    if not facts:
        return None
    return Hit(
        f"`{p.name}` is attached with PROBE_ATTACH_MODE_LINK ({_where(facts[0])}); a perf-event "
        "link for a program loaded as kprobe_multi fails with EINVAL",
        _related(facts, lambda f: "attach_mode = PROBE_ATTACH_MODE_LINK comes from here"),
    )


def perf_mode_with_context_helpers(p: Program) -> Hit | None:
    """SECL203 (K3): PERF/LEGACY modes still attach through the perf ioctl (which ignores the
    attach type), but bpf_get_func_ip()/bpf_get_attach_cookie() were resolved for kprobe_multi
    and read the wrong run context."""
    if not p.upgraded_kprobe:
        return None
    facts = [
        f
        for f in p.of("attach-mode")
        if f.value in ("PROBE_ATTACH_MODE_PERF", "PROBE_ATTACH_MODE_LEGACY")
    ]
    if not facts:
        return None  # before the body: following its calls is the costly part of a program
    helpers = sorted(h for h in CONTEXT_HELPERS if h in p.body.calls)
    if not helpers:
        return None
    body = tuple(Related(p.site.path, p.body.calls[h], f"`{h}()` called here") for h in helpers)
    mode = str(facts[0].value)
    return Hit(
        f"`{p.name}` is attached with {mode} ({_where(facts[0])}) and calls "
        f"{', '.join(f'`{h}()`' for h in helpers)}; loaded as kprobe_multi, these helpers read the "
        "kprobe_multi run context while the program runs from a perf kprobe",
        _related(facts, lambda f: f"attach_mode = {f.value} comes from here") + body,
    )


def perf_link_info(p: Program) -> Hit | None:
    """SECL204 (K1/U1): the loader reads the link's info and expects a perf-event link;
    upgraded, the link is BPF_LINK_TYPE_KPROBE_MULTI / UPROBE_MULTI and info.perf_event is
    not filled (kernel/trace/bpf_trace.c: bpf_{k,u}probe_multi_link_fill_link_info)."""
    if not p.upgraded:
        return None
    other_group = "U" if p.group == "kprobe" else "K"
    facts = [
        f for f in p.of("link-info") if not str(f.value).startswith(f"BPF_PERF_EVENT_{other_group}")
    ]
    handled = {(f.path, f.function) for f in p.of("link-info-multi") if f.value == p.group}
    facts = [f for f in facts if (f.path, f.function) not in handled]
    if not facts:
        return None
    multi = "KPROBE_MULTI" if p.group == "kprobe" else "UPROBE_MULTI"
    return Hit(
        f"the link of `{p.name}` is expected to be a perf-event link ({_where(facts[0])}); "
        f"upgraded, it is BPF_LINK_TYPE_{multi} and info.perf_event is not filled",
        _related(
            facts,
            lambda f: f"expects {f.value}" if f.value != "perf_event" else "reads info.perf_event",
        ),
    )


def missed_count_scenario(p: Program) -> Hit | None:
    """SECL205 (K9): a perf kprobe's `missed` counter is asserted; with the programs of that
    scenario upgraded, the counter moves to info.kprobe_multi.missed and the
    kprobe-inside-kprobe recursion it counts no longer happens."""
    if not p.upgraded_kprobe or not p.scenario:
        return None
    return Hit(
        f"`{p.name}` is part of a scenario that asserts a perf kprobe's missed counter; "
        "upgraded, the counter is no longer in info.perf_event.kprobe.missed and the "
        "kprobe recursion it counts does not happen",
        p.scenario,
    )


def perf_event_attach(p: Program) -> Hit | None:
    """SECL206 (K20/U9): bpf_program__attach_perf_event() on a perf kprobe/uprobe fd: the
    link is refused for a multi-typed program, the ioctl path runs it with the wrong helpers."""
    if not p.upgraded:
        return None
    facts = p.of("perf-event")
    if not facts:
        return _attached_as_other_kind(p)
    return Hit(
        f"`{p.name}` is attached to a perf event by hand ({_where(facts[0])}); loaded as a "
        "multi-probe it can no longer be attached through a perf-event fd",
        _related(facts, lambda f: f"`{f.api}()` here", with_call=False),
    )


def _attach_kind(api: str) -> str | None:
    """The probe kind a hand attach call makes (libbpf.c bpf_program__attach_kprobe_opts(),
    bpf_program__attach_uprobe_opts(), bpf_program__attach_usdt(), and the Go and Rust
    bindings named after them)."""
    name = api.lower()
    if "uprobe" in name or "usdt" in name:
        return "uprobe"
    if "kprobe" in name:
        return "kprobe"
    return None


def _attached_as_other_kind(p: Program) -> Hit | None:
    """SECL206 too: a kprobe program attached by hand as a uprobe (one program for both, as
    tools that take `func` or `binary:func` do), or the reverse. Upgraded, it has the multi
    attach type of its section's kind and may make only links of that kind
    (kernel/bpf/syscall.c: bpf_prog_attach_check_attach_type()); the other kind's perf-event
    or multi link is refused."""
    # (A program the loader picks at run time, any of the object's, is one of the kind it
    # attaches as: only a program it names is known to be of the other kind.)
    facts = [
        f for f in p.of("attach")
        if _attach_kind(f.api or "") not in (None, p.group)
        and (f.program is None or f.program.name is not None)
    ]  # fmt: skip
    if not facts:
        return None
    return Hit(
        f"`{p.name}` is a {p.group} program attached as a "
        f"{_attach_kind(facts[0].api or '')} ({_where(facts[0])}); loaded as a multi-{p.group} "
        f"it can only make {p.group}_multi links, so this attach is refused",
        _related(facts, lambda f: f"`{f.api}()` here", with_call=False),
    )


def expected_attach_type_set(p: Program) -> Hit | None:
    """SECL207 (K21/U9): bpf_program__set_expected_attach_type() before load; the upgrade runs
    in bpf_object_prepare_progs() during load and overwrites it. Not for programs whose type
    was changed or that a custom prog handler takes over."""
    if not p.upgraded:
        return None
    # Setting the very attach type the upgrade sets (BPF_TRACE_KPROBE_MULTI on a kprobe it
    # makes multi; libbpfgo's BPFAttachTypeTraceUprobeMulti) changes nothing.
    facts = [f for f in p.of("expected-attach-type") if not _same_as_upgrade(p, f.value)]
    if not facts:
        return None
    return Hit(
        f"the loader sets the expected attach type of `{p.name}` to {facts[0].value} "
        f"({_where(facts[0])}); the upgrade overwrites it at load time",
        _related(facts, lambda f: f"set to {f.value} here", with_call=False),
    )


def _same_as_upgrade(p: Program, value: object) -> bool:
    """Whether an attach type written in C, Go or Rust names the multi attach type the
    upgrade gives this program (kprobe_multi or uprobe_multi, entry or return alike)."""
    squashed = re.sub(r"[^a-z]", "", str(value).lower())
    base = p.section.split("/", 1)[0]
    family = "uprobe" if "uprobe" in base or "uretprobe" in base else "kprobe"
    return squashed.endswith(f"trace{family}multi")


def mixed_prog_array(p: Program) -> Hit | None:
    """SECL208 (K19): a prog array shared with programs that stay perf kprobes/uprobes; prog
    array entries must share the expected attach type (kernel/bpf/core.c:
    __bpf_prog_map_compatible), so loading or updating fails."""
    if not p.upgraded or not p.prog_array:
        return None
    return Hit(
        f"`{p.name}` shares a prog array with programs the upgrade leaves alone; entries "
        "of one prog array must have the same expected attach type",
        p.prog_array,
    )


def unsaved_registers(p: Program) -> Hit | None:
    """SECL209 (K16): kprobe_multi runs the program on a partial pt_regs built from
    ftrace_regs; only argument/return registers, ip, sp and bp are valid."""
    if not p.upgraded_kprobe or not p.body.register_reads:
        return None
    regs = sorted({r for r, _ in p.body.register_reads})
    shown = ", ".join(f"`{r}`" if r != "whole struct" else "the whole pt_regs" for r in regs)
    return Hit(
        f"`{p.name}` reads {shown} from its pt_regs; under kprobe_multi only the argument and "
        "return registers, ip, sp and bp are filled",
        tuple(Related(p.site.path, span, f"reads {r}") for r, span in p.body.register_reads),
    )


def uprobe_attach_mode(p: Program) -> Hit | None:
    """SECL301 (U2): an explicit attach mode on an upgraded uprobe. How the final series
    routes it is not known; it does not fail in the RFC's selftests."""
    if not p.upgraded or p.group != "uprobe":
        return None
    facts = p.of("attach-mode")
    if not facts:
        return None
    modes = sorted({str(f.value) for f in facts})
    return Hit(
        f"`{p.name}` is attached with {', '.join(modes)} ({_where(facts[0])}); how the upgrade "
        "routes explicit modes for uprobes is not settled (rerouted to uprobe_multi in the RFC)",
        _related(facts, lambda f: f"attach_mode = {f.value} comes from here"),
    )


RULES: dict[str, Callable[[Program], Hit | None]] = {
    "SECL201": nonzero_attach_offset,
    "SECL202": explicit_link_mode,
    "SECL203": perf_mode_with_context_helpers,
    "SECL204": perf_link_info,
    "SECL205": missed_count_scenario,
    "SECL206": perf_event_attach,
    "SECL207": expected_attach_type_set,
    "SECL208": mixed_prog_array,
    "SECL209": unsaved_registers,
    "SECL301": uprobe_attach_mode,
}


# -- BPF side -------------------------------------------------------------------------------


class _BpfSource:
    """Function bodies of one BPF file, read once."""

    def __init__(self, project: Project, path: str) -> None:
        self.path = path
        self.data = project.files[path]
        self.positions = project.positions(path)
        # Weak: the project's memo holds the analysis that holds this source (a cycle would
        # keep every tree of the run alive until the cyclic collector ran).
        self._project = weakref.ref(project)
        self._functions: dict[str, tuple[int, int]] | None = None
        self._tokens: dict[tuple[int, int], list] = {}
        self._bodies: dict[tuple[int, int], BodyFacts] = {}

    def functions(self) -> dict[str, tuple[int, int]]:
        if self._functions is None:
            self._functions = self._project().functions(self.path)  # type: ignore[union-attr]
        return self._functions

    def tokens(self, body: tuple[int, int]) -> list:
        toks = self._tokens.get(body)
        if toks is None:
            toks = self._tokens[body] = lex_all(self.data, body[0], body[1])
        return toks

    def span(self, start: int, end: int) -> Span:
        return self.positions.span(start, end)

    def body_facts(self, site: SectionSite) -> BodyFacts | LazyBody:
        """The body's facts, computed when a rule first asks: following a large program's
        calls through the file's functions costs more than the rest of its analysis, and
        most rules never need it."""
        if site.body is None:
            return BodyFacts()
        cached = self._bodies.get(site.body)
        if cached is not None:
            return cached
        return LazyBody(self, site)

    def walk_body(self, site: SectionSite) -> BodyFacts:
        assert site.body is not None
        cached = self._bodies.get(site.body)
        if cached is not None:
            return cached
        calls: dict[str, Span] = {}
        tail_calls: dict[str, Span] = {}
        functions = self.functions()
        pending = [site.body]
        seen = {site.body}
        while pending:
            body = pending.pop()
            toks = self.tokens(body)
            for i, tok in enumerate(toks[:-1]):
                if tok.type != "identifier" or toks[i + 1].type != "(":
                    continue
                name = tok.text.decode()
                if name not in calls:
                    calls[name] = self.span(tok.start_byte, tok.end_byte)
                if name in _TAIL_CALLS:
                    for target in self._address_args(toks, i + 1):
                        tail_calls.setdefault(target, self.span(tok.start_byte, tok.end_byte))
                sub = functions.get(name)
                if sub is not None and sub not in seen:
                    seen.add(sub)
                    pending.append(sub)
        facts = BodyFacts(calls, self.register_reads(site), tail_calls)
        self._bodies[site.body] = facts
        return facts

    @staticmethod
    def _address_args(toks: list, open_index: int) -> list[str]:
        depth = 0
        out = []
        for j in range(open_index, min(len(toks), open_index + 64)):
            t = toks[j].type
            if t == "(":
                depth += 1
            elif t == ")":
                depth -= 1
                if depth == 0:
                    break
            elif t == "&" and j + 1 < len(toks) and toks[j + 1].type == "identifier":
                out.append(toks[j + 1].text.decode())
        return out

    def _context_names(self, site: SectionSite) -> set[bytes]:
        """The name the program's context has in its body: the first parameter of a plain
        function, `ctx` in the BPF_KPROBE()-style macros (whose other arguments are the probed
        function's, possibly a `struct pt_regs *` of a syscall wrapper, not the context)."""
        if site.name_span is None or site.body is None:
            return {b"ctx"}
        header = list(lex(self.data, site.name_span.end_byte, site.body[0]))
        if not header or header[0].type != "(":
            return {b"ctx"}  # NAME followed by `,` or `)`: a wrapper macro's first argument
        depth = 0
        last = None
        for tok in header:
            if tok.type == "(":
                depth += 1
            elif tok.type == ")":
                depth -= 1
                if depth == 0:
                    break
            elif tok.type == "," and depth == 1:
                break
            elif tok.type == "identifier" and depth == 1:
                last = tok.text
        return {last} if last is not None else {b"ctx"}

    def register_reads(self, site: SectionSite) -> tuple[tuple[str, Span], ...]:
        assert site.body is not None
        ctx_names = self._context_names(site)
        if not _may_read_registers(self.data, site.body, ctx_names):
            return ()
        toks = self.tokens(site.body)
        reads: list[tuple[str, Span]] = []
        n = len(toks)
        for i, tok in enumerate(toks):
            if tok.type != "identifier":
                continue
            text = tok.text
            if (
                text in ctx_names
                and i + 2 < n
                and toks[i + 1].type == "->"
                and toks[i + 2].type == "identifier"
            ):
                reg = toks[i + 2].text.decode()
                after = toks[i + 3].type if i + 3 < n else ""
                if reg in UNRELIABLE_REGISTERS and after not in _ASSIGNMENT_OPS:
                    reads.append((reg, self.span(tok.start_byte, toks[i + 2].end_byte)))
            elif text in (b"BPF_CORE_READ", b"BPF_PROBE_READ") and i + 4 < n:
                if toks[i + 2].text in ctx_names and toks[i + 3].type == ",":
                    reg = toks[i + 4].text.decode()
                    if reg in UNRELIABLE_REGISTERS:
                        reads.append((reg, self.span(tok.start_byte, toks[i + 4].end_byte)))
            elif text == b"sizeof" and i + 3 < n and toks[i + 1].type == "(":
                inner = toks[i + 2]
                if (inner.type == "*" and toks[i + 3].text in ctx_names) or (
                    inner.type == "struct"
                    and toks[i + 3].text == b"pt_regs"
                    and i + 4 < n
                    and toks[i + 4].type == ")"
                ):
                    reads.append(("whole struct", self.span(tok.start_byte, toks[i + 3].end_byte)))
            elif (
                text == b"pt_regs"
                and i > 0
                and toks[i - 1].type == "struct"
                and i + 2 < n
                and toks[i + 1].type == "identifier"
                and toks[i + 2].type in (";", "=", ",")
            ):
                span = self.span(toks[i - 1].start_byte, toks[i + 1].end_byte)
                reads.append(("whole struct", span))
            if text in ctx_names and i > 1 and toks[i - 1].type == "*" and toks[i - 2].type == "=":
                reads.append(("whole struct", self.span(toks[i - 1].start_byte, tok.end_byte)))
        return tuple(reads)

    def prog_arrays(self, project: Project) -> dict[str, tuple[Span, frozenset[str]]]:
        """Prog array maps of the file: name -> (definition, programs named in `.values`)."""
        if b"BPF_MAP_TYPE_PROG_ARRAY" not in self.data:
            return {}
        root = project.tree(self.path).root_node
        maps_sites = [
            s
            for s in project.sites_in(self.path)
            if s.kind == "data" and s.section == ".maps" and s.symbol
        ]
        found: dict[str, tuple[Span, frozenset[str]]] = {}
        for m in re.finditer(rb"\bBPF_MAP_TYPE_PROG_ARRAY\b", self.data):
            node = root.descendant_for_byte_range(m.start(), m.end())
            if node is None or node.type == "comment" or node.type.startswith("string"):
                continue
            site = next((s for s in maps_sites if s.span.start_byte > m.start()), None)
            if site is None or site.symbol is None:
                continue
            holders: set[str] = set()
            toks = lex(self.data, site.span.end_byte)
            depth = 0
            started = False
            for count, tok in enumerate(toks):
                if count > 2000:
                    break
                if not started:
                    if tok.type == ")":
                        continue
                    if tok.type != "=":
                        break
                    started = True
                    continue
                if tok.type in ("{", "("):
                    depth += 1
                elif tok.type in ("}", ")"):
                    depth -= 1
                elif tok.type == ";" and depth == 0:
                    break
                elif tok.type == "identifier":
                    holders.add(tok.text.decode())
            found[site.symbol] = (site.span, frozenset(holders))
        return found


# -- building programs ----------------------------------------------------------------------


def _group(decision: UpgradeDecision) -> Group | None:
    if decision.family in ("kprobe", "kretprobe"):
        return "kprobe"
    if decision.family in ("uprobe", "uretprobe"):
        return "uprobe"
    return None


_DEFINE = re.compile(
    rb'(?m)^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+("(?:[^"\\\n]|\\.)*")'
    rb"[ \t]*(?://[^\n]*|/\*.*?\*/)?[ \t\r]*$"
)


def _define_literals(data: bytes) -> dict[str, tuple[int, int, str]]:
    """Object-like `#define NAME "text"` of a file: name -> (start, end of the literal, text)."""
    out = {}
    if b"#" not in data:
        return out
    for m in _DEFINE.finditer(data):
        out.setdefault(
            m.group(1).decode(), (m.start(2), m.end(2), m.group(2).decode("utf-8", "replace"))
        )
    return out


def predicate_section(
    site: SectionSite, config_defines: dict[str, str], file_defines
) -> str | None:
    """The section string the predicate needs. Macro pieces are filled from `defines` in the
    configuration, then from the file's own `#define NAME "..."`; a macro after a literal
    prefix (`"kprobe/" SYS_PREFIX "sys_x"`) cannot add `@` or `+` to a kernel symbol, so a
    neutral placeholder stands in for it. None when the prefix itself is unknown."""
    if site.section is not None:
        return site.section
    from secl.parse.cstring import decode_literal

    parts = []
    for index, piece in enumerate(site.pieces):
        if piece.kind == "literal":
            parts.append(piece.value or "")
            continue
        value = None
        if piece.kind == "macro":
            raw = config_defines.get(piece.text)
            if raw is not None:
                value = decode_literal(raw.strip()) if raw.strip().startswith('"') else None
            if value is None and piece.text in file_defines:
                value = decode_literal(file_defines[piece.text][2])
        if value is None:
            if index == 0:
                return None
            value = "_"
        parts.append(value)
    return "".join(parts)


def _targets(section: str, facts: tuple[LoaderFact, ...]) -> set[str]:
    """Kernel functions a kprobe program probes: from `kprobe/fn` and from its attach calls."""
    out: set[str] = set()
    name = section.lstrip("?")
    if "/" in name:
        target = name.split("/", 1)[1].split("+", 1)[0]
        if target:
            out.add(target.split(":")[-1])
    for fact in facts:
        out.update(fact.targets)
    return out


def _scenarios(programs: list[Program]) -> dict[int, tuple[Related, ...]]:
    """K9: for each program whose perf kprobe `missed` counter a loader asserts, the kprobe
    programs of the same object attached in the same scenario (the loader function of the
    assertion or of the program's attach) that call a function another of them probes."""
    out: dict[int, list[Related]] = {}
    by_source: dict[str, list[int]] = {}
    for i, p in enumerate(programs):
        if p.upgraded_kprobe:
            by_source.setdefault(p.site.path, []).append(i)
    for i, p in enumerate(programs):
        missed = p.of("missed-count")
        if not missed or not p.upgraded_kprobe:
            continue
        scene = {(f.path, f.function) for f in missed}
        scene |= {(f.path, f.function) for f in p.of("attach", "auto-attach")}
        members = [
            j for j in by_source.get(p.site.path, ())
            if any((f.path, f.function) in scene for f in programs[j].of("attach", "auto-attach"))
        ]  # fmt: skip
        if i not in members:
            members.append(i)
        proof = _related(missed, lambda f: "asserts the perf kprobe `missed` counter here")
        out.setdefault(i, []).extend(proof)
        targets = {j: _targets(programs[j].section, programs[j].facts) for j in members}
        for q in members:
            for r in members:
                if q == r:
                    continue
                hit = sorted(t for t in targets[r] if t in programs[q].body.calls)
                if not hit:
                    continue
                call = programs[q].body.calls[hit[0]]
                out.setdefault(q, []).extend(proof)
                out[q].append(
                    Related(
                        programs[q].site.path,
                        call,
                        f"calls `{hit[0]}()`, which `{programs[r].name}` probes",
                    )
                )
                out[q].append(
                    Related(
                        programs[r].site.path,
                        programs[r].site.span,
                        f"`{programs[r].name}` probes `{hit[0]}`",
                    )
                )
                break
    return {k: tuple(dict.fromkeys(v)) for k, v in out.items()}


def _prog_type_key(p: Program, upgraded: bool) -> tuple | None:
    """(prog type, expected attach type, sleepable) libbpf loads `p` with, or None when it is
    not a BPF_PROG_TYPE_KPROBE program."""
    try:
        from secl.libbpf.table import Target, match
    except ImportError:  # pragma: no cover
        return None
    found = match(p.section, Target.upgrade())
    if found is None or found.definition.prog_type != "BPF_PROG_TYPE_KPROBE":
        return None
    sleepable = found.definition.sleepable or bool(p.of("sleepable"))
    attach_type = found.definition.expected_attach_type or "0"
    if upgraded and p.decision.upgraded:
        attach_type = p.decision.attach_type or attach_type
    return ("BPF_PROG_TYPE_KPROBE", attach_type, sleepable)


def _prog_arrays(
    project: Project, sources: dict[str, _BpfSource], programs: list[Program]
) -> dict[int, tuple[Related, ...]]:
    """K19: prog arrays whose callers and entries load compatibly today but not upgraded."""
    out: dict[int, tuple[Related, ...]] = {}
    by_path: dict[str, list[int]] = {}
    for i, p in enumerate(programs):
        by_path.setdefault(p.site.path, []).append(i)
    for path, indexes in by_path.items():
        arrays = sources[path].prog_arrays(project)
        for name, (span, holders) in arrays.items():
            members = [
                i for i in indexes
                if name in programs[i].body.tail_calls or programs[i].name in holders
            ]  # fmt: skip
            keyed = [
                (i, _prog_type_key(programs[i], False), _prog_type_key(programs[i], True))
                for i in members
            ]
            keyed = [k for k in keyed if k[1] is not None]
            if len({k[1] for k in keyed}) != 1 or len({k[2] for k in keyed}) < 2:
                continue
            for i, _, after in keyed:
                if not programs[i].decision.upgraded:
                    continue
                others = [programs[j] for j, _, a in keyed if a != after]
                related = [Related(path, span, f"prog array `{name}`")]
                for other in others[:3]:
                    related.append(
                        Related(
                            other.site.path,
                            other.site.span,
                            f"`{other.name}` ({other.section}) is loaded differently",
                        )
                    )
                out[i] = tuple(related)
    return out


# -- fixes ----------------------------------------------------------------------------------


def single_fix(
    p: Program, project: Project, file_defines, programs_by_macro: dict[str, list[str]]
) -> Fix | None:
    """Rename the section to its `.single` form by editing only the literal holding the prefix."""
    site = p.site
    shared: list[str] = []
    define: str | None = None
    if site.spellings:
        # Built through macros: edit the literal where it is spelled (at the site or in the
        # #define), as the preprocessor resolution recorded it.
        from secl.parse.macros import prefix_spelling

        spelling = prefix_spelling(site)
        if spelling is None:
            return None
        path, span, text = spelling.path, spelling.piece.span, spelling.piece.text
        define = spelling.macro
        shared = sorted(n for n in spelling.shared if n != p.name)
    elif not site.pieces:
        return None
    elif site.pieces[0].kind == "literal":
        piece = site.pieces[0]
        path, text, span = site.path, piece.text, piece.span
    elif site.pieces[0].kind == "macro" and site.pieces[0].text in file_defines:
        define = site.pieces[0].text
        start, end, text = file_defines[define]
        path = site.path
        span = project.positions(path).span(start, end)
        shared = sorted(n for n in programs_by_macro.get(define, []) if n != p.name)
    else:
        return None
    quote = text.find('"')
    if quote < 0:
        return None
    from secl.parse.cstring import decode_literal

    value = decode_literal(text[quote:] if quote == 0 else text)
    if value is None:
        return None
    rewritten = single_rewrite(value)
    if rewritten is None:
        return None
    marker = "?" if value.startswith("?") else ""
    base = value[len(marker) :].split("/", 1)[0]
    head = marker + base
    if not text[quote + 1 :].startswith(head):
        return None  # the prefix is spelled with escapes: leave it to a human
    new_text = text[: quote + 1] + head + ".single" + text[quote + 1 + len(head) :]
    single = rewritten.split("/", 1)[0].lstrip("?")
    target = project.config.target_libbpf
    notes = []
    applicability = "safe"
    if target != "upgrade":
        applicability = "unsafe"
        notes.append(
            f"libbpf {target} rejects the `{single}` section name: it exists only with the "
            "proposed auto-upgrade"
        )
    if shared:
        applicability = "unsafe"
        names = ", ".join(f"`{n}`" for n in shared)
        where = f"`{define}` is a #define" if define else "the literal is"
        notes.append(f"{where} also used by {names}, which the edit renames too")
    message = f"Use `{single}` to keep the perf-event attachment"
    if notes:
        message += " (" + "; ".join(notes) + ")"
    return Fix(applicability, message, (Edit(path, span, new_text),))


# -- the entry point ------------------------------------------------------------------------


# A loader that may name its skeleton with a build-time macro (`struct SKEL_NAME *skel`,
# `#include M(SKEL_HEADER)`, `PASTE(SKEL_NAME, __open)`): only its -D flags are looked up.
_BUILD_NAMED = re.compile(rb"struct\s+[A-Z][A-Z0-9_]*\s*\*|#\s*include\s+\w+\s*\(|,\s*__open")


def _loaders(project: Project) -> list[LoaderFacts]:
    out = []
    for path in sorted(project.files):
        data = project.files[path]
        known = project.known_facts(path)  # read when the file was: is_loader reads it all
        if not (is_loader(data) if known is None else known.loader is not None):
            continue
        if not has_body(data):  # a huge header without a function body: no facts
            out.append(project.loader_facts(path))
            continue
        defines = loader_defines(project, path) if _BUILD_NAMED.search(data) else None
        out.append(project.loader_facts(path, defines))
    if project.loader_scan is not None:
        # Go and Rust loaders built on libbpf (libbpfgo, libbpf-rs) give the same facts; so
        # does a file that opens nothing and works on a module handed to it (its facts are
        # libbpfgo's or libbpf-rs's own calls).
        out.extend(
            lf.facts
            for lf in project.loader_scan.files
            if lf.facts is not None
            and (not lf.uses or any(u.kind in LIBBPF_FAMILY for u in lf.uses))
        )
    return out


def _libbpf_loaded(
    project: Project,
    family: list[tuple[SectionSite, str]],
    info: dict[tuple[str, int, str | None], UpgradeInfo],
) -> list[tuple[SectionSite, str]]:
    """The programs libbpf loads; the others get `loader-not-libbpf` in `info`: the
    auto-upgrade is libbpf's, and cilium/ebpf, aya, BCC ... attach as they always did."""
    if all_libbpf(project):
        return family
    kept = []
    for site, section in family:
        loader = assignment(project, site.path)
        if loader.libbpf_family:
            kept.append((site, section))
            continue
        info[site.key] = UpgradeInfo(
            upgraded=False,
            reason_code="loader-not-libbpf",
            reason=f"loaded by {loader.display}, not libbpf: the auto-upgrade does not apply",
            needs_single=False,
            codes=(),
            evidence=(),
        )
    return kept


def _taken_over(
    site: SectionSite,
    section: str,
    facts: tuple[LoaderFact, ...],
    handlers: list[tuple[LoaderFact, frozenset[str]]],
) -> tuple[Related, ...]:
    out = [
        Related(f.path, f.span, f"type changed with `bpf_program__set_type({f.value})` here")
        for f in facts if f.kind == "set-type"
    ]  # fmt: skip
    name = section[1:] if section.startswith("?") else section
    for handler, sources in handlers:
        # A handler is process-wide, but only the objects its own loader opens are known to
        # be opened while it is registered.
        if site.path not in sources or handler.value is None:
            # a NULL handler is libbpf's fallback for names nothing else matches: a
            # kprobe/uprobe-family name always matches libbpf's own table first
            continue
        sec = str(handler.value)
        # libbpf.c: find_sec_def() tries custom handlers first, matching like sec_def_matches().
        if sec.endswith("+"):
            base = sec[:-1]
            matches = name == base or name.startswith(base + "/")
        elif sec.endswith("/"):
            matches = name.startswith(sec)
        else:
            matches = name == sec
        if matches:
            out.append(
                Related(
                    handler.path, handler.span, f"custom prog handler for `{sec}` registered here"
                )
            )
    return tuple(out)


def analyse_upgrades(project: Project) -> UpgradeAnalysis:
    """Upgrade fate of every kprobe/uprobe-family program, and the SECL2xx/SECL301/SECL002
    findings for programs in reported files. Computed once per project."""
    cached = project.memo.get("upgrade-analysis")
    if cached is not None:
        return cached
    analysis = _analyse(project)
    project.memo["upgrade-analysis"] = analysis
    return analysis


def _analyse(project: Project) -> UpgradeAnalysis:
    config_defines = {}
    for item in project.config.defines:
        name, _, value = item.partition("=")
        config_defines[name.strip()] = value
    candidates = [s for s in project.programs if s.program is not None]
    defines_by_path: dict[str, dict] = {}
    family: list[tuple[SectionSite, str]] = []
    for site in candidates:
        defines = defines_by_path.get(site.path)
        if defines is None and (
            site.section is None or not site.pieces or site.pieces[0].kind != "literal"
        ):
            defines = defines_by_path[site.path] = _define_literals(
                project.files.get(site.path, b"")
            )
        section = predicate_section(site, config_defines, defines or {})
        if section is not None and is_probe_family(section):
            family.append((site, section))
    info: dict[tuple[str, int, str | None], UpgradeInfo] = {}
    family = _libbpf_loaded(project, family, info)
    if not family:
        return UpgradeAnalysis(info, [])
    loaders = _loaders(project)
    bpf_paths = sorted({s.path for s in project.programs})
    linker = Linker(
        project,
        named_sources(project),
        file_named_sources(project),
        linked=linked_skeletons(project, bpf_paths),
        name_candidates=name_sources(project),
        opens=open_state(project.loader_scan.files) if project.loader_scan is not None else {},
    )
    linked = link_facts(linker, loaders)
    handlers = []
    for lf in loaders:
        mine = [f for f in lf.facts if f.kind == "prog-handler"]
        if mine:
            opened = {
                p for n in lf.skeletons for p in linker.sources(ObjectRef("skeleton", n), lf.path)
            }
            opened |= {
                p for n in lf.objects for p in linker.sources(ObjectRef("object", n), lf.path)
            }
            handlers.extend((f, frozenset(opened)) for f in mine)
    sources: dict[str, _BpfSource] = {}
    programs: list[Program] = []
    ambiguous: dict[int, list[LinkedFact]] = {}
    by_name: dict[int, frozenset[LoaderFact]] = {}  # facts linked by program name alone
    for site, section in family:
        all_facts = linked.get(site.key, [])
        facts = tuple(lf.fact for lf in all_facts if not lf.ambiguous)
        named = frozenset(lf.fact for lf in all_facts if lf.by_name and not lf.ambiguous)
        sleepable = any(f.kind == "sleepable" for f in facts)
        decision = upgrade_decision(section, sleepable=sleepable)
        group = _group(decision)
        if group is None:
            continue
        source = sources.get(site.path)
        if source is None:
            source = sources[site.path] = _BpfSource(project, site.path)
        # Non-upgraded programs' bodies matter too: they may share a prog array (K19).
        body = source.body_facts(site)
        programs.append(
            Program(
                site,
                section,
                decision,
                group,
                facts,
                body,
                _taken_over(site, section, facts, handlers),
            )
        )
        if named:
            by_name[len(programs) - 1] = named
        if any(lf.ambiguous for lf in all_facts):
            ambiguous[len(programs) - 1] = [lf for lf in all_facts if lf.ambiguous]
    for i, proof in _scenarios(programs).items():
        programs[i] = replace(programs[i], scenario=proof)
    for i, proof in _prog_arrays(project, sources, programs).items():
        programs[i] = replace(programs[i], prog_array=proof)
    by_macro: dict[tuple[str, str], list[str]] = {}
    for site in candidates:
        if site.pieces and site.pieces[0].kind == "macro":
            by_macro.setdefault((site.path, site.pieces[0].text), []).append(site.program or "?")
    findings: list[Finding] = []
    for index, p in enumerate(programs):
        hits = {code: hit for code, rule in RULES.items() if (hit := rule(p)) is not None}
        codes = tuple(c for c in hits if c.startswith("SECL2"))
        info[p.site.key] = UpgradeInfo(
            upgraded=p.decision.upgraded,
            reason_code=p.decision.reason_code,
            reason=p.decision.reason,
            needs_single=bool(codes),
            codes=codes,
            evidence=_evidence(p.facts, by_name.get(index, frozenset())),
        )
        if p.site.path not in project.reported:
            continue
        macros = {name: users for (path, name), users in by_macro.items() if path == p.site.path}
        fix = (
            single_fix(p, project, defines_by_path.get(p.site.path, {}), macros) if codes else None
        )
        for code, hit in hits.items():
            finding = _finding(p, code, hit, fix if code.startswith("SECL2") else None)
            if index in by_name and _uses(hit, by_name[index]):
                note = (
                    "the loader's object is not known: its evidence is tied to this program by "
                    f"the name `{p.name}`, which no other source it may load defines"
                )
                finding = replace(finding, notes=(*finding.notes, note))
            findings.append(finding)
        if index in ambiguous:
            note = _ambiguity_note(p, ambiguous[index], set(hits))
            if note is not None:
                findings.append(note)
    findings.sort(key=lambda f: f.sort_key)
    return UpgradeAnalysis(info, findings, programs)


def _uses(hit: Hit, facts: frozenset[LoaderFact]) -> bool:
    """Whether one of the lines a finding shows is one of `facts`."""
    shown = {(r.path, r.span) for r in hit.related}
    return any((f.path, f.span) in shown for f in facts)


def _evidence(
    facts: tuple[LoaderFact, ...], by_name: frozenset[LoaderFact] = frozenset()
) -> tuple[Evidence, ...]:
    out = []
    seen = set()
    # Certain facts first: the same fact found both ways is listed once, as certain.
    for f in sorted(facts, key=lambda f: (f.path, f.span.start_byte, f.kind, not f.certain)):
        key = (f.kind, f.path, f.span.start_byte, f.value)
        if key in seen:
            continue
        seen.add(key)
        out.append(Evidence(f.kind, f.path, f.span, f.value, f.certain, f in by_name))
        if f.kind == "attach":
            # The symbol an attach call names, for the runtime verifier to attach to.
            out.extend(
                Evidence("attach-target", f.path, f.span, t, True, f in by_name) for t in f.targets
            )
    return tuple(out)


def _finding(p: Program, code: str, hit: Hit, fix: Fix | None) -> Finding:
    meta = RULE_META[code]
    notes: tuple[str, ...] = ()
    if p.site.section is None:
        notes = (f"section read as `{p.section}` (macro pieces stand for a kernel symbol)",)
    if p.site.configuration:
        notes = (*notes, f"holds for the configuration `{p.site.configuration}`")
    return Finding(
        code=code,
        name=meta.name,
        severity=meta.severity,
        message=hit.message,
        path=p.site.path,
        span=p.site.span,
        program=p.site.program,
        section=p.site.section_text,
        related=hit.related,
        fix=fix,
        notes=notes,
    )


def _ambiguity_note(p: Program, facts: list[LinkedFact], already: set[str]) -> Finding | None:
    """SECL002 when loader evidence would break `p` but could just as well be about a
    program of the same name in another BPF source."""
    widened = replace(p, facts=p.facts + tuple(lf.fact for lf in facts))
    extra = sorted(
        code for code, rule in RULES.items() if code not in already and rule(widened) is not None
    )
    if not extra:
        return None
    sources = sorted({s for lf in facts for s in lf.ambiguous})
    first = facts[0].fact
    meta = RULE_META["SECL002"]
    return Finding(
        code="SECL002",
        name=meta.name,
        severity=meta.severity,
        message=(
            f"loader code at {_where(first)} touches a program `{p.name}` that could be in any of "
            f"{', '.join(sources)}; it would give {', '.join(extra)} here. Set `skeleton-map` to "
            "say which source the skeleton or object is built from"
        ),
        path=p.site.path,
        span=p.site.span,
        program=p.site.program,
        section=p.site.section_text,
        related=tuple(
            Related(lf.fact.path, lf.fact.span, f"{lf.fact.kind} evidence") for lf in facts[:5]
        ),
    )
