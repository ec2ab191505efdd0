#!/usr/bin/env python3
"""Generate secl's libbpf section table from libbpf's own source.

Reads the `SEC_DEF(...)` lines of `section_defs[]` in libbpf.c, joins them with the version
history kept in scripts/section-history.toml, appends the `.single` sections of the
auto-upgrade proposal, and writes rules/libbpf/sections.json.

    python scripts/gen_section_table.py PATH/TO/libbpf.c [-o rules/libbpf/sections.json]

The output is deterministic: sorted keys, one table entry per line.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = "secl-section-table/1"
HERE = Path(__file__).resolve().parent
DEFAULT_HISTORY = HERE / "section-history.toml"
DEFAULT_OUTPUT = HERE.parent / "rules" / "libbpf" / "sections.json"

# Linux 7.2's tools/lib/bpf/libbpf.c has this many SEC_DEF entries.
EXPECTED_LINUX_7_2 = 116

# libbpf.c: enum sec_def_flags. SEC_ATTACHABLE_OPT is SEC_ATTACHABLE | SEC_EXP_ATTACH_OPT.
FLAG_EXPANSION: dict[str, tuple[str, ...]] = {
    "SEC_NONE": (),
    "0": (),
    "SEC_EXP_ATTACH_OPT": ("SEC_EXP_ATTACH_OPT",),
    "SEC_ATTACHABLE": ("SEC_ATTACHABLE",),
    "SEC_ATTACHABLE_OPT": ("SEC_ATTACHABLE", "SEC_EXP_ATTACH_OPT"),
    "SEC_ATTACH_BTF": ("SEC_ATTACH_BTF",),
    "SEC_SLEEPABLE": ("SEC_SLEEPABLE",),
    "SEC_XDP_FRAGS": ("SEC_XDP_FRAGS",),
    "SEC_USDT": ("SEC_USDT",),
}

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_TABLE = re.compile(r"section_defs\s*\[\s*\]\s*=\s*\{(?P<body>.*?)\n\s*\}\s*;", re.DOTALL)
_SEC_DEF = re.compile(
    r"""SEC_DEF\(\s*
        "(?P<name>(?:[^"\\]|\\.)*)"\s*,\s*
        (?P<ptype>[A-Z0-9_]+)\s*,\s*
        (?P<atype>[A-Za-z0-9_]+)\s*,\s*
        (?P<flags>[A-Za-z0-9_|\s]+?)\s*
        (?:,\s*(?P<attach_fn>[A-Za-z_][A-Za-z0-9_]*)\s*)?
        \)""",
    re.VERBOSE,
)
_VERSION_MACRO = re.compile(r"#define\s+LIBBPF_(MAJOR|MINOR)_VERSION\s+(\d+)")


class GeneratorError(Exception):
    """The input does not look like libbpf.c or the history file is inconsistent."""


@dataclass(frozen=True, slots=True)
class RawSecDef:
    """One SEC_DEF line as written in libbpf.c."""

    name: str
    prog_type: str  # without the BPF_PROG_TYPE_ prefix, as written
    attach_type: str  # "0" or a BPF_* enumerator
    flags: tuple[str, ...]  # the names joined by "|", "SEC_NONE"/"0" dropped
    attach_fn: str | None


def parse_sec_defs(source: str) -> list[RawSecDef]:
    """Every SEC_DEF(...) of libbpf.c's section_defs[] table, in table order."""
    text = _COMMENT.sub(" ", source)
    table = _TABLE.search(text)
    if table is None:
        raise GeneratorError("no `section_defs[] = { ... };` table found")
    entries: list[RawSecDef] = []
    for found in _SEC_DEF.finditer(table.group("body")):
        flag_names = [part.strip() for part in found.group("flags").split("|")]
        for flag in flag_names:
            if flag not in FLAG_EXPANSION:
                raise GeneratorError(f"unknown flag {flag!r} in SEC_DEF({found.group('name')!r})")
        flags = tuple(flag for flag in flag_names if flag not in ("SEC_NONE", "0"))
        entries.append(
            RawSecDef(
                name=found.group("name"),
                prog_type=found.group("ptype"),
                attach_type=found.group("atype"),
                flags=flags,
                attach_fn=found.group("attach_fn"),
            )
        )
    count = table.group("body").count("SEC_DEF(")
    if count != len(entries):
        raise GeneratorError(f"found {count} SEC_DEF( but could parse only {len(entries)}")
    return entries


def read_libbpf_version(libbpf_c: Path) -> str | None:
    """MAJOR.MINOR from libbpf_version.h next to libbpf.c, when it is there."""
    header = libbpf_c.with_name("libbpf_version.h")
    if not header.is_file():
        return None
    parts = dict(_VERSION_MACRO.findall(header.read_text(encoding="utf-8")))
    if "MAJOR" not in parts or "MINOR" not in parts:
        return None
    return f"{parts['MAJOR']}.{parts['MINOR']}"


def match_kind(name: str) -> str:
    """How libbpf compares a section name with this table string (libbpf.c: sec_def_matches())."""
    if name.endswith("+"):
        return "plus"
    if name.endswith("/"):
        return "slash"
    return "exact"


def expand_flags(flags: Iterable[str]) -> list[str]:
    expanded: list[str] = []
    for flag in flags:
        for bit in FLAG_EXPANSION[flag]:
            if bit not in expanded:
                expanded.append(bit)
    return sorted(expanded)


def build_entry(index: int, raw: RawSecDef, history: dict[str, Any]) -> dict[str, Any]:
    kind = match_kind(raw.name)
    expanded = expand_flags(raw.flags)
    return {
        "index": index,
        "name": raw.name,
        "match": kind,
        "base": raw.name[:-1] if kind in ("plus", "slash") else raw.name,
        "prog_type": f"BPF_PROG_TYPE_{raw.prog_type}",
        "expected_attach_type": None if raw.attach_type == "0" else raw.attach_type,
        "flags": list(raw.flags),
        "flags_expanded": expanded,
        "sleepable": "SEC_SLEEPABLE" in expanded,
        "attach_btf": "SEC_ATTACH_BTF" in expanded,
        "attach_fn": raw.attach_fn,
        "since": history.get("since"),
        "bare_since": history.get("bare_since"),
        "min_kernel": history.get("min_kernel"),
        "min_kernel_inferred": bool(history.get("min_kernel_inferred", False)),
        "target": None,
    }


def build_table(
    raw_defs: Sequence[RawSecDef],
    history: dict[str, Any],
    libbpf_version: str | None,
    warn: list[str],
) -> dict[str, Any]:
    known: dict[str, Any] = history.get("definitions", {})
    entries: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_defs):
        if raw.name not in known:
            warn.append(f"no history for {raw.name!r}: since is null")
        entries.append(build_entry(index, raw, known.get(raw.name, {})))
    table_names = {raw.name for raw in raw_defs}
    for name in sorted(set(known) - table_names):
        warn.append(f"history names {name!r}, which this libbpf.c does not have")

    by_name = {entry["name"]: entry for entry in entries}
    for proposal in history.get("proposal", []):
        like = by_name.get(proposal["like"])
        if like is None:
            name, like_name = proposal["name"], proposal["like"]
            raise GeneratorError(f"proposal {name!r} copies unknown entry {like_name!r}")
        entry = dict(like)
        entry.update(
            index=len(entries),
            name=proposal["name"],
            match=match_kind(proposal["name"]),
            base=proposal["name"].rstrip("+/"),
            since=None,
            bare_since=None,
            target="upgrade",
        )
        entries.append(entry)

    return {
        "schema": SCHEMA,
        "source": "tools/lib/bpf/libbpf.c: section_defs[]",
        "libbpf_version": libbpf_version,
        "count": len(raw_defs),
        "question_mark_since": history.get("question_mark_since"),
        "definitions": entries,
        "removed": list(history.get("removed", [])),
        "data_sections": list(history.get("data_sections", [])),
    }


def render(document: dict[str, Any]) -> str:
    """JSON with sorted keys and one list element per line, so diffs stay readable."""
    lines = ["{"]
    keys = sorted(document)
    for position, key in enumerate(keys):
        comma = "," if position < len(keys) - 1 else ""
        value = document[key]
        if isinstance(value, list) and value:
            lines.append(f"  {json.dumps(key)}: [")
            for item_position, item in enumerate(value):
                item_comma = "," if item_position < len(value) - 1 else ""
                lines.append(f"    {json.dumps(item, sort_keys=True)}{item_comma}")
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, sort_keys=True)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def generate(libbpf_c: Path, history_path: Path, warn: list[str]) -> dict[str, Any]:
    raw_defs = parse_sec_defs(libbpf_c.read_text(encoding="utf-8", errors="replace"))
    with history_path.open("rb") as handle:
        history = tomllib.load(handle)
    return build_table(raw_defs, history, read_libbpf_version(libbpf_c), warn)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("libbpf_c", type=Path, help="path to libbpf's libbpf.c")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--history", type=Path, default=DEFAULT_HISTORY)
    args = parser.parse_args(argv)

    warn: list[str] = []
    try:
        document = generate(args.libbpf_c, args.history, warn)
    except (OSError, GeneratorError, tomllib.TOMLDecodeError) as error:
        print(f"gen_section_table: {error}", file=sys.stderr)
        return 2
    for message in warn:
        print(f"gen_section_table: warning: {message}", file=sys.stderr)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(document), encoding="utf-8")

    count = document["count"]
    proposal = len(document["definitions"]) - count
    verdict = "as expected" if count == EXPECTED_LINUX_7_2 else "differs"
    print(
        f"{count} SEC_DEF entries parsed (Linux 7.2 has {EXPECTED_LINUX_7_2}: {verdict}), "
        f"{proposal} proposal entries appended, libbpf {document['libbpf_version'] or '?'}; "
        f"wrote {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
