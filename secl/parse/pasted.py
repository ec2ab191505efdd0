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
    # A name may be defined differently in several files (each probe's own `LOAD(...)`):
    # every definition counts, and the one that opens stands for the name (a file's own
    # definition wins where it is used: pasted_skeletons()).
    variants: dict[bytes, list[Macro]] = {}
    for data in sources:
        if b"define" not in data:
            continue
        for m in _DEFINITION.finditer(data):
            macro = _macro(m)
            if macro not in variants.setdefault(m.group(1), []):
                variants[m.group(1)].append(macro)
    chosen: dict[bytes, Macro] = {}
    for name, found in variants.items():
        for macro in found:
            if b"__open" in macro.body and b"##" in macro.body:
                chosen[name] = macro
                break
    while True:
        calls = re.compile(rb"\b(?:" + b"|".join(re.escape(w) for w in sorted(chosen)) + rb")\s*\(")
        more = {}
        for name, found in variants.items():
            if not chosen or name in chosen:
                continue
            for macro in found:
                if calls.search(macro.body) is not None:
                    more[name] = macro
                    break
        if not more:
            return chosen
        chosen.update(more)


def _macro(m: re.Match[bytes]) -> Macro:
    params = tuple(p.strip() for p in m.group(2).split(b",") if p.strip())
    return Macro(params, re.sub(rb"\\\r?\n", b" ", m.group(3)))


def pasted_skeletons(data: bytes, macros: dict[bytes, Macro]) -> set[str]:
    """Skeleton names the uses of `macros` in `data` open (`X` of `X__open()`), with the
    arguments as written: a use with an argument that is not a plain identifier gives
    nothing for the names it would paste."""
    if not macros:
        return set()
    found: set[str] = set()
    # uses inside a macro's own definition are expanded where that macro is used
    definitions = list(_DEFINITION.finditer(data)) if b"define" in data else []
    defining = [(d.start(), d.end()) for d in definitions]
    # The file's own definition of a macro is the one its uses expand; its own macros that
    # call one that opens open too (`__LOAD_PROBE(p)` over a header's `OPEN_OPTS(p)`).
    own = {d.group(1): _macro(d) for d in definitions}
    mine = {n: m for n, m in own.items() if n in macros}
    while True:
        known = {**macros, **mine}
        calls = re.compile(rb"\b(?:" + b"|".join(re.escape(n) for n in sorted(known)) + rb")\s*\(")
        more = {n: m for n, m in own.items() if n not in known and calls.search(m.body) is not None}
        if not more:
            break
        mine.update(more)
    macros = {**macros, **mine}
    use = re.compile(rb"\b(" + b"|".join(re.escape(n) for n in sorted(macros)) + rb")\s*\(")
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
    """The arguments of a call whose `(` ends just before `start` (None: not closed within
    _MAX_TEXT bytes)."""
    args, closed = call_arguments(data, start, min(len(data), start + _MAX_TEXT))
    return args if closed else None


def call_arguments(data: bytes, start: int, end: int) -> tuple[list[bytes], bool]:
    """The top-level arguments, stripped, of a call whose `(` ends just before `start`, read
    up to `end`; and whether its `)` was found (if not: the arguments that ended before)."""
    depth, args, begin = 1, [], start
    for i in range(start, end):
        ch = data[i : i + 1]
        if ch in (b"(", b"[", b"{"):
            depth += 1
        elif ch in (b")", b"]", b"}"):
            depth -= 1
            if depth == 0:
                args.append(data[begin:i].strip())
                return args, True
        elif ch == b"," and depth == 1:
            args.append(data[begin:i].strip())
            begin = i + 1
    return args, False


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
