#!/usr/bin/env python3
"""Time secl against the floor of a tree-sitter linter on the same tree, in one process.

The floor (../shared/docs/performance-floor.md): read every .c/.h file, parse it with
tree-sitter-c and run one query for `SEC` calls. secl's figure is the real work of
`secl sections` / `secl check` through the library API (without interpreter start-up). One-file
runs of the commands measure start-up separately, next to `python -c pass` and the start-up
floor: the interpreter, the tree-sitter bindings and the standard modules secl is written with.

    python bench/bench.py [TREE ...] [--runs N] [--loaders-tree DIR | --no-loaders]
    python bench/bench.py --large-file SITES [--runs N]
    python bench/bench.py --scale [PARTS] [--linux TREE] [--runs N]

TREE defaults to $SECL_LINUX_SELFTESTS/progs and .../prog_tests. A Go/Rust-heavy tree follows
(bench/loaders.py: a generated one, or DIR): a whole-tree check next to the floor of walking,
reading and parsing what it reads and parses, C, Go and Rust. `--large-file` times instead
one generated file of SITES programs whose sections are long unknown names, every one
different (issue 13: 100000 sites, 47 MB, took 4 min 15 s in the did-you-mean), against the
floor of the same file. `--scale` prints the figures of large inputs instead (bench/scale.py:
PARTS comma-separated among tree, jobs, warm, headers, compdb, startup; default all that have
their input), each next to its floor measured in the same run. Prints figures, asserts
nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


def timed_rounds(
    stages: dict[str, Callable[[list[str]], int]], files: list[str], runs: int
) -> dict[str, tuple[float, float, int]]:
    """(median wall, median CPU, result) per stage. The stages take turns in every round, so a
    host that speeds up or slows down during the run affects them alike (this machine is
    shared: CPU time is the steadier figure)."""
    results = {name: fn(files) for name, fn in stages.items()}  # warm-up: imports, caches
    walls: dict[str, list[float]] = {name: [] for name in stages}
    cpus: dict[str, list[float]] = {name: [] for name in stages}
    for _ in range(runs):
        for name, fn in stages.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn(files)
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
    return {
        name: (statistics.median(walls[name]), statistics.median(cpus[name]), results[name])
        for name in stages
    }


def write_large_file(directory: str, sites: int) -> str:
    """One BPF source of `sites` programs, each in a section libbpf does not know and close
    to one it does (`kprobes/...`), with a name of about 450 characters: every site takes
    the did-you-mean path, and no two share an answer."""
    path = os.path.join(directory, "large.bpf.c")
    with open(path, "w", encoding="ascii") as fh:
        fh.write('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n\n')
        for i in range(sites):
            name = f"kprobes/fn_{i}_" + "x" * (430 - len(str(i)))
            fh.write(f'SEC("{name}")\nint prog_{i}(void *ctx) {{ return 0; }}\n\n')
        fh.write('char LICENSE[] SEC("license") = "GPL";\n')
    return path


def large_file(sites: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = write_large_file(directory, sites)
        size = os.path.getsize(path)
        print(
            f"generated: {sites} sites with long unknown names, {size / 1e6:.1f} MB,"
            f" median of {runs}"
        )
        timings = timed_rounds({"floor": floor, "check": secl_check}, [path], runs)
    floor_wall, floor_cpu, matches = timings["floor"]
    wall, cpu, count = timings["check"]
    print(
        f"floor (parse + SEC query): {floor_wall * 1000:7.0f} ms wall {floor_cpu * 1000:7.0f} ms"
        f" CPU  ({matches} SEC calls)"
    )
    print(
        f"secl check:                {wall * 1000:7.0f} ms wall {cpu * 1000:7.0f} ms CPU"
        f"  ratio {wall / floor_wall:.2f} wall, {cpu / floor_cpu:.2f} CPU  ({count} findings)"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak:.0f} MB")


# What the installed `secl` script runs (pip's console-script wrapper), without runpy.
ENTRY = "import sys; from secl.cli import main; sys.exit(main())"
# The parts of the start-up no secl design avoids: the interpreter, the tree-sitter bindings
# (loaded as secl loads them), and the standard modules secl's stages are written with.
FLOOR = (
    "import argparse, dataclasses, json, re; from secl.parse.binding import binding; "
    "binding('tree_sitter').Parser(binding('tree_sitter').Language("
    "binding('tree_sitter_c').language())).parse(b'int x;')"
)


def one_file_runs(path: str, runs: int) -> list[tuple[str, float]]:
    """Median wall time of whole commands on one file, start-up included, next to the floor
    of any Python start-up. The commands take turns in every round. As an installed package
    runs: with byte-compiled modules (this machine may set PYTHONDONTWRITEBYTECODE, which
    would time the compiler instead), warmed up once."""
    name = Path(path).name
    concise = ["--output-format", "concise", path]
    commands = {
        "python -c pass": ["-c", "pass"],
        "start-up floor (interpreter, tree-sitter, stdlib modules)": ["-c", FLOOR],
        f"one-file run (`secl sections {name}`)": ["-c", ENTRY, "sections", *concise],
        f"one-file run (`secl check {name}`)": ["-c", ENTRY, "check", *concise],
    }
    walls: dict[str, list[float]] = {label: [] for label in commands}
    with tempfile.TemporaryDirectory() as pycache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pycache
        env.setdefault("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
        for i in range(runs + 1):
            for label, argv in commands.items():
                start = time.perf_counter()
                subprocess.run(
                    [sys.executable, *argv],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=env,
                    check=False,
                )
                if i:
                    walls[label].append(time.perf_counter() - start)
    return [(label, statistics.median(w) * 1000) for label, w in walls.items()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--large-file", type=int, metavar="SITES")
    parser.add_argument("--loaders-tree", metavar="DIR", help="the Go/Rust-heavy tree")
    parser.add_argument("--no-loaders", action="store_true", help="no Go/Rust-heavy tree")
    parser.add_argument(
        "--scale", nargs="?", const="", metavar="PARTS", help="the figures of bench/scale.py"
    )
    parser.add_argument("--linux", help="a Linux git checkout for --scale's `tree`")
    args = parser.parse_args()
    if args.scale is not None:
        import scale

        argv = ["--runs", str(args.runs)]
        argv += ["--only", args.scale] if args.scale else []
        argv += ["--linux", args.linux] if args.linux else []
        argv += ["--selftests", args.trees[0]] if args.trees else []
        return scale.main(argv)
    if args.large_file:
        large_file(args.large_file, args.runs)
        return 0
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
    stages = {"floor": floor, "sections": secl_sections, "check": secl_check}
    timings = timed_rounds(stages, files, args.runs)
    floor_wall, floor_cpu, matches = timings["floor"]
    print(
        f"floor (parse + SEC query): {floor_wall * 1000:6.0f} ms wall {floor_cpu * 1000:6.0f} ms"
        f" CPU  ({matches} SEC calls)"
    )
    for name in ("sections", "check"):
        wall, cpu, count = timings[name]
        print(
            f"secl {name + ':':9}        {wall * 1000:6.0f} ms wall {cpu * 1000:6.0f} ms CPU"
            f"  ratio {wall / floor_wall:.2f} wall, {cpu / floor_cpu:.2f} CPU  ({count} items)"
        )
    one = next((f for f in files if f.endswith(".bpf.c") or "/progs/" in f), files[0])
    for label, wall in one_file_runs(one, max(args.runs, 5)):
        print(f"{label:58} {wall:6.0f} ms wall")
    if not args.no_loaders:
        from loaders import report

        print("Go/Rust-heavy tree (bench/loaders.py):")
        report(args.loaders_tree, args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
