"""Macro-built sections of the Linux BPF selftests (progs/ and prog_tests/), without a compile
database: `SEC("kprobe/" SYS_PREFIX "sys_nanosleep")` and the wrapper macros.

Needs SECL_LINUX_SELFTESTS=<...>/tools/testing/selftests/bpf (scripts/test exports it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from secl.analysis.run import run_rules
from secl.api import load
from secl.config import Config
from secl.facts import SectionSite

pytestmark = pytest.mark.selftests

SYS_PREFIXES = {"x86_64": "__x64_", "arm64": "__arm64_", "s390x": "__s390x_", "riscv64": "__riscv_"}


@pytest.fixture(scope="module")
def runs(selftests: Path):
    paths = [str(selftests / "progs"), str(selftests / "prog_tests")]
    out = {}
    for arch in (None, "x86_64"):
        start = time.perf_counter()
        run = load(paths, Config(select=("ALL",), target_arch=arch))
        out[arch] = (run, time.perf_counter() - start)
    return out


def program_sites(run) -> list[SectionSite]:
    return [s for s in run.project.sites if s.kind == "program" and not s.template]


def uses_sys_prefix(site: SectionSite) -> bool:
    return any(p.kind == "macro" and p.text == "SYS_PREFIX" for p in site.pieces)


def expected(site: SectionSite, prefix: str) -> str:
    return "".join(prefix if p.kind == "macro" else p.value or "" for p in site.pieces)


def test_sys_prefix_sites_resolve_to_the_x86_64_names(runs):
    run, _ = runs["x86_64"]
    sites = [s for s in program_sites(run) if uses_sys_prefix(s)]
    assert len(sites) >= 100  # 109 in Linux 7.2
    assert [s for s in sites if s.section != expected(s, "__x64_")] == []
    sleepable = next(
        s for s in sites if os.path.basename(s.path) == "test_attach_kprobe_sleepable.c"
    )
    assert sleepable.section == "kprobe/__x64_sys_nanosleep"
    assert sleepable.configuration == "defined(__TARGET_ARCH_x86)"
    prefix = sleepable.spellings[1]
    assert (os.path.basename(prefix.path), prefix.macro, prefix.piece.value) == (
        "bpf_misc.h", "SYS_PREFIX", "__x64_",
    )  # fmt: skip
    assert prefix.shared  # bpf_misc.h's literal serves every other SYS_PREFIX program too


def test_without_an_arch_they_stay_notes_naming_the_macro(runs):
    run, _ = runs[None]
    sites = [s for s in program_sites(run) if uses_sys_prefix(s)]
    assert sites and all(s.section is None for s in sites)
    assert {s.unresolved_macro for s in sites} == {"SYS_PREFIX"}
    assert all("__TARGET_ARCH_x86" in (s.unresolved_reason or "") for s in sites)
    notes = [f for f in run_rules(run.project) if f.code == "SECL001"]
    assert len(notes) == len(sites)
    assert all("`SYS_PREFIX`" in f.message for f in notes)


def test_share_of_program_sites_with_a_resolved_section(runs):
    plain = [s for s in program_sites(runs[None][0]) if s.pieces]
    before = sum(all(p.kind == "literal" for p in s.pieces) for s in plain) / len(plain)
    run, elapsed = runs["x86_64"]
    programs = program_sites(run)
    after = sum(s.section is not None for s in programs) / len(programs)
    print(
        f"\nresolved program sites: tree-sitter alone {before:.2%} of {len(plain)}; "
        f"with macro resolution and --target-arch x86_64 {after:.2%} of {len(programs)} "
        f"({len(programs) - len(plain)} of them uses of SEC-wrapping macros; load {elapsed:.2f} s)"
    )
    assert before < 0.98
    assert after > 0.995


@pytest.mark.parametrize("arch", sorted(SYS_PREFIXES))
def test_other_arches_take_the_headers_own_branch(selftests, arch):
    files = [
        str(p) for p in sorted((selftests / "progs").glob("*.c")) if b"SYS_PREFIX" in p.read_bytes()
    ]
    run = load(files, Config(target_arch=arch), pair=False)
    sites = [s for s in program_sites(run) if uses_sys_prefix(s)]
    assert len(sites) >= 100
    assert [s for s in sites if s.section != expected(s, SYS_PREFIXES[arch])] == []


def test_uses_of_wrapper_macros_are_programs(runs):
    run, _ = runs["x86_64"]
    by_file: dict[str, dict[str, SectionSite]] = {}
    for s in program_sites(run):
        by_file.setdefault(os.path.basename(s.path), {})[s.program or "?"] = s
    tramp = by_file["struct_ops_multi_pages.c"]
    assert tramp["tramp_1"].section == "struct_ops/tramp_1"
    assert tramp["tramp_1"].macro == "TRAMP" and tramp["tramp_1"].resolved_by == "macro"
    sockmap = by_file["test_sockmap_redir.c"]
    assert (sockmap["prog_skb_verdict"].section, sockmap["prog_msg_verdict"].section) == (
        "sk_skb", "sk_msg",
    )  # fmt: skip
    tail = by_file["tailcall1.c"]
    assert tail["classifier_0"].section == "tc"
    assert "classifier_1" in tail["classifier_0"].macro_users


def test_resolution_adds_no_section_finding(runs):
    # The selftests are correct code: what resolution uncovers must not be reported as wrong
    # beyond what tree-sitter's literal sites already give.
    literal = {
        (f.code, os.path.basename(f.path), f.span.start.row)
        for f in run_rules(runs[None][0].project)
        if f.code.startswith("SECL1")
    }
    resolved = {
        (f.code, os.path.basename(f.path), f.span.start.row)
        for f in run_rules(runs["x86_64"][0].project)
        if f.code.startswith("SECL1")
    }
    assert resolved == literal
