"""Skeleton names that loader code makes by token pasting in function-like macros.

Loaders that handle many skeletons the same way write the calls once, in a macro, and paste
the skeleton's name from its arguments: `#define OPS(p) ... p##_bpf__open() ...` used as
`OPS(cache)` calls `cache_bpf__open()`; macros may call macros (`OPEN(name, t)` passing
`name` and a literal `bpf_legacy` to `__OPEN(name, t, suffix)` that pastes
`name##_tuner_##suffix##__open()`). The C preprocessor's rules that matter here
(C11 6.10.3.1-6.10.3.4): parameters are replaced by the argument's tokens, `##` joins the
tokens on its sides, and the result is rescanned for more macro calls. Stringification
(`#p`) and variadic arguments never make a skeleton name and are left alone.

Pure functions of bytes: the definitions come from the loader file and the project's other
files (headers), the uses from the loader file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DEFINITION = re.compile(
    rb"(?m)^[ \t]*#[ \t]*define[ \t]+(\w+)\(([^)]*)\)((?:[^\n]*\\\r?\n)*[^\n]*)"
)
_OPEN = re.compile(rb"(?<![\w@])(\w+)__open(?:_and_load|_opts)?\s*\(")
# what an argument that is not one identifier becomes: pasted to anything, never a name
_OPAQUE = b"@"
_MAX_DEPTH = 6
_MAX_TEXT = 1 << 16


@dataclass(frozen=True, slots=True)
class Macro:
    params: tuple[bytes, ...]
    body: bytes


def macros_that_open(sources: list[bytes]) -> dict[bytes, Macro]:
    """The function-like macros of `sources` whose expansion may call a skeleton's open
    function: their body pastes or calls `__open`, or calls another such macro."""
    defined: dict[bytes, Macro] = {}
    for data in sources:
        if b"define" not in data:
            continue
        for m in _DEFINITION.finditer(data):
            params = tuple(p.strip() for p in m.group(2).split(b",") if p.strip())
            body = re.sub(rb"\\\r?\n", b" ", m.group(3))
            defined.setdefault(m.group(1), Macro(params, body))
    wanted = {n for n, macro in defined.items() if b"__open" in macro.body and b"##" in macro.body}
    while True:
        calls = re.compile(rb"\b(?:" + b"|".join(re.escape(w) for w in sorted(wanted)) + rb")\s*\(")
        more = {
            n for n, macro in defined.items()
            if wanted and n not in wanted and calls.search(macro.body) is not None
        }  # fmt: skip
        if not more:
            return {n: defined[n] for n in wanted}
        wanted |= more


def pasted_skeletons(data: bytes, macros: dict[bytes, Macro]) -> set[str]:
    """Skeleton names the uses of `macros` in `data` open (`X` of `X__open()`), with the
    arguments as written: a use with an argument that is not a plain identifier gives
    nothing for the names it would paste."""
    if not macros:
        return set()
    found: set[str] = set()
    use = re.compile(rb"\b(" + b"|".join(re.escape(n) for n in sorted(macros)) + rb")\s*\(")
    # uses inside a macro's own definition are expanded where that macro is used
    defining = (
        [(d.start(), d.end()) for d in _DEFINITION.finditer(data)] if b"define" in data else []
    )
    for m in use.finditer(data):
        if any(start <= m.start() < end for start, end in defining):
            continue
        call = _call(data, m.end())
        if call is None:
            continue
        text = _expand(m.group(1), call, macros, 0)
        if text is None:
            continue
        for name in _OPEN.finditer(text):
            if re.fullmatch(rb"[A-Za-z_]\w*", name.group(1)):
                found.add(name.group(1).decode())
    return found


def _call(data: bytes, start: int) -> list[bytes] | None:
    """The arguments of a call whose `(` ends just before `start`."""
    depth, args, begin = 1, [], start
    for i in range(start, min(len(data), start + _MAX_TEXT)):
        ch = data[i : i + 1]
        if ch in (b"(", b"[", b"{"):
            depth += 1
        elif ch in (b")", b"]", b"}"):
            depth -= 1
            if depth == 0:
                args.append(data[begin:i].strip())
                return args
        elif ch == b"," and depth == 1:
            args.append(data[begin:i].strip())
            begin = i + 1
    return None


def _expand(name: bytes, args: list[bytes], macros: dict[bytes, Macro], depth: int) -> bytes | None:
    """The body of macro `name` with `args`: parameters replaced, `##` pasted, and the
    calls of other macros that open expanded in turn."""
    macro = macros[name]
    if depth > _MAX_DEPTH or len(args) < len(macro.params):
        return None
    values = {
        p: a if re.fullmatch(rb"[A-Za-z_]\w*", a) else _OPAQUE
        for p, a in zip(macro.params, args, strict=False)
    }

    def replace(m: re.Match[bytes]) -> bytes:
        word = m.group(0)
        return values.get(word, word)

    body = re.sub(rb"#\s*#", b"##", macro.body)
    body = re.sub(rb"(?<!#)#\s*\w+", b'""', body)  # `#p` stringifies: never a name
    body = re.sub(rb"\b[A-Za-z_]\w*\b", replace, body)
    body = re.sub(rb"\s*##\s*", b"", body)
    out = []
    last = 0
    inner = re.compile(rb"\b(" + b"|".join(re.escape(n) for n in sorted(macros)) + rb")\s*\(")
    for m in inner.finditer(body):
        if m.start() < last:
            continue
        call = _call(body, m.end())
        if call is None:
            continue
        expanded = _expand(m.group(1), call, macros, depth + 1)
        if expanded is not None:
            out.append(expanded)
        last = m.end()
    out.append(body)
    return b" ".join(out)
