"""Deep `#if` nesting costs work linear in the depth (issue 13: 100k nested `#if`s took
minutes, 10k with a `#define` in each took 46 s and 4 GB).

No timings. The extractor runs on a tree that counts what tree-sitter would do: its
`Node.parent` and sibling getters walk down from the root at every call (lib/src/node.c:
ts_node_parent), so each costs the node's depth; everything else costs one. The preprocessor
is plain Python: its work is the number of Python and C calls it makes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from secl.config import Config
from secl.parse.bpf import extract_sites
from secl.parse.macros import resolve_sites
from secl.parse.tree import parse

# Getters that cost tree-sitter a walk down from the root (ts_node_parent).
_CLIMBING = frozenset(
    {"parent", "next_sibling", "prev_sibling", "next_named_sibling", "prev_named_sibling"}
)


class Meter:
    """Charges tree-sitter's cost of each node and cursor operation the extractor makes."""

    def __init__(self, tree) -> None:
        self.work = 0
        self.depths: dict[int, int] = {}
        cursor = tree.root_node.walk()
        depth = 0
        while True:  # every node's depth, in one walk of a real cursor
            self.depths[cursor.node.id] = depth
            if cursor.goto_first_child():
                depth += 1
                continue
            while not cursor.goto_next_sibling():
                if not cursor.goto_parent():
                    return
                depth -= 1

    def wrap(self, value):
        if type(value).__name__ == "Node":
            return CountedNode(value, self)
        if type(value).__name__ == "TreeCursor":
            return CountedCursor(value, self)
        if isinstance(value, list):
            self.work += len(value)
            return [self.wrap(v) for v in value]
        if callable(value):
            return self.method(value)
        return value

    def method(self, bound: Callable) -> Callable:
        def call(*args):
            self.work += 1
            result = bound(*(a.real if isinstance(a, CountedNode) else a for a in args))
            if bound.__name__ == "descendant_for_byte_range" and result is not None:
                self.work += self.depths[result.id]  # a walk down to it
            return self.wrap(result)

        return call


class CountedNode:
    __slots__ = ("meter", "real")

    def __init__(self, real, meter: Meter) -> None:
        self.real = real
        self.meter = meter

    def __getattr__(self, name: str):
        if name in _CLIMBING:
            self.meter.work += self.meter.depths[self.real.id]
        return self.meter.wrap(getattr(self.real, name))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CountedNode) and other.real == self.real

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self.real)


class CountedCursor:
    __slots__ = ("meter", "real")

    def __init__(self, real, meter: Meter) -> None:
        self.real = real
        self.meter = meter

    def __getattr__(self, name: str):
        return self.meter.wrap(getattr(self.real, name))


class CountedTree:
    def __init__(self, tree, meter: Meter) -> None:
        self.root_node = CountedNode(tree.root_node, meter)


def nested(depth: int, inner: str) -> str:
    """`inner` under `depth` blocks of every kind: #if, #ifdef/#else, #ifndef, #elif."""
    opening, closing = [], []
    for i in range(depth):
        kind = i % 4
        if kind == 0:
            opening.append(f"#if A{i} > 1\n")
        elif kind == 1:
            opening.append(f"#ifdef B{i}\nint skipped{i};\n#else\n")
        elif kind == 2:
            opening.append(f"#ifndef C{i}\n")
        else:
            opening.append(f"#if D{i}\nint skipped{i};\n#elif E{i}\n")
        closing.append("#endif\n")
    return "".join(opening) + inner + "".join(reversed(closing))


SITES = (
    'SEC("kprobe/do_unlinkat")\nint handle(void *ctx) { return 0; }\n'
    'int counter SEC(".data.counter");\n'
    'int flag __attribute__((section(".bss.flag")));\n'
    'struct { int type; } events SEC(".maps");\n'
    '#define PROBE(fn) SEC("kprobe/" #fn) int fn(void *ctx)\n'
)


def extraction_work(depth: int) -> tuple[int, list]:
    data = nested(depth, SITES).encode()
    tree = parse(data)
    meter = Meter(tree)
    sites = extract_sites("deep.bpf.c", data, CountedTree(tree, meter))
    return meter.work, sites


def test_branch_conditions_at_depth_are_right():
    _, sites = extraction_work(8)
    by_name = {s.program or s.symbol or s.template_macro: s for s in sites}
    assert set(by_name) == {"handle", "counter", "flag", "events", "PROBE"}
    expected = (
        "A0 > 1 && !defined(B1) && !defined(C2) && !D3 && E3 && "
        "A4 > 1 && !defined(B5) && !defined(C6) && !D7 && E7"
    )
    assert {s.branch for s in sites} == {expected}
    assert by_name["counter"].kind == by_name["flag"].kind == "data"


def test_extraction_work_is_linear_in_the_depth():
    # Walking up with Node.parent costs about depth * depth / 2 per site: 13 million for these
    # five sites under 1200 levels, 4 times as much for twice the depth. A linear walk costs
    # about a hundred per level.
    small, sites = extraction_work(600)
    large, _ = extraction_work(1200)
    assert len(sites) == 5
    assert large < 2.5 * small
    assert large < 200 * 1200


def calls_made(run: Callable[[], object]) -> int:
    """Python and C calls (including generator resumptions) made while `run` runs."""
    count = 0

    def profile(frame, event, arg) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return count


def macro_file(depth: int) -> bytes:
    """A #define in each of `depth` undecided #if levels, an #elif chain as long, #undefs, and
    sites whose sections the preprocessor must compute at the bottom."""
    levels = "".join(f'#if U{i}\n#define M{i} "m{i}/"\n#undef M{i // 2}\n' for i in range(depth))
    chain = "#if E0\n" + "".join(f'#elif E{i}\n#define P "p{i}/"\n' for i in range(1, depth))
    inner = (
        chain + '#else\n#define P "kprobe/"\n#endif\n'
        'SEC(P "do_unlinkat")\nint handle(void *ctx) { return 0; }\n'
        f'SEC(M{depth - 1} "x")\nint other(void *ctx) {{ return 0; }}\n'
    )
    return (levels + inner + "#endif\n" * depth).encode()


def preprocessor_work(tmp_path, depth: int) -> tuple[int, list]:
    data = macro_file(depth)
    sites = extract_sites("deep.bpf.c", data)
    tree = parse(data)
    found: list = []

    def run() -> None:
        resolution = resolve_sites(
            sites, {"deep.bpf.c": data}, Config(), str(tmp_path), lambda path: tree
        )
        found.extend(resolution.sites)

    return calls_made(run), found


def test_preprocessor_reads_deep_files_right(tmp_path):
    _, sites = preprocessor_work(tmp_path, 6)
    sections = {s.program: s.section for s in sites if s.kind == "program"}
    assert sections == {"handle": None, "other": "m5/x"}  # P depends on E1..E5: unknown
    handle = next(s for s in sites if s.program == "handle")
    assert handle.unresolved_macro == "P"
    assert "`E1`" in (handle.unresolved_reason or "")


def test_preprocessor_work_is_linear_in_the_depth(tmp_path):
    # Gathering every level's conditions for each #define, or joining every earlier #elif's
    # condition at each #elif, makes this quadratic: 1.3 million calls for 400 levels, about
    # 4 times as many for twice the depth. Linear work is about 300 calls per level.
    small, _ = preprocessor_work(tmp_path, 200)
    large, _ = preprocessor_work(tmp_path, 400)
    assert large < 2.5 * small
    assert large < 600 * 400
