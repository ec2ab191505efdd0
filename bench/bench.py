#!/usr/bin/env python3
"""Time secl against the floor of a tree-sitter linter on the same tree, in one process.

The floor (../shared/docs/performance-floor.md): read every .c/.h file, parse it with
tree-sitter-c and run one query for `SEC` calls. secl's figure is the real work of
`secl sections` / `secl check` through the library API (without interpreter start-up), and a
one-file run of the command measures start-up separately.

    python bench/bench.py [TREE ...] [--runs N]

TREE defaults to $SECL_LINUX_SELFTESTS/progs and .../prog_tests. Prints figures, asserts
nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEC_QUERY = """
(call_expression
  function: (identifier) @fn (#eq? @fn "SEC")
  arguments: (argument_list)) @call
"""


def list_files(roots: list[str]) -> list[str]:
    out: list[str] = []
    for root in roots:
        for directory, dirs, files in os.walk(root):
            dirs.sort()
            out.extend(
                os.path.join(directory, f) for f in sorted(files) if f.endswith((".c", ".h"))
            )
    return out


def floor(files: list[str]) -> int:
    import tree_sitter_c
    from tree_sitter import Language, Parser, Query, QueryCursor

    language = Language(tree_sitter_c.language())
    parser = Parser(language)
    cursor = QueryCursor(Query(language, SEC_QUERY))
    found = 0
    for path in files:
        with open(path, "rb") as fh:
            tree = parser.parse(fh.read())
        found += len(cursor.matches(tree.root_node))
    return found


def secl_sections(files: list[str]) -> int:
    from secl.api import inventory

    return len(inventory(files).sites)


def secl_check(files: list[str]) -> int:
    from secl.api import check

    return len(check(files).findings)


def timed(fn, files: list[str], runs: int) -> tuple[float, int]:
    result = fn(files)  # warm-up: imports, caches, page cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(files)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    trees = args.trees
    if not trees:
        base = os.environ.get("SECL_LINUX_SELFTESTS")
        if not base:
            print(
                "give a tree or set SECL_LINUX_SELFTESTS (scripts/fetch-selftests)", file=sys.stderr
            )
            return 2
        trees = [os.path.join(base, "progs"), os.path.join(base, "prog_tests")]
    files = list_files(trees)
    size = sum(os.path.getsize(f) for f in files)
    print(
        f"tree: {' '.join(trees)}: {len(files)} files, {size / 1e6:.1f} MB, median of {args.runs}"
    )
    base_time, matches = timed(floor, files, args.runs)
    print(f"floor (parse + SEC query):  {base_time * 1000:8.0f} ms  ({matches} SEC calls)")
    available = {"sections": secl_sections, "check": secl_check}
    for name, fn in available.items():
        try:
            t, n = timed(fn, files, args.runs)
        except ImportError as err:
            print(f"secl {name}: not available ({err})")
            continue
        print(
            f"secl {name + ':':10}       {t * 1000:8.0f} ms  ratio {t / base_time:.2f}  ({n} items)"
        )
    one = next((f for f in files if f.endswith(".bpf.c") or "/progs/" in f), files[0])
    cmd = [sys.executable, "-m", "secl", "sections", "--output-format", "concise", one]
    # As an installed package runs: with byte-compiled modules (this machine may set
    # PYTHONDONTWRITEBYTECODE, which would time the compiler instead), warmed up once.
    with tempfile.TemporaryDirectory() as pycache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pycache
        env.setdefault("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
        walls = []
        for i in range(max(args.runs, 5) + 1):
            start = time.perf_counter()
            subprocess.run(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False
            )
            if i:
                walls.append(time.perf_counter() - start)
    wall = statistics.median(walls) * 1000
    print(f"one-file run (`secl sections {Path(one).name}`): {wall:.0f} ms wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
