"""Skeleton links a C loader sets by hand before the skeleton's attach.

libbpf.c bpf_object__attach_skeleton() walks the skeleton's programs and skips one whose link
slot is already set ("if user already set the link manually, don't attempt auto-attach"), so
a program attached by hand first (`skel->links.P = bpf_program__attach_uprobe_opts(...)`) is
never attached by its section name: the suffix its attach function would parse
(attach_uprobe() wants `uprobe/BINARY:FUNCTION`) is never read.

Loaders often store the link through a function-like macro of their own, the pattern
libbpf-tools spread (`ATTACH_UPROBE_CHECKED(skel, sym, prog)` over `__ATTACH_UPROBE(skel,
sym, prog, retprobe)`, whose body stores `skel->links.prog = ...`); such macros live in the
loader or in a header beside it. A macro counts when its body stores `links.PARAM`, or hands
a parameter to such a macro in that parameter's place.

Reading is textual and cheap: it only runs for a program whose suffix libbpf would refuse at
attach and whose loader calls the skeleton's attach.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from secl.analysis.project import Project
from secl.parse.pasted import call_arguments

# `->links.NAME =` / `.links.NAME =` (not `==`): a store to a skeleton's link slot.
_STORE = re.compile(rb"(?:->|\.)\s*links\s*\.\s*(\w+)\s*=(?!=)")
# `#define NAME(PARAMS) BODY`, with its continuation lines.
_DEFINE = re.compile(rb"(?m)^[ \t]*#[ \t]*define[ \t]+(\w+)\(([^)]*)\)((?:[^\n\\]|\\\n|\\)*)")
_MAX_ROUNDS = 4  # macros over macros over macros: libbpf-tools' chains are two deep


def linked_by_hand(
    project: Project, data: bytes, program: str, runs_first: Callable[[int], bool]
) -> bool:
    """Whether loader `data` stores program `program`'s skeleton link, directly or through a
    macro, outside comments, at an offset `runs_first` says runs before the skeleton's
    attach call."""
    name = program.encode()
    if name not in data:
        return False
    for m in _STORE.finditer(data):
        if m.group(1) == name and not _in_comment(data, m.start()) and runs_first(m.start()):
            return True
    macros = link_macros(project)
    for macro, positions in macros.items():
        if macro not in data:
            continue
        for m in re.finditer(rb"\b" + re.escape(macro) + rb"\s*\(", data):
            if _in_comment(data, m.start()) or _on_define_line(data, m.start()):
                continue
            args, _ = call_arguments(data, m.end(), len(data))
            if any(i < len(args) and args[i] == name for i in positions) and runs_first(m.start()):
                return True
    return False


def link_macros(project: Project) -> dict[bytes, frozenset[int]]:
    """Function-like macros of the project's C/C++ files that store a skeleton link: name ->
    the positions of the parameters naming the program. Read once per run, from files that
    store a link at all."""
    found = project.memo.get("manual-link-macros")
    if found is not None:
        return found  # type: ignore[return-value]
    definitions: dict[bytes, tuple[list[bytes], bytes]] = {}
    for data in project.files.values():
        if b"links" not in data or b"#" not in data:
            continue
        for m in _DEFINE.finditer(data):
            params = [p.strip() for p in m.group(2).split(b",")]
            definitions.setdefault(m.group(1), (params, m.group(3)))
    out: dict[bytes, frozenset[int]] = {}
    for name, (params, body) in definitions.items():
        stored = {s.group(1) for s in _STORE.finditer(body)}
        positions = frozenset(i for i, p in enumerate(params) if p in stored)
        if positions:
            out[name] = positions
    for _ in range(_MAX_ROUNDS):
        grown = False
        for name, (params, body) in definitions.items():
            mine = set(out.get(name, ()))
            for inner, positions in list(out.items()):
                for m in re.finditer(rb"\b" + re.escape(inner) + rb"\s*\(", body):
                    args, _ = call_arguments(body, m.end(), len(body))
                    mine |= {
                        params.index(args[i]) for i in positions
                        if i < len(args) and args[i] in params
                    }  # fmt: skip
            if mine != set(out.get(name, ())):
                out[name] = frozenset(mine)
                grown = True
        if not grown:
            break
    project.memo["manual-link-macros"] = out
    return out


def _line_start(data: bytes, at: int) -> int:
    return data.rfind(b"\n", 0, at) + 1


def _in_comment(data: bytes, at: int) -> bool:
    """Whether byte `at` is in a `//` line comment or a `/* */` block."""
    if b"//" in data[_line_start(data, at) : at]:
        return True
    opened = data.rfind(b"/*", 0, at)
    return opened >= 0 and data.rfind(b"*/", opened, at) < 0


def _on_define_line(data: bytes, at: int) -> bool:
    """Whether byte `at` is in a `#define` (a macro using another, not a use)."""
    start = _line_start(data, at)
    while start > 1 and data[start - 2 : start - 1] == b"\\":
        start = _line_start(data, start - 1)
    return data[start:at].lstrip().startswith(b"#")
