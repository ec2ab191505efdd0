"""The proposed libbpf auto-upgrade of kprobes and uprobes to multi-probes.

The RFC series (not merged in any libbpf release) makes libbpf load a program as
BPF_TRACE_KPROBE_MULTI / BPF_TRACE_UPROBE_MULTI when the kernel supports the multi link and
the program's section name, after libbpf removed one leading `?`, is exactly `kprobe`,
`kretprobe`, `uprobe` or `uretprobe`, or one of them followed by `/`, contains no `@` and no
`+`, and the program was not made sleepable. New `kprobe.single`, `kretprobe.single`,
`uprobe.single` and `uretprobe.single` sections opt out.

These are pure functions of the section string; whether the kernel has the multi link is
the caller's concern.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Literal

    Family = Literal["kprobe", "kretprobe", "uprobe", "uretprobe"]

# Names the predicate looks at, and the multi attach type each upgraded family gets.
_UPGRADABLE: dict[str, tuple[Family, str]] = {
    "kprobe": ("kprobe", "BPF_TRACE_KPROBE_MULTI"),
    "kretprobe": ("kretprobe", "BPF_TRACE_KPROBE_MULTI"),
    "uprobe": ("uprobe", "BPF_TRACE_UPROBE_MULTI"),
    "uretprobe": ("uretprobe", "BPF_TRACE_UPROBE_MULTI"),
}

# Every other kprobe/uprobe-family base of libbpf's table (and the proposal), with the
# family it belongs to and why the predicate leaves it alone.
_NOT_UPGRADED: dict[str, tuple[Family, str]] = {
    "kprobe.single": ("kprobe", "single-opt-out"),
    "kretprobe.single": ("kretprobe", "single-opt-out"),
    "uprobe.single": ("uprobe", "single-opt-out"),
    "uretprobe.single": ("uretprobe", "single-opt-out"),
    "kprobe.multi": ("kprobe", "already-multi"),
    "kretprobe.multi": ("kretprobe", "already-multi"),
    "kprobe.session": ("kprobe", "already-multi"),
    "uprobe.multi": ("uprobe", "already-multi"),
    "uretprobe.multi": ("uretprobe", "already-multi"),
    "uprobe.session": ("uprobe", "already-multi"),
    "uprobe.multi.s": ("uprobe", "already-multi"),
    "uretprobe.multi.s": ("uretprobe", "already-multi"),
    "uprobe.session.s": ("uprobe", "already-multi"),
    "uprobe.s": ("uprobe", "sleepable-section"),
    "uretprobe.s": ("uretprobe", "sleepable-section"),
    "ksyscall": ("kprobe", "ksyscall"),
    "kretsyscall": ("kretprobe", "ksyscall"),
}

# The bases whose programs get an `upgrade` object in the inventory.
PROBE_FAMILY_BASES: frozenset[str] = frozenset(_UPGRADABLE) | frozenset(_NOT_UPGRADED)

_USDT_BASES = ("usdt", "usdt.s")

_REASONS: dict[str, str] = {
    "upgraded": "loaded as a multi-probe ({attach_type}) when the kernel supports it",
    "has-offset": "the name contains '+' (an offset), which the multi link cannot take",
    "versioned-symbol": "the name contains '@' (a versioned symbol), which the predicate skips",
    "sleepable": "the program is made sleepable, which the predicate skips",
    "single-opt-out": "a .single section keeps the classic perf-event attachment",
    "already-multi": "the section is already a multi or session probe",
    "ksyscall": "ksyscall/kretsyscall programs are not upgraded",
    "sleepable-section": "sleepable uprobe.s/uretprobe.s sections are not upgraded",
    "usdt": "USDT programs pick the uprobe-multi link on their own",
    "not-probe": "not a kprobe or uprobe section",
}


@dataclass(frozen=True, slots=True)
class UpgradeDecision:
    """The proposal's verdict on one section name."""

    family: Family | None
    upgraded: bool
    reason_code: str  # stable slug, one of the keys of the reason table above
    reason: str  # the same in words
    attach_type: str | None  # BPF_TRACE_KPROBE_MULTI / BPF_TRACE_UPROBE_MULTI when upgraded


def _strip_question_mark(section: str) -> str:
    # libbpf.c: bpf_object__init_prog() drops one leading "?" before anything looks at the name.
    return section[1:] if section.startswith("?") else section


def _base_of(name: str, bases: Collection[str]) -> str | None:
    """The base `name` uses in libbpf's "X+" sense: `X` itself or `X/...`."""
    head = name.split("/", 1)[0]
    return head if head in bases else None


def _decision(family: Family | None, code: str, attach_type: str | None = None) -> UpgradeDecision:
    reason = _REASONS[code].format(attach_type=attach_type)
    return UpgradeDecision(family, code == "upgraded", code, reason, attach_type)


def upgrade_decision(section: str, sleepable: bool = False) -> UpgradeDecision:
    """What the auto-upgrade does with a program in `section` (as libbpf sees the name).

    `sleepable` is True when the loader makes the program sleepable by hand
    (bpf_program__set_flags with BPF_F_SLEEPABLE), which the section does not show.
    """
    name = _strip_question_mark(section)
    base = _base_of(name, _UPGRADABLE)
    if base is not None:
        family, attach_type = _UPGRADABLE[base]
        if "+" in name:
            return _decision(family, "has-offset")
        if "@" in name:
            return _decision(family, "versioned-symbol")
        if sleepable:
            return _decision(family, "sleepable")
        return _decision(family, "upgraded", attach_type)
    other = _base_of(name, _NOT_UPGRADED)
    if other is not None:
        family, code = _NOT_UPGRADED[other]
        return _decision(family, code)
    if _base_of(name, _USDT_BASES) is not None:
        return _decision(None, "usdt")
    return _decision(None, "not-probe")


def is_probe_family(section: str) -> bool:
    """True for the kprobe/uprobe-family programs the inventory gives an `upgrade` object:
    base (after one `?`, before the first `/`) kprobe, kretprobe, uprobe, uretprobe,
    uprobe.s, uretprobe.s, their .single/.multi/.session forms (and .multi.s, .session.s),
    ksyscall or kretsyscall. USDT programs are not included."""
    return _base_of(_strip_question_mark(section), PROBE_FAMILY_BASES) is not None


def single_rewrite(section_text_piece: str) -> str | None:
    """The `.single` spelling of a section string (or its first literal piece).

    kprobe -> kprobe.single, kprobe/f -> kprobe.single/f, and the same for kretprobe, uprobe
    and uretprobe; a leading "?" is kept. None when the piece does not start with one of the
    four classic names followed by the end or "/".
    """
    marker = "?" if section_text_piece.startswith("?") else ""
    name = section_text_piece[len(marker) :]
    base = _base_of(name, _UPGRADABLE)
    if base is None:
        return None
    return f"{marker}{base}.single{name[len(base) :]}"
