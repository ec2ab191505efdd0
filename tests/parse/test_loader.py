"""Loader facts: what user-space code does with BPF programs, read with tree-sitter."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from secl.parse.loader import LoaderFact, extract_loader_facts, is_loader


def facts(source: str, kind: str | None = None) -> list[LoaderFact]:
    data = source.encode()
    found = extract_loader_facts("loader.c", data).facts
    return [f for f in found if kind is None or f.kind == kind]


def progs(found: list[LoaderFact]) -> set[tuple[str | None, str | None, str | None]]:
    return {
        (f.program.owner.kind, f.program.owner.name, f.program.name) for f in found if f.program
    }


def values(found: list[LoaderFact]) -> set:
    return {f.value for f in found}


SKELETON_OFFSETS = r"""
#include <stdio.h>
#include "probe.skel.h"

#define BODY_OFF 0x10
#define NO_OFF   0

static int attach_body(struct probe *skel)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = BODY_OFF, .retprobe = false);
	struct bpf_link *l;

	/* bpf_program__attach_kprobe_opts(skel->progs.in_comment, "x", &opts); */
	puts("bpf_program__attach_kprobe_opts(skel->progs.in_string, \"x\", &opts)");
	l = bpf_program__attach_kprobe_opts(skel->progs.body, "do_unlinkat", &opts);
	return l ? 0 : -1;
}

static int attach_entry(struct probe *skel)
{
	DECLARE_LIBBPF_OPTS(bpf_kprobe_opts, kopts,
		.offset = NO_OFF,
		.bpf_cookie = 0xdeadbeef,
	);
	skel->links.entry = bpf_program__attach_kprobe_opts(skel->progs.entry, "do_unlinkat", &kopts);
	return 0;
}
"""


def test_offsets_through_defines_and_initialisers() -> None:
    offsets = facts(SKELETON_OFFSETS, "attach-offset")
    assert progs(offsets) == {("skeleton", "probe", "body")}
    assert values(offsets) == {0x10}
    (offset,) = offsets
    assert offset.span.start.row == 10  # the `.offset = BODY_OFF` line proves it
    assert offset.call is not None and offset.call.start.row == 15
    assert offset.targets == ("do_unlinkat",)


def test_comments_and_strings_are_not_code() -> None:
    attached = progs(facts(SKELETON_OFFSETS, "attach"))
    assert ("skeleton", "probe", "in_comment") not in attached
    assert ("skeleton", "probe", "in_string") not in attached
    assert attached == {("skeleton", "probe", "body"), ("skeleton", "probe", "entry")}


STORES_AND_PARAMS = r"""
#include "probe.skel.h"

static void run(struct probe *skel, enum probe_attach_mode attach_mode, long where)
{
	DECLARE_LIBBPF_OPTS(bpf_kprobe_opts, kprobe_opts);
	struct bpf_link *link;

	kprobe_opts.attach_mode = attach_mode;
	kprobe_opts.retprobe = false;
	kprobe_opts.offset = where;
	link = bpf_program__attach_kprobe_opts(skel->progs.handle, NULL, &kprobe_opts);
	bpf_link__destroy(link);
}

void test_modes(void)
{
	struct probe *skel = probe__open_and_load();

	run(skel, PROBE_ATTACH_MODE_DEFAULT, 0);
	run(skel, PROBE_ATTACH_MODE_LINK, 0);
	run(skel, PROBE_ATTACH_MODE_PERF, ksym_get_addr("do_nanosleep"));
	probe__destroy(skel);
}
"""


def test_values_follow_parameters_to_every_caller() -> None:
    modes = facts(STORES_AND_PARAMS, "attach-mode")
    assert values(modes) == {"PROBE_ATTACH_MODE_LINK", "PROBE_ATTACH_MODE_PERF"}
    rows = {f.value: f.span.start.row for f in modes}
    assert rows["PROBE_ATTACH_MODE_LINK"] == 21  # the caller's argument is the proof
    offsets = facts(STORES_AND_PARAMS, "attach-offset")
    # ksym_get_addr(): not visible, may be nonzero; named by the expression stored
    assert values(offsets) == {"where"}
    address = facts(STORES_AND_PARAMS, "attach-address")
    assert progs(address) == {("skeleton", "probe", "handle")}


OBJECT_TABLES = r"""
static const char *const names[] = { "kp_open", "kp_close" };
static const struct { const char *prog; const char *sym; int off; } targets[] = {
	{ "kp_read", "vfs_read", 4 },
	{ .sym = "vfs_write", .prog = "kp_write", .off = 0 },
};

int main(int argc, char **argv)
{
	struct bpf_object *obj = bpf_object__open_file("tables.bpf.o", NULL);
	struct bpf_program *prog;
	LIBBPF_OPTS(bpf_kprobe_opts, opts);
	int i;

	opts.offset = strtoul(argv[1], NULL, 0);
	for (i = 0; i < 2; i++) {
		prog = bpf_object__find_program_by_name(obj, names[i]);
		bpf_program__attach_kprobe_opts(prog, "do_sys_open", &opts);
	}
	for (i = 0; i < 2; i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(obj, targets[i].prog);
		bpf_program__attach_kprobe(p, false, targets[i].sym);
	}
	bpf_object__for_each_program(prog, obj) {
		bpf_program__set_expected_attach_type(prog, BPF_TRACE_KPROBE_MULTI);
	}
	return 0;
}
"""


def test_tables_of_names_and_for_each_program() -> None:
    found = extract_loader_facts("loader.c", OBJECT_TABLES.encode())
    assert found.objects == frozenset({"tables.bpf.o"})
    offsets = [f for f in found.facts if f.kind == "attach-offset"]
    # names[] feeds `prog`; the for_each loop that reuses the variable comes later.
    assert {f.program.name for f in offsets} == {"kp_open", "kp_close"}
    assert values(offsets) == {"strtoul(argv[1], NULL, 0)"}  # read from input
    attach = {(f.program.name, f.targets) for f in found.facts if f.kind == "attach"}
    # Row by row: each program with its own row's symbol.
    assert ("kp_read", ("vfs_read",)) in attach
    assert ("kp_write", ("vfs_write",)) in attach
    types = [f for f in found.facts if f.kind == "expected-attach-type"]
    assert {(f.program.owner.kind, f.program.owner.name) for f in types} == {
        ("object", "tables.bpf.o")
    }
    assert None in {f.program.name for f in types}  # every program of the object


LINK_INFO = r"""
#include "watch.skel.h"

static int check_perf_link(struct bpf_link *link, bool retprobe)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);
	int err;

	memset(&info, 0, sizeof(info));
	err = bpf_link_get_info_by_fd(bpf_link__fd(link), &info, &len);
	if (err)
		return err;
	if (info.type != BPF_LINK_TYPE_PERF_EVENT)
		return -1;
	return info.perf_event.kprobe.missed > 0;
}

static __u64 prog_misses(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	bpf_obj_get_info_by_fd(fd, &info, &len);
	return info.recursion_misses;
}

void test_watch(void)
{
	struct watch *skel = watch__open_and_load();
	struct bpf_link *l;

	watch__attach(skel);
	check_perf_link(skel->links.on_entry, false);
	l = bpf_program__attach_kprobe(skel->progs.on_exit, true, "do_exit");
	check_perf_link(l, true);
	prog_misses(bpf_program__fd(skel->progs.on_other));
}
"""


def test_link_info_through_a_helper_taking_the_link() -> None:
    info = facts(LINK_INFO, "link-info")
    assert progs(info) == {("skeleton", "watch", "on_entry"), ("skeleton", "watch", "on_exit")}
    assert values(info) == {"BPF_LINK_TYPE_PERF_EVENT", "perf_event"}
    missed = facts(LINK_INFO, "missed-count")
    assert progs(missed) == progs(info)
    auto = facts(LINK_INFO, "auto-attach")
    assert progs(auto) == {("skeleton", "watch", None)}
    assert auto[0].function == "test_watch"


FLAGS_AND_TYPES = r"""
#include "misc.skel.h"
struct env { struct misc *skel; int verbose; };

static void prepare(struct env *e)
{
	bpf_program__set_flags(e->skel->progs.sleepy, BPF_F_SLEEPABLE | BPF_F_TEST_RND_HI32);
	bpf_program__set_flags(e->skel->progs.awake, BPF_F_TEST_RND_HI32);
	bpf_program__set_type(e->skel->progs.retyped, BPF_PROG_TYPE_PERF_EVENT);
	bpf_program__set_autoload(e->skel->progs.off, false);
	libbpf_register_prog_handler("kprobe+", BPF_PROG_TYPE_TRACEPOINT, 0, NULL);
}

static void perf(struct env *e, int pfd)
{
	e->skel->links.sampled = bpf_program__attach_perf_event(e->skel->progs.sampled, pfd);
	bpf_link_create(bpf_program__fd(e->skel->progs.raw), pfd, BPF_PERF_EVENT, NULL);
}
"""


def test_struct_fields_typed_as_skeletons() -> None:
    assert progs(facts(FLAGS_AND_TYPES, "sleepable")) == {("skeleton", "misc", "sleepy")}
    assert progs(facts(FLAGS_AND_TYPES, "set-type")) == {("skeleton", "misc", "retyped")}
    assert values(facts(FLAGS_AND_TYPES, "autoload")) == {"false"}
    assert values(facts(FLAGS_AND_TYPES, "prog-handler")) == {"kprobe+"}
    perf = facts(FLAGS_AND_TYPES, "perf-event")
    assert progs(perf) == {("skeleton", "misc", "sampled"), ("skeleton", "misc", "raw")}


NOT_EVIDENCE = r"""
#include "quiet.skel.h"
enum attach_mode { ATTACH_NONE, ATTACH_LINK = 3 };
struct cfg { enum attach_mode attach_mode; long offset; };

static void xdp_setup(int ifindex, struct bpf_program *xdp)
{
	enum xdp_attach_mode attach_mode = XDP_MODE_SKB;
	struct cfg c = { .attach_mode = ATTACH_LINK, .offset = 64 };

	c.offset = 128;
	xdp_program__attach(xdp, ifindex, attach_mode, 0);
}

static void run(struct quiet *skel)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 0, .attach_mode = PROBE_ATTACH_MODE_DEFAULT);
	LIBBPF_OPTS(bpf_uprobe_opts, uopts, .func_name = "malloc");
	struct cfg c = { .attach_mode = ATTACH_LINK, .offset = 64 };

	opts.bpf_cookie = c.offset;
	bpf_program__attach_kprobe_opts(skel->progs.a, "do_sys_open", &opts);
	bpf_program__attach_uprobe_opts(skel->progs.b, -1, "/usr/lib/libc.so.6", 0, &uopts);
	bpf_program__attach_kprobe_opts(skel->progs.c, "do_sys_open", NULL);
}
"""


def test_zero_offsets_default_modes_and_other_structs_give_no_evidence() -> None:
    found = facts(NOT_EVIDENCE)
    assert {f.kind for f in found} == {"attach"}


def test_prefilter() -> None:
    assert is_loader(LINK_INFO.encode())
    assert not is_loader(
        b"int main(void) { struct x *s = x__open_and_load(); return x__attach(s); }"
    )
    assert not is_loader(b'SEC("kprobe/x") int BPF_KPROBE(p) { return bpf_get_func_ip(ctx); }')


# -- robustness: any text, no exception; commented-out code adds nothing ------------------


_NAMES = st.sampled_from(["skel", "obj", "prog", "opts", "link", "info", "mode", "off", "x"])
_VALUES = st.one_of(
    st.sampled_from(["0", "0x10", "NULL", "PROBE_ATTACH_MODE_LINK", "argc", "f(x)", "a ? 1 : 0"]),
    _NAMES,
)
_FRAGMENTS = st.one_of(
    st.builds(
        "LIBBPF_OPTS(bpf_kprobe_opts, {}, .offset = {}, .attach_mode = {});".format,
        _NAMES,
        _VALUES,
        _VALUES,
    ),
    st.builds("{}.offset = {};".format, _NAMES, _VALUES),
    st.builds("{}->attach_mode = {};".format, _NAMES, _VALUES),
    st.builds(
        '{} = bpf_program__attach_kprobe_opts({}->progs.{}, "fn", &{});'.format,
        _NAMES,
        _NAMES,
        _NAMES,
        _NAMES,
    ),
    st.builds("bpf_link_get_info_by_fd(bpf_link__fd({}), &{}, &len);".format, _NAMES, _NAMES),
    st.builds("if ({}.type == BPF_LINK_TYPE_PERF_EVENT) return {};".format, _NAMES, _VALUES),
    st.builds('{} = bpf_object__find_program_by_name({}, "{}");'.format, _NAMES, _NAMES, _NAMES),
    st.builds("bpf_object__for_each_program({}, {}) {{".format, _NAMES, _NAMES),
    st.builds(
        "static int helper_{}(struct bpf_program *{}, long {}) {{".format, _NAMES, _NAMES, _NAMES
    ),
    st.builds("helper_{}({}, {});".format, _NAMES, _NAMES, _VALUES),
    st.builds("struct {} *{} = {}__open_and_load();".format, _NAMES, _NAMES, _NAMES),
    st.sampled_from(
        ["}", "{", "(", ")", ";", "#define OFF 4", "#if 0", "#endif", '"str', "/*", "*/"]
    ),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=25))
def test_any_loader_text_is_read_without_error(fragments: list[str]) -> None:
    body = "\n".join(fragments)
    source = f'#include "skel.skel.h"\nint main(int argc, char **argv)\n{{\n{body}\n}}\n'
    found = extract_loader_facts("fuzz.c", source.encode())
    assert all(f.path == "fuzz.c" for f in found.facts)
    if "*/" not in body:
        commented = f"/*\n{body}\n*/\nint main(void) {{ return 0; }}\n"
        assert extract_loader_facts("fuzz.c", commented.encode()).facts == []
