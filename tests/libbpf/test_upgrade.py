"""The auto-upgrade predicate: every row of the proposal's decision table, and more."""

from __future__ import annotations

import pytest

from secl.libbpf import load_table
from secl.libbpf.upgrade import (
    PROBE_FAMILY_BASES,
    is_probe_family,
    single_rewrite,
    upgrade_decision,
)

KPROBE_MULTI = "BPF_TRACE_KPROBE_MULTI"
UPROBE_MULTI = "BPF_TRACE_UPROBE_MULTI"


@pytest.mark.parametrize(
    ("section", "family", "attach_type"),
    [
        ("kprobe", "kprobe", KPROBE_MULTI),
        ("kretprobe", "kretprobe", KPROBE_MULTI),
        ("kprobe/do_unlinkat", "kprobe", KPROBE_MULTI),
        ("kretprobe/do_unlinkat", "kretprobe", KPROBE_MULTI),
        ("kprobe/mod:func", "kprobe", KPROBE_MULTI),  # upgraded by name; see the suffix check
        ("?kprobe", "kprobe", KPROBE_MULTI),
        ("?kprobe/func", "kprobe", KPROBE_MULTI),
        ("?kretprobe/func", "kretprobe", KPROBE_MULTI),
        ("kprobe/", "kprobe", KPROBE_MULTI),
        ("uprobe", "uprobe", UPROBE_MULTI),
        ("uretprobe", "uretprobe", UPROBE_MULTI),
        ("uprobe/libc.so.6:malloc", "uprobe", UPROBE_MULTI),
        ("uretprobe/libc.so.6:malloc", "uretprobe", UPROBE_MULTI),
        ("uprobe//proc/self/exe:func", "uprobe", UPROBE_MULTI),
        ("?uprobe//proc/self/exe:func", "uprobe", UPROBE_MULTI),
    ],
)
def test_upgraded(section: str, family: str, attach_type: str) -> None:
    decision = upgrade_decision(section)
    assert decision.upgraded is True
    assert decision.family == family
    assert decision.reason_code == "upgraded"
    assert decision.attach_type == attach_type
    assert attach_type in decision.reason


@pytest.mark.parametrize(
    ("section", "family", "reason_code"),
    [
        ("kprobe/func+0x10", "kprobe", "has-offset"),
        ("kprobe/func+0", "kprobe", "has-offset"),
        ("kretprobe/func+0", "kretprobe", "has-offset"),
        ("kprobe/func@ver", "kprobe", "versioned-symbol"),
        ("kprobe.single", "kprobe", "single-opt-out"),
        ("kprobe.single/func", "kprobe", "single-opt-out"),
        ("kretprobe.single/func", "kretprobe", "single-opt-out"),
        ("?kprobe.single/func", "kprobe", "single-opt-out"),
        ("kprobe.multi/func*", "kprobe", "already-multi"),
        ("kprobe.multi", "kprobe", "already-multi"),
        ("kretprobe.multi/func*", "kretprobe", "already-multi"),
        ("kprobe.session/func*", "kprobe", "already-multi"),
        ("ksyscall/openat", "kprobe", "ksyscall"),
        ("kretsyscall/openat", "kretprobe", "ksyscall"),
        ("ksyscall", "kprobe", "ksyscall"),
        ("uprobe//proc/self/exe:func+16", "uprobe", "has-offset"),
        ("uprobe/lib.so:sym@VER", "uprobe", "versioned-symbol"),
        ("uprobe/lib.so:sym@@VER", "uprobe", "versioned-symbol"),
        ("uprobe.s//bin/x:f", "uprobe", "sleepable-section"),
        ("uretprobe.s//bin/x:f", "uretprobe", "sleepable-section"),
        ("?uprobe.s", "uprobe", "sleepable-section"),
        ("uprobe.single//bin/x:f", "uprobe", "single-opt-out"),
        ("uretprobe.single", "uretprobe", "single-opt-out"),
        ("uprobe.multi//bin/x:f*", "uprobe", "already-multi"),
        ("uretprobe.multi//bin/x:f*", "uretprobe", "already-multi"),
        ("uprobe.session//bin/x:f", "uprobe", "already-multi"),
        ("uprobe.multi.s//bin/x:f", "uprobe", "already-multi"),
        ("uretprobe.multi.s//bin/x:f", "uretprobe", "already-multi"),
        ("uprobe.session.s//bin/x:f", "uprobe", "already-multi"),
        ("usdt//bin/x:p:n", None, "usdt"),
        ("usdt.s//bin/x:p:n", None, "usdt"),
        ("?usdt", None, "usdt"),
        ("xdp", None, "not-probe"),
        ("fentry/do_unlinkat", None, "not-probe"),
        ("tp/sched/sched_switch", None, "not-probe"),
        ("kprobes/foo", None, "not-probe"),
        ("kprobe_foo", None, "not-probe"),
        ("kprobe.s/foo", None, "not-probe"),
        ("??kprobe/foo", None, "not-probe"),
        ("", None, "not-probe"),
    ],
)
def test_not_upgraded(section: str, family: str | None, reason_code: str) -> None:
    decision = upgrade_decision(section)
    assert decision.upgraded is False
    assert decision.family == family
    assert decision.reason_code == reason_code
    assert decision.attach_type is None
    assert decision.reason


@pytest.mark.parametrize("section", ["kprobe/f", "kretprobe", "uprobe//bin/x:f", "?uretprobe"])
def test_sleepable_programs_are_not_upgraded(section: str) -> None:
    decision = upgrade_decision(section, sleepable=True)
    assert (decision.upgraded, decision.reason_code) == (False, "sleepable")
    assert decision.family is not None


def test_sleepable_flag_does_not_change_other_reasons() -> None:
    assert upgrade_decision("kprobe.multi/f", sleepable=True).reason_code == "already-multi"
    assert upgrade_decision("kprobe/f+4", sleepable=True).reason_code == "has-offset"


@pytest.mark.parametrize(
    ("piece", "rewritten"),
    [
        ("kprobe", "kprobe.single"),
        ("kprobe/", "kprobe.single/"),
        ("kprobe/do_unlinkat", "kprobe.single/do_unlinkat"),
        ("kretprobe/f", "kretprobe.single/f"),
        ("kretprobe", "kretprobe.single"),
        ("uprobe//bin/x:f", "uprobe.single//bin/x:f"),
        ("uretprobe/libc.so.6:malloc", "uretprobe.single/libc.so.6:malloc"),
        ("uretprobe", "uretprobe.single"),
        ("?kprobe/f", "?kprobe.single/f"),
        ("?uprobe", "?uprobe.single"),
    ],
)
def test_single_rewrite(piece: str, rewritten: str) -> None:
    assert single_rewrite(piece) == rewritten
    assert upgrade_decision(rewritten).reason_code == "single-opt-out"


@pytest.mark.parametrize(
    "piece",
    [
        "kprobe.single/f",
        "kprobe.multi/f",
        "uprobe.s//bin/x:f",
        "ksyscall/openat",
        "kprobes/f",
        "xdp",
        "usdt",
        "??kprobe",
        "",
    ],
)
def test_single_rewrite_refuses(piece: str) -> None:
    assert single_rewrite(piece) is None


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("kprobe", True),
        ("?kretprobe/f", True),
        ("uprobe.s//bin/x:f", True),
        ("uretprobe.s", True),
        ("kprobe.single/f", True),
        ("uretprobe.single", True),
        ("kprobe.multi/f*", True),
        ("kprobe.session", True),
        ("uprobe.multi.s//b:f", True),
        ("uprobe.session.s//b:f", True),
        ("ksyscall/openat", True),
        ("kretsyscall", True),
        ("usdt//b:p:n", False),
        ("usdt.s", False),
        ("xdp", False),
        ("fentry/f", False),
        ("kprobes/f", False),
        ("kprobe.s/f", False),
    ],
)
def test_is_probe_family(section: str, expected: bool) -> None:
    assert is_probe_family(section) is expected


def test_probe_family_is_the_kprobe_table_minus_usdt() -> None:
    """The family is every BPF_PROG_TYPE_KPROBE base of the table except USDT."""
    table = load_table()
    kprobe_bases = {
        definition.base
        for definition in table.definitions
        if definition.prog_type == "BPF_PROG_TYPE_KPROBE"
    }
    assert kprobe_bases - {"usdt", "usdt.s"} == PROBE_FAMILY_BASES
