"""Python loaders: BCC.

bcc's `BPF(src_file=b"", hdr_file=b"", text=None, ...)` (src/python/bcc/__init__.py, v0.37.0,
`BPF.__init__`) compiles C itself: `src_file` names the C file (a relative name is looked up
in the working directory, then next to the script: `BPF._find_file()`), `text` is the C as a
string. Either way the C is compiled by bcc's clang front end and its programs are attached by
hand (`attach_kprobe(event=..., fn_name=...)`) or by function-name prefix
(`BPF._trace_autoload()`), never by section name: libbpf's section rules and its auto-upgrade
do not apply. secl does not model BCC, so only the use matters here: which C it compiles.

`BPF(text=...)` whose string is built in Python holds the C itself: a use with no source to
link. A text read from a file (`open("x.c").read()`, `Path("x.c").read_text()`, through
names and `with open(...) as f`) links that file. Anything else is a use with no link keys
and `certain=False`.

bcc's libbpf-tools are C programs on libbpf, not BCC: they have no Python and are read as C.

Python bindings of libbpf itself open objects with `bpf_object__open_file()`; a source they
load is judged by libbpf's table like one a C loader opens (kind `libbpf`):

* pylibbpf (pythonbpf/pylibbpf, src/core/bpf_object.cpp, src/core/bpf_program.cpp):
  `BpfObject(path)`; `attach_all()` and `get_program(name).attach()` are
  `bpf_program__attach()`, libbpf's attach by section name.
* tinybpf (gregclermont/tinybpf, src/tinybpf/_object.py `load`, _program.py):
  `tinybpf.load(path)`; `program.attach()` is `bpf_program__attach()`, `attach_kprobe(func)`
  is `bpf_program__attach_kprobe()` (no offset, no attach mode).
"""

from __future__ import annotations

import posixpath
import re
from functools import cache

from secl.loaders import BCC, LIBBPF, FileLoaders, LoaderUse
from secl.parse.binding import binding
from secl.parse.tree import Positions, first_error_row, inside_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tree_sitter import Node, Parser

_IMPORT = re.compile(rb"\b(?:from\s+bcc\s+import|import\s+bcc)\b")
# Python bindings of libbpf: module, the callable that opens an object, its path keyword,
# and the call that attaches every program by its section (None: none).
_LIBBPF_BINDINGS = (
    ("pylibbpf", "BpfObject", "object_path", b".attach_all("),
    ("tinybpf", "load", "path", None),
)
_BINDING_IMPORTS = {
    module: re.compile(rb"\b(?:from\s+" + module.encode() + rb"\s+import|import\s+"
                       + module.encode() + rb")\b")
    for module, _, _, _ in _LIBBPF_BINDINGS
}  # fmt: skip
# Path helpers whose value is their (first) argument's, as far as the file name goes.
_THROUGH_CALLS = frozenset(
    {"str", "bytes", "Path", "PurePath", "fspath", "abspath", "realpath", "normpath",
     "expanduser", "encode", "decode", "resolve", "absolute", "strip", "rstrip", "lstrip",
     "replace", "format", "upper", "lower"}
)  # fmt: skip
# Of those, the functions (`os.path.abspath(p)`), not methods of the value.
_PATH_FUNCTIONS = frozenset(
    {"Path", "PurePath", "fspath", "abspath", "realpath", "normpath", "expanduser"}
)
_READS = frozenset({"read", "read_text", "read_bytes", "readlines"})
_DIRNAME = frozenset({"dirname", "parent"})
_MAX_DEPTH = 30
_MAX_VALUES = 32
_SCRIPT = "SCRIPT_DIR"  # the prefix of a path built from the script's own directory

Str = tuple  # (prefix | None, text), as in secl.loaders.rust


@cache
def python_parser() -> Parser:
    ts = binding("tree_sitter")
    # A Parser holds no state between parse() calls; caching it only saves set-up time.
    return ts.Parser(ts.Language(binding("tree_sitter_python").language()))


def is_python_loader(data: bytes) -> bool:
    """A Python file worth parsing names bcc and its `BPF` class, or a libbpf binding."""
    return (b"bcc" in data and b"BPF" in data) or any(
        module.encode() in data for module, _, _, _ in _LIBBPF_BINDINGS
    )


def extract_python(path: str, data: bytes) -> FileLoaders:
    """The BCC uses of one Python file. Never raises: a file that does not parse gives
    `problem` and whatever its parsed parts prove."""
    try:
        return _PythonFile(path, data).run()
    except Exception as error:  # one odd file must not stop the run; the line says why
        return FileLoaders(path, problem=f"could not read as Python: {type(error).__name__}")


def _string(node: Node) -> str | None:
    """The text of a Python string literal without interpolations, None otherwise."""
    if node.type == "concatenated_string":
        parts = [_string(c) for c in node.named_children]
        return None if any(p is None for p in parts) else "".join(parts)  # type: ignore[arg-type]
    if node.type != "string":
        return None
    start = next((c for c in node.children if c.type == "string_start"), None)
    prefix = start.text.decode().lower() if start is not None else ""
    out = []
    for child in node.children:
        if child.type == "string_content":
            out.append(child.text.decode("utf-8", "replace"))
        elif child.type == "escape_sequence":
            text = child.text.decode("utf-8", "replace")
            out.append(text if "r" in prefix else _unescape(text))
        elif child.type == "interpolation":
            return None
    return "".join(out)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"'}


def _unescape(text: str) -> str:
    if len(text) >= 2 and text[1] in _ESCAPES:
        return _ESCAPES[text[1]]
    if len(text) == 4 and text[1] == "x":
        return chr(int(text[2:], 16))
    return text


def _is_string(node: Node) -> bool:
    return node.type in ("string", "concatenated_string")


def _join(left: Str, right: Str) -> Str:
    if right[0] is not None:
        return right
    return (left[0], left[1] + right[1])


def _path_join(left: Str, right: Str) -> Str:
    if right[0] is not None or right[1].startswith("/"):
        return right
    if left[0] is None and not left[1]:
        return right
    sep = "" if left[1].endswith("/") else "/"
    return (left[0], left[1] + sep + right[1])


def _callee(call: Node) -> str:
    """`open` for `open(..)`, `join` for `os.path.join(..)`."""
    function = call.child_by_field_name("function")
    if function is None:
        return ""
    if function.type == "identifier":
        return function.text.decode()
    if function.type == "attribute":
        name = function.child_by_field_name("attribute")
        return name.text.decode() if name is not None else ""
    return ""


def _args(call: Node) -> tuple[list[Node], dict[str, Node]]:
    arguments = call.child_by_field_name("arguments")
    positional: list[Node] = []
    keywords: dict[str, Node] = {}
    for child in arguments.named_children if arguments is not None else ():
        if child.type == "keyword_argument":
            name = child.child_by_field_name("name")
            value = child.child_by_field_name("value")
            if name is not None and value is not None:
                keywords[name.text.decode()] = value
        elif child.type != "comment":
            positional.append(child)
    return positional, keywords


class _PythonFile:
    def __init__(self, path: str, data: bytes) -> None:
        self.path = path
        self.data = data
        self.root = python_parser().parse(data).root_node
        self.positions = Positions(data)
        self._memo: dict[tuple, frozenset] = {}
        self._active: set[tuple] = set()
        self._depth = 0
        self._assignments: dict[tuple[int, str], list[tuple[str, Node]]] = {}

    def run(self) -> FileLoaders:
        problem = None
        if self.root.has_error:
            problem = f"Python syntax error at line {first_error_row(self.root)}; read what parses"
        uses = []
        if b"bcc" in self.data:
            classes, modules = self._imports(_IMPORT, b"bcc", "BPF")
            for call in self._bpf_calls(classes, modules, "BPF"):
                uses.append(self._use(call))
        for module, opener, keyword, attach_all in _LIBBPF_BINDINGS:
            if module.encode() not in self.data:
                continue
            classes, modules = self._imports(_BINDING_IMPORTS[module], module.encode(), opener)
            for call in self._bpf_calls(classes, modules, opener):
                uses.append(self._binding_use(call, module, opener, keyword, attach_all))
        return FileLoaders(self.path, uses, None, problem)

    def _binding_use(
        self, call: Node, module: str, opener: str, keyword: str, attach_all: bytes | None
    ) -> LoaderUse:
        """`BpfObject(path)` / `tinybpf.load(path)`: libbpf opens the object
        (bpf_object__open_file); a call that attaches every program in the file makes the
        use an auto-attach."""
        positional, keywords = _args(call)
        target = keywords.get(keyword, positional[0] if positional else None)
        found = self._written(self.strings(target)) if target is not None else []
        shown = ", ".join(posixpath.basename(f) for f in found) or "?"
        return LoaderUse(
            LIBBPF,
            self.path,
            self.positions.span(call.start_byte, call.end_byte),
            f"{module} {opener}({shown})",
            objects=tuple(found),
            auto_attach=True if attach_all is not None and attach_all in self.data else None,
            certain=bool(found) and not inside_error(call),
        )

    def node_at(self, start: int, end: int, *types: str) -> Node | None:
        node = self.root.descendant_for_byte_range(start, end)
        if node is None or node.type not in types:
            return None
        return node

    # -- what the file imports -----------------------------------------------------------

    def _imports(
        self, pattern: re.Pattern[bytes], module_name: bytes, class_name: str
    ) -> tuple[set[str], set[str]]:
        """Local names of a module's loader class (bcc's `BPF`, pylibbpf's `BpfObject`) and
        of the module itself."""
        classes: set[str] = set()
        modules: set[str] = set()
        wanted = class_name.encode()
        for m in pattern.finditer(self.data):
            node = self.root.descendant_for_byte_range(m.start(), m.start() + 1)
            while node is not None and node.type not in (
                "import_from_statement", "import_statement"
            ):  # fmt: skip
                node = node.parent
            if node is None:
                continue
            if node.type == "import_from_statement":
                module = node.child_by_field_name("module_name")
                if module is None or module.text != module_name:
                    continue
                if any(c.type == "wildcard_import" for c in node.children):
                    classes.add(class_name)
                for name in node.children_by_field_name("name"):
                    if name.type == "dotted_name" and name.text == wanted:
                        classes.add(class_name)
                    elif name.type == "aliased_import":
                        original = name.child_by_field_name("name")
                        alias = name.child_by_field_name("alias")
                        if original is not None and original.text == wanted and alias is not None:
                            classes.add(alias.text.decode())
            else:
                for name in node.children_by_field_name("name"):
                    if name.type == "dotted_name" and name.text == module_name:
                        modules.add(module_name.decode())
                    elif name.type == "aliased_import":
                        original = name.child_by_field_name("name")
                        alias = name.child_by_field_name("alias")
                        if (
                            original is not None
                            and original.text == module_name
                            and alias is not None
                        ):
                            modules.add(alias.text.decode())
        return classes, modules

    def _bpf_calls(self, classes: set[str], modules: set[str], class_name: str) -> list[Node]:
        """`BPF(...)` (or its alias) and `bcc.BPF(...)` calls (pylibbpf: `BpfObject`), in file
        order."""
        if not classes and not modules:
            return []
        names = sorted(classes | {class_name} if modules else classes)
        pattern = re.compile(rb"\b(" + b"|".join(re.escape(n.encode()) for n in names) + rb")\s*\(")
        calls = []
        for m in pattern.finditer(self.data):
            node = self.node_at(m.start(1), m.end(1), "identifier")
            if node is None:
                continue
            parent = node.parent
            function = node
            if parent is not None and parent.type == "attribute":
                owner = parent.child_by_field_name("object")
                if (
                    parent.child_by_field_name("attribute") != node
                    or owner is None
                    or owner.text.decode() not in modules
                ):
                    continue
                function, parent = parent, parent.parent
            elif node.text.decode() not in classes:
                continue
            if (
                parent is not None
                and parent.type == "call"
                and parent.child_by_field_name("function") == function
            ):
                calls.append(parent)
        return calls

    # -- one BPF(...) ---------------------------------------------------------------------

    def _use(self, call: Node) -> LoaderUse:
        positional, keywords = _args(call)
        # BPF.__init__(self, src_file=b"", hdr_file=b"", text=None, ...)
        src_file = keywords.get("src_file", positional[0] if positional else None)
        text = keywords.get("text", positional[2] if len(positional) > 2 else None)
        sources: list[str] = []
        certain = True
        if src_file is not None and not (_is_string(src_file) and not _string(src_file)):
            found = self._written(self.strings(src_file))
            sources.extend(found)
            certain = bool(found)
            shown = f"BPF(src_file={', '.join(found) or '?'})"
        elif text is not None:
            files, inline, unknown = self.texts(text)
            found = self._written(files)
            sources.extend(found)
            certain = not unknown or bool(found)
            if found:
                shown = f"BPF(text=<{', '.join(found)}>)"
            elif inline and not unknown:
                shown = "BPF(text=<C in Python>)"
            else:
                shown = "BPF(text=?)"
        else:
            shown = "BPF(?)"
            certain = False
        return LoaderUse(
            BCC,
            self.path,
            self.positions.span(call.start_byte, call.end_byte),
            shown,
            sources=tuple(dict.fromkeys(sources)),
            # No ERROR node anywhere when the root has none: no walk up the tree needed.
            certain=certain and not (self.root.has_error and inside_error(call)),
        )

    @staticmethod
    def _written(values) -> list[str]:
        """Paths as LoaderUse wants them: relative to the script when that is what they are,
        else their base name."""
        out = []
        for prefix, text in sorted(values, key=repr):
            if prefix is None:
                written = text
            elif prefix == _SCRIPT and text.startswith("/"):
                written = posixpath.normpath(text.lstrip("/"))
            elif "/" in text:
                written = posixpath.basename(text)
            else:
                written = ""
            if written and written not in out:
                out.append(written)
        return out

    # -- scopes --------------------------------------------------------------------------

    @staticmethod
    def function_of(node: Node) -> Node | None:
        current = node.parent
        while current is not None:
            if current.type == "function_definition":
                return current
            current = current.parent
        return None

    def assignments(self, name: str, scope: Node | None) -> list[tuple[str, Node]]:
        """What gives `name` a value in `scope` (a function; None: the module outside any
        function): ("set", value), ("add", value) for `+=`, ("with", value) for
        `with value as name`, ("param", parameter)."""
        key = (scope.id if scope is not None else -1, name)
        found = self._assignments.get(key)
        if found is not None:
            return found
        found = []
        self._assignments[key] = found
        start, end = (scope.start_byte, scope.end_byte) if scope else (0, len(self.data))
        pattern = re.compile(rb"\b" + re.escape(name.encode()) + rb"\b")
        for m in pattern.finditer(self.data, start, end):
            node = self.node_at(m.start(), m.end(), "identifier")
            if node is None or self.function_of(node) != scope:
                continue
            parent = node.parent
            if parent is None:
                continue
            if parent.type == "assignment" and parent.child_by_field_name("left") == node:
                value = parent.child_by_field_name("right")
                if value is not None:
                    found.append(("set", value))
            elif (
                parent.type == "augmented_assignment" and parent.child_by_field_name("left") == node
            ):
                value = parent.child_by_field_name("right")
                if value is not None:
                    found.append(("add", value))
            elif parent.type == "as_pattern_target":
                pattern_node = parent.parent
                value = pattern_node.named_children[0] if pattern_node is not None else None
                if value is not None:
                    found.append(("with", value))
            elif parent.type in ("parameters", "default_parameter", "typed_parameter",
                                 "typed_default_parameter"):  # fmt: skip
                found.append(("param", parent))
        return found

    def _bindings(self, node: Node) -> list[tuple[str, Node]]:
        name = node.text.decode()
        scope = self.function_of(node)
        found = self.assignments(name, scope)
        if not found and scope is not None:
            found = self.assignments(name, None)
        return found

    def _memoised(self, kind: str, node: Node | None, compute) -> frozenset:
        if node is None:
            return frozenset()
        key = (kind, node.id)
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        if key in self._active or self._depth > _MAX_DEPTH:
            return frozenset()
        self._active.add(key)
        self._depth += 1
        try:
            result = compute(node)
        finally:
            self._depth -= 1
            self._active.discard(key)
        if len(result) > _MAX_VALUES:
            result = frozenset(sorted(result, key=repr)[:_MAX_VALUES])
        self._memo[key] = result
        return result

    # -- path values ---------------------------------------------------------------------

    def strings(self, node: Node | None) -> frozenset:
        """Every path value `node` may have, as (prefix, text)."""
        return self._memoised("str", node, self._strings)

    def _strings(self, node: Node) -> frozenset:
        literal = _string(node) if _is_string(node) else None
        if literal is not None:
            return frozenset({(None, literal)})
        t = node.type
        if t == "parenthesized_expression":
            return self.strings(next(iter(node.named_children), None))
        if t == "identifier":
            if node.text == b"__file__":
                return frozenset({(_SCRIPT, "/" + posixpath.basename(self.path))})
            out: set = set()
            for kind, value in self._bindings(node):
                if kind == "set":
                    out |= self.strings(value)
            return frozenset(out)
        if t == "binary_operator":
            left = self.strings(node.child_by_field_name("left"))
            right = self.strings(node.child_by_field_name("right"))
            operator = node.child_by_field_name("operator")
            if operator is not None and operator.type == "/":  # pathlib
                return frozenset(_path_join(a, b) for a in left for b in right)
            if operator is not None and operator.type == "+":
                return frozenset(_join(a, b) for a in left for b in right)
            return frozenset()
        if t == "attribute":
            # `Path(__file__).parent`
            attribute = node.child_by_field_name("attribute")
            if attribute is not None and attribute.text == b"parent":
                return self._dirname(self.strings(node.child_by_field_name("object")))
            return frozenset()
        if t == "call":
            return self._call_strings(node)
        return frozenset()

    def _call_strings(self, call: Node) -> frozenset:
        name = _callee(call)
        positional, _ = _args(call)
        function = call.child_by_field_name("function")
        receiver = function.child_by_field_name("object") if function.type == "attribute" else None
        if name == "join" and receiver is not None and not _is_string(receiver):
            values: set[Str] = {(None, "")}
            for arg in positional:
                parts = self.strings(arg)
                if not parts:
                    return frozenset()
                values = {_path_join(a, b) for a in values for b in parts}
            return frozenset(values)
        if name in _DIRNAME and positional:
            return self._dirname(self.strings(positional[0]))
        if name in _THROUGH_CALLS:
            if receiver is not None and name not in _PATH_FUNCTIONS:
                return self.strings(receiver)  # "x.c".encode(), path.resolve()
            return self.strings(positional[0]) if positional else frozenset()
        return frozenset()

    @staticmethod
    def _dirname(values: frozenset) -> frozenset:
        out = set()
        for prefix, text in values:
            if prefix == _SCRIPT and text.count("/") == 1:
                out.add((_SCRIPT, ""))  # the script's own directory
            elif "/" in text:
                out.add((prefix, text.rsplit("/", 1)[0]))
            else:
                out.add(("?", ""))
        return frozenset(out)

    # -- BPF(text=...) ---------------------------------------------------------------------

    def texts(self, node: Node) -> tuple[frozenset, bool, bool]:
        """Where the C of `text=` comes from: (files read, whether some is written in
        Python, whether some is unknown)."""
        result = self._memoised("text", node, self._texts)
        files = frozenset(v[1] for v in result if v[0] == "file")
        return files, ("inline",) in result, ("unknown",) in result or not result

    def _texts(self, node: Node) -> frozenset:
        if _is_string(node) or node.type in ("string",):
            return frozenset({("inline",)})
        t = node.type
        if t == "parenthesized_expression":
            return self._texts_of(next(iter(node.named_children), None))
        if t == "binary_operator":
            left = self._texts_of(node.child_by_field_name("left"))
            right = self._texts_of(node.child_by_field_name("right"))
            return left | right
        if t == "identifier":
            out: set = set()
            for kind, value in self._bindings(node):
                if kind in ("set", "add"):
                    out |= self._texts_of(value)
                elif kind == "param":
                    out.add(("unknown",))
            return frozenset(out) or frozenset({("unknown",)})
        if t == "call":
            return self._call_texts(node)
        return frozenset({("unknown",)})

    def _texts_of(self, node: Node | None) -> frozenset:
        return self._memoised("text", node, self._texts) if node is not None else frozenset()

    def _call_texts(self, call: Node) -> frozenset:
        name = _callee(call)
        positional, _ = _args(call)
        function = call.child_by_field_name("function")
        receiver = function.child_by_field_name("object") if function.type == "attribute" else None
        if name in _READS and receiver is not None:
            return self._opened(receiver)
        if name in ("str", "bytes") and positional:
            return self._texts_of(positional[0])
        if name in _THROUGH_CALLS and receiver is not None:
            return self._texts_of(receiver)
        if name == "join" and receiver is not None and _is_string(receiver):
            return frozenset({("inline",)})  # "\n".join(lines of C)
        # A helper of this file: what it returns.
        if function.type == "identifier":
            out: set = set()
            for fn in self._functions(name):
                for ret in self._returns(fn):
                    out |= self._texts_of(ret)
            if out:
                return frozenset(out)
        return frozenset({("unknown",)})

    def _opened(self, node: Node) -> frozenset:
        """The files `node.read()` reads: `open(path)`, `Path(path)`, a `with open(path) as f`
        target, a name bound to either."""
        if node.type == "call":
            name = _callee(node)
            positional, keywords = _args(node)
            target = positional[0] if positional else keywords.get("file")
            if name in ("open", "Path", "PurePath") and target is not None:
                paths = self.strings(target)
                if paths:
                    return frozenset(("file", p) for p in paths)
            return frozenset({("unknown",)})
        if node.type == "identifier":
            out: set = set()
            for kind, value in self._bindings(node):
                if kind in ("set", "with"):
                    out |= self._opened(value)
            return frozenset(out) or frozenset({("unknown",)})
        return frozenset({("unknown",)})

    def _functions(self, name: str) -> list[Node]:
        out = []
        for m in re.finditer(rb"\bdef\s+" + re.escape(name.encode()) + rb"\b", self.data):
            node = self.node_at(m.end() - len(name), m.end(), "identifier")
            if (
                node is not None
                and node.parent is not None
                and (node.parent.type == "function_definition")
            ):
                out.append(node.parent)
        return out

    def _returns(self, fn: Node) -> list[Node]:
        out = []
        for m in re.finditer(rb"\breturn\b", self.data[: fn.end_byte]):
            if m.start() < fn.start_byte:
                continue
            node = self.root.descendant_for_byte_range(m.start(), m.end())
            statement = node.parent if node is not None else None
            if (
                statement is not None
                and statement.type == "return_statement"
                and self.function_of(statement) == fn
                and statement.named_children
            ):
                out.append(statement.named_children[0])
        return out
