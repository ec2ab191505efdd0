"""C and C++ loader layouts of the fifth evaluation round (skeleton links set by hand through
macros, loaders of other libraries' own ELF readers). Each test is a small project of our
own."""

from __future__ import annotations

from pathlib import Path

from tests.analysis.test_loaders import codes, inventory, loaders, write

UPROBES = (
    '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n\n'
    'SEC("uprobe/lock_enter")\nint on_lock(void *ctx)\n{\n\treturn 0;\n}\n\n'
    'SEC("uretprobe/lock_enter")\nint on_lock_ret(void *ctx)\n{\n\treturn 0;\n}\n\n'
    'char LICENSE[] SEC("license") = "GPL";\n'
)
# A header of attach macros: the outer one hands its program to the inner one, which stores
# the skeleton's link.
ATTACH_HELPERS = (
    "#define STORE_UPROBE(sk, func, prog, ret)                          \\\n"
    "\tdo {                                                          \\\n"
    "\t\tLIBBPF_OPTS(bpf_uprobe_opts, o, .func_name = #func,          \\\n"
    "\t\t\t    .retprobe = ret);                                   \\\n"
    "\t\tsk->links.prog = bpf_program__attach_uprobe_opts(            \\\n"
    '\t\t\tsk->progs.prog, -1, "/usr/lib/libdemo.so", 0, &o);    \\\n'
    "\t} while (0)\n"
    "#define HOOK_ENTRY(sk, func, prog) STORE_UPROBE(sk, func, prog, false)\n"
    "#define HOOK_RETURN(sk, func, prog) STORE_UPROBE(sk, func, prog, true)\n"
)
LOADER = (
    '#include "locks.skel.h"\n#include "attach.h"\n\n'
    "int main(void)\n{{\n\tstruct locks_bpf *skel = locks_bpf__open_and_load();\n\n"
    "{attach}"
    "\treturn locks_bpf__attach(skel);\n}}\n"
)


def _project(tmp_path: Path, attach: str) -> None:
    write(
        tmp_path,
        {
            "bpf/locks.bpf.c": UPROBES,
            "src/attach.h": ATTACH_HELPERS,
            "src/locks.c": LOADER.format(attach=attach),
        },
    )


def test_links_stored_through_macros_before_the_skeleton_attach_are_not_auto_attached(
    tmp_path: Path,
) -> None:
    """libbpf.c bpf_object__attach_skeleton() skips a program whose link is already set: the
    uprobes attached by hand through the header's macros never have their suffix read, so
    `uprobe/lock_enter` (no `BINARY:FUNCTION`) is no SECL104."""
    _project(
        tmp_path,
        "\tHOOK_ENTRY(skel, lock_enter, on_lock);\n\tHOOK_RETURN(skel, lock_enter, on_lock_ret);\n",
    )
    assert codes(tmp_path) == []


def test_a_link_stored_directly_counts_too_and_only_for_its_program(tmp_path: Path) -> None:
    """`skel->links.on_lock = ...` before the skeleton's attach spares `on_lock`; the other
    program is still auto-attached and refused."""
    _project(
        tmp_path,
        "\tskel->links.on_lock = bpf_program__attach_uprobe(skel->progs.on_lock, false, -1,\n"
        '\t\t"/usr/lib/libdemo.so", 0);\n',
    )
    assert codes(tmp_path) == [("bpf/locks.bpf.c", "SECL104", 10)]


def test_stores_after_the_attach_or_in_comments_do_not_count(tmp_path: Path) -> None:
    """The skeleton attach has already refused both programs when the links are stored after
    it; a store in a comment stores nothing."""
    attach = "\t// HOOK_ENTRY(skel, lock_enter, on_lock);\n"
    loader = LOADER.format(attach=attach).replace(
        "\treturn locks_bpf__attach(skel);\n",
        "\tint err = locks_bpf__attach(skel);\n"
        "\tHOOK_RETURN(skel, lock_enter, on_lock_ret);\n\treturn err;\n",
    )
    write(
        tmp_path,
        {"bpf/locks.bpf.c": UPROBES, "src/attach.h": ATTACH_HELPERS, "src/locks.c": loader},
    )
    assert codes(tmp_path) == [
        ("bpf/locks.bpf.c", "SECL104", 4),
        ("bpf/locks.bpf.c", "SECL104", 10),
    ]
    assert loaders(tmp_path)["on_lock"]["kind"] == "libbpf"


LEGACY_KERN = (
    "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\n"
    'struct bpf_map_def SEC("maps") counts = {\n\t.type = BPF_MAP_TYPE_ARRAY,\n'
    "\t.key_size = 4,\n\t.value_size = 8,\n\t.max_entries = 1,\n};\n\n"
    'SEC("kprobe/do_unlinkat")\nint count_unlinks(void *ctx)\n{\n\treturn 0;\n}\n\n'
    'char _license[] SEC("license") = "GPL";\n'
)
SAMPLES_USER = (
    '#include <stdio.h>\n#include "bpf_load.h"\n\nint main(void)\n{\n'
    '\tif (load_bpf_file("tracer_kern.o"))\n\t\treturn 1;\n\treturn 0;\n}\n'
)


def test_a_samples_bpf_load_caller_is_an_own_elf_loader_when_bpf_load_c_is_not_in_view(
    tmp_path: Path,
) -> None:
    """Linux samples/bpf/bpf_load.c (removed in 5.12) reads legacy `maps` and types programs
    by its own prefixes: a caller of its load_bpf_file() that includes bpf_load.h loads the
    object it names with that reader, not libbpf, so libbpf 1.0's refusal of `maps` (SECL108)
    does not apply."""
    write(tmp_path, {"tracer_kern.c": LEGACY_KERN, "tracer_user.c": SAMPLES_USER})
    found = loaders(tmp_path)["count_unlinks"]
    assert found["kind"] == "other"
    assert found["evidence"][0]["value"] == "C loader with its own ELF reader (load_bpf_file)"
    assert codes(tmp_path) == []


def test_without_bpf_load_h_a_load_bpf_file_call_is_nobody_s_reader(tmp_path: Path) -> None:
    """A project's own `load_bpf_file()` wrapper, not samples' header: libbpf is still
    assumed and the legacy map still refused."""
    user = SAMPLES_USER.replace('#include "bpf_load.h"\n', "int load_bpf_file(const char *);\n")
    write(tmp_path, {"tracer_kern.c": LEGACY_KERN, "tracer_user.c": user})
    assert loaders(tmp_path)["count_unlinks"]["kind"] == "libbpf-assumed"
    assert [c for _, c, _ in codes(tmp_path)] == ["SECL108"]


DPDK_FILTER = (
    "#include <stdint.h>\n#include <rte_mbuf_core.h>\n\n"
    '__attribute__((section("classify"), used))\nuint64_t classify(void *pkt)\n{\n'
    "\treturn 1;\n}\n\n"
    '__attribute__((section("xdp/drop"), used))\nuint64_t drop(void *pkt)\n{\n\treturn 0;\n}\n'
)
DPDK_APP = (
    "#include <rte_bpf.h>\n\nstatic struct rte_bpf *load(const char *section)\n{\n"
    "\tstruct rte_bpf_prm prm = { .prog_arg = { .type = RTE_BPF_ARG_PTR } };\n\n"
    '\treturn rte_bpf_elf_load(&prm, "filter.o", section);\n}\n\n'
    'int main(void)\n{\n\treturn load("classify") == NULL;\n}\n'
)


def test_dpdk_rte_bpf_elf_load_is_dpdk_s_own_elf_reader(tmp_path: Path) -> None:
    """DPDK's lib/bpf/bpf_load_elf.c rte_bpf_elf_load() finds one section by its name and
    runs it in DPDK's own VM: no program types, so no libbpf rule applies (`xdp/drop` on a
    function DPDK never attaches is no SECL102 there)."""
    write(tmp_path, {"bpf/filter.c": DPDK_FILTER, "app/main.c": DPDK_APP})
    found = loaders(tmp_path)
    assert found["classify"]["kind"] == "other"
    assert found["classify"]["evidence"][0]["filename"] == "app/main.c"
    assert "rte_bpf_elf_load" in found["classify"]["evidence"][0]["value"]
    assert codes(tmp_path) == []


BCC_SCRIPT = (
    "from bcc import BPF\n\n"
    'b = BPF(src_file="trace.c")\nb.attach_kprobe(event="do_unlinkat", fn_name="on_unlink")\n'
)


def test_a_bcc_script_with_known_text_does_not_make_the_module_s_other_sources_bcc(
    tmp_path: Path,
) -> None:
    """BCC compiles only the C it is handed: a script loading `trace.c` says nothing of a
    libbpf-style source beside it in the same Go module, which stays libbpf (assumed)."""
    write(
        tmp_path,
        {
            "go.mod": "module example.com/tool\n\ngo 1.22\n",
            "main.go": "package main\n\nfunc main() {}\n",
            "scripts/trace.c": "int on_unlink(void *ctx)\n{\n\treturn 0;\n}\n",
            "scripts/trace.py": BCC_SCRIPT,
            "bpf/probe.bpf.c": 'SEC("kprobes/do_rmdir")\nint on_rmdir(void *ctx)\n{\n\treturn 0;\n}\n',
        },
    )
    assert loaders(tmp_path)["on_rmdir"]["kind"] == "libbpf-assumed"
    assert [c for _, c, _ in codes(tmp_path)] == ["SECL101"]


# A bpf_load.c of samples/bpf's shape (our own few lines): libelf section walk, names by
# elf_strptr(), programs typed by prefix, a raw load.
BPF_LOAD_C = (
    '#include <gelf.h>\n#include <string.h>\n#include "bpf_load.h"\n\n'
    "static int load_and_attach(const char *event, void *insns, int size)\n{\n"
    '\tif (strncmp(event, "kprobe/", 7) == 0)\n'
    '\t\treturn bpf_load_program(BPF_PROG_TYPE_KPROBE, insns, size, "GPL", 0, 0, 0);\n'
    "\treturn -1;\n}\n\n"
    "static int do_load_bpf_file(const char *path)\n{\n"
    "\tElf *elf = elf_begin(0, ELF_C_READ, NULL);\n\tElf_Scn *scn = elf_getscn(elf, 1);\n"
    "\tGElf_Shdr shdr;\n\n\tgelf_getshdr(scn, &shdr);\n"
    "\treturn load_and_attach(elf_strptr(elf, 0, shdr.sh_name), NULL, 0);\n}\n\n"
    "int load_bpf_file(const char *path)\n{\n\treturn do_load_bpf_file(path);\n}\n"
)


def test_with_bpf_load_c_in_view_its_callers_reach_it_as_before(tmp_path: Path) -> None:
    """bpf_load.c in the tree is the loader (its reader is read); the caller names the
    object and is linked through the function, not taken for a reader of its own."""
    write(
        tmp_path,
        {"tracer_kern.c": LEGACY_KERN, "tracer_user.c": SAMPLES_USER, "bpf_load.c": BPF_LOAD_C},
    )
    evidence = loaders(tmp_path)["count_unlinks"]["evidence"]
    assert {(e["filename"], e["value"]) for e in evidence} == {
        ("tracer_user.c", "load_bpf_file() of bpf_load.c, a loader with its own ELF reader"),
        ("bpf_load.c", "C loader with its own ELF reader (bpf_load_program)"),
    }


# A project's hook macro: a prototype, SEC() of its first argument, a function whose return
# type is `typeof(...)` and whose name is pasted with a lower-case `__` prefix.
HOOK_HEADER = (
    "#define TRACE_HOOK(sec, fn, args...)                          \\\n"
    "\t__hook__##fn(unsigned long long *ctx);                     \\\n"
    "\tSEC(sec)                                                    \\\n"
    "\ttypeof(__hook__##fn(0)) __hook__##fn(unsigned long long *ctx) \\\n"
    "\t{                                                           \\\n"
    "\t\treturn __hook__body__##fn(ctx);                          \\\n"
    "\t}                                                           \\\n"
    "\ttypeof(__hook__##fn(0)) BPF_PROG(__hook__body__##fn, ##args)\n"
)
HOOK_USER = (
    '#include "vmlinux.h"\n#include <bpf/bpf_tracing.h>\n#include "bpf/helpers/hook.bpf.h"\n\n'
    'int TRACE_HOOK("fexit/{target}", on_connect, struct file *file, int ret)\n'
    "{{\n\treturn 0;\n}}\n"
)


def test_a_sec_macro_in_a_project_bpf_subdirectory_header_is_expanded(tmp_path: Path) -> None:
    """`#include "bpf/helpers/hook.bpf.h"` with the project's `src/` on the -I path (an
    automake AM_CPPFLAGS secl does not read) is found by its path suffix: libbpf installs its
    headers flat into include/bpf, so a `bpf/DIR/x.h` is never one of its. The macro's program
    is named by its pasted function, not by `typeof`."""
    write(
        tmp_path,
        {
            "src/bpf/helpers/hook.bpf.h": HOOK_HEADER,
            "src/bpf/events/connect.bpf.c": HOOK_USER.format(target="__sys_connect"),
            "src/bpf/events/bind.bpf.c": HOOK_USER.format(target="").replace(
                "on_connect", "on_bind"
            ),
        },
    )
    sites = {e["program"]: e["section"] for e in inventory(tmp_path) if e["kind"] == "program"}
    assert sites == {"__hook__on_connect": "fexit/__sys_connect", "__hook__on_bind": "fexit/"}
    assert [(p.rsplit("/", 1)[-1], c) for p, c, _ in codes(tmp_path)] == [("bind.bpf.c", "SECL104")]


XSK_KERN = (
    "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\n"
    'SEC("{section}")\nint redirect_xsk(struct xdp_md *ctx)\n{{\n\treturn XDP_PASS;\n}}\n\n'
    'char LICENSE[] SEC("license") = "GPL";\n'
)
XSK_USER = (
    "#include <xdp/libxdp.h>\n\nint attach(const char *object, int ifindex)\n{\n"
    '\tstruct xdp_program *prog = xdp_program__open_file(object, "xdp_rx", NULL);\n\n'
    "\tif (libxdp_get_error(prog))\n\t\treturn -1;\n"
    "\treturn xdp_program__attach(prog, ifindex, XDP_MODE_NATIVE, 0);\n}\n"
)


def test_libxdp_picking_a_section_of_an_object_named_at_run_time_types_it(
    tmp_path: Path,
) -> None:
    """libxdp finds the program by the section name it is handed and sets its type before
    loading it (libxdp.c: xdp_program__attach_single()): `xdp_rx`, which libbpf 1.0 alone
    rejects (`xdp` takes no suffix), is no SECL102 even though the object's name comes from
    the command line. A section nobody hands libxdp is still judged by libbpf's table."""
    write(
        tmp_path,
        {
            "bpf/rx_vlan100.c": XSK_KERN.format(section="xdp_rx"),
            "bpf/rx_vlan200.c": XSK_KERN.format(section="xdp_rx"),
            "bpf/tx.c": XSK_KERN.format(section="xdp_tx"),
            "src/xdp.c": XSK_USER,
        },
    )
    assert codes(tmp_path) == [("bpf/tx.c", "SECL102", 4)]


ARGV_USER = (
    '#include <stdio.h>\n#include "bpf_load.h"\n\nint main(int argc, char **argv)\n{\n'
    "\tchar filename[256];\n\n"
    '\tsnprintf(filename, sizeof(filename), "%s_kern.o", argv[0]);\n'
    "\treturn load_bpf_file(filename);\n}\n"
)


def test_samples_layout_names_the_object_after_the_user_file_without_a_build_file(
    tmp_path: Path,
) -> None:
    """samples/bpf builds executable X from X_user.c, which opens "%s_kern.o" of argv[0]:
    with no build file in view, `pmu_user.c` opens `pmu_kern.o` (here through bpf_load.c's
    reader, so `maps` is no SECL108); a file not named `_user.c` names no object (its
    source is only the project's default, uncertain)."""
    write(
        tmp_path,
        {
            "pmu_kern.c": LEGACY_KERN,
            "pmu_user.c": ARGV_USER,
            "other/cpu_kern.c": LEGACY_KERN.replace("count_unlinks", "cpu_unlinks"),
            "other/main.c": ARGV_USER,
        },
    )
    found = loaders(tmp_path)
    assert found["count_unlinks"]["kind"] == "other"
    assert found["count_unlinks"]["evidence"][0]["filename"] == "pmu_user.c"
    assert found["count_unlinks"]["evidence"][0].get("certain", True) is True
    assert [e.get("certain", True) for e in found["cpu_unlinks"]["evidence"]] == [False, False]
