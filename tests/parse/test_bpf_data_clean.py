"""The data-site fast path (`_data_clean`) gives the lexer's answer (`_decorated`), or none."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from secl.parse.bpf import _clean_pieces, _data_clean, _decorated
from secl.parse.tree import Positions, lex, parse

SHAPES = [
    'struct {\n\t__uint(type, BPF_MAP_TYPE_HASH);\n} counts SEC(".maps");\n',
    'char LICENSE[] SEC("license") = "GPL";\n',
    'char _license[4] SEC("license") = "GPL";\n',
    'int *ptr SEC(".data.p");\n',
    'int a, b SEC(".data");\n',
    'struct x y[2][3] SEC(".bss");\n',
    'int __weak SEC(".data");\n',
    'int x /* why */ SEC(".data");\n',
    'int x\n#if 1\nSEC(".data");\n#endif\n',
    'int (*fp)(void) SEC(".data");\n',
    'int q SEC("s") == 1;\n',
    'int r SEC("s") , s;\n',
    'int v = 3 SEC(".data");\n',
    'const volatile int w SEC(".rodata") = 1;\n',
    'unsigned long long z[] SEC(".data.arr") = {1, 2};\n',
    'SEC(".maps");\n',
    'foo(bar) SEC(".maps");\n',
    'int arr[(4)] SEC(".data");\n',
]


def _compare(data: bytes) -> int:
    """Asserts both answers agree at every site the fast path answers; how many it did."""
    tree = parse(data)
    root = tree.root_node
    positions = Positions(data)
    answered = 0
    for m in re.finditer(rb"\bSEC\s*\(", data):
        ident = root.descendant_for_byte_range(m.start(), m.start() + 3)
        if ident is None or ident.type != "identifier" or ident.parent is None:
            continue
        fast = _data_clean(ident.parent, data)
        if fast is None:
            continue
        clean = _clean_pieces(ident, data, positions)
        assert clean is not None, data
        slow = _decorated(lex(data, clean[1]), ident, data, root)
        assert fast[:3] == slow[:3] and fast[4:] == slow[4:], (data, fast, slow)
        assert (fast[3].start_byte, fast[3].end_byte) == (slow[3].start_byte, slow[3].end_byte)
        answered += 1
    return answered


@pytest.mark.parametrize("src", SHAPES)
def test_shapes_agree_with_the_lexer(src):
    _compare(src.encode())


def test_the_common_shapes_take_the_fast_path():
    assert _compare(SHAPES[0].encode()) == 1
    assert _compare(SHAPES[1].encode()) == 1
    assert _compare(SHAPES[3].encode()) == 1  # `int *ptr SEC(...)`
    assert _compare(SHAPES[5].encode()) == 1  # `y[2][3]`


def test_fixtures_and_selftests_agree():
    roots = [Path(__file__).resolve().parents[1] / "fixtures"]
    if os.environ.get("SECL_LINUX_SELFTESTS"):
        roots.append(Path(os.environ["SECL_LINUX_SELFTESTS"]) / "progs")
    answered = 0
    for root in roots:
        for path in sorted(root.rglob("*.c")):
            answered += _compare(path.read_bytes())
    assert answered > (1000 if len(roots) > 1 else 0)  # 1452 of the Linux 7.2 selftests
