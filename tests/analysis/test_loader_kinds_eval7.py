"""Loader kinds seen in the seventh evaluation round (C/C++ loaders of messy kinds).

xdp-tools' `xdp-loader load [options] IFACE FILE...` in a script or build recipe loads the
object through libxdp, which types the program XDP itself (xdp-loader.c do_load(), libxdp.c
xdp_program__attach_single()): an XDP program named after itself (`xdp_redirect`) is not an
unknown section there."""

from __future__ import annotations

import os
from pathlib import Path

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
