"""Extraction on real code: the Linux BPF selftests (scripts/fetch-selftests)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from secl.parse.bpf import extract_sites
from secl.parse.tree import parse

SELFTESTS = os.environ.get("SECL_LINUX_SELFTESTS")
pytestmark = pytest.mark.skipif(not SELFTESTS, reason="SECL_LINUX_SELFTESTS is not set")


def naive_name(tree, site) -> str | None:
    """The method secl improves on: the function right after the `SEC(...)` statement."""
    node = tree.root_node.descendant_for_byte_range(site.span.start_byte, site.span.start_byte)
    while node is not None and node.type != "expression_statement":
        node = node.parent
    sibling = node.next_named_sibling if node is not None else None
    if sibling is None or sibling.type != "function_definition":
        return None
    return "named"


def test_essentially_every_program_site_is_named():
    progs = Path(SELFTESTS) / "progs"
    programs = named = naive = 0
    for path in sorted(progs.rglob("*.c")):
        data = path.read_bytes()
        tree = parse(data)
        for site in extract_sites(str(path), data, tree):
            if site.template or site.kind == "data":
                continue
            programs += 1
            named += site.program is not None
            naive += naive_name(tree, site) is not None
    print(f"\nprogram sites {programs}: named {named} ({100 * named / programs:.2f}%), "
          f"naive next-sibling method {naive} ({100 * naive / programs:.1f}%)")  # fmt: skip
    assert programs > 4000
    assert named / programs >= 0.999
    assert naive / programs < 0.6  # the tree alone is not enough: annotations break it
