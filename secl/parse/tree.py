"""The tree-sitter parser and the small helpers every extractor shares."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import namedtuple
from collections.abc import Iterator
from functools import cache
from itertools import accumulate

from secl.facts import Position, Span, position
from secl.parse import large
from secl.parse.binding import binding

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tree_sitter import Language, Node, Parser, Tree, TreeCursor


@cache
def c_language() -> Language:
    return binding("tree_sitter").Language(binding("tree_sitter_c").language())


@cache
def c_parser() -> Parser:
    # A Parser holds no state between parse() calls; caching it only saves set-up time.
    return binding("tree_sitter").Parser(c_language())


@cache
def cpp_language() -> Language:
    # Loaded on the first C++ file only: a run of C files never pays for the grammar.
    return binding("tree_sitter").Language(binding("tree_sitter_cpp").language())


@cache
def cpp_parser() -> Parser:
    return binding("tree_sitter").Parser(cpp_language())


_LONE_CR = re.compile(rb"\r(?!\n)")


def line_ends(data: bytes) -> bytes:
    """`data` with every lone CR turned into LF, byte for byte (offsets do not move).

    A C compiler ends a line at CR, LF or CR LF (`clang -E` ends a `//` comment or a directive
    at a lone CR, and `\\` before a lone CR continues the line), but tree-sitter-c and the
    patterns here end lines at LF only: a file with old Mac line endings would be one line
    whose first `//` comment hides everything after it.
    """
    marks = large.marks(data)  # a huge file: found once, with its other marks
    if not (marks.cr if marks is not None else b"\r" in data):
        return data
    if data.count(b"\r") == data.count(b"\r\n"):
        return data
    return _LONE_CR.sub(b"\n", data)


def parse(data: bytes, cpp: bool = False) -> Tree:
    """The tree of `data` (C, or C++ with `cpp`: see secl.files.is_cpp); a lone CR ends a
    line, as for a compiler (see `line_ends`)."""
    return (cpp_parser() if cpp else c_parser()).parse(line_ends(data))


# Bytes that `Positions.at` counts again from the start of a file rather than build its line
# table for one lookup backwards (a count runs at memory speed; a table is a list per line).
_RECOUNT = 16384
# Files under this size are checked for non-ASCII bytes once, at their first position.
_WHOLE_ASCII = 1 << 20


class Positions:
    """Byte offsets to 1-based (row, character column) for one file. Rows end at LF, CR LF or
    a lone CR, as a compiler counts them."""

    __slots__ = ("_ascii", "_data", "_line", "_line_start", "_starts")

    def __init__(self, data: bytes) -> None:
        self._data = line_ends(data)
        self._starts: list[int] | None = None
        # Where the last lookup landed: sites are read in order, so counting newlines from
        # there (in C) is cheaper than a line table for a file with a handful of sites.
        self._line_start = 0
        self._line = 0
        self._ascii: bool | None = None  # whether the whole file is ASCII, on first lookup

    def at(self, offset: int) -> Position:
        data = self._data
        start, line = self._line_start, self._line
        if offset < start:
            if self._starts is None and offset <= _RECOUNT:
                # Backwards near the top (a loader's uses are read out of order): counting
                # again from the start costs less than the line table.
                start, line = 0, 0
            else:
                # Backwards further in (macros are read out of order): from the line table,
                # not by counting the file again from its start.
                from bisect import bisect_right

                starts = self._line_starts()
                line = bisect_right(starts, offset) - 1
                start = starts[line]
        newlines = data.count(b"\n", start, offset)
        if newlines:
            line += newlines
            start = data.rfind(b"\n", start, offset) + 1
        self._line_start, self._line = start, line
        ascii_ = self._ascii
        if ascii_ is None:
            # Once for a file of ordinary size (a scan at memory speed): then every column is
            # a byte count. A huge header asks for few positions: each checks its own line.
            ascii_ = self._ascii = len(data) < _WHOLE_ASCII and data.isascii()
        if ascii_:
            return position(line + 1, offset - start + 1)
        prefix = data[start:offset]
        column = offset - start if prefix.isascii() else len(prefix.decode("utf-8", "replace"))
        return position(line + 1, column + 1)

    def span(self, start: int, end: int) -> Span:
        return Span(start, end, self.at(start), self.at(end))

    def _line_starts(self) -> list[int]:
        starts = self._starts
        if starts is None:
            # 0, then one past each LF: the running sum of line lengths plus their LF, in C
            # (a generator step per line costs more than the rest of a small file's lookups).
            lengths = map(len, self._data.split(b"\n")[:-1])
            starts = self._starts = list(accumulate(map((1).__add__, lengths), initial=0))
        return starts

    def line_text(self, row: int) -> str:
        starts = self._line_starts()
        start = starts[row - 1]
        end = starts[row] - 1 if row < len(starts) else len(self._data)
        return self._data[start:end].decode("utf-8", "replace").rstrip("\r")


# Node types whose content is one token for our purposes.
ATOMIC = frozenset(
    {"string_literal", "char_literal", "raw_string_literal", "system_lib_string", "number_literal"}
)
# Node types we never look into when reading code in order.
SKIPPED = frozenset(
    {
        "comment",
        "preproc_def",
        "preproc_function_def",
        "preproc_include",
        "preproc_call",
        "preproc_arg",
    }
)
ALTERNATIVES = frozenset({"preproc_else", "preproc_elif", "preproc_elifdef"})
CONDITIONALS = frozenset({"preproc_if", "preproc_ifdef", "preproc_elif", "preproc_elifdef"})


# A token: tree-sitter's leaf, or one re-lexed from an ERROR node (`node` is None).
# type: str, text: bytes, start_byte: int, end_byte: int, node: Node | None. A plain
# namedtuple: typing.NamedTuple would import `typing` at start-up for no run-time gain.
Token = namedtuple("Token", "type text start_byte end_byte node")


# tree-sitter's own tokens cannot be trusted next to ERROR nodes (an empty string literal may
# come out as `"` `"` and a `string_content` that swallowed the next `)`, and an ERROR node may
# end inside a string), so code is read forward with the plain C token grammar below; the tree
# is used to find sites, branch conditions and bodies.
_C_TOKEN = re.compile(
    # whitespace, comments and line continuations before the token, skipped in the same match
    # (possessively: an unterminated comment must never be given back as `/` and `*`). Lines
    # end at LF, CR LF or a lone CR (callers may hand raw bytes: see `line_ends`).
    rb"(?:[ \t\r\n\f\v]+|//(?:[^\r\n\\]|\\(?:\r\n|.))*|/\*.*?(?:\*/|\Z)|\\(?:\r\n?|\n))*+"
    rb"(?:(?P<directive>\#(?:[^\r\n\\]|\\(?:\r\n|.))*)"
    rb'|(?P<string_literal>(?:u8|u|U|L)?"(?:[^"\\\r\n]|\\(?:\r\n|.))*"?)'
    rb"|(?P<char_literal>(?:u8|u|U|L)?'(?:[^'\\\r\n]|\\(?:\r\n|.))*'?)"
    rb"|(?P<word>[A-Za-z_]\w*)"
    rb"|(?P<number_literal>\.?[0-9](?:[eEpP][+-]|[\w.])*)"
    rb"|(?P<punct>->|\+\+|--|<<=?|>>=?|[<>=!&|^+\-*/%]=|&&|\|\||\.\.\.|.)"
    rb"|(?P<end>\Z))",
    re.S,
)
_KEYWORD_TYPES = {b"struct": "struct", b"union": "union", b"enum": "enum", b"static": "static",
                  b"asm": "asm"}  # fmt: skip
_DIRECTIVE_WORD = re.compile(rb"#[ \t]*(\w*)")
# `Token(...)` goes through a Python-level __new__; building the tuple directly (as
# NamedTuple's own `_make` does) halves the cost of the lexer's hottest line.
_new_token = tuple.__new__


def lex_all(data: bytes, start: int, end: int) -> list[Token]:
    """`list(lex(data, start, end))`: a range without `#` has no directive, so no branch to
    skip, and is read in one comprehension (a program body's tokens, half the time)."""
    if data.find(b"#", start, end) >= 0:
        return list(lex(data, start, end))
    keywords = _KEYWORD_TYPES
    new_token = _new_token
    return [
        new_token(
            Token,
            (
                keywords.get(text, "identifier") if kind == "word"
                else text.decode("latin-1") if kind == "punct"
                else kind,
                text,
                m.end() - len(text),
                m.end(),
                None,
            ),
        )
        for m in _C_TOKEN.finditer(data, start, end)
        if (kind := m.lastgroup) != "end" and (text := m.group(kind)) is not None
    ]  # fmt: skip


def lex(
    data: bytes, start: int, end: int | None = None, *, every_branch: bool = False
) -> Iterator[Token]:
    """C tokens from `start`, comments and directives skipped. Preprocessor-aware: of each
    `#if` block only the branch we are in (or, for a block that starts after `start`, its
    first branch) is read, unless `every_branch`. Outside `#define` bodies (which are
    directives) `#` only starts a directive."""
    depth = 0  # #if nesting relative to `start`
    skipping_to: int | None = None  # skip tokens until #if depth returns to this value
    scanner = _C_TOKEN.finditer(data, start) if end is None else _C_TOKEN.finditer(data, start, end)
    keywords = _KEYWORD_TYPES
    new_token = _new_token
    for m in scanner:
        kind = m.lastgroup
        if kind == "directive":
            if every_branch:
                continue
            word = _DIRECTIVE_WORD.match(m.group(kind)).group(1)  # type: ignore[union-attr]
            if word in (b"if", b"ifdef", b"ifndef"):
                depth += 1
            elif word == b"endif":
                depth -= 1
                if skipping_to is not None and depth < skipping_to:
                    skipping_to = None
            elif word in (b"else", b"elif", b"elifdef", b"elifndef") and skipping_to is None:
                # Another branch of a block whose first (or our) branch was read: skip it all.
                skipping_to = depth
            continue
        if kind == "end":
            return
        if skipping_to is not None:
            continue
        text = m.group(kind)
        if kind == "word":
            kind = keywords.get(text, "identifier")
        elif kind == "punct":
            kind = text.decode("latin-1")
        end_byte = m.end()
        yield new_token(Token, (kind, text, end_byte - len(text), end_byte, None))


def _leaves(node: Node, data: bytes) -> Iterator[Token]:
    """Tokens of `node` in order, skipping comments, directives and other #if branches."""
    t = node.type
    if t in SKIPPED or node.is_missing:
        return
    if node.child_count == 0 or t in ATOMIC:
        if not t.startswith("#") and t != "\n" and node.end_byte > node.start_byte:
            yield Token(t, node.text, node.start_byte, node.end_byte, node)
        return
    if t == "ERROR":
        yield from lex(data, node.start_byte, node.end_byte)
        return
    if t in CONDITIONALS or t == "preproc_else":
        # Only the first branch's body: child 1 is the condition (or name) of the directive.
        for i, child in enumerate(node.children):
            if child.type in ALTERNATIVES:
                break
            if i == 1 and t != "preproc_else":
                continue
            yield from _leaves(child, data)
        return
    for child in node.children:
        yield from _leaves(child, data)


def _leaves_reversed(node: Node, data: bytes) -> Iterator[Token]:
    """`_leaves` backwards, without materialising the whole subtree."""
    t = node.type
    if t in SKIPPED or node.is_missing:
        return
    if node.child_count == 0 or t in ATOMIC or t == "ERROR" or t in CONDITIONALS:
        yield from reversed(list(_leaves(node, data)))
        return
    for child in reversed(node.children):
        yield from _leaves_reversed(child, data)


def descend(node: Node, root: Node) -> tuple[TreeCursor, list[Node]] | None:
    """A cursor on `node` and its ancestors (root first), found in one descent from `root`.

    tree-sitter's `Node.parent`, and the sibling getters built on it, descend from the root at
    every call (lib/src/node.c: ts_node_parent), so a walk up a deep tree with them is
    quadratic in its depth (issue 13: 100k nested `#if`s). A cursor keeps the way down and
    goes back up in one step (lib/src/tree_cursor.c: ts_tree_cursor_goto_parent). None when
    `node` is empty (it cannot be found by its first byte) or not under `root`.
    """
    start = node.start_byte
    if node.end_byte == start:
        return None
    cursor = root.walk()
    ancestors: list[Node] = []
    while True:
        current = cursor.node
        if current == node:
            return cursor, ancestors
        # Siblings do not overlap: the one child that holds `start` is on the way down.
        if current.end_byte <= start or cursor.goto_first_child_for_byte(start) is None:
            return None
        ancestors.append(current)


def _ancestors_slow(node: Node) -> list[Node]:
    """`descend`'s ancestors the quadratic way, for the nodes it cannot reach."""
    out = []
    current = node.parent
    while current is not None:
        out.append(current)
        current = current.parent
    out.reverse()
    return out


def ancestors_of(node: Node, root: Node | None = None) -> list[Node]:
    """The ancestors of `node`, root first: linear in its depth given the tree's `root`."""
    found = descend(node, root) if root is not None else None
    return found[1] if found is not None else _ancestors_slow(node)


# Up to this depth a sibling is asked of tree-sitter (`Node.prev_sibling`: a walk down from
# the root, then a scan of the parent's children, all in C); deeper, where that walk is what
# costs, it is read from the parent's list of children.
_SHALLOW = 32


def tokens_before(node: Node, data: bytes, root: Node | None = None) -> Iterator[Token]:
    """Tokens before `node`, nearest first (comments, directives, other branches skipped).
    `root` is the tree's root: without it, it is found with the quadratic `Node.parent`."""
    if root is None:
        ancestors = _ancestors_slow(node)
        root = ancestors[0] if ancestors else node
    found = descend(node, root)
    if found is None:
        yield from _tokens_before_slow(node, data)
        return
    # Not the cursor's own steps backwards: next to a comment, tree-sitter's cursor can name a
    # node by its grammar symbol instead of its alias (`identifier` for a `type_identifier`).
    ancestors = found[1]
    current = node
    # Inside an ERROR node the tree is not trusted: lex the outermost one up to the node.
    error = next((i for i, a in enumerate(ancestors) if a.type == "ERROR"), None)
    if error is not None:
        yield from reversed(_lexed_before(data, ancestors[error], node.start_byte))
        current = ancestors[error]
        del ancestors[error:]
    children: list[Node] | None = None  # deep down: the parent's children, `current` at `index`
    index = 0
    while True:
        if current.type in ALTERNATIVES:
            # What precedes an #else branch in the tree is the other branch, not this path.
            while current.type not in ("preproc_if", "preproc_ifdef"):
                if not ancestors:
                    return
                current = ancestors.pop()
            children = None
        if not ancestors:
            return
        parent = ancestors[-1]
        if len(ancestors) <= _SHALLOW:
            sibling = current.prev_sibling
            # The first child of a block is its `#if`, the second its condition.
            leading = sibling is not None and (
                sibling == parent.child(0) or sibling == parent.child(1)
            )
        else:
            if children is None:
                children = parent.children
                index = next(i for i in range(len(children) - 1, -1, -1) if children[i] == current)
            sibling = children[index - 1] if index > 0 else None
            leading = index <= 2
        if sibling is None or (parent.type in CONDITIONALS and (sibling.type == "\n" or leading)):
            current = ancestors.pop()
            children = None
            continue
        yield from _leaves_reversed(sibling, data)
        current = sibling
        index -= 1


def _enclosing_if(node: Node) -> Node | None:
    current: Node | None = node
    while current is not None and current.type not in ("preproc_if", "preproc_ifdef"):
        current = current.parent
    return current


def _outermost_error(node: Node) -> Node | None:
    found = None
    current = node.parent
    while current is not None:
        if current.type == "ERROR":
            found = current
        current = current.parent
    return found


class _Lexed:
    """The tokens of `lex(data, start, end)`, read as far as they are asked for."""

    __slots__ = ("_rest", "data", "start", "tokens")

    def __init__(self, data: bytes, start: int, end: int) -> None:
        self.data = data
        self.start = start
        self.tokens: list[Token] = []
        self._rest: Iterator[Token] | None = lex(data, start, end)

    def upto(self, stop: int) -> list[Token] | None:
        """`list(lex(data, start, stop))`: the tokens that end by `stop`, which a lexer that
        stops at `stop` reads alike, when what follows them up to `stop` gives that lexer no
        token (else None: it would read something cut short there, a token, `//` as `/`)."""
        tokens = self.tokens
        while self._rest is not None and (not tokens or tokens[-1].end_byte <= stop):
            token = next(self._rest, None)
            if token is None:
                self._rest = None
            else:
                tokens.append(token)
        count = bisect_right(tokens, stop, key=lambda t: t.end_byte)
        if count < len(tokens) and tokens[count].start_byte < stop:
            return None
        last = tokens[count - 1].end_byte if count else self.start
        if next(lex(self.data, last, stop), None) is not None:
            return None
        return tokens[:count]


# The ERROR nodes lexed lately, by (id of the file's bytes, start, end): a file's sites that
# sit in one ERROR node each read the tokens before them, which the first read lexes once.
_LEXED: dict[tuple[int, int, int], _Lexed] = {}


def _lexed_before(data: bytes, error: Node, stop: int) -> list[Token]:
    """`list(lex(data, error.start_byte, stop))`, lexed once per ERROR node of a file."""
    key = (id(data), error.start_byte, error.end_byte)
    lexed = _LEXED.get(key)
    if lexed is None or lexed.data is not data:
        if len(_LEXED) >= 8:
            _LEXED.pop(next(iter(_LEXED)))
        lexed = _LEXED[key] = _Lexed(data, error.start_byte, error.end_byte)
    found = lexed.upto(stop)
    return found if found is not None else list(lex(data, error.start_byte, stop))


def _tokens_before_slow(node: Node, data: bytes) -> Iterator[Token]:
    """`tokens_before` with tree-sitter's getters: quadratic in the depth of `node`."""
    current = node
    error = _outermost_error(node)
    if error is not None:
        yield from reversed(_lexed_before(data, error, node.start_byte))
        current = error
    while True:
        if current.type in ALTERNATIVES:
            # What precedes an #else branch in the tree is the other branch, not this path.
            outer = _enclosing_if(current)
            if outer is None:
                return
            current = outer
        sibling = current.prev_sibling
        parent = current.parent
        if sibling is None or (
            parent is not None
            and parent.type in CONDITIONALS
            and (sibling.type == "\n" or sibling.prev_sibling is None or sibling == parent.child(1))
        ):
            if parent is None:
                return
            current = parent
            continue
        yield from _leaves_reversed(sibling, data)
        current = sibling


def inside_error(node: Node) -> bool:
    """Whether an ERROR node of the tree holds `node` (what is inside it is not trusted)."""
    current = node.parent
    while current is not None:
        if current.type == "ERROR":
            return True
        current = current.parent
    return False


def first_error_row(node: Node) -> int:
    """The 1-based row of the first ERROR or missing node under `node` (its own row if none)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "ERROR" or current.is_missing:
            return current.start_point[0] + 1
        if current.has_error:
            stack.extend(reversed(current.children))
    return node.start_point[0] + 1


_WORD_CHAR = re.compile(rb"\w")


def word_start(literal: bytes) -> bytes:
    """A regex for `literal` at the start of a word: what `\\b` + `literal` means, written
    with the literal first and the boundary checked behind it. A pattern that starts with
    `\\b` is tried at every byte of a file; one that starts with a literal is searched for
    by a fast scan for that literal, several times faster over a large file. The match, its
    groups and finditer's matches are those of the `\\b` form (the look-behind sees before
    `pos`, as `\\b` does)."""
    escaped = re.escape(literal)
    if not _WORD_CHAR.match(literal):  # `\b` before a non-word character means otherwise
        return rb"\b" + escaped
    return escaped + rb"(?<!\w" + escaped + rb")"


def finditer_any(
    patterns: list[re.Pattern[bytes]], data: bytes, pos: int = 0, endpos: int | None = None
) -> Iterator[tuple[int, re.Match[bytes]]]:
    """(index of the pattern, match) of `A|B|...`.finditer(data): the leftmost match of any
    pattern, the first pattern's of those that match there, then on from its end. Each pattern
    is searched on its own: patterns that start with a literal are searched for by it, where
    one pattern of alternatives that start differently is tried at every byte."""
    end = len(data) if endpos is None else endpos
    found = [p.search(data, pos, end) for p in patterns]
    while True:
        best = -1
        for i, m in enumerate(found):
            if m is not None and (best < 0 or m.start() < found[best].start()):  # type: ignore[union-attr]
                best = i
        if best < 0:
            return
        m = found[best]
        assert m is not None
        yield best, m
        pos = m.end() if m.end() > m.start() else m.end() + 1
        for i, other in enumerate(found):
            if other is not None and other.start() < pos:
                found[i] = patterns[i].search(data, pos, end)
