#!/usr/bin/env python3
"""Reading a compiled BPF object against parsing the source it was built from.

For every BPF source that clang compiles here (the selftests' `progs/*.c` that need no
generated vmlinux.h, with the runtime verifier's libbpf headers when they are in the cache,
and the object tests' fixture), in one process:

- source: what secl does to parse a BPF source (tree-sitter parse and the section sites);
- object: what secl does to read its object (the ELF tables through pyelftools, the line
  info, the listing and its sites: secl/parse/objects.py);
- floor: the program table alone read by hand with `struct` (secl/verify/objects.py), the
  cost of the ELF tables without pyelftools;
- the one-time import of pyelftools, in a fresh interpreter, next to `python -c pass`;
- end to end: `secl check --no-cache --jobs 1` in a fresh interpreter over a directory of the
  sources, over a directory of their objects and over an empty one (the start-up), per file
  once the start-up is taken off (for objects, also without the pyelftools import).

    python bench/objects.py [--runs N] [--limit N]

Prints figures, asserts nothing. Needs clang; the selftests come from $SECL_LINUX_SELFTESTS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURE = HERE.parent / "tests" / "fixtures" / "objects" / "probe.bpf.c"


def include_flags() -> list[str]:
    """libbpf's headers (bpf/bpf_helpers.h) where the runtime verifier keeps them, else the
    system's; the selftests tree for its own headers."""
    flags = []
    cache = Path(os.environ.get("SECL_CACHE", Path.home() / ".cache" / "secl"))
    sysroot = cache / "verify" / "sysroot" / "usr" / "include"
    if sysroot.is_dir():
        flags += [f"-I{sysroot}", f"-I{sysroot / 'x86_64-linux-gnu'}"]
    selftests = os.environ.get("SECL_LINUX_SELFTESTS")
    if selftests:
        flags += [f"-I{selftests}", f"-I{Path(selftests) / 'progs'}"]
    return flags


def sources(limit: int) -> list[Path]:
    found = [FIXTURE]
    selftests = os.environ.get("SECL_LINUX_SELFTESTS")
    if selftests:
        for path in sorted((Path(selftests) / "progs").glob("*.c")):
            if b"vmlinux.h" not in path.read_bytes():
                found.append(path)
    return found[:limit]


def compile_all(clang: str, paths: list[Path], out: Path) -> list[tuple[Path, Path]]:
    pairs = []
    flags = include_flags()
    for path in paths:
        obj = out / (path.stem + ".o")
        cmd = [clang, "-target", "bpf", "-g", "-O2", *flags, "-c", str(path), "-o", str(obj)]
        if subprocess.run(cmd, capture_output=True).returncode == 0:
            pairs.append((path, obj))
    return pairs


def best_of(runs: int, work: Callable[[], object]) -> float:
    work()  # warm: imports, caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def startup(code: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def end_to_end(pairs: list[tuple[Path, Path]], root: Path, runs: int) -> dict[str, float]:
    """The best wall time of `secl check --no-cache --jobs 1` over an empty directory, the
    sources' and the objects', each its own project (an empty .secl.toml), run by this
    checkout's secl in a fresh interpreter. The three take turns in every round; as an
    installed package runs, with byte-compiled modules (this machine may set
    PYTHONDONTWRITEBYTECODE, which would time the compiler instead), warmed up once."""
    dirs = {name: root / name for name in ("empty", "sources", "objects")}
    for directory in dirs.values():
        directory.mkdir()
        (directory / ".secl.toml").write_text("")
    for source, obj in pairs:
        shutil.copy(source, dirs["sources"] / source.name)
        shutil.copy(obj, dirs["objects"] / obj.name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "secl", "check", "--no-cache", "--jobs", "1", "--exit-zero",
           "--output-format", "concise"]  # fmt: skip
    best = dict.fromkeys(dirs, float("inf"))
    for i in range(runs + 1):
        for name, directory in dirs.items():
            start = time.perf_counter()
            done = subprocess.run([*cmd, str(directory)], env=env, capture_output=True)
            wall = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"secl check {directory}: {done.stderr.decode()[-500:]}")
            if i:
                best[name] = min(best[name], wall)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=1000, help="at most this many sources")
    args = parser.parse_args()
    clang = shutil.which(os.environ.get("CLANG", "clang"))
    if clang is None:
        print("clang is not installed: nothing to compile", file=sys.stderr)
        return 2
    sys.path.insert(0, str(HERE.parent))
    from secl.parse.bpf import extract_sites
    from secl.parse.objects import listing, read_bpf_object
    from secl.parse.tree import parse
    from secl.verify.objects import read_programs

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "build").mkdir()
        pairs = compile_all(clang, sources(args.limit), Path(tmp) / "build")
        if not pairs:
            print("no source compiled", file=sys.stderr)
            return 2
        texts = [(str(s), s.read_bytes()) for s, _ in pairs]
        blobs = [(str(o), o.read_bytes()) for _, o in pairs]

        def parse_sources() -> None:
            for path, data in texts:
                extract_sites(path, data, parse(data))

        def read_objects() -> None:
            for path, data in blobs:
                listing(read_bpf_object(path, data))

        def read_floor() -> None:
            for _, obj in pairs:
                read_programs(str(obj))

        n = len(pairs)
        source_ms = best_of(args.runs, parse_sources) / n * 1000
        object_ms = best_of(args.runs, read_objects) / n * 1000
        floor_ms = best_of(args.runs, read_floor) / n * 1000
        source_kb = sum(len(d) for _, d in texts) / n / 1024
        object_kb = sum(len(d) for _, d in blobs) / n / 1024
        e2e = end_to_end(pairs, Path(tmp), args.runs)
    bare = startup("pass", args.runs)
    elftools = startup("from elftools.elf.elffile import ELFFile", args.runs)
    print(f"{n} sources compiled with {clang} (best of {args.runs} runs, per file)")
    print(f"  parse a source       {source_ms:7.2f} ms  ({source_kb:.1f} KiB of C)")
    print(f"  read its object      {object_ms:7.2f} ms  ({object_kb:.1f} KiB of ELF)")
    print(f"  object / source      {object_ms / source_ms:7.2f}")
    print(f"  floor: program table by hand (struct)  {floor_ms:.2f} ms")
    print(f"import pyelftools once per run: {(elftools - bare) * 1000:.0f} ms "
          f"(python -c pass: {bare * 1000:.0f} ms)")  # fmt: skip
    start = e2e["empty"]
    per_source = (e2e["sources"] - start) / n * 1000
    per_object = (e2e["objects"] - start) / n * 1000
    per_object_read = (e2e["objects"] - start - (elftools - bare)) / n * 1000
    print(f"end to end: secl check --no-cache --jobs 1 over a directory of the {n} files "
          f"(best of {args.runs} runs, fresh interpreter)")  # fmt: skip
    print(f"  start-up (empty directory) {start * 1000:7.0f} ms")
    print(f"  sources                    {e2e['sources'] * 1000:7.0f} ms  "
          f"{per_source:.2f} ms per file after start-up")  # fmt: skip
    print(f"  objects                    {e2e['objects'] * 1000:7.0f} ms  "
          f"{per_object:.2f} ms per file after start-up, "
          f"{per_object_read:.2f} without the pyelftools import")  # fmt: skip
    print(f"  object / source            {per_object / per_source:7.2f}     "
          f"({per_object_read / per_source:.2f} without the import)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
