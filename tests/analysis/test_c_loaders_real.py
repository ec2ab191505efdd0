"""Shapes of real C libbpf loaders (issue 11/12 precision): which loader opens which source
when several share a name, programs a loader takes out of the skeleton's attach, loader
libraries over libbpf. Every fixture is a small project written for the test."""

from __future__ import annotations

import os
from pathlib import Path

from tests.analysis.test_upgrade import check

PROBE = """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("uprobe/bin/tool:func")
int on_func(void *ctx) { return 0; }

SEC("kprobe/do_nanosleep")
int on_sleep(void *ctx) { return 0; }
"""


def codes(findings) -> set[tuple[str, str]]:
    return {(os.path.normpath(f.path), f.code) for f in findings}


# Two example directories with a source and loader of the same names: each loader opens the
# object of its own directory (built there), not the other one.
SAME_NAMES = {
    "a/probe.bpf.c": PROBE,
    "b/probe.bpf.c": PROBE,
    "a/probe.c": """
#include "probe.skel.h"
int main(void)
{
	struct probe_bpf *skel = probe_bpf__open_and_load();

	return probe_bpf__attach(skel);
}
""",
    "b/probe.c": """
#include "probe.skel.h"
int main(int argc, char **argv)
{
	struct probe_bpf *skel = probe_bpf__open_and_load();
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 8);

	skel->links.on_func = bpf_program__attach_uprobe(skel->progs.on_func, false, -1, argv[1], 0);
	skel->links.on_sleep = bpf_program__attach_kprobe_opts(skel->progs.on_sleep, "do_nanosleep", &opts);
	return 0;
}
""",
}


def test_a_loader_opens_the_source_of_its_own_directory(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, SAME_NAMES)
    found = codes(findings)
    # only a/ attaches through the skeleton, which parses the relative uprobe path
    assert ("a/probe.bpf.c", "SECL106") in found
    assert ("b/probe.bpf.c", "SECL106") not in found
    # b/'s offset is b/'s program's, not an ambiguity between the two
    assert ("b/probe.bpf.c", "SECL201") in found
    assert ("a/probe.bpf.c", "SECL201") not in found
    assert not [f for f in findings if f.code == "SECL002"]


def test_a_loader_between_two_sources_stays_ambiguous(tmp_path: Path) -> None:
    files = {
        "a/probe.bpf.c": PROBE,
        "b/probe.bpf.c": PROBE,
        "probe.c": SAME_NAMES["b/probe.c"],
    }
    findings, _ = check(tmp_path, files)
    found = codes(findings)
    assert ("a/probe.bpf.c", "SECL002") in found and ("b/probe.bpf.c", "SECL002") in found
    assert not [f for f in findings if f.code == "SECL201"]


# bpf_program__set_autoattach(prog, false): the skeleton's attach skips the program (a
# tail-call target), so libbpf never parses its section's attach suffix.
AUTOATTACH = {
    "hide.bpf.c": """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp/unused")
int patch(void *ctx) { return 0; }

SEC("tp/broken")
int exit_hook(void *ctx) { return 0; }
""",
    "hide.c": """
#include "hide.skel.h"
int main(void)
{
	struct hide_bpf *skel = hide_bpf__open();

	bpf_program__set_autoattach(skel->progs.patch, false);
	if (hide_bpf__load(skel))
		return 1;
	return hide_bpf__attach(skel);
}
""",
}


def test_autoattach_off_keeps_the_skeleton_from_parsing_the_suffix(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, AUTOATTACH)
    flagged = {(f.program, f.code) for f in findings}
    assert ("exit_hook", "SECL104") in flagged
    assert ("patch", "SECL104") not in flagged


def test_autoattach_off_does_not_stop_an_explicit_attach(tmp_path: Path) -> None:
    files = dict(AUTOATTACH)
    files["hide.c"] = files["hide.c"].replace(
        "return hide_bpf__attach(skel);", "return !bpf_program__attach(skel->progs.patch);"
    )
    findings, _ = check(tmp_path, files)
    assert ("patch", "SECL104") in {(f.program, f.code) for f in findings}


def test_a_helper_named_ebpf_object_is_no_windows_loader(tmp_path: Path) -> None:
    # eBPF for Windows is told by its own API's names; a project's helper
    # `ebpf_object_has_filter()` next to a libbpf skeleton is a libbpf loader.
    from tests.analysis.test_loaders import PROBE as ONE
    from tests.analysis.test_loaders import loaders, write

    write(
        tmp_path,
        {
            "dns.bpf.c": ONE.format(section="socket"),
            "dns.c": '#include "dns.skel.h"\nint ebpf_object_has_filter(void *obj);\n'
            "int main(void)\n{\n\tstruct dns_bpf *obj = dns_bpf__open();\n"
            "\treturn ebpf_object_has_filter(obj);\n}\n",
        },
    )
    assert loaders(tmp_path)["handle"]["kind"] == "libbpf"


# A loader that opens the object named after its own executable (`"%s_kern.o"` of argv[0])
# and sets the program's type itself: libbpf never needs the section name's type.
NAMED_AFTER_EXE = {
    "tool_kern.c": """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp_tool")
int tool_prog(struct xdp_md *ctx) { return 2; }
""",
    "tool_user.c": """
#include <stdio.h>
#include <bpf/libbpf.h>

int main(int argc, char **argv)
{
	struct bpf_program *prog;
	struct bpf_object *obj;
	char filename[256];

	snprintf(filename, sizeof(filename), "%s_kern.o", argv[0]);
	obj = bpf_object__open_file(filename, NULL);
	prog = bpf_object__next_program(obj, NULL);
	bpf_program__set_type(prog, BPF_PROG_TYPE_XDP);
	return bpf_object__load(obj);
}
""",
}


def test_an_object_named_after_the_executable(tmp_path: Path) -> None:
    files = dict(NAMED_AFTER_EXE)
    files["Makefile"] = "tprogs-y += tool\ntool-objs := tool_user.o\n"
    findings, _ = check(tmp_path, files)
    assert ("tool_kern.c", "SECL102") not in codes(findings)


def test_an_executable_built_from_another_file_names_nothing(tmp_path: Path) -> None:
    files = dict(NAMED_AFTER_EXE)
    files["Makefile"] = "tprogs-y += other\nother-objs := other_user.o\n"
    findings, _ = check(tmp_path, files)
    assert ("tool_kern.c", "SECL102") in codes(findings)


def test_cmake_names_the_executable_too(tmp_path: Path) -> None:
    files = dict(NAMED_AFTER_EXE)
    files["CMakeLists.txt"] = "add_executable(tool tool_user.c)\n"
    findings, _ = check(tmp_path, files)
    assert ("tool_kern.c", "SECL102") not in codes(findings)


# libxdp opens the object and sets the program's type itself (XDP, or EXT under its
# dispatcher): an XDP program in a section libbpf does not know still loads.
def test_a_libxdp_loader_sets_the_program_type(tmp_path: Path) -> None:
    files = {
        "sock_kern.c": NAMED_AFTER_EXE["tool_kern.c"].replace("xdp_tool", "xdp_sock"),
        "sock.c": """
#include <xdp/libxdp.h>
int main(void)
{
	struct xdp_program *prog = xdp_program__open_file("sock_kern.o", NULL, NULL);

	return xdp_program__attach(prog, 1, XDP_MODE_NATIVE, 0);
}
""",
    }
    findings, _ = check(tmp_path, files)
    assert ("sock_kern.c", "SECL102") not in codes(findings)
    files["sock.c"] = files["sock.c"].replace("xdp_program__open_file", "open_somehow")
    findings, _ = check(tmp_path, files)
    assert ("sock_kern.c", "SECL102") in codes(findings)


PASTED_LOADER = r"""
#include "cache.skel.h"

#define DEFINE_OPS(prefix)                      \
	static void *open_##prefix(void)        \
	{                                       \
		return prefix##_bpf__open();    \
	}

DEFINE_OPS(cache)

int main(void)
{
	return !open_cache();
}
"""


def test_a_skeleton_name_pasted_by_a_macro(tmp_path: Path) -> None:
    # `prefix##_bpf__open()` in a function-like macro, used as DEFINE_OPS(cache): the
    # preprocessor makes cache_bpf__open(), the skeleton of cache.bpf.c.
    from tests.analysis.test_loaders import PROBE as ONE
    from tests.analysis.test_loaders import loaders, write

    write(tmp_path, {"cache.bpf.c": ONE.format(section="kprobe/f"), "main.c": PASTED_LOADER})
    assert loaders(tmp_path)["handle"]["kind"] == "libbpf"
    (tmp_path / "main.c").write_text(PASTED_LOADER.replace("DEFINE_OPS(cache)", ""))
    assert loaders(tmp_path)["handle"]["kind"] == "libbpf-assumed"


# A project's own function over bpf_object__open_file() (a tools library that finds the
# object in an install directory): its callers open the object they name.
WRAPPED = {
    "dump_kern.c": NAMED_AFTER_EXE["tool_kern.c"].replace("xdp_tool", "xdp_dump"),
    "lib/util.c": """
#include <stdio.h>
#include <bpf/libbpf.h>

struct bpf_object *open_obj(const char *name,
			struct bpf_object_open_opts *opts)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "/usr/lib/tools/%s", name);
	return bpf_object__open_file(buf, opts);
}

void log_name(const char *name)
{
	printf("%s\\n", name);
}
""",
    "dump.c": """
#include <bpf/libbpf.h>

struct bpf_object *open_obj(const char *name, struct bpf_object_open_opts *opts);

int main(void)
{
	struct bpf_object *obj = open_obj("dump_kern.o", NULL);
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, "tool_prog");

	bpf_program__set_type(prog, BPF_PROG_TYPE_XDP);
	return bpf_object__load(obj);
}
""",
}


def test_a_function_of_the_project_that_opens_objects(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, WRAPPED)
    assert ("dump_kern.c", "SECL102") not in codes(findings)
    files = dict(WRAPPED)
    files["dump.c"] = files["dump.c"].replace(
        'open_obj("dump_kern.o", NULL)', 'NULL; log_name("dump_kern.o")'
    )
    findings, _ = check(tmp_path, files)
    assert ("dump_kern.c", "SECL102") in codes(findings)


# One kprobe program attached as a kprobe or, for `binary:func` targets, as a uprobe (the
# program types are the same): upgraded to a multi-kprobe it can only make kprobe_multi links.
CROSS = {
    "lat.bpf.c": """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("kprobe/dummy")   // ruleid: SECL206
int dummy_kprobe(void *ctx) { return 0; }

SEC("kprobe/dummy2")   // ok: SECL206
int only_kprobe(void *ctx) { return 0; }

SEC("uprobe")   // ok: SECL206
int real_uprobe(void *ctx) { return 0; }

SEC("kprobe.single/dummy3")   // ok: SECL206
int single_kprobe(void *ctx) { return 0; }
""",
    "lat.c": """
#include "lat.skel.h"
int main(int argc, char **argv)
{
	struct lat_bpf *obj = lat_bpf__open_and_load();

	if (argc > 2) {
		obj->links.dummy_kprobe = bpf_program__attach_uprobe(obj->progs.dummy_kprobe,
										false, -1, argv[1], 64);
		obj->links.single_kprobe = bpf_program__attach_uprobe(obj->progs.single_kprobe,
										false, -1, argv[1], 64);
	} else {
		obj->links.dummy_kprobe = bpf_program__attach_kprobe(obj->progs.dummy_kprobe,
										false, argv[1]);
	}
	obj->links.only_kprobe = bpf_program__attach_kprobe(obj->progs.only_kprobe, false, argv[1]);
	obj->links.real_uprobe = bpf_program__attach_uprobe(obj->progs.real_uprobe, false, -1,
									argv[1], 64);
	return 0;
}
""",
}


def test_a_kprobe_program_attached_as_a_uprobe(tmp_path: Path) -> None:
    from tests.analysis.test_upgrade import assert_markers

    findings, _ = check(tmp_path, CROSS)
    assert_markers(CROSS, findings)
    (hit,) = [f for f in findings if f.code == "SECL206"]
    assert "attached as a uprobe (lat.c:7)" in hit.message


def test_an_object_named_by_a_macro_of_a_header(tmp_path: Path) -> None:
    # `#define RAW_OBJ "raw_kern.o"` in a header; the loader opens INSTALL_DIR "/" RAW_OBJ.
    files = {
        "raw_kern.c": NAMED_AFTER_EXE["tool_kern.c"].replace("xdp_tool", "xdp_raw"),
        "objs.h": '#define INSTALL_DIR "/opt/tool"\n#define RAW_OBJ "raw_kern.o"\n'
        '#define OTHER_OBJ "other_kern.o"\n',
        "loader.c": """
#include <bpf/libbpf.h>
#include "objs.h"

int main(void)
{
	char path[] = INSTALL_DIR "/" RAW_OBJ;
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, "tool_prog");

	bpf_program__set_type(prog, BPF_PROG_TYPE_XDP);
	return bpf_object__load(obj);
}
""",
    }
    findings, _ = check(tmp_path, files)
    assert ("raw_kern.c", "SECL102") not in codes(findings)
    files["loader.c"] = files["loader.c"].replace("RAW_OBJ;", "OTHER_OBJ;")
    findings, _ = check(tmp_path, files)
    assert ("raw_kern.c", "SECL102") in codes(findings)


# A loader that opens an object only to read it (its BTF, its maps' layout) never loads its
# programs: libbpf checks a program's type only when it loads it (libbpf.c:
# bpf_object_load_prog()), so a section it cannot type is no failure there.
OPEN_ONLY = {
    "sock_kern.c": NAMED_AFTER_EXE["tool_kern.c"].replace("xdp_tool", "xdp_sock"),
    "btf_test.c": """
#include <bpf/libbpf.h>

static struct bpf_object *open_only(const char *file)
{
	return bpf_object__open_file(file, NULL);
}

int main(void)
{
	struct bpf_object *obj = open_only("sock_kern.o");

	return !bpf_object__btf(obj);
}
""",
}


def test_an_object_opened_and_never_loaded(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, OPEN_ONLY)
    assert ("sock_kern.c", "SECL102") not in codes(findings)


def test_an_object_loaded_by_a_helper_of_another_file(tmp_path: Path) -> None:
    files = dict(OPEN_ONLY)
    files["btf_test.c"] = files["btf_test.c"].replace(
        "return !bpf_object__btf(obj);", "return load_all(obj);"
    )
    files["helpers.c"] = (
        "#include <bpf/libbpf.h>\n\nint load_all(struct bpf_object *obj)\n{\n"
        "\treturn bpf_object__load(obj);\n}\n"
    )
    findings, _ = check(tmp_path, files)
    assert ("sock_kern.c", "SECL102") in codes(findings)


# iproute2 (`ip ... xdp obj F sec S`, `tc ... bpf obj F sec S`) sets every program's type
# from its command line, so a section libbpf cannot type is no failure there.
def test_an_object_loaded_by_ip_in_a_script(tmp_path: Path) -> None:
    files = {
        "meta_kern.c": NAMED_AFTER_EXE["tool_kern.c"].replace("xdp_tool", "xdp_mark"),
        "meta.sh": "#!/bin/bash\nBPF_FILE=meta_kern.o\nload() {\n"
        "\tip link set dev $1 xdp obj $2 sec xdp_mark\n}\nload eth0 $BPF_FILE\n",
    }
    findings, _ = check(tmp_path, files)
    assert ("meta_kern.c", "SECL102") not in codes(findings)
    files["meta.sh"] = "#!/bin/bash\ncp meta_kern.o /tmp/\n"
    (tmp_path / "meta.sh").unlink()
    findings, _ = check(tmp_path, files)
    assert ("meta_kern.c", "SECL102") in codes(findings)


def test_one_file_runs_pick_the_same_nearest_source(tmp_path: Path) -> None:
    whole, _ = check(tmp_path, SAME_NAMES)
    for path in ("a/probe.bpf.c", "b/probe.bpf.c"):
        alone, _ = check(tmp_path, SAME_NAMES, paths=[path])
        assert codes(alone) == {c for c in codes(whole) if c[0] == path}


def test_libxdp_over_an_object_libbpf_opened_sets_the_type(tmp_path: Path) -> None:
    files = {
        "sock_kern.c": NAMED_AFTER_EXE["tool_kern.c"].replace("xdp_tool", "xdp_sock"),
        "sock.c": """
#include <xdp/libxdp.h>
int main(void)
{
	struct bpf_object *obj = bpf_object__open_file("sock_kern.o", NULL);
	struct xdp_program *prog = xdp_program__from_bpf_obj(obj, "xdp_sock");

	return xdp_program__attach(prog, 1, XDP_MODE_NATIVE, 0);
}
""",
    }
    findings, _ = check(tmp_path, files)
    assert ("sock_kern.c", "SECL102") not in codes(findings)


# libbpf 0.x bpf_prog_load_xattr(): opens attr.file itself; a `.prog_type` given types every
# program of it (bpf_program__set_type()), so the section's name does not.
LOAD_XATTR = """
#include <stdio.h>
#include <bpf/libbpf.h>

int main(int argc, char **argv)
{
	struct bpf_prog_load_attr attr = {
		.prog_type = BPF_PROG_TYPE_XDP,
	};
	struct bpf_object *obj;
	char filename[256];
	int fd;

	snprintf(filename, sizeof(filename), "%s_kern.o", argv[0]);
	attr.file = filename;
	return bpf_prog_load_xattr(&attr, &obj, &fd);
}
"""


def test_bpf_prog_load_xattr_opens_the_object_and_types_its_programs(tmp_path: Path) -> None:
    files = {
        "tool_kern.c": NAMED_AFTER_EXE["tool_kern.c"],
        "tool_user.c": LOAD_XATTR,
        "other_kern.c": NAMED_AFTER_EXE["tool_kern.c"].replace("xdp_tool", "xdp_other"),
        "other.c": '#include "other.skel.h"\nint main(void) { return !other__open_and_load(); }\n',
        "Makefile": "TARGETS := tool\n$(TARGETS): %: %_user.c\n\t$(CC) -o $@ $<\n",
    }
    findings, _ = check(tmp_path, files)
    assert ("tool_kern.c", "SECL102") not in codes(findings)
    assert ("other_kern.c", "SECL102") in codes(findings)
    loader = kinds_of(tmp_path)["tool_kern.c"]
    assert loader.kind == "libbpf"
    assert [os.path.normpath(u.path) for u in loader.evidence] == ["tool_user.c"]
    # without the type, libbpf types the program by its section's name
    files["tool_user.c"] = LOAD_XATTR.replace("BPF_PROG_TYPE_XDP", "BPF_PROG_TYPE_UNSPEC")
    findings, _ = check(tmp_path, files)
    assert ("tool_kern.c", "SECL102") in codes(findings)


def kinds_of(root: Path) -> dict:
    from secl.analysis.loaders import assignments
    from secl.api import load
    from secl.config import Config

    cwd = os.getcwd()
    os.chdir(root)
    try:
        loaded = load(["."], Config(root=str(root)))
        return {os.path.normpath(p): a for p, a in assignments(loaded.project).items()}
    finally:
        os.chdir(cwd)


# A BPF `.c` that another BPF source #includes is compiled into the includer's object: the
# loader of `main_xdp.o` loads the programs of `entry.c` too.
INCLUDED = {
    "kernel/entry.c": """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp_hook")
int hook(struct xdp_md *ctx) { return 2; }
""",
    "kernel/main_xdp.c": """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "entry.c"

char _license[] SEC("license") = "GPL";
""",
    "user/load.c": """
#include <bpf/libbpf.h>

int main(void)
{
	struct bpf_object *obj = bpf_object__open("/opt/app/main_xdp.o");
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, obj)
		bpf_program__set_type(prog, BPF_PROG_TYPE_XDP);
	return bpf_object__load(obj);
}
""",
}


def test_a_c_file_included_by_a_bpf_source_is_loaded_with_it(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, INCLUDED)
    assert ("kernel/entry.c", "SECL102") not in codes(findings)
    loader = kinds_of(tmp_path)["kernel/entry.c"]
    assert loader.kind == "libbpf"
    assert [os.path.normpath(u.path) for u in loader.evidence] == ["user/load.c"]
    # the same loader without the type set: libbpf types `xdp_hook` by its name
    files = dict(INCLUDED)
    files["user/load.c"] = INCLUDED["user/load.c"].replace(
        "bpf_program__set_type(prog, BPF_PROG_TYPE_XDP)", "bpf_program__set_autoload(prog, 1)"
    )
    findings, _ = check(tmp_path, files)
    assert ("kernel/entry.c", "SECL102") in codes(findings)


def test_cmake_names_the_object_of_x_c_x_c_o(tmp_path: Path) -> None:
    # CMake's object of `tool_kern.c` (an OBJECT library) is `tool_kern.c.o`
    files = {
        "bpf/tool_kern.c": NAMED_AFTER_EXE["tool_kern.c"],
        "bpf/CMakeLists.txt": "add_library(tool_kern OBJECT tool_kern.c)\n",
        "tool_user.c": NAMED_AFTER_EXE["tool_user.c"].replace(
            'snprintf(filename, sizeof(filename), "%s_kern.o", argv[0]);',
            'snprintf(filename, sizeof(filename), "%s", "build/bpf/CMakeFiles/tool_kern.dir/tool_kern.c.o");',
        ),
    }
    findings, _ = check(tmp_path, files)
    assert ("bpf/tool_kern.c", "SECL102") not in codes(findings)
    loader = kinds_of(tmp_path)["bpf/tool_kern.c"]
    assert [os.path.normpath(u.path) for u in loader.evidence] == ["tool_user.c"]


# The object's name handed to a function of another file through a struct field: that
# function (over one more of its file) opens it and sets the type of its program.
HANDED = {
    "probe/probe.bpf.c": NAMED_AFTER_EXE["tool_kern.c"].replace("xdp_tool", "xdp_parser"),
    "probe/loader.c": """
#include <bpf/libbpf.h>
#include "probe.h"

static struct bpf_object *open_it(struct probe_cfg *cfg)
{
	struct bpf_object *obj = bpf_object__open_file(cfg->file, NULL);
	struct bpf_program *prog = bpf_object__next_program(obj, NULL);

	bpf_program__set_type(prog, BPF_PROG_TYPE_XDP);
	return obj;
}

struct bpf_object *load_and_pin(struct probe_cfg *cfg)
{
	struct bpf_object *obj = open_it(cfg);

	return bpf_object__load(obj) ? NULL : obj;
}
""",
    "probe/main.c": """
#include <stdio.h>
#include "probe.h"

#define OBJ_PATH "/opt/app/probe.bpf.o"

int main(void)
{
	struct probe_cfg cfg;

	snprintf(cfg.file, sizeof(cfg.file), "%s", OBJ_PATH);
	return load_and_pin(&cfg) == NULL;
}
""",
}


def test_an_object_handed_to_an_opening_function_of_another_file(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, HANDED)
    assert ("probe/probe.bpf.c", "SECL102") not in codes(findings)
    loader = kinds_of(tmp_path)["probe/probe.bpf.c"]
    assert {os.path.normpath(u.path) for u in loader.evidence} == {"probe/main.c", "probe/loader.c"}
    # a caller of an unrelated function names the object: nothing opens it there
    files = dict(HANDED)
    files["probe/main.c"] = HANDED["probe/main.c"].replace("load_and_pin(", "other_thing(")
    findings, _ = check(tmp_path, files)
    assert ("probe/probe.bpf.c", "SECL102") in codes(findings)


# A source written for iproute2's tc (its bpf_api.h over bpf_elf.h): tc gives every program
# the type of its command and picks the program by the section it is told.
TC_SOURCE = """
#include "../include/bpf_api.h"

__section("classifier")
int entry(struct __sk_buff *skb) { return 0; }

__section("jump_a")
int jump_a(struct __sk_buff *skb) { return 0; }
"""
BPF_API = """
#include "bpf_elf.h"
#define __section(NAME) __attribute__((section(NAME), used))
"""


def test_a_source_written_for_tc_names_its_sections_for_tc(tmp_path: Path) -> None:
    files = {
        "examples/tc_prog.c": TC_SOURCE,
        "include/bpf_api.h": BPF_API,
        "include/bpf_elf.h": "struct bpf_elf_map { unsigned int type; };\n",
    }
    findings, _ = check(tmp_path, files)
    assert ("examples/tc_prog.c", "SECL101") not in codes(findings)
    # a bpf_api.h of another kind says nothing about the loader
    files["include/bpf_api.h"] = BPF_API.replace('#include "bpf_elf.h"', "")
    findings, _ = check(tmp_path, files)
    assert ("examples/tc_prog.c", "SECL101") in codes(findings)
    # nor when a libbpf loader of the project opens the object without setting the type
    files["include/bpf_api.h"] = BPF_API
    files["examples/load.c"] = (
        "#include <bpf/libbpf.h>\n"
        'int main(void) { return bpf_object__load(bpf_object__open("tc_prog.o")); }\n'
    )
    findings, _ = check(tmp_path, files)
    assert ("examples/tc_prog.c", "SECL101") in codes(findings)


# A program picked by a name known only at run time (`--progname`) from a known skeleton:
# whichever the user picks is attached with the offset.
PICKED = {
    "probe.bpf.c": PROBE,
    "pick.c": """
#include <bpf/libbpf.h>
#include "probe.skel.h"

int main(int argc, char **argv)
{
	struct probe_bpf *skel = probe_bpf__open_and_load();
	struct bpf_program *prog = bpf_object__find_program_by_name(skel->obj, argv[1]);
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 4);

	return !bpf_program__attach_kprobe_opts(prog, argv[2], &opts);
}
""",
}


def test_a_program_named_at_run_time_may_be_any_program_of_its_object(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, PICKED)
    assert ("probe.bpf.c", "SECL201") in codes(findings)
    assert {f.program for f in findings if f.code == "SECL201"} == {"on_sleep"}
    # the user picks a kprobe program for a kprobe attach: no program is known to be of the
    # other kind (SECL206 needs the loader to name it)
    assert ("probe.bpf.c", "SECL206") not in codes(findings)
    # the object itself named at run time too: nothing ties it to this source
    files = dict(PICKED)
    files["pick.c"] = PICKED["pick.c"].replace(
        "struct probe_bpf *skel = probe_bpf__open_and_load();",
        "struct { struct bpf_object *obj; } *skel = open_somehow(argv[3]);",
    )
    findings, _ = check(tmp_path, files)
    assert ("probe.bpf.c", "SECL201") not in codes(findings)


# Programs reached through the skeleton's own bpf_object_skeleton (`skel->skeleton->progs`,
# libbpf.h struct bpf_prog_skeleton: `struct bpf_program **prog`), picked by name at run time.
SKELETON_ARRAY_CPP = """
#include <algorithm>
#include <cstring>
#include "probe.skel.h"

struct Api { const char *probe; const char *func; };
static const Api APIS[] = {{"on_sleep", "do_nanosleep"}};

int attach_all(probe_bpf *skel)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 4);
	for (const auto &api : APIS) {
		auto entry = std::find_if(skel->skeleton->progs,
			skel->skeleton->progs + skel->skeleton->prog_cnt,
			[&](const auto &p) { return strcmp(api.probe, p.name) == 0; });
		if (!bpf_program__attach_kprobe_opts(*entry->prog, api.func, &opts))
			return -1;
	}
	return 0;
}

int main() { return attach_all(probe_bpf__open_and_load()); }
"""
SKELETON_ARRAY_C = """
#include "probe.skel.h"

int main(int argc, char **argv)
{
	struct probe_bpf *skel = probe_bpf__open_and_load();
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 4);
	int i;

	for (i = 0; i < skel->skeleton->prog_cnt; i++)
		bpf_program__attach_kprobe_opts(*skel->skeleton->progs[i].prog, argv[1], &opts);
	return 0;
}
"""


def test_programs_through_the_skeletons_own_program_array(tmp_path: Path) -> None:
    for name, loader in (("loader.cpp", SKELETON_ARRAY_CPP), ("loader.c", SKELETON_ARRAY_C)):
        root = tmp_path / name.replace(".", "_")
        findings, _ = check(root, {"probe.bpf.c": PROBE, name: loader})
        assert {(f.program, f.code) for f in findings if f.code.startswith("SECL2")} == {
            ("on_sleep", "SECL201")
        }, name
        # the same loop without the offset: nothing
        findings, _ = check(root, {"probe.bpf.c": PROBE, name: loader.replace(".offset = 4", "")})
        assert not [f for f in findings if f.code.startswith("SECL2")], name


# A C++ class's member function (defined out of the class) opens the object it is handed.
METHOD = {
    "probe_kern.c": NAMED_AFTER_EXE["tool_kern.c"].replace("xdp_tool", "xdp_probe"),
    "loader.cc": """
#include <string>
#include <bpf/libbpf.h>
#include "loader.h"

int Loader::openFile(const std::string &path, Module &mod)
{
	auto obj = ::bpf_object__open(path.c_str());
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, obj)
		bpf_program__set_type(prog, BPF_PROG_TYPE_XDP);
	mod.obj = obj;
	return bpf_object__load(obj);
}
""",
    "main.cc": """
#include <string>
#include "loader.h"

int main()
{
	Loader loader;
	Module mod;
	std::string path("probe_kern.o");

	return loader.openFile(path, mod);
}
""",
}


def test_an_object_handed_to_a_cpp_member_function_that_opens_it(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, METHOD)
    assert ("probe_kern.c", "SECL102") not in codes(findings)
    loader = kinds_of(tmp_path)["probe_kern.c"]
    assert {os.path.normpath(u.path) for u in loader.evidence} == {"loader.cc", "main.cc"}
    files = dict(METHOD)
    files["main.cc"] = METHOD["main.cc"].replace("loader.openFile(path, mod)", "path.size()")
    findings, _ = check(tmp_path, files)
    assert ("probe_kern.c", "SECL102") in codes(findings)


# A C++ class template over bpftool's C++ skeleton (`T::open(opts)`): `Skeleton<probe_bpf>`
# opens skeleton probe_bpf.
TEMPLATE = {
    "probe.bpf.c": PROBE,
    "skeleton.hpp": """
template <typename T>
class Skeleton {
	T *skel = nullptr;
public:
	int open(const struct bpf_object_open_opts *opts = nullptr) { skel = T::open(opts); return !skel; }
	int load() { return T::load(skel); }
	int attach() { return T::attach(skel); }
	~Skeleton() { T::destroy(skel); }
};
""",
    "main.cpp": """
#include "probe.skel.h"
#include "skeleton.hpp"

int main()
{
	auto skel = Skeleton<probe_bpf>();

	return skel.open() || skel.load() || skel.attach();
}
""",
}


def test_a_class_template_over_the_cpp_skeleton_opens_its_argument(tmp_path: Path) -> None:
    write = dict(TEMPLATE)
    check(tmp_path, write)
    loader = kinds_of(tmp_path)["probe.bpf.c"]
    assert loader.kind == "libbpf"
    assert [os.path.normpath(u.path) for u in loader.evidence] == ["main.cpp"]
    # a template that only destroys its argument opens nothing
    write["skeleton.hpp"] = TEMPLATE["skeleton.hpp"].replace("T::open(opts)", "nullptr")
    check(tmp_path, write)
    assert "probe.bpf.c" not in kinds_of(tmp_path)


# An object embedded with `xxd -i probe_kern.o` (the array `probe_kern_o`) and opened from
# memory.
EMBEDDED = {
    "probe_kern.c": NAMED_AFTER_EXE["tool_kern.c"].replace("xdp_tool", "xdp_probe"),
    "Makefile": "probe_kern.h: probe_kern.o\n\txxd -i $< > $@\n",
    "main.c": """
#include <bpf/libbpf.h>
#include "probe_kern.h"

int main(void)
{
	struct bpf_object *obj = bpf_object__open_mem(probe_kern_o, probe_kern_o_len, NULL);
	struct bpf_program *prog = bpf_object__next_program(obj, NULL);

	bpf_program__set_type(prog, BPF_PROG_TYPE_XDP);
	return bpf_object__load(obj);
}
""",
}


def test_an_object_embedded_by_xxd_and_opened_from_memory(tmp_path: Path) -> None:
    findings, _ = check(tmp_path, EMBEDDED)
    assert ("probe_kern.c", "SECL102") not in codes(findings)
    loader = kinds_of(tmp_path)["probe_kern.c"]
    assert [os.path.normpath(u.path) for u in loader.evidence] == ["main.c"]
    files = dict(EMBEDDED)
    files["main.c"] = EMBEDDED["main.c"].replace("probe_kern_o", "other_kern_o")
    findings, _ = check(tmp_path, files)
    assert ("probe_kern.c", "SECL102") in codes(findings)
