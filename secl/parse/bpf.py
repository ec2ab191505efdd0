"""The BPF side: every `SEC(...)` and `__attribute__((section(...)))` site of a file.

tree-sitter-c reports a missing `;` after every `SEC(...)` and turns test annotations such as
`__success __msg("...")` into ERROR nodes, so the tree around a site is not trusted: a site is
found by its token, and the function or variable it names is read from the token stream that
follows, staying inside the `#if` branch the site sits in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import pairwise

from secl.facts import Piece, SectionSite, Span
from secl.files import is_cpp
from secl.parse.cstring import decode_literal
from secl.parse.tree import (
    CONDITIONALS,
    Positions,
    Token,
    ancestors_of,
    finditer_any,
    lex,
    line_ends,
    parse,
    tokens_before,
    word_start,
)

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from tree_sitter import Node

# Names that take a section string as their one argument. `section` only counts inside
# `__attribute__((...))`. A file's own `#define X(n) __attribute__((section(n)))` adds X.
SECTION_MACROS = frozenset({"SEC", "__section"})
_HIT = re.compile(rb"\b(SEC|__section|section)\s*\(")
# The same, one pattern per name, each led by its literal (secl.parse.tree.finditer_any):
# three literal searches instead of an attempt at every byte.
_HITS = [re.compile(rb"(" + word_start(n) + rb")\s*\(") for n in (b"SEC", b"__section", b"section")]
_IDENT_TYPES = frozenset({"identifier", "type_identifier", "field_identifier", "primitive_type"})
# Callees that are attributes, never the declarator of the function.
ATTRIBUTE_CALLEES = frozenset(
    {"__attribute__", "__attribute", "__declspec", "asm", "__asm__", "__asm", "_Alignas",
     "__aligned", "SEC", "__section", "__weak", "__used"}
)  # fmt: skip
_WRAPPER = re.compile(r"[A-Z_][A-Z0-9_]*\Z")
_DEFINES = frozenset({"preproc_def", "preproc_function_def"})
_TYPE_KEYWORDS = frozenset({"struct", "union", "enum"})
_MAX_TOKENS = 600  # a declaration header longer than this is not a SEC'd function


def extract_sites(path: str, data: bytes, tree=None) -> list[SectionSite]:
    """Every section site of one file, in source order. C++ code is never a BPF source
    (clang compiles BPF programs from C): it has no sites."""
    if (b"SEC" not in data and b"section" not in data) or is_cpp(path):
        return []
    data = line_ends(data)  # as `parse` read it: offsets are the same
    if tree is None:
        tree = parse(data)
    positions = Positions(data)
    root = tree.root_node
    sites: list[SectionSite] = []
    guard = _include_guard(root)
    branches = _CONDITIONAL.search(data) is not None
    aliases: set[str] = set()
    pattern = _HIT
    seen: set[int] = set()
    while True:
        if pattern is _HIT:
            found: Iterator[re.Match[bytes]] = (m for _, m in finditer_any(_HITS, data))
        else:
            found = pattern.finditer(data)
        for match in found:
            start = match.start()
            if start in seen:
                continue
            seen.add(start)
            name = match.group(1).decode()
            node = root.descendant_for_byte_range(start, match.end(1))
            if node is None:
                continue
            if node.type == "preproc_arg":
                sites.extend(_template_sites(path, data, node, start, positions, aliases, root))
                continue
            if node.type not in _IDENT_TYPES or node.start_byte != start:
                continue  # in a comment, a string, or part of a longer token
            if node.parent is not None and node.parent.type in _DEFINES:
                continue  # `#define SEC(name) ...`: the macro's own name
            # A macro named `section` that the file defines to the attribute (`#define
            # section(n) __attribute__((section(n), used))`) is a SEC-like macro of its own.
            alias = name == "section" and pattern is not _HIT
            site = _site(path, data, node, name, positions, guard, root, branches, alias)
            if site is not None:
                sites.append(site)
            elif name == "section" and pattern is _HIT:
                seen.discard(start)  # not in an attribute: the alias pass may read it
        new = {a for a in aliases if a not in SECTION_MACROS}
        if not new or pattern is not _HIT:
            break
        pattern = re.compile(
            rb"\b(" + b"|".join(re.escape(a.encode()) for a in sorted(new)) + rb")\s*\("
        )
    sites.sort(key=lambda s: s.span.start_byte)
    return sites


# Where a conditional directive may start: tree-sitter-c's `#if`, `#ifdef` and `#ifndef` tokens
# are `#[ \t]*if...` (grammar.js `preprocessor()`). A file without one has no #if branch.
_CONDITIONAL = re.compile(rb"#[ \t]*if")


def _site(
    path: str,
    data: bytes,
    ident: Node,
    name: str,
    positions: Positions,
    guard: Node | None,
    root: Node,
    branches: bool = True,
    alias: bool = False,
) -> SectionSite | None:
    if name == "section" and not alias and not _in_attribute(ident, data, root):
        return None
    clean = _clean_pieces(ident, data, positions)
    if clean is not None:
        pieces, close_end = clean
        stream = lex(data, close_end)
    else:
        stream = lex(data, ident.end_byte)
        first = next(stream, None)
        if first is None or first.type != "(":
            return None
        pieces, close = _pieces(stream, data, positions)
        if close is None or not pieces:
            return None
    if name == "section" and not alias:
        # Finish the enclosing __attribute__((...)) before reading what it decorates.
        _closing(stream, "(", ")", depth=2)
    decorated = _decorated_clean(ident, data, root)
    if decorated is None:
        decorated = _decorated(stream, ident, data, root)
    kind, program, symbol, name_tok, is_static, body = decorated
    first, last = pieces[0].span, pieces[-1].span
    span = Span(first.start_byte, last.end_byte, first.start, last.end)
    return SectionSite(
        path=path,
        macro=name,
        span=span,
        pieces=tuple(pieces),
        section_text=data[span.start_byte : span.end_byte].decode("utf-8", "replace"),
        section=_resolve(pieces),
        kind=kind,
        program=program,
        symbol=symbol,
        name_span=positions.span(name_tok.start_byte, name_tok.end_byte) if name_tok else None,
        is_static=is_static,
        body=body,
        branch=branch_condition(ident, guard, root) if branches else None,
        template=False,
    )


def _resolve(pieces: list[Piece]) -> str | None:
    if any(p.kind != "literal" for p in pieces):
        return None
    return "".join(p.value or "" for p in pieces)


def _clean_pieces(ident: Node, data: bytes, positions: Positions) -> tuple[list[Piece], int] | None:
    """The pieces of `SEC("a" "b")` read from the tree when it parsed the call cleanly: string
    literals only (anything else, or an ERROR nearby, goes through the lexer)."""
    call = ident.parent
    if call is None or call.type != "call_expression" or call.has_error:
        return None
    args = call.child_by_field_name("arguments")
    if args is None or args.named_child_count != 1:
        return None
    arg = args.named_children[0]
    if arg.type == "string_literal":
        literals = [arg]
    elif arg.type == "concatenated_string" and all(
        c.type == "string_literal" for c in arg.named_children
    ):
        literals = arg.named_children
    else:
        return None
    pieces = [_piece("literal", n.start_byte, n.end_byte, data, positions) for n in literals]
    if any(p.kind != "literal" for p in pieces):
        return None
    return pieces, args.end_byte


def _pieces(
    stream: Iterator[Token], data: bytes, positions: Positions
) -> tuple[list[Piece], Token | None]:
    pieces: list[Piece] = []
    depth = 1
    pending: Token | None = None  # an identifier that may start a function-like macro call
    call_start: Token | None = None
    for tok in stream:
        t = tok.type
        if t == "(":
            depth += 1
            if depth == 2 and pending is not None:
                call_start, pending = pending, None
            continue
        if t == ")":
            depth -= 1
            if depth == 1 and call_start is not None:
                pieces.append(_piece("macro", call_start.start_byte, tok.end_byte, data, positions))
                call_start = None
            if depth == 0:
                if pending is not None:
                    pieces.append(
                        _piece("macro", pending.start_byte, pending.end_byte, data, positions)
                    )
                return pieces, tok
            continue
        if depth > 1:
            continue
        if pending is not None:
            pieces.append(_piece("macro", pending.start_byte, pending.end_byte, data, positions))
            pending = None
        if t == "string_literal":
            pieces.append(_piece("literal", tok.start_byte, tok.end_byte, data, positions))
        elif t in _IDENT_TYPES:
            pending = tok
        else:
            pieces.append(_piece("other", tok.start_byte, tok.end_byte, data, positions))
    return pieces, None


def _piece(kind, start: int, end: int, data: bytes, positions: Positions) -> Piece:
    text = data[start:end].decode("utf-8", "replace")
    value = decode_literal(text) if kind == "literal" else None
    if kind == "literal" and value is None:
        kind = "other"
    return Piece(kind, text, value, positions.span(start, end))


def _in_attribute(ident: Node, data: bytes, root: Node) -> bool:
    node = ident.parent
    for _ in range(4):
        if node is None:
            break
        if node.type in ("attribute_specifier", "attribute", "attribute_declaration"):
            return True
        node = node.parent
    # Inside ERROR nodes the structure is gone: look back a few tokens.
    for i, tok in enumerate(tokens_before(ident, data, root)):
        if tok.text in (b"__attribute__", b"__attribute"):
            return True
        if i > 8 or tok.type in (";", "{", "}"):
            break
    return False


def _is_ident(tok: Token | None) -> bool:
    return tok is not None and tok.type in _IDENT_TYPES


def _decorated(stream: Iterator[Token], ident: Node, data: bytes, root: Node):
    """(kind, program, symbol, name token, static, body) for what follows a site."""
    calls: list[tuple[Token, Token]] = []  # (name token, closing paren)
    prev: Token | None = None
    prev2: Token | None = None
    last_ident: Token | None = None
    is_static = False
    for count, tok in enumerate(stream):
        if count > _MAX_TOKENS:
            break
        t = tok.type
        if t == "(":
            callee = prev if _is_ident(prev) else None
            first, single, close = _group(stream)
            if close is None:
                break
            if callee is not None:
                callee_text = callee.text.decode()
                name_tok = callee
                if _WRAPPER.match(callee_text) and single and first is not None:
                    name_tok = first
                if callee_text not in ATTRIBUTE_CALLEES:
                    calls.append((name_tok, close))
            prev2, prev = prev, close
            continue
        if t == "{":
            if (prev is not None and prev.type in _TYPE_KEYWORDS) or (
                _is_ident(prev) and prev2 is not None and prev2.type in _TYPE_KEYWORDS
            ):
                if _closing(stream, "{", "}") is None:
                    break
                prev2, prev = prev, None
                continue
            if calls:
                name_tok = calls[-1][0]
                return (
                    "program",
                    name_tok.text.decode(),
                    None,
                    name_tok,
                    is_static,
                    _body(tok, stream, root),
                )
            break
        if t in (";", "=", ","):
            if prev is None or (prev is not None and prev.type == ")" and not calls):
                # `SEC("x");` directly: the declarator came before the site.
                sym = _symbol_before(ident, data, root)
                return "data", None, (sym.text.decode() if sym else None), sym, False, None
            if t == ";" and calls and calls[-1][1] is prev:
                name_tok = calls[-1][0]
                return "prototype", name_tok.text.decode(), None, name_tok, is_static, None
            return (
                "data",
                None,
                (last_ident.text.decode() if last_ident else None),
                last_ident,
                False,
                None,
            )
        if _is_ident(tok):
            text = tok.text
            if text in (b"SEC", b"__section"):
                break  # another site before any declaration: this one decorates nothing
            if text == b"static":
                is_static = True
            last_ident = tok
        elif t == "static":
            is_static = True
        prev2, prev = prev, tok
    if prev is None:
        sym = _symbol_before(ident, data, root)
        if sym is not None:
            return "data", None, sym.text.decode(), sym, False, None
    return "unknown", None, None, None, is_static, None


# An ERROR node holding any of these is more than annotations: let the lexer decide.
_ERROR_STOP = re.compile(rb"[{};=]|\bSEC\b|\b__section\b|\bsection\b")
_STATIC = re.compile(rb"\bstatic\b")
_ONLY_ATTRIBUTES = re.compile(rb"(?:\s|/\*.*?\*/|//[^\n]*|__attribute__\s*\(\(.*?\)\))*", re.S)
_STRING = re.compile(rb'"(?:[^"\\\n]|\\.)*"')
_DECLARATOR_WRAPPERS = frozenset(
    {"pointer_declarator", "parenthesized_declarator", "attributed_declarator"}
)


def _decorated_clean(ident: Node, data: bytes, root: Node):
    """The common case where tree-sitter parsed `SEC(...)` and the function after it cleanly:
    read the function from the tree (same answer as `_decorated`, without lexing)."""
    call = ident.parent
    if call is None or call.type != "call_expression":
        return None
    stmt = call.parent
    static_before = False
    if stmt is not None and stmt.type == "ERROR" and stmt.parent is not None:
        # `SEC("x") __success int f(...)`: the site and the annotations after it in one ERROR
        # node. Only annotation words may follow the call inside it.
        rest = _STRING.sub(b'""', data[call.end_byte : stmt.end_byte])
        if _ERROR_STOP.search(rest) or b"(" in data[stmt.start_byte : call.start_byte]:
            return None
        static_before = _STATIC.search(rest) is not None
    elif stmt is None or stmt.type != "expression_statement":
        return _data_clean(call, data) if stmt is not None else None
    else:
        semicolon = stmt.child(stmt.child_count - 1)
        if semicolon is None or not semicolon.is_missing:
            # `} name SEC(".maps");`: a real `;` ends a data declaration
            return _data_clean(call, data)
    # Test annotations (`__success __msg("...")`) between the site and the function come out
    # as ERROR nodes or as calls with a missing `;`; step over them to a clean definition.
    func = stmt.next_sibling
    while func is not None and func.type != "function_definition":
        if func.type == "ERROR":
            if _ERROR_STOP.search(_STRING.sub(b'""', func.text)):
                return None
            static_before = static_before or (
                b"static" in func.text and _STATIC.search(_STRING.sub(b'""', func.text)) is not None
            )
        elif func.type == "expression_statement":
            last = func.child(func.child_count - 1)
            if last is None or not last.is_missing or func.text.startswith((b"SEC", b"__section")):
                return None
        elif func.type != "comment":
            return None
        func = func.next_sibling
    if func is None:
        return None
    body = func.child_by_field_name("body")
    declarator = func.child_by_field_name("declarator")
    while declarator is not None and declarator.type in _DECLARATOR_WRAPPERS:
        declarator = declarator.child_by_field_name("declarator")
    name = params = None
    if declarator is not None and declarator.type == "function_declarator":
        name = declarator.child_by_field_name("declarator")
        params = declarator.child_by_field_name("parameters")
    if (
        body is None
        or name is None
        or name.type != "identifier"
        or params is None
        # errors in the body (inline asm, say) do not concern the declarator
        or any(c.has_error for c in func.children if c != body)
        # Unknown annotation macros can fool the tree into a plausible declarator
        # (`__success __retval(0) __naked void f(void)` as a function `__retval`): the real
        # parameter list is the one the body follows.
        or not _ONLY_ATTRIBUTES.fullmatch(data, params.end_byte, body.start_byte)
    ):
        # Everything before the definition was annotations: read only its header with the
        # lexer, as the slow path would from the site.
        found = _decorated(lex(data, func.start_byte), ident, data, root)
        if found[0] != "program":
            return None
        return (*found[:4], found[4] or static_before, found[5])
    if _WRAPPER.match(name.text.decode()):
        params = declarator.child_by_field_name("parameters")
        first = params.named_children[0] if params is not None and params.named_children else None
        if first is not None and first.type == "parameter_declaration" and first.child_count == 1:
            name = first.child(0)
    is_static = static_before or any(
        c.type == "storage_class_specifier" and c.text == b"static" for c in func.children
    )
    token = Token(name.type, name.text, name.start_byte, name.end_byte, name)
    return (
        "program",
        name.text.decode(),
        None,
        token,
        is_static,
        (body.start_byte, body.end_byte) if body is not None else None,
    )


# What may follow a data site before its declaration ends (`;`, or `=` and an initialiser).
_DATA_END = re.compile(rb"[ \t\n]*(?:;|=(?!=))")
# Declarators whose name is the identifier inside them, read backwards past `[...]` or `*`.
_NAMED_DECLARATORS = frozenset({"array_declarator", "pointer_declarator"})


def _data_clean(call: Node, data: bytes):
    """The common data site parsed cleanly, `} name SEC(".maps");` or `char x[] SEC("l") =
    ...;`: the tree ends the declaration before the site with a missing `;`, and the site
    starts a statement of its own. The same answer as `_decorated` (a `;` or `=` straight
    after the site: `_symbol_before`), read from the tree; None for any other shape."""
    stmt = call.parent
    if stmt is not None and stmt.type == "assignment_expression":
        if stmt.child(0) != call:
            return None
        stmt = stmt.parent
    if stmt is None or stmt.type != "expression_statement" or stmt.child(0) is None:
        return None
    if stmt.child(0).start_byte != call.start_byte or not _DATA_END.match(data, call.end_byte):
        return None
    declaration = stmt.prev_sibling
    if declaration is None or declaration.type != "declaration":
        return None
    count = declaration.child_count
    end = declaration.child(count - 1)
    name = declaration.child(count - 2) if count >= 2 else None
    if end is None or not end.is_missing or name is None or name.has_error:
        return None
    # Only blanks between the declarator and the site: no comment or directive to step over.
    gap = data[name.end_byte : call.start_byte]
    if gap and not gap.isspace():
        return None
    while name.type in _NAMED_DECLARATORS:
        inner = name.child_by_field_name("declarator")
        if inner is None:
            return None
        name = inner
    if name.type != "identifier" or name.text.decode() in ATTRIBUTE_CALLEES:
        return None
    token = Token(name.type, name.text, name.start_byte, name.end_byte, name)
    return "data", None, name.text.decode(), token, False, None


def _group(stream: Iterator[Token]) -> tuple[Token | None, bool, Token | None]:
    """Consume a parenthesised group; its first token, whether that is a lone identifier
    argument (`name,` or `name)`), and the closing parenthesis."""
    depth = 1
    first: Token | None = None
    single = False
    for index, tok in enumerate(stream):
        t = tok.type
        if index == 0:
            first = tok
        elif index == 1 and depth == 1:
            single = _is_ident(first) and t in (",", ")")
        if t == "(":
            depth += 1
        elif t == ")":
            depth -= 1
            if depth == 0:
                return first, single, tok
    return first, single, None


def _closing(stream: Iterator[Token], opener: str, closer: str, depth: int = 1) -> Token | None:
    """Reads `stream` up to the `closer` that brings `depth` open groups to none."""
    for tok in stream:
        if tok.type == opener:
            depth += 1
        elif tok.type == closer:
            depth -= 1
            if depth == 0:
                return tok
    return None


def _body(open_brace: Token, stream: Iterator[Token], root: Node) -> tuple[int, int] | None:
    node = root.descendant_for_byte_range(open_brace.start_byte, open_brace.end_byte)
    parent = node.parent if node is not None and node.type == "{" else None
    if parent is not None and parent.type == "compound_statement":
        return parent.start_byte, parent.end_byte
    close = _closing(stream, "{", "}")
    return (open_brace.start_byte, close.end_byte) if close is not None else None


def _symbol_before(ident: Node, data: bytes, root: Node) -> Token | None:
    """The declarator name before a trailing site: `} name SEC(".maps")`, `char x[] SEC(...)`,
    `int y __attribute__((section(".data.y")))`."""
    anchor = ident
    while anchor.parent is not None and anchor.parent.type in (
        "argument_list", "call_expression", "attribute_specifier", "attribute",
    ):  # fmt: skip
        anchor = anchor.parent
        if anchor.type == "attribute_specifier":
            break
    depth = 0
    skip_callee = False
    for i, tok in enumerate(tokens_before(anchor, data, root)):
        if i > 60:
            break
        t = tok.type
        if t in ("]", ")"):
            depth += 1
        elif t in ("[", "("):
            depth -= 1
            skip_callee = depth == 0 and t == "("
        elif depth == 0:
            if _is_ident(tok):
                if skip_callee or tok.text.decode() in ATTRIBUTE_CALLEES:
                    skip_callee = False
                    continue
                return tok
            if t in (";", "{", "}"):
                return None
    return None


def _include_guard(root: Node) -> Node | None:
    """The `#ifndef X / #define X` that wraps a whole header: not a branch worth reporting."""
    # The one child that is not a comment, read with a cursor up to a second one: a large
    # file's top level is thousands of nodes.
    node = None
    cursor = root.walk()
    if cursor.goto_first_child():
        while True:
            child = cursor.node
            if child is not None and child.type != "comment":
                if node is not None:
                    return None
                node = child
                if node.type != "preproc_ifdef":
                    return None
            if not cursor.goto_next_sibling():
                break
    if node is None:
        return None
    if node.child(0) is None or node.child(0).type != "#ifndef":
        return None
    name = node.child_by_field_name("name")
    for child in node.children[2:4]:
        if child.type == "preproc_def" and name is not None:
            define = child.child_by_field_name("name")
            if define is not None and define.text == name.text:
                return node
    return None


def _condition(node: Node) -> str:
    t = node.type
    target = node.child(1)
    text = target.text.decode("utf-8", "replace").strip() if target is not None else "?"
    if t in ("preproc_ifdef", "preproc_elifdef"):
        negated = node.child(0) is not None and node.child(0).type in ("#ifndef", "#elifndef")
        return f"!defined({text})" if negated else f"defined({text})"
    return " ".join(text.split())


def negate_condition(cond: str) -> str:
    """`!X` for a branch condition, spelled as the sites' branches spell it (also by macros)."""
    if cond.startswith("!defined(") and cond.count("(") == 1:
        return cond[1:]
    if re.fullmatch(r"defined\(\w+\)|\w+", cond):
        return "!" + cond
    return f"!({cond})"


def branch_condition(node: Node, guard: Node | None = None, root: Node | None = None) -> str | None:
    """`defined(A) && !(B > 1)` for a node under `#ifdef A` and the `#else` of `#if B > 1`.
    With the tree's `root`, in time linear in the depth of `node` (see `tree.descend`)."""
    path = [*ancestors_of(node, root), node]
    parts: list[str] = []
    for parent, child in pairwise(path):
        if parent.type in CONDITIONALS and parent != guard and child != parent.child(1):
            cond = _condition(parent)
            is_alternative = parent.child_by_field_name("alternative") == child
            parts.append(negate_condition(cond) if is_alternative else cond)
    return " && ".join(parts) or None


_ALIAS_BODY = re.compile(
    rb"\s*(?:__attribute__\s*\(\s*\(\s*(?:\w+\s*,\s*)*)?(?:SEC|__section|section)\s*\(\s*\w+\s*\)"
    rb"[\s\w,()]*\Z"
)
_TEMPLATE_TOKEN = re.compile(
    rb'(?P<str>(?:u8|u|U|L)?"(?:[^"\\\n]|\\.)*")|(?P<hash>#\s*[A-Za-z_]\w*)|(?P<id>[A-Za-z_]\w*)'
    rb"|(?P<open>\()|(?P<close>\))|(?P<other>\S)"
)


def _template_sites(
    path: str,
    data: bytes,
    arg: Node,
    start: int,
    positions: Positions,
    aliases: set[str],
    root: Node,
) -> list[SectionSite]:
    """A site written inside a #define body: a template, expanded where the macro is used."""
    define = arg.parent
    if define is None or define.type not in ("preproc_def", "preproc_function_def"):
        return []
    macro_name_node = define.child_by_field_name("name")
    macro_name = macro_name_node.text.decode() if macro_name_node is not None else None
    params: set[str] = set()
    params_node = define.child_by_field_name("parameters")
    if params_node is not None:
        params = {c.text.decode() for c in params_node.named_children}
    m = re.compile(rb"\b(?:SEC|__section|section)\s*\(").match(data, start)
    if m is None:
        return []
    pos, end = m.end(), arg.end_byte
    pieces: list[Piece] = []
    depth = 1
    while pos < end:
        tm = _TEMPLATE_TOKEN.search(data, pos, end)
        if tm is None:
            break
        pos = tm.end()
        kind = tm.lastgroup
        if kind == "open":
            depth += 1
            continue
        if kind == "close":
            depth -= 1
            if depth == 0:
                break
            continue
        if depth > 1:
            continue
        piece_kind = {"str": "literal", "hash": "stringify", "id": "macro"}.get(kind, "other")
        pieces.append(_piece(piece_kind, tm.start(), tm.end(), data, positions))
    if not pieces or depth != 0:
        return []
    if (
        len(params) == 1
        and len(pieces) == 1
        and pieces[0].text in params
        and _ALIAS_BODY.match(data, arg.start_byte, arg.end_byte)
    ):
        # `#define SEC(name) __attribute__((section(name), used))` defines a SEC-like macro.
        if macro_name:
            aliases.add(macro_name)
        return []
    span = positions.span(pieces[0].span.start_byte, pieces[-1].span.end_byte)
    return [
        SectionSite(
            path=path,
            macro=data[start : m.end()].split(b"(")[0].strip().decode(),
            span=span,
            pieces=tuple(pieces),
            section_text=data[span.start_byte : span.end_byte].decode("utf-8", "replace"),
            section=_resolve(pieces),
            kind="unknown",
            program=None,
            symbol=None,
            name_span=None,
            is_static=False,
            body=None,
            branch=branch_condition(define, None, root),
            template=True,
            template_macro=macro_name,
        )
    ]
