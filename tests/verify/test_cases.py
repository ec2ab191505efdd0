"""Which cases a program gets and how observations are judged (no kernel needed)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from secl.verify.cases import (
    Evidence,
    Observation,
    Prediction,
    judge_all,
    plan_program,
    target_of,
)
from secl.verify.objects import ObjectProgram

OFFSET = Evidence("attach-offset", "loader.c", 10, 5, 9)
LINK_MODE = Evidence("attach-mode", "loader.c", 11, 5, "PROBE_ATTACH_MODE_LINK")


def seen(attach: int = 0, link_type: int | None = 7, hits: int | None = 5, load: int = 0):
    return Observation(0, load, attach, 0, link_type if not attach else None,
                       hits if not attach else None, ())  # fmt: skip


def plan(section: str, *evidence: Evidence, codes: tuple[str, ...] = ()):
    program = ObjectProgram("x.bpf.o", "prog", section)
    prediction = Prediction(True, "upgraded", bool(codes), codes, evidence)
    made = plan_program(program, prediction, "guest", 1)
    assert made is not None
    return made


def test_cases_of_an_upgraded_kprobe_with_an_offset() -> None:
    p = plan("kprobe/do_nanosleep", OFFSET, codes=("SECL201",))
    assert [c.label for c in p.cases] == [
        "as written", "upgraded", "offset 0x9, as written", "offset 0x9, upgraded (loader.c:10)",
    ]  # fmt: skip
    written, upgraded, control, replay = p.cases
    assert written.fields["api"] == "auto" and "upgrade" not in written.fields
    assert upgraded.fields["upgrade"] == 1 and upgraded.fields["api"] == "multi"
    assert control.fields["offset"] == replay.fields["offset"] == 9
    assert replay.fields["upgrade"] == 1 and replay.fields["api"] == "single"
    assert replay.control == control.id and replay.expect.attach == "EINVAL"


def test_not_upgraded_programs_only_run_as_written() -> None:
    program = ObjectProgram("x.bpf.o", "prog", "kprobe/do_nanosleep+0x5")
    made = plan_program(program, Prediction(False, "has-offset", False), "guest", 1)
    assert made is not None
    assert [c.label for c in made.cases] == ["as written"]
    assert plan_program(ObjectProgram("x.bpf.o", "t", "tracepoint/a/b"),
                        Prediction(False, "not-probe", None), "host", 1) is None  # fmt: skip


def test_uprobe_modes_run_both_routes_as_information() -> None:
    p = plan("uprobe", Evidence("attach-mode", "l.c", 3, 1, "PROBE_ATTACH_MODE_LINK"))
    routes = [c for c in p.cases if "route" in c.label]
    assert [c.label for c in routes] == [
        "mode LINK, upgraded, multi route", "mode LINK, upgraded, perf route",
    ]  # fmt: skip
    assert all(c.informational for c in routes)


def test_targets() -> None:
    assert target_of("kprobe/do_nanosleep", "kprobe").trigger == "nanosleep"
    assert target_of("kprobe/vfs_read+0x10", "kprobe").offset == 16
    bare = target_of("kprobe", "kprobe", "do_unlinkat")
    assert (bare.func, bare.api, bare.trigger) == ("do_unlinkat", "single", "none")
    up = target_of("uprobe//usr/lib/libc.so.6:malloc", "uprobe")
    assert (up.func, up.binary, up.api) == ("secl_verify_target", "self", "single")
    assert "replaced" in (up.note or "")
    assert target_of("uprobe//proc/self/exe:secl_verify_target", "uprobe").api == "auto"


def test_agreement() -> None:
    p = plan("kprobe/do_nanosleep", OFFSET, codes=("SECL201",))
    results = judge_all(p, {1: seen(), 2: seen(link_type=8), 3: seen(), 4: seen(attach=-22)})
    assert [r.verdict for r in results] == ["agrees"] * 4


def test_a_replay_that_attaches_contradicts_the_prediction() -> None:
    p = plan("kprobe/do_nanosleep", OFFSET, codes=("SECL201",))
    results = judge_all(p, {1: seen(), 2: seen(link_type=8), 3: seen(), 4: seen(link_type=7)})
    assert results[3].verdict == "contradicts"
    assert "SECL201" in results[3].explanation and "EINVAL" in results[3].explanation


def test_a_break_that_was_not_predicted_contradicts() -> None:
    p = plan("kprobe/do_nanosleep", LINK_MODE)  # the analysis gave no SECL202
    results = judge_all(p, {1: seen(), 2: seen(link_type=8), 3: seen(), 4: seen(attach=-22)})
    assert results[3].verdict == "contradicts"
    assert "no SECL202 predicted" in results[3].explanation


def test_wrong_link_type_and_missing_hits_contradict() -> None:
    p = plan("kprobe/do_nanosleep")
    results = judge_all(p, {1: seen(), 2: seen(link_type=7, hits=0)})
    assert results[1].verdict == "contradicts"
    assert "KPROBE_MULTI" in results[1].explanation and "hits" in results[1].explanation


def test_failures_of_their_own_are_inconclusive() -> None:
    p = plan("kprobe/do_nanosleep", OFFSET, codes=("SECL201",))
    # the program does not load (verifier), then every case is inconclusive
    results = judge_all(p, {i: seen(load=-13) for i in (1, 2, 3, 4)})
    assert {r.verdict for r in results} == {"inconclusive"}
    # the target is missing on this kernel: the control fails, the replay says nothing
    results = judge_all(p, {1: seen(attach=-2), 2: seen(attach=-2), 3: seen(attach=-2),
                            4: seen(attach=-22)})  # fmt: skip
    assert {r.verdict for r in results} == {"inconclusive"}
    # a kernel without the multi link
    results = judge_all(p, {1: seen(), 2: seen(attach=-95), 3: seen(), 4: seen(attach=-22)})
    assert results[1].verdict == "inconclusive" and "EOPNOTSUPP" in results[1].explanation
    # no result at all (the loader died)
    assert judge_all(p, {})[0].verdict == "inconclusive"


# -- answers that differ between kernel builds ---------------------------------------------

PERF_MODE = Evidence("attach-mode", "l.c", 4, 1, "PROBE_ATTACH_MODE_PERF")
NO_LINK = Observation(0, 0, 0, -22, None, 5, ())  # attached, the fd is not a BPF link
REFUSED = Observation(0, 0, -22, 0, None, None, ())
OTHER_ERROR = Observation(0, 0, -2, 0, None, None, ())


def _perf_route(section: str, seen_there: Observation, codes: tuple[str, ...] = ()):
    """The results of a program whose upgraded PERF-mode attach saw `seen_there`."""
    p = plan(section, PERF_MODE, codes=codes)
    replay = p.cases[-1]
    assert replay.expect.or_else, "the perf-ioctl case must be kernel-dependent"
    observations = {c.id: NO_LINK if "mode PERF" in c.label else seen() for c in p.cases}
    observations[2] = seen(link_type=12 if section.startswith("u") else 8)
    observations[replay.id] = seen_there
    return judge_all(p, observations)[-1]


@pytest.mark.parametrize(
    ("seen_there", "answer", "other"),
    [(NO_LINK, "ok none", "EINVAL"), (REFUSED, "EINVAL", "ok none")],
)
def test_a_kernel_dependent_answer_is_an_observation_not_a_failure(
    seen_there: Observation, answer: str, other: str
) -> None:
    result = _perf_route("uprobe", seen_there)
    assert result.case.label == "mode PERF, upgraded, perf route"
    assert result.verdict == "informational" and result.kernel_dependent
    assert result.explanation.startswith(f"kernel-dependent: this kernel answers {answer}:")
    assert f"other kernel builds answer {other}:" in result.explanation
    assert "expected" not in result.explanation


@pytest.mark.parametrize("seen_there", [NO_LINK, REFUSED])
def test_a_kprobe_perf_mode_agrees_on_either_kernel(seen_there: Observation) -> None:
    result = _perf_route("kprobe/do_nanosleep", seen_there, codes=("SECL203",))
    assert result.case.code == "SECL203"
    assert (result.verdict, result.kernel_dependent) == ("agrees", True)


def test_an_unknown_answer_of_a_kernel_dependent_case_is_explained() -> None:
    uprobe = _perf_route("uprobe", OTHER_ERROR)
    assert uprobe.verdict == "informational" and not uprobe.kernel_dependent
    assert "failed with ENOENT" in uprobe.explanation
    assert "known answers: ok none or EINVAL" in uprobe.explanation
    kprobe = _perf_route("kprobe/do_nanosleep", OTHER_ERROR, codes=("SECL203",))
    assert kprobe.verdict == "contradicts" and kprobe.explanation.startswith("SECL203: ")


def test_kernel_dependent_rows_are_rendered_as_such() -> None:
    from secl.verify import Report
    from secl.verify.render import render_full, render_json

    p = plan("uprobe", PERF_MODE)
    observations = {c.id: NO_LINK if "mode PERF" in c.label else seen() for c in p.cases}
    observations[2] = seen(link_type=12)
    observations[p.cases[-1].id] = REFUSED
    report = Report(plans=[p], objects=["x.bpf.o"])
    report.results = {r.case.id: r for r in judge_all(p, observations)}
    full = render_full(report)
    row = next(line for line in full.splitlines() if "perf route" in line and "EINVAL" in line)
    assert row.split()[-1] == "kernel-dependent"
    assert "ok none or EINVAL" in row
    assert "\nKernel-dependent (" in full
    assert "(1 kernel-dependent)" in full
    case = json.loads(render_json(report))["objects"][0]["programs"][0]["cases"][-1]
    assert case["kernel_dependent"] is True and case["verdict"] == "informational"
    assert [o["attach"] for o in case["other_kernels"]] == ["EINVAL"]


# -- where cases run -------------------------------------------------------------------------


def test_route_follows_what_the_host_kernel_has() -> None:
    from secl.verify import route
    from secl.verify.toolchain import HostSupport

    everything = HostSupport(root=True, kprobe=True, uprobe=True, kprobe_multi=True,
                             uprobe_multi=True)  # fmt: skip
    assert route("kprobe", None, everything) == route("uprobe", None, everything) == "host"
    assert route("kprobe", "/boot/vmlinuz", everything) == "guest"  # --kernel: all in the guest
    no_fprobe = dataclasses.replace(everything, kprobe_multi=False)
    assert (route("kprobe", None, no_fprobe), route("uprobe", None, no_fprobe)) == (
        "guest", "host",
    )  # fmt: skip
    before_6_6 = dataclasses.replace(everything, uprobe_multi=False)
    assert route("uprobe", None, before_6_6) == "guest"
    assert "6.6" in before_6_6.why_not("uprobe")
    assert route("uprobe", None, dataclasses.replace(everything, root=False)) == "guest"
