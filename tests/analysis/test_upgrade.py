"""The auto-upgrade analysis: every SECL2xx rule, SECL301, SECL002, and the traps of the
breakage catalogue that must stay silent. Fixtures carry `// ruleid:` / `// ok:` markers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from secl.analysis.run import run_rules
from secl.analysis.upgrade import RULE_META, analyse_upgrades
from secl.api import load
from secl.config import Config
from secl.findings import Finding
from tests.catalogue_harness import compare, markers, write_files

UPGRADE_CODES = sorted(RULE_META)


def check(
    root: Path, files: dict[str, str], paths: list[str] | None = None, **config
) -> tuple[list[Finding], object]:
    write_files(root, files)
    cfg = Config(root=str(root), select=("ALL",), **config)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        run = load(paths or ["."], cfg)
        return run_rules(run.project), analyse_upgrades(run.project)
    finally:
        os.chdir(cwd)


def flagged(
    findings: list[Finding], prefix: str = "SECL2"
) -> dict[tuple[str, str | None], set[str]]:
    out: dict[tuple[str, str | None], set[str]] = {}
    for f in findings:
        if f.code.startswith(prefix):
            out.setdefault((os.path.basename(f.path), f.program), set()).add(f.code)
    return out


def assert_markers(files: dict[str, str], findings: list[Finding]) -> None:
    errors = []
    codes = {c for text in files.values() for half in markers(text.lstrip("\n")) for _, c in half}
    for code in sorted(codes | {f.code for f in findings if f.code in RULE_META}):
        errors += compare(code, files, findings)
    assert not errors, "\n".join(errors)


# -- K4: offsets, two objects with the same program name ----------------------------------

TWO_OBJECTS = {
    "tracer.bpf.c": """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";
__u64 hits;

SEC("kprobe/do_unlinkat")   // ruleid: SECL201
int BPF_KPROBE(handle, int dfd, struct filename *name)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

SEC("kretprobe/do_unlinkat")   // ok: SECL201
int BPF_KRETPROBE(handle_ret, long ret)
{
	return 0;
}
""",
    "auditor.bpf.c": """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("kprobe/do_unlinkat")   // ok: SECL201
int handle(struct pt_regs *ctx)
{
	return 0;
}
""",
    "main.c": r"""
// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <bpf/libbpf.h>
#include "tracer.skel.h"
#include "auditor.skel.h"

#define BODY_OFFSET 0x1c   /* past the prologue */

struct ctx {
	struct tracer *tr;
	struct auditor *au;
	int verbose;
};

static int attach_all(struct ctx *c)
{
	LIBBPF_OPTS(bpf_kprobe_opts, body, .offset = BODY_OFFSET);
	LIBBPF_OPTS(bpf_kprobe_opts, entry);
	struct bpf_link *l1, *l2;

	entry.offset = 0;	/* explicit, still the function entry */
	l1 = bpf_program__attach_kprobe_opts(c->tr->progs.handle, "do_unlinkat", &body);
	l2 = bpf_program__attach_kprobe_opts(c->au->progs.handle, "do_unlinkat", &entry);
	c->tr->links.handle_ret =
		bpf_program__attach_kprobe(c->tr->progs.handle_ret, true, "do_unlinkat");
	if (!l1 || !l2)
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	struct ctx c = { .verbose = argc > 1 };

	c.tr = tracer__open_and_load();
	c.au = auditor__open_and_load();
	if (!c.tr || !c.au) {
		fprintf(stderr, "failed to open BPF skeletons\n");
		return 1;
	}
	return attach_all(&c) ? 1 : 0;
}
""",
}


def test_offset_flags_only_the_program_of_that_object(tmp_path: Path) -> None:
    findings, analysis = check(tmp_path, TWO_OBJECTS)
    assert flagged(findings) == {("tracer.bpf.c", "handle"): {"SECL201"}}
    assert_markers(TWO_OBJECTS, findings)
    (finding,) = [f for f in findings if f.code == "SECL201"]
    assert finding.span.start.row == 8
    assert {(os.path.basename(r.path), r.span.start.row) for r in finding.related} == {
        ("main.c", 18),  # .offset = BODY_OFFSET
        ("main.c", 23),  # the attach call
    }
    info = analysis.info[(finding.path, finding.span.start_byte, finding.program)]
    assert info.upgraded and info.needs_single and info.codes == ("SECL201",)
    assert [(e.kind, e.value) for e in info.evidence if e.kind == "attach-offset"] == [
        ("attach-offset", 0x1C)
    ]


def test_one_file_run_finds_the_same(tmp_path: Path) -> None:
    whole, _ = check(tmp_path, TWO_OBJECTS)
    single, _ = check(tmp_path, TWO_OBJECTS, paths=["tracer.bpf.c"])
    key = lambda f: (os.path.normpath(f.path), f.span.start_byte, f.code, f.message)  # noqa: E731
    expected = sorted(key(f) for f in whole if os.path.normpath(f.path) == "tracer.bpf.c")
    assert sorted(key(f) for f in single) == expected
    assert expected  # the run saw the loader although only the BPF file was given
    loader_only, _ = check(tmp_path, TWO_OBJECTS, paths=["main.c"])
    assert not [f for f in loader_only if f.code.startswith("SECL2")]  # reported on SEC sites only


# -- K2 / K3 / U2: attach modes ----------------------------------------------------------

MODES = {
    "modes.bpf.c": """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("kprobe")   // ruleid: SECL202
int linked(struct pt_regs *ctx) { return 0; }

SEC("kprobe")   // ruleid: SECL203
int BPF_KPROBE(perf_ip)
{
	__u64 ip = bpf_get_func_ip(ctx);

	bpf_printk("ip %llx", ip);
	return 0;
}

SEC("kretprobe")   // ok: SECL203
int BPF_KRETPROBE(perf_plain) { return 0; }

SEC("kprobe")   // ok: SECL203
int BPF_KPROBE(default_cookie)
{
	return bpf_get_attach_cookie(ctx) == 42;
}

SEC("uprobe")   // ruleid: SECL301
int BPF_UPROBE(u_linked) { return 0; }

SEC("kprobe.single")   // ok: SECL202
int already_single(void *ctx) { return 0; }

SEC("kprobe/do_nanosleep+0x8")   // ok: SECL202, SECL201
int with_offset_section(void *ctx) { return 0; }
""",
    "modes.c": r"""
#include <unistd.h>
#include <bpf/libbpf.h>
#include "modes.skel.h"

#define USE_LINK PROBE_ATTACH_MODE_LINK

static struct bpf_link *attach_one(struct bpf_program *prog, const char *fn,
				enum probe_attach_mode mode, bool ret)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .retprobe = ret);

	opts.attach_mode = mode;
	return bpf_program__attach_kprobe_opts(prog, fn, &opts);
}

static void uprobes(struct modes *skel, enum probe_attach_mode how)
{
	DECLARE_LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = "main", .attach_mode = how);

	skel->links.u_linked = bpf_program__attach_uprobe_opts(skel->progs.u_linked, 0,
							"/proc/self/exe", 0, &uo);
}

int main(void)
{
	struct modes *skel = modes__open_and_load();
	LIBBPF_OPTS(bpf_kprobe_opts, cookie, .bpf_cookie = 42);

	if (!skel)
		return 1;
	attach_one(skel->progs.linked, "do_nanosleep", USE_LINK, false);
	attach_one(skel->progs.perf_ip, "do_nanosleep", PROBE_ATTACH_MODE_PERF, false);
	attach_one(skel->progs.perf_plain, "do_nanosleep", PROBE_ATTACH_MODE_LEGACY, true);
	attach_one(skel->progs.already_single, "do_nanosleep", PROBE_ATTACH_MODE_LINK, false);
	attach_one(skel->progs.with_offset_section, "do_nanosleep", USE_LINK, false);
	bpf_program__attach_kprobe_opts(skel->progs.default_cookie, "do_nanosleep", &cookie);
	uprobes(skel, PROBE_ATTACH_MODE_LINK);
	usleep(1);
	modes__destroy(skel);
	return 0;
}
""",
}


def test_attach_modes(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, MODES)
    assert flagged(findings) == {
        ("modes.bpf.c", "linked"): {"SECL202"},
        ("modes.bpf.c", "perf_ip"): {"SECL203"},
    }
    # U2: an explicit mode on an upgraded uprobe is an info note, never SECL2xx
    assert flagged(findings, "SECL3") == {("modes.bpf.c", "u_linked"): {"SECL301"}}
    assert_markers(MODES, findings)
    (perf_ip,) = [f for f in findings if f.code == "SECL203"]
    assert any(
        "bpf_get_func_ip" in r.message and r.path.endswith("modes.bpf.c") for r in perf_ip.related
    )
    (linked,) = [f for f in findings if f.code == "SECL202"]
    # the mode comes through a #define and a parameter: the caller's line is the proof
    assert any(
        os.path.basename(r.path) == "modes.c" and r.span.start.row == 31 for r in linked.related
    )


def test_mode_only_passed_as_default_or_perf_is_silent(tmp_path: Path) -> None:
    files = dict(MODES)
    files["modes.c"] = files["modes.c"].replace(
        "USE_LINK, false);\n\tattach_one(skel->progs.perf_ip",
        "PROBE_ATTACH_MODE_DEFAULT, false);\n\tattach_one(skel->progs.perf_ip",
    )
    files["modes.bpf.c"] = files["modes.bpf.c"].replace("// ruleid: SECL202", "// ok: SECL202")
    findings, _ = check(tmp_path, files)
    assert ("modes.bpf.c", "linked") not in flagged(findings)
    assert_markers(files, findings)


# -- K1 / U1 and K9: link info, missed counters ------------------------------------------

LINK_INFO = {
    "missy.bpf.c": """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern void bpf_kfunc_common_test(void) __ksym;

SEC("fentry/bpf_modify_return_test")
int BPF_PROG(trigger) { return 0; }

SEC("kprobe/bpf_fentry_test1")   // ruleid: SECL205
int outer(struct pt_regs *ctx)
{
	bpf_kfunc_common_test();
	return 0;
}

SEC("kprobe/bpf_kfunc_common_test")   // ruleid: SECL204, SECL205
int inner(struct pt_regs *ctx)
{
	return 0;
}

SEC("kprobe/bpf_fentry_test2")   // ok: SECL205
int bystander(struct pt_regs *ctx)
{
	return 0;
}

SEC("uprobe")   // ruleid: SECL204
int u_info(struct pt_regs *ctx) { return 0; }

SEC("kprobe")   // ok: SECL204
int both_kinds(struct pt_regs *ctx) { return 0; }
""",
    "missy.c": r"""
#include <test_progs.h>
#include "missy.skel.h"

static int link_type_ok(int fd, enum bpf_perf_event_type want)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_link_get_info_by_fd(fd, &info, &len))
		return 0;
	if (!ASSERT_EQ(info.type, BPF_LINK_TYPE_PERF_EVENT, "link_type"))
		return 0;
	return info.perf_event.type == want;
}

static void check_any_kind(struct bpf_link *link)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	bpf_link_get_info_by_fd(bpf_link__fd(link), &info, &len);
	switch (info.type) {
	case BPF_LINK_TYPE_PERF_EVENT:
		ASSERT_EQ(info.perf_event.type, BPF_PERF_EVENT_KPROBE, "kprobe");
		break;
	case BPF_LINK_TYPE_KPROBE_MULTI:
		ASSERT_EQ(info.kprobe_multi.count, 1, "one symbol");
		break;
	}
}

static void test_missed(void)
{
	LIBBPF_OPTS(bpf_test_run_opts, topts);
	struct bpf_link_info info = {};
	struct missy *skel;
	__u32 len = sizeof(info);

	skel = missy__open_and_load();
	if (!ASSERT_OK_PTR(skel, "open"))
		return;
	if (!ASSERT_OK(missy__attach(skel), "attach"))
		goto out;
	bpf_prog_test_run_opts(bpf_program__fd(skel->progs.trigger), &topts);
	/* the inner probe fires inside the outer one: kprobe recursion */
	if (!ASSERT_OK(bpf_link_get_info_by_fd(bpf_link__fd(skel->links.inner), &info, &len), "info"))
		goto out;
	ASSERT_EQ(info.perf_event.kprobe.missed, 1, "missed");
out:
	missy__destroy(skel);
}

static void test_uprobe_info(void)
{
	struct missy *skel = missy__open_and_load();
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = "main");
	struct bpf_link *link;
	int fd;

	link = bpf_program__attach_uprobe_opts(skel->progs.u_info, 0, "/proc/self/exe", 0, &opts);
	fd = bpf_link__fd(link);
	ASSERT_TRUE(link_type_ok(fd, BPF_PERF_EVENT_UPROBE), "uprobe link");
	skel->links.both_kinds = bpf_program__attach_kprobe(skel->progs.both_kinds, false, "do_exit");
	check_any_kind(skel->links.both_kinds);
	missy__destroy(skel);
}

void test_missy(void)
{
	if (test__start_subtest("missed"))
		test_missed();
	if (test__start_subtest("uprobe_info"))
		test_uprobe_info();
}
""",
}


def test_link_info_and_missed_scenario(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, LINK_INFO)
    assert flagged(findings) == {
        ("missy.bpf.c", "outer"): {"SECL205"},
        ("missy.bpf.c", "inner"): {"SECL204", "SECL205"},
        ("missy.bpf.c", "u_info"): {"SECL204"},
    }
    assert_markers(LINK_INFO, findings)
    (outer,) = [f for f in findings if f.program == "outer"]
    messages = " | ".join(r.message for r in outer.related)
    assert "bpf_kfunc_common_test" in messages and "missed" in messages


def test_recursion_misses_of_programs_are_not_link_info(tmp_path: Path) -> None:
    files = dict(LINK_INFO)
    files["missy.c"] = (
        files["missy.c"]
        .replace(
            'ASSERT_EQ(info.perf_event.kprobe.missed, 1, "missed");',
            'ASSERT_EQ(prog_misses(bpf_program__fd(skel->progs.inner)), 1, "missed");',
        )
        .replace(
            "static void test_missed(void)",
            "static __u64 prog_misses(int fd)\n{\n\tstruct bpf_prog_info info = {};\n"
            "\t__u32 len = sizeof(info);\n\n\tbpf_obj_get_info_by_fd(fd, &info, &len);\n"
            "\treturn info.recursion_misses;\n}\n\nstatic void test_missed(void)",
        )
    )
    findings, _ = check(tmp_path, files)
    assert not any(f.code == "SECL205" for f in findings)  # K10 recursion_misses: a trap


# -- K20 / K21: perf-event fds, hand-set attach types -------------------------------------

BY_HAND = {
    "byhand.bpf.c": """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("kprobe/vfs_read")   // ruleid: SECL206
int on_perf(void *ctx) { return 0; }

SEC("perf_event")   // ok: SECL206
int sampler(void *ctx) { return 0; }

SEC("kprobe/vfs_write")   // ruleid: SECL207
int typed(void *ctx) { return 0; }

SEC("kprobe/vfs_fsync")   // ok: SECL206, SECL207
int retyped(void *ctx) { return 0; }
""",
    "byhand.c": r"""
#include <linux/perf_event.h>
#include <bpf/libbpf.h>
#include "byhand.skel.h"

static int kprobe_pfd(const char *fn);

int main(void)
{
	struct byhand *obj = byhand__open();
	int pfd = kprobe_pfd("vfs_read");

	bpf_program__set_expected_attach_type(obj->progs.typed, BPF_TRACE_KPROBE_SESSION);
	/* override program type: runs as a perf-event sampler */
	bpf_program__set_type(obj->progs.retyped, BPF_PROG_TYPE_PERF_EVENT);
	bpf_program__set_expected_attach_type(obj->progs.retyped, BPF_PERF_EVENT);
	if (byhand__load(obj))
		return 1;
	obj->links.on_perf = bpf_program__attach_perf_event(obj->progs.on_perf, pfd);
	obj->links.sampler = bpf_program__attach_perf_event(obj->progs.sampler, pfd);
	obj->links.retyped = bpf_program__attach_perf_event(obj->progs.retyped, pfd);
	return 0;
}
""",
}


def test_perf_event_and_expected_attach_type(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, BY_HAND)
    assert flagged(findings) == {
        ("byhand.bpf.c", "on_perf"): {"SECL206"},
        ("byhand.bpf.c", "typed"): {"SECL207"},
    }
    assert_markers(BY_HAND, findings)


FOR_EACH = {
    "many.bpf.c": """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("kprobe/a")   // ruleid: SECL207
int one(void *ctx) { return 0; }

SEC("kretprobe/b")   // ruleid: SECL207
int two(void *ctx) { return 0; }

SEC("kprobe.multi/c*")   // ok: SECL207
int three(void *ctx) { return 0; }

SEC("tp/sched/sched_switch")
int four(void *ctx) { return 0; }
""",
    "other.bpf.c": """
SEC("kprobe/a")   // ok: SECL207
int one(void *ctx) { return 0; }
""",
    "loader.c": r"""
#include <bpf/libbpf.h>

static int load_obj(const char *path, struct bpf_object **out)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	struct bpf_program *prog;

	if (!obj)
		return -1;
	bpf_object__for_each_program(prog, obj) {
		if (bpf_program__type(prog) == BPF_PROG_TYPE_KPROBE)
			bpf_program__set_expected_attach_type(prog, BPF_TRACE_KPROBE_SESSION);
	}
	*out = obj;
	return bpf_object__load(obj);
}

int main(void)
{
	struct bpf_object *obj;

	return load_obj("./build/many.bpf.o", &obj);
}
""",
}


def test_for_each_program_touches_every_program_of_that_object(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, FOR_EACH)
    assert flagged(findings) == {
        ("many.bpf.c", "one"): {"SECL207"},
        ("many.bpf.c", "two"): {"SECL207"},
    }
    assert_markers(FOR_EACH, findings)


HANDLER = {
    "custom.bpf.c": """
SEC("kprobe")   // ok: SECL207
int taken(void *ctx) { return 0; }
""",
    "custom.c": r"""
#include "custom.skel.h"

int main(void)
{
	LIBBPF_OPTS(libbpf_prog_handler_opts, opts);
	int id = libbpf_register_prog_handler("kprobe+", BPF_PROG_TYPE_TRACEPOINT, 0, &opts);
	struct custom *skel = custom__open();

	bpf_program__set_expected_attach_type(skel->progs.taken, 0);
	custom__load(skel);
	libbpf_unregister_prog_handler(id);
	return 0;
}
""",
    "unrelated.bpf.c": """
SEC("kprobe")   // ruleid: SECL207
int typed(void *ctx) { return 0; }
""",
    "unrelated.c": r"""
#include "unrelated.skel.h"

int main(void)
{
	struct unrelated *skel = unrelated__open();

	bpf_program__set_expected_attach_type(skel->progs.typed, 0);
	return unrelated__load(skel);
}
""",
}


def test_custom_prog_handler_takes_over_only_its_own_objects(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, HANDLER)
    assert flagged(findings) == {("unrelated.bpf.c", "typed"): {"SECL207"}}
    assert_markers(HANDLER, findings)


# -- K19 / K16: BPF side -------------------------------------------------------------------

BPF_SIDE = {
    "side.bpf.c": """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jumps SEC(".maps") = {
	.values = { [1] = (void *)&at_offset },
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} same SEC(".maps");

SEC("kprobe/do_sys_openat2+0x4")   // ok: SECL208
int at_offset(struct pt_regs *ctx) { return 0; }

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} from_syscall SEC(".maps");

SEC("ksyscall/openat")   // ok: SECL208
int BPF_KSYSCALL(sys_caller, int dfd)
{
	bpf_tail_call_static(ctx, &from_syscall, 0);
	return 0;
}

SEC("kretprobe/do_sys_openat2")   // ruleid: SECL208
int ret_caller(struct pt_regs *ctx)
{
	bpf_tail_call_static(ctx, &from_syscall, 0);
	return 0;
}

static __always_inline int dispatch(void *ctx)
{
	bpf_tail_call(ctx, &jumps, 1);
	return 0;
}

SEC("kprobe/do_sys_openat2")   // ruleid: SECL208
int entry(struct pt_regs *ctx)
{
	return dispatch(ctx);
}

SEC("kprobe/vfs_read")   // ok: SECL208
int r1(struct pt_regs *ctx)
{
	bpf_tail_call_static(ctx, &same, 0);
	return 0;
}

SEC("kretprobe/vfs_read")   // ok: SECL208
int r2(struct pt_regs *ctx)
{
	bpf_tail_call_static(ctx, &same, 1);
	return 0;
}

SEC("kprobe/vfs_write")   // ruleid: SECL209
int regs_dump(struct pt_regs *regs)
{
	unsigned long bx = regs->bx, r12;

	/* ctx->r15 in a comment is not a read */
	bpf_probe_read_kernel(&r12, sizeof(r12), &regs->r12);
	bpf_printk("%lx %lx", bx, r12);
	return 0;
}

SEC("kprobe/vfs_fsync")   // ruleid: SECL209
int copy_all(struct pt_regs *ctx)
{
	struct pt_regs saved;

	__builtin_memcpy(&saved, ctx, sizeof(saved));
	return 0;
}

SEC("kprobe/vfs_fsync")   // ok: SECL209
int BPF_KPROBE(args_only, struct file *file, loff_t start)
{
	long rc = PT_REGS_RC(ctx), sp = PT_REGS_SP(ctx), ax = ctx->ax;

	ctx->bx = 0;	/* a ctx write: rejected either way (K14), not our business */
	bpf_override_return(ctx, -1);
	bpf_get_stackid(ctx, &stacks, 0);
	return rc + sp + ax + (long)file + start;
}

SEC("uprobe")   // ok: SECL209
int BPF_UPROBE(user_regs)
{
	return ctx->bx == 0;
}

/* the syscall wrapper's argument is the user's pt_regs, not the probe context */
SEC("kprobe/__x64_sys_pread64")   // ok: SECL209
int BPF_KPROBE(sys_pread, struct pt_regs *regs)
{
	long pos = BPF_CORE_READ(regs, r10);

	return pos > 0;
}
""",
}


def test_prog_arrays_and_registers(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, BPF_SIDE)
    assert flagged(findings) == {
        ("side.bpf.c", "entry"): {"SECL208"},
        ("side.bpf.c", "ret_caller"): {"SECL208"},
        ("side.bpf.c", "regs_dump"): {"SECL209"},
        ("side.bpf.c", "copy_all"): {"SECL209"},
    }
    assert_markers(BPF_SIDE, findings)
    (regs,) = [f for f in findings if f.program == "regs_dump"]
    assert {r.message for r in regs.related} == {"reads bx", "reads r12"}


SPREAD_READS = {
    "spread.bpf.c": """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("kprobe/vfs_write")   // ruleid: SECL209
int arrow(struct pt_regs *ctx)
{
	return ctx /* the context */ -> \\
		bx != 0;
}

SEC("kprobe/vfs_read")   // ruleid: SECL209
int whole_copy(struct pt_regs *ctx)
{
	char buf[sizeof // the whole of it
		( /* all */ * ctx)];

	return buf[0];
}

SEC("kprobe/vfs_fsync")   // ok: SECL209
int plain(struct pt_regs *ctx)
{
	long n = sizeof(long), *p = &n, m = *p;

	return n + m;
}
""",
}


def test_register_reads_spread_with_comments_and_continuations(tmp_path: Path) -> None:
    """The searches that spare a body its lexing let no read through: tokens may be spread
    with blanks, comments and line continuations."""
    findings, _ = check(tmp_path, SPREAD_READS)
    assert flagged(findings) == {
        ("spread.bpf.c", "arrow"): {"SECL209"},
        ("spread.bpf.c", "whole_copy"): {"SECL209"},
    }
    assert_markers(SPREAD_READS, findings)


# -- traps: things that look risky and are not ----------------------------------------------

TRAPS = {
    "traps.bpf.c": """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("kprobe/do_nanosleep")   // ok: SECL201, SECL202, SECL203, SECL204
int BPF_KPROBE(cookie_ip)
{
	return bpf_get_attach_cookie(ctx) + bpf_get_func_ip(ctx);
}

SEC("kprobe/should_fail_bio")   // ok: SECL201
int BPF_KPROBE(override)
{
	bpf_override_return(ctx, -12);
	return 0;
}

SEC("kprobe/do_nanosleep")   // ok: SECL202, SECL201
int sleepy(void *ctx) { return 0; }

SEC("ksyscall/nanosleep")   // ok: SECL202
int BPF_KSYSCALL(sys_sleep) { return 0; }

SEC("uprobe//proc/self/exe:main")   // ok: SECL201
int BPF_UPROBE(u_off) { return 0; }
""",
    "traps.c": r"""
#include <stdlib.h>
#include <bpf/libbpf.h>
#include "traps.skel.h"

enum attach_mode { MODE_AUTO, MODE_LINK };  /* our own, not libbpf's */
struct settings { enum attach_mode attach_mode; unsigned long offset; };

int main(int argc, char **argv)
{
	struct settings s = { .attach_mode = MODE_LINK, .offset = 0x40 };
	LIBBPF_OPTS(bpf_kprobe_opts, o1, .bpf_cookie = 0x1234, .offset = 0);
	LIBBPF_OPTS(bpf_kprobe_opts, o2, .attach_mode = PROBE_ATTACH_MODE_DEFAULT);
	LIBBPF_OPTS(bpf_kprobe_opts, o3);
	LIBBPF_OPTS(bpf_uprobe_opts, uo);
	struct traps *skel = traps__open();

	/* sleepable kprobes are never upgraded (and never attach): K13 */
	bpf_program__set_flags(skel->progs.sleepy, BPF_F_SLEEPABLE);
	traps__load(skel);
	s.offset = strtoul(argv[1], NULL, 0);
	o2.offset = s.offset - s.offset;
	bpf_program__attach_kprobe_opts(skel->progs.cookie_ip, "do_nanosleep", &o1);
	bpf_program__attach_kprobe_opts(skel->progs.cookie_ip, "do_nanosleep", &o2);
	bpf_program__attach_kprobe_opts(skel->progs.override, "should_fail_bio", NULL);
	o3.attach_mode = PROBE_ATTACH_MODE_LINK;
	bpf_program__attach_kprobe_opts(skel->progs.sleepy, "do_nanosleep", &o3);
	bpf_program__attach_ksyscall(skel->progs.sys_sleep, "nanosleep", NULL);
	bpf_program__attach_uprobe_opts(skel->progs.u_off, 0, "/proc/self/exe", 0x10, &uo);
	return 0;
}
""",
}


def test_traps_give_no_finding(tmp_path: Path) -> None:
    findings, analysis = check(tmp_path, TRAPS)
    # o2's offset is computed (s.offset - s.offset): possibly nonzero, so cookie_ip is flagged
    # by SECL201 through o2... unless it is not attached with o2 at all. Here it is, so check
    # precisely what the traps promise instead:
    got = flagged(findings)
    assert ("traps.bpf.c", "override") not in got
    assert ("traps.bpf.c", "sleepy") not in got
    assert ("traps.bpf.c", "sys_sleep") not in got
    assert ("traps.bpf.c", "u_off") not in got
    sleepy = next(
        i
        for (p, _, _), i in analysis.info.items()
        if p.endswith("traps.bpf.c") and i.reason_code == "sleepable"
    )
    assert not sleepy.upgraded and not sleepy.needs_single


def test_traps_markers(tmp_path: Path) -> None:
    files = dict(TRAPS)
    files["traps.c"] = files["traps.c"].replace("\to2.offset = s.offset - s.offset;\n", "")
    findings, _ = check(tmp_path, files)
    assert flagged(findings) == {}
    assert_markers(files, findings)


def test_computed_offset_counts_as_possibly_nonzero(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, TRAPS)
    assert flagged(findings) == {("traps.bpf.c", "cookie_ip"): {"SECL201"}}


# -- fixes -----------------------------------------------------------------------------------

FIXES = {
    "fixes.bpf.c": """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define SYS_PREFIX "__x64_"
#define KPROBE_PFX "kprobe/"

SEC("kprobe/" SYS_PREFIX "sys_nanosleep")   // ruleid: SECL202
int sys_sleep(void *ctx) { return 0; }

SEC("?kretprobe")   // ruleid: SECL202
int optional(void *ctx) { return 0; }

SEC(KPROBE_PFX "vfs_read")   // ruleid: SECL202
int shared_a(void *ctx) { return 0; }

SEC(KPROBE_PFX "vfs_write")
int shared_b(void *ctx) { return 0; }
""",
    "fixes.c": r"""
#include "fixes.skel.h"

int main(void)
{
	struct fixes *skel = fixes__open_and_load();
	LIBBPF_OPTS(bpf_kprobe_opts, o, .attach_mode = PROBE_ATTACH_MODE_LINK);

	bpf_program__attach_kprobe_opts(skel->progs.sys_sleep, "__x64_sys_nanosleep", &o);
	bpf_program__attach_kprobe_opts(skel->progs.optional, "do_nanosleep", &o);
	bpf_program__attach_kprobe_opts(skel->progs.shared_a, "vfs_read", &o);
	return 0;
}
""",
}


def _fix(findings: list[Finding], program: str):
    (finding,) = [f for f in findings if f.program == program and f.code == "SECL202"]
    assert finding.fix is not None
    return finding.fix


def test_fix_edits_only_the_literal_holding_the_prefix(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, FIXES)
    assert_markers(FIXES, findings)
    data = (tmp_path / "fixes.bpf.c").read_bytes()
    fix = _fix(findings, "sys_sleep")
    (edit,) = fix.edits
    assert fix.applicability == "safe"
    assert data[edit.span.start_byte : edit.span.end_byte] == b'"kprobe/"'
    assert edit.content == '"kprobe.single/"'
    (edit,) = _fix(findings, "optional").edits
    assert edit.content == '"?kretprobe.single"'


def test_fix_in_a_shared_define_is_unsafe_and_names_the_others(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, FIXES)
    fix = _fix(findings, "shared_a")
    (edit,) = fix.edits
    data = (tmp_path / "fixes.bpf.c").read_bytes()
    assert data[edit.span.start_byte : edit.span.end_byte] == b'"kprobe/"'
    assert edit.span.start.row == 5  # inside `#define KPROBE_PFX`
    assert fix.applicability == "unsafe"
    assert "shared_b" in fix.message


def test_fix_is_unsafe_for_a_released_libbpf(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, FIXES, target_libbpf="1.7")
    fix = _fix(findings, "optional")
    assert fix.applicability == "unsafe"
    assert "1.7" in fix.message and "kretprobe.single" in fix.message
    assert flagged(findings)  # SECL2xx fire under every target


# -- SECL002: ambiguous links ------------------------------------------------------------------

AMBIGUOUS = {
    "left/probe.bpf.c": """
SEC("kprobe/vfs_read")   // ruleid: SECL002
int handle(void *ctx) { return 0; }
""",
    "right/probe.bpf.c": """
SEC("kprobe/vfs_read")   // ruleid: SECL002
int handle(void *ctx) { return 0; }
""",
    "tools/run.c": r"""
#include "probe.skel.h"

int main(void)
{
	struct probe *skel = probe__open_and_load();
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 4);

	return !bpf_program__attach_kprobe_opts(skel->progs.handle, "vfs_read", &opts);
}
""",
}


def test_ambiguous_skeleton_gives_a_note_not_a_guess(tmp_path: Path) -> None:
    findings, analysis = check(tmp_path, AMBIGUOUS)
    assert flagged(findings) == {}
    assert flagged(findings, "SECL002") == {("probe.bpf.c", "handle"): {"SECL002"}}
    assert len([f for f in findings if f.code == "SECL002"]) == 2
    assert_markers(AMBIGUOUS, findings)
    assert all(not i.needs_single for i in analysis.info.values())


def test_skeleton_map_settles_the_ambiguity(tmp_path: Path) -> None:
    findings, _ = check(
        tmp_path, AMBIGUOUS, skeleton_map={"probe": str(tmp_path / "right/probe.bpf.c")}
    )
    assert {(os.path.normpath(f.path), f.code) for f in findings if f.code.startswith("SECL")} >= {
        ("right/probe.bpf.c", "SECL201")
    }
    assert not [
        f
        for f in findings
        if f.code in ("SECL002",) or os.path.normpath(f.path) == "left/probe.bpf.c"
    ]


# -- the inventory side ------------------------------------------------------------------------


def test_every_family_program_has_upgrade_info(tmp_path: Path) -> None:
    _, analysis = check(tmp_path, MODES)
    reasons = sorted(i.reason_code for i in analysis.info.values())
    assert reasons == ["has-offset", "single-opt-out"] + ["upgraded"] * 5
    totals = analysis.inventory_totals()
    assert totals["programs"] == 7 and totals["upgraded"] == 5
    assert totals["not_upgraded"] == {"has-offset": 1, "single-opt-out": 1}
    assert totals["needs_single"] == 2


@pytest.mark.parametrize("code", UPGRADE_CODES)
def test_rule_metadata_matches_the_catalogue(code: str) -> None:
    from secl.catalogue import load_catalogue

    rule = load_catalogue().get(code)
    assert rule is not None, f"rules/{code}.toml is missing"
    assert rule.name == RULE_META[code].name
    assert rule.severity == RULE_META[code].severity


# -- uprobes: what the uprobe_multi path takes in its stride (U3-U8) ---------------------------

UPROBE_TRAPS = {
    "ulib.bpf.c": """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("uprobe")   // ok: SECL201, SECL202, SECL204, SECL301
int BPF_UPROBE(semaphore_probe)
{
	ctx->ip += 0;	/* regs writes are allowed for uprobes (U8) */
	return bpf_get_attach_cookie(ctx) == 7;
}

SEC("uretprobe")   // ok: SECL201, SECL301
int BPF_URETPROBE(versioned_ret, long rc) { return 0; }

SEC("uprobe/libc.so.6:malloc@@GLIBC_2.2.5")   // ok: SECL301
int versioned_section(void *ctx) { return 0; }
""",
    "ulib.c": r"""
#include <unistd.h>
#include <bpf/libbpf.h>
#include "ulib.skel.h"

int main(void)
{
	struct ulib *skel = ulib__open_and_load();
	LIBBPF_OPTS(bpf_uprobe_opts, sem, .ref_ctr_offset = 0x4020, .bpf_cookie = 7);
	LIBBPF_OPTS(bpf_uprobe_opts, ver, .func_name = "malloc@GLIBC_2.2.5", .retprobe = true);
	LIBBPF_OPTS(bpf_uprobe_opts, legacy, .attach_mode = PROBE_ATTACH_MODE_LEGACY);
	pid_t child = getppid();

	bpf_program__attach_uprobe_opts(skel->progs.semaphore_probe, child, "/usr/bin/app",
					0x1a40, &sem);
	bpf_program__attach_uprobe_opts(skel->progs.versioned_ret, -1, "libc.so.6", 0, &ver);
	bpf_program__attach_uprobe_opts(skel->progs.versioned_section, -1, "libc.so.6", 0, &legacy);
	return 0;
}
""",
}


def test_uprobe_pid_ref_ctr_versions_and_offsets_are_fine(tmp_path: Path) -> None:
    findings, analysis = check(tmp_path, UPROBE_TRAPS)
    assert [f for f in findings if f.code in RULE_META] == []
    assert_markers(UPROBE_TRAPS, findings)
    reasons = sorted(i.reason_code for i in analysis.info.values())
    assert reasons == ["upgraded", "upgraded", "versioned-symbol"]


OBJECT_FILES = {
    "src/fsnotify.c": """
SEC("kprobe/fsnotify")   // ruleid: SECL202
int watch(void *ctx) { return 0; }
""",
    "src/fsnotify.bpf.c": """
SEC("kprobe/fsnotify")   // ok: SECL202
int watch(void *ctx) { return 0; }
""",
    "loader/main.c": r"""
#include <bpf/libbpf.h>

#define OBJ_PATH "build/fsnotify.o"

int main(void)
{
	struct bpf_object *obj = bpf_object__open(OBJ_PATH);
	struct bpf_program *watch;
	LIBBPF_OPTS(bpf_kprobe_opts, opts);

	opts.attach_mode = 3;	/* PROBE_ATTACH_MODE_LINK, spelled as a number */
	if (!obj || bpf_object__load(obj))
		return 1;
	watch = bpf_object__find_program_by_name(obj, "watch");
	return !bpf_program__attach_kprobe_opts(watch, "fsnotify", &opts);
}
""",
}


def test_object_file_names_pick_the_source_of_the_same_name(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, OBJECT_FILES)
    # fsnotify.o comes from fsnotify.c; fsnotify.bpf.o would come from fsnotify.bpf.c
    assert flagged(findings) == {("fsnotify.c", "watch"): {"SECL202"}}
    assert_markers(OBJECT_FILES, findings)


MACRO_PREFIX = {
    "sys.bpf.c": """
#include "bpf_misc.h"	/* SYS_PREFIX comes from here: not visible to secl */

SEC("kprobe/" SYS_PREFIX "sys_nanosleep")   // ruleid: SECL202
int BPF_KPROBE(nanosleep_entry) { return 0; }

SEC(PROBE_SECTION)   // ok: SECL202
int unknown_prefix(void *ctx) { return 0; }
""",
    "sys.c": r"""
#include "sys.skel.h"

int main(void)
{
	struct sys *skel = sys__open_and_load();
	LIBBPF_OPTS(bpf_kprobe_opts, o, .attach_mode = PROBE_ATTACH_MODE_LINK);

	bpf_program__attach_kprobe_opts(skel->progs.nanosleep_entry, "__x64_sys_nanosleep", &o);
	bpf_program__attach_kprobe_opts(skel->progs.unknown_prefix, "__x64_sys_nanosleep", &o);
	return 0;
}
""",
}


def test_macro_after_a_literal_prefix_cannot_change_the_decision(tmp_path: Path) -> None:
    findings, analysis = check(tmp_path, MACRO_PREFIX)
    assert flagged(findings) == {("sys.bpf.c", "nanosleep_entry"): {"SECL202"}}
    assert_markers(MACRO_PREFIX, findings)
    (finding,) = [f for f in findings if f.code == "SECL202"]
    assert any("macro" in note for note in finding.notes)
    (edit,) = finding.fix.edits
    assert edit.content == '"kprobe.single/"'
    assert len(analysis.info) == 1  # SEC(PROBE_SECTION): the family is unknown, no guess


# -- program <-> loader naming -------------------------------------------------------------


def test_skeleton_and_object_names() -> None:
    from secl.analysis.links import object_stem, skeleton_name

    assert skeleton_name("src/opensnoop.bpf.c") == "opensnoop"
    assert skeleton_name("progs/test_fill_link_info.c") == "test_fill_link_info"
    assert object_stem("./out/opensnoop.bpf.o") == ("opensnoop", ".bpf.c")
    assert object_stem("tailcall1.o") == ("tailcall1", ".c")


def test_one_file_run_sees_the_ambiguity_too(tmp_path: Path) -> None:
    whole, _ = check(tmp_path, AMBIGUOUS)
    single, _ = check(tmp_path, AMBIGUOUS, paths=["left/probe.bpf.c"])
    codes = lambda fs: sorted((os.path.normpath(f.path), f.code) for f in fs if f.code in RULE_META)  # noqa: E731
    assert codes(single) == [c for c in codes(whole) if c[0] == "left/probe.bpf.c"]
