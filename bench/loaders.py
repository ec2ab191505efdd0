#!/usr/bin/env python3
"""Time a whole-tree `secl check` of a Go/Rust-heavy project against its floor, in one process.

The floor walks the tree (the directories secl walks: not `.git`, `vendor/`, `build/`, ...;
for Go, Rust and Python not vendored ones either), reads every file secl reads for the run
(C and C++ sources and headers; Go, Rust and Python files; manifests and build files) and
parses, with the same tree-sitter grammars, every file secl parses: every C file secl's byte
prefilter keeps (plus one query for `SEC` calls), every C++ loader it keeps, and every Go,
Rust or Python file it parses (secl's own prefilters decide which: substring tests, so the
floor keeps them; a Go file with only bpf2go `go:generate` lines is read as text, not
parsed). secl's figure is `secl.api.check()` on the tree: discovery, linking, section models,
upgrade analysis, in this process (`jobs = 1`) and without the results cache, as the floor
has neither; compiled objects (`*.o`) in the tree are left out (bench/objects.py times those).

    python bench/loaders.py [TREE] [--runs N]

Without TREE, a tree is generated in a temporary directory: a Go module with a `vendor/`
directory, bpf2go-loaded BPF C, Go packages that use cilium/ebpf and libbpfgo, plain Go files,
and a libbpf-rs crate. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import SEC_QUERY, timed_rounds

BPF_C = """// generated: BPF program file {i}
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {{
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
}} counts_{i} SEC(".maps");

struct {{
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
}} events_{i} SEC(".maps");

struct event {{
	__u32 pid, tid;
	__u64 ts, hash;
	char comm[16];
}};

{programs}
char LICENSE[] SEC("license") = "GPL";
"""
PROGRAM = """static __always_inline int record_{i}_{j}(struct event *e, __u64 id)
{{
	__u32 key = {j};
	__u64 one = 1, *value = bpf_map_lookup_elem(&counts_{i}, &key);

	if (value)
		__sync_fetch_and_add(value, 1);
	else
		bpf_map_update_elem(&counts_{i}, &key, &one, BPF_ANY);
	e->pid = id >> 32;
	e->tid = (__u32)id;
	for (int k = 0; k < 16; k++) {{
		if (e->comm[k] == 0)
			break;
		e->hash = e->hash * 31 + e->comm[k];
	}}
	return 0;
}}

SEC("{section}")
int prog_{i}_{j}(void *ctx)
{{
	struct event *e;
	__u64 id = bpf_get_current_pid_tgid();

	e = bpf_ringbuf_reserve(&events_{i}, sizeof(*e), 0);
	if (!e)
		return 0;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	e->ts = bpf_ktime_get_ns();
	record_{i}_{j}(e, id);
	bpf_ringbuf_submit(e, 0);
	return 0;
}}

"""
SECTIONS = ("kprobe/do_unlinkat", "socket1", "tracepoint/syscalls/sys_enter_openat",
            "uprobe/readline", "xdp", "classifier/ingress", "kretprobe/do_sys_openat2")  # fmt: skip

GO_CILIUM = """package tracer{i}

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang Probe{i} ../../bpf/probe{i}.bpf.c

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

type Tracer struct {{
	objs  *ebpf.Collection
	links []link.Link
}}

func New() (*Tracer, error) {{
	spec, err := ebpf.LoadCollectionSpec("probe{i}.o")
	if err != nil {{
		return nil, fmt.Errorf("loading spec: %w", err)
	}}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {{
		return nil, err
	}}
	t := &Tracer{{objs: coll}}
	kp, err := link.Kprobe("do_unlinkat", coll.Programs["prog_{i}_0"], nil)
	if err != nil {{
		return nil, err
	}}
	t.links = append(t.links, kp)
	return t, nil
}}
{filler}
"""
GO_LIBBPFGO = """package agent{i}

import (
	bpf "github.com/aquasecurity/libbpfgo"
)

func Load() error {{
	m, err := bpf.NewModuleFromFile("agent{i}.bpf.o")
	if err != nil {{
		return err
	}}
	defer m.Close()
	if err := m.BPFLoadObject(); err != nil {{
		return err
	}}
	p, err := m.GetProgram("prog_{i}_0")
	if err != nil {{
		return err
	}}
	_, err = p.AttachKprobe("do_unlinkat")
	return err
}}
{filler}
"""
GO_PLAIN = """package util{i}

import "strings"

// Join joins words with a separator.
func Join(words []string, sep string) string {{
	return strings.Join(words, sep)
}}
{filler}
"""
RUST = """use libbpf_rs::skel::{{OpenSkel, SkelBuilder}};

mod probe{i} {{
    include!(concat!(env!("OUT_DIR"), "/probe{i}.skel.rs"));
}}
use probe{i}::*;

pub fn run() -> anyhow::Result<()> {{
    let builder = Probe{i}SkelBuilder::default();
    let mut storage = std::mem::MaybeUninit::uninit();
    let open = builder.open(&mut storage)?;
    let mut skel = open.load()?;
    skel.attach()?;
    Ok(())
}}
{filler}
"""
GO_FILLER = "\n".join(
    f"func helper{k}(x int) int {{\n\tif x > {k} {{\n\t\treturn x - {k}\n\t}}\n"
    f"\treturn x + {k}\n}}\n"
    for k in range(60)
)
RUST_FILLER = "\n".join(
    f"fn helper{k}(x: i64) -> i64 {{\n    if x > {k} {{ x - {k} }} else {{ x + {k} }}\n}}\n"
    for k in range(40)
)


def generate(root: Path) -> None:
    """A Go module (cilium/ebpf and libbpfgo loaders, plain packages, vendor/) with a
    libbpf-rs crate beside it."""
    (root / ".git").mkdir(parents=True)
    (root / "go.mod").write_text(
        "module example.com/agent\n\ngo 1.22\n\nrequire (\n"
        "\tgithub.com/cilium/ebpf v0.16.0\n\tgithub.com/aquasecurity/libbpfgo v0.8.0\n)\n"
    )
    for i in range(40):
        programs = "".join(
            PROGRAM.format(i=i, j=j, section=SECTIONS[(i + j) % len(SECTIONS)]) for j in range(4)
        )
        name = f"probe{i}.bpf.c" if i < 30 else f"agent{i}.bpf.c"
        path = root / "bpf" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(BPF_C.format(i=i, programs=programs))
    for i in range(30):
        path = root / "pkg" / f"tracer{i}" / "tracer.go"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(GO_CILIUM.format(i=i, filler=GO_FILLER))
    for i in range(30, 40):
        path = root / "bpf" / f"agent{i}.go"
        path.write_text(GO_LIBBPFGO.format(i=i, filler=GO_FILLER))
    for i in range(600):
        path = root / "internal" / f"util{i}" / "util.go"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(GO_PLAIN.format(i=i, filler=GO_FILLER))
    for i in range(1500):  # vendored modules: never read by secl
        path = root / "vendor" / "github.com" / f"dep{i % 30}" / f"file{i}.go"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(GO_CILIUM.format(i=i, filler=GO_FILLER))
    crate = root / "rust"
    (crate / "src" / "bpf").mkdir(parents=True)
    (crate / "Cargo.toml").write_text(
        '[package]\nname = "probe"\n\n[dependencies]\nlibbpf-rs = "0.24"\n'
    )
    for i in range(40):
        (crate / "src" / f"m{i}.rs").write_text(RUST.format(i=i, filler=RUST_FILLER))


def walk(tree: str) -> tuple[list[str], list[str], list[str]]:
    """(C files, Go/Rust/Python files, manifests and build files) of the tree: the files a
    run must find and read, in the directories secl walks (os.walk, the cheapest walk there
    is). The C walk leaves out the default excludes (`build`, `vendor`, ...) and the
    directories that never hold sources (`.git`, `node_modules`, ...); the loader walk also
    leaves out vendored code (`third_party`, ...), as secl.loaders.discover.walk does."""
    from secl.config import DEFAULT_EXCLUDE
    from secl.files import SKIP_DIRS, SOURCE_SUFFIXES
    from secl.loaders.discover import VENDOR_DIRS, is_candidate

    skipped = SKIP_DIRS | set(DEFAULT_EXCLUDE)
    c_files: list[str] = []
    others: list[str] = []
    read_only: list[str] = []
    for directory, dirs, files in os.walk(tree):
        dirs[:] = sorted(d for d in dirs if d not in skipped)
        parts = os.path.relpath(directory, tree).split(os.sep)
        vendored = any(part in VENDOR_DIRS for part in parts)
        for f in sorted(files):
            if f in skipped:
                continue
            if f.endswith(SOURCE_SUFFIXES):  # C, and C++ (read as loader code only)
                c_files.append(os.path.join(directory, f))
            elif vendored:
                continue
            elif f.endswith((".go", ".rs", ".py")):
                others.append(os.path.join(directory, f))
            elif is_candidate(f):
                read_only.append(os.path.join(directory, f))
    return c_files, others, read_only


def make_floor(tree: str):
    """Walk the tree, read every file, parse the C ones secl parses (plus the SEC query), its
    C++ loaders and the Go, Rust and Python ones it parses (secl's own prefilters)."""
    import tree_sitter_c
    import tree_sitter_cpp
    import tree_sitter_go
    import tree_sitter_python
    import tree_sitter_rust
    from tree_sitter import Language, Parser, Query, QueryCursor

    from secl.files import is_cpp
    from secl.loaders.golang import is_go_loader, parses_go
    from secl.loaders.python import is_python_loader
    from secl.loaders.rust import is_rust_loader, parses_rust
    from secl.parse.filefacts import needs_parse

    c = Language(tree_sitter_c.language())
    c_parser = Parser(c)
    cpp_parser = Parser(Language(tree_sitter_cpp.language()))
    cursor = QueryCursor(Query(c, SEC_QUERY))
    # What secl parses: its prefilter's files, less a Go file with only bpf2go go:generate
    # lines (read as text) and a generated `x.skel.rs` (secl.loaders.golang.parses_go,
    # secl.loaders.rust.parses_rust).
    parsers = {
        ".go": (
            Parser(Language(tree_sitter_go.language())),
            lambda path, data: is_go_loader(data) and parses_go(data),
        ),
        ".rs": (
            Parser(Language(tree_sitter_rust.language())),
            lambda path, data: is_rust_loader(data) and parses_rust(path),
        ),
        ".py": (
            Parser(Language(tree_sitter_python.language())),
            lambda path, data: is_python_loader(data),
        ),
    }

    def floor(_files: list[str]) -> int:
        c_files, others, read_only = walk(tree)
        found = 0
        for path in read_only:
            with open(path, "rb") as fh:
                fh.read()
        for path in c_files:
            with open(path, "rb") as fh:
                data = fh.read()
            if not needs_parse(data, path):
                continue
            if is_cpp(path):
                cpp_parser.parse(data)  # a loader: no sites
                found += 1
            else:
                found += len(cursor.matches(c_parser.parse(data).root_node))
        for path in others:
            parser, wanted = parsers[os.path.splitext(path)[1]]
            with open(path, "rb") as fh:
                data = fh.read()
            if wanted(path, data):
                parser.parse(data)
                found += 1
        return found

    return floor


def secl_check_tree(tree: str):
    def run(_files: list[str]) -> int:
        from secl.api import check
        from secl.config import Config

        cwd = os.getcwd()
        os.chdir(tree)
        try:
            # One process, no results cache: the floor has neither. Compiled objects in the
            # tree are left out (the floor reads no ELF; bench/objects.py times them).
            config = Config(root=tree, cache=False, jobs=1, objects=False)
            return len(check(["."], config).findings)
        finally:
            os.chdir(cwd)

    return run


def report(tree_arg: str | None, runs: int) -> None:
    """Print the figures of TREE (None: a generated tree). bench/bench.py prints them too."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.abspath(tree_arg) if tree_arg else os.path.join(tmp, "tree")
        if not tree_arg:
            generate(Path(tree))
        c_files, others, read_only = walk(tree)
        print(f"tree: {tree if tree_arg else 'generated'}: {len(c_files)} C files, "
              f"{len(others)} Go/Rust/Python files outside vendor/, "
              f"{len(read_only)} manifests and build files, median of {runs}")  # fmt: skip
        stages = {
            "floor (parse C, Go, Rust)": make_floor(tree),
            "secl check": secl_check_tree(tree),
        }
        results = timed_rounds(stages, c_files, runs)
        floor_wall, floor_cpu, _ = results["floor (parse C, Go, Rust)"]
        for name, (wall, cpu, result) in results.items():
            print(
                f"{name:28} {wall * 1000:8.0f} ms wall {cpu * 1000:8.0f} ms CPU"
                f"  ratio {wall / floor_wall:5.2f} (CPU {cpu / floor_cpu:5.2f})  [{result}]"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", nargs="?")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    report(args.tree, args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
