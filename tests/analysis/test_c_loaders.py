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
    + probe("after_goto", "ok: SECL202")
    + probe("helper_first", "ok: SECL202")
    + probe("helper_second", "ruleid: SECL202"),
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

static void attach_with(struct bpf_program *prog, struct bpf_kprobe_opts *o)
{
	bpf_program__attach_kprobe_opts(prog, "do_nanosleep", o);
}

static void through_a_helper(struct order *skel)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts);

	attach_with(skel->progs.helper_first, &opts);
	opts.attach_mode = PROBE_ATTACH_MODE_LINK;
	attach_with(skel->progs.helper_second, &opts);
}

int main(int argc, char **argv)
{
	struct order *skel = order__open_and_load();

	through_a_helper(skel);
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
        ("order.bpf.c", "helper_second"): {"SECL202"},
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


# -- item 1: programs reached through struct fields and build-time names -------------------

ATTACHER = r"""
#include <stdbool.h>
#include <bpf/libbpf.h>
#include "calib.skel.h"

#ifndef SKEL_NAME
#error "build with -DSKEL_NAME=<skeleton> -DSKEL_HEADER=<its header>"
#endif

#define __str(x) #x
#define __xstr(x) __str(x)
#include __xstr(SKEL_HEADER)

#define __cat(a, b) a ## b
#define __paste(a, b) __cat(a, b)
#define SKEL_LOAD(s) __paste(SKEL_NAME, __load)(s)
#define MULTI BPF_TRACE_KPROBE_MULTI

struct func_info {
	const char *name;
	unsigned long addr;
};

struct attacher {
	struct SKEL_NAME *skel;
	struct func_info *funcs;
	int func_cnt;
	bool multi;
};

int attacher_prepare(struct attacher *att)
{
	struct calib *calib = calib__open_and_load();

	calib__destroy(calib);
	if (att->multi) {
		/* what the upgrade would do anyway: no SECL207 */
		bpf_program__set_expected_attach_type(att->skel->progs.kentry, MULTI);
		bpf_program__set_expected_attach_type(att->skel->progs.kexit, MULTI);
	}
	return SKEL_LOAD(att->skel);
}

int attacher_attach(struct attacher *att)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts);
	struct bpf_link *link;
	int i;

	for (i = 0; i < att->func_cnt; i++) {
		opts.offset = att->funcs[i].addr;
		opts.retprobe = false;
		link = bpf_program__attach_kprobe_opts(att->skel->progs.kentry, NULL, &opts);
		if (!link)
			return -1;
		opts.retprobe = true;
		link = bpf_program__attach_kprobe_opts(att->skel->progs.kexit, NULL, &opts);
		if (!link)
			return -1;
	}
	return 0;
}
"""

MASS_ATTACH = {
    "tool.bpf.c": PROBES
    + probe("kentry", "ruleid: SECL201, ok: SECL207")
    + probe("kexit", "ruleid: SECL201, ok: SECL207", "kretprobe"),
    "calib.bpf.c": PROBES + probe("calib_entry", "ok: SECL201", "ksyscall/nanosleep"),
    "attacher.c": ATTACHER,
}


def test_program_behind_a_struct_field_and_a_macro_named_skeleton(tmp_path: Path) -> None:
    # No -D anywhere: SKEL_NAME is unknown, so the programs link by name (one source has them).
    findings, _ = check(tmp_path, MASS_ATTACH)
    assert flagged(findings) == {
        ("tool.bpf.c", "kentry"): {"SECL201"},
        ("tool.bpf.c", "kexit"): {"SECL201"},
    }
    assert_markers(MASS_ATTACH, findings)
    message = next(f.message for f in findings if f.program == "kentry")
    assert "by address" in message and "`att->funcs[i].addr`" in message


def test_a_program_name_in_two_sources_is_ambiguous_without_the_build_name(tmp_path: Path) -> None:
    files = {**MASS_ATTACH, "other.bpf.c": PROBES + probe("kentry", "ok: SECL201")}
    files["tool.bpf.c"] = (
        PROBES + probe("kentry", "ok: SECL201") + probe("kexit", "ruleid: SECL201")
    )
    findings, _ = check(tmp_path, files)
    assert flagged(findings) == {("tool.bpf.c", "kexit"): {"SECL201"}}
    assert flagged(findings, "SECL002") == {
        ("tool.bpf.c", "kentry"): {"SECL002"},
        ("other.bpf.c", "kentry"): {"SECL002"},
    }


MAKEFILE = """
OUTPUT := .output
CLANG ?= clang
BPFTOOL ?= $(abspath $(OUTPUT)/bpftool)
CFLAGS := -g -Wall

$(OUTPUT)/%.bpf.o: %.bpf.c | $(OUTPUT)
\t$(CLANG) -g -O2 -target bpf -c $(filter %.c,$^) -o $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o | $(OUTPUT)
\t$(BPFTOOL) gen skeleton $< > $@

$(OUTPUT)/attacher.o: CFLAGS += -DSKEL_NAME=tool_bpf -DSKEL_HEADER=tool.skel.h

$(OUTPUT)/%.o: %.c $(wildcard %.h) | $(OUTPUT)
\t$(CC) $(CFLAGS) -c $(filter %.c,$^) -o $@
"""


def test_build_time_skeleton_name_from_the_makefile(tmp_path: Path) -> None:
    files = {**MASS_ATTACH, "other.bpf.c": PROBES + probe("kentry", "ok: SECL201, SECL002")}
    files["Makefile"] = MAKEFILE
    findings, _ = check(tmp_path, files)
    # -DSKEL_NAME=tool_bpf: bpftool's name for tool.bpf.o, so tool.bpf.c, and no ambiguity
    assert flagged(findings) == {
        ("tool.bpf.c", "kentry"): {"SECL201"},
        ("tool.bpf.c", "kexit"): {"SECL201"},
    }
    assert not flagged(findings, "SECL002")
    assert_markers(files, findings)


def test_build_time_skeleton_name_from_defines(tmp_path: Path) -> None:
    files = {**MASS_ATTACH, "other.bpf.c": PROBES + probe("kentry", "ok: SECL201, SECL002")}
    findings, _ = check(tmp_path, files, defines=("SKEL_NAME=tool_bpf",))
    assert flagged(findings) == {
        ("tool.bpf.c", "kentry"): {"SECL201"},
        ("tool.bpf.c", "kexit"): {"SECL201"},
    }
    assert_markers(files, findings)


def test_build_time_skeleton_name_from_compile_commands(tmp_path: Path) -> None:
    files = {**MASS_ATTACH, "other.bpf.c": PROBES + probe("kentry", "ok: SECL201, SECL002")}
    entry = {
        "directory": str(tmp_path),
        "file": "attacher.c",
        "arguments": ["cc", "-DSKEL_NAME=tool_bpf", "-DSKEL_HEADER=tool.skel.h", "-c",
                      "attacher.c"],
    }  # fmt: skip
    files["compile_commands.json"] = json.dumps([entry])
    findings, _ = check(tmp_path, files)
    assert flagged(findings) == {
        ("tool.bpf.c", "kentry"): {"SECL201"},
        ("tool.bpf.c", "kexit"): {"SECL201"},
    }


def test_hand_set_attach_type_other_than_the_upgrade_s_is_still_flagged(tmp_path: Path) -> None:
    files = dict(MASS_ATTACH)
    files["attacher.c"] = ATTACHER.replace(
        "progs.kexit, MULTI", "progs.kexit, BPF_TRACE_KPROBE_SESSION"
    )
    findings, _ = check(tmp_path, files)
    assert flagged(findings)[("tool.bpf.c", "kexit")] == {"SECL201", "SECL207"}
    assert "SECL207" not in flagged(findings)[("tool.bpf.c", "kentry")]


# -- item 2: linked skeletons ---------------------------------------------------------------

LINKED = {
    "entry.bpf.c": PROBES + probe("on_entry", "ruleid: SECL202"),
    "exit.bpf.c": PROBES + probe("on_exit", "ruleid: SECL201", "kretprobe"),
    "common.bpf.c": PROBES + probe("shared_probe", "ruleid: SECL202"),
    "single.bpf.c": PROBES + probe("single_probe", "ok: SECL202"),
    "unlinked/stray.bpf.c": PROBES + probe("on_exit", "ok: SECL201"),
    "Makefile": """
OUTPUT := .output
BPFTOOL := bpftool
LINKED_OBJS := $(addprefix $(OUTPUT)/,entry.bpf.o exit.bpf.o)

$(OUTPUT)/%.bpf.o: %.bpf.c
\tclang -g -O2 -target bpf -c $< -o $@

$(OUTPUT)/tool.bpf.o: $(LINKED_OBJS)
\t$(BPFTOOL) gen object $@ $^

$(OUTPUT)/tool.skel.h: $(OUTPUT)/tool.bpf.o
\t$(BPFTOOL) gen skeleton $< name tool > $@

# every object also carries the shared probes (a pattern rule with an extra prerequisite)
$(OUTPUT)/%.full.bpf.o: $(OUTPUT)/%.bpf.o $(OUTPUT)/common.bpf.o
\t$(BPFTOOL) gen object $@ $^
""",
    "loader.c": r"""
#include <bpf/libbpf.h>
#include "tool.skel.h"
#include "single.skel.h"

int main(void)
{
	struct tool *skel = tool__open_and_load();
	struct single_full_bpf *single = single_full_bpf__open_and_load();
	LIBBPF_OPTS(bpf_kprobe_opts, link_mode, .attach_mode = PROBE_ATTACH_MODE_LINK);
	LIBBPF_OPTS(bpf_kprobe_opts, at_offset, .offset = 4);

	bpf_program__attach_kprobe_opts(skel->progs.on_entry, "do_nanosleep", &link_mode);
	bpf_program__attach_kprobe_opts(skel->progs.on_exit, "do_nanosleep", &at_offset);
	bpf_program__attach_kprobe_opts(single->progs.shared_probe, "do_nanosleep", &link_mode);
	bpf_program__attach_kprobe(single->progs.single_probe, false, "do_nanosleep");
	return 0;
}
""",
}


def test_linked_skeleton_holds_the_programs_of_every_linked_source(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, LINKED)
    assert flagged(findings) == {
        ("entry.bpf.c", "on_entry"): {"SECL202"},
        ("exit.bpf.c", "on_exit"): {"SECL201"},
        ("common.bpf.c", "shared_probe"): {"SECL202"},
    }
    assert not flagged(findings, "SECL002")
    assert_markers(LINKED, findings)


def test_one_linked_source_alone_finds_the_loader_of_its_skeleton(tmp_path: Path) -> None:
    """pre-commit passes one changed file: `exit.bpf.c` is linked into skeleton `tool`,
    whose loader names neither the file nor its stem."""
    findings, _ = check(tmp_path, LINKED, paths=["exit.bpf.c"])
    assert flagged(findings) == {("exit.bpf.c", "on_exit"): {"SECL201"}}
    loader, _ = check(tmp_path / "again", LINKED, paths=["loader.c"])
    assert flagged(loader) == {}  # findings stay on the files given


def test_skeleton_map_lists_the_sources_of_a_linked_skeleton(tmp_path: Path) -> None:
    files = {k: v for k, v in LINKED.items() if k != "Makefile"}
    mapped = {"tool": (str(tmp_path / "entry.bpf.c"), str(tmp_path / "exit.bpf.c"))}
    findings, _ = check(tmp_path, files, skeleton_map=mapped)
    assert flagged(findings) == {
        ("entry.bpf.c", "on_entry"): {"SECL202"},
        ("exit.bpf.c", "on_exit"): {"SECL201"},
    }
    # without the map (or a Makefile) nothing names what `tool` is built from
    bare, _ = check(tmp_path / "bare", files)
    assert not flagged(bare)


# -- item 5: include paths and silent losses -----------------------------------------------

WRAPPED = {
    "src/probes.bpf.c": """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <project/common.bpf.h>

KPROBE_PROG(do_unlinkat)	// ruleid: SECL001
{
	return 0;
}

TRACE_PROG(sched, sched_switch)	// ruleid: SECL001
int on_switch(void *ctx)
{
	return 0;
}

SEC("xdp")	// ok: SECL001
int plain(struct xdp_md *ctx)
{
	return 0;
}
""",
    "include/project/common.bpf.h": """
#define KPROBE_PROG(fn) SEC("kprobe/" #fn) int kprobe_##fn(struct pt_regs *ctx)
#define TRACE_PROG(cat, ev) SEC("tracepoint/" #cat "/" #ev)
""",
}


def _sites(tmp_path: Path, **config) -> dict:
    from secl.api import load
    from secl.config import Config
    from tests.catalogue_harness import write_files

    write_files(tmp_path, WRAPPED)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        run = load(["src"], Config(root=str(tmp_path), select=("ALL",), **config))
    finally:
        os.chdir(cwd)
    return {(s.program, s.section): s for s in run.project.sites if s.kind == "program"}


def test_programs_of_a_header_not_found_are_secl001_naming_macro_and_header(tmp_path) -> None:
    sites = _sites(tmp_path)
    assert set(sites) == {(None, None), ("on_switch", None), ("plain", "xdp")}
    lost = sites[(None, None)]
    assert lost.unresolved_macro == "KPROBE_PROG"
    assert "<project/common.bpf.h>" in (lost.unresolved_reason or "")
    assert "--include-dir" in (lost.unresolved_reason or "")
    from secl.analysis.notes import unresolved_section

    findings = list(unresolved_section(_project(tmp_path)))
    assert_markers(WRAPPED, findings)
    assert all("KPROBE_PROG" in f.message or "TRACE_PROG" in f.message for f in findings)


def _project(tmp_path: Path):
    from secl.api import load
    from secl.config import Config

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        return load(["src"], Config(root=str(tmp_path))).project
    finally:
        os.chdir(cwd)


def test_include_dirs_resolve_the_wrapper_macros(tmp_path: Path) -> None:
    sites = _sites(tmp_path, include_dirs=(str(tmp_path / "include"),))
    assert set(sites) == {
        ("kprobe_do_unlinkat", "kprobe/do_unlinkat"),
        ("on_switch", "tracepoint/sched/sched_switch"),
        ("plain", "xdp"),
    }


def test_include_dir_option_and_config_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.catalogue_harness import write_files

    write_files(tmp_path, WRAPPED)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))

    def sections(*args: str) -> list[dict]:
        r = subprocess.run(
            [sys.executable, "-m", "secl", "sections", "--output-format", "json", *args, "src"],
            cwd=tmp_path, capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        assert r.returncode in (0, 1), r.stderr
        return [e for e in json.loads(r.stdout) if e["kind"] == "program"]

    assert sorted(str(e["section"]) for e in sections()) == ["None", "None", "xdp"]
    expected = ["kprobe/do_unlinkat", "tracepoint/sched/sched_switch", "xdp"]
    assert sorted(e["section"] for e in sections("-I", "include")) == expected
    assert sorted(e["section"] for e in sections("--include-dir", "include")) == expected
    (tmp_path / ".secl.toml").write_text('include-dirs = ["include"]\n')
    assert sorted(e["section"] for e in sections()) == expected


def test_compile_commands_include_dirs_without_libclang(tmp_path: Path, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "clang.cindex", None)  # libclang cannot be imported
    entry = {
        "directory": str(tmp_path),
        "file": "src/probes.bpf.c",
        "arguments": ["clang", "-target", "bpf", "-Iinclude", "-c", "src/probes.bpf.c"],
    }
    (tmp_path / "compile_commands.json").write_text(json.dumps([entry]))
    sites = _sites(tmp_path)
    assert set(sites) == {
        ("kprobe_do_unlinkat", "kprobe/do_unlinkat"),
        ("on_switch", "tracepoint/sched/sched_switch"),
        ("plain", "xdp"),
    }


# -- item 6: struct_ops maps declared through a wrapper macro ------------------------------

STRUCT_OPS = {
    "sched.bpf.c": """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ops.h"

SEC("struct_ops/enqueue")	// ok: SECL115
void BPF_PROG(tiny_enqueue, struct task_struct *p, u64 flags)
{
}

SEC("struct_ops.s/init")	// ok: SECL115
s32 BPF_PROG(tiny_init)
{
	return 0;
}

SEC("struct_ops/dispatch")	// ruleid: SECL115
void BPF_PROG(tiny_forgotten, s32 cpu, struct task_struct *prev)
{
}

OPS_DEFINE(tiny_ops,
	.enqueue = (void *)tiny_enqueue,
	.init = (void *)tiny_init,
	.name = "tiny");
""",
    "ops.h": """
#define OPS_DEFINE(__name, ...) \\
	SEC(".struct_ops.link") struct sched_ext_ops __name = { __VA_ARGS__ }
""",
}


def test_struct_ops_members_listed_in_a_wrapper_macro_are_referenced(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, STRUCT_OPS)
    assert [(f.program, f.code) for f in findings if f.code == "SECL115"] == [
        ("tiny_forgotten", "SECL115")
    ]
    assert_markers(STRUCT_OPS, findings)


# -- item 7: names libbpf passes to BTF; `static` before SEC() -----------------------------

BTF_NAMES = {
    "trace.bpf.c": """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("fentry/do_unlinkat?")	// ruleid: SECL117
int BPF_PROG(question) { return 0; }

SEC("fexit/vfs-read")	// ruleid: SECL117
int BPF_PROG(dash) { return 0; }

SEC("tp_btf/sched_switch,")	// ruleid: SECL117
int BPF_PROG(comma) { return 0; }

SEC("lsm/file_open ")	// ruleid: SECL117
int BPF_PROG(space) { return 0; }

SEC("iter/task-file")	// ruleid: SECL117
int dashed_iter(void *ctx) { return 0; }

SEC("fentry/tcp_v4_rcv.isra.0")	// ok: SECL117
int BPF_PROG(dotted) { return 0; }

SEC("fentry/nf_conntrack:nf_ct_delete")	// ok: SECL117
int BPF_PROG(module_func) { return 0; }

SEC("fentry/:do_unlinkat")	// ok: SECL117
int BPF_PROG(empty_module) { return 0; }

SEC("struct_ops/not-looked-up")	// ok: SECL117
int BPF_PROG(ops_member) { return 0; }

SEC("?fentry/negative-test")	// ok: SECL117
int BPF_PROG(disabled) { return 0; }

SEC("fentry/set-at-runtime")	// ok: SECL117
int BPF_PROG(retargeted) { return 0; }

SEC("fentry/also-wrong")	// ruleid: SECL117
int BPF_PROG(other_retargeted) { return 0; }
""",
    "trace.c": r"""
#include "trace.skel.h"

int main(int argc, char **argv)
{
	struct trace *skel = trace__open();

	bpf_program__set_attach_target(skel->progs.retargeted, 0, argv[1]);
	return trace__load(skel);
}
""",
}


def test_btf_names_that_cannot_be_identifiers(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, BTF_NAMES)
    assert_markers(BTF_NAMES, findings)
    assert sorted(f.program for f in findings if f.code == "SECL117") == [
        "comma", "dash", "dashed_iter", "other_retargeted", "question", "space",
    ]  # fmt: skip
    message = next(f.message for f in findings if f.program == "question")
    assert "'?'" in message and "BTF" in message


def test_set_attach_target_on_a_variable_may_be_any_program(tmp_path: Path) -> None:
    files = dict(BTF_NAMES)
    files["trace.c"] = BTF_NAMES["trace.c"].replace(
        "bpf_program__set_attach_target(skel->progs.retargeted, 0, argv[1]);",
        "struct bpf_program *p = bpf_object__find_program_by_name(skel->obj, argv[2]);\n"
        "\tbpf_program__set_attach_target(p, 0, argv[1]);",
    )
    findings, _ = check(tmp_path, files)
    assert not [f for f in findings if f.code == "SECL117"]


STATIC_BEFORE = {
    "static.bpf.c": """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

static SEC("xdp") int before(struct xdp_md *ctx)	// ruleid: SECL111
{
	return XDP_PASS;
}

static __attribute__((section("xdp"))) int attribute(struct xdp_md *ctx)	// ruleid: SECL111
{
	return XDP_PASS;
}

static __always_inline int helper(void)
{
	return XDP_PASS;
}

/* not static */
SEC("xdp") int after_helper(struct xdp_md *ctx)	// ok: SECL111
{
	return helper();
}

static const char tag[] = "static";
SEC("xdp") int after_data(struct xdp_md *ctx)	// ok: SECL111
{
	return XDP_PASS;
}
""",
}


def test_static_before_the_section_is_static(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, STATIC_BEFORE)
    assert sorted(f.program for f in findings if f.code == "SECL111") == ["attribute", "before"]
    assert_markers(STATIC_BEFORE, findings)


SHAPES = {
    "shapes.bpf.c": PROBES
    + probe("from_array", "ruleid: SECL202")
    + probe("from_result", "ruleid: SECL202")
    + probe("from_void", "ruleid: SECL202")
    + probe("from_links", "ruleid: SECL202")
    + probe("never_attached", "ok: SECL202"),
    "shapes.c": r"""
#include <bpf/libbpf.h>
#include "shapes.skel.h"

struct app {
	struct shapes *skels[2];
	void *opaque;
};

static struct shapes *current(struct app *a)
{
	return a->skels[0];
}

int attach(struct app *a, int i)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .attach_mode = PROBE_ATTACH_MODE_LINK);
	struct shapes *hidden = a->opaque;

	a->skels[i]->links.from_links =
		bpf_program__attach_kprobe_opts(a->skels[i]->progs.from_array, "f", &opts);
	bpf_program__attach_kprobe_opts(current(a)->progs.from_result, "f", &opts);
	bpf_program__attach_kprobe_opts(((struct shapes *)a->opaque)->progs.from_void, "f", &opts);
	bpf_program__attach_kprobe_opts(hidden->progs.from_links, "f", &opts);
	return 0;
}
""",
}


def test_progs_through_arrays_results_and_casts(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, SHAPES)
    assert_markers(SHAPES, findings)


def test_a_statement_inside_a_body_is_no_lost_program(tmp_path: Path) -> None:
    # Annotations before the function make tree-sitter lose the body's braces: the
    # `bpf_for(...) { ... }` statement then looks like a definition at file scope.
    files = {
        "loop.bpf.c": """
#include <bpf/bpf_helpers.h>
#include "bpf_misc.h"

SEC("tc")
__success __retval(0)
int iterate(void *ctx)	// ok: SECL001
{
	struct list_head *head = get_head();
	int i;

	if (!head)
		return 0;
	bpf_for(i, 0, MAX_LOOP_ITER) {	// ok: SECL001
		if (bpf_core_read(&pos, sizeof(pos), &pos->next) || !pos)
			break;
		struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
		if (!e)
			break;
	}
	return 0;
}
""",
    }
    findings, _ = check(tmp_path, files)
    assert not [f for f in findings if f.code == "SECL001"]


ESCAPES = {
    "escape.bpf.c": PROBES
    + probe("read_back", "ruleid: SECL201")
    + probe("only_read", "ok: SECL201")
    + probe("reset_after", "ok: SECL201"),
    "escape.c": r"""
#include <stdio.h>
#include <bpf/libbpf.h>
#include "escape.skel.h"

int main(int argc, char **argv)
{
	struct escape *skel = escape__open_and_load();
	LIBBPF_OPTS(bpf_kprobe_opts, opts);
	long off = 0, key = 0;
	int fd = 3;

	sscanf(argv[1], "%li", &off);	/* may store anything */
	opts.offset = off;
	bpf_program__attach_kprobe_opts(skel->progs.read_back, "do_nanosleep", &opts);

	off = 0;
	bpf_map_update_elem(fd, &key, &off, 0);	/* reads it only */
	opts.offset = off;
	bpf_program__attach_kprobe_opts(skel->progs.only_read, "do_nanosleep", &opts);

	sscanf(argv[2], "%li", &off);
	off = 0;
	opts.offset = off;
	bpf_program__attach_kprobe_opts(skel->progs.reset_after, "do_nanosleep", &opts);
	return 0;
}
""",
}


def test_an_address_passed_to_a_call_may_be_written(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, ESCAPES)
    assert flagged(findings) == {("escape.bpf.c", "read_back"): {"SECL201"}}
    assert_markers(ESCAPES, findings)


def test_a_program_the_loader_never_loads_is_no_secl117(tmp_path: Path) -> None:
    files = dict(BTF_NAMES)
    files["trace.c"] = BTF_NAMES["trace.c"].replace(
        "bpf_program__set_attach_target(skel->progs.retargeted, 0, argv[1]);",
        "bpf_program__set_attach_target(skel->progs.retargeted, 0, argv[1]);\n"
        "\tbpf_program__set_autoload(skel->progs.question, false);",
    )
    findings, _ = check(tmp_path, files)
    assert "question" not in {f.program for f in findings if f.code == "SECL117"}
    assert "dash" in {f.program for f in findings if f.code == "SECL117"}


def test_skeleton_map_and_include_dirs_in_the_configuration(tmp_path: Path) -> None:
    import pytest

    from secl.config import ConfigError, load_config

    path = tmp_path / ".secl.toml"
    path.write_text(
        'skeleton-map = { probe = "bpf/probe.bpf.c", tool = ["bpf/a.bpf.c", "bpf/b.bpf.c"] }\n'
        'include-dirs = ["include", "/opt/project/include"]\n'
    )
    config = load_config(str(path))
    assert config.skeleton_map == {
        "probe": (str(tmp_path / "bpf/probe.bpf.c"),),
        "tool": (str(tmp_path / "bpf/a.bpf.c"), str(tmp_path / "bpf/b.bpf.c")),
    }
    assert config.include_dirs == (str(tmp_path / "include"), "/opt/project/include")
    assert ("tool", str(tmp_path / "bpf/b.bpf.c")) in config.skeleton_pairs()
    path.write_text("skeleton-map = { tool = [1, 2] }\n")
    with pytest.raises(ConfigError, match=r"skeleton-map\.tool"):
        load_config(str(path))


def test_linked_skeleton_from_cmake(tmp_path: Path) -> None:
    files = {k: v for k, v in LINKED.items() if k != "Makefile"}
    files["CMakeLists.txt"] = """
set(OUT ${CMAKE_CURRENT_BINARY_DIR})
add_custom_command(OUTPUT ${OUT}/tool.bpf.o
  COMMAND ${BPFTOOL_EXE} gen object ${OUT}/tool.bpf.o ${OUT}/entry.bpf.o ${OUT}/exit.bpf.o
  DEPENDS entry exit)
add_custom_command(OUTPUT ${OUT}/tool.skel.h
  COMMAND ${BPFTOOL_EXE} gen skeleton ${OUT}/tool.bpf.o name tool > ${OUT}/tool.skel.h
  DEPENDS ${OUT}/tool.bpf.o)
"""
    findings, _ = check(tmp_path, files)
    assert flagged(findings) == {
        ("entry.bpf.c", "on_entry"): {"SECL202"},
        ("exit.bpf.c", "on_exit"): {"SECL201"},
    }
