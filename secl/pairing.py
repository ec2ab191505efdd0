"""How loader code names a BPF source: its stem and the skeleton names it goes by."""

from __future__ import annotations

import os
import re

from secl.config import Config


def stem(path: str) -> str:
    """`dir/probe.bpf.c` -> `probe`; also for `probe.c`, headers and compiled objects
    (`probe.bpf.o`, `probe.o`: a loader names an object's skeleton as its source's)."""
    name = os.path.basename(path)
    for suffix in (".bpf.c", ".c", ".h", ".bpf.o", ".o"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def skeleton_names(path: str, config: Config) -> set[str]:
    """Names a loader may use for the skeleton of BPF source `path`: the base name (kernel
    selftests), with `_bpf` (bpftool's default for `x.bpf.o`), or as configured."""
    ident = re.sub(r"\W", "_", stem(path))
    names = {ident, ident + "_bpf"}
    pairs = config.skeleton_pairs()
    if pairs:
        absolute = os.path.abspath(path)
        names.update(n for n, src in pairs if os.path.abspath(src) == absolute)
    return names


def shared_depth(a: str, b: str) -> int:
    """How many leading directories the directories of files `a` and `b` share."""
    x = os.path.dirname(os.path.abspath(a)).split(os.sep)
    y = os.path.dirname(os.path.abspath(b)).split(os.sep)
    depth = 0
    for p, q in zip(x, y, strict=False):
        if p != q:
            break
        depth += 1
    return depth


def nearest(here: str, candidates: list[str]) -> list[str]:
    """Of several BPF sources that answer to one name (`uprobe.bpf.c` in five example
    directories), those nearest in the tree to the loader file `here`: a build compiles a
    loader with the objects of its own directory or subtree, so `uprobe_bpf__open()` in
    `a/uprobe.c` opens `a/uprobe.bpf.o`, not `b/uprobe.bpf.o`. Ties are all kept."""
    if len(candidates) <= 1:
        return candidates
    depths = [shared_depth(here, c) for c in candidates]
    best = max(depths)
    return [c for c, d in zip(candidates, depths, strict=True) if d == best]
