"""Compile BPF C test sources into objects with clang, as the object tests need them.

The tests skip, with the reason, only when clang is not installed (scripts/test installs it);
with CI=true that is a failure instead, because CI installs everything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "objects"


def clang() -> str:
    found = shutil.which(os.environ.get("CLANG", "clang"))
    if found is None:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail("CI must have clang (scripts/test installs it)")
        pytest.skip("clang is not installed: BPF objects cannot be compiled")
    return found


def compile_bpf(
    source: Path, out: Path, *flags: str, big_endian: bool = False, debug: bool = True
) -> Path:
    """`clang -target bpf -g -O2 -c SOURCE -o OUT FLAGS...`, run in the source's directory
    (its line info then names the source by its absolute path)."""
    target = "bpfeb" if big_endian else "bpfel"
    cmd = [clang(), "-target", target, *(["-g"] if debug else []), "-O2", *flags]
    cmd += ["-c", source.name, "-o", str(out.resolve())]
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(cmd, check=True, cwd=source.parent, capture_output=True, text=True)
    return out


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.lstrip("\n"))
    return path
