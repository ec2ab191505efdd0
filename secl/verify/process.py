"""Child processes with a deadline, killed by their PID, with their wall time and peak RSS.

A paused QEMU never exits on its own (runtime-verifier notes: a KVM emulation failure leaves
it alive), and a loader can hang in a probe; so every child is waited for with WNOHANG until
its deadline, then killed with SIGKILL by its PID — also on Ctrl-C. os.wait4 gives the
child's own rusage, so the figures are per run, not the maximum over all children.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

POLL = 0.02


@dataclass(frozen=True, slots=True)
class Finished:
    """How a child process ended, with its wall time and peak memory."""

    returncode: int  # negative: killed by that signal
    wall: float  # seconds
    peak_rss_kb: int
    timed_out: bool
    stopped_early: bool = False  # `stop` asked for it


def run(
    cmd: Sequence[str],
    *,
    stdout_path: str,
    stderr_path: str,
    timeout: float,
    stop: Callable[[], bool] | None = None,
    started: Callable[[int], None] | None = None,
) -> Finished:
    """Run `cmd` with its output in files until it exits, `timeout` passes or `stop()` says
    so; a child still running then is killed by its PID. `started` gets the PID at once."""
    start = time.monotonic()
    # Ctrl-C waits until the PID is known, so that no child is left without its killer. The
    # child inherits the blocked mask: the loader clears it (loader.c: main); QEMU is only
    # ever stopped by its PID here.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        if started is not None:
            started(proc.pid)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    timed_out = stopped = False
    status = rusage = None
    try:
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.monotonic() - start > timeout:
                timed_out = True
            elif stop is not None and stop():
                stopped = True
            if timed_out or stopped:
                os.kill(proc.pid, signal.SIGKILL)
                _, status, rusage = os.wait4(proc.pid, 0)
                break
            time.sleep(POLL)
    except BaseException:  # Ctrl-C, or anything else: the child does not outlive us
        try:
            os.kill(proc.pid, signal.SIGKILL)
            os.wait4(proc.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
    return Finished(
        returncode=proc.returncode,
        wall=time.monotonic() - start,
        peak_rss_kb=int(rusage.ru_maxrss) if rusage is not None else 0,
        timed_out=timed_out,
        stopped_early=stopped,
    )
