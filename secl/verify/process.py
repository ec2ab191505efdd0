"""Child processes with a deadline, killed by their PID, with their wall time and peak RSS.

A paused QEMU never exits on its own (runtime-verifier notes: a KVM emulation failure leaves
it alive), and a loader can hang in a probe; so every child is waited for with WNOHANG until
its deadline, then killed with SIGKILL by its PID — also on Ctrl-C, SIGTERM and SIGHUP.
os.wait4 gives the child's own rusage, so the figures are per run, not the maximum over all
children.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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


# Signals that stop secl: while a child is being started they wait (blocked), so that no child
# exists without its killer; afterwards each ends the wait loop with an exception (SIGINT:
# KeyboardInterrupt; SIGTERM and SIGHUP: secl.verify.Terminated, from run_verify's handlers).
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


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
    so; a child still running then is killed by its PID. `started` gets the PID at once.
    Whatever ends the wait (a signal's exception included), the child does not outlive it."""
    start = time.monotonic()
    proc: subprocess.Popen[bytes] | None = None
    reaped = False
    timed_out = stopped = False
    status = rusage = None
    # The child inherits the blocked mask: the loader clears it (loader.c: main); QEMU keeps
    # them blocked and is only ever stopped by its PID here.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        try:
            with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
                proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            if started is not None:
                started(proc.pid)
        finally:
            # a signal that came meanwhile raises here, inside the try that kills the child
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                reaped = True
                break
            if time.monotonic() - start > timeout:
                timed_out = True
            elif stop is not None and stop():
                stopped = True
            if timed_out or stopped:
                os.kill(proc.pid, signal.SIGKILL)
                _, status, rusage = os.wait4(proc.pid, 0)
                reaped = True
                break
            time.sleep(POLL)
    except BaseException:  # Ctrl-C, SIGTERM, SIGHUP or anything else
        if proc is not None and not reaped:
            _kill(proc.pid)
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
    return Finished(
        returncode=proc.returncode,
        wall=time.monotonic() - start,
        peak_rss_kb=int(rusage.ru_maxrss) if rusage is not None else 0,
        timed_out=timed_out,
        stopped_early=stopped,
    )


def _kill(pid: int) -> None:
    """SIGKILL the child and reap it; a second signal meanwhile must not leave it running."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like KeyboardInterrupt, so that every `finally` and
    `with` on the way out (child processes, temporary directories, tracefs probes) cleans up.
    A BaseException, so that no `except Exception` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Terminated in the main thread, as SIGINT raises
    KeyboardInterrupt (their default action would end secl at once and leave QEMU running
    and its temporary directory behind). A second one while secl cleans up is ignored."""
    stopping = False

    def handler(signum: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise Terminated(signum)

    # a signal ignored when secl started stays ignored (nohup secl verify ...)
    wanted = [s for s in (signal.SIGTERM, signal.SIGHUP) if signal.getsignal(s) != signal.SIG_IGN]
    previous = {s: signal.signal(s, handler) for s in wanted}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
