"""Kprobe targets judged by a kernel's own lists (secl/kernel.py, secl/analysis/kernel.py):
SECL116 (absent from available_filter_functions, or blacklisted for a classic kprobe) and
SECL302 (an upgraded kprobe on a blacklisted, traceable target). The lists are fixture
files written here; the guest kernel's real lists are in tests/verify/test_kernel_lists.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import secl.kernel
from secl.analysis.run import run_rules
from secl.api import load
from secl.config import Config, ConfigError, load_config
from secl.findings import Finding
from secl.kernel import kprobe_target, parse_blacklist, parse_functions
from tests.catalogue_harness import write_files

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = """\
do_unlinkat
do_rmdir
tcp_sendmsg.isra.0
tcp_sendmsg_locked
__x64_sys_openat
__do_sys_getpid
notifier_call_chain
nf_conntrack_in [nf_conntrack]
"""
BLACKLIST = """\
0xffffffff81123450-0xffffffff811234d0\tnotifier_call_chain
0xffffffff81200000-0xffffffff81200040\tdo_int3
0x0000000000000000-0x0000000000000000\tsome_module_fn [some_module]
"""


def _run(tmp_path: Path, source: str, **config: object) -> list[Finding]:
    write_files(tmp_path, {"probe.bpf.c": source})
    (tmp_path / "functions").write_text(FUNCTIONS)
    (tmp_path / "blacklist").write_text(BLACKLIST)
    settings = {"kernel_functions": str(tmp_path / "functions"), **config}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        run = load(["."], Config(root=str(tmp_path), select=("ALL",), **settings))  # type: ignore[arg-type]
        return [f for f in run_rules(run.project) if f.code in ("SECL116", "SECL302")]
    finally:
        os.chdir(cwd)


def _codes(findings: list[Finding]) -> list[tuple[str, str | None]]:
    return sorted((f.code, f.program) for f in findings)


def test_list_formats() -> None:
    functions = parse_functions(
        "do_unlinkat\nnf_conntrack_in [nf_conntrack]\n"
        "ffffffff81000000 addr_fn\nffffffff81000010 mod_fn [mod]\n\n",
        "f",
    )
    assert functions.names == {"do_unlinkat", "nf_conntrack_in", "addr_fn", "mod_fn"}
    assert functions.modules == {"nf_conntrack_in": "nf_conntrack", "mod_fn": "mod"}
    blacklist = parse_blacklist(BLACKLIST, "b")
    assert blacklist.names == {"notifier_call_chain", "do_int3", "some_module_fn"}


def test_targets() -> None:
    assert kprobe_target("kprobe/do_unlinkat+0x10").function == "do_unlinkat"  # type: ignore[union-attr]
    assert kprobe_target("kretprobe.single/x").route == "classic"  # type: ignore[union-attr]
    assert kprobe_target("kprobe.multi/tcp_*") is None  # a pattern
    assert kprobe_target("kprobe.multi/tcp_sendmsg").route == "multi"  # type: ignore[union-attr]
    assert kprobe_target("kprobe") is None and kprobe_target("kprobe/") is None
    assert kprobe_target("tracepoint/a/b") is None
    syscall = kprobe_target("ksyscall/openat")
    assert syscall is not None and "__x64_sys_openat" in syscall.candidates


def test_missing_target_is_reported(tmp_path: Path) -> None:
    found = _run(
        tmp_path,
        """
SEC("kprobe/do_renameat2")
int BPF_KPROBE(on_rename) { return 0; }

SEC("kprobe.multi/vfs_fsync")
int on_fsync(void *ctx) { return 0; }
""",
    )
    assert _codes(found) == [("SECL116", "on_fsync"), ("SECL116", "on_rename")]
    message = found[0].message
    assert "not in the traceable functions (available_filter_functions)" in message
    assert "module that was not loaded when the list was taken" in message


def test_present_targets_and_module_entries_are_not(tmp_path: Path) -> None:
    found = _run(
        tmp_path,
        """
SEC("kprobe/do_unlinkat")
int BPF_KPROBE(a) { return 0; }

SEC("kretprobe/do_rmdir+0")
int BPF_KPROBE(b) { return 0; }

SEC("kprobe/nf_conntrack_in")
int BPF_KPROBE(c) { return 0; }

SEC("ksyscall/openat")
int BPF_KSYSCALL(d) { return 0; }

SEC("ksyscall/getpid")
int BPF_KSYSCALL(g) { return 0; }

SEC("kprobe/__x64_sys_getpid")
int BPF_KPROBE(h) { return 0; }

SEC("kprobe.multi/do_*")
int e(void *ctx) { return 0; }

SEC("kprobe")
int f(void *ctx) { return 0; }
""",
    )
    assert found == []


def test_a_target_only_under_a_compiler_suffix_suggests_it_first(tmp_path: Path) -> None:
    found = _run(
        tmp_path,
        """
SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(on_send) { return 0; }
""",
    )
    assert _codes(found) == [("SECL116", "on_send")]
    assert found[0].message.endswith(
        "did you mean `tcp_sendmsg.isra.0` or `tcp_sendmsg_locked`?"
    ) or found[0].message.endswith("did you mean `tcp_sendmsg.isra.0`?")
    fix = found[0].fix
    assert fix is not None and fix.applicability == "unsafe"
    assert fix.edits[0].content == '"kprobe/tcp_sendmsg.isra.0"'


def test_missing_syscall_wrapper(tmp_path: Path) -> None:
    found = _run(
        tmp_path,
        """
SEC("ksyscall/openat3")
int BPF_KSYSCALL(on_open) { return 0; }
""",
    )
    assert _codes(found) == [("SECL116", "on_open")]
    assert "syscall `openat3` has no wrapper" in found[0].message
    assert "`openat`" in found[0].message  # did you mean, as a syscall name


def test_programs_attached_by_hand_are_not_judged(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "probe.c": """
#include "probe.skel.h"
int main(void)
{
	struct probe *skel = probe__open_and_load();
	bpf_program__attach_kprobe(skel->progs.on_rename, false, "do_unlinkat");
	return 0;
}
"""
        },
    )
    found = _run(
        tmp_path,
        """
SEC("kprobe/do_renameat2")
int BPF_KPROBE(on_rename) { return 0; }
""",
    )
    assert found == []


def test_blacklisted_targets(tmp_path: Path) -> None:
    source = """
SEC("kprobe/notifier_call_chain")
int BPF_KPROBE(upgraded) { return 0; }

SEC("kprobe.single/notifier_call_chain")
int BPF_KPROBE(single) { return 0; }

SEC("kprobe.multi/notifier_call_chain")
int multi(void *ctx) { return 0; }

SEC("kprobe/do_int3")
int BPF_KPROBE(untraceable) { return 0; }
"""
    blacklist = str(tmp_path / "blacklist")
    found = _run(tmp_path, source, kprobe_blacklist=blacklist)
    assert _codes(found) == [
        ("SECL116", "single"),  # a classic kprobe: refused
        ("SECL116", "untraceable"),  # not traceable at all
        ("SECL302", "upgraded"),  # refused today, attaches upgraded
    ]
    single = next(f for f in found if f.program == "single")
    assert "kprobe blacklist" in single.message and "EINVAL" in single.message
    assert "`kprobe.multi/notifier_call_chain`" in single.message
    # Under a released libbpf nothing is upgraded: the kprobe is classic today.
    found = _run(tmp_path, source, kprobe_blacklist=blacklist, target_libbpf="1.7")
    assert ("SECL116", "upgraded") in _codes(found)
    assert ("SECL302", "upgraded") in _codes(found)
    # The blacklist alone judges classic kprobes; SECL302 needs both lists.
    found = _run(tmp_path, source, kprobe_blacklist=blacklist, kernel_functions=None)
    assert _codes(found) == [("SECL116", "single")]


def test_host_lists_that_cannot_be_read_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(secl.kernel, "TRACEFS", (str(tmp_path / "no-tracefs"),))
    monkeypatch.setattr(secl.kernel, "BLACKLIST", str(tmp_path / "no-debugfs" / "blacklist"))
    write_files(tmp_path, {"probe.bpf.c": 'SEC("kprobe/nope")\nint f(void *ctx) { return 0; }\n'})
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        config = Config(root=str(tmp_path), select=("ALL",), kernel_functions="host",
                        kprobe_blacklist="host")  # fmt: skip
        run = load(["."], config)
        findings = run_rules(run.project)
    finally:
        os.chdir(cwd)
    assert [f.code for f in findings] == []
    lines = [str(p) for p in run.problems]
    assert len(lines) == 2
    assert lines[0].startswith("secl: --kernel-functions host: cannot read tracefs: ")
    assert lines[0].endswith("kernel list rules (SECL116, SECL302) skipped")
    assert lines[1].startswith("secl: --kprobe-blacklist host: ")


def test_configuration_and_command_line(tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "functions").write_text("do_unlinkat\n")
    (tmp_path / ".secl.toml").write_text(
        'kernel-functions = "lists/functions"\nkprobe-blacklist = "host"\nobjects = false\n'
    )
    config = load_config(str(tmp_path / ".secl.toml"))
    assert config.kernel_functions == str(tmp_path / "lists" / "functions")
    assert config.kprobe_blacklist == "host"
    assert config.objects is False
    (tmp_path / ".secl.toml").write_text("objects = 1\n")
    with pytest.raises(ConfigError, match="`objects` must be a bool"):
        load_config(str(tmp_path / ".secl.toml"))
    (tmp_path / ".secl.toml").write_text("")
    (tmp_path / "probe.bpf.c").write_text('SEC("kprobe/gone")\nint f(void *ctx) { return 0; }\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def secl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "secl", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True)  # fmt: skip

    result = secl("check", "--kernel-functions", "missing", ".")
    assert result.returncode == 2
    assert "--kernel-functions missing: no such file" in result.stderr
    result = secl("check", "--output-format", "concise", "--kernel-functions",
                  "lists/functions", ".")  # fmt: skip
    assert result.returncode == 1
    assert "SECL116" in result.stdout and "`gone` is not in" in result.stdout
