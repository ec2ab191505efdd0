"""The user side: what C code that drives libbpf does with BPF programs.

A loader file is read once (its tree comes from the project cache). Work starts from a bytes
search for the libbpf calls that matter, so files and functions without them cost nothing
beyond the parse; values are then followed backwards on demand:

* through locals, globals, arrays and tables of names (flow-insensitive, per function: every
  value ever stored in a variable counts everywhere in that function),
* through `#define`s and enum constants of the file,
* through parameters, to the arguments every caller in the same file passes,
* through the return statements of the file's own helper functions.

Everything a program can be reached by is an abstract value (plain tuples, hashable):

    ("skel", NAME)                 a skeleton of type `struct NAME`
    ("obj", PATH | None)           a bpf_object opened from an object file
    ("prog", OWNER, NAME | None)   program NAME of OWNER (None: every program of it)
    ("link", PROG)  ("fd", PROG)  ("progfd", PROG)
    ("opts", SCOPE, VAR)           a bpf_kprobe_opts / bpf_uprobe_opts variable
    ("int", N, START, END)  ("sym", NAME, START, END)  ("str", TEXT, START, END)
    ("null", START, END)  ("unknown", START, END)
    ("undecided", START, END)      C++: a default argument the file does not show

OWNER is ("skel", NAME), ("obj", PATH) or ("unknown",). The byte range of a leaf value is where
it is written, so that evidence can point at the line that proves it (the `.offset = 9`, the
`test_x(PROBE_ATTACH_MODE_LINK)` in another function).

Comments, strings and `#if 0`-style dead text never count: every hit is checked against the
tree, and only identifiers in code are used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from secl.facts import Span
from secl.files import is_cpp
from secl.parse import large
from secl.parse.cstring import decode_literal
from secl.parse.flow import ENTRY, Flow, always_runs
from secl.parse.tree import Positions, finditer_any, parse
from secl.records import quick_init

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Literal

    from tree_sitter import Node, Tree

    FactKind = Literal[
        "attach",  # any bpf_program__attach*() of the program
        "auto-attach",  # NAME__attach(skel): every program of the skeleton
        "attach-offset",  # bpf_kprobe_opts.offset that is, or may be, nonzero
        "attach-address",  # kprobe attached by address: func_name NULL plus an offset
        "attach-mode",  # an explicit, non-default bpf_{k,u}probe_opts.attach_mode
        "link-info",  # the link's info is read and expected to be a perf-event link
        "link-info-multi",  # the same code also handles the kprobe_multi/uprobe_multi link type
        "missed-count",  # info.perf_event.kprobe.missed of the link is read
        "perf-event",  # attached to a perf event fd by hand
        "expected-attach-type",  # bpf_program__set_expected_attach_type()
        "set-type",  # bpf_program__set_type()
        "sleepable",  # bpf_program__set_flags(..., BPF_F_SLEEPABLE)
        "autoload",  # bpf_program__set_autoload()
        "autoattach",  # bpf_program__set_autoattach() (Rust loaders)
        "prog-handler",  # libbpf_register_prog_handler(sec, ...): program is None
    ]

# A loader worth parsing touches programs in a way the upgrade analysis cares about. The enum
# values first: every vmlinux.h holds them (enum bpf_attach_type, enum bpf_link_type), so a
# header of megabytes is told by its first ones, not after seven searches of it all.
LOADER_HINTS = (
    b"BPF_PERF_EVENT",
    b"BPF_LINK_TYPE_PERF_EVENT",
    b"attach_kprobe",
    b"attach_uprobe",
    b"attach_perf_event",
    b"set_expected_attach_type",
    b"bpf_program__set_type",
    b"bpf_program__set_flags",
    b"libbpf_register_prog_handler",
    b"perf_event.",
)
# Calls whose sites become facts.
_FACT_CALL = re.compile(
    rb"\b(bpf_program__attach\w*|bpf_program__set_expected_attach_type|bpf_program__set_type"
    rb"|bpf_program__set_flags|bpf_program__set_autoload|bpf_link_get_info_by_fd"
    rb"|bpf_obj_get_info_by_fd|libbpf_register_prog_handler|bpf_link_create|\w+__attach)\s*\("
)
# The same calls found from literals every one of their names holds (`_fact_calls`): the
# pattern above has none to lead it, so it is tried at every byte (50 ms for a 3.6 MB
# vmlinux.h that a `) {` makes a loader worth reading).
_FACT_LITERALS = [
    re.compile(re.escape(literal))
    for literal in (b"__attach", b"bpf_program__set_", b"bpf_link_get_info_by_fd",
                    b"bpf_obj_get_info_by_fd", b"libbpf_register_prog_handler", b"bpf_link_create")
]  # fmt: skip
_FACT_NAMES = frozenset(
    {b"bpf_program__set_expected_attach_type", b"bpf_program__set_type", b"bpf_program__set_flags",
     b"bpf_program__set_autoload", b"bpf_link_get_info_by_fd", b"bpf_obj_get_info_by_fd",
     b"libbpf_register_prog_handler", b"bpf_link_create"}
)  # fmt: skip
_WORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_CALL_OPEN = re.compile(rb"\s*\(")


def _fact_calls(data: bytes) -> list[tuple[int, int, str]]:
    """(start, end, name) of the calls `_FACT_CALL.finditer` finds, in order: a word (whole,
    as `\\b` and the `\\s*\\(` after it make each alternative) that names a fact call,
    followed by `(`."""
    out: list[tuple[int, int, str]] = []
    last = -1
    for _, m in finditer_any(_FACT_LITERALS, data):
        start = m.start()
        while start > 0 and data[start - 1] in _WORD_BYTES:
            start -= 1
        if start <= last:
            continue  # a word found already by another literal in it
        last = start
        end = m.end()
        while end < len(data) and data[end] in _WORD_BYTES:
            end += 1
        name = data[start:end]
        if not (
            name in _FACT_NAMES
            or name.startswith(b"bpf_program__attach")
            or (len(name) > 8 and name.endswith(b"__attach"))
        ):
            continue
        if _CALL_OPEN.match(data, end) is not None:
            out.append((start, end, name.decode()))
    return out


_SKEL_INCLUDE = re.compile(rb'#\s*include\s*[<"](?:[^">]*/)?(\w+)\.skel\.h[">]')
_SKEL_CALL = re.compile(rb"__(?:open_and_load|open_opts|open)\s*\(")
# `#include M(SKEL_HEADER)` and `PASTE(SKEL_NAME, __open_and_load)`: skeletons named by macros
_SKEL_HEADER_MACRO = re.compile(rb"#\s*include\s+\w+\s*\(\s*(\w+)\s*\)")
_PASTED_SKEL_CALL = re.compile(
    rb"\(\s*([A-Za-z_]\w*)\s*,\s*__(?:open_and_load|open_opts|open|load|attach|destroy)\s*\)"
)
_CONDITIONAL_NAME = re.compile(rb"#\s*ifn?def\s+(\w+)|\bdefined\s*\(?\s*(\w+)")
_PASTED_OPEN = re.compile(r"\(\s*([A-Za-z_]\w*)\s*,\s*__(?:open_and_load|open_opts|open)\s*\)")
_WORD_BEFORE = re.compile(rb"\w+\Z")
# Object names of libbpf's own API: `bpf_object__open()` is not a skeleton called bpf_object.
LIBBPF_OBJECTS = frozenset(
    {"bpf_object", "bpf_program", "bpf_link", "bpf_map", "btf", "btf_dump", "ring_buffer",
     "user_ring_buffer", "perf_buffer", "bpf_linker", "bpf_prog_linfo", "libbpf", "bpf_tc",
     "bpf_xdp", "bpf_prog", "bpf_token", "bpf_iter"}
)  # fmt: skip
OPTS_TYPES = frozenset({"bpf_kprobe_opts", "bpf_uprobe_opts"})
_OPTS_MACROS = frozenset({"LIBBPF_OPTS", "DECLARE_LIBBPF_OPTS"})
# libbpf.h: enum probe_attach_mode.
ATTACH_MODES = ("PROBE_ATTACH_MODE_DEFAULT", "PROBE_ATTACH_MODE_LEGACY",
                "PROBE_ATTACH_MODE_PERF", "PROBE_ATTACH_MODE_LINK")  # fmt: skip
_PERF_LINK_EXPECTATION = re.compile(
    rb"\b(BPF_LINK_TYPE_PERF_EVENT|BPF_PERF_EVENT_(?:K|U)(?:RET)?PROBE)\b"
)
_DECLARATOR_WRAPPERS = frozenset(
    {"pointer_declarator", "array_declarator", "parenthesized_declarator", "attributed_declarator",
     "reference_declarator"}  # C++ `T &x`, `T &&x` (never in a C tree)
)  # fmt: skip
# C++ only: what a function scope is (a lambda's body runs when it is called, not where it is
# written), parameters with a default, the casts that only change a value's type, and the
# smart pointers whose first template argument is the type they hold.
_FUNCTIONS = frozenset({"function_definition", "lambda_expression"})
_PARAMETERS = frozenset({"parameter_declaration", "optional_parameter_declaration"})
_CASTS = frozenset({"static_cast", "reinterpret_cast", "const_cast"})
_CPP_CONTAINERS = frozenset(
    {"namespace_definition", "template_declaration", "class_specifier", "struct_specifier",
     "field_declaration_list", "declaration", "export_declaration"}
)  # fmt: skip
_SMART_POINTERS = frozenset({"unique_ptr", "shared_ptr"})
# <algorithm> searches whose result is an iterator into their first argument's range.
_STD_FINDS = frozenset({b"std::find_if", b"std::find", b"std::find_if_not"})
# bpftool's C++ skeleton (gen.c: do_skeleton(), under `#ifdef __cplusplus`) gives `struct
# NAME` static members: NAME::open(opts), NAME::open_and_load(), NAME::attach(skel), ...
# The C++-only patterns stay source text, compiled (and cached by `re`) on the first C++ file:
# a run of C files does not pay for them.
_CPP_SKEL_CALL = rb"\b([A-Za-z_]\w*)\s*::\s*(open_and_load|open)\s*\("
_CPP_SKEL_ATTACH = rb"\b([A-Za-z_]\w*)\s*::\s*attach\s*\("
_INT = re.compile(r"([+-]?)(0[xX][0-9a-fA-F]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)[uUlL]*\Z")
_MAX_VALUES = 64
_MAX_CONTEXTS = 64
_MAX_CALL_DEPTH = 4
# The call a function was entered through: (call node, calling function, its context).
Ctx = tuple | None
_RETURN = re.compile(rb"\breturn\b")
_ZEROING = frozenset({b"memset", b"__builtin_memset", b"bzero"})
_STORES = frozenset({"init_declarator", "assignment_expression"})
_TABLE = re.compile(rb"\]\s*=\s*\{")  # an array with an initializer: a table of rows
_DIRECT_PROGRAM = re.compile(rb"[\w.>\s-]*progs\s*\.\s*\w+")  # skel->progs.x, no subscript
# Calls that take `&var` only to read it (or to attach with it): no store to the variable.
_NOT_WRITING = frozenset(
    {b"bpf_program__attach_kprobe_opts", b"bpf_program__attach_uprobe_opts",
     b"bpf_program__attach_usdt", b"bpf_program__attach_kprobe_multi_opts",
     b"bpf_program__attach_uprobe_multi", b"bpf_program__attach_perf_event_opts",
     b"bpf_program__attach_tracepoint_opts", b"bpf_program__attach_raw_tracepoint_opts",
     b"bpf_program__attach_trace_opts", b"bpf_program__attach_cgroup_opts",
     b"bpf_object__open_file", b"bpf_object__open_mem", b"bpf_link_create",
     b"bpf_map_update_elem", b"bpf_map_lookup_elem", b"bpf_map__update_elem",
     b"sizeof", b"printf", b"fprintf", b"printk", b"ASSERT_EQ", b"ASSERT_OK"}
)  # fmt: skip
_MAX_DEPTH = 40


@quick_init
@dataclass(frozen=True, slots=True)
class ObjectRef:
    """What a program belongs to: a skeleton (by type name), an object file (by the path
    written in the loader), or something the loader code does not show."""

    kind: Literal["skeleton", "object", "unknown"]
    name: str | None


@quick_init
@dataclass(frozen=True, slots=True)
class ProgramRef:
    """A program of an object, or all of them."""

    owner: ObjectRef
    name: str | None  # None: every program of the owner


@quick_init
@dataclass(frozen=True, slots=True)
class LoaderFact:
    """One thing loader code does to a program, and where."""

    kind: FactKind
    program: ProgramRef | None
    path: str
    span: Span  # the line that proves it (the store, the check, the call)
    value: str | int | None  # offset, mode name, section, flags text, ...
    function: str | None  # the loader function the fact sits in (its scenario)
    api: str | None = None  # the libbpf call behind it
    call: Span | None = None  # that call, when `span` is elsewhere
    targets: tuple[str, ...] = ()  # kernel functions named by an attach call
    # False when the analysis cannot tell whether the fact applies (the store's order with
    # the call is unknown): recorded as evidence, never a finding on its own.
    certain: bool = True


@dataclass(slots=True)
class LoaderFacts:
    """What one loader file uses and does."""

    path: str
    skeletons: frozenset[str]  # skeleton names the file uses
    objects: frozenset[str]  # object files the file opens
    facts: list[LoaderFact] = field(default_factory=list)


def is_loader(data: bytes) -> bool:
    """A loader worth parsing touches programs in a way the upgrade analysis cares about.
    Plain substring tests: much faster than one regex over every file of a tree."""
    if len(data) >= large.HUGE:  # once per file: each test reads megabytes
        return large.once(data, "loader", _is_loader)
    return _is_loader(data)


def _is_loader(data: bytes) -> bool:
    return b"bpf_" in data and any(hint in data for hint in LOADER_HINTS)


def extract_loader_facts(
    path: str,
    data: bytes,
    tree: Tree | None = None,
    positions: Positions | None = None,
    defines: dict[str, str] | None = None,
) -> LoaderFacts:
    """Every fact of one loader file. `defines` are the macros it is compiled with (-D
    flags of its build rule or compile command, `--define`): they name macro-named
    skeleton types (`struct SKEL_NAME *skel` with `-DSKEL_NAME=tool_bpf`)."""
    if tree is None:
        tree = parse(data, is_cpp(path))
    return _Loader(path, data, tree, positions, defines or {}).run()


# ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Var:
    """Everything one scope (a function, or the file) says about one name."""

    kind: Literal["param", "local", "none"] = "none"
    index: int = -1  # parameter position
    types: set[str] = field(default_factory=set)  # struct/typedef names in declarations
    values: list[Node] = field(default_factory=list)  # initialisers and stored values
    fields: dict[str, list[Node]] = field(default_factory=dict)  # var.f = X, .f = X
    field_order: tuple[str, ...] = ()  # fields of an anonymous struct type (tables)
    for_each: list[Node] = field(default_factory=list)  # bpf_object__for_each_program objs
    opts_type: str | None = None
    # Statements that (re)define the whole variable: its declaration, LIBBPF_OPTS(),
    # memset(&var, ...): every field not named there is zero from then on.
    defs: list[Node] = field(default_factory=list)
    escapes: list[Node] = field(default_factory=list)  # `&var` passed to a call: may store
    is_array: bool = False  # declared with [] (a table, when initialised)


def _inner(declarator: Node) -> Node | None:
    """The declarator a wrapper holds (C++'s `&x` names it by no field)."""
    found = declarator.child_by_field_name("declarator")
    if found is None and declarator.type == "reference_declarator":
        named = declarator.named_children
        found = named[-1] if named else None
    return found


def _is_array(declarator: Node | None) -> bool:
    while declarator is not None and declarator.type in _DECLARATOR_WRAPPERS:
        if declarator.type == "array_declarator":
            return True
        declarator = _inner(declarator)
    return False


def _text(node: Node | None) -> str | None:
    return " ".join(node.text.decode("utf-8", "replace").split()) if node is not None else None


def _int_value(text: str) -> int | None:
    m = _INT.match(text.strip())
    if m is None:
        return None
    sign, digits = m.groups()
    if digits.startswith(("0x", "0X")):
        value = int(digits, 16)
    elif digits.startswith(("0b", "0B")):
        value = int(digits[2:], 2)
    elif digits.startswith("0") and len(digits) > 1:
        value = int(digits, 8)
    else:
        value = int(digits)
    return -value if sign == "-" else value


def syntax_errors(root: Node) -> list[Node]:
    """The ERROR and missing nodes of a tree, in order, but for the ones every libbpf loader
    has: the `.field = x` of `LIBBPF_OPTS(type, name, .field = x)` (a designated
    initialiser as a macro argument is no expression), and a file-scope `LIBBPF_OPTS(...)`
    declaration."""
    found: list[Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            parent = node.parent
            if (
                node.text.strip() == b"."
                and parent is not None
                and parent.type in ("argument_list", "parameter_list")
            ):
                continue
            if node.type == "ERROR" and re.match(_OPTS_DECLARATION, node.text) is not None:
                continue
            found.append(node)
            continue
        if node.has_error:
            stack.extend(reversed(node.children))
    return found


_OPTS_DECLARATION = rb"(?:static\s+)?(?:DECLARE_)?LIBBPF_OPTS\s*\("


def _macro_loop(fn: Node) -> bool:
    """Whether a C++ function definition is a macro loop written in a body
    (`bpf_object__for_each_program(prog, obj) { ... }`): C++ has no function in a function,
    tree-sitter-cpp reads the macro call and its block as one."""
    parent = fn.parent
    return (
        fn.type == "function_definition"
        and parent is not None
        and parent.type in ("compound_statement", "case_statement", "labeled_statement")
    )


def _in_macro_loop(node: Node) -> bool:
    """Whether a C++ type name is an argument of a macro loop's header (`_macro_loop`)."""
    holder = node.parent.parent.parent if node.parent and node.parent.parent else None
    return holder is not None and holder.parent is not None and _macro_loop(holder.parent)


def _global_name(node: Node) -> Node | None:
    """The name of a C++ `::name` (the global namespace's: libbpf's own functions); None
    for anything else."""
    if node.type != "qualified_identifier" or node.child_by_field_name("scope") is not None:
        return None
    name = node.child_by_field_name("name")
    return name if name is not None and name.type == "identifier" else None


def _args(call: Node) -> list[Node]:
    arguments = call.child_by_field_name("arguments")
    if arguments is None:
        return []
    return [c for c in arguments.named_children if c.type != "comment"]


def _declarator_name(node: Node | None) -> Node | None:
    while node is not None and node.type in _DECLARATOR_WRAPPERS | {
        "function_declarator",
        "init_declarator",
    }:
        node = _inner(node)
    while node is not None and node.type == "qualified_identifier":
        node = node.child_by_field_name("name")  # C++ `Loader::attach`: named `attach`
    return node if node is not None and node.type in ("identifier", "field_identifier") else None


def _type_name(decl: Node) -> str | None:
    t = decl.child_by_field_name("type")
    if t is None:
        return None
    if t.type in ("struct_specifier", "union_specifier", "enum_specifier", "class_specifier"):
        name = t.child_by_field_name("name")
        return name.text.decode() if name is not None else None
    held = _held_type(t)
    return held if held is not None else t.text.decode()


def _held_type(t: Node) -> str | None:
    """C++: the type a `std::unique_ptr<T, D>` / `std::shared_ptr<T>` holds (its `->` is
    T's); None for any other type."""
    while t.type == "qualified_identifier":
        inner = t.child_by_field_name("name")
        if inner is None:
            return None
        t = inner
    name = t.child_by_field_name("name") if t.type == "template_type" else None
    arguments = t.child_by_field_name("arguments") if name is not None else None
    if name is None or arguments is None or name.text.decode() not in _SMART_POINTERS:
        return None
    first = next((c for c in arguments.named_children if c.type == "type_descriptor"), None)
    held = first.child_by_field_name("type") if first is not None else None
    if held is None:
        return None
    if held.type in ("struct_specifier", "class_specifier"):
        held = held.child_by_field_name("name")
    return held.text.decode() if held is not None else None


def _anonymous_fields(decl: Node) -> tuple[str, ...]:
    t = decl.child_by_field_name("type")
    if t is None or t.type != "struct_specifier":
        return ()
    return _struct_fields(t)


def _struct_fields(struct: Node) -> tuple[str, ...]:
    """The names of the fields a struct (or class) specifier declares in its body."""
    body = struct.child_by_field_name("body")
    names = []
    for fd in body.named_children if body is not None else ():
        if fd.type == "field_declaration":
            for d in fd.children_by_field_name("declarator"):
                n = _declarator_name(d)
                if n is not None:
                    names.append(n.text.decode())
    return tuple(names)


def _overwrites(store: Node, flow: Flow, point: int) -> bool:
    """Whether `store` (the parent of a stored value) certainly replaces the variable or field:
    a plain `=` or an initialiser that always runs with its statement, not `+=` or a store
    to one element."""
    if store.type == "assignment_expression":
        operator = store.child_by_field_name("operator")
        left = store.child_by_field_name("left")
        if operator is None or operator.type != "=" or left is None:
            return False
        if left.type == "subscript_expression":
            return False
        if left.type == "field_expression":
            base = left.child_by_field_name("argument")
            if base is None or base.type != "identifier":
                return False
    elif store.type not in ("init_declarator", "initializer_pair"):
        return False
    return always_runs(store, flow.nodes[point])


class _Loader:
    def __init__(
        self,
        path: str,
        data: bytes,
        tree: Tree,
        positions: Positions | None,
        command_line: dict[str, str] | None = None,
    ) -> None:
        self.path = path
        self.data = data
        self.root = tree.root_node
        self.cpp = is_cpp(path)
        # C++: byte ranges of the functions (or the ERROR nodes outside any) that hold a
        # syntax error: the facts there are uncertain (see `_troubled`).
        self._troubles: list[tuple[int, int]] | None = None
        self.positions = positions if positions is not None else Positions(data)
        self.command_line = command_line or {}
        self._defines: dict[str, str] | None = None
        self._macros: dict[str, tuple[str, str]] | None = None
        self._conditional_names: set[str] | None = None
        self.skeletons = set(self._skeleton_names())
        self.objects: set[str] = set()
        self.facts: list[LoaderFact] = []
        self._vars: dict[tuple[int, str], _Var] = {}
        self._functions: dict[str, list[Node]] | None = None
        self._memo: dict[tuple, frozenset] = {}
        self._active: set[tuple] = set()
        self._depth = 0
        self._field_types: dict[str, set[str]] = {}
        self._calls: dict[str, list[Node] | None] = {}
        self._flows: dict[int, Flow] = {}
        # Table rows (see `row_bindings`): table -> the one row being followed, the index
        # texts that pick it, and what tables a traced evaluation touched.
        self._binding: dict[tuple, int] = {}
        self._bound_indexes: dict[str, tuple[int, int]] = {}
        self._rows_key: tuple | None = None
        self._trace: list[tuple[tuple, int, str | None]] | None = None
        self._struct_fields: dict[str, tuple[str, ...]] = {}
        self._has_tables: bool | None = None
        self._enums: dict[str, int | None] = {}

    # -- set-up --------------------------------------------------------------------------

    def _skeleton_names(self) -> frozenset[str]:
        names = {m.group(1).decode() for m in _SKEL_INCLUDE.finditer(self.data)}
        for m in _SKEL_CALL.finditer(self.data):
            word = _WORD_BEFORE.search(self.data, max(0, m.start() - 80), m.start())
            if word is None:
                continue
            name = word.group().decode()
            if name not in LIBBPF_OBJECTS:
                names.add(name)
        # Build-time names: `#include ___resolve(SKEL_HEADER)` with -DSKEL_HEADER=x.skel.h,
        # `___apply(SKEL_NAME, __open_and_load)()` with -DSKEL_NAME=x.
        for m in _SKEL_HEADER_MACRO.finditer(self.data):
            header = self.resolve_name(m.group(1).decode(), header=True)
            if header is not None:
                names.add(header)
        for m in _PASTED_SKEL_CALL.finditer(self.data):
            name = self.resolve_name(m.group(1).decode())
            if name is not None and name not in LIBBPF_OBJECTS:
                names.add(name)
        if self.cpp and b"::" in self.data:
            # `probe_bpf::open_and_load()`; `X::open()` only next to a skeleton header (a
            # class of one's own may well have an open()).
            for m in re.finditer(_CPP_SKEL_CALL, self.data):
                name = m.group(1).decode()
                if name not in LIBBPF_OBJECTS and (
                    m.group(2) == b"open_and_load" or _SKEL_INCLUDE.search(self.data)
                ):
                    names.add(name)
        return frozenset(names)

    def resolve_name(self, name: str, header: bool = False) -> str | None:
        """What a build-time macro naming a skeleton stands for (`SKEL_NAME` -> `tool_bpf`,
        or for `header`, `SKEL_HEADER` -> `tool.skel.h` -> `tool`); the name itself when it
        is no macro; None when it is a macro nobody defines."""
        seen = set()
        value = name
        defines = self.defines()
        while value in defines and value not in seen and len(seen) < 8:
            seen.add(value)
            value = re.sub(r"/\*.*?\*/|//.*", "", defines[value]).strip().strip('"<>')
        if header:
            m = re.fullmatch(r"(?:.*/)?(\w+)\.skel\.h", value)
            return m.group(1) if m is not None else None
        if not re.fullmatch(r"[A-Za-z_]\w*", value):
            return None
        if not seen and self.looks_like_macro(value):
            return None
        return value

    def looks_like_macro(self, name: str) -> bool:
        """An undefined name the file treats as a macro (tested with #ifdef/#ifndef/
        defined(), or spelled in capitals): not a type secl can name."""
        if self._conditional_names is None:
            self._conditional_names = {
                (m.group(1) or m.group(2)).decode() for m in _CONDITIONAL_NAME.finditer(self.data)
            }
        return name in self._conditional_names or re.fullmatch(r"[A-Z][A-Z0-9_]*", name) is not None

    def run(self) -> LoaderFacts:
        for start, end, name in _fact_calls(self.data):
            node = self.root.descendant_for_byte_range(start, end)
            if node is None or node.type != "identifier":
                continue  # a comment, a string, a field name
            call = node.parent
            callee: Node = node
            if self.cpp and call is not None and _global_name(call) == node:
                callee, call = call, call.parent  # C++ `::bpf_program__attach(...)`
            if (
                call is None
                or call.type != "call_expression"
                or call.child_by_field_name("function") != callee
            ):
                continue
            fn = self.function_of(call)
            for ctx in self.contexts(fn):
                self._fact_call(name, call, fn, ctx)
        if self.cpp and b"::" in self.data:
            self._cpp_skeleton_attach()
        facts = self.facts
        if self.cpp:
            # Evidence next to a syntax error is recorded, never a finding on its own.
            facts = [replace(f, certain=False) if self._troubled(f) else f for f in facts]
        facts = list(dict.fromkeys(facts))
        return LoaderFacts(self.path, frozenset(self.skeletons), frozenset(self.objects), facts)

    def span(self, node: Node) -> Span:
        return self.positions.span(node.start_byte, node.end_byte)

    def _cpp_skeleton_attach(self) -> None:
        """`probe_bpf::attach(skel)`: bpftool's C++ skeleton member that attaches every
        program, as `probe_bpf__attach(skel)` does."""
        for m in re.finditer(_CPP_SKEL_ATTACH, self.data):
            name = m.group(1).decode()
            if name not in self.skeletons:
                continue
            node = self.root.descendant_for_byte_range(m.start(1), m.end(1))
            qualified = node.parent if node is not None else None
            call = qualified.parent if qualified is not None else None
            if (
                qualified is None
                or call is None
                or qualified.type != "qualified_identifier"
                or call.type != "call_expression"
                or call.child_by_field_name("function") != qualified
            ):
                continue  # a comment, a string, a definition of one's own
            fn = self.function_of(call)
            value = f"{name}::attach"
            owner = ("skel", name)
            self._add("auto-attach", {("prog", owner, None)}, self.span(call), value, fn, api=value)

    def _troubled(self, fact: LoaderFact) -> bool:
        """Whether a C++ syntax error sits in the function of the fact's line or call (or,
        outside any function, around it): the tree there may not be what the code says."""
        if self._troubles is None:
            self._troubles = []
            for error in syntax_errors(self.root):
                fn = self.function_of(error)
                holder = fn if fn is not None else error
                self._troubles.append((holder.start_byte, holder.end_byte))
        spans = [fact.span] if fact.call is None else [fact.span, fact.call]
        return any(
            start <= s.end_byte and s.start_byte <= end
            for s in spans
            for start, end in self._troubles
        )

    def span_bytes(self, start: int, end: int) -> Span:
        return self.positions.span(start, end)

    # -- scopes --------------------------------------------------------------------------

    def function_of(self, node: Node) -> Node | None:
        """The function `node` is in: in C++ also a lambda, whose body runs when it is
        called (its order with the code around it is unknown), not where it is written."""
        kinds = _FUNCTIONS if self.cpp else ("function_definition",)
        current = node.parent
        while current is not None:
            if current.type in kinds and not (self.cpp and _macro_loop(current)):
                return current
            current = current.parent
        return None

    def _macro_argument_use(self, node: Node, var: _Var, fn: Node | None) -> None:
        """C++ reads two libbpf macros as declarations, their arguments as parameter types:
        `bpf_object__for_each_program(prog, obj) { ... }` in a body (see `_macro_loop`):
        `prog` takes every program of `obj` there; and a file-scope `static
        LIBBPF_OPTS(bpf_kprobe_opts, opts);`. Both as C's reading takes them."""
        decl = node.parent
        params = decl.parent if decl is not None else None
        function = params.parent if params is not None else None
        if (
            decl is None or params is None or function is None or function.parent is None
            or decl.type != "parameter_declaration" or function.type != "function_declarator"
        ):  # fmt: skip
            return
        name = function.child_by_field_name("declarator")
        macro = name.text if name is not None else b""
        named = [c for c in params.named_children if c.type in _PARAMETERS]
        if len(named) < 2 or named[0].type != "parameter_declaration":
            return
        if macro == b"bpf_object__for_each_program" and _macro_loop(function.parent):
            if len(named) == 2 and named[0] == decl:
                var.for_each.append(named[1].child_by_field_name("type"))
        elif macro.decode() in _OPTS_MACROS and fn is None and named[1] == decl:
            if self.function_of(function) is not None:
                return
            kind = named[0].child_by_field_name("type")
            var.kind = "local"
            var.opts_type = kind.text.decode() if kind is not None else None
            var.defs.append(function)  # its `.field = x` C's reading leaves out too

    @staticmethod
    def function_name(fn: Node | None) -> str | None:
        if fn is None:
            return None
        name = _declarator_name(fn.child_by_field_name("declarator"))
        return name.text.decode() if name is not None else None

    def functions(self) -> dict[str, list[Node]]:
        if self._functions is None:
            found: dict[str, list[Node]] = {}
            stack = [self.root]
            while stack:
                node = stack.pop()
                for child in node.children:
                    if child.type == "function_definition":
                        name = self.function_name(child)
                        if name:
                            found.setdefault(name, []).append(child)
                    elif child.type.startswith("preproc_") or child.type in (
                        "ERROR",
                        "linkage_specification",
                        "declaration_list",
                    ):
                        stack.append(child)
                    elif self.cpp and child.type in _CPP_CONTAINERS:
                        stack.append(child)  # namespaces, classes, templates
            self._functions = found
        return self._functions

    def _scope_key(self, fn: Node | None) -> int:
        return fn.start_byte if fn is not None else -1

    def var(self, fn: Node | None, name: str) -> _Var:
        """What scope `fn` (None: the file) declares and stores for `name`."""
        key = (self._scope_key(fn), name)
        found = self._vars.get(key)
        if found is not None:
            return found
        var = _Var()
        self._vars[key] = var
        start, end = (fn.start_byte, fn.end_byte) if fn is not None else (0, len(self.data))
        pattern = re.compile(rb"\b" + re.escape(name.encode()) + rb"\b")
        for m in pattern.finditer(self.data, start, end):
            node = self.root.descendant_for_byte_range(m.start(), m.end())
            if self.cpp and node is not None and node.type == "type_identifier":
                self._macro_argument_use(node, var, fn)
                continue
            if node is None or node.type != "identifier":
                continue
            if fn is None and self.function_of(node) is not None:
                owner = self.function_of(node)
                if self.lookup(owner, name)[0] is not None:
                    continue  # a local of that function (or one a lambda is in), not the global
                self._use(node, var, is_global_store=True)
                continue
            self._use(node, var)
        return var

    def _use(self, node: Node, var: _Var, is_global_store: bool = False) -> None:
        parent = node.parent
        if parent is None:
            return
        child = node
        while (
            parent is not None and parent.type in _DECLARATOR_WRAPPERS and _inner(parent) == child
        ):
            child, parent = parent, parent.parent
        if parent is None:
            return
        t = parent.type
        if not is_global_store:
            if t == "ERROR" and parent.parent is not None:
                # `static LIBBPF_OPTS(bpf_kprobe_opts, opts);` at file scope: a macro type.
                holder = parent.parent
                name = holder.child_by_field_name("name")
                kind = holder.child_by_field_name("type")
                if (
                    holder.type == "macro_type_specifier"
                    and name is not None
                    and name.text.decode() in _OPTS_MACROS
                    and kind is not None
                ):
                    var.kind = "local"
                    var.opts_type = kind.text.decode()
                    var.defs.append(holder)
                    return
            if t in _PARAMETERS and self.function_of(parent) is None:
                return  # a prototype's parameter names nothing
            if t in _PARAMETERS and parent.child_by_field_name("declarator") == child:
                var.kind = "param"
                plist = parent.parent
                if self.cpp and (
                    plist is None
                    or plist.parent is None
                    or plist.parent.type
                    not in ("function_declarator", "abstract_function_declarator")
                ):
                    var.kind = "local"  # a C++ `catch (T &e)`: no argument of any call
                elif plist is not None:
                    params = [c for c in plist.named_children if c.type in _PARAMETERS]
                    var.index = next((i for i, p in enumerate(params) if p == parent), -1)
                self._declared_type(parent, var)
                return
            if t == "init_declarator" and parent.child_by_field_name("declarator") == child:
                var.kind = "local"
                var.is_array = _is_array(parent.child_by_field_name("declarator"))
                value = parent.child_by_field_name("value")
                if value is not None:
                    var.values.append(value)
                var.defs.append(parent)
                decl = parent.parent
                if decl is not None and decl.type == "declaration":
                    self._declared_type(decl, var)
                return
            if t == "declaration" and child != parent.child_by_field_name("type"):
                var.kind = "local"
                var.defs.append(parent)
                self._declared_type(parent, var)
                return
        if child is not node:
            return
        if t == "pointer_expression" and parent.parent is not None:
            args = parent.parent
            call = args.parent
            if (
                args.type != "argument_list"
                or call is None
                or call.type != "call_expression"
                or (callee := call.child_by_field_name("function")) is None
            ):
                return
            if callee.text in _ZEROING and _args(call)[:1] == [parent]:
                # memset(&var, 0, sizeof(var)) zeroes every field from here on.
                var.defs.append(call)
            elif callee.type != "identifier" or callee.text not in _NOT_WRITING:
                # sscanf(s, "%li", &off): the callee may store anything there.
                var.escapes.append(parent)
            return
        if t == "assignment_expression" and parent.child_by_field_name("left") == node:
            right = parent.child_by_field_name("right")
            if right is not None:
                var.values.append(right)
            return
        if t == "subscript_expression" and parent.child_by_field_name("argument") == node:
            outer = parent.parent
            if (
                outer is not None
                and outer.type == "assignment_expression"
                and outer.child_by_field_name("left") == parent
            ):
                right = outer.child_by_field_name("right")
                if right is not None:
                    var.values.append(right)
            return
        if t == "field_expression" and parent.child_by_field_name("argument") == node:
            outer = parent.parent
            fname = parent.child_by_field_name("field")
            if (
                outer is not None
                and fname is not None
                and outer.type == "assignment_expression"
                and outer.child_by_field_name("left") == parent
            ):
                right = outer.child_by_field_name("right")
                if right is not None:
                    var.fields.setdefault(fname.text.decode(), []).append(right)
            return
        if t == "argument_list":
            call = parent.parent
            if call is None or call.type != "call_expression":
                return
            callee = call.child_by_field_name("function")
            callee_name = (
                callee.text.decode() if callee is not None and callee.type == "identifier" else ""
            )
            args = _args(call)
            if (
                callee_name in _OPTS_MACROS
                and len(args) >= 2
                and args[1] == node
                and not is_global_store
            ):
                var.kind = "local"
                var.opts_type = args[0].text.decode()
                var.defs.append(call)
                for arg in args[2:]:
                    if arg.type == "assignment_expression":
                        left = arg.child_by_field_name("left")
                        right = arg.child_by_field_name("right")
                        if left is not None and right is not None and left.type == "identifier":
                            var.fields.setdefault(left.text.decode(), []).append(right)
            elif (
                callee_name == "bpf_object__for_each_program" and len(args) >= 2 and args[0] == node
            ):
                var.for_each.append(args[1])

    def _declared_type(self, decl: Node, var: _Var) -> None:
        name = _type_name(decl)
        if name:
            var.types.add(name)
        order = _anonymous_fields(decl)
        if order:
            var.field_order = order

    def lookup(self, fn: Node | None, name: str) -> tuple[Node | None, _Var]:
        """The scope that declares `name` as seen from `fn`, and what it says; from a C++
        lambda, the functions it is written in come next."""
        while fn is not None:
            local = self.var(fn, name)
            if local.kind != "none":
                return fn, local
            fn = self.function_of(fn) if fn.type == "lambda_expression" else None
        return None, self.var(None, name)

    # -- control flow ----------------------------------------------------------------------

    def flow(self, fn: Node) -> Flow:
        found = self._flows.get(fn.start_byte)
        if found is None:
            found = self._flows[fn.start_byte] = Flow(fn)
        return found

    def reaching(
        self,
        stores: list[Node],
        defs: list[Node],
        use: Node,
        incoming: bool = False,
    ) -> tuple[list[Node], bool]:
        """Of the stored values `stores` (right-hand sides, initialisers) of one variable or
        field, those whose store reaches `use` in its function's control flow, and whether
        the value it had when that function was entered does (`incoming`: a parameter, a
        global). `defs` are statements that overwrite the whole variable. Stores outside the
        function of `use` are incoming values: they count when the incoming value does."""
        if not stores and not (incoming and defs):
            return [], incoming
        fn = self.function_of(use)
        if fn is None:
            return list(stores), incoming
        start, end = fn.start_byte, fn.end_byte
        if not any(start <= n.start_byte < end for n in stores) and not any(
            start <= n.start_byte < end for n in defs
        ):
            return list(stores), incoming  # nothing in this function can overwrite them
        flow = self.flow(fn)
        target = flow.point(use)
        if target is None:
            return list(stores), incoming
        inside = [n for n in stores if fn.start_byte <= n.start_byte < fn.end_byte]
        inside_keys = {(n.start_byte, n.end_byte) for n in inside}
        kills: set[int] = set()
        for node in defs:
            if fn.start_byte <= node.start_byte < fn.end_byte:
                point = flow.point(node)
                if point is not None:
                    kills.add(point)
        points: dict[int, int | None] = {}
        for node in inside:
            point = points[node.start_byte] = flow.point(node)
            store = node.parent
            if point is not None and store is not None and _overwrites(store, flow, point):
                kills.add(point)
        killed = frozenset(kills)
        entered = flow.reaches(ENTRY, target, killed)
        kept = []
        for node in stores:
            if (node.start_byte, node.end_byte) not in inside_keys:
                if entered:
                    kept.append(node)
                continue
            point = points[node.start_byte]
            if point is None:
                kept.append(node)
            elif point == target:
                # One statement: the store counts only if it is written (so evaluated)
                # before the use and does not contain it (`x = f(x)` stores after reading),
                # or if a loop brings control back to the statement.
                store = node.parent
                before = store is not None and store.end_byte <= use.start_byte
                if before or flow.reaches(point, target, killed - {point}):
                    kept.append(node)
            elif flow.reaches(point, target, killed - {point}):
                kept.append(node)
        return kept, incoming and entered

    def use_points(self, scope: Node, call: Node, fn: Node | None, ctx: Ctx) -> list[Node] | None:
        """Where, in `scope`, the attach call `call` (in `fn`) happens: the call itself, or
        the call in `scope` that leads to `fn` (from the context, else every such call within
        a few levels). None when no call in `scope` leads there: the order is unknown."""
        if fn is not None and fn.start_byte == scope.start_byte:
            return [call]
        frame = ctx
        while frame is not None:
            site, caller, frame = frame
            if caller is not None and caller.start_byte == scope.start_byte:
                return [site]
        found: list[Node] = []
        names = {self.function_name(fn)} - {None}
        for _ in range(_MAX_CALL_DEPTH):
            following: set[str] = set()
            for name in names:
                for site in self.calls_to(name) or ():
                    caller = self.function_of(site)
                    if caller is None:
                        continue
                    if caller.start_byte == scope.start_byte:
                        found.append(site)
                    else:
                        following.add(self.function_name(caller) or "")
            names = following - {""}
            if found or not names:
                break
        return found or None

    def calls_to(self, name: str) -> list[Node] | None:
        """Every call of the file's function `name`; None when its address escapes (a table
        of tests, a callback): then some callers are unknown."""
        if name in self._calls:
            return self._calls[name]
        calls: list[Node] = []
        escapes = False
        for m in re.finditer(rb"\b" + re.escape(name.encode()) + rb"\b", self.data):
            node = self.root.descendant_for_byte_range(m.start(), m.end())
            if self.cpp and node is not None:
                # `this->f(...)`, `Loader::f(...)`: calls; `obj.f(...)` may be another
                # class's f, and a C++ name can be taken in more ways than C's: unknown.
                kind = self._cpp_use(node)
                if kind == "call":
                    calls.append(node.parent.parent)  # type: ignore[union-attr]
                elif kind == "escape":
                    escapes = True
                if kind is not None:
                    continue
            if node is None or node.type != "identifier":
                continue
            parent = node.parent
            if (
                parent is not None
                and parent.type == "call_expression"
                and parent.child_by_field_name("function") == node
            ):
                calls.append(parent)
            elif parent is not None and parent.type != "function_declarator":
                escapes = True
        result = None if escapes else calls
        self._calls[name] = result
        return result

    @staticmethod
    def _cpp_use(node: Node) -> str | None:
        """How C++ code uses the name `node` when C's reading cannot tell: "call" (the node's
        grandparent is the call), "definition", "escape"; None for C's own cases."""
        parent = node.parent
        if parent is None:
            return None
        if node.type == "field_identifier" and parent.type == "field_expression":
            holder = parent.parent
            if holder is None or holder.type != "call_expression":
                return "definition"  # a field read, as C takes it
            base = parent.child_by_field_name("argument")
            if holder.child_by_field_name("function") == parent and base is not None:
                return "call" if base.type == "this" else "escape"
            return "escape"
        if node.type == "identifier" and parent.type == "qualified_identifier":
            holder = parent.parent
            if holder is not None and holder.type == "function_declarator":
                return "definition"
            if (
                holder is not None
                and holder.type == "call_expression"
                and (holder.child_by_field_name("function") == parent)
            ):
                return "call"
            return "escape"
        return None

    def defines(self) -> dict[str, str]:
        """Object-like macros: the file's own #defines, over the command line's."""
        if self._defines is None:
            found: dict[str, str] = {}
            for m in re.finditer(
                rb"(?m)^[ \t]*#[ \t]*define[ \t]+(\w+)\b(?!\()[ \t]*((?:[^\n\\]|\\\n)*)",
                self.data,
            ):
                node = self.root.descendant_for_byte_range(m.start(1), m.end(1))
                if node is not None and node.type == "comment":
                    continue
                found.setdefault(m.group(1).decode(), m.group(2).decode("utf-8", "replace"))
            self._defines = {**self.command_line, **found}
        return self._defines

    def function_macros(self) -> dict[str, tuple[str, str]]:
        """Function-like macros of the file: name -> (parameters, body)."""
        if self._macros is None:
            found: dict[str, tuple[str, str]] = {}
            for m in re.finditer(
                rb"(?m)^[ \t]*#[ \t]*define[ \t]+(\w+)\(([^)]*)\)[ \t]*((?:[^\n\\]|\\\n)*)",
                self.data,
            ):
                found.setdefault(
                    m.group(1).decode(),
                    (m.group(2).decode("utf-8", "replace"), m.group(3).decode("utf-8", "replace")),
                )
            self._macros = found
        return self._macros

    def field_types(self, name: str) -> set[str]:
        """Types of struct fields called `name` anywhere in the file (`struct x_skel *skel;`)."""
        found = self._field_types.get(name)
        if found is not None:
            return found
        found = set()
        for m in re.finditer(rb"\b" + re.escape(name.encode()) + rb"\b", self.data):
            node = self.root.descendant_for_byte_range(m.start(), m.end())
            if node is None or node.type != "field_identifier":
                continue
            parent = node.parent
            while parent is not None and parent.type in _DECLARATOR_WRAPPERS:
                parent = parent.parent
            if parent is not None and parent.type == "field_declaration":
                t = _type_name(parent)
                if t:
                    found.add(t)
        self._field_types[name] = found
        return found

    # -- values --------------------------------------------------------------------------

    def eval(self, node: Node | None, fn: Node | None, ctx: Ctx = None) -> frozenset:
        if node is None:
            return frozenset()
        key = (node.start_byte, node.end_byte, node.kind_id, ctx, self._rows_key)
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        if key in self._active or self._depth > _MAX_DEPTH:
            return frozenset()
        self._active.add(key)
        self._depth += 1
        try:
            result = self._eval(node, fn, ctx)
        finally:
            self._depth -= 1
            self._active.discard(key)
        if len(result) > _MAX_VALUES:
            result = frozenset(list(result)[:_MAX_VALUES])
        self._memo[key] = result
        return result

    def _unknown(self, node: Node) -> frozenset:
        return frozenset({("unknown", node.start_byte, node.end_byte)})

    def _eval(self, node: Node, fn: Node | None, ctx: Ctx = None) -> frozenset:
        t = node.type
        if t == "identifier" or (t == "type_identifier" and self.cpp and _in_macro_loop(node)):
            return self._eval_identifier(node, fn, ctx)
        if t == "number_literal":
            text = node.text.decode()
            value = _int_value(text.replace("'", "") if self.cpp else text)  # C++ 1'000
            if value is None:
                return self._unknown(node)
            return frozenset({("int", value, node.start_byte, node.end_byte)})
        if t in ("string_literal", "concatenated_string"):
            text = self._string(node)
            if text is None:
                return self._unknown(node)
            return frozenset({("str", text, node.start_byte, node.end_byte)})
        if t == "null":
            return frozenset({("null", node.start_byte, node.end_byte)})
        if t in ("true", "false"):
            return frozenset({("int", int(t == "true"), node.start_byte, node.end_byte)})
        if t in ("parenthesized_expression", "pointer_expression"):
            inner = node.named_children
            return self.eval(inner[-1], fn, ctx) if inner else self._unknown(node)
        if t == "cast_expression":
            return self.eval(node.child_by_field_name("value"), fn, ctx)
        if t == "conditional_expression":
            return self.eval(node.child_by_field_name("consequence"), fn, ctx) | self.eval(
                node.child_by_field_name("alternative"), fn
            )
        if t in ("comma_expression", "assignment_expression"):
            return self.eval(node.child_by_field_name("right"), fn, ctx)
        if t == "binary_expression":
            return self._eval_binary(node, fn, ctx)
        if t == "call_expression":
            return self._eval_call(node, fn, ctx)
        if t == "field_expression":
            return self._eval_field(node, fn, ctx)
        if t == "subscript_expression":
            rows = self.rows(node, fn, ctx)
            if rows is None:
                return self.eval(node.child_by_field_name("argument"), fn, ctx)
            out: set = set()
            for row, _, row_scope, row_ctx in rows:
                out |= self.eval(row, row_scope, row_ctx)
            return frozenset(out)
        if t == "initializer_list":
            out = set()
            for child in node.named_children:
                if child.type != "comment":
                    out |= self.eval(child, fn, ctx)
            return frozenset(out)
        if t == "initializer_pair":
            return self.eval(node.child_by_field_name("value"), fn, ctx)
        if t == "argument_list" and self.cpp:
            # C++ direct initialisation, `T x(v)`: a copy of v; a smart pointer holds its
            # first argument (`std::unique_ptr<T, D> p(T::open(), &T::destroy)`).
            args = [c for c in node.named_children if c.type != "comment"]
            decl = node.parent.parent if node.parent is not None else None
            kind = decl.child_by_field_name("type") if decl is not None else None
            held = kind is not None and decl.type == "declaration" and _held_type(kind) is not None
            if len(args) == 1 or (args and held):
                return self.eval(args[0], fn, ctx)
        return self._unknown(node)

    def _string(self, node: Node) -> str | None:
        if node.type == "string_literal":
            return decode_literal(node.text.decode("utf-8", "replace"))
        parts = []
        for child in node.named_children:
            if child.type != "string_literal":
                return None
            value = decode_literal(child.text.decode("utf-8", "replace"))
            if value is None:
                return None
            parts.append(value)
        return "".join(parts)

    def _eval_binary(self, node: Node, fn: Node | None, ctx: Ctx = None) -> frozenset:
        op = node.child_by_field_name("operator")
        left = self.eval(node.child_by_field_name("left"), fn, ctx)
        right = self.eval(node.child_by_field_name("right"), fn, ctx)
        if op is not None and op.type == "|":
            return left | right  # flags: every bit named on either side
        entries = {v for v in left | right if v[0] == "skelprogs"}
        if entries and op is not None and op.type in ("+", "-"):
            return frozenset(entries)  # `progs + i`: an entry of the skeleton's programs
        ints_l = [v for v in left if v[0] == "int"]
        ints_r = [v for v in right if v[0] == "int"]
        if op is not None and len(ints_l) == len(left) == 1 and len(ints_r) == len(right) == 1:
            a, b = ints_l[0][1], ints_r[0][1]
            ops = {"+": a + b, "-": a - b, "*": a * b, "<<": a << b if 0 <= b < 64 else None}
            value = ops.get(op.type)
            if value is not None:
                return frozenset({("int", value, node.start_byte, node.end_byte)})
        return self._unknown(node)

    def _eval_identifier(self, node: Node, fn: Node | None, ctx: Ctx = None) -> frozenset:
        name = node.text.decode()
        scope, var = self.lookup(fn, name)
        member: set = set()
        if self.cpp and scope is None and var.kind == "none":
            # A C++ class member used without `this->`: its declared type.
            member = {("skel", s) for t in self.field_types(name) if (s := self.skeleton_type(t))}
        if (
            var.kind == "none" and not var.values and not var.fields and not var.for_each
            and not member
        ):  # fmt: skip
            return self._eval_symbol(name, node)
        out: set = set(member)
        for type_name in var.types:
            skeleton = self.skeleton_type(type_name)
            if skeleton is not None:
                out.add(("skel", skeleton))
            elif type_name in OPTS_TYPES:
                out.add(("opts", self._scope_key(scope), name))
        if var.opts_type in OPTS_TYPES:
            out.add(("opts", self._scope_key(scope), name))
        scope_ctx = ctx if scope is fn else None
        out = {("opts", v[1], v[2], scope_ctx) if v[0] == "opts" else v for v in out}
        # Only the stores that reach this use in the control flow; a parameter's (or a
        # global's) incoming value only if no store overwrites it on the way.
        values, incoming = self.reaching(var.values, var.defs, node, incoming=True)
        for value in values:
            out |= self.eval(value, scope, scope_ctx)
        if var.escapes and not var.types & OPTS_TYPES and var.opts_type not in OPTS_TYPES:
            # Its address went to a call before this use: a value only known at run time.
            stored = [
                v.parent for v in var.values
                if v.parent is not None and v.parent.type in _STORES
            ]  # fmt: skip
            for escape in self.reaching(var.escapes, var.defs + stored, node)[0]:
                out.add(("unknown", escape.start_byte, escape.end_byte))
        for obj in self.reaching(var.for_each, [], node)[0]:
            for owner in self.owners(self.eval(obj, scope, scope_ctx)):
                out.add(("prog", owner, None))
        if var.kind == "param" and scope is not None and incoming:
            out |= self._param_values(scope, var.index, node, scope_ctx)
        if not out:
            return self._unknown(node)
        return frozenset(out)

    def _param_values(self, fn: Node, index: int, node: Node, ctx: Ctx) -> frozenset:
        """A parameter's values: the argument of the call we came through (`ctx`), else the
        arguments of every call of the function in the file."""
        if ctx is not None:
            call, caller, caller_ctx = ctx
            args = _args(call)
            if self.cpp and len(args) <= index:  # C++: left out, its default
                return self._default_value(fn, index, node)
            return (
                self.eval(args[index], caller, caller_ctx)
                if 0 <= index < len(args)
                else self._unknown(node)
            )
        name = self.function_name(fn)
        calls = self.calls_into(fn, name) if name else None
        if index < 0 or not calls:
            return self._unknown(node)
        out: set = set()
        for call in calls:
            args = _args(call)
            if index < len(args):
                out |= self.eval(args[index], self.function_of(call))
            elif self.cpp:
                out |= self._default_value(fn, index, node)
        return frozenset(out)

    def calls_into(self, fn: Node, name: str) -> list[Node] | None:
        """`calls_to(name)` that may enter `fn`: in C++, where a name may have overloads,
        only the calls whose argument count `fn` takes."""
        calls = self.calls_to(name)
        if not self.cpp or calls is None:
            return calls
        out = []
        for call in calls:
            count = len(_args(call))
            if self._takes(fn, count) is not False:
                out.append(call)
            elif count < len(self._parameters(fn) or ()) and not any(
                self._takes(other, count) for other in self.functions().get(name, ()) if other != fn
            ):
                out.append(call)  # no overload takes it: the defaults are declared elsewhere
        return out

    def _takes(self, fn: Node, count: int) -> bool | None:
        """Whether `fn` takes `count` arguments (its own defaults counted); None: any."""
        params = self._parameters(fn)
        if params is None:
            return None
        least = sum(1 for p in params if p.type == "parameter_declaration")
        return least <= count <= len(params)

    @staticmethod
    def _parameters(fn: Node) -> list[Node] | None:
        """The parameter declarations of a function; None when it takes any number of
        arguments (`...`) or has no parameter list in view."""
        decl = fn.child_by_field_name("declarator")
        while decl is not None and decl.type not in (
            "function_declarator",
            "abstract_function_declarator",
        ):
            decl = decl.child_by_field_name("declarator")
        params = decl.child_by_field_name("parameters") if decl is not None else None
        if params is None or any(c.type == "..." or "variadic" in c.type for c in params.children):
            return None
        named = [c for c in params.named_children if c.type in _PARAMETERS]
        if len(named) == 1 and named[0].text.strip() == b"void":
            return []
        return named

    def _default_value(self, fn: Node, index: int, node: Node) -> frozenset:
        """C++: the default of parameter `index` of `fn`, for a call that leaves it out;
        "undecided" when the definition has none (the declaration in a header has it)."""
        params = self._parameters(fn) or []
        if index < len(params):
            default = params[index].child_by_field_name("default_value")
            if default is not None:
                return self.eval(default, fn)
            return frozenset({("undecided", node.start_byte, node.end_byte)})
        return self._unknown(node)

    def _eval_symbol(self, name: str, node: Node) -> frozenset:
        if name in ("NULL", "nullptr"):
            return frozenset({("null", node.start_byte, node.end_byte)})
        text = self.defines().get(name)
        if text is not None:
            return self._eval_define_text(text, node)
        enum_value = self._enum_value(name)
        if enum_value is not None:
            return frozenset({("int", enum_value, node.start_byte, node.end_byte)})
        return frozenset({("sym", name, node.start_byte, node.end_byte)})

    def _eval_define_text(self, text: str, node: Node) -> frozenset:
        text = re.sub(r"/\*.*?\*/|//.*", "", text).strip()
        while text.startswith("(") and text.endswith(")"):
            text = text[1:-1].strip()
        value = _int_value(text)
        if value is not None:
            return frozenset({("int", value, node.start_byte, node.end_byte)})
        if re.fullmatch(r'"(?:[^"\\]|\\.)*"(?:\s*"(?:[^"\\]|\\.)*")*', text):
            parts = re.findall(r'"(?:[^"\\]|\\.)*"', text)
            decoded = [decode_literal(p) for p in parts]
            if all(d is not None for d in decoded):
                return frozenset({("str", "".join(decoded), node.start_byte, node.end_byte)})
        if re.fullmatch(r"[A-Za-z_]\w*", text):
            if text in self.defines() and self._depth < _MAX_DEPTH:
                self._depth += 1
                try:
                    return self._eval_symbol(text, node)
                finally:
                    self._depth -= 1
            return self._eval_symbol_no_define(text, node)
        return self._unknown(node)

    def _eval_symbol_no_define(self, name: str, node: Node) -> frozenset:
        if name in ("NULL", "nullptr"):
            return frozenset({("null", node.start_byte, node.end_byte)})
        enum_value = self._enum_value(name)
        if enum_value is not None:
            return frozenset({("int", enum_value, node.start_byte, node.end_byte)})
        return frozenset({("sym", name, node.start_byte, node.end_byte)})

    def _enum_value(self, name: str) -> int | None:
        """The value of the file's own enumerator `name`, if the file defines one."""
        if name not in self._enums:
            self._enums[name] = self._find_enum_value(name)
        return self._enums[name]

    def _find_enum_value(self, name: str) -> int | None:
        if b"enum" not in self.data:
            return None
        for m in re.finditer(rb"\b" + re.escape(name.encode()) + rb"\b", self.data):
            node = self.root.descendant_for_byte_range(m.start(), m.end())
            if node is None or node.type != "identifier" or node.parent is None:
                continue
            enumerator = node.parent
            if enumerator.type != "enumerator" or enumerator.child_by_field_name("name") != node:
                continue
            return self._enumerator_value(enumerator)
        return None

    def _enumerator_value(self, enumerator: Node) -> int | None:
        value = enumerator.child_by_field_name("value")
        if value is not None:
            return _int_value(value.text.decode())
        previous = enumerator.prev_named_sibling
        while previous is not None and previous.type != "enumerator":
            previous = previous.prev_named_sibling
        if previous is None:
            return 0
        before = self._enumerator_value(previous)
        return None if before is None else before + 1

    def owners(self, values: frozenset) -> set[tuple]:
        out = set()
        for v in values:
            if v[0] == "skel":
                out.add(("skel", v[1]))
            elif v[0] == "obj":
                out.add(("obj", v[1]))
        return out

    @staticmethod
    def strings(values: frozenset) -> list[str]:
        return [v[1] for v in values if v[0] == "str"]

    @staticmethod
    def programs(values: frozenset) -> set[tuple]:
        out = set()
        for v in values:
            if v[0] == "prog":
                out.add(v)
            elif v[0] in ("link", "fd", "progfd"):
                out.add(v[1])
        return out

    def _eval_call(self, node: Node, fn: Node | None, ctx: Ctx = None) -> frozenset:
        callee = node.child_by_field_name("function")
        if self.cpp and callee is not None and callee.type != "identifier":
            if callee.type == "qualified_identifier" and callee.text in _STD_FINDS and _args(node):
                # std::find_if(first, last, pred) gives an iterator into [first, last)
                return self.eval(_args(node)[0], fn, ctx)
            found = self._eval_cpp_call(node, callee, fn, ctx)
            if found is not None:
                return found
            callee = _global_name(callee) or callee  # `::bpf_object__open_file(...)`
        if callee is not None and callee.type == "call_expression":
            # `___apply(SKEL_NAME, __open_and_load)()`: the skeleton's open, pasted
            pasted = _PASTED_OPEN.search(callee.text.decode("utf-8", "replace"))
            if pasted is not None:
                skeleton = self.resolve_name(pasted.group(1))
                if skeleton is not None and skeleton not in LIBBPF_OBJECTS:
                    return frozenset({("skel", skeleton)})
        if callee is None or callee.type != "identifier":
            return self._unknown(node)
        name = callee.text.decode()
        args = _args(node)
        macro = self.function_macros().get(name)
        if macro is not None:
            pasted = _PASTED_OPEN.search(macro[1])
            if pasted is not None:  # SKEL_OPEN() -> ___apply(SKEL_NAME, __open)()
                skeleton = self.resolve_name(pasted.group(1))
                if skeleton is not None and skeleton not in LIBBPF_OBJECTS:
                    return frozenset({("skel", skeleton)})
        skel = re.fullmatch(r"(\w+?)__(open_and_load|open_opts|open)", name)
        if skel and skel.group(1) not in LIBBPF_OBJECTS:
            return frozenset({("skel", skel.group(1))})
        if name in ("bpf_object__open_file", "bpf_object__open") and args:
            paths = self.strings(self.eval(args[0], fn, ctx))
            for p in paths:
                self.objects.add(p)
            return frozenset({("obj", p) for p in paths} or {("obj", None)})
        if name == "bpf_object__find_program_by_name" and len(args) >= 2:
            owners = self.owners(self.eval(args[0], fn, ctx)) or {("unknown",)}
            names = self.strings(self.eval(args[1], fn, ctx))
            if not names:
                # A name known only at run time (argv, a config) on a known object: any
                # program of it, as bpf_object__next_program() gives.
                known = frozenset(("prog", o, None) for o in owners if o[0] != "unknown")
                return known or self._unknown(node)
            return frozenset(("prog", o, n) for o in owners for n in names)
        if name == "bpf_object__next_program" and args:
            owners = self.owners(self.eval(args[0], fn, ctx)) or {("unknown",)}
            return frozenset(("prog", o, None) for o in owners)
        if name.startswith("bpf_program__attach") and args:
            progs = self.programs(self.eval(args[0], fn, ctx))
            return frozenset(("link", p) for p in progs) or self._unknown(node)
        if name == "bpf_link__fd" and args:
            progs = {v[1] for v in self.eval(args[0], fn, ctx) if v[0] == "link"}
            return frozenset(("fd", p) for p in progs) or self._unknown(node)
        if name == "bpf_program__fd" and args:
            progs = {v for v in self.eval(args[0], fn, ctx) if v[0] == "prog"}
            return frozenset(("progfd", p) for p in progs) or self._unknown(node)
        if name == "bpf_object__find_program_by_name":
            return self._unknown(node)
        helpers = self.functions().get(name)
        if helpers:
            out: set = set()
            for helper in helpers:
                # The helper's parameters are this call's arguments.
                out |= self._returns(helper, (node, fn, ctx))
            return frozenset(out) or self._unknown(node)
        return self._unknown(node)

    def _eval_cpp_call(
        self, node: Node, callee: Node, fn: Node | None, ctx: Ctx
    ) -> frozenset | None:
        """The C++ calls C has no syntax for: a cast, a skeleton's static member
        (`probe_bpf::open_and_load()`), a member function of the file (`this->attach(p)`,
        `Loader::attach(p)`). None for the others (a `::f()` is read as `f()`)."""
        args = _args(node)
        if callee.type == "template_function":
            name = callee.child_by_field_name("name")
            if name is not None and name.text.decode() in _CASTS and len(args) == 1:
                return self.eval(args[0], fn, ctx)
            return None
        if callee.type == "qualified_identifier":
            scope = callee.child_by_field_name("scope")
            name = callee.child_by_field_name("name")
            if scope is None or name is None or name.type != "identifier":
                return None
            owner = scope.text.decode()
            if name.text in (b"open", b"open_and_load") and owner in self.skeletons:
                return frozenset({("skel", owner)})
            helpers = self.functions().get(name.text.decode())
        elif callee.type == "field_expression":
            base = callee.child_by_field_name("argument")
            name = callee.child_by_field_name("field")
            if base is None or base.type != "this" or name is None:
                return None
            helpers = self.functions().get(name.text.decode())
        else:
            return None
        out: set = set()
        for helper in helpers or ():
            out |= self._returns(helper, (node, fn, ctx))
        return frozenset(out) or self._unknown(node)

    def _returns(self, fn: Node, ctx: Ctx) -> frozenset:
        out: set = set()
        for m in _RETURN.finditer(self.data, fn.start_byte, fn.end_byte):
            node = self.root.descendant_for_byte_range(m.start(), m.end())
            if node is None or node.type != "return" or node.parent is None:
                continue
            stmt = node.parent
            if stmt.type != "return_statement":
                continue
            for value in stmt.named_children:
                if value.type != "comment":
                    out |= self.eval(value, fn, ctx)
        return frozenset(out)

    def _eval_field(self, node: Node, fn: Node | None, ctx: Ctx = None) -> frozenset:
        field_node = node.child_by_field_name("field")
        base = node.child_by_field_name("argument")
        if field_node is None or base is None:
            return self._unknown(node)
        name = field_node.text.decode()
        if self.cpp and base.type == "this":
            return self._eval_identifier(field_node, None)  # `this->x` is the member x
        if base.type == "field_expression":
            inner_field = base.child_by_field_name("field")
            inner = inner_field.text.decode() if inner_field is not None else ""
            if inner in ("progs", "links"):
                holder = base.child_by_field_name("argument")
                owners = self.owners(self.eval(holder, fn, ctx))
                if not owners and holder is not None:
                    # By shape: whatever `progs.NAME` hangs off is a skeleton, named by its
                    # declared type (a build-time macro resolved through -D flags).
                    for type_name in self.declared_types(holder, fn):
                        skeleton = self.resolve_name(type_name)
                        if skeleton is not None and skeleton not in LIBBPF_OBJECTS:
                            self.skeletons.add(skeleton)
                            owners.add(("skel", skeleton))
                owners = owners or {("unknown",)}
                progs = {("prog", o, name) for o in owners}
                if inner == "progs":
                    return frozenset(progs)
                return frozenset(("link", p) for p in progs)
        out: set = set()
        if name == "obj":  # skel->obj is the skeleton's bpf_object
            out |= {v for v in self.eval(base, fn, ctx) if v[0] in ("skel", "obj")}
        if name == "progs" and base.type == "field_expression":
            # bpftool's skeleton keeps its bpf_object_skeleton in `skel->skeleton`; its
            # `progs` array (libbpf.h struct bpf_prog_skeleton) holds every program
            inner_field = base.child_by_field_name("field")
            if inner_field is not None and inner_field.text == b"skeleton":
                holder = base.child_by_field_name("argument")
                owners = self.owners(self.eval(holder, fn, ctx)) if holder is not None else set()
                out |= {("skelprogs", o) for o in owners if o[0] == "skel"}
        if name in ("prog", "link"):
            # `*entry->prog` / `*entry->link` of a bpf_prog_skeleton: any program of it
            entries = {v[1] for v in self.eval(base, fn, ctx) if v[0] == "skelprogs"}
            progs = {("prog", o, None) for o in entries}
            out |= progs if name == "prog" else {("link", p) for p in progs}
        for type_name in self.field_types(name):
            skeleton = self.skeleton_type(type_name)
            if skeleton is not None:
                out.add(("skel", skeleton))
        out |= self._table_field(base, name, fn, ctx)
        return frozenset(out) or self._unknown(node)

    def skeleton_type(self, type_name: str) -> str | None:
        """The skeleton a declared type names: `struct probe` when the file uses skeleton
        `probe`, `struct SKEL_NAME` when SKEL_NAME is defined as one."""
        if type_name in self.skeletons:
            return type_name
        resolved = self.resolve_name(type_name) if type_name in self.defines() else None
        return resolved if resolved is not None and resolved in self.skeletons else None

    def declared_types(self, node: Node, fn: Node | None) -> set[str]:
        """The struct types an expression is declared with: a variable's, a field's (any
        struct field of that name in the file), an array's elements'."""
        while node.type in (
            "parenthesized_expression",
            "pointer_expression",
            "subscript_expression",
        ):
            inner = node.child_by_field_name("argument")
            if inner is None:
                inner = node.named_children[-1] if node.named_children else None
            if inner is None:
                return set()
            node = inner
        if node.type == "identifier":
            scope, var = self.lookup(fn, node.text.decode())
            if self.cpp and scope is None and not var.types:
                return self.field_types(node.text.decode())  # a class member's
            return set(var.types)
        if node.type == "field_expression":
            field_node = node.child_by_field_name("field")
            return self.field_types(field_node.text.decode()) if field_node is not None else set()
        return set()

    def _table_field(self, base: Node, name: str, fn: Node | None, ctx: Ctx = None) -> frozenset:
        """`tests[i].name`, `t->name` (t = &tests[i], t = tests) where `tests` is a table
        initialised in the file, and `s.name` stored or initialised in the function."""
        out: set = set()
        rows = self.rows(base, fn, ctx)
        for row, table, row_scope, row_ctx in rows or ():
            picked = self._row_field(row, name, table)
            if picked is not None:
                out |= self.eval(picked, row_scope, row_ctx)
            elif self._row_omits(row, name, table):
                # A field a row's initialiser leaves out is zero.
                out.add(("int", 0, row.start_byte, row.end_byte))
        while base.type in ("pointer_expression", "parenthesized_expression"):
            inner = base.child_by_field_name("argument")
            if inner is None:
                inner = base.named_children[0] if base.named_children else None
            if inner is None:
                return frozenset(out)
            base = inner
        if base.type != "identifier":
            return frozenset(out)
        scope, var = self.lookup(fn, base.text.decode())
        ctx = ctx if scope is fn else None
        stores, _ = self.reaching(var.fields.get(name, []), var.defs, base)
        for value in stores:
            out |= self.eval(value, scope, ctx)
        if rows is None:
            # A struct variable (not a table): its initialiser's `.name = X`.
            initial, _ = self.reaching(var.values, var.defs, base)
            for value in initial:
                if value.type == "initializer_list":
                    picked = self._row_field(value, name, var)
                    if picked is not None:
                        out |= self.eval(picked, scope, ctx)
        return frozenset(out)

    def _row_field(self, row: Node, name: str, table: _Var) -> Node | None:
        """The value of field `name` in one initializer row: designated, or by position in
        the table's struct type."""
        if row.type != "initializer_list":
            return None
        items = [c for c in row.named_children if c.type != "comment"]
        picked = None
        for item in items:
            if item.type == "initializer_pair":
                designator = item.child_by_field_name("designator")
                if designator is not None and designator.text.decode().lstrip(".").strip() == name:
                    picked = item.child_by_field_name("value")
        if picked is not None:
            return picked
        order = table.field_order or self.struct_fields(table.types)
        if name in order:
            index = order.index(name)
            if index < len(items) and items[index].type != "initializer_pair":
                return items[index]
        return None

    def _row_omits(self, row: Node, name: str, table: _Var) -> bool:
        """Whether the row initialiser certainly leaves field `name` out: every item is
        designated (and none is `name`), or the struct's fields are known and the row
        stops before `name`."""
        if row.type != "initializer_list":
            return False
        items = [c for c in row.named_children if c.type != "comment"]
        if items and all(i.type == "initializer_pair" for i in items):
            return True
        order = table.field_order or self.struct_fields(table.types)
        return name in order and order.index(name) >= len(items)

    def struct_fields(self, types: set[str]) -> tuple[str, ...]:
        """The field names, in order, of the first of `types` the file defines as a struct."""
        for name in sorted(types):
            found = self._struct_fields.get(name)
            if found is None:
                found = ()
                pattern = rb"\bstruct\s+" + re.escape(name.encode()) + rb"\s*\{"
                for m in re.finditer(pattern, self.data):
                    node = self.root.descendant_for_byte_range(m.start(), m.start() + 6)
                    while node is not None and node.type != "struct_specifier":
                        node = node.parent
                    if node is not None and node.child_by_field_name("body") is not None:
                        holder = node.parent
                        if holder is not None:
                            found = _anonymous_fields(holder) or _struct_fields(node)
                        break
                self._struct_fields[name] = found
            if found:
                return found
        return ()

    # -- table rows ----------------------------------------------------------------------

    def rows(
        self, node: Node, fn: Node | None, ctx: Ctx, depth: int = 0
    ) -> list[tuple[Node, _Var, Node | None, Ctx]] | None:
        """The elements of a table initialised in the file that `node` may denote (`T[i]`,
        `&T[i]`, `*p` and `p->` with p = &T[i], T + i or T), each with the table and the
        scope to evaluate it in; None when `node` is not such an element. While a row is
        being followed (`row_bindings`), only that row."""
        if depth > 4:
            return None
        t = node.type
        if t == "parenthesized_expression":
            inner = node.named_children
            return self.rows(inner[-1], fn, ctx, depth + 1) if inner else None
        if t == "subscript_expression":
            table = node.child_by_field_name("argument")
            index = node.child_by_field_name("index")
            if index is None and self.cpp:  # C++ names the `[i]` part `indices`
                indices = node.child_by_field_name("indices")
                named = indices.named_children if indices is not None else []
                index = named[0] if len(named) == 1 else None
            if table is None or table.type != "identifier":
                return None
            return self._table_rows(table, _text(index), fn, ctx)
        if t == "pointer_expression":
            inner = node.child_by_field_name("argument")
            return self.rows(inner, fn, ctx, depth + 1) if inner is not None else None
        if t == "binary_expression":
            left = node.child_by_field_name("left")
            op = node.child_by_field_name("operator")
            if left is not None and left.type == "identifier" and op is not None and op.type == "+":
                return self._table_rows(left, _text(node.child_by_field_name("right")), fn, ctx)
            return None
        if t != "identifier":
            return None
        direct = self._table_rows(node, None, fn, ctx)
        if direct is not None:
            return direct
        scope, var = self.lookup(fn, node.text.decode())
        if var.kind == "none" and not var.values:
            return None
        values, _ = self.reaching(var.values, var.defs, node)
        out: list = []
        found = False
        for value in values:
            sub = self.rows(value, scope, ctx if scope is fn else None, depth + 1)
            if sub is not None:
                found = True
                out += sub
        return out if found else None

    def _table_rows(
        self, table: Node, index: str | None, fn: Node | None, ctx: Ctx
    ) -> list[tuple[Node, _Var, Node | None, Ctx]] | None:
        scope, var = self.lookup(fn, table.text.decode())
        lists = [v for v in var.values if v.type == "initializer_list"] if var.is_array else []
        if not lists:
            return None
        scope_ctx = ctx if scope is fn else None
        key = (self._scope_key(scope), table.text.decode())
        out = []
        for value in lists:
            rows = [c for c in value.named_children if c.type != "comment"]
            if self._trace is not None:
                self._trace.append((key, len(rows), index))
            row = self._binding.get(key)
            if row is None and index is not None:
                bound = self._bound_indexes.get(index)
                if bound is not None and bound[1] == len(rows):
                    row = bound[0]
            if row is not None:
                rows = rows[row : row + 1]
            out += [(r, var, scope, scope_ctx) for r in rows]
        return out

    def row_bindings(self, node: Node, fn: Node | None, ctx: Ctx) -> list[tuple | None]:
        """How to follow the program argument `node` of an attach call row by row: when it
        comes from a table (`rows[i].name`, `progs[i]`, `t->prog`), one binding per row, so
        that the values of that row (its mode, its offset, and those of tables indexed the
        same way) go with that row's program. [None] when it does not."""
        if self._has_tables is None:
            self._has_tables = _TABLE.search(self.data) is not None
        if not self._has_tables or _DIRECT_PROGRAM.fullmatch(node.text) is not None:
            return [None]
        self._trace = []
        saved = self._rows_key
        self._rows_key = ("trace",)  # a traced evaluation must not reuse cached results
        try:
            self.eval(node, fn, ctx)
        finally:
            trace, self._trace = self._trace, None
            self._rows_key = saved
        tables = {(key, n) for key, n, _ in trace if n > 1}
        counts = {n for _, n in tables}
        if len(counts) != 1:
            return [None]
        (count,) = counts
        if count > _MAX_VALUES:
            return [None]
        keys = tuple(sorted({key for key, _ in tables}))
        indexes = tuple(sorted({index for _, n, index in trace if index is not None and n > 1}))
        return [(keys, indexes, row, count) for row in range(count)]

    def bind(self, binding: tuple | None) -> None:
        if binding is None:
            self._binding, self._bound_indexes, self._rows_key = {}, {}, None
            return
        keys, indexes, row, count = binding
        self._binding = {key: row for key in keys}
        self._bound_indexes = {index: (row, count) for index in indexes}
        self._rows_key = binding

    # -- facts ---------------------------------------------------------------------------

    def _ref(self, prog: tuple) -> ProgramRef:
        owner = prog[1]
        if owner[0] == "skel":
            obj = ObjectRef("skeleton", owner[1])
        elif owner[0] == "obj":
            obj = ObjectRef("object", owner[1])
        else:
            obj = ObjectRef("unknown", None)
        return ProgramRef(obj, prog[2])

    def _add(self, kind: FactKind, progs, span: Span, value, fn: Node | None, **extra) -> None:
        function = self.function_name(fn)
        for prog in sorted(progs, key=repr):
            self.facts.append(
                LoaderFact(kind, self._ref(prog), self.path, span, value, function, **extra)
            )

    def contexts(self, fn: Node | None, depth: int = 0) -> list[Ctx]:
        """The calls `fn` can be entered through, each with its own callers' context, so that
        the arguments of one call stay together (a helper `attach(prog, mode)` called for
        two programs with two modes gives two pairs, not four). [None] when `fn` has no
        parameters, no known callers, or the chain grows too long."""
        if fn is None or depth >= _MAX_CALL_DEPTH or not self._has_parameters(fn):
            return [None]
        name = self.function_name(fn)
        calls = self.calls_into(fn, name) if name else None
        if not calls:
            return [None]
        out: list[Ctx] = []
        for call in calls:
            caller = self.function_of(call)
            for caller_ctx in self.contexts(caller, depth + 1):
                out.append((call, caller, caller_ctx))
                if len(out) > _MAX_CONTEXTS:
                    return [None]
        return out

    @staticmethod
    def _has_parameters(fn: Node) -> bool:
        decl = fn.child_by_field_name("declarator")
        while decl is not None and decl.type != "function_declarator":
            decl = decl.child_by_field_name("declarator")
        params = decl.child_by_field_name("parameters") if decl is not None else None
        if params is None:
            return False
        named = [c for c in params.named_children if c.type in _PARAMETERS]
        return bool(named) and not (len(named) == 1 and named[0].text.strip() == b"void")

    def _fact_call(self, name: str, call: Node, fn: Node | None, ctx: Ctx) -> None:
        args = _args(call)
        if name.startswith("bpf_program__attach") and args:
            # A loop over a table of rows attaches each row's program with that row's values.
            for binding in self.row_bindings(args[0], fn, ctx):
                self.bind(binding)
                try:
                    self._fact(name, call, args, fn, ctx)
                finally:
                    self.bind(None)
            return
        self._fact(name, call, args, fn, ctx)

    def _fact(self, name: str, call: Node, args: list[Node], fn: Node | None, ctx: Ctx) -> None:
        call_span = self.span(call)
        if name.startswith("bpf_program__attach"):
            if not args:
                return
            progs = {p for p in self.programs(self.eval(args[0], fn, ctx)) if p[2] != "?"}
            if not progs:
                return
            targets: tuple[str, ...] = ()
            if name in ("bpf_program__attach_kprobe_opts", "bpf_program__attach_kprobe"):
                func_arg = (
                    args[1] if name.endswith("_opts") else (args[2] if len(args) > 2 else None)
                )
                func_values = self.eval(func_arg, fn, ctx) if func_arg is not None else frozenset()
                targets = tuple(sorted(set(self.strings(func_values))))
            self._add("attach", progs, call_span, name, fn, api=name, targets=targets)
            if name in ("bpf_program__attach_perf_event", "bpf_program__attach_perf_event_opts"):
                self._add("perf-event", progs, call_span, name, fn, api=name)
            elif name == "bpf_program__attach_kprobe_opts" and len(args) >= 3:
                self._kprobe_options(progs, args, fn, ctx, call, targets)
            elif name == "bpf_program__attach_uprobe_opts" and len(args) >= 5:
                self._modes(progs, self.eval(args[4], fn, ctx), fn, ctx, call, name)
            return
        if name == "bpf_link_create" and len(args) >= 3:
            kinds = self.eval(args[2], fn, ctx)
            if any(v[0] == "sym" and v[1] == "BPF_PERF_EVENT" for v in kinds):
                progs = {v[1] for v in self.eval(args[0], fn, ctx) if v[0] == "progfd"}
                self._add("perf-event", progs, call_span, name, fn, api=name)
            return
        if name in ("bpf_link_get_info_by_fd", "bpf_obj_get_info_by_fd"):
            self._link_info(name, args, fn, ctx, call_span)
            return
        if name == "libbpf_register_prog_handler":
            if args:
                for sec in self.strings(self.eval(args[0], fn, ctx)):
                    self.facts.append(
                        LoaderFact("prog-handler", None, self.path, call_span, sec,
                                   self.function_name(fn), api=name)
                    )  # fmt: skip
            return
        if name.startswith("bpf_program__set_"):
            if len(args) < 2:
                return
            progs = {p for p in self.programs(self.eval(args[0], fn, ctx)) if p[2] != "?"}
            if not progs:
                return
            value_text = args[1].text.decode("utf-8", "replace")
            if name == "bpf_program__set_expected_attach_type":
                kinds = self.eval(args[1], fn, ctx)
                if len(kinds) == 1 and next(iter(kinds))[0] == "sym":
                    value_text = next(iter(kinds))[1]  # through a #define or a variable
                self._add("expected-attach-type", progs, call_span, value_text, fn, api=name)
            elif name == "bpf_program__set_type":
                self._add("set-type", progs, call_span, value_text, fn, api=name)
            elif name == "bpf_program__set_flags":
                flags = self.eval(args[1], fn, ctx)
                if any(v[0] == "sym" and v[1] == "BPF_F_SLEEPABLE" for v in flags):
                    self._add("sleepable", progs, call_span, value_text, fn, api=name)
            elif name == "bpf_program__set_autoload":
                self._add("autoload", progs, call_span, value_text, fn, api=name)
            return
        skel = re.fullmatch(r"(\w+?)__attach", name)
        if skel and skel.group(1) in self.skeletons:
            owner = ("skel", skel.group(1))
            self._add("auto-attach", {("prog", owner, None)}, call_span, name, fn, api=name)

    def _opts_fields(
        self, opts_values: frozenset, field_name: str, call: Node, fn: Node | None, ctx: Ctx
    ) -> list[tuple[Node, Node | None, Ctx, bool]]:
        """(value node, its scope, its context, certain) of every store to `field_name` of
        the opts variables that reaches the attach call `call`: `.field = X` in
        LIBBPF_OPTS()/initialisers, `opts.field = X`. A store after the call, on another
        branch, or overwritten on the way does not count. When the variable lives in a
        function no known call chain leads from, the order cannot be told: every store
        counts, as not certain."""
        out = []
        for v in opts_values:
            if v[0] != "opts":
                continue
            scope = self._scope_node(v[1])
            opts_ctx = v[3] if len(v) > 3 else None
            var = self.var(scope, v[2])
            stores = var.fields.get(field_name, [])
            # `opts = other;` replaces every field too.
            defs = var.defs + [
                n.parent for n in var.values
                if n.parent is not None and n.parent.type == "assignment_expression"
            ]  # fmt: skip
            if scope is None:
                picked = self._global_stores(stores, var, defs, field_name, call, fn, ctx)
                uses = []
            else:
                uses = self.use_points(scope, call, fn, ctx)
            if uses is None:
                picked = [(n, False) for n in stores]
                picked += [(n, False) for n in self._designated(var.values, field_name)]
            elif uses:
                picked = []
                for use in uses:
                    kept, _ = self.reaching(stores, defs, use)
                    picked += [(n, True) for n in kept]
                    initial, _ = self.reaching(var.values, defs, use)
                    picked += [(n, True) for n in self._designated(initial, field_name)]
            seen: set[tuple[int, int]] = set()
            for node, certain in picked:
                if (node.start_byte, node.end_byte) not in seen:
                    seen.add((node.start_byte, node.end_byte))
                    out.append((node, scope, opts_ctx, certain))
        return out

    def _global_stores(
        self,
        stores: list[Node],
        var: _Var,
        defs: list[Node],
        field_name: str,
        call: Node,
        fn: Node | None,
        ctx: Ctx,
    ) -> list[tuple[Node, bool]]:
        """The stores to a field of a global opts variable that reach the attach call: those
        in the call's own function by its control flow; those in a function that leads to
        the call if they reach the call that leads there; those in a function the call's
        function calls if that call reaches the attach. Stores in functions with no known
        order relative to the call are kept as not certain."""
        if fn is None:
            return [(n, True) for n in stores]
        initial, _ = self.reaching(var.values, defs, call, incoming=True)
        here = [n for n in stores if self.function_of(n) is not None]
        kept, entered = self.reaching(here, defs, call, incoming=True)
        out = [(n, True) for n in self._designated(initial, field_name)]
        out += [(n, True) for n in stores if self.function_of(n) is None and entered]
        inside = (fn.start_byte, fn.end_byte)
        for node in kept:
            if inside[0] <= node.start_byte < inside[1]:
                out.append((node, True))
                continue
            other = self.function_of(node)
            assert other is not None
            sites = self.use_points(other, call, fn, ctx)
            if sites is not None:
                if any(self.reaching([node], defs, site)[0] for site in sites):
                    out.append((node, True))
                continue
            name = self.function_name(other)
            calls_here = [
                c for c in (self.calls_to(name) or []) if name
                if inside[0] <= c.start_byte < inside[1]
            ]  # fmt: skip
            if calls_here:
                local = [n.parent for n in stores if inside[0] <= n.start_byte < inside[1]]
                if any(self.reaching([c], defs + local, call)[0] for c in calls_here):
                    out.append((node, True))
                continue
            out.append((node, False))  # no known order between the store and the call
        return out

    @staticmethod
    def _designated(values: list[Node], field_name: str) -> list[Node]:
        """The `.field = X` values of the initializer lists among `values`."""
        out = []
        for value in values:
            if value.type != "initializer_list":
                continue
            for item in value.named_children:
                if item.type != "initializer_pair":
                    continue
                designator = item.child_by_field_name("designator")
                if (
                    designator is not None
                    and designator.text.decode().lstrip(".").strip() == field_name
                ):
                    picked = item.child_by_field_name("value")
                    if picked is not None:
                        out.append(picked)
        return out

    def _scope_node(self, key: int) -> Node | None:
        if key < 0:
            return None
        node = self.root.descendant_for_byte_range(key, key)
        while node is not None and not (node.type in _FUNCTIONS and node.start_byte == key):
            node = node.parent
        return node

    def _kprobe_options(self, progs, args: list[Node], fn, ctx: Ctx, call: Node, targets) -> None:
        name = "bpf_program__attach_kprobe_opts"
        call_span = self.span(call)
        opts = self.eval(args[2], fn, ctx)
        by_address = any(v[0] == "null" for v in self.eval(args[1], fn, ctx))
        for node, scope, opts_ctx, certain in self._opts_fields(opts, "offset", call, fn, ctx):
            for v in self.eval(node, scope, opts_ctx):
                if v[0] == "null" or (v[0] == "int" and v[1] == 0):
                    continue  # offset 0: the multi path takes it
                if v[0] == "int":
                    value: str | int = v[1]
                    span = self._value_span(v, node)
                else:
                    # Not a constant secl can compute: a run-time value, named by the
                    # expression stored (`func_addr`, `cfg->off`).
                    value = " ".join(node.text.decode("utf-8", "replace").split())
                    span = self.span(node)
                # A C++ default argument declared in another file: evidence, no finding.
                extra = {"api": name, "call": call_span,
                         "certain": certain and v[0] != "undecided"}  # fmt: skip
                self._add("attach-offset", progs, span, value, fn, targets=targets, **extra)
                if by_address:
                    self._add("attach-address", progs, span, value, fn, **extra)
        self._modes(progs, opts, fn, ctx, call, name)

    def _modes(self, progs, opts: frozenset, fn, ctx: Ctx, call: Node, api: str) -> None:
        call_span = self.span(call)
        for node, scope, opts_ctx, certain in self._opts_fields(opts, "attach_mode", call, fn, ctx):
            for v in self.eval(node, scope, opts_ctx):
                mode = None
                if v[0] == "sym" and v[1] in ATTACH_MODES:
                    mode = v[1]
                elif v[0] == "int" and 0 <= v[1] < len(ATTACH_MODES):
                    mode = ATTACH_MODES[v[1]]
                if mode is None or mode == "PROBE_ATTACH_MODE_DEFAULT":
                    continue
                span = self._value_span(v, node)
                self._add(
                    "attach-mode", progs, span, mode, fn, api=api, call=call_span, certain=certain
                )

    def _value_span(self, value: tuple, fallback: Node) -> Span:
        if len(value) >= 3 and isinstance(value[-1], int) and isinstance(value[-2], int):
            return self.span_bytes(value[-2], value[-1])
        return self.span(fallback)

    def _link_info(self, name: str, args: list[Node], fn, ctx: Ctx, call_span: Span) -> None:
        if fn is None or len(args) < 2:
            return
        info = args[1]
        while info.type in ("pointer_expression", "parenthesized_expression", "cast_expression"):
            inner = info.child_by_field_name("argument") or info.child_by_field_name("value")
            if inner is None:
                break
            info = inner
        info_name = info.text.decode() if info.type == "identifier" else None
        if info_name is None:
            return
        var = self.lookup(fn, info_name)[1]
        if name == "bpf_obj_get_info_by_fd" and var.types and "bpf_link_info" not in var.types:
            return  # bpf_prog_info, bpf_map_info, ...: nothing about links
        is_link_info = name == "bpf_link_get_info_by_fd" or "bpf_link_info" in var.types
        progs = {p for p in self.programs(self.eval(args[0], fn, ctx)) if p[2] != "?"}
        if not progs:
            return
        checks: list[tuple[str, Span]] = []
        missed: list[Span] = []
        for m in _PERF_LINK_EXPECTATION.finditer(self.data, fn.start_byte, fn.end_byte):
            node = self.root.descendant_for_byte_range(m.start(1), m.end(1))
            if node is not None and node.type == "identifier":
                checks.append((m.group(1).decode(), self.span(node)))
        field_re = re.compile(
            rb"\b" + re.escape(info_name.encode()) + rb"\s*(?:\.|->)\s*perf_event\b"
            rb"(\s*\.\s*kprobe\s*\.\s*missed\b)?"
        )
        for m in field_re.finditer(self.data, fn.start_byte, fn.end_byte):
            node = self.root.descendant_for_byte_range(m.start(), m.start() + len(info_name))
            if node is None or node.type != "identifier":
                continue
            span = self.span_bytes(m.start(), m.end())
            checks.append(("perf_event", span))
            if m.group(1):
                missed.append(span)
        if not checks and not missed:
            return
        if not is_link_info and not any(c[0] == "perf_event" for c in checks) and not missed:
            return  # an info struct of unknown type and no perf_event field read
        # Code that also handles the multi link types (a switch over info.type, reads of
        # info.kprobe_multi) keeps working after the upgrade.
        for group in ("kprobe", "uprobe"):
            multi = re.compile(
                rb"\bBPF_LINK_TYPE_"
                + group.upper().encode()
                + rb"_MULTI\b|\b"
                + re.escape(info_name.encode())
                + rb"\s*(?:\.|->)\s*"
                + group.encode()
                + rb"_multi\b"
            )
            for m in multi.finditer(self.data, fn.start_byte, fn.end_byte):
                node = self.root.descendant_for_byte_range(m.start(), m.start() + 1)
                if node is not None and node.type == "identifier":
                    span = self.span_bytes(m.start(), m.end())
                    self._add("link-info-multi", progs, span, group, fn, api=name, call=call_span)
                    break
        seen: set[int] = set()
        for what, span in sorted(checks, key=lambda c: c[1].start_byte):
            if span.start.row in seen:
                continue
            seen.add(span.start.row)
            self._add("link-info", progs, span, what, fn, api=name, call=call_span)
        for span in missed:
            self._add(
                "missed-count",
                progs,
                span,
                "perf_event.kprobe.missed",
                fn,
                api=name,
                call=call_span,
            )
