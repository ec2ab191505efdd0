"""What a kernel's lists predict for a kprobe program's attach (SECL116, SECL302), put to the
test by `secl verify --kernel-functions FILE --kprobe-blacklist FILE`.

- A target missing from available_filter_functions fails as written (EINVAL when ftrace
  cannot trace it: kernel/trace/trace_kprobe.c: within_notrace_func(); ENOENT when the kernel
  has no such function: kernel/kprobes.c: register_kprobe()) and upgraded (ESRCH:
  kernel/trace/ftrace.c: ftrace_lookup_symbols()).
- A target on the kprobe blacklist fails as a classic kprobe (EINVAL: kernel/kprobes.c:
  within_kprobe_blacklist()) and, when traceable, attaches upgraded (the fprobe behind a
  multi-kprobe does not consult the blacklist).

The as-written and upgraded cases of such a program then expect those answers, and the
upgraded one is judged on its own (its control, the as-written case, fails by design).
"""

from __future__ import annotations

from dataclasses import replace

from secl.kernel import KernelLists
from secl.verify.cases import Expect, ProgramPlan

ABSENT = "absent"
BLACKLISTED = "blacklisted"


def kernel_verdict(function: str, lists: KernelLists) -> str | None:
    """ABSENT, BLACKLISTED or None (nothing the lists say stops the attach)."""
    from secl.kernel import kprobe_target

    target = kprobe_target(f"kprobe/{function}")
    names = target.candidates if target is not None else (function,)
    if lists.functions is not None and not any(n in lists.functions for n in names):
        return ABSENT
    if lists.blacklist is not None and any(n in lists.blacklist for n in names):
        return BLACKLISTED
    return None


def apply_kernel_lists(plan: ProgramPlan, lists: KernelLists) -> None:
    """Rewrite the as-written and upgraded cases of a kprobe program whose target the lists
    judge (kprobe targets only: the cases attach uprobes to the loader's own function)."""
    if plan.group != "kprobe" or not plan.cases:
        return
    written = plan.cases[0]
    function = str(written.fields.get("func", ""))
    verdict = kernel_verdict(function, lists) if function else None
    if verdict is None:
        return
    multi = written.expect.link_type == "KPROBE_MULTI"
    for index, case in enumerate(plan.cases):
        if case.label == "as written":
            if verdict == ABSENT:
                expect = _multi_absent() if multi else _classic_absent()
                why = f"`{function}` is not in the kernel's traceable functions"
            elif multi:
                continue  # a multi-kprobe does not consult the blacklist
            else:
                expect = Expect("EINVAL")
                why = f"`{function}` is on the kprobe blacklist: a classic kprobe is refused"
            plan.cases[index] = replace(case, expect=expect, why=why, code="SECL116",
                                        baseline=False)  # fmt: skip
        elif case.label == "upgraded":
            if verdict == ABSENT:
                expect = Expect("ESRCH")
                why = f"`{function}` is not in ftrace's table: the multi-kprobe is refused"
                code = "SECL116"
            else:
                expect = Expect("ok", "KPROBE_MULTI", case.expect.hits)
                why = f"`{function}` is blacklisted but traceable: the multi-kprobe attaches"
                code = "SECL302"
            plan.cases[index] = replace(case, expect=expect, why=why, code=code, control=None)
    origin = (lists.functions or lists.blacklist).origin  # type: ignore[union-attr]
    shown = "not in the kernel's traceable functions" if verdict == ABSENT else "blacklisted"
    plan.notes.append(f"kernel lists ({origin}): `{function}` is {shown}")


def _multi_absent() -> Expect:
    """A kprobe.multi section naming one function ftrace does not have. libbpf passes an
    exact name to the kernel (ESRCH); older releases match it against the kernel's list
    themselves and find nothing (ENOENT): libbpf.c: bpf_program__attach_kprobe_multi_opts()."""
    return Expect(
        "ESRCH", meaning="libbpf passes the name to the kernel, which has no such function",
        or_else=(Expect("ENOENT", meaning="this libbpf matches the name itself and finds none"),),
    )  # fmt: skip


def _classic_absent() -> Expect:
    """A classic kprobe on a function outside available_filter_functions: the answer depends
    on whether this kernel has the function at all."""
    return Expect(
        "EINVAL", meaning="the kernel has the function, but ftrace cannot trace it (notrace)",
        or_else=(Expect("ENOENT", meaning="the kernel has no such function"),),
    )  # fmt: skip
