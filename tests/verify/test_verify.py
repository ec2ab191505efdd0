"""`secl verify` on real kernels: uprobes on the host, kprobes in a QEMU guest.

probes.bpf.c holds one program per situation; probes.c is the loader whose code gives the
predictions (K1 link info, K2 LINK mode, K4 offset, the uprobe attach modes of U2).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from secl.verify import host
from secl.verify.cases import Evidence, Prediction, plan_program
from secl.verify.objects import ObjectProgram, read_programs

from .conftest import PROGS, ROOT, Tools, VerifyRun, run_secl

# probes.bpf.o: up_clean 2, urp_clean 2, up_link_info 4, three attach modes 5 each,
# up_perf_fd 4, up_single 1; sections.bpf.o: up_auto_self 2, up_libc_malloc 2, the rest 1
HOST_CASES = {"probes": 28, "sections": 6}
# probes.bpf.o: kp_clean 2, krp_clean 2, kp_link_info, kp_link_mode, kp_offset, kp_perf_fd,
# kp_by_address 4 each, kp_single 1; sections.bpf.o: kp_bare 2, kp_missing 2, the rest 1
GUEST_CASES = {"probes": 25, "sections": 6}


def observed(case: dict) -> tuple:
    seen = case["observed"]
    return seen["attach"], seen["link_type"], seen["hits"]


# -- the whole run ---------------------------------------------------------------------------


def test_every_observation_agrees(probes_run: VerifyRun) -> None:
    assert probes_run.returncode == 0, probes_run.document["failures"]
    summary = probes_run.document["summary"]
    assert summary["contradicts"] == 0
    assert summary["skipped"] == 0
    assert probes_run.document["skips"] == []
    inconclusive = [
        (program["program"], case["label"])
        for obj in probes_run.document["objects"]
        for program in obj["programs"]
        for case in program["cases"]
        if case["verdict"] == "inconclusive"
    ]
    assert inconclusive == [("kp_missing", "as written"), ("kp_missing", "upgraded")]


def test_case_counts_per_machine(probes_run: VerifyRun) -> None:
    summary = probes_run.document["summary"]
    assert summary["host_ran"] == sum(HOST_CASES.values())
    assert summary["guest_ran"] == sum(GUEST_CASES.values())
    runs = probes_run.document["runs"]
    host_runs = {Path(r["objects"][0]).name.split(".")[0]: r for r in runs if r["where"] == "host"}
    assert {name: r["cases"] for name, r in host_runs.items()} == HOST_CASES
    (guest_run,) = [r for r in runs if r["where"] == "guest"]  # one boot for both objects
    assert guest_run["cases"] == sum(GUEST_CASES.values())
    assert len(guest_run["objects"]) == 2
    assert guest_run["accel"].split()[0] in ("kvm", "tcg")
    assert all(r["problem"] is None for r in runs)


def test_kprobes_ran_in_the_guest_and_uprobes_on_the_host(probes_run: VerifyRun) -> None:
    for obj in probes_run.document["objects"]:
        for program in obj["programs"]:
            assert program["where"] == ("guest" if program["group"] == "kprobe" else "host")


# -- a clean upgrade ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("program", "link"),
    [("kp_clean", "KPROBE_MULTI"), ("krp_clean", "KPROBE_MULTI"),
     ("up_clean", "UPROBE_MULTI"), ("urp_clean", "UPROBE_MULTI")],
)  # fmt: skip
def test_clean_upgrade_gives_a_multi_link_and_counts_hits(
    probes_run: VerifyRun, program: str, link: str
) -> None:
    assert probes_run.program(program)["predicted"]["needs_single"] is False
    assert observed(probes_run.case(program, "as written")) == ("ok", "PERF_EVENT", 5)
    assert observed(probes_run.case(program, "upgraded")) == ("ok", link, 5)


def test_single_sections_stay_perf_links(probes_run: VerifyRun) -> None:
    for program in ("kp_single", "up_single"):
        cases = probes_run.program(program)["cases"]
        assert [c["label"] for c in cases] == ["as written"]
        assert observed(cases[0]) == ("ok", "PERF_EVENT", 5)


# -- kprobes in the guest: K1, K2, K4 --------------------------------------------------------


def test_k1_link_info_expects_perf_event(probes_run: VerifyRun) -> None:
    assert probes_run.program("kp_link_info")["predicted"]["codes"] == ["SECL204"]
    control = probes_run.case("kp_link_info", "link info, as written (BPF_LINK_TYPE_PERF_EVENT)")
    assert observed(control) == ("ok", "PERF_EVENT", 5)
    replay = probes_run.case("kp_link_info", "link info, upgraded")
    assert replay["code"] == "SECL204"
    assert observed(replay) == ("ok", "KPROBE_MULTI", 5)
    assert replay["verdict"] == "agrees"


def test_k2_link_mode_fails_after_the_upgrade(probes_run: VerifyRun) -> None:
    assert probes_run.program("kp_link_mode")["predicted"]["codes"] == ["SECL202"]
    assert observed(probes_run.case("kp_link_mode", "mode LINK, as written")) == (
        "ok", "PERF_EVENT", 5,
    )  # fmt: skip
    replay = probes_run.case("kp_link_mode", "mode LINK, upgraded")
    assert replay["observed"]["attach"] == "EINVAL"
    assert replay["verdict"] == "agrees"


def test_k4_offset_fails_after_the_upgrade(probes_run: VerifyRun) -> None:
    assert probes_run.program("kp_offset")["predicted"]["codes"] == ["SECL201"]
    assert observed(probes_run.case("kp_offset", "offset 0x5, as written")) == (
        "ok", "PERF_EVENT", 5,
    )  # fmt: skip
    replay = probes_run.case("kp_offset", "offset 0x5, upgraded")
    assert replay["loader"]["offset"] == 5
    assert replay["observed"]["attach"] == "EINVAL"
    assert replay["verdict"] == "agrees"


def test_k4_attach_by_address_fails_after_the_upgrade(probes_run: VerifyRun) -> None:
    program = probes_run.program("kp_by_address")
    assert program["predicted"]["codes"] == ["SECL201"]
    assert program["notes"] == [
        "in the guest: host has no kprobe PMU (/sys/bus/event_source/devices/kprobe): "
        "kernel without KPROBES"
    ]
    control = probes_run.case("kp_by_address", "by address, as written")
    assert control["loader"]["by_address"] == 1
    assert observed(control) == ("ok", "PERF_EVENT", 5)
    assert (
        probes_run.case("kp_by_address", "by address, upgraded")["observed"]["attach"] == "EINVAL"
    )


@pytest.mark.parametrize("program", ["kp_perf_fd", "up_perf_fd"])
def test_k20_perf_event_fd_is_refused_after_the_upgrade(
    probes_run: VerifyRun, program: str
) -> None:
    assert probes_run.program(program)["predicted"]["codes"] == ["SECL206"]
    assert observed(probes_run.case(program, "perf event fd, as written")) == (
        "ok",
        "PERF_EVENT",
        5,
    )
    replay = probes_run.case(program, "perf event fd, upgraded")
    assert replay["observed"]["attach"] == "EINVAL" and replay["verdict"] == "agrees"


# -- uprobes on the host: U1 and the two routes of U2 -----------------------------------------


def test_u1_link_info_expects_perf_event(probes_run: VerifyRun) -> None:
    assert probes_run.program("up_link_info")["predicted"]["codes"] == ["SECL204"]
    assert observed(probes_run.case("up_link_info", "link info, upgraded")) == (
        "ok", "UPROBE_MULTI", 5,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("program", "mode", "perf_route"),
    [("up_link_mode", "LINK", ("EINVAL", None, None)),
     ("up_perf_mode", "PERF", ("ok", "none", 5)),
     ("up_legacy_mode", "LEGACY", ("ok", "none", 5))],
)  # fmt: skip
def test_u2_both_routes_are_reported(
    probes_run: VerifyRun, program: str, mode: str, perf_route: tuple
) -> None:
    multi = probes_run.case(program, f"mode {mode}, upgraded, multi route")
    perf = probes_run.case(program, f"mode {mode}, upgraded, perf route")
    assert multi["informational"] and perf["informational"]
    assert multi["verdict"] == perf["verdict"] == "informational"
    assert observed(multi) == ("ok", "UPROBE_MULTI", 5)
    assert observed(perf) == perf_route
    assert "as expected" in perf["explanation"]


def test_full_output_is_a_table(probes_run: VerifyRun, objects: dict[str, Path]) -> None:
    proc = run_secl("verify", str(objects["probes"]), "--sources", str(PROGS.relative_to(ROOT)),
                    env={"SECL_QEMU": "/nonexistent/qemu"})  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.split()[:4] == ["as", "written", "ok", "PERF_EVENT"] for line in lines)
    assert "up_link_mode: mode LINK, upgraded, perf route: EINVAL" in proc.stdout
    assert "guest: no qemu" in proc.stdout


# -- section forms ---------------------------------------------------------------------------


def test_section_forms(probes_run: VerifyRun) -> None:
    self_auto = probes_run.case("up_auto_self", "as written")
    assert self_auto["loader"]["api"] == "auto" and observed(self_auto) == ("ok", "PERF_EVENT", 5)
    replaced = probes_run.program("up_libc_malloc")
    assert "replaced by the loader's own secl_verify_target" in replaced["notes"][0]
    assert observed(probes_run.case("up_libc_malloc", "upgraded")) == ("ok", "UPROBE_MULTI", 5)
    for program, link in (
        ("up_native_multi", "UPROBE_MULTI"),
        ("kp_native_multi", "KPROBE_MULTI"),
        ("up_sleepable", "PERF_EVENT"),
        ("ks_nanosleep", "PERF_EVENT"),
    ):
        cases = probes_run.program(program)["cases"]
        assert [c["label"] for c in cases] == ["as written"]
        assert observed(cases[0]) == ("ok", link, 5), program
    assert probes_run.case("kp_bare", "upgraded")["loader"]["func"] == "do_nanosleep"
    assert observed(probes_run.case("kp_bare", "upgraded")) == ("ok", "KPROBE_MULTI", 5)
    missing = probes_run.case("kp_missing", "as written")
    assert missing["observed"]["attach"] == "ENOENT"
    # kprobe_multi resolves names through ftrace (kernel/trace/ftrace.c: ftrace_lookup_symbols)
    assert probes_run.case("kp_missing", "upgraded")["observed"]["attach"] == "ESRCH"
    with pytest.raises(KeyError):
        probes_run.program("tp_getpid")


# -- skips, usage ----------------------------------------------------------------------------


def test_missing_qemu_is_a_named_skip_unless_required(objects: dict[str, Path]) -> None:
    env = {"SECL_QEMU": "/nonexistent/qemu"}
    args = ["verify", str(objects["probes"]), "--output-format", "json"]
    relaxed = run_secl(*args, env=env)
    assert relaxed.returncode == 0, relaxed.stderr
    document = json.loads(relaxed.stdout)
    assert [(s["where"], s["what"]) for s in document["skips"]] == [("guest", "no qemu")]
    assert document["summary"]["host_ran"] > 0 and document["summary"]["guest_ran"] == 0
    strict = run_secl(*args, "--require-runtime", env=env)
    assert strict.returncode == 1
    assert any("no qemu" in f for f in json.loads(strict.stdout)["failures"])


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an object\n")
    for args in (["verify", str(tmp_path / "missing.o")], ["verify", str(text)], ["verify"]):
        proc = run_secl(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)


def test_objects_list_their_programs(objects: dict[str, Path]) -> None:
    programs = {p.name: p.section for p in read_programs(str(objects["probes"]))}
    assert programs["kp_offset"] == "kprobe/do_nanosleep"
    assert programs["up_single"] == "uprobe.single"
    assert "LICENSE" not in programs


# -- nothing is left behind ------------------------------------------------------------------


@pytest.fixture
def tracefs():
    """tracefs mounted for the whole test, so that leftover probes would be seen."""
    mounted_here = False
    if not host.tracefs_mounted():
        subprocess.run(["mount", "-t", "tracefs", "tracefs", str(host.TRACEFS)], check=True)
        mounted_here = True
    yield
    if mounted_here:
        subprocess.run(["umount", str(host.TRACEFS)], check=False)


def legacy_case(obj: Path, **extra: int):
    """The control case of a LEGACY-mode uprobe: it creates a tracefs probe."""
    program = ObjectProgram(str(obj), "up_legacy_mode", "uprobe")
    evidence = Evidence("attach-mode", "probes.c", 1, 1, "PROBE_ATTACH_MODE_LEGACY")
    prediction = Prediction(True, "upgraded", False, (), (evidence,))
    plan = plan_program(program, prediction, "host", 1)
    assert plan is not None
    case = next(c for c in plan.cases if c.label == "mode LEGACY, as written")
    return dataclasses.replace(case, fields={**case.fields, **extra})


def links_of(tools: Tools, program: str) -> list[dict]:
    proc = subprocess.run(
        [str(tools.loader), "--links"], capture_output=True, text=True, check=True
    )
    return [d for d in map(json.loads, proc.stdout.splitlines()) if d["prog"] == program]


def test_legacy_case_creates_a_tracefs_probe_while_attached(
    tools: Tools, objects: dict[str, Path], tracefs: None
) -> None:
    """The leak tests below mean something: a held LEGACY attach shows in uprobe_events."""
    case = legacy_case(objects["probes"], hold_ms=3000)
    script = _runner_script(tools, case, objects["probes"], timeout=30)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    try:
        assert _wait_for(lambda: bool(host.leftover_probes())), "no legacy probe appeared"
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == 0
    assert host.leftover_probes() == []


def test_no_probe_left_after_the_loader_is_killed(
    tools: Tools, objects: dict[str, Path], tracefs: None
) -> None:
    case = legacy_case(objects["probes"], crash=1)
    batch = host.run_cases(tools.loader, [(case, str(objects["probes"]))], timeout=30)
    assert batch.problem is not None and "-9" in batch.problem  # died by SIGKILL
    assert case.id not in batch.observations
    assert host.leftover_probes() == []
    assert links_of(tools, "up_legacy_mode") == []


def test_no_probe_left_after_the_deadline(
    tools: Tools, objects: dict[str, Path], tracefs: None
) -> None:
    case = legacy_case(objects["probes"], hold_ms=20000)
    start = time.monotonic()
    batch = host.run_cases(tools.loader, [(case, str(objects["probes"]))], timeout=2)
    assert time.monotonic() - start < 10
    assert batch.problem is not None and "killed" in batch.problem
    assert host.leftover_probes() == []
    assert links_of(tools, "up_legacy_mode") == []


def test_no_probe_left_after_ctrl_c(tools: Tools, objects: dict[str, Path], tracefs: None) -> None:
    case = legacy_case(objects["probes"], hold_ms=20000)
    script = _runner_script(tools, case, objects["probes"], timeout=60)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    try:
        assert _wait_for(lambda: bool(host.leftover_probes())), "no legacy probe appeared"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "KeyboardInterrupt" in stderr  # interrupted, not finished
    assert host.leftover_probes() == [], stderr
    assert links_of(tools, "up_legacy_mode") == []
    assert not _processes_running(str(tools.loader))


def test_no_qemu_left_after_the_guest_run(probes_run: VerifyRun) -> None:
    assert not _processes_running("secl-guest-")


def _runner_script(tools: Tools, case, obj: Path, timeout: float) -> str:
    fields = json.dumps(case.fields)
    return f"""
import dataclasses, json
from pathlib import Path
from secl.verify import host
from secl.verify.cases import Case, Expect
from secl.verify.objects import ObjectProgram
case = Case({case.id}, ObjectProgram({str(obj)!r}, "up_legacy_mode", "uprobe"), "uprobe",
            "held", json.loads({fields!r}), Expect("ok"))
host.run_cases(Path({str(tools.loader)!r}), [(case, {str(obj)!r})], timeout={timeout})
"""


def _wait_for(condition, seconds: float = 15.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _processes_running(needle: str) -> bool:
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if needle.encode() in cmdline and b"pytest" not in cmdline:
            return True
    return False


def test_kvm_is_not_trusted_on_pvm_hosts(probes_run: VerifyRun) -> None:
    from secl.verify.guest import kvm_candidate, remembered_accel
    from secl.verify.toolchain import find_qemu

    (guest_run,) = [r for r in probes_run.document["runs"] if r["where"] == "guest"]
    if os.path.isdir("/sys/module/kvm_pvm"):
        usable, reason = kvm_candidate()
        assert not usable and "PVM" in reason
        assert guest_run["accel"].startswith("tcg")
    qemu = find_qemu()
    assert isinstance(qemu, str)
    assert remembered_accel(qemu) == guest_run["accel"].split()[0]


def test_progress_on_a_terminal_for_several_objects(objects: dict[str, Path]) -> None:
    import pty

    leader, follower = pty.openpty()
    args = ["verify", str(objects["probes"]), str(objects["sections"])]
    proc = subprocess.run(
        [sys.executable, "-m", "secl", *args],
        stdout=subprocess.PIPE, stderr=follower, cwd=ROOT, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), "SECL_QEMU": "/nonexistent/qemu"},
    )  # fmt: skip
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.returncode == 0
    assert b"[1/2] host: probes.bpf.o" in shown and b"[2/2] host: sections.bpf.o" in shown
    assert shown.endswith(b"\r\x1b[K")  # the status line is cleared at the end
    assert b"\x1b[K" not in proc.stdout  # the table itself has no terminal codes
