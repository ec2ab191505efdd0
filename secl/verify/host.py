"""Runs cases on the running kernel, as root, with the static loader.

The loader releases each case's link, perf event and tracefs probe before the next one. What
only a killed loader can leave behind are libbpf's legacy tracefs probes (libbpf.c:
gen_probe_legacy_event_name names them libbpf_<pid>_<func>_0x<offset>_<n>; the kernel drops
perf events and links with the process's fds, but not tracefs entries): they are removed here
by that pid, on every way out. tracefs is mounted only when a case needs it (a LEGACY attach
mode) and unmounted again if secl mounted it.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from secl.verify import process
from secl.verify.cases import Case, Observation

TRACEFS = Path("/sys/kernel/tracing")
PROBE_EVENT_FILES = ("kprobe_events", "uprobe_events")


@dataclass(frozen=True, slots=True)
class BatchRun:
    """What one loader (or guest) run gave back."""

    observations: dict[int, Observation]
    wall: float
    peak_rss_kb: int
    problem: str | None  # why results may be missing


def parse_results(lines: Sequence[str]) -> dict[int, Observation]:
    out: dict[int, Observation] = {}
    for line in lines:
        line = line.strip().replace("\r", "")
        start = line.find('{"id":')
        if start < 0:
            continue
        try:
            data = json.loads(line[start:])
        except json.JSONDecodeError:
            continue  # cut by a kernel message on the console: that case has no result
        out[int(data["id"])] = Observation.from_json(data)
    return out


def tracefs_mounted() -> bool:
    return (TRACEFS / "uprobe_events").exists() or (TRACEFS / "kprobe_events").exists()


@contextmanager
def tracefs_if_needed(needed: bool) -> Iterator[None]:
    mounted_here = False
    if needed and not tracefs_mounted():
        proc = subprocess.run(
            ["mount", "-t", "tracefs", "tracefs", str(TRACEFS)], capture_output=True, check=False
        )
        mounted_here = proc.returncode == 0
    try:
        yield
    finally:
        if mounted_here:
            subprocess.run(["umount", str(TRACEFS)], capture_output=True, check=False)


def leftover_probes(pid: int | None = None) -> list[str]:
    """libbpf's legacy probe events in tracefs (of one loader pid, or of any)."""
    prefix = f"libbpf_{pid}_" if pid is not None else "libbpf_"
    found = []
    for name in PROBE_EVENT_FILES:
        try:
            text = (TRACEFS / name).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            # "p:kprobes/libbpf_123_do_nanosleep_0x0_0 do_nanosleep"
            event = line.split()[0].split(":", 1)[-1] if line.strip() else ""
            if event.split("/")[-1].startswith(prefix):
                found.append(f"{name}:{event}")
    return found


def remove_probes(pid: int, patience: float = 5.0) -> list[str]:
    """Remove the loader's legacy probes; returns those that could not be removed. Retried
    for a while: a probe whose perf event is still being released is busy (EBUSY from
    kernel/trace/trace_uprobe.c: unregister_trace_uprobe)."""
    end = time.monotonic() + patience
    while True:
        left = leftover_probes(pid)
        for entry in left:
            name, event = entry.split(":", 1)
            # os.write, not open(.., "a"): Python seeks to the end of an appended file, which
            # tracefs' probe_events files refuse with EINVAL
            try:
                fd = os.open(TRACEFS / name, os.O_WRONLY | os.O_APPEND)
                try:
                    os.write(fd, f"-:{event}\n".encode())
                finally:
                    os.close(fd)
            except OSError:
                pass
        left = leftover_probes(pid)
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.05)


def run_cases(loader: Path, cases: list[tuple[Case, str]], timeout: float) -> BatchRun:
    """Run (case, object path) pairs in one loader process."""
    with tempfile.TemporaryDirectory(prefix="secl-verify-") as tmp:
        case_file = Path(tmp) / "cases"
        case_file.write_text("".join(c.loader_line(obj) + "\n" for c, obj in cases))
        out, err = Path(tmp) / "out", Path(tmp) / "err"
        legacy = any(c.fields.get("mode") == 1 for c, _ in cases)
        with tracefs_if_needed(legacy):
            pid_box: list[int] = []
            try:
                finished = process.run(
                    [str(loader), str(case_file)],
                    stdout_path=str(out),
                    stderr_path=str(err),
                    timeout=timeout,
                    started=pid_box.append,
                )
            finally:
                stuck = [p for pid in pid_box for p in remove_probes(pid)]
        observations = parse_results(out.read_text(errors="replace").splitlines())
    problem = None
    if stuck:
        problem = f"could not remove tracefs probes {', '.join(stuck)}"
    elif finished.timed_out:
        problem = f"the loader did not finish within {timeout:.0f} s and was killed"
    elif finished.returncode != 0:
        problem = f"the loader exited with {finished.returncode}"
    return BatchRun(observations, finished.wall, finished.peak_rss_kb, problem)
