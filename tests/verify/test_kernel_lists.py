"""SECL116 and SECL302 against the pinned guest kernel's own lists: the lists are read inside
the guest (tracefs available_filter_functions, debugfs kprobes/blacklist, /proc/kallsyms),
`secl check` judges the targets with them, and `secl verify` confirms the predictions in
that guest: a missing or notrace target fails as written and upgraded (ENOENT or EINVAL,
then ESRCH), a blacklisted but traceable one fails as written (EINVAL) and attaches upgraded.

The functions named here are the pinned kernel's (6.12.95+deb12-amd64); the first test
checks that its lists say what the others rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secl.kernel import parse_blacklist, parse_functions
from secl.verify import guest, toolchain
from tests.verify.conftest import (
    ROOT,
    Tools,
    _verify_run,
    guest_pieces,
    pinned_kernel,
    run_secl,
)

MISSING = "secl_no_such_function"
NOTRACE = "trace_clock_local"  # notrace (kernel/trace/trace_clock.c)
BLACKLISTED = "notifier_call_chain"  # NOKPROBE_SYMBOL (kernel/notifier.c), traceable
TRACEABLE = "do_nanosleep"

SOURCE = f"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("kprobe/{MISSING}")
int kp_missing(void *ctx) {{ return 0; }}

SEC("kprobe/{NOTRACE}")
int kp_notrace(void *ctx) {{ return 0; }}

SEC("kprobe/{BLACKLISTED}")
int kp_blacklisted(void *ctx) {{ return 0; }}

SEC("kprobe.single/{BLACKLISTED}")
int kp_single_blacklisted(void *ctx) {{ return 0; }}

SEC("kprobe.multi/{MISSING}")
int kpm_missing(void *ctx) {{ return 0; }}

SEC("kprobe/{TRACEABLE}")
int kp_fine(void *ctx) {{ return 0; }}

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def lists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The pinned guest kernel's lists, read inside it, as files."""
    guest_pieces()
    kernel = toolchain.find_kernel(str(pinned_kernel()))
    qemu, busybox = toolchain.find_qemu(), toolchain.find_busybox()
    assert not isinstance(kernel, toolchain.Skip)
    read = guest.read_kernel_lists(qemu, kernel, busybox)  # type: ignore[arg-type]
    assert read.problem is None, read.problem
    out = tmp_path_factory.mktemp("lists")
    paths = {
        "functions": out / "available_filter_functions",
        "blacklist": out / "kprobes_blacklist",
        "kallsyms": out / "kallsyms",
    }
    paths["functions"].write_text(read.functions)
    paths["blacklist"].write_text(read.blacklist)
    paths["kallsyms"].write_text(read.kallsyms)
    return paths


@pytest.fixture(scope="module")
def targets(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("targets")
    source = out / "targets.bpf.c"
    source.write_text(SOURCE)
    return source, tools.compile(source, out / "targets.bpf.o")


def test_the_lists_of_the_pinned_kernel(lists: dict[str, Path]) -> None:
    functions = parse_functions(lists["functions"].read_text(), "guest")
    blacklist = parse_blacklist(lists["blacklist"].read_text(), "guest")
    kallsyms = {line.split()[2] for line in lists["kallsyms"].read_text().splitlines()
                if len(line.split()) >= 3}  # fmt: skip
    assert len(functions.names) > 30000 and len(blacklist.names) > 300
    assert TRACEABLE in functions and TRACEABLE not in blacklist
    assert BLACKLISTED in functions and BLACKLISTED in blacklist
    assert NOTRACE in kallsyms and NOTRACE not in functions and NOTRACE not in blacklist
    assert MISSING not in kallsyms
    # The blacklist is read as root: real address ranges, not zeros.
    assert not lists["blacklist"].read_text().startswith("0x0000000000000000-")


def test_check_judges_the_targets_by_the_lists(
    lists: dict[str, Path], targets: tuple[Path, Path]
) -> None:
    source, _ = targets
    result = run_secl(
        "check", "--output-format", "json", "--extend-select", "SECL302", "--no-config",
        "--kernel-functions", str(lists["functions"]),
        "--kprobe-blacklist", str(lists["blacklist"]), str(source),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    found = sorted((f["program"], f["code"]) for f in json.loads(result.stdout))
    assert found == [
        ("kp_blacklisted", "SECL302"),
        ("kp_missing", "SECL116"),
        ("kp_notrace", "SECL116"),
        ("kp_single_blacklisted", "SECL116"),
        ("kpm_missing", "SECL116"),
    ]


def test_verify_confirms_them_in_the_guest(
    lists: dict[str, Path], targets: tuple[Path, Path]
) -> None:
    _, obj = targets
    run = _verify_run(
        str(obj), "--kernel", str(pinned_kernel()), "--require-runtime",
        "--kernel-functions", str(lists["functions"]),
        "--kprobe-blacklist", str(lists["blacklist"]),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr

    def seen(program: str, label: str) -> tuple[str, str | None, str]:
        case = run.case(program, label)
        observed = case["observed"] or {}
        return observed.get("attach"), observed.get("link_type"), case["verdict"]

    # missing: the kernel has no such function (register_kprobe), nor has ftrace
    assert seen("kp_missing", "as written") == ("ENOENT", None, "agrees")
    assert seen("kp_missing", "upgraded") == ("ESRCH", None, "agrees")
    # libbpf 1.4 matches the name against the kernel's list itself and finds none
    assert seen("kpm_missing", "as written") == ("ENOENT", None, "agrees")
    # notrace: the kernel has it, ftrace cannot trace it
    assert seen("kp_notrace", "as written") == ("EINVAL", None, "agrees")
    assert seen("kp_notrace", "upgraded") == ("ESRCH", None, "agrees")
    # blacklisted, traceable: refused as a classic kprobe, attached as a multi-kprobe
    assert seen("kp_blacklisted", "as written") == ("EINVAL", None, "agrees")
    assert seen("kp_blacklisted", "upgraded") == ("ok", "KPROBE_MULTI", "agrees")
    assert seen("kp_single_blacklisted", "as written") == ("EINVAL", None, "agrees")
    assert seen("kp_fine", "upgraded") == ("ok", "KPROBE_MULTI", "agrees")
    assert run.case("kp_blacklisted", "upgraded")["code"] == "SECL302"
    assert run.case("kp_missing", "upgraded")["code"] == "SECL116"


def test_without_the_lists_these_attaches_are_inconclusive(targets: tuple[Path, Path]) -> None:
    _, obj = targets
    run = _verify_run(str(obj), "--kernel", str(pinned_kernel()))
    assert run.returncode == 0, run.stderr
    assert run.case("kp_missing", "as written")["verdict"] == "inconclusive"
    assert run.case("kp_blacklisted", "upgraded")["verdict"] == "inconclusive"


def test_a_list_that_cannot_be_read_is_a_usage_error(targets: tuple[Path, Path]) -> None:
    _, obj = targets
    result = run_secl("verify", str(obj), "--kernel-functions", str(ROOT / "no-such-list"))
    assert result.returncode == 2
    assert "no-such-list" in result.stderr
