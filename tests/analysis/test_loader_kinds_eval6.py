"""C and C++ loader layouts of the fifth evaluation round (skeleton links set by hand through
macros, loaders of other libraries' own ELF readers). Each test is a small project of our
own."""

from __future__ import annotations

from pathlib import Path

from tests.analysis.test_loaders import codes, loaders, write

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
