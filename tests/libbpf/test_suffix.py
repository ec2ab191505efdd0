"""Suffix grammars, as libbpf's attach functions parse them."""

from __future__ import annotations

import pytest

from secl.libbpf import lookup_any
from secl.libbpf.suffix import (
    SuffixProblem,
    check_suffix,
    parse_kprobe,
    parse_uprobe,
    parse_uprobe_multi,
    parse_usdt,
    scan_long,
)


def problems(name: str) -> list[SuffixProblem]:
    found = lookup_any(name)
    assert found is not None, name
    return check_suffix(found)


def kinds(name: str) -> list[tuple[str, str]]:
    return [(problem.kind, problem.severity) for problem in problems(name)]


VALID = [
    # bare names: valid, attached by hand
    "kprobe",
    "kretprobe",
    "uprobe",
    "uretprobe.s",
    "kprobe.multi",
    "kprobe.session",
    "uprobe.multi",
    "ksyscall",
    "usdt",
    "tp",
    "tracepoint.s",
    "raw_tp",
    "raw_tracepoint.w",
    "fentry.multi",
    "struct_ops",
    # complete names
    "kprobe/do_unlinkat",
    "kprobe/do_sys_open.isra.0",
    "kprobe/f+16",
    "kprobe/f+0x10",
    "kprobe/f+020",
    "kretprobe/f",
    "kretprobe/f+0",
    "?kprobe/f",
    "uprobe//usr/lib/libc.so.6:malloc",
    "uprobe/libc.so.6:malloc+0x10",
    "uprobe//bin/x:sym@@LIB_1.0",
    "uprobe//bin/x:sym@LIB_1.0",
    "uprobe/./relative/bin:f",
    "uprobe//app.apk!/lib/libfoo.so:f",
    "uretprobe//bin/x:f",
    "uretprobe//bin/x:f+0",
    "uprobe.s//bin/x:f",
    "uprobe.multi//bin/x:f*",
    "uretprobe.multi.s/libc.so.6:mal?oc",
    "uprobe.session//bin/x:f",
    "kprobe.multi/tcp_*",
    "kretprobe.multi/vfs_?ead",
    "kprobe.session/bpf_fentry_test*",
    "ksyscall/openat",
    "kretsyscall/bpf",
    "usdt//usr/lib/libc.so.6:libc:setjmp",
    "usdt/libc.so.6:libc:setjmp",
    "tp/sched/sched_switch",
    "tracepoint/syscalls/sys_enter_openat",
    "tp.s/syscalls/sys_enter_openat",
    "raw_tp/sched_switch",
    "raw_tracepoint.s/sys_enter",
    "raw_tp.w/bpf_testmod_test_writable_bare",
    "tp_btf/sched_switch",
    "tp_btf.s/sys_enter",
    "fentry/do_unlinkat",
    "fentry/bpf_testmod:bpf_testmod_fentry_test1",
    "fentry/vmlinux:do_unlinkat",
    "fexit.s/f",
    "fmod_ret/security_x",
    "fsession/f",
    "lsm/file_open",
    "lsm.s/bprm_committed_creds",
    "lsm_cgroup/socket_bind",
    "iter/task",
    "iter.s/task_file",
    "fentry.multi/bpf_fentry_test*",
    "fexit.multi/bpf_testmod:bpf_testmod_fentry_test?",
    "fsession.multi.s/f",
    "xdp",
    "tc/ingress",
    "cgroup/connect4",
    "syscall",
    "kprobe.single/f",
    "uprobe.single//bin/x:f+8",
]


@pytest.mark.parametrize("name", VALID)
def test_valid_suffixes(name: str) -> None:
    assert problems(name) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # attach_kprobe
        ("kprobe/", [("empty-suffix", "error")]),
        ("kretprobe/", [("empty-suffix", "error")]),
        ("kprobe//x", [("invalid-symbol", "error")]),
        ("kprobe/:x", [("invalid-symbol", "error")]),
        ("kprobe/nf_conntrack:nf_ct_delete", [("truncated-symbol", "warning")]),
        ("kprobe/foo-bar", [("truncated-symbol", "warning")]),
        ("kprobe/f+x", [("truncated-symbol", "warning")]),
        ("kprobe/f+16abc", [("truncated-symbol", "warning")]),
        ("kprobe/f+-4", [("negative-offset", "error")]),
        ("kretprobe/f+-4", [("negative-offset", "error")]),
        ("kretprobe/f+8", [("offset-not-allowed", "error")]),
        ("kretprobe/f+0x10", [("offset-not-allowed", "error")]),
        ("kretprobe.single/f+8", [("offset-not-allowed", "error")]),
        # attach_ksyscall
        ("ksyscall/", [("empty-suffix", "error")]),
        ("ksyscall/__x64_sys_openat", [("redundant-prefix", "error")]),
        ("kretsyscall/__arm64_sys_openat", [("redundant-prefix", "error")]),
        ("ksyscall/__se_sys_openat", [("redundant-prefix", "error")]),
        ("ksyscall/sys_openat", [("redundant-prefix", "error")]),
        # attach_uprobe
        ("uprobe/", [("empty-suffix", "warning")]),
        ("uprobe/:malloc", [("empty-binary", "warning")]),
        ("uprobe/libc.so.6", [("missing-function", "error")]),
        ("uprobe/libc.so.6:", [("missing-function", "error")]),
        ("uprobe//bin/x", [("missing-function", "error")]),
        ("uprobe.s//bin/x", [("missing-function", "error")]),
        ("uprobe/usr/lib/libc.so.6:malloc", [("relative-path", "warning")]),
        ("uretprobe//bin/x:f+4", [("offset-not-allowed", "error")]),
        ("uretprobe.s//bin/x:f+4", [("offset-not-allowed", "error")]),
        ("uretprobe.single//bin/x:f+4", [("offset-not-allowed", "error")]),
        ("uprobe//bin/x:f+-4", [("negative-offset", "warning")]),
        ("uprobe//bin/x:malloc+x", [("offset-not-parsed", "warning")]),
        ("uprobe//bin/x:malloc+4x", [("offset-not-parsed", "warning")]),
        # attach_uprobe_multi
        ("uprobe.multi/", [("empty-suffix", "warning")]),
        ("uprobe.multi/:f*", [("empty-binary", "warning")]),
        ("uprobe.multi//bin/x", [("missing-pattern", "error")]),
        ("uprobe.session.s//bin/x:", [("missing-pattern", "error")]),
        ("uprobe.multi//bin/x:f+0x10", [("offset-not-allowed", "error")]),
        ("uprobe.multi/usr/bin/x:f", [("relative-path", "warning")]),
        # attach_kprobe_multi / attach_kprobe_session
        ("kprobe.multi/", [("empty-suffix", "error")]),
        ("kprobe.session/", [("empty-suffix", "error")]),
        ("kretprobe.multi/-x", [("invalid-pattern", "error")]),
        ("kprobe.multi/bpf_testmod:f*", [("truncated-symbol", "warning")]),
        # attach_usdt
        ("usdt/", [("empty-suffix", "error")]),
        ("usdt//bin/x:prov", [("usdt-fields", "error")]),
        ("usdt//bin/x", [("usdt-fields", "error")]),
        ("usdt//bin/x::name", [("usdt-fields", "error")]),
        ("usdt//bin/x:p:n:extra", [("usdt-extra-field", "warning")]),
        ("usdt/usr/bin/x:p:n", [("relative-path", "warning")]),
        ("usdt.s", [("usdt-sleepable-never-attaches", "error")]),
        ("usdt.s//bin/x:p:n", [("usdt-sleepable-never-attaches", "error")]),
        ("?usdt.s/", [("usdt-sleepable-never-attaches", "error")]),
        # attach_tp
        ("tp/", [("empty-suffix", "error")]),
        ("tracepoint.s/", [("empty-suffix", "error")]),
        ("tp/sched_switch", [("tracepoint-category-missing", "error")]),
        ("tp//sched_switch", [("tracepoint-category-missing", "error")]),
        ("tp/sched/", [("tracepoint-name-missing", "error")]),
        ("tp/sched/a/b", [("tracepoint-extra-component", "error")]),
        # attach_raw_tp
        ("raw_tp/", [("empty-suffix", "error")]),
        ("raw_tracepoint.w/", [("empty-suffix", "error")]),
        ("raw_tp/sched/sched_switch", [("raw-tp-category", "error")]),
        ("raw_tp.s/syscalls/sys_enter", [("raw-tp-category", "error")]),
        # BTF targets, resolved at load
        ("fentry", [("btf-target-required", "warning")]),
        ("fmod_ret.s", [("btf-target-required", "warning")]),
        ("tp_btf", [("btf-target-required", "warning")]),
        ("lsm", [("btf-target-required", "warning")]),
        ("iter", [("btf-target-required", "warning")]),
        ("lsm_cgroup", [("btf-target-required", "warning")]),
        ("freplace", [("btf-target-required", "warning")]),
        ("freplace/global_func", [("btf-target-required", "warning")]),
        ("fentry/", [("empty-suffix", "error")]),
        ("fexit/bpf_testmod:", [("empty-suffix", "error")]),
        ("lsm/bpf_lsm_file_open", [("redundant-prefix", "error")]),
        ("lsm_cgroup/bpf_lsm_socket_bind", [("redundant-prefix", "error")]),
        ("iter/bpf_iter_task", [("redundant-prefix", "error")]),
        ("tp_btf/btf_trace_sched_switch", [("redundant-prefix", "error")]),
        ("tp_btf/sched/sched_switch", [("raw-tp-category", "error")]),
        ("fentry/a/b", [("invalid-btf-name", "error")]),
        # attach_tracing_multi
        ("fentry.multi/", [("empty-suffix", "error")]),
        ("fexit.multi.s/-", [("invalid-pattern", "error")]),
        ("fsession.multi/a-b", [("truncated-symbol", "warning")]),
        # struct_ops: the suffix has no effect
        ("struct_ops/foo", [("suffix-ignored", "info")]),
        ("struct_ops.s/foo", [("suffix-ignored", "info")]),
    ],
)
def test_problems(name: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(name) == expected


@pytest.mark.parametrize(
    ("name", "attaches_to"),
    [
        ("kprobe/nf_conntrack:nf_ct_delete", "nf_conntrack"),
        ("kprobe/foo-bar", "foo"),
        ("kprobe/f+16abc", "f+0x10"),
        ("kprobe.multi/bpf_testmod:f*", "bpf_testmod"),
        ("raw_tp/sched/sched_switch", "sched/sched_switch"),
        ("lsm/bpf_lsm_file_open", "bpf_lsm_bpf_lsm_file_open"),
        ("ksyscall/__x64_sys_openat", "__x64_sys___x64_sys_openat"),
        ("uprobe//bin/x:malloc+x", "malloc+x"),
    ],
)
def test_attaches_to(name: str, attaches_to: str) -> None:
    assert problems(name)[0].attaches_to == attaches_to


def test_messages_are_one_line_and_phases() -> None:
    for name in ("kprobe/", "uprobe/libc.so.6", "fentry/", "usdt.s", "tp/sched", "fentry"):
        for problem in problems(name):
            assert problem.message and "\n" not in problem.message
    assert problems("fentry/")[0].phase == "load"
    assert problems("kprobe/")[0].phase == "attach"
    assert "nf_conntrack" in problems("kprobe/nf_conntrack:foo")[0].message


# --- the parsers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16", (16, 2)),
        ("0x10", (16, 4)),
        ("0X1f", (31, 4)),
        ("020", (16, 3)),
        ("0", (0, 1)),
        ("08", (0, 1)),  # octal stops at 8
        ("-4", (-4, 2)),
        ("+4", (4, 2)),
        (" 7", (7, 2)),
        ("12ab", (12, 2)),
        ("0xg", (0, 1)),
        ("", None),
        ("x", None),
        ("-", None),
        ("+", None),
    ],
)
def test_scan_long(text: str, expected: tuple[int, int] | None) -> None:
    assert scan_long(text) == expected


@pytest.mark.parametrize(
    ("suffix", "symbol", "offset", "ignored"),
    [
        ("do_unlinkat", "do_unlinkat", 0, ""),
        ("f+0x10", "f", 16, ""),
        ("f.isra.0+8", "f.isra.0", 8, ""),
        ("mod:f", "mod", 0, ":f"),
        ("f+x", "f", 0, "+x"),
        ("/x", "", 0, "/x"),
        ("", "", 0, ""),
    ],
)
def test_parse_kprobe(suffix: str, symbol: str, offset: int, ignored: str) -> None:
    spec = parse_kprobe(suffix)
    assert (spec.symbol, spec.offset, spec.ignored) == (symbol, offset, ignored)


@pytest.mark.parametrize(
    ("suffix", "fields", "binary", "function", "offset"),
    [
        (None, 1, None, None, 0),
        ("", 1, None, None, 0),
        (":f", 1, None, None, 0),
        ("bin", 2, "bin", None, 0),
        ("bin:", 2, "bin", None, 0),
        ("/usr/bin/x:main", 3, "/usr/bin/x", "main", 0),
        ("bin:f+0x10", 3, "bin", "f", 16),
        ("bin:a:b", 3, "bin", "a:b", 0),
        ("bin:f+x", 3, "bin", "f+x", 0),
        ("bin:f@@V+4", 3, "bin", "f@@V", 4),
    ],
)
def test_parse_uprobe(
    suffix: str | None, fields: int, binary: str | None, function: str | None, offset: int
) -> None:
    spec = parse_uprobe(suffix)
    assert (spec.fields, spec.binary, spec.function, spec.offset) == (
        fields,
        binary,
        function,
        offset,
    )


def test_parse_uprobe_multi_keeps_the_glob() -> None:
    spec = parse_uprobe_multi("/bin/x:f+0x10")
    assert (spec.fields, spec.function, spec.offset) == (3, "f+0x10", 0)


@pytest.mark.parametrize(
    ("section", "fields", "path", "provider", "name", "ignored"),
    [
        ("usdt//bin/x:p:n", 3, "/bin/x", "p", "n", ""),
        ("usdt//bin/x:p:n:z", 3, "/bin/x", "p", "n", ":z"),
        ("usdt//bin/x:p", 2, "/bin/x", "p", None, ""),
        ("usdt/", 0, None, None, None, ""),
        ("usdt.s//bin/x:p:n", 0, None, None, None, ""),
        ("usdt/b::n", 1, "b", None, None, ""),
    ],
)
def test_parse_usdt(
    section: str,
    fields: int,
    path: str | None,
    provider: str | None,
    name: str | None,
    ignored: str,
) -> None:
    spec = parse_usdt(section)
    assert (spec.fields, spec.path, spec.provider, spec.name, spec.ignored) == (
        fields,
        path,
        provider,
        name,
        ignored,
    )
