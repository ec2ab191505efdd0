"""Attach cases for each kprobe/uprobe-family program, and what each should show.

Per program (only that program autoloaded in each load):

* **as written**: today's libbpf path — the section's own auto-attach when it names a
  target secl can reach, else the single-probe API on a target secl substitutes.
* **upgraded**: the proposal emulated — expected attach type BPF_TRACE_{K,U}PROBE_MULTI set
  before load (the proposal does it in libbpf.c: bpf_object_prepare_progs), then offset 0 and
  the default mode go through the multi API with the one symbol and the cookie.
* **replays** of the loader evidence of the static analysis on the upgraded program, each
  with a **control**: the same evidence on the program as written. Kprobes: a nonzero offset
  or any explicit mode falls through to the perf path (the proposal's routing in
  bpf_program__attach_kprobe_opts). Uprobes: the routing of explicit modes is not known
  (auto-upgrade notes, U2), so both routes run and are reported as information.

What a case should show is the prediction: the SECL2xx codes of the analysis say which
replays break, and kernel facts say how (kernel/bpf/syscall.c:
bpf_prog_attach_check_attach_type refuses a perf-event link for a *_MULTI program, EINVAL;
kernel/trace/bpf_trace.c: bpf_{k,u}probe_multi_link_fill_link_info report the multi link
types). One answer differs between kernel builds: a *_MULTI program attached through the perf
ioctl (PERF/LEGACY modes) attaches on some and gets EINVAL on others; such a case lists both
answers (Expect.or_else) and is reported as a kernel-dependent observation.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from secl.libbpf.upgrade import upgrade_decision
from secl.verify.objects import ObjectProgram

Group = Literal["kprobe", "uprobe"]
Where = Literal["host", "guest"]
Verdict = Literal["agrees", "contradicts", "inconclusive", "informational"]

# include/uapi/linux/bpf.h: enum bpf_link_type
LINK_TYPES = {
    1: "RAW_TRACEPOINT", 2: "TRACING", 3: "CGROUP", 4: "ITER", 5: "NETNS", 6: "XDP",
    7: "PERF_EVENT", 8: "KPROBE_MULTI", 9: "STRUCT_OPS", 10: "NETFILTER", 11: "TCX",
    12: "UPROBE_MULTI", 13: "NETKIT", 14: "SOCKMAP",
}  # fmt: skip
# libbpf.h: enum probe_attach_mode
ATTACH_MODES = {
    "PROBE_ATTACH_MODE_DEFAULT": 0,
    "PROBE_ATTACH_MODE_LEGACY": 1,
    "PROBE_ATTACH_MODE_PERF": 2,
    "PROBE_ATTACH_MODE_LINK": 3,
}
# The kernel functions secl can make run, and how (the loader's triggers).
# Both sleeping syscalls reach do_nanosleep (kernel/time/hrtimer.c: hrtimer_nanosleep).
KERNEL_TRIGGERS = {
    "do_nanosleep": "nanosleep",
    "hrtimer_nanosleep": "nanosleep",
    "__x64_sys_nanosleep": "nanosleep",
    "__x64_sys_clock_nanosleep": "clock_nanosleep",
    "common_nsleep": "clock_nanosleep",
    "__x64_sys_getpid": "getpid",
}
SYSCALL_TRIGGERS = {
    "nanosleep": "nanosleep",
    "clock_nanosleep": "clock_nanosleep",
    "getpid": "getpid",
}
DEFAULT_KERNEL_TARGET = "do_nanosleep"
SELF_TARGET = "secl_verify_target"  # the loader's own function (loader.c)
TRIGGER_COUNT = 5
COOKIE = 0x5EC1
NOT_REPLAYED = {
    "attach": "the attach call itself",
    "attach-target": "the function an attach call names (used as the target of bare sections)",
    "auto-attach": "the skeleton attach call itself",
    "link-info-multi": "the loader also handles the multi link type",
    "expected-attach-type": "the upgrade overwrites a hand-set attach type by construction",
    "set-type": "the program type is changed by the loader",
    "sleepable": "sleepable programs are not upgraded",
    "autoload": "autoload only chooses which programs load",
    "autoattach": "autoattach only chooses which programs the skeleton attaches",
    "prog-handler": "a custom section handler takes the program over",
}


@dataclass(frozen=True, slots=True)
class Evidence:
    """A loader fact of the prediction, as the verifier replays it."""

    kind: str
    filename: str
    row: int
    column: int
    value: str | int | None

    @property
    def where(self) -> str:
        return f"{self.filename}:{self.row}"


@dataclass(frozen=True, slots=True)
class Prediction:
    """What secl predicts for one program."""

    upgraded: bool
    reason_code: str
    needs_single: bool | None  # None: no --sources, the loader code is not known
    codes: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    source: str | None = None  # the SEC site, "file:row"


@dataclass(frozen=True, slots=True)
class Expect:
    """What a case should observe on the kernel. A kernel-dependent case lists, in `or_else`,
    the other answers kernel builds are known to give; `meaning` says what an answer tells
    about the kernel that gave it."""

    attach: str  # "ok" or an errno name
    link_type: str | None = None  # a LINK_TYPES name, "none" (no BPF link), None: not checked
    hits: bool = False  # the program runs once per trigger
    meaning: str = ""
    or_else: tuple[Expect, ...] = ()

    @property
    def text(self) -> str:
        return self.attach if self.attach != "ok" else f"ok {self.link_type or ''}".strip()

    def answers(self) -> tuple[Expect, ...]:
        """Every answer this case accepts: the expectation first, then the other builds'."""
        return (self, *self.or_else)


@dataclass(frozen=True, slots=True)
class Case:
    """One load-and-attach the verifier runs."""

    id: int
    program: ObjectProgram
    group: Group
    label: str
    fields: dict[str, str | int]
    expect: Expect
    informational: bool = False
    control: int | None = None  # the case that must work for this one to say anything
    code: str | None = None  # the rule this case puts to the test
    why: str = ""  # the expectation in words
    baseline: bool = False  # as written: a failure says the target or kernel cannot do it

    def loader_line(self, obj: str) -> str:
        """One line of the loader's case file (loader.c: parse_case)."""
        items = {"id": self.id, "obj": obj, "prog": self.program.name, **self.fields}
        for key, value in items.items():
            if "\t" in str(value) or "\n" in str(value):
                raise ValueError(f"{key}={value!r}: tabs and newlines cannot be passed")
        return "\t".join(f"{k}={v}" for k, v in items.items())


@dataclass(slots=True)
class ProgramPlan:
    """The cases of one program."""

    program: ObjectProgram
    group: Group
    prediction: Prediction
    where: Where
    cases: list[Case] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Observation:
    """One JSON line of the loader (loader.c: print_outcome); errno values are negative."""

    open: int
    load: int
    attach: int
    link_info: int
    link_type: int | None
    hits: int | None
    log: tuple[str, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Observation:
        return cls(
            open=int(data.get("open", 0)),
            load=int(data.get("load", 0)),
            attach=int(data.get("attach", 0)),
            link_info=int(data.get("link_info", 0)),
            link_type=data.get("link_type"),
            hits=data.get("hits"),
            log=tuple(str(x) for x in data.get("log", ())),
        )

    @property
    def attach_text(self) -> str:
        return "ok" if self.attach == 0 else errno_name(self.attach)

    @property
    def link_text(self) -> str:
        if self.link_type is not None:
            return LINK_TYPES.get(self.link_type, str(self.link_type))
        if self.attach == 0 and self.link_info:
            return "none"  # attached, but the fd is not a BPF link (perf ioctl path)
        return "-"


@dataclass(frozen=True, slots=True)
class Result:
    """What one case observed. `kernel_dependent`: the case's answer differs between kernel
    builds, and this kernel gave one of the known answers (explained, never a contradiction)."""

    case: Case
    observation: Observation | None
    verdict: Verdict
    explanation: str
    kernel_dependent: bool = False


def errno_name(value: int) -> str:
    return errno.errorcode.get(abs(value), f"errno {abs(value)}")


# -- targets ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """What a program attaches to on the test kernel."""

    api: str  # how the as-written case attaches: auto, single or multi
    func: str
    binary: str  # "" for kprobes; "self" is the loader
    offset: int
    trigger: str
    note: str | None = None


_FUNC_OFFSET = re.compile(r"^(?P<func>[^+]*)(?:\+(?P<off>(?:0x)?[0-9a-fA-F]+))?$")


def _split_offset(text: str) -> tuple[str, int]:
    m = _FUNC_OFFSET.match(text)
    if m is None:
        return text, 0
    off = m.group("off")
    return m.group("func"), int(off, 0) if off else 0


def target_of(section: str, group: Group, attach_target: str | None = None) -> Target:
    """Where the program is attached and how it is made to run. kprobes go to the kernel
    function the section names (secl triggers the few it knows); uprobes always go to the
    loader's own function, whose behaviour under the upgrade is the same as any other's.
    A bare kprobe section goes to the function its loader attaches it to (`attach_target`,
    from the evidence), else to one secl can trigger."""
    name = section[1:] if section.startswith("?") else section
    base, _, rest = name.partition("/")
    if group == "kprobe":
        if base in ("ksyscall", "kretsyscall"):
            if not rest:
                return Target("single", "__x64_sys_getpid", "", 0, "getpid",
                              "bare ksyscall section: attached to __x64_sys_getpid")  # fmt: skip
            return Target("auto", rest, "", 0, SYSCALL_TRIGGERS.get(rest, "none"))
        multi = base.split(".")[-1] in ("multi", "session")
        if not rest:
            func = attach_target or DEFAULT_KERNEL_TARGET
            note = f"bare section: attached to {func}" + (
                " (as its loader does)" if attach_target else ""
            )
            return Target("multi" if multi else "single", func, "", 0,
                          KERNEL_TRIGGERS.get(func, "none"), note)  # fmt: skip
        func, offset = (rest, 0) if multi else _split_offset(rest)
        api = "single" if base.endswith(".single") else "auto"
        return Target(api, func, "", offset, KERNEL_TRIGGERS.get(func, "none"))
    multi = ".multi" in base or ".session" in base
    path, _, func_part = rest.rpartition(":") if rest else ("", "", "")
    func, offset = _split_offset(func_part) if func_part else ("", 0)
    if path == "/proc/self/exe" and func == SELF_TARGET and not base.endswith(".single"):
        return Target("auto", SELF_TARGET, "self", offset, "self")
    note = None
    if rest:
        note = f"target {rest} replaced by the loader's own {SELF_TARGET}"
    elif not multi:
        note = f"bare section: attached to the loader's own {SELF_TARGET}"
    return Target("multi" if multi else "single", SELF_TARGET, "self", offset, "self", note)


# -- planning --------------------------------------------------------------------------------


def probe_group(section: str) -> Group | None:
    """kprobe or uprobe for the kprobe/uprobe-family sections, None for the others."""
    family = upgrade_decision(section).family
    if family is None:
        return None
    return "kprobe" if family in ("kprobe", "kretprobe") else "uprobe"


class _Ids:
    def __init__(self, start: int) -> None:
        self.next = start

    def take(self) -> int:
        self.next += 1
        return self.next - 1


def plan_program(
    program: ObjectProgram, prediction: Prediction, where: Where, first_id: int
) -> ProgramPlan | None:
    """The cases of one program, or None when it is not a kprobe/uprobe-family program."""
    group = probe_group(program.section)
    if group is None:
        return None
    retprobe = upgrade_decision(program.section).family in ("kretprobe", "uretprobe")
    plan = ProgramPlan(program, group, prediction, where)
    ids = _Ids(first_id)
    named = [str(e.value) for e in prediction.evidence if e.kind == "attach-target" and e.value]
    target = target_of(program.section, group, named[0] if named else None)
    if target.note:
        plan.notes.append(target.note)
    multi_link = "KPROBE_MULTI" if group == "kprobe" else "UPROBE_MULTI"
    name = program.section.lstrip("?").split("/", 1)[0]
    single = name.endswith(".single")
    native_multi = name.split(".")[-1] in ("multi", "session") or ".multi." in name
    if single:
        plan.notes.append("libbpf 1.4 has no .single sections: loaded as a classic probe")
    common: dict[str, str | int] = {
        "kind": group,
        "retprobe": int(retprobe),
        "func": target.func,
        "binary": target.binary,
        "trigger": target.trigger,
        "count": TRIGGER_COUNT if target.trigger != "none" else 0,
    }
    hits = target.trigger != "none"
    written = Case(
        ids.take(), program, group, "as written",
        {**common, "api": target.api, "single": int(single), "offset": target.offset},
        Expect("ok", multi_link if native_multi else "PERF_EVENT", hits),
        why="attaches today" + (" with a multi link" if native_multi else " with a perf link"),
        baseline=True,
    )  # fmt: skip
    plan.cases.append(written)
    if not prediction.upgraded:
        return plan
    upgraded = Case(
        ids.take(), program, group, "upgraded",
        {**common, "upgrade": 1, "api": "multi", "cookie": COOKIE},
        Expect("ok", multi_link, hits), control=written.id,
        why=f"the upgrade gives a {multi_link} link",
    )  # fmt: skip
    plan.cases.append(upgraded)
    seen: set[tuple[str, str | int | None]] = set()
    for ev in prediction.evidence:
        if (ev.kind, ev.value) in seen:
            continue
        seen.add((ev.kind, ev.value))
        if ev.kind in NOT_REPLAYED:
            continue
        made = _replay(ev, plan, common, written, ids, multi_link, hits)
        if made is None:
            plan.notes.append(f"{ev.kind} at {ev.where} not replayed")
    return plan


def _replay(
    ev: Evidence,
    plan: ProgramPlan,
    common: dict[str, str | int],
    written: Case,
    ids: _Ids,
    multi_link: str,
    hits: bool,
) -> bool | None:
    group, codes, program = plan.group, plan.prediction.codes, plan.program
    where = f" ({ev.where})"

    def add(label: str, fields: dict[str, str | int], expect: Expect, **kw: Any) -> Case:
        case = Case(ids.take(), program, group, label, {**common, **fields}, expect, **kw)
        plan.cases.append(case)
        return case

    def baseline_case(label: str, fields: dict[str, str | int], expect: Expect) -> Case:
        return add(label, fields, expect, baseline=True, why="the evidence works today")

    if ev.kind in ("attach-offset", "attach-address"):
        if not isinstance(ev.value, int) and ev.kind == "attach-offset":
            same_place = any(e.kind == "attach-address" and e.where == ev.where
                             for e in plan.prediction.evidence)  # fmt: skip
            if not same_place:  # an address is replayed as one, from /proc/kallsyms
                plan.notes.append(f"offset at {ev.where} is computed at run time: not replayed")
            return True
        by_address = int(ev.kind == "attach-address")
        offset = 0 if by_address else int(ev.value or 0)
        shown = "by address" if by_address else f"offset {offset:#x}"
        fields: dict[str, str | int] = {"api": "single", "offset": offset}
        fields["by_address"] = by_address
        if group == "uprobe":
            control = baseline_case(
                f"{shown}, as written", fields, Expect("ok", "PERF_EVENT", hits)
            )
            add(f"{shown}, upgraded, multi route", {**fields, "api": "multi", "upgrade": 1},
                Expect("ok", multi_link, hits), informational=True, control=control.id,
                why="uprobe_multi takes file offsets")  # fmt: skip
            add(f"{shown}, upgraded, perf route", {**fields, "upgrade": 1},
                Expect("EINVAL"), informational=True, control=control.id,
                why="a perf link for a UPROBE_MULTI program is refused")  # fmt: skip
            return True
        control = baseline_case(f"{shown}, as written", fields, Expect("ok", "PERF_EVENT", hits))
        breaks = "SECL201" in codes
        add(f"{shown}, upgraded" + where, {**fields, "upgrade": 1},
            Expect("EINVAL") if breaks else Expect("ok", "PERF_EVENT", hits),
            control=control.id, code="SECL201",
            why="falls through to the perf path; a perf link for a KPROBE_MULTI program is "
            "refused" if breaks else "no SECL201 predicted")  # fmt: skip
        return True
    if ev.kind == "attach-mode":
        mode = ATTACH_MODES.get(str(ev.value))
        if mode is None or mode == 0:
            return None
        short = str(ev.value).removeprefix("PROBE_ATTACH_MODE_")
        fields = {"api": "single", "mode": mode, "offset": 0}
        perf_like = mode in (1, 2)  # LEGACY, PERF: attached with the perf ioctl, no BPF link
        today = Expect("ok", "none" if perf_like else "PERF_EVENT", hits)
        control = baseline_case(f"mode {short}, as written", fields, today)
        if perf_like:
            after = perf_ioctl_expect(hits)
            why = "attached through the perf ioctl"
        else:
            after = Expect("EINVAL")
            why = "a perf link for a *_MULTI program is refused"
        if group == "uprobe":
            add(f"mode {short}, upgraded, multi route", {**fields, "api": "multi", "upgrade": 1,
                "mode": 0}, Expect("ok", multi_link, hits), informational=True,
                control=control.id, code="SECL301",
                why="if the upgrade sends every uprobe attach to uprobe_multi")  # fmt: skip
            add(f"mode {short}, upgraded, perf route", {**fields, "upgrade": 1}, after,
                informational=True, control=control.id, code="SECL301",
                why="if the upgrade honours the mode: " + why)  # fmt: skip
            return True
        code = "SECL202" if mode == 3 else "SECL203"
        if mode == 3 and code not in codes:
            after, why = Expect("ok", "PERF_EVENT", hits), "no SECL202 predicted"
        add(f"mode {short}, upgraded" + where, {**fields, "upgrade": 1}, after,
            control=control.id, code=code, why=why)  # fmt: skip
        return True
    if ev.kind in ("link-info", "missed-count"):
        code = "SECL205" if ev.kind == "missed-count" else "SECL204"
        control = baseline_case(
            f"link info, as written ({ev.value})",
            {"api": "single", "offset": 0},
            Expect("ok", "PERF_EVENT", hits),
        )
        predicted = code in codes or (code == "SECL205" and "SECL204" in codes)
        if predicted:
            why = f"the loader expects {ev.value}, the kernel says {multi_link}: breaks"
        else:
            why = f"{multi_link}; the loader handles it (no finding)"
        add(
            "link info, upgraded" + where,
            {"api": "multi", "upgrade": 1, "cookie": COOKIE},
            Expect("ok", multi_link, hits),
            control=control.id,
            code=code,
            why=why,
        )
        return True
    if ev.kind == "perf-event":
        fields = {"api": "perf_event", "offset": 0}
        control = baseline_case(
            "perf event fd, as written", fields, Expect("ok", "PERF_EVENT", hits)
        )
        breaks = "SECL206" in codes
        add("perf event fd, upgraded" + where, {**fields, "upgrade": 1},
            Expect("EINVAL") if breaks else Expect("ok", "PERF_EVENT", hits),
            control=control.id, code="SECL206",
            why="a perf link for a *_MULTI program is refused" if breaks
            else "no SECL206 predicted")  # fmt: skip
        return True
    return None


def perf_ioctl_expect(hits: bool) -> Expect:
    """An upgraded (*_MULTI) program attached through the perf ioctl (PERF/LEGACY modes).
    Kernel builds differ: Debian's 6.12.95, 6.18.15 and 7.3.4 attach it
    (kernel/events/core.c: __perf_event_set_bpf_prog checks the program type, not the expected
    attach type), a 6.18.44-fc build refuses the uprobe case with EINVAL from
    PERF_EVENT_IOC_SET_BPF. Either is an observation of that kernel, not of the prediction."""
    refused = Expect("EINVAL", meaning="it refuses a *_MULTI program on the perf ioctl")
    return Expect(
        "ok", "none", hits,
        meaning="it attaches without a BPF link (the ioctl does not check the attach type)",
        or_else=(refused,),
    )  # fmt: skip


# -- judging ---------------------------------------------------------------------------------


def judge(case: Case, seen: Observation | None, control: Result | None) -> Result:
    """Compare one observation with its expectation."""
    if seen is None:
        return Result(case, None, "inconclusive", "no result (the loader or the guest stopped)")
    if seen.open:
        return Result(case, seen, "inconclusive", f"object did not open: {errno_name(seen.open)}")
    if seen.load:
        log = f" ({seen.log[-1]})" if seen.log else ""
        return Result(
            case, seen, "inconclusive",
            f"program did not load, for reasons of its own: {errno_name(seen.load)}{log}",
        )  # fmt: skip
    if control is not None and control.verdict == "inconclusive":
        return Result(
            case, seen, "inconclusive", f"its control is inconclusive: {control.explanation}"
        )
    if control is not None and control.observation is not None and control.observation.attach:
        return Result(
            case, seen, "inconclusive",
            f"cannot be replayed here: as written it fails too "
            f"({control.observation.attach_text})",
        )  # fmt: skip
    expect = case.expect
    if seen.attach == -errno.EOPNOTSUPP and case.fields.get("api") == "multi":
        return Result(case, seen, "inconclusive", "this kernel has no multi link (EOPNOTSUPP)")
    if expect.attach == "ok" and seen.attach and case.baseline:
        log = f" ({seen.log[-1]})" if seen.log else ""
        return Result(
            case, seen, "inconclusive",
            f"cannot be attached here as written either: {seen.attach_text}{log}",
        )  # fmt: skip
    count = int(case.fields.get("count", 0))
    problems = mismatches(expect, seen, count)
    if expect.or_else:
        return _judge_kernel_dependent(case, seen, problems, count)
    verdict: Verdict
    if case.informational:
        verdict = "informational"
        text = "as expected" if not problems else "; ".join(problems)
        return Result(case, seen, verdict, f"{text}: {case.why}" if case.why else text)
    if problems:
        why = f" (predicted: {case.why})" if case.why else ""
        code = f"{case.code}: " if case.code else ""
        return Result(case, seen, "contradicts", code + "; ".join(problems) + why)
    return Result(case, seen, "agrees", case.why)


def mismatches(expect: Expect, seen: Observation, count: int) -> list[str]:
    """How an observation differs from one expected answer (empty: it matches)."""
    problems = []
    if expect.attach == "ok" and seen.attach:
        problems.append(f"expected the attach to succeed, it failed with {seen.attach_text}")
    elif expect.attach != "ok" and not seen.attach:
        problems.append(f"expected {expect.attach}, the attach succeeded ({seen.link_text} link)")
    elif expect.attach != "ok" and seen.attach_text != expect.attach:
        problems.append(f"expected {expect.attach}, the attach failed with {seen.attach_text}")
    if not seen.attach and expect.link_type is not None and seen.link_text != expect.link_type:
        problems.append(f"expected link type {expect.link_type}, got {seen.link_text}")
    if not seen.attach and expect.hits and seen.hits is not None and seen.hits < count:
        problems.append(f"expected {count} hits, counted {seen.hits}")
    return problems


def _judge_kernel_dependent(
    case: Case, seen: Observation, problems: list[str], count: int
) -> Result:
    """A case whose answer differs between kernel builds: any known answer is this kernel's
    observation, explained with what it means and what other builds answer."""
    answers = case.expect.answers()
    matched = next((a for a in answers if not mismatches(a, seen, count)), None)
    context = f" ({case.why})" if case.why else ""
    if matched is not None:
        others = "; ".join(f"{a.text}: {a.meaning}" for a in answers if a is not matched)
        verdict: Verdict = "informational" if case.informational else "agrees"
        text = (
            f"kernel-dependent: this kernel answers {matched.text}: {matched.meaning}; "
            f"other kernel builds answer {others}{context}"
        )
        return Result(case, seen, verdict, text, kernel_dependent=True)
    known = " or ".join(a.text for a in answers)
    text = f"{'; '.join(problems)} (kernel-dependent, known answers: {known}){context}"
    if case.informational:
        return Result(case, seen, "informational", text)
    code = f"{case.code}: " if case.code else ""
    return Result(case, seen, "contradicts", code + text)


def judge_all(plan: ProgramPlan, observations: dict[int, Observation]) -> list[Result]:
    results: dict[int, Result] = {}
    for case in plan.cases:
        control = results.get(case.control) if case.control is not None else None
        results[case.id] = judge(case, observations.get(case.id), control)
    return [results[c.id] for c in plan.cases]
