"""Run a catalogue example (or any fixture set) and compare with its markers.

Markers are comments on the line they are about, as semgrep and clang-tidy tests do:
`// ruleid: SECL201` means that rule must report on this line, `// ok: SECL201` that it must not.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from secl.analysis.run import run_rules
from secl.api import load
from secl.config import Config, parse_table
from secl.findings import Finding

MARKER = re.compile(r"(ruleid|ok):\s*(SECL\d{3}(?:\s*,\s*SECL\d{3})*)")


def markers(text: str) -> tuple[set[tuple[int, str]], set[tuple[int, str]]]:
    must, must_not = set(), set()
    for row, line in enumerate(text.splitlines(), start=1):
        for kind, codes in MARKER.findall(line):
            for code in re.split(r"\s*,\s*", codes):
                (must if kind == "ruleid" else must_not).add((row, code))
    return must, must_not


def write_files(root: Path, files: dict[str, str]) -> None:
    (root / ".git").mkdir(parents=True, exist_ok=True)  # the project root for pairing
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip("\n"))


def compile_objects(root: Path, objects: dict[str, str]) -> None:
    """Compile each object of an example (`x.bpf.o` from its text as `x.bpf.c`) with clang, in
    a directory outside the example: its line info names a file of the example's name in
    another checkout, as for an object built elsewhere."""
    if not objects:
        return
    clang = shutil.which(os.environ.get("CLANG", "clang"))
    if clang is None:
        pytest.skip("clang is not installed: the example's objects cannot be compiled")
    elsewhere = root.parent / f"{root.name}-built-elsewhere"
    elsewhere.mkdir(exist_ok=True)
    for name, text in objects.items():
        source = elsewhere / (name.removesuffix(".o") + ".c")
        source.write_text(text.lstrip("\n"))
        out = root / name
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [clang, "-target", "bpf", "-g", "-O2", "-c", source.name, "-o", str(out)]
        subprocess.run(cmd, check=True, cwd=elsewhere, capture_output=True)


def run_example(
    root: Path,
    files: dict[str, str],
    target: str | None = None,
    *,
    objects: dict[str, str] | None = None,
    config: dict[str, object] | None = None,
) -> list[Finding]:
    write_files(root, files)
    compile_objects(root, objects or {})
    base = parse_table(config, str(root / ".secl.toml")) if config else Config(root=str(root))
    config = replace(base, select=("ALL",), target_libbpf=target or "upgrade")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        run = load(["."], config)
        return run_rules(run.project)
    finally:
        os.chdir(cwd)


def compare(code: str, files: dict[str, str], findings: list[Finding]) -> list[str]:
    """Differences between the markers for `code` and what was found; empty when they agree."""
    errors = []
    for name, text in files.items():
        must, must_not = markers(text.lstrip("\n"))
        got = {(f.span.start.row, f.code) for f in findings if os.path.normpath(f.path) == name}
        for row, c in sorted(must):
            if c == code and (row, c) not in got:
                errors.append(f"{name}:{row}: expected {c}, not reported")
        for row, c in sorted(must_not):
            if c == code and (row, c) in got:
                errors.append(f"{name}:{row}: {c} reported where marked ok")
        for row, c in sorted(got):
            if c == code and (row, c) not in must:
                errors.append(f"{name}:{row}: unexpected {c} (no `ruleid: {c}` marker)")
    return errors


def compare_objects(code: str, objects: dict[str, str], findings: list[Finding]) -> list[str]:
    """An object's markers are in the source it is compiled from, for the object as a whole
    (its rows are ELF sections): `ruleid: CODE` there means CODE must be reported on the
    object, `ok: CODE` that it must not."""
    errors = []
    for name, text in objects.items():
        must, must_not = markers(text.lstrip("\n"))
        got = {f.code for f in findings if os.path.normpath(f.path) == name}
        if any(c == code for _, c in must) and code not in got:
            errors.append(f"{name}: expected {code}, not reported")
        if any(c == code for _, c in must_not) and code in got:
            errors.append(f"{name}: {code} reported where marked ok")
        if code in got and not any(c == code for _, c in must):
            errors.append(f"{name}: unexpected {code} (no `ruleid: {code}` marker)")
    return errors


def apply_fixes(files: dict[str, str], findings: list[Finding], code: str) -> dict[str, str]:
    """Apply every fix of `code` (safe and unsafe) to the example's text, bottom-up."""
    out = {name: text.lstrip("\n").encode() for name, text in files.items()}
    edits: dict[str, list] = {}
    for f in findings:
        if f.code == code and f.fix is not None:
            for e in f.fix.edits:
                edits.setdefault(os.path.normpath(e.path), []).append(e)
    for name, es in edits.items():
        data = out[name]
        for e in sorted(es, key=lambda e: e.span.start_byte, reverse=True):
            data = data[: e.span.start_byte] + e.content.encode() + data[e.span.end_byte :]
        out[name] = data
    return {name: data.decode() for name, data in out.items()}
