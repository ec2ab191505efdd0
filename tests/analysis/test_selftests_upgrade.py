"""The upgrade analysis against the Linux BPF selftests (progs/ and prog_tests/ together).

The RFC series converted exactly these programs to `.single` because the upgrade broke them;
secl must find them from libbpf's semantics alone, and nothing else. Needs the selftests tree:
SECL_LINUX_SELFTESTS=<...>/tools/testing/selftests/bpf (scripts/test exports it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from secl.analysis.run import run_rules
from secl.analysis.upgrade import analyse_upgrades
from secl.api import load
from secl.config import Config

pytestmark = pytest.mark.selftests

BROKEN_BY_THE_UPGRADE = {
    ("get_func_ip_test.c", "test6"),
    ("missed_kprobe.c", "test1"),
    ("missed_kprobe.c", "test2"),
    ("test_attach_probe_manual.c", "handle_kprobe"),
    ("test_attach_probe_manual.c", "handle_kretprobe"),
    ("test_fill_link_info.c", "kprobe_run"),
    ("test_fill_link_info.c", "uprobe_run"),
}


@pytest.fixture(scope="module")
def analysed(selftests: Path):
    # Only the upgrade families: the other rules have their own selftests checks.
    config = Config(select=("SECL002", "SECL2", "SECL3"))
    run = load([str(selftests / "progs"), str(selftests / "prog_tests")], config)
    start = time.perf_counter()
    analysis = analyse_upgrades(run.project)
    elapsed = time.perf_counter() - start
    return run, analysis, elapsed


def test_exactly_the_programs_the_rfc_converted(analysed) -> None:
    _, analysis, _ = analysed
    flagged = {
        (os.path.basename(f.path), f.program)
        for f in analysis.findings
        if f.code.startswith("SECL2")
    }
    assert flagged == BROKEN_BY_THE_UPGRADE


def test_inventory_totals(analysed) -> None:
    _, analysis, elapsed = analysed
    totals = analysis.inventory_totals()
    print(f"\nupgrade inventory of the selftests: {totals} ({elapsed:.2f} s)")
    # The auto-upgrade notes count 91 upgraded of 104 classic kprobe/uprobe programs with a
    # plain literal section; programs secl finds through macros (wrapper macros that expand to
    # `SEC("?kprobe") int name(...)`, SYS_PREFIX sections) come on top of those.
    assert totals["upgraded"] >= 91
    assert totals["needs_single"] == len(BROKEN_BY_THE_UPGRADE)
    assert totals["not_upgraded"]["has-offset"] >= 1
    assert totals["not_upgraded"]["versioned-symbol"] >= 1
    assert totals["not_upgraded"]["sleepable"] >= 1  # bpf_program__set_flags(BPF_F_SLEEPABLE)


def test_findings_survive_the_rule_runner(analysed) -> None:
    run, _, _ = analysed
    findings = run_rules(run.project)
    flagged = {
        (os.path.basename(f.path), f.program) for f in findings if f.code.startswith("SECL2")
    }
    assert flagged == BROKEN_BY_THE_UPGRADE
    for f in findings:
        if f.code.startswith("SECL2"):
            assert f.related, f"{f.code} on {f.program} names no proving line"
            assert f.fix is not None and f.fix.applicability == "safe"
