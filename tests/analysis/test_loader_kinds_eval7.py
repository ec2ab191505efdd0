"""Loader kinds seen in the seventh evaluation round (C/C++ loaders of messy kinds).

xdp-tools' `xdp-loader load [options] IFACE FILE...` in a script or build recipe loads the
object through libxdp, which types the program XDP itself (xdp-loader.c do_load(), libxdp.c
xdp_program__attach_single()): an XDP program named after itself (`xdp_redirect`) is not an
unknown section there. An own-ELF loader (DPDK) over an object embedded by `xxd -i`."""

from __future__ import annotations

import os
from pathlib import Path

from tests.analysis.test_loaders import codes as lcodes
from tests.analysis.test_loaders import loaders, write
from tests.analysis.test_upgrade import check

PROG = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp_bounce")
int bounce(struct xdp_md *ctx) { return XDP_TX; }

char LICENSE[] SEC("license") = "GPL";
"""
BUILD = "bounce_kern.o: bounce_kern.c\n\tclang -O2 -target bpf -c $< -o $@\n"


def codes(tmp_path: Path, files: dict[str, str]) -> set[str]:
    findings, _ = check(tmp_path, files)
    return {f.code for f in findings if os.path.basename(f.path) == "bounce_kern.c"}


def test_without_a_loader_the_name_is_unknown(tmp_path: Path) -> None:
    assert codes(tmp_path, {"bounce_kern.c": PROG, "Makefile": BUILD}) == {"SECL102"}


def test_xdp_loader_in_a_script_types_the_program(tmp_path: Path) -> None:
    script = (
        "#!/bin/sh\nset -e\n./xdp-loader load -m skb \\\n"
        "    --prog-name bounce veth0 bounce_kern.o\n"
    )
    files = {"bounce_kern.c": PROG, "Makefile": BUILD, "run.sh": script}
    assert codes(tmp_path, files) == set()


def test_xdp_loader_in_a_recipe_types_the_program(tmp_path: Path) -> None:
    recipe = "load: bounce_kern.o\n\tsudo xdp-loader load -s xdp_bounce eth0 $<\n"
    assert codes(tmp_path, {"bounce_kern.c": PROG, "Makefile": BUILD + recipe}) == set()


def test_xdp_loader_of_another_object_or_its_unload_does_not_count(tmp_path: Path) -> None:
    script = (
        "#!/bin/sh\nxdp-loader load eth0 other_kern.o\nxdp-loader unload eth0 --all\n"
        "# xdp-loader load eth0 bounce_kern.o\n"
    )
    files = {"bounce_kern.c": PROG, "Makefile": BUILD, "run.sh": script}
    assert codes(tmp_path, files) == {"SECL102"}


# An own-ELF loader (DPDK's rte_bpf_elf_load()) over an object embedded with `xxd -i`: the
# build ran xxd on `build/bpf/filter.o`, so the arrays carry the whole path in their names.
DPDK_FILTER = (
    "#include <stdint.h>\n\n"
    '__attribute__((section("xdp/drop"), used))\nuint64_t drop(void *pkt)\n{\n\treturn 0;\n}\n'
)
DPDK_EMBEDDED = (
    '#include <stdio.h>\n#include <rte_bpf.h>\n#include "filter_o.h"\n\n'
    "static struct rte_bpf *load(const char *section)\n{\n"
    "\tstruct rte_bpf_prm prm = { .prog_arg = { .type = RTE_BPF_ARG_PTR } };\n"
    '\tFILE *f = fopen("/tmp/f.o", "w");\n\n'
    "\tfwrite(build_bpf_filter_o, 1, build_bpf_filter_o_len, f);\n\tfclose(f);\n"
    '\treturn rte_bpf_elf_load(&prm, "/tmp/f.o", section);\n}\n\n'
    'int main(void)\n{\n\treturn load("xdp/drop") == NULL;\n}\n'
)

# A libbpf loader of another object elsewhere in the tree: the project is not own-ELF only.
LIBBPF_ELSEWHERE = (
    "#include <bpf/libbpf.h>\n\nint tap_setup(void)\n{\n"
    '\tstruct bpf_object *o = bpf_object__open_file("rss.o", NULL);\n\n'
    "\treturn bpf_object__load(o);\n}\n"
)


def test_an_object_embedded_by_xxd_under_its_path_is_the_own_loader_s(tmp_path: Path) -> None:
    """xxd -i names the array after the path it was given (`build_bpf_filter_o`, with its
    `_len`): the own-ELF loader using both loads `filter.o`, not libbpf."""
    files = {"bpf/filter.c": DPDK_FILTER, "app/main.c": DPDK_EMBEDDED}
    write(tmp_path, {**files, "drivers/tap.c": LIBBPF_ELSEWHERE})
    found = loaders(tmp_path)["drop"]
    assert found["kind"] == "other"
    assert "rte_bpf_elf_load" in found["evidence"][0]["value"]
    assert lcodes(tmp_path) == []


def test_an_array_without_its_xxd_length_names_no_object(tmp_path: Path) -> None:
    app = DPDK_EMBEDDED.replace("build_bpf_filter_o_len", "sizeof(blob)")
    write(
        tmp_path,
        {"bpf/filter.c": DPDK_FILTER, "app/main.c": app, "drivers/tap.c": LIBBPF_ELSEWHERE},
    )
    assert loaders(tmp_path)["drop"]["kind"] == "libbpf-assumed"
