"""`secl verify`: confirm the upgrade predictions on a real kernel.

    secl verify OBJECT.bpf.o ... [--sources DIR] [--kernel BZIMAGE]
                [--output-format full|json] [--require-runtime]

For every kprobe/uprobe-family program of the objects, the cases of secl.verify.cases run on
the host (when the running kernel has the probe type and its multi link, as root) or in a
QEMU guest (otherwise, or with --kernel), with one static loader for both. Exit 0 when every
observation agrees with the prediction, 1 when one contradicts it (or, with
--require-runtime, when a piece is missing), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from secl.verify import process
from secl.verify.cases import (
    Case,
    Evidence,
    Group,
    Observation,
    Prediction,
    ProgramPlan,
    Result,
    Where,
    judge_all,
    plan_program,
    probe_group,
)
from secl.verify.objects import NotABpfObject, NotRegularFile, ObjectProgram, read_programs
from secl.verify.toolchain import (
    HostSupport,
    Skip,
    build_loader,
    find_busybox,
    find_compiler,
    find_kernel,
    find_qemu,
    find_sysroot,
    host_support,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from secl.kernel import KernelLists

EXIT_AGREES, EXIT_CONTRADICTS, EXIT_USAGE = 0, 1, 2
HOST_TIMEOUT_PER_CASE = 5.0
GUEST_TIMEOUT = 90.0  # one TCG boot is about 4 s; CI machines can be slow and busy
GUEST_TIMEOUT_PER_CASE = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("objects", nargs="+", metavar="OBJECT", help="BPF object files (.bpf.o)")
    parser.add_argument(
        "--sources",
        action="append",
        metavar="DIR",
        help="BPF and loader sources whose static analysis gives the predictions "
        "(default: the section names alone)",
    )
    parser.add_argument(
        "--kernel",
        metavar="BZIMAGE",
        help="run every case in a QEMU guest with this kernel (needs KPROBES and FPROBE)",
    )
    parser.add_argument("--output-format", choices=("full", "json"), default="full")
    parser.add_argument(
        "--kernel-functions",
        metavar="FILE|host",
        help="the tracefs available_filter_functions of the kernel the cases run on: kprobe "
        "targets missing from it are expected to fail (SECL116)",
    )
    parser.add_argument(
        "--kprobe-blacklist",
        metavar="FILE|host",
        help="its debugfs kprobes/blacklist: blacklisted targets are expected to fail as "
        "classic kprobes and attach upgraded (SECL116, SECL302)",
    )
    parser.add_argument(
        "--require-runtime",
        action="store_true",
        help="fail (exit 1) when a case cannot run: no qemu, no kernel, libbpf too old, not root",
    )


@dataclass(frozen=True, slots=True)
class RunFigures:
    """Cases, wall time and peak memory of one runner (host or guest)."""

    where: Where
    objects: tuple[str, ...]
    cases: int
    wall: float
    peak_rss_kb: int
    accel: str | None = None
    problem: str | None = None


@dataclass(slots=True)
class Report:
    """Everything one `secl verify` found."""

    plans: list[ProgramPlan] = field(default_factory=list)
    results: dict[int, Result] = field(default_factory=dict)
    skips: list[tuple[Where, Skip]] = field(default_factory=list)
    runs: list[RunFigures] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    require_runtime: bool = False

    def counts(self) -> dict[str, int]:
        out = {"agrees": 0, "contradicts": 0, "inconclusive": 0, "informational": 0, "skipped": 0}
        for plan in self.plans:
            for case in plan.cases:
                result = self.results.get(case.id)
                out[result.verdict if result else "skipped"] += 1
        return out

    def ran(self, where: Where) -> int:
        return sum(
            1
            for plan in self.plans
            if plan.where == where
            for case in plan.cases
            if (r := self.results.get(case.id)) is not None and r.observation is not None
        )

    def failures(self) -> list[str]:
        """Why the run counts as failed (exit 1)."""
        out = [f"{r.case.program.name}: {r.case.label}: {r.explanation}"
               for r in self.results.values() if r.verdict == "contradicts"]  # fmt: skip
        if self.require_runtime:
            out += [f"--require-runtime: {where}: {skip}" for where, skip in self.skips]
            out += [f"--require-runtime: {run.where}: {run.problem}"
                    for run in self.runs if run.problem]  # fmt: skip
        return out


class _Progress:
    """One updating status line on a terminal (stderr), for runs over several objects."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.shown = False

    def __call__(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\x1b[K{text}")
            sys.stderr.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.shown = False


def run_verify(args: argparse.Namespace) -> int:
    """SIGTERM and SIGHUP stop a run as Ctrl-C does: QEMU, the loader, the temporary
    directories and tracefs probes are cleaned up on the way out (exit 128 + the signal)."""
    try:
        with process.stop_on_signals():
            return _run_verify(args)
    except process.Terminated as stop:
        print(f"secl: verify stopped by {stop.name}", file=sys.stderr)
        return 128 + stop.signum


def _run_verify(args: argparse.Namespace) -> int:
    from secl.cli import UsageError

    programs: list[ObjectProgram] = []
    objects: list[str] = []
    for obj in args.objects:
        try:
            programs.extend(read_programs(obj))
        except NotRegularFile as err:
            print(f"secl: warning: {err}, skipped", file=sys.stderr)
            continue
        except NotABpfObject as err:
            raise UsageError(str(err)) from err
        objects.append(obj)
    for source in args.sources or ():
        if not os.path.exists(source):
            raise UsageError(f"--sources {source}: no such file or directory")
    if args.kernel and not os.path.isfile(args.kernel):
        raise UsageError(f"--kernel {args.kernel}: no such file")
    lists = _kernel_lists(args, UsageError)
    progress = _Progress(sys.stderr.isatty() and len(objects) > 1)
    report = Report(objects=objects, require_runtime=args.require_runtime)
    try:
        progress("reading sources")
        predictions = predictions_from_sources(args.sources or [])
        verify(programs, predictions, args.kernel, report, progress, lists)
    finally:
        progress.done()
    if args.output_format == "json":
        from secl.verify.render import render_json

        sys.stdout.write(render_json(report))
    else:
        from secl.verify.render import render_full

        sys.stdout.write(render_full(report))
    return EXIT_CONTRADICTS if report.failures() else EXIT_AGREES


def _kernel_lists(args: argparse.Namespace, usage: type[Exception]) -> KernelLists | None:
    """The kernel lists of --kernel-functions / --kprobe-blacklist (secl/kernel.py); a list
    that cannot be read is a usage error."""
    functions = getattr(args, "kernel_functions", None)
    blacklist = getattr(args, "kprobe_blacklist", None)
    if functions is None and blacklist is None:
        return None
    from secl.kernel import load_lists

    lists, problems = load_lists(functions, blacklist)
    if problems:
        where, message = problems[0]
        raise usage(f"{where}: {message}")
    return lists


# -- predictions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourcePrediction:
    """What the static analysis predicts for one program."""

    filename: str
    program: str
    section: str | None
    prediction: Prediction


def predictions_from_sources(sources: list[str]) -> list[SourcePrediction]:
    """The inventory's `upgrade` objects of every kprobe/uprobe-family program."""
    if not sources:
        return []
    from secl.api import inventory
    from secl.config import Config, find_config_file, find_project_root, load_config

    path = find_config_file(sources[0])
    config = load_config(path) if path else Config(root=find_project_root(sources[0]))
    out = []
    for entry in inventory(sources, config).entries:
        info, site = entry.upgrade, entry.site
        if info is None or site.program is None:
            continue
        # Evidence the analysis could not tie to the program for certain (a store whose
        # order against the attach call is unknown) made no finding: nothing to confirm.
        evidence = tuple(
            Evidence(e.kind, e.path, e.span.start.row, e.span.start.column, e.value)
            for e in info.evidence
            if e.certain
        )
        prediction = Prediction(
            upgraded=info.upgraded,
            reason_code=info.reason_code,
            needs_single=info.needs_single,
            codes=info.codes,
            evidence=evidence,
            source=f"{site.path}:{site.span.start.row}",
        )
        out.append(SourcePrediction(site.path, site.program, site.section, prediction))
    return out


def _stem(path: str) -> str:
    name = os.path.basename(path)
    for suffix in (".o", ".c", ".bpf"):
        name = name.removesuffix(suffix)
    return name


def prediction_for(program: ObjectProgram, known: list[SourcePrediction]) -> Prediction:
    """The sources' prediction for an object's program: same name and section, preferring a
    source named like the object; without one, the predicate on the section alone."""
    section = program.section
    matches = [p for p in known if p.program == program.name and p.section in (section, None)]
    if len(matches) > 1:
        same_stem = [p for p in matches if _stem(p.filename) == _stem(program.object)]
        matches = same_stem or matches
    if matches:
        return matches[0].prediction
    from secl.libbpf.upgrade import upgrade_decision

    decision = upgrade_decision(section)
    return Prediction(decision.upgraded, decision.reason_code, None)


# -- running ---------------------------------------------------------------------------------


def route(group: Group, kernel: str | None, host: HostSupport) -> Where:
    """Host when the running kernel attaches this probe type and its multi link, as root;
    the guest otherwise, and for everything with --kernel."""
    if kernel is None and host.root and host.supports(group):
        return "host"
    return "guest"


def verify(
    programs: list[ObjectProgram],
    predictions: list[SourcePrediction],
    kernel: str | None,
    report: Report,
    progress: Callable[[str], None],
    lists: KernelLists | None = None,
) -> None:
    host = host_support()
    next_id = 1
    for program in programs:
        group = probe_group(program.section)
        if group is None:
            continue
        where = route(group, kernel, host)
        plan = plan_program(program, prediction_for(program, predictions), where, next_id)
        if plan is None:
            continue
        if lists is not None:
            from secl.verify.kernel import apply_kernel_lists

            apply_kernel_lists(plan, lists)
        if where == "guest" and kernel is None:
            why = "not root on the host" if not host.root else f"host has {host.why_not(group)}"
            plan.notes.append(f"in the guest: {why}")
        report.plans.append(plan)
        next_id += len(plan.cases)
    host_plans = [p for p in report.plans if p.where == "host"]
    guest_plans = [p for p in report.plans if p.where == "guest"]
    observations: dict[int, Observation] = {}
    if report.plans:
        progress("building the loader")
        loader = _loader()
        if isinstance(loader, Skip):
            report.skips += [(w, loader) for w in ("host", "guest") if _plans_of(report, w)]
        else:
            if host_plans:
                _run_host(loader, host_plans, report, observations, progress)
            if guest_plans:
                _run_guest(loader, kernel, guest_plans, report, observations, progress)
    skipped = {where for where, _ in report.skips}
    for plan in report.plans:
        if plan.where in skipped:
            continue  # nothing ran there: the cases stay "skipped", not inconclusive
        for result in judge_all(plan, observations):
            report.results[result.case.id] = result


def _plans_of(report: Report, where: Where) -> list[ProgramPlan]:
    return [p for p in report.plans if p.where == where]


def _loader() -> Path | Skip:
    sysroot = find_sysroot()
    if isinstance(sysroot, Skip):
        return sysroot
    cc = find_compiler()
    if isinstance(cc, Skip):
        return cc
    return build_loader(sysroot, cc)


def _run_host(
    loader: Path,
    plans: list[ProgramPlan],
    report: Report,
    observations: dict[int, Observation],
    progress: Callable[[str], None],
) -> None:
    from secl.verify import host as host_runner

    by_object: dict[str, list[tuple[Case, str]]] = {}
    for plan in plans:
        for case in plan.cases:
            by_object.setdefault(plan.program.object, []).append((case, plan.program.object))
    for index, (obj, cases) in enumerate(by_object.items(), 1):
        progress(f"[{index}/{len(by_object)}] host: {os.path.basename(obj)} ({len(cases)} cases)")
        batch = host_runner.run_cases(
            loader, cases, timeout=10 + HOST_TIMEOUT_PER_CASE * len(cases)
        )
        observations.update(batch.observations)
        report.runs.append(
            RunFigures(
                "host", (obj,), len(cases), batch.wall, batch.peak_rss_kb, None, batch.problem
            )
        )


def _run_guest(
    loader: Path,
    kernel: str | None,
    plans: list[ProgramPlan],
    report: Report,
    observations: dict[int, Observation],
    progress: Callable[[str], None],
) -> None:
    from secl.verify import guest

    qemu, guest_kernel, busybox = find_qemu(), find_kernel(kernel), find_busybox()
    if isinstance(qemu, Skip) or isinstance(guest_kernel, Skip) or isinstance(busybox, Skip):
        pieces = (qemu, guest_kernel, busybox)
        report.skips.extend(("guest", p) for p in pieces if isinstance(p, Skip))
        return
    cases = [(case, plan.program.object) for plan in plans for case in plan.cases]
    objects = tuple(dict.fromkeys(plan.program.object for plan in plans))
    run = guest.run_cases(
        qemu, guest_kernel, busybox, loader, cases,
        timeout=GUEST_TIMEOUT + GUEST_TIMEOUT_PER_CASE * len(cases), say=progress,
    )  # fmt: skip
    observations.update(run.batch.observations)
    report.runs.append(
        RunFigures(
            "guest", objects, len(cases), run.batch.wall, run.batch.peak_rss_kb,
            f"{run.accel} ({run.accel_reason})", run.batch.problem,
        )
    )  # fmt: skip
