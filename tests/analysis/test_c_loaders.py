"""Real C loaders (issue 12): order of stores and per-row values, run-time offsets, programs
reached through struct fields and build-time names, linked skeletons. Each new source of
evidence has a trap where the same shape must stay silent. Fixtures carry `// ruleid:` /
`// ok:` markers."""

from __future__ import annotations

import json
import os
from pathlib import Path

from secl.report.inventory import render_inventory
from tests.analysis.test_upgrade import assert_markers, check, flagged

PROBES = """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";
"""


def probe(name: str, marker: str, section: str = "kprobe") -> str:
    return f'SEC("{section}")   // {marker}\nint {name}(struct pt_regs *ctx) {{ return 0; }}\n\n'


# -- item 4: order of stores, branches, reassigned variables ------------------------------

ORDER = {
    "order.bpf.c": PROBES
    + probe("mode_before", "ruleid: SECL202")
    + probe("mode_after", "ok: SECL202")
    + probe("other_branch", "ok: SECL202")
    + probe("next_turn", "ruleid: SECL202")
    + probe("first", "ruleid: SECL201")
    + probe("second", "ok: SECL201")
    + probe("proven_zero", "ok: SECL201")
    + probe("reset", "ok: SECL201, SECL202")
    + probe("after_goto", "ok: SECL202"),
    "loader.c": r"""
#include <stdlib.h>
#include <bpf/libbpf.h>
#include "order.skel.h"

static void modes(struct order *skel, int verbose)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts);

	opts.attach_mode = PROBE_ATTACH_MODE_LINK;
	bpf_program__attach_kprobe_opts(skel->progs.mode_before, "do_nanosleep", &opts);
}

static void late(struct order *skel)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts);

	bpf_program__attach_kprobe_opts(skel->progs.mode_after, "do_nanosleep", &opts);
	opts.attach_mode = PROBE_ATTACH_MODE_LINK;	/* too late for the attach above */
}

static void branches(struct order *skel, int legacy)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts);

	if (legacy) {
		opts.attach_mode = PROBE_ATTACH_MODE_LINK;
		opts.retprobe = false;
	} else {
		bpf_program__attach_kprobe_opts(skel->progs.other_branch, "do_nanosleep", &opts);
	}
}

static void loop(struct order *skel, int n)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts);
	int i;

	for (i = 0; i < n; i++) {
		bpf_program__attach_kprobe_opts(skel->progs.next_turn, "do_nanosleep", &opts);
		opts.attach_mode = PROBE_ATTACH_MODE_LINK;	/* the next turn's attach sees it */
	}
}

static void offsets(struct order *skel, long from_user)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts);
	long off = 8;

	opts.offset = off;
	bpf_program__attach_kprobe_opts(skel->progs.first, "do_nanosleep", &opts);
	off = 0;
	opts.offset = off;
	bpf_program__attach_kprobe_opts(skel->progs.second, "do_nanosleep", &opts);

	off = from_user;
	off = 0;	/* proven zero by the later store */
	opts.offset = off;
	bpf_program__attach_kprobe_opts(skel->progs.proven_zero, "do_nanosleep", &opts);
}

static void zeroed(struct order *skel)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 16);

	opts.attach_mode = PROBE_ATTACH_MODE_LINK;
	memset(&opts, 0, sizeof(opts));
	opts.sz = sizeof(opts);
	bpf_program__attach_kprobe_opts(skel->progs.reset, "do_nanosleep", &opts);
}

static void jumps(struct order *skel, int fail)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts);

	if (fail)
		goto out;
	bpf_program__attach_kprobe_opts(skel->progs.after_goto, "do_nanosleep", &opts);
	return;
out:
	opts.attach_mode = PROBE_ATTACH_MODE_LINK;
}

int main(int argc, char **argv)
{
	struct order *skel = order__open_and_load();

	modes(skel, 0);
	late(skel);
	branches(skel, argc);
	loop(skel, argc);
	offsets(skel, strtol(argv[1], NULL, 0));
	zeroed(skel);
	jumps(skel, argc);
	return 0;
}
""",
}


def test_only_stores_that_reach_the_call_count(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, ORDER)
    assert flagged(findings) == {
        ("order.bpf.c", "mode_before"): {"SECL202"},
        ("order.bpf.c", "next_turn"): {"SECL202"},
        ("order.bpf.c", "first"): {"SECL201"},
    }
    assert_markers(ORDER, findings)


# -- item 4: a table of rows, each with its own mode and offset ---------------------------

ROWS = {
    "rows.bpf.c": PROBES
    + probe("row_link", "ruleid: SECL202")
    + probe("row_default", "ok: SECL202, SECL201")
    + probe("row_offset", "ruleid: SECL201")
    + probe("row_unset", "ok: SECL202, SECL201")
    + probe("pair_link", "ruleid: SECL202")
    + probe("pair_perf", "ok: SECL202"),
    "loader.c": r"""
#include <bpf/libbpf.h>

struct probe_row {
	const char *prog;
	const char *func;
	enum probe_attach_mode mode;
	unsigned long offset;
};

static const struct probe_row rows[] = {
	{ "row_link", "do_nanosleep", PROBE_ATTACH_MODE_LINK, 0 },
	{ "row_default", "do_nanosleep", PROBE_ATTACH_MODE_DEFAULT, 0 },
	{ "row_offset", "do_nanosleep", PROBE_ATTACH_MODE_DEFAULT, 0x10 },
	{ .prog = "row_unset", .func = "do_nanosleep" },
};

static const char *const pair_names[] = { "pair_link", "pair_perf" };
static const enum probe_attach_mode pair_modes[] = {
	PROBE_ATTACH_MODE_LINK, PROBE_ATTACH_MODE_PERF,
};

int main(void)
{
	struct bpf_object *obj = bpf_object__open_file("rows.bpf.o", NULL);
	const struct probe_row *row;
	size_t i;

	bpf_object__load(obj);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		LIBBPF_OPTS(bpf_kprobe_opts, opts);
		struct bpf_program *prog;

		row = &rows[i];
		prog = bpf_object__find_program_by_name(obj, row->prog);
		opts.attach_mode = row->mode;
		opts.offset = row->offset;
		bpf_program__attach_kprobe_opts(prog, row->func, &opts);
	}
	for (i = 0; i < 2; i++) {
		LIBBPF_OPTS(bpf_kprobe_opts, opts, .attach_mode = pair_modes[i]);

		bpf_program__attach_kprobe_opts(bpf_object__find_program_by_name(obj, pair_names[i]),
						"do_nanosleep", &opts);
	}
	return 0;
}
""",
}


def test_each_row_attaches_its_program_with_its_values(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, ROWS)
    assert flagged(findings) == {
        ("rows.bpf.c", "row_link"): {"SECL202"},
        ("rows.bpf.c", "row_offset"): {"SECL201"},
        ("rows.bpf.c", "pair_link"): {"SECL202"},
    }
    assert_markers(ROWS, findings)


# -- item 3: values that are not constants ------------------------------------------------

RUNTIME = {
    "runtime.bpf.c": PROBES
    + probe("by_address", "ruleid: SECL201")
    + probe("user_offset", "ruleid: SECL201")
    + probe("field_offset", "ruleid: SECL201")
    + probe("zero_field", "ok: SECL201")
    + probe("zero_param", "ok: SECL201"),
    "loader.c": r"""
#include <stdio.h>
#include <stdlib.h>
#include <bpf/libbpf.h>
#include "runtime.skel.h"

struct target {
	const char *name;
	unsigned long addr;
	unsigned long off;
};

static int attach_by_address(struct runtime *skel, unsigned long func_addr)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts);

	opts.offset = func_addr;
	skel->links.by_address =
		bpf_program__attach_kprobe_opts(skel->progs.by_address, NULL, &opts);
	return skel->links.by_address ? 0 : -1;
}

static int attach_spec(struct runtime *skel, const char *spec)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts);
	char func[128];
	long off = 0;

	if (sscanf(spec, "%127[^+]+%li", func, &off) < 1)
		return -1;
	opts.offset = off;
	return bpf_program__attach_kprobe_opts(skel->progs.user_offset, func, &opts) ? 0 : -1;
}

static int attach_target(struct runtime *skel, const struct target *t)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = t->off);

	return bpf_program__attach_kprobe_opts(skel->progs.field_offset, t->name, &opts) ? 0 : -1;
}

static int attach_zero(struct runtime *skel, long unused)
{
	struct target t = { .name = "do_nanosleep", .off = 0 };
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = t.off);

	bpf_program__attach_kprobe_opts(skel->progs.zero_field, t.name, &opts);
	return 0;
}

static int attach_at(struct runtime *skel, unsigned long at)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = at);

	return bpf_program__attach_kprobe_opts(skel->progs.zero_param, "do_nanosleep", &opts) ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct runtime *skel = runtime__open_and_load();
	struct target t = { .name = argv[2] };

	t.off = strtoul(argv[3], NULL, 0);
	attach_by_address(skel, strtoul(argv[1], NULL, 16));
	attach_spec(skel, argv[2]);
	attach_target(skel, &t);
	attach_zero(skel, 1);
	attach_at(skel, 0);
	return 0;
}
""",
}


def test_run_time_offsets_are_named(tmp_path: Path) -> None:
    findings, analysis = check(tmp_path, RUNTIME)
    assert flagged(findings) == {
        ("runtime.bpf.c", "by_address"): {"SECL201"},
        ("runtime.bpf.c", "user_offset"): {"SECL201"},
        ("runtime.bpf.c", "field_offset"): {"SECL201"},
    }
    assert_markers(RUNTIME, findings)
    messages = {f.program: f.message for f in findings if f.code == "SECL201"}
    assert "by address" in messages["by_address"] and "`func_addr`" in messages["by_address"]
    assert "`off`, a value computed at run time" in messages["user_offset"]
    assert "`t->off`" in messages["field_offset"]
    evidence = {
        site[2]: [(e.kind, e.value) for e in info.evidence if e.kind.startswith("attach-")]
        for site, info in analysis.info.items()
    }
    assert ("attach-address", "func_addr") in evidence["by_address"]
    assert ("attach-offset", "off") in evidence["user_offset"]


# -- undecided evidence: recorded, never flagged -------------------------------------------

UNDECIDED = {
    "later.bpf.c": PROBES + probe("global_mode", "ok: SECL202"),
    "loader.c": r"""
#include <bpf/libbpf.h>
#include "later.skel.h"

static LIBBPF_OPTS(bpf_kprobe_opts, shared_opts);
static struct later *skel;

void configure(void)
{
	shared_opts.attach_mode = PROBE_ATTACH_MODE_LINK;
}

void attach_all(void)
{
	bpf_program__attach_kprobe_opts(skel->progs.global_mode, "do_nanosleep", &shared_opts);
}

int setup(void)
{
	skel = later__open_and_load();
	return skel ? 0 : -1;
}
""",
}


def test_undecided_order_is_evidence_marked_uncertain(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, UNDECIDED)
    assert not flagged(findings)
    assert_markers(UNDECIDED, findings)
    from secl.api import inventory
    from secl.config import Config

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = inventory(["."], Config(root=str(tmp_path)))
    finally:
        os.chdir(cwd)
    data = json.loads(render_inventory(result.entries, "json", {}))
    (entry,) = [e for e in data if e["program"] == "global_mode"]
    modes = [e for e in entry["upgrade"]["evidence"] if e["kind"] == "attach-mode"]
    assert modes == [
        {
            "kind": "attach-mode",
            "filename": "loader.c",
            "location": {"row": 9, "column": 28},
            "value": "PROBE_ATTACH_MODE_LINK",
            "certain": False,
        }
    ]
    assert entry["upgrade"]["needs_single"] is False
    # certain evidence carries no `certain` key at all
    attach = [e for e in entry["upgrade"]["evidence"] if e["kind"] == "attach"]
    assert attach and all("certain" not in e for e in attach)


ORDERED_GLOBAL = {
    "later.bpf.c": PROBES
    + probe("configured_first", "ruleid: SECL202")
    + probe("configured_after", "ok: SECL202"),
    "loader.c": r"""
#include <bpf/libbpf.h>
#include "later.skel.h"

static LIBBPF_OPTS(bpf_kprobe_opts, first_opts);
static LIBBPF_OPTS(bpf_kprobe_opts, after_opts);

static void attach_first(struct later *skel)
{
	bpf_program__attach_kprobe_opts(skel->progs.configured_first, "do_nanosleep", &first_opts);
}

static void attach_after(struct later *skel)
{
	bpf_program__attach_kprobe_opts(skel->progs.configured_after, "do_nanosleep", &after_opts);
}

int main(void)
{
	struct later *skel = later__open_and_load();

	first_opts.attach_mode = PROBE_ATTACH_MODE_LINK;
	attach_first(skel);
	attach_after(skel);
	after_opts.attach_mode = PROBE_ATTACH_MODE_LINK;
	return 0;
}
""",
}


def test_global_opts_follow_the_calls_that_lead_to_the_attach(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, ORDERED_GLOBAL)
    assert flagged(findings) == {("later.bpf.c", "configured_first"): {"SECL202"}}
    assert_markers(ORDERED_GLOBAL, findings)
