"""C loaders with an ELF reader of their own (the old samples/bpf bpf_load.c pattern, deepflow's
load.c): kind `other`, linked to sources by the objects they or their callers name, and the
default of the module or project whose loaders are all of that kind; libelf used for symbols
next to a libbpf loader decides nothing. Every fixture is a small project written for the
test."""

from __future__ import annotations

import os
from pathlib import Path

from secl.analysis.loaders import all_libbpf, assignments
from secl.analysis.ownelf import detect, own_loaders
from secl.analysis.run import run_rules
from secl.api import load
from secl.config import Config
from tests.catalogue_harness import write_files

# A BPF source with a legacy `maps` section and names libbpf 1.0 rejects (SECL108, SECL101).
LEGACY = """
#include <linux/bpf.h>

struct bpf_map_def {{ unsigned int type, key_size, value_size, max_entries; }};

struct bpf_map_def SEC("maps") counts = {{ 1, 4, 8, 16 }};

SEC("prog/kp/{name}")
int {name}(void *ctx) {{ return 0; }}

SEC("kprobe/do_nanosleep")
int {name}_sleep(void *ctx) {{ return 0; }}

char _license[] SEC("license") = "GPL";
"""

# A loader of its own: walks the sections with libelf, reads `maps`, types programs by their
# section's prefix and loads each with the raw call (the shape of samples/bpf/bpf_load.c).
OWN_LOADER = """
#include <fcntl.h>
#include <string.h>
#include <libelf.h>
#include <gelf.h>
#include <bpf/bpf.h>
#include "own_load.h"

static int prog_type_of(const char *name)
{
	if (strncmp(name, "kprobe/", 7) == 0)
		return BPF_PROG_TYPE_KPROBE;
	if (memcmp(name, "prog/kp/", 8) == 0)
		return BPF_PROG_TYPE_KPROBE;
	return -1;
}

static int load_section(const char *name, void *insns, int len)
{
	int type = prog_type_of(name);

	if (type < 0)
		return 0;
	return bpf_load_program(type, insns, len / 8, "GPL", 0, NULL, 0);
}

static int walk(int fd)
{
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	GElf_Ehdr ehdr;
	int i;

	gelf_getehdr(elf, &ehdr);
	for (i = 1; i < ehdr.e_shnum; i++) {
		Elf_Scn *scn = elf_getscn(elf, i);
		GElf_Shdr shdr;
		Elf_Data *data;
		char *name;

		gelf_getshdr(scn, &shdr);
		name = elf_strptr(elf, ehdr.e_shstrndx, shdr.sh_name);
		data = elf_getdata(scn, NULL);
		if (strcmp(name, "maps") == 0)
			continue;
		load_section(name, data->d_buf, data->d_size);
	}
	return 0;
}

int load_object_file(const char *path)
{
	return walk(open(path, O_RDONLY));
}
"""

CALLER = """
#include <stdio.h>
#include "own_load.h"

int main(int argc, char **argv)
{
	char filename[256];

	snprintf(filename, sizeof(filename), "%s_kern.o", argv[0]);
	return load_object_file(filename);
}
"""

# libbpf-tools' shape: symbols read with libelf, features probed with a raw load, programs
# loaded through a skeleton.
SYMBOLS = """
#include <string.h>
#include <libelf.h>
#include <gelf.h>
#include <bpf/bpf.h>

long text_offset(Elf *e)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;
	size_t stridx;

	elf_getshdrstrndx(e, &stridx);
	while ((scn = elf_nextscn(e, scn)) != NULL) {
		gelf_getshdr(scn, &shdr);
		if (!strcmp(elf_strptr(e, stridx, shdr.sh_name), ".text"))
			return shdr.sh_offset;
	}
	return -1;
}

int probe_tracing(void)
{
	return bpf_prog_load(BPF_PROG_TYPE_TRACING, "probe", "GPL", NULL, 0, NULL) >= 0;
}
"""

SKELETON_LOADER = """
#include "tool.skel.h"

int main(void)
{
	struct tool_bpf *skel = tool_bpf__open_and_load();

	return tool_bpf__attach(skel);
}
"""


def run(root: Path, files: dict[str, str]):
    write_files(root, files)
    (root / ".git").mkdir(exist_ok=True)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        loaded = load(["."], Config(root=str(root), select=("ALL",)))
        found = {(os.path.normpath(f.path), f.code) for f in run_rules(loaded.project)}
        kinds = {os.path.normpath(p): a for p, a in assignments(loaded.project).items()}
        return found, kinds, loaded.project
    finally:
        os.chdir(cwd)


def test_detects_the_bpf_load_shape() -> None:
    hit = detect(OWN_LOADER.encode())
    assert hit is not None and hit[1] == "bpf_load_program"
    assert OWN_LOADER.encode()[hit[0] :].startswith(b"bpf_load_program(")


def test_libelf_for_symbols_with_a_feature_probe_is_no_loader() -> None:
    # sections and their names read, a raw load, but no section name compared: symbols
    assert detect(SYMBOLS.encode()) is None


def test_a_loader_that_also_opens_with_libbpf_is_libbpf() -> None:
    text = OWN_LOADER + '\nvoid *other(void) { return bpf_object__open("x.o"); }\n'
    assert detect(text.encode()) is None


def test_a_raw_syscall_loader_walking_its_own_headers() -> None:
    text = """
#include <elf.h>
#include <string.h>
#include <sys/syscall.h>
#include <linux/bpf.h>

int load(const unsigned char *image)
{
	const Elf64_Ehdr *eh = (const void *)image;
	const Elf64_Shdr *sh = (const void *)(image + eh->e_shoff);
	const char *names = (const char *)image + sh[eh->e_shstrndx].sh_offset;
	union bpf_attr attr = {};
	int i;

	for (i = 0; i < eh->e_shnum; i++) {
		if (strcmp(names + sh[i].sh_name, "socket") != 0)
			continue;
		attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
		return syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	}
	return -1;
}
"""
    hit = detect(text.encode())
    assert hit is not None and hit[1] == "BPF_PROG_LOAD"
    # a vmlinux.h-like header declares the same names without using them
    header = "typedef struct { Elf64_Off e_shoff; } Elf64_Ehdr;\n"
    header += "typedef struct { Elf64_Word sh_name; } Elf64_Shdr;\nenum { BPF_PROG_LOAD = 5, };\n"
    header += 'static const char *s = "socket"; int f(const char *x) { return strcmp(x, "xdp"); }\n'
    assert detect(header.encode()) is None


def test_a_caller_names_the_object_after_its_executable(tmp_path: Path) -> None:
    files = {
        "tool_kern.c": LEGACY.format(name="tool"),
        "own_load.c": OWN_LOADER,
        "own_load.h": "int load_object_file(const char *path);\n",
        "tool_user.c": CALLER,
        "Makefile": "tprogs-y += tool\ntool-objs := tool_user.o own_load.o\n",
    }
    found, kinds, _ = run(tmp_path, files)
    loader = kinds["tool_kern.c"]
    assert loader.kind == "other"
    where = [(u.path, u.certain) for u in loader.evidence]
    assert where == [("own_load.c", True), ("tool_user.c", True)]
    text = OWN_LOADER.lstrip("\n")
    assert loader.evidence[0].span.start.row == text.count("\n", 0, text.index("bpf_load_pr")) + 1
    assert ("tool_kern.c", "SECL005") in found
    assert not [code for path, code in found if code.startswith(("SECL1", "SECL2"))]


def test_executables_of_a_static_pattern_rule(tmp_path: Path) -> None:
    # `$(TARGETS): %: %_user.c own_load.o`: tool is linked from tool_user.c, whose argv[0]
    # names tool_kern.o
    files = {
        "tool_kern.c": LEGACY.format(name="tool"),
        "own_load.c": OWN_LOADER,
        "own_load.h": "int load_object_file(const char *path);\n",
        "tool_user.c": CALLER,
        "Makefile": "TARGETS := tool\n$(TARGETS): %: %_user.c own_load.o\n\t$(CC) -o $@ $^\n",
        "other.bpf.c": LEGACY.format(name="other"),
        "other.c": SKELETON_LOADER.replace("tool", "other"),
    }
    found, kinds, _ = run(tmp_path, files)
    assert kinds["tool_kern.c"].kind == "other"
    assert [u.path for u in kinds["tool_kern.c"].evidence] == ["own_load.c", "tool_user.c"]
    assert not [c for p, c in found if p == "tool_kern.c" and c.startswith(("SECL1", "SECL2"))]


def test_the_object_named_in_a_call_of_the_loader(tmp_path: Path) -> None:
    files = {
        "probe_kern.c": LEGACY.format(name="probe"),
        "own_load.c": OWN_LOADER,
        "main.c": '#include "own_load.h"\nint main(void) { return load_object_file("probe_kern.o"); }\n',
        # a libbpf loader elsewhere: no default, but the named source is still the own loader's
        "other.bpf.c": LEGACY.format(name="other"),
        "other.c": '#include "other.skel.h"\nint main(void) { return !other_bpf__open_and_load(); }\n',
    }
    found, kinds, _ = run(tmp_path, files)
    assert kinds["probe_kern.c"].kind == "other"
    assert kinds["other.bpf.c"].kind == "libbpf"
    assert ("other.bpf.c", "SECL108") in found and ("other.bpf.c", "SECL101") in found
    assert ("probe_kern.c", "SECL108") not in found


def test_an_unnamed_source_takes_the_only_kind_of_loader_there_is(tmp_path: Path) -> None:
    # the objects reach the loader as embedded arrays (a bin2c step): nothing names them
    files = {
        "kernel/socket_trace.bpf.c": LEGACY.format(name="trace"),
        "user/load.c": OWN_LOADER,
        "user/tracer.c": "extern const unsigned char trace_data[];\n",
    }
    found, kinds, _ = run(tmp_path, files)
    loader = kinds["kernel/socket_trace.bpf.c"]
    assert loader.kind == "other"
    assert [(u.path, u.certain) for u in loader.evidence] == [("user/load.c", False)]
    assert not [code for path, code in found if code.startswith(("SECL1", "SECL2"))]


def test_no_default_beside_a_libbpf_loader(tmp_path: Path) -> None:
    files = {
        "kernel/socket_trace.bpf.c": LEGACY.format(name="trace"),
        "user/load.c": OWN_LOADER,
        "tool.bpf.c": LEGACY.format(name="tool"),
        "tool.c": SKELETON_LOADER,
    }
    found, kinds, _ = run(tmp_path, files)
    assert "kernel/socket_trace.bpf.c" not in kinds  # libbpf (assumed)
    assert ("kernel/socket_trace.bpf.c", "SECL108") in found


def test_no_default_for_another_go_module(tmp_path: Path) -> None:
    # deepflow's shape: the own loader in the agent's crate, a BPF source in the server's
    # Go module, which the agent's loader does not load
    files = {
        "agent/Cargo.toml": '[package]\nname = "agent"\nversion = "0.1.0"\n',
        "agent/src/ebpf/kernel/trace.bpf.c": LEGACY.format(name="trace"),
        "agent/src/ebpf/user/load.c": OWN_LOADER,
        "server/go.mod": "module example.com/server\n\ngo 1.22\n",
        "server/xdp/xdpsock_kern.c": LEGACY.format(name="sock"),
    }
    found, kinds, _ = run(tmp_path, files)
    assert kinds["agent/src/ebpf/kernel/trace.bpf.c"].kind == "other"
    assert "server/xdp/xdpsock_kern.c" not in kinds
    assert ("server/xdp/xdpsock_kern.c", "SECL108") in found


def test_libelf_for_symbols_next_to_a_skeleton_stays_libbpf(tmp_path: Path) -> None:
    files = {
        "tool.bpf.c": LEGACY.format(name="tool"),
        "tool.c": SKELETON_LOADER,
        "uprobe_helpers.c": SYMBOLS,
        "other_kern.c": LEGACY.format(name="other"),
    }
    found, kinds, project = run(tmp_path, files)
    assert not own_loaders(project)  # the project is all libbpf, as before
    assert all_libbpf(project)
    assert kinds["tool.bpf.c"].kind == "libbpf"
    assert "other_kern.c" not in kinds  # libbpf (assumed), as before
    assert ("tool.bpf.c", "SECL108") in found and ("other_kern.c", "SECL108") in found


def test_a_libbpf_loader_of_the_same_source_wins(tmp_path: Path) -> None:
    files = {
        "tool_kern.c": LEGACY.format(name="tool"),
        "own_load.c": OWN_LOADER,
        "main.c": '#include "own_load.h"\nint main(void) { return load_object_file("tool_kern.o"); }\n',
        "new.c": 'int main(void) { return !bpf_object__load(bpf_object__open("tool_kern.o")); }\n',
    }
    found, kinds, _ = run(tmp_path, files)
    loader = kinds["tool_kern.c"]
    assert loader.kind == "libbpf"
    assert {u.kind for u in loader.evidence} == {"libbpf", "other"}
    assert ("tool_kern.c", "SECL108") in found
