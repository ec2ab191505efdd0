#!/usr/bin/env python3
"""Do one-file runs agree with the whole-tree run? Prints the files where they do not.

    python bench/onefile.py [-j N] [--max-files N] [--modes cold,warm,nocache] PROJECT...

For each project tree: `secl check --no-cache --output-format json .` from its root, then,
for every C file with section sites (`secl sections --output-format json .`),
`secl check --output-format json FILE` from the root: `cold` with an empty results cache,
`warm` with one cache shared by every run of the project (warmed by a whole-tree run with
the cache), `nocache` with `--no-cache`. A file differs when the findings of the one-file
run (code, row, column, message) are not the whole-tree run's findings in that file. This
is what pre-commit shows a user (`secl check FILE...` on the changed files).

Prints one line per differing file and mode (`-`: only the whole-tree run gives it; `+`:
only the one-file run) with --verbose, and per project the count of differing files per
mode. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


def _env(cache: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(HERE.parent))
    env.pop("SECL_CACHE_DIR", None)
    if cache is not None:
        env["SECL_CACHE_DIR"] = cache
    return env


def secl(root: str, args: list[str], cache: str | None) -> list[dict]:
    done = subprocess.run(
        [PYTHON, "-m", "secl", *args, "--output-format", "json"],
        cwd=root,
        env=_env(cache),
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        out = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        return [{"code": "ERROR", "filename": "", "message": done.stderr[-300:]}]
    return out if isinstance(out, list) else []


def finding_key(f: dict) -> tuple:
    loc = f.get("location") or {}
    return (f.get("code"), loc.get("row"), loc.get("column"), f.get("message"))


def by_file(findings: list[dict]) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for f in findings:
        out.setdefault(os.path.normpath(f.get("filename") or ""), []).append(finding_key(f))
    return {k: sorted(v, key=repr) for k, v in out.items()}


def site_files(root: str) -> list[str]:
    """The C files with section sites, relative to `root`, sorted."""
    entries = secl(root, ["sections", "--no-cache", "."], None)
    names = {os.path.normpath(e.get("filename") or e.get("path") or "") for e in entries}
    return sorted(n for n in names if n and n.endswith((".c", ".h")))


def check_project(root: str, modes: list[str], jobs: int, max_files: int, verbose: bool) -> dict:
    whole = by_file(secl(root, ["check", "--no-cache", "."], None))
    files = site_files(root)
    if max_files and len(files) > max_files:
        step = len(files) / max_files
        files = [files[int(i * step)] for i in range(max_files)]
    counts: dict[str, int] = {}
    work = tempfile.mkdtemp(prefix="secl-onefile-")
    try:
        for mode in modes:
            shared = os.path.join(work, "warm")
            if mode == "warm":
                secl(root, ["check", "."], shared)

            def one(path: str, mode: str = mode, shared: str = shared) -> tuple[str, list]:
                if mode == "nocache":
                    return path, secl(root, ["check", "--no-cache", path], None)
                if mode == "warm":
                    return path, secl(root, ["check", path], shared)
                cold = tempfile.mkdtemp(dir=work)
                try:
                    return path, secl(root, ["check", path], cold)
                finally:
                    shutil.rmtree(cold, ignore_errors=True)

            differing = 0
            with ThreadPoolExecutor(jobs) as pool:
                for path, found in pool.map(one, files):
                    mine = by_file(found).get(path, [])
                    theirs = whole.get(path, [])
                    if mine == theirs:
                        continue
                    differing += 1
                    if verbose:
                        print(f"  {mode} {path}: whole {len(theirs)}, one-file {len(mine)}")
                        for k in sorted(set(theirs) - set(mine), key=repr):
                            print(f"    - {k}")
                        for k in sorted(set(mine) - set(theirs), key=repr):
                            print(f"    + {k}")
            counts[mode] = differing
    finally:
        shutil.rmtree(work, ignore_errors=True)
    counts["files"] = len(files)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("projects", nargs="+")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--max-files", type=int, default=0, help="sample this many per project")
    parser.add_argument("--modes", default="cold,warm")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    modes = args.modes.split(",")
    total = dict.fromkeys(modes, 0)
    for project in args.projects:
        root = os.path.abspath(project)
        counts = check_project(root, modes, args.jobs, args.max_files, args.verbose)
        for m in modes:
            total[m] += counts[m]
        shown = " ".join(f"{m}={counts[m]}" for m in modes)
        print(f"{project}: {counts['files']} files; differing {shown}", flush=True)
    print("total differing: " + " ".join(f"{m}={total[m]}" for m in modes))


if __name__ == "__main__":
    main()
