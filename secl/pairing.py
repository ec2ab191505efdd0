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
