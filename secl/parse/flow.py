"""Control flow inside one C function: does a store reach a use?

The loader extractor asks one question of a function: can control go from a statement that
stores a value (`opts.offset = 9;`) to the statement that uses it (the attach call) without
passing through another statement that certainly overwrites it? A store after the call, or
on a branch that never leads to the call, does not count; a store in a loop before the call
does, on the next iteration.

The graph has one point per simple statement (expression statements, declarations, returns,
jumps) and per condition of `if`/`while`/`for`/`switch`/`do`, plus the function's entry.
`goto` and labels, `break`/`continue`, `switch` fall-through and `#if` branches inside a body
(both taken as possible) are modelled; expressions are not split (`a && (x = 1)` is one point,
and such a store never counts as certain).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from tree_sitter import Node

ENTRY = 0  # the function's entry point: parameters and globals hold their incoming values

_LOOPS = frozenset({"while_statement", "for_statement", "do_statement"})
_PREPROC_BRANCHES = frozenset({"preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif",
                               "preproc_elifdef"})  # fmt: skip
# What sits between a store and its statement when the store always runs with it.
_CERTAIN_WRAPPERS = frozenset(
    {"expression_statement", "comma_expression", "parenthesized_expression", "init_declarator",
     "declaration", "argument_list", "initializer_list", "initializer_pair"}
)  # fmt: skip


class _Jumps:
    """The `break`s and `continue`s of one loop or switch being built."""

    __slots__ = ("breaks", "continues", "switch")

    def __init__(self, switch: bool = False) -> None:
        self.breaks: list[int] = []
        self.continues: list[int] = []
        self.switch = switch


def _key(node: Node) -> tuple[int, int, int]:
    return (node.start_byte, node.end_byte, node.kind_id)


class Flow:
    """The control-flow graph of one function definition."""

    def __init__(self, function: Node) -> None:
        self.function = function
        self.nodes: list[Node | None] = [None]  # point -> its statement (None: ENTRY, joins)
        self.successors: list[list[int]] = [[]]
        self._points: dict[tuple[int, int, int], int] = {}
        self._loops: list[_Jumps] = []  # innermost last
        self._labels: dict[str, int] = {}
        self._gotos: list[tuple[int, str]] = []
        self._reach: dict[tuple[int, int, frozenset[int]], bool] = {}
        body = function.child_by_field_name("body")
        if body is not None:
            self._statement(body, [ENTRY])
        for point, label in self._gotos:
            target = self._labels.get(label)
            if target is not None:
                self.successors[point].append(target)

    # -- building ----------------------------------------------------------------------------

    def _new(self, node: Node | None, preds: list[int]) -> int:
        point = len(self.nodes)
        self.nodes.append(node)
        self.successors.append([])
        if node is not None:
            self._points.setdefault(_key(node), point)
        for p in preds:
            self.successors[p].append(point)
        return point

    def _link(self, preds: list[int], target: int) -> None:
        for p in preds:
            self.successors[p].append(target)

    def _sequence(self, children: list[Node], preds: list[int]) -> list[int]:
        for child in children:
            preds = self._statement(child, preds)
        return preds

    def _statement(self, node: Node, preds: list[int]) -> list[int]:
        """Add `node` after `preds`; the points control falls out of it from."""
        t = node.type
        if t == "comment":
            return preds
        if t == "compound_statement":
            return self._sequence(node.named_children, preds)
        if t == "if_statement":
            condition = self._new(node.child_by_field_name("condition"), preds)
            out = self._branch(node.child_by_field_name("consequence"), [condition])
            alternative = node.child_by_field_name("alternative")
            if alternative is not None:
                inner = [c for c in alternative.named_children if c.type != "comment"]
                out += self._sequence(inner, [condition])
            else:
                out.append(condition)
            return out
        if t in _LOOPS:
            return self._loop(node, preds)
        if t == "switch_statement":
            return self._switch(node, preds)
        if t == "break_statement":
            point = self._new(node, preds)
            if self._loops:
                self._loops[-1].breaks.append(point)
            return []
        if t == "continue_statement":
            point = self._new(node, preds)
            loop = next((j for j in reversed(self._loops) if not j.switch), None)
            if loop is not None:
                loop.continues.append(point)
            return []
        if t in ("return_statement", "throw_statement", "co_return_statement"):
            self._new(node, preds)
            return []
        if t == "function_definition":
            # Only C++ has one in a body: tree-sitter-cpp's reading of a macro loop,
            # `bpf_object__for_each_program(p, obj) { ... }`; taken as C takes it: the macro
            # call, then its block.
            head = self._new(node.child_by_field_name("declarator"), preds)
            return self._branch(node.child_by_field_name("body"), [head])
        if t == "try_statement":
            return self._try(node, preds)
        if t == "for_range_loop":
            return self._range_loop(node, preds)
        if t == "goto_statement":
            point = self._new(node, preds)
            label = node.child_by_field_name("label")
            if label is not None:
                self._gotos.append((point, label.text.decode()))
            return []
        if t == "labeled_statement":
            point = self._new(None, preds)
            label = node.child_by_field_name("label")
            if label is not None:
                self._labels[label.text.decode()] = point
            inner = [c for c in node.named_children if c != label and c.type != "comment"]
            return self._sequence(inner, [point])
        if t == "attributed_statement":
            inner = [c for c in node.named_children if c.type != "attribute_declaration"]
            return self._sequence(inner, preds)
        if t in _PREPROC_BRANCHES:
            # Both sides of an #if inside a body are possible configurations.
            alternative = node.child_by_field_name("alternative")
            skip = {"condition", "name", "alternative"}
            fields = {
                _key(c)
                for f in skip
                if (c := node.child_by_field_name(f)) is not None
            }  # fmt: skip
            inner = [c for c in node.named_children if _key(c) not in fields]
            out = self._sequence(inner, preds)
            out += self._statement(alternative, preds) if alternative is not None else preds
            return out
        return [self._new(node, preds)]

    def _branch(self, node: Node | None, preds: list[int]) -> list[int]:
        return self._statement(node, preds) if node is not None else preds

    def _loop(self, node: Node, preds: list[int]) -> list[int]:
        t = node.type
        body = node.child_by_field_name("body")
        jumps = _Jumps()
        self._loops.append(jumps)
        if t == "while_statement":
            condition = self._new(node.child_by_field_name("condition"), preds)
            self._link(self._branch(body, [condition]), condition)
            again = condition
            out = [condition]
        elif t == "do_statement":
            head = self._new(None, preds)
            out_body = self._branch(body, [head])
            condition = self._new(node.child_by_field_name("condition"), out_body)
            self.successors[condition].append(head)
            again = condition
            out = [condition]
        else:
            initializer = node.child_by_field_name("initializer")
            condition_node = node.child_by_field_name("condition")
            update_node = node.child_by_field_name("update")
            if initializer is not None:
                preds = [self._new(initializer, preds)]
            condition = self._new(condition_node, preds)
            out_body = self._branch(body, [condition])
            if update_node is not None:
                again = self._new(update_node, out_body)
                self.successors[again].append(condition)
            else:
                again = condition
                self._link(out_body, condition)
            out = [condition] if condition_node is not None else []
        self._loops.pop()
        self._link(jumps.continues, again)
        return out + jumps.breaks

    def _try(self, node: Node, preds: list[int]) -> list[int]:
        """C++ `try { ... } catch (...) { ... }`: a handler may start where a statement of the
        body that calls, throws or allocates is about to run (its stores not yet done)."""
        first = len(self.nodes)
        out = self._branch(node.child_by_field_name("body"), preds)
        throwing = {p for p in range(first, len(self.nodes)) if _may_throw(self.nodes[p])}
        entries = sorted(
            {q for q in [*preds, *range(first, len(self.nodes))]
             if any(s in throwing for s in self.successors[q])}
        )  # fmt: skip
        for clause in node.named_children:
            if clause.type == "catch_clause":
                out += self._branch(clause.child_by_field_name("body"), entries)
        return out

    def _range_loop(self, node: Node, preds: list[int]) -> list[int]:
        """C++ `for (auto &x : range) body`: the range is read once, then the body runs zero
        or more times."""
        jumps = _Jumps()
        self._loops.append(jumps)
        head = self._new(node.child_by_field_name("right"), preds)
        self._link(self._branch(node.child_by_field_name("body"), [head]), head)
        self._loops.pop()
        self._link(jumps.continues, head)
        return [head, *jumps.breaks]

    def _switch(self, node: Node, preds: list[int]) -> list[int]:
        condition = self._new(node.child_by_field_name("condition"), preds)
        body = node.child_by_field_name("body")
        jumps = _Jumps(switch=True)
        self._loops.append(jumps)
        fall: list[int] = []
        has_default = False
        children = body.named_children if body is not None else []
        for child in children:
            if child.type == "case_statement":
                value = child.child_by_field_name("value")
                has_default = has_default or value is None
                entry = self._new(None, [condition, *fall])
                inner = [c for c in child.named_children if c != value and c.type != "comment"]
                fall = self._sequence(inner, [entry])
            else:
                fall = self._statement(child, fall)
        self._loops.pop()
        return jumps.breaks + fall + ([] if has_default else [condition])

    # -- questions ---------------------------------------------------------------------------

    def point(self, node: Node) -> int | None:
        """The point of the statement (or condition) that holds `node`."""
        current: Node | None = node
        stop = self.function.start_byte
        while current is not None and current.start_byte >= stop:
            found = self._points.get(_key(current))
            if found is not None:
                return found
            current = current.parent
        return None

    def reaches(self, source: int, target: int, kills: frozenset[int] = frozenset()) -> bool:
        """Whether control can go from just after `source` to just before `target` without
        passing through a point of `kills`."""
        if source == target:
            return True
        key = (source, target, kills)
        found = self._reach.get(key)
        if found is not None:
            return found
        seen = {source}
        stack = list(self.successors[source])
        found = False
        while stack:
            point = stack.pop()
            if point == target:
                found = True
                break
            if point in seen or point in kills:
                continue
            seen.add(point)
            stack.extend(self.successors[point])
        self._reach[key] = found
        return found


_THROWING = frozenset({"call_expression", "throw_statement", "throw_expression", "new_expression",
                       "co_await_expression"})  # fmt: skip


def _may_throw(node: Node | None) -> bool:
    """Whether a statement may throw a C++ exception: it calls, throws or allocates."""
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if current.type in _THROWING:
            return True
        stack.extend(current.children)
    return False


def always_runs(store: Node, statement: Node | None) -> bool:
    """Whether the store expression `store` certainly runs whenever `statement` (its point's
    node) does: nothing conditional (`?:`, `&&`, a call argument evaluated or not) sits
    between them."""
    current: Node | None = store
    while current is not None and statement is not None and _key(current) != _key(statement):
        if current.type not in _CERTAIN_WRAPPERS and current.type not in (
            "assignment_expression",
            "call_expression",
        ):
            return False
        current = current.parent
    return current is not None
