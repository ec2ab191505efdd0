"""`secl verify` on real kernels.

probes.bpf.c holds one program per situation; probes.c is the loader whose code gives the
predictions (K1 link info, K2 LINK mode, K4 offset, the uprobe attach modes of U2).

Two kinds of tests. Those of `pinned_run` hold kernel answers as constants: they are the answers
of the pinned guest kernel (conftest.PINNED_KERNEL, which scripts/fetch-guest-kernel fetches).
Those marked `host_kernel` run cases on whatever kernel runs the tests and assert only what
secl does with its answers (recorded, classified, explained): kernel builds answer some cases
differently (an upgraded uprobe on the perf ioctl: attached on 6.12.95, EINVAL on a 6.18.44).
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

from secl.verify import host, route
from secl.verify.cases import Evidence, Prediction, plan_program
from secl.verify.objects import ObjectProgram, read_programs
from secl.verify.toolchain import GuestKernel, find_kernel, host_support

from .conftest import (
    PINNED_KERNEL,
    PROGS,
    ROOT,
    Tools,
    VerifyRun,
    guest_pieces,
    pinned_kernel,
    processes_with,
    run_secl,
    wait_for,
)

# probes.bpf.o: kp_clean, krp_clean 2 each, kp_link_info, kp_link_mode, kp_offset, kp_perf_fd,
# kp_by_address 4 each, kp_single 1; up_clean, urp_clean 2 each, up_link_info 4, three attach
# modes 5 each, up_perf_fd 4, up_single 1.
# sections.bpf.o: up_auto_self, up_libc_malloc, kp_bare, kp_missing 2 each, the rest 1.
CASES = {"probes": 53, "sections": 12}
VERDICTS = {"agrees", "contradicts", "inconclusive", "informational", "skipped"}


def observed(case: dict) -> tuple:
    seen = case["observed"]
    return seen["attach"], seen["link_type"], seen["hits"]


def cases_of(run: VerifyRun):
    for obj in run.document["objects"]:
        for program in obj["programs"]:
            for case in program["cases"]:
                yield program, case


# -- the pinned guest kernel: its answers are constants ----------------------------------------


def test_every_observation_agrees(pinned_run: VerifyRun) -> None:
    assert pinned_run.returncode == 0, pinned_run.document["failures"]
    summary = pinned_run.document["summary"]
    assert summary["contradicts"] == 0
    assert summary["skipped"] == 0
    assert pinned_run.document["skips"] == []
    inconclusive = [(program["program"], case["label"])
                    for program, case in cases_of(pinned_run) if case["verdict"] == "inconclusive"]  # fmt: skip
    assert inconclusive == [("kp_missing", "as written"), ("kp_missing", "upgraded")]


def test_one_boot_runs_every_case_of_both_objects(pinned_run: VerifyRun) -> None:
    summary = pinned_run.document["summary"]
    assert (summary["host_ran"], summary["guest_ran"]) == (0, sum(CASES.values()))
    (guest_run,) = pinned_run.document["runs"]
    assert guest_run["where"] == "guest"
    assert guest_run["cases"] == sum(CASES.values())
    assert [Path(o).name for o in guest_run["objects"]] == ["probes.bpf.o", "sections.bpf.o"]
    assert guest_run["accel"].split()[0] in ("kvm", "tcg")
    assert guest_run["problem"] is None
    for obj in pinned_run.document["objects"]:
        for program in obj["programs"]:  # --kernel: every program in the guest, not as a fallback
            assert program["where"] == "guest"
            assert not any(note.startswith("in the guest") for note in program["notes"])


@pytest.mark.parametrize(
    ("program", "link"),
    [("kp_clean", "KPROBE_MULTI"), ("krp_clean", "KPROBE_MULTI"),
     ("up_clean", "UPROBE_MULTI"), ("urp_clean", "UPROBE_MULTI")],
)  # fmt: skip
def test_clean_upgrade_gives_a_multi_link_and_counts_hits(
    pinned_run: VerifyRun, program: str, link: str
) -> None:
    assert pinned_run.program(program)["predicted"]["needs_single"] is False
    assert observed(pinned_run.case(program, "as written")) == ("ok", "PERF_EVENT", 5)
    assert observed(pinned_run.case(program, "upgraded")) == ("ok", link, 5)


def test_single_sections_stay_perf_links(pinned_run: VerifyRun) -> None:
    for program in ("kp_single", "up_single"):
        cases = pinned_run.program(program)["cases"]
        assert [c["label"] for c in cases] == ["as written"]
        assert observed(cases[0]) == ("ok", "PERF_EVENT", 5)


def test_k1_link_info_expects_perf_event(pinned_run: VerifyRun) -> None:
    assert pinned_run.program("kp_link_info")["predicted"]["codes"] == ["SECL204"]
    control = pinned_run.case("kp_link_info", "link info, as written (BPF_LINK_TYPE_PERF_EVENT)")
    assert observed(control) == ("ok", "PERF_EVENT", 5)
    replay = pinned_run.case("kp_link_info", "link info, upgraded")
    assert replay["code"] == "SECL204"
    assert observed(replay) == ("ok", "KPROBE_MULTI", 5)
    assert replay["verdict"] == "agrees"


def test_k2_link_mode_fails_after_the_upgrade(pinned_run: VerifyRun) -> None:
    assert pinned_run.program("kp_link_mode")["predicted"]["codes"] == ["SECL202"]
    assert observed(pinned_run.case("kp_link_mode", "mode LINK, as written")) == (
        "ok", "PERF_EVENT", 5,
    )  # fmt: skip
    replay = pinned_run.case("kp_link_mode", "mode LINK, upgraded")
    assert replay["observed"]["attach"] == "EINVAL"
    assert replay["verdict"] == "agrees"


def test_k4_offset_fails_after_the_upgrade(pinned_run: VerifyRun) -> None:
    assert pinned_run.program("kp_offset")["predicted"]["codes"] == ["SECL201"]
    assert observed(pinned_run.case("kp_offset", "offset 0x5, as written")) == (
        "ok", "PERF_EVENT", 5,
    )  # fmt: skip
    replay = pinned_run.case("kp_offset", "offset 0x5, upgraded")
    assert replay["loader"]["offset"] == 5
    assert replay["observed"]["attach"] == "EINVAL"
    assert replay["verdict"] == "agrees"


def test_k4_attach_by_address_fails_after_the_upgrade(pinned_run: VerifyRun) -> None:
    program = pinned_run.program("kp_by_address")
    assert program["predicted"]["codes"] == ["SECL201"]
    control = pinned_run.case("kp_by_address", "by address, as written")
    assert control["loader"]["by_address"] == 1
    assert observed(control) == ("ok", "PERF_EVENT", 5)
    assert (
        pinned_run.case("kp_by_address", "by address, upgraded")["observed"]["attach"] == "EINVAL"
    )


@pytest.mark.parametrize("program", ["kp_perf_fd", "up_perf_fd"])
def test_k20_perf_event_fd_is_refused_after_the_upgrade(
    pinned_run: VerifyRun, program: str
) -> None:
    assert pinned_run.program(program)["predicted"]["codes"] == ["SECL206"]
    assert observed(pinned_run.case(program, "perf event fd, as written")) == (
        "ok", "PERF_EVENT", 5,
    )  # fmt: skip
    replay = pinned_run.case(program, "perf event fd, upgraded")
    assert replay["observed"]["attach"] == "EINVAL" and replay["verdict"] == "agrees"


def test_u1_link_info_expects_perf_event(pinned_run: VerifyRun) -> None:
    assert pinned_run.program("up_link_info")["predicted"]["codes"] == ["SECL204"]
    assert observed(pinned_run.case("up_link_info", "link info, upgraded")) == (
        "ok", "UPROBE_MULTI", 5,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("program", "mode", "perf_route", "dependent"),
    [("up_link_mode", "LINK", ("EINVAL", None, None), False),
     ("up_perf_mode", "PERF", ("ok", "none", 5), True),
     ("up_legacy_mode", "LEGACY", ("ok", "none", 5), True)],
)  # fmt: skip
def test_u2_both_routes_are_reported(
    pinned_run: VerifyRun, program: str, mode: str, perf_route: tuple, dependent: bool
) -> None:
    multi = pinned_run.case(program, f"mode {mode}, upgraded, multi route")
    perf = pinned_run.case(program, f"mode {mode}, upgraded, perf route")
    assert multi["informational"] and perf["informational"]
    assert multi["verdict"] == perf["verdict"] == "informational"
    assert observed(multi) == ("ok", "UPROBE_MULTI", 5)
    assert observed(perf) == perf_route  # the pinned kernel's answer
    assert perf["kernel_dependent"] is dependent
    if dependent:  # kernel builds differ here: 6.12.95 attaches, a 6.18.44 build said EINVAL
        assert [o["attach"] for o in perf["other_kernels"]] == ["EINVAL"]
        assert perf["explanation"].startswith("kernel-dependent: this kernel answers ok none:")
    else:
        assert "as expected" in perf["explanation"]


def test_section_forms(pinned_run: VerifyRun) -> None:
    self_auto = pinned_run.case("up_auto_self", "as written")
    assert self_auto["loader"]["api"] == "auto" and observed(self_auto) == ("ok", "PERF_EVENT", 5)
    replaced = pinned_run.program("up_libc_malloc")
    assert "replaced by the loader's own secl_verify_target" in replaced["notes"][0]
    assert observed(pinned_run.case("up_libc_malloc", "upgraded")) == ("ok", "UPROBE_MULTI", 5)
    for program, link in (
        ("up_native_multi", "UPROBE_MULTI"),
        ("kp_native_multi", "KPROBE_MULTI"),
        ("up_sleepable", "PERF_EVENT"),
        ("ks_nanosleep", "PERF_EVENT"),
    ):
        cases = pinned_run.program(program)["cases"]
        assert [c["label"] for c in cases] == ["as written"]
        assert observed(cases[0]) == ("ok", link, 5), program
    assert pinned_run.case("kp_bare", "upgraded")["loader"]["func"] == "do_nanosleep"
    assert observed(pinned_run.case("kp_bare", "upgraded")) == ("ok", "KPROBE_MULTI", 5)
    missing = pinned_run.case("kp_missing", "as written")
    assert missing["observed"]["attach"] == "ENOENT"
    # kprobe_multi resolves names through ftrace (kernel/trace/ftrace.c: ftrace_lookup_symbols)
    assert pinned_run.case("kp_missing", "upgraded")["observed"]["attach"] == "ESRCH"
    with pytest.raises(KeyError):
        pinned_run.program("tp_getpid")


def test_the_guest_kernel_is_the_pinned_one() -> None:
    """The constants above are the pinned kernel's: the kernel the fetch script fetches and
    the one secl boots by default."""
    script = (ROOT / "scripts" / "fetch-guest-kernel").read_text()
    assert f"linux-image-{PINNED_KERNEL}" in script
    image = pinned_kernel()
    if os.environ.get("SECL_VM_KERNEL") is None:
        found = find_kernel(None)
        assert isinstance(found, GuestKernel) and found.image == image
        assert found.config is not None  # checked for KPROBES and FPROBE


def test_kvm_is_not_trusted_on_pvm_hosts(pinned_run: VerifyRun) -> None:
    from secl.verify.guest import kvm_candidate, remembered_accel
    from secl.verify.toolchain import find_qemu

    (guest_run,) = pinned_run.document["runs"]
    if os.path.isdir("/sys/module/kvm_pvm"):
        usable, reason = kvm_candidate()
        assert not usable and "PVM" in reason
        assert guest_run["accel"].startswith("tcg")
    qemu = find_qemu()
    assert isinstance(qemu, str)
    assert remembered_accel(qemu) == guest_run["accel"].split()[0]


def test_no_qemu_left_after_the_guest_run(pinned_run: VerifyRun) -> None:
    assert not processes_with("secl-guest-")


# -- any kernel: what secl does with the answers ----------------------------------------------


@pytest.mark.host_kernel
def test_each_program_runs_where_the_host_kernel_can_run_it(host_run: VerifyRun) -> None:
    support = host_support()
    for obj in host_run.document["objects"]:
        for program in obj["programs"]:
            assert program["where"] == route(program["group"], None, support), program["program"]
            in_guest = [n for n in program["notes"] if n.startswith("in the guest: ")]
            if program["where"] == "guest":
                assert in_guest == [f"in the guest: host has {support.why_not(program['group'])}"]
            else:
                assert in_guest == []


@pytest.mark.host_kernel
def test_every_case_is_recorded_classified_and_explained(host_run: VerifyRun) -> None:
    document = host_run.document
    skipped_where = {s["where"] for s in document["skips"]}
    counts = dict.fromkeys(VERDICTS, 0)
    for program, case in cases_of(host_run):
        counts[case["verdict"]] += 1
        if program["where"] in skipped_where:  # a named skip: nothing ran there
            assert (case["verdict"], case["observed"]) == ("skipped", None)
            continue
        assert case["verdict"] in VERDICTS - {"skipped"}, case
        assert case["observed"] is not None, case  # recorded, whatever the kernel said
        if case["verdict"] != "agrees":
            assert case["explanation"], case
        if case["verdict"] == "contradicts":
            assert f"{program['program']}: {case['label']}: " in " ".join(document["failures"])
        if case["kernel_dependent"]:
            answer = case["observed"]["attach"]
            if answer == "ok":
                answer = f"ok {case['observed']['link_type']}"
            assert case["explanation"].startswith(
                f"kernel-dependent: this kernel answers {answer}:"
            )
    summary = document["summary"]
    assert {v: summary[v] for v in VERDICTS} == counts
    assert summary["kernel_dependent"] == sum(c["kernel_dependent"] for _, c in cases_of(host_run))
    assert sum(counts.values()) == sum(CASES.values())
    host_cases = sum(1 for p, _ in cases_of(host_run) if p["where"] == "host")
    assert summary["host_ran"] == host_cases
    assert all(r["problem"] is None for r in document["runs"]), document["runs"]
    assert host_run.returncode == (1 if counts["contradicts"] else 0), document["failures"]


@pytest.mark.host_kernel
def test_a_kernel_dependent_answer_is_never_a_failed_expectation(host_run: VerifyRun) -> None:
    """The perf-ioctl route of an upgraded uprobe: whichever known answer this kernel gives,
    it is explained as this kernel's observation."""
    for program in ("up_perf_mode", "up_legacy_mode"):
        mode = program.removeprefix("up_").removesuffix("_mode").upper()
        case = host_run.case(program, f"mode {mode}, upgraded, perf route")
        if case["observed"] is None:
            continue  # this kernel has no uprobe_multi: routed to the guest, skipped there
        assert case["verdict"] == "informational"
        if observed(case)[:2] in (("ok", "none"), ("EINVAL", None)):
            assert case["kernel_dependent"] is True
            assert "expected" not in case["explanation"]
        else:  # an answer no kernel gave before: still explained, with the known ones
            assert "known answers: ok none or EINVAL" in case["explanation"]


@pytest.mark.host_kernel
def test_full_output_is_a_table_of_every_case(
    host_run: VerifyRun, objects: dict[str, Path]
) -> None:
    proc = run_secl("verify", str(objects["probes"]), "--sources", str(PROGS.relative_to(ROOT)),
                    env={"SECL_QEMU": "/nonexistent/qemu"})  # fmt: skip
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    (obj,) = [o for o in host_run.document["objects"] if o["object"].endswith("probes.bpf.o")]
    rows = {}
    for program in obj["programs"]:
        header = next(i for i, line in enumerate(lines)
                      if line.startswith(f"  {program['program']}  SEC("))  # fmt: skip
        table = lines[header + 1 :]
        table = table[next(i for i, line in enumerate(table) if line.split()[:1] == ["case"]) :]
        for case in program["cases"]:
            row = next(line for line in table if line.startswith(f"    {case['label']}  "))
            rows[(program["program"], case["label"])] = row.split()[-1]
    allowed = VERDICTS | {"kernel-dependent"}
    assert set(rows.values()) <= allowed, rows
    sections = {"contradicts": "Contradictions:", "kernel-dependent": "Kernel-dependent ("}
    for (program, label), verdict in rows.items():
        if verdict in sections:
            section = proc.stdout[proc.stdout.index(sections[verdict]) :]
            assert f"  {program}: {label}: " in section
    assert ("Contradictions:" in proc.stdout) == ("contradicts" in rows.values())
    assert f"{len(rows)} cases (host" in lines[-1]


@pytest.mark.host_kernel
def test_missing_qemu_is_a_named_skip_unless_required(
    objects: dict[str, Path], tmp_path: Path
) -> None:
    kernel = tmp_path / "bzImage"  # --kernel sends every case to the guest, on any host
    kernel.write_bytes(b"not booted: there is no qemu")
    env = {"SECL_QEMU": "/nonexistent/qemu"}
    args = ["verify", str(objects["probes"]), "--kernel", str(kernel), "--output-format", "json",
            "--sources", str(PROGS.relative_to(ROOT))]  # fmt: skip
    relaxed = run_secl(*args, env=env)
    assert relaxed.returncode == 0, relaxed.stderr
    document = json.loads(relaxed.stdout)
    assert ("guest", "no qemu") in [(s["where"], s["what"]) for s in document["skips"]]
    summary = document["summary"]
    assert (summary["host_ran"], summary["guest_ran"]) == (0, 0)
    assert summary["skipped"] == CASES["probes"]
    strict = run_secl(*args, "--require-runtime", env=env)
    assert strict.returncode == 1
    assert any("no qemu" in f for f in json.loads(strict.stdout)["failures"])


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an object\n")
    for args in (["verify", str(tmp_path / "missing.o")], ["verify", str(text)], ["verify"]):
        proc = run_secl(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)


def test_a_fifo_or_device_is_skipped_with_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "x.bpf.o"
    os.mkfifo(fifo)
    # a reader of the FIFO would block until a writer came: this one never comes
    proc = run_secl("verify", str(fifo), "/dev/zero", str(tmp_path), "--output-format", "json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        f"secl: warning: {path}: not a regular file, skipped"
        for path in (fifo, "/dev/zero", tmp_path)
    ]
    assert json.loads(proc.stdout)["objects"] == []


@pytest.mark.host_kernel
def test_a_fifo_beside_an_object_does_not_stop_the_run(
    objects: dict[str, Path], tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo.bpf.o"
    os.mkfifo(fifo)
    proc = run_secl("verify", str(fifo), str(objects["sections"]), "--output-format", "json",
                    env={"SECL_QEMU": "/nonexistent/qemu"})  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stderr == f"secl: warning: {fifo}: not a regular file, skipped\n"
    document = json.loads(proc.stdout)
    assert [o["object"] for o in document["objects"]] == [str(objects["sections"])]
    assert sum(document["summary"][v] for v in VERDICTS) == CASES["sections"]


def test_objects_list_their_programs(objects: dict[str, Path]) -> None:
    programs = {p.name: p.section for p in read_programs(str(objects["probes"]))}
    assert programs["kp_offset"] == "kprobe/do_nanosleep"
    assert programs["up_single"] == "uprobe.single"
    assert "LICENSE" not in programs


@pytest.mark.host_kernel
def test_progress_on_a_terminal_for_several_objects(objects: dict[str, Path]) -> None:
    import pty

    leader, follower = pty.openpty()
    args = ["verify", str(objects["probes"]), str(objects["sections"])]
    proc = subprocess.run(
        [sys.executable, "-m", "secl", *args],
        stdout=subprocess.PIPE, stderr=follower, cwd=ROOT, timeout=300, check=False,
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
    assert proc.returncode in (0, 1)
    assert b"reading sources" in shown
    support = host_support()
    if any(route(group, None, support) == "host" for group in ("kprobe", "uprobe")):
        # both objects have programs of both groups: each gets a host run
        assert b"[1/2] host: probes.bpf.o" in shown and b"[2/2] host: sections.bpf.o" in shown
    assert shown.endswith(b"\r\x1b[K")  # the status line is cleared at the end
    assert b"\x1b[K" not in proc.stdout  # the table itself has no terminal codes


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


@pytest.fixture
def uprobes() -> None:
    """The leak tests hold a LEGACY uprobe (a tracefs probe) on the running kernel."""
    if not host_support().uprobe:
        pytest.skip("this kernel has no uprobe events (CONFIG_UPROBE_EVENTS)")


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


@pytest.mark.host_kernel
def test_legacy_case_creates_a_tracefs_probe_while_attached(
    tools: Tools, objects: dict[str, Path], tracefs: None, uprobes: None
) -> None:
    """The leak tests below mean something: a held LEGACY attach shows in uprobe_events."""
    case = legacy_case(objects["probes"], hold_ms=3000)
    script = _runner_script(tools, case, objects["probes"], timeout=30)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    try:
        assert wait_for(lambda: bool(host.leftover_probes())), "no legacy probe appeared"
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert host.leftover_probes() == []


@pytest.mark.host_kernel
def test_no_probe_left_after_the_loader_is_killed(
    tools: Tools, objects: dict[str, Path], tracefs: None, uprobes: None
) -> None:
    case = legacy_case(objects["probes"], crash=1)
    batch = host.run_cases(tools.loader, [(case, str(objects["probes"]))], timeout=30)
    assert batch.problem is not None and "-9" in batch.problem  # died by SIGKILL
    assert case.id not in batch.observations
    assert host.leftover_probes() == []
    assert links_of(tools, "up_legacy_mode") == []


@pytest.mark.host_kernel
def test_no_probe_left_after_the_deadline(
    tools: Tools, objects: dict[str, Path], tracefs: None, uprobes: None
) -> None:
    case = legacy_case(objects["probes"], hold_ms=20000)
    start = time.monotonic()
    batch = host.run_cases(tools.loader, [(case, str(objects["probes"]))], timeout=2)
    assert time.monotonic() - start < 15
    assert batch.problem is not None and "killed" in batch.problem
    assert host.leftover_probes() == []
    assert links_of(tools, "up_legacy_mode") == []


@pytest.mark.host_kernel
def test_no_probe_left_after_ctrl_c(
    tools: Tools, objects: dict[str, Path], tracefs: None, uprobes: None
) -> None:
    case = legacy_case(objects["probes"], hold_ms=20000)
    script = _runner_script(tools, case, objects["probes"], timeout=60)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    try:
        assert wait_for(lambda: bool(host.leftover_probes())), "no legacy probe appeared"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "KeyboardInterrupt" in stderr  # interrupted, not finished
    assert host.leftover_probes() == [], stderr
    assert links_of(tools, "up_legacy_mode") == []
    assert not processes_with(str(tools.loader))


def _default_signals() -> None:
    """In the child: the signals as a terminal gives them (a test run under nohup or in a
    background job would hand down SIGHUP or SIGINT ignored)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def _stop_verify(args: list[str], tmp: Path, signum: int, env: dict[str, str]) -> tuple:
    """Start `secl verify ARGS` with its temporary files under `tmp`, send `signum` once a
    child (QEMU or the loader, whose command lines name `tmp`) runs, and return the exit code,
    stderr and what is left: processes naming `tmp`, files in `tmp`."""
    tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "secl", "verify", *args], cwd=ROOT, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_default_signals,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp), **env},
    )  # fmt: skip
    try:
        child = wait_for(lambda: processes_with(str(tmp)) or proc.poll() is not None)
        assert child and proc.poll() is None, "secl verify started no child"
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stderr, processes_with(str(tmp)), sorted(os.listdir(tmp))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_leaves_no_qemu_and_no_temporary_directory(
    objects: dict[str, Path], tmp_path: Path, signum: int
) -> None:
    guest_pieces()
    args = [str(objects["probes"]), "--kernel", str(pinned_kernel())]
    code, stderr, processes, files = _stop_verify(args, tmp_path / "tmp", signum, {})
    name = signal.Signals(signum).name
    assert code == (130 if signum == signal.SIGINT else 128 + signum), stderr
    if signum != signal.SIGINT:
        assert stderr == f"secl: verify stopped by {name}\n"
    assert processes == [], "QEMU is still running"
    assert files == [], "the guest's temporary directory is still there"


@pytest.mark.host_kernel
def test_a_stop_signal_during_a_host_run_leaves_nothing(
    tools: Tools, objects: dict[str, Path], tmp_path: Path, tracefs: None
) -> None:
    if route("uprobe", None, host_support()) != "host":
        pytest.skip("this kernel runs no uprobe case on the host")
    args = [str(objects["probes"]), str(objects["sections"])]
    env = {"SECL_QEMU": "/nonexistent/qemu"}
    code, stderr, processes, files = _stop_verify(args, tmp_path / "tmp", signal.SIGTERM, env)
    assert code == 128 + signal.SIGTERM, stderr
    assert stderr == "secl: verify stopped by SIGTERM\n"
    assert processes == [] and not processes_with(str(tools.loader)), "the loader still runs"
    assert files == []
    assert host.leftover_probes() == []


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
