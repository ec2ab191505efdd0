#!/usr/bin/env python3
"""Figures for large inputs, each next to its floor measured in the same run (the machine
is shared: only figures taken side by side compare). Prints, asserts nothing.

    python bench/scale.py [--linux TREE] [--selftests DIR] [--runs N] [--only PARTS]

PARTS (comma-separated, default all that have their input):
  tree       one-file `secl check` in a Linux git checkout (TREE, or $SECL_BENCH_LINUX):
             cold (empty results cache) and warm, next to the run without the cache (what
             secl did before it had one), the one `git grep` any search of the tree costs,
             the start-up floor, and the freshness floor (a stat of every indexed file)
  jobs       `secl check` of the selftests ($SECL_LINUX_SELFTESTS) in 1 and in N processes
             (the CPUs), next to the parse-and-query floor in 1 and N processes
  warm       the same selftests check with a warm results cache, next to the cold one
  headers    a small project with six 2-3 MB vmlinux.h copies against the same project
             without them: wall time and peak RSS summed over all processes
  compdb     a 192 MB compile_commands.json: wall and peak RSS, next to reading the file
  startup    one-file runs with a warm cache next to `python -c pass` and the start-up floor

A Linux tree for `tree`: Debian's linux-source tarball extracted anywhere, the last `/*` line
of its top-level .gitignore dropped, then `git init && git add -A && git commit` (README,
Development).
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import ENTRY, FLOOR, SEC_QUERY  # noqa: E402

PYTHON = sys.executable


def _env(cache: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.setdefault("PYTHONPATH", str(HERE.parent))
    env["PYTHONPYCACHEPREFIX"] = _PYCACHE
    if cache is not None:
        env["SECL_CACHE_DIR"] = cache
    return env


_PYCACHE = ""  # byte-compiled modules of the timed runs: a directory main() makes


def run(argv: list[str], cwd: str | None = None, env: dict[str, str] | None = None) -> Sample:
    """Wall time, CPU time (children) and peak RSS summed over the process and its
    children (polled from /proc)."""
    before = os.times()
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env or _env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    peaks: dict[int, int] = {}
    while True:
        for pid in _tree(proc.pid):
            hwm = _hwm(pid)
            if hwm:
                peaks[pid] = max(peaks.get(pid, 0), hwm)
        # Polled: wait4's ru_maxrss would count the bench's own memory, which the child had
        # between fork and exec.
        done, _status, _usage = os.wait4(proc.pid, os.WNOHANG)
        if done:
            proc.returncode = 0
            break
        time.sleep(0.005)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return Sample(wall, cpu, sum(peaks.values()))


class Sample:
    def __init__(self, wall: float, cpu: float, rss_kb: int) -> None:
        self.wall, self.cpu, self.rss_kb = wall, cpu, rss_kb


def _tree(pid: int) -> list[int]:
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return out


def _hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def median(samples: list[Sample]) -> Sample:
    return Sample(
        statistics.median(s.wall for s in samples),
        statistics.median(s.cpu for s in samples),
        int(statistics.median(s.rss_kb for s in samples)),
    )


def rounds(commands: dict[str, tuple], runs: int, before=None) -> dict[str, Sample]:
    """Median of `runs` rounds in which the commands take turns (`before(label)` runs
    untimed before each)."""
    samples: dict[str, list[Sample]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, (argv, cwd, env) in commands.items():
            if before is not None:
                before(label)
            samples[label].append(run(argv, cwd, env))
    return {label: median(s) for label, s in samples.items()}


def show(label: str, s: Sample, floor: Sample | None = None, note: str = "") -> None:
    ratio = f"  {s.wall / floor.wall:5.2f}x the floor" if floor else ""
    rss = f"{s.rss_kb / 1024:6.0f} MB" if s.rss_kb else "       "
    print(f"  {label:58} {s.wall * 1000:7.0f} ms wall {s.cpu * 1000:7.0f} ms CPU {rss}{ratio}"
          f"{'  ' + note if note else ''}")  # fmt: skip


def secl(*args: str) -> list[str]:
    return [PYTHON, "-c", ENTRY, *args]


# -- tree ------------------------------------------------------------------------------------


STAT_FLOOR = """
import os, subprocess, sys
out = subprocess.run(["git", "ls-files", "-z", "--", "*.c", "*.h"], capture_output=True).stdout
for name in out.split(b"\\0"):
    if name:
        os.stat(name)
"""


def part_tree(linux: str, runs: int) -> None:
    target = "tools/testing/selftests/bpf/progs/test_attach_probe.c"
    if not os.path.isfile(os.path.join(linux, target)):
        print(f"tree: {linux} has no {target}; skipped")
        return
    files = subprocess.run(
        ["git", "-C", linux, "ls-files", "--", "*.c", "*.h"], capture_output=True, text=True
    ).stdout.count("\n")
    print(f"tree: one-file check of {target} in {linux} ({files} C files), median of {runs}")
    cold_dir = tempfile.mkdtemp(prefix="secl-bench-cold-")
    warm_dir = tempfile.mkdtemp(prefix="secl-bench-warm-")
    check = secl("check", "--output-format", "concise", target)
    names = ["-e", "test_attach_probe__", "-e", 'test_attach_probe.bpf.o"']
    grep = ["git", "--no-pager", "grep", "-l", "-z", "-F", "-I", "--untracked", *names, "--"]
    grep += ["*.c", "*.h"]
    run(check, linux, _env(warm_dir))  # warm-up: the warm cache, the page cache
    commands = {
        "floor: one git grep for the file's names": (grep, linux, None),
        "floor: start-up (interpreter, tree-sitter, stdlib)": (
            [PYTHON, "-c", FLOOR], linux, _env()),
        "floor: freshness (a stat of every tracked C file)": (
            [PYTHON, "-c", STAT_FLOOR], linux, None),
        "without the cache (--no-cache)": (
            [*check, "--no-cache"], linux, _env()),
        "cold (empty results cache)": (check, linux, _env(cold_dir)),
        "warm (results cache of an earlier run)": (check, linux, _env(warm_dir)),
    }  # fmt: skip

    def empty_cold(label: str) -> None:
        if label.startswith("cold"):
            shutil.rmtree(cold_dir, ignore_errors=True)

    result = rounds(commands, runs, empty_cold)
    labels = list(commands)
    grep_s, start_s, stat_s, before, cold, warm = (result[k] for k in labels)
    show(labels[0], grep_s)
    show(labels[1], start_s)
    show(labels[2], stat_s)
    show(labels[3], before, grep_s)
    show(labels[4], cold, before, "(floor: --no-cache)")
    floor = Sample(start_s.wall + stat_s.wall, start_s.cpu + stat_s.cpu, 0)
    show(labels[5], warm, floor, "(floor: start-up + freshness)")
    shutil.rmtree(cold_dir, ignore_errors=True)
    shutil.rmtree(warm_dir, ignore_errors=True)


# -- jobs, warm ------------------------------------------------------------------------------


FLOOR_PARSE = """
import os, sys
from multiprocessing import get_context
import tree_sitter_c
from tree_sitter import Language, Parser, Query, QueryCursor


def work(paths):
    lang = Language(tree_sitter_c.language())
    parser = Parser(lang)
    cursor = QueryCursor(Query(lang, QUERY))
    n = 0
    for p in paths:
        try:
            with open(p, "rb") as fh:
                data = fh.read()
        except OSError:
            continue  # the selftests have broken symbolic links
        n += len(cursor.matches(parser.parse(data).root_node))
    return n


files = []
for d, dirs, names in os.walk(sys.argv[2]):
    dirs.sort()
    files += [os.path.join(d, n) for n in sorted(names) if n.endswith((".c", ".h"))]
jobs = int(sys.argv[1])
if jobs == 1:
    work(files)
else:
    with get_context("fork").Pool(jobs) as pool:
        sum(pool.map(work, [files[i::16] for i in range(16)]))
""".replace("QUERY", repr(SEC_QUERY))


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _build_files_only(selftests: str) -> str:
    """A results cache holding only what the build files say: secl reads the selftests'
    Makefile for seconds (secl.parse.buildfiles), which no number of processes shortens;
    the `jobs` figures time the parse with that reading taken from this cache."""
    from secl import cache

    directory = tempfile.mkdtemp(prefix="secl-bench-build-")
    run(secl("check", "--output-format", "concise", selftests), None, _env(directory))
    for entry in Path(directory).rglob("*"):
        if entry.is_file() and entry.parent.parent.name == "files":
            found = cache.decode(entry.read_bytes())
            if type(found).__name__ != "BuildFile":
                entry.unlink()
    return directory


def part_jobs(selftests: str, runs: int) -> None:
    n = cpus()
    print(f"jobs: `secl check` of {selftests} in 1 and {n} processes, median of {runs};"
          " the build files' reading from a results cache that holds only that")  # fmt: skip
    template = _build_files_only(selftests)
    work = tempfile.mkdtemp(prefix="secl-bench-jobs-")
    check = secl("check", "--output-format", "concise", selftests)
    commands = {
        "floor: parse + SEC query, 1 process": (
            [PYTHON, "-c", FLOOR_PARSE, "1", selftests], None, _env()),
        f"floor: parse + SEC query, {n} processes": (
            [PYTHON, "-c", FLOOR_PARSE, str(n), selftests], None, _env()),
        "secl check --jobs 1": ([*check, "--jobs", "1"], None, _env(work)),
        f"secl check --jobs {n}": ([*check, "--jobs", str(n)], None, _env(work)),
        "secl check --jobs 1 --no-cache (the build files read)": (
            [*check, "--jobs", "1", "--no-cache"], None, _env()),
    }  # fmt: skip

    def fresh(label: str) -> None:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(template, work)

    fresh("")
    run(commands["secl check --jobs 1"][0], None, _env(work))
    result = rounds(commands, runs, fresh)
    labels = list(commands)
    f1, fn, s1, sn, nocache = (result[k] for k in labels)
    show(labels[0], f1)
    show(labels[1], fn, f1, "(the floor's own ratio)")
    show(labels[2], s1, f1)
    show(labels[3], sn, s1, "(ratio to --jobs 1)")
    show(labels[4], nocache, s1)
    shutil.rmtree(template, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


def part_warm(selftests: str, runs: int) -> None:
    print(f"warm: `secl check` of {selftests}, median of {runs}")
    cold_dir = tempfile.mkdtemp(prefix="secl-bench-cold-")
    warm_dir = tempfile.mkdtemp(prefix="secl-bench-warm-")
    check = secl("check", "--output-format", "concise", selftests)
    run(check, None, _env(warm_dir))
    commands = {
        "without the cache (--no-cache)": ([*check, "--no-cache"], None, _env()),
        "cold (empty results cache)": (check, None, _env(cold_dir)),
        "warm": (check, None, _env(warm_dir)),
    }

    def empty_cold(label: str) -> None:
        if label.startswith("cold"):
            shutil.rmtree(cold_dir, ignore_errors=True)

    result = rounds(commands, runs, empty_cold)
    base = result["without the cache (--no-cache)"]
    show("without the cache (--no-cache)", base)
    show("cold (empty results cache)", result["cold (empty results cache)"], base)
    show("warm", result["warm"], base)
    shutil.rmtree(cold_dir, ignore_errors=True)
    shutil.rmtree(warm_dir, ignore_errors=True)


# -- headers, compdb ------------------------------------------------------------------------


def vmlinux_h(size: int) -> str:
    """A header shaped like bpftool's vmlinux.h (structs, enums, typedefs, kfunc
    prototypes, the preserve_access_index pragma), about `size` bytes, with no SEC()."""
    parts = [
        "#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n\n#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
        "#pragma clang attribute push (__attribute__((preserve_access_index)), "
        "apply_to = record)\n#endif\n\ntypedef unsigned int __u32;\ntypedef long long __s64;\n\n"
        # What makes a real one look like a BPF source or a loader to a substring test:
        "enum bpf_attach_type {\n\tBPF_CGROUP_INET_INGRESS = 0,\n\tBPF_PERF_EVENT = 41,\n};\n\n"
        "enum bpf_link_type {\n\tBPF_LINK_TYPE_UNSPEC = 0,\n"
        "\tBPF_LINK_TYPE_PERF_EVENT = 7,\n};\n\n"
        "enum {\n\tSECCOMP_RET_KILL = 0,\n\tSECCOMP_RET_TRAP = 196608,\n};\n\n"
        "struct elf_section_info {\n\tlong unsigned int section;\n\tint attach_kprobe;\n};\n\n"
    ]
    total, i = len(parts[0]), 0
    while total < size:
        block = (
            f"struct kernel_struct_{i} {{\n\tlong unsigned int flags;\n\t__u32 id;\n"
            f"\tstruct kernel_struct_{max(i - 1, 0)} *parent;\n"
            f"\tint (*callback)(struct kernel_struct_{i} *, __s64);\n\tchar name[16];\n"
            f"\tunion {{\n\t\tvoid *ptr;\n\t\t__s64 value;\n\t}};\n}};\n\n"
            f"enum kernel_enum_{i} {{\n\tKERNEL_ENUM_{i}_A = 0,\n"
            f"\tKERNEL_ENUM_{i}_B = {i},\n}};\n\n"
            f"typedef struct kernel_struct_{i} kernel_struct_{i}_t;\n\n"
            f"extern int bpf_kfunc_{i}(struct kernel_struct_{i} *p, __u32 flags) __weak __ksym;\n\n"
        )
        parts.append(block)
        total += len(block)
        i += 1
    parts.append("#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n\n"
                 "#endif /* __VMLINUX_H__ */\n")  # fmt: skip
    return "".join(parts)


def bpf_source(n: int) -> str:
    """A BPF source of the usual size (about 8 KB): maps, helpers, literal and macro-built
    sections."""
    parts = [
        '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_tracing.h>\n\n'
        '#define PFX "kprobe/"\nchar LICENSE[] SEC("license") = "GPL";\n\n'
        "struct {\n\t__uint(type, BPF_MAP_TYPE_HASH);\n\t__uint(max_entries, 10240);\n"
        '\t__type(key, __u32);\n\t__type(value, __u64);\n} counts SEC(".maps");\n\n'
    ]
    for i in range(12):
        parts.append(
            f"static __always_inline int helper_{i}(__u32 key, __u64 delta)\n{{\n"
            "\t__u64 *value = bpf_map_lookup_elem(&counts, &key);\n\tif (!value) {\n"
            "\t\t__u64 zero = 0;\n\t\tbpf_map_update_elem(&counts, &key, &zero, BPF_NOEXIST);\n"
            "\t\treturn 0;\n\t}\n\t__sync_fetch_and_add(value, delta);\n\treturn 1;\n}\n\n"
        )
        section = f'PFX "do_sys_open{i}"' if i % 3 == 0 else f'"tracepoint/syscalls/sys_enter_{i}"'
        parts.append(
            f"SEC({section})\nint prog_{n}_{i}(void *ctx)\n{{\n"
            "\t__u32 pid = bpf_get_current_pid_tgid() >> 32;\n"
            f"\treturn helper_{i}(pid, {i});\n}}\n\n"
        )
    return "".join(parts)


def small_project(root: Path, *, headers: bool) -> None:
    """Six BPF directories with three sources each (literal and macro-built sections) and a
    loader; with `headers`, a 2-3 MB vmlinux.h in each of the six."""
    root.mkdir(parents=True, exist_ok=True)
    Path(root, ".secl.toml").write_text("")
    for d in range(6):
        sub = Path(root, f"part{d}")
        sub.mkdir(parents=True)
        if headers:
            sub.joinpath("vmlinux.h").write_text(vmlinux_h(2_000_000 + d * 200_000))
        for f in range(3):
            sub.joinpath(f"p{d}{f}.bpf.c").write_text(bpf_source(f))
        sub.joinpath("main.c").write_text(
            f'#include "p{d}0.skel.h"\nint main(void) {{ struct p{d}0 *s = p{d}0__open_and_load();'
            " LIBBPF_OPTS(bpf_kprobe_opts, o, .offset = 8);"
            ' bpf_program__attach_kprobe_opts(s->progs.prog_0_0, "do_sys_open0", &o);'
            " return 0; }\n"
        )


def part_headers(runs: int) -> None:
    base = tempfile.mkdtemp(prefix="secl-bench-headers-")
    with_h, without = Path(base, "with"), Path(base, "without")
    small_project(with_h, headers=True)
    small_project(without, headers=False)
    size = sum(p.stat().st_size for p in with_h.rglob("vmlinux.h"))
    print(f"headers: `secl check .` of 18 BPF sources, with and without six vmlinux.h"
          f" ({size / 1e6:.1f} MB), no results cache, median of {runs}")  # fmt: skip
    check = secl("check", "--no-cache", "--output-format", "concise", ".")
    commands = {
        "floor: the project without the headers": (check, str(without), _env()),
        "the project with six vmlinux.h": (check, str(with_h), _env()),
    }
    run(check, str(with_h))
    result = rounds(commands, runs)
    labels = list(commands)
    show(labels[0], result[labels[0]])
    show(labels[1], result[labels[1]], result[labels[0]])
    shutil.rmtree(base, ignore_errors=True)


READ_FLOOR = "import sys\nwith open(sys.argv[1], 'rb') as fh:\n    while fh.read(1 << 20): pass\n"


def part_compdb(runs: int) -> None:
    base = tempfile.mkdtemp(prefix="secl-bench-compdb-")
    project = Path(base, "p")
    small_project(project, headers=False)
    db = project / "compile_commands.json"
    size = 0
    with open(db, "w") as fh:
        fh.write("[\n")
        n = 0
        while size < 192_000_000:
            target = f"part{n % 6}/p{n % 3}.bpf.c" if n < 18 else f"drivers/d{n % 997}/f{n}.c"
            entry = (
                '{"directory": "' + str(project) + '", "file": "' + target + '", '
                '"arguments": ["clang", "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", '
                '"-DKBUILD_MODNAME=\\"m' + str(n) + '\\"", "-Iinclude", "-Iarch/x86/include", '
                '"-I/usr/include/x86_64-linux-gnu", '
                + ", ".join(f'"-Iextra/dir{k}"' for k in range(40))
                + ', "-c", "'
                + target
                + '", "-o", "'
                + target
                + '.o"]}'
            )
            text = ("" if n == 0 else ",\n") + entry
            fh.write(text)
            size += len(text)
            n += 1
        fh.write("\n]\n")
    megabytes = db.stat().st_size / 1e6
    print(f"compdb: `secl check .` with a {megabytes:.0f} MB compile_commands.json ({n} entries,"
          f" 18 for the project's files), no results cache, median of {runs}")  # fmt: skip
    check = secl("check", "--no-cache", "--output-format", "concise", ".")
    commands = {
        "floor: reading the database once (1 MB at a time)": (
            [PYTHON, "-c", READ_FLOOR, str(db)], str(project), _env()),
        "with compile_commands.json": (check, str(project), _env()),
    }  # fmt: skip
    result = rounds(commands, runs)
    labels = list(commands)
    show(labels[0], result[labels[0]])
    show(labels[1], result[labels[1]], result[labels[0]])
    shutil.rmtree(base, ignore_errors=True)


# -- start-up --------------------------------------------------------------------------------


def part_startup(runs: int) -> None:
    project = tempfile.mkdtemp(prefix="secl-bench-one-")
    Path(project, ".secl.toml").write_text("")
    Path(project, "probe.bpf.c").write_text(
        '#include <bpf/bpf_helpers.h>\nSEC("kprobe/do_unlinkat")\n'
        "int handle(void *ctx) { return 0; }\n"
    )
    Path(project, "main.c").write_text(
        '#include "probe.skel.h"\nint main(void) { struct probe *s = probe__open_and_load();'
        " probe__attach(s); return 0; }\n"
    )
    cache = tempfile.mkdtemp(prefix="secl-bench-cache-")
    print(f"startup: one-file runs in a two-file project, warm cache, median of {runs}")
    one = secl("check", "--output-format", "concise", "probe.bpf.c")
    run(one, project, _env(cache))
    commands = {
        "floor: python -c pass": ([PYTHON, "-c", "pass"], project, _env()),
        "floor: start-up (interpreter, tree-sitter, stdlib)": (
            [PYTHON, "-c", FLOOR], project, _env()),
        "secl check probe.bpf.c (warm cache)": (one, project, _env(cache)),
        "secl check --no-cache probe.bpf.c": ([*one, "--no-cache"], project, _env()),
    }  # fmt: skip
    result = rounds(commands, runs)
    labels = list(commands)
    show(labels[0], result[labels[0]])
    show(labels[1], result[labels[1]])
    show(labels[2], result[labels[2]], result[labels[1]])
    show(labels[3], result[labels[3]], result[labels[1]])
    shutil.rmtree(project, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)


PARTS = ("tree", "jobs", "warm", "headers", "compdb", "startup")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--linux", default=os.environ.get("SECL_BENCH_LINUX"))
    parser.add_argument("--selftests", default=os.environ.get("SECL_LINUX_SELFTESTS"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default=",".join(PARTS))
    args = parser.parse_args(argv)
    global _PYCACHE
    _PYCACHE = tempfile.mkdtemp(prefix="secl-bench-pyc-")
    wanted = [p for p in args.only.split(",") if p]
    for part in wanted:
        if part == "tree":
            if args.linux:
                part_tree(os.path.abspath(args.linux), args.runs)
            else:
                print("tree: give --linux TREE or set SECL_BENCH_LINUX; skipped")
        elif part in ("jobs", "warm"):
            if args.selftests:
                (part_jobs if part == "jobs" else part_warm)(args.selftests, args.runs)
            else:
                print(f"{part}: set SECL_LINUX_SELFTESTS (scripts/fetch-selftests); skipped")
        elif part == "startup":
            part_startup(max(args.runs, 10))
        elif part in ("headers", "compdb"):
            globals()[f"part_{part}"](args.runs)
        else:
            print(f"unknown part {part!r} (known: {', '.join(PARTS)})", file=sys.stderr)
            return 2
    shutil.rmtree(_PYCACHE, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
