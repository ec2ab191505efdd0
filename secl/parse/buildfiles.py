"""What a C project's build files say about its BPF objects and loaders.

Two things matter to the loader analysis, read from Makefiles, CMake and meson files:

* linked skeletons: `bpftool gen object OUT A.bpf.o B.bpf.o ...` statically links several
  objects into one, and `bpftool gen skeleton OUT [name X]` makes skeleton X of it, so that
  skeleton X holds the programs of every linked source;
* the `-D` flags of the rule that compiles a loader (`-DSKEL_NAME=tool_bpf`), which name the
  skeleton type of loaders written against a build-time macro.

Reading is conservative: variables are expanded where the file defines them, Make's automatic
variables (`$@`, `$<`, `$^`, `$*`, `$(@:.a=.b)`) within their rule, and a few functions
(addprefix, addsuffix, patsubst, subst, notdir, basename, filter); anything else stays
unexpanded and is never taken as a name. A pattern rule keeps its `%`: it applies to every
stem (`%.bpf.o: %.tmp.bpf.o common.bpf.o` links common.bpf.o into every object it makes).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

# bpftool's own syntax and naming (tools/bpf/bpftool/gen.c): do_object() links every INPUT
# into OUTPUT with bpf_linker; do_skeleton() takes `name NAME` (any prefix of "name", as
# is_prefix() matches), else get_obj_name(): the object file's base name without ".o", with
# every character but [A-Za-z0-9_] replaced by '_' (sanitize_identifier()).
_GEN = re.compile(r"(?i)\S*bpftool\S*\s+gen\s+(object|skeleton)\s+([^;&|>\n]*)")
_DEFINE_FLAG = re.compile(r"(?:^|\s)-D\s*([A-Za-z_]\w*(?:=\S*)?)")
_MAKE_ASSIGN = re.compile(r"^([A-Za-z_][\w.-]*)\s*(:{1,3}=|\?=|\+=|!=|=)\s*(.*)$")
_MAKE_RULE = re.compile(r"^([^:=#\t][^:=]*?)\s*(::?)(?!=)\s*(.*)$")
_MAX_EXPANSION = 20


@functools.cache
def _pattern(text: str, flags: int = 0) -> re.Pattern[str]:
    """`text` compiled on first use (most runs read no build file), then taken without the
    flag checks and cache lookup that re's module functions pay on every call: a Makefile's
    expansion asks thousands of times."""
    return re.compile(text, flags)


@dataclass(frozen=True, slots=True)
class BuildFile:
    """One build file's BPF links, skeletons and loader -D flags."""

    path: str
    # (output object, input objects): `bpftool gen object`; `%` stands for any stem
    linked: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # (skeleton name, object): `bpftool gen skeleton OBJECT [name NAME]`; "" for bpftool's
    # default name (default_skeleton_name() of the object, per stem for a `%` pattern)
    skeletons: tuple[tuple[str, str], ...] = ()
    # (source file or object the flags are for, "NAME=VALUE"); a None file: every C file
    defines: tuple[tuple[str | None, str], ...] = ()
    # (executable, the base names of the sources or objects it is linked from): a loader's
    # argv[0] is its executable's name (`snprintf(f, n, "%s_kern.o", argv[0])`)
    executables: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # (BPF C source the flags are for, as written relative to the build file's directory,
    # `%` for any stem; the -I directory, as written): from the rules that compile BPF C
    # (secl.parse.includes)
    includes: tuple[tuple[str, str], ...] = ()


def default_skeleton_name(obj: str) -> str:
    """bpftool's skeleton name for an object file (gen.c: get_obj_name())."""
    base = os.path.basename(obj)
    if base.endswith(".o"):
        base = base[:-2]
    return re.sub(r"[^A-Za-z0-9_]", "_", base)


def is_build_file(name: str) -> bool:
    return name in (
        "Makefile",
        "makefile",
        "GNUmakefile",
        "CMakeLists.txt",
        "meson.build",
    ) or name.endswith((".mk", ".cmake"))


def read_build_file(path: str, data: bytes) -> BuildFile:
    """What the build file at `path` says (a pure function of its path and bytes: kept in
    the results cache, secl.cache.cached; a kernel selftests Makefile takes seconds)."""
    from secl.cache import cached

    return cached("build", (path, data), lambda: _read_build_file(path, data))


def _read_build_file(path: str, data: bytes) -> BuildFile:
    text = data.decode("utf-8", "replace")
    name = os.path.basename(path)
    if name == "CMakeLists.txt" or name.endswith(".cmake"):
        return _cmake(path, text)
    if name == "meson.build":
        return _meson(path, text)
    try:
        return _Makefile(path, text).read()
    except _TooComplex:
        # Read conservatively: a Makefile whose expansion takes more work than any plain
        # build (the kernel selftests' generates its rules with foreach/eval over hundreds
        # of tests: seconds) says nothing rather than stall every run that reads it.
        return BuildFile(path)


class _TooComplex(Exception):
    """The expansion budget of one Makefile is spent."""


# Variable references one Makefile may expand: ordinary project Makefiles need a few
# thousand; the kernel selftests' needs millions.
_EXPANSION_BUDGET = 200_000
# Expansions within expansions (function arguments, substitution references): Make itself
# recurses as deep as a file asks; a file that asks for more is not read.
_MAX_NESTING = 40


# -- Makefiles -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Rule:
    targets: list[str]
    prereqs: list[str]
    recipe: list[str]
    pattern: str | None = None  # a static pattern rule's target pattern (`%` of `T: %: %.c`)


class _Makefile:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.variables: dict[str, str] = {}
        self.target_variables: dict[str, dict[str, str]] = {}
        self.rules: list[_Rule] = []
        self._budget = _EXPANSION_BUDGET
        self._depth = 0
        self._paths = False  # expanding for -I directories (see _includes)
        self._parse(text)

    def _parse(self, text: str) -> None:
        text = text.replace("\\\r\n", " ").replace("\\\n", " ")
        current: _Rule | None = None
        for line in text.split("\n"):
            if line.startswith("\t"):
                if current is not None:
                    current.recipe.append(line[1:])
                continue
            line = _strip_comment(line).rstrip()
            if not line.strip():
                continue
            stripped = line.strip()
            if stripped.startswith(("ifeq", "ifneq", "ifdef", "ifndef", "else", "endif",
                                    "include", "-include", "sinclude", "define", "endef",
                                    "export ", "override ", "unexport")):  # fmt: skip
                if stripped.startswith(("export ", "override ")):
                    stripped = stripped.split(None, 1)[1]
                else:
                    continue
            assign = _MAKE_ASSIGN.match(stripped)
            if assign is not None:
                self._assign(self.variables, *assign.groups())
                current = None
                continue
            rule = _MAKE_RULE.match(stripped)
            if rule is None:
                current = None
                continue
            targets_text, _, rest = rule.groups()
            targets = self.expand(targets_text).split()
            specific = _MAKE_ASSIGN.match(rest)
            if specific is not None:
                name, op, value = specific.groups()
                for target in targets:
                    table = self.target_variables.setdefault(os.path.basename(target), {})
                    if op == "+=" and name not in table:
                        # appends to the global value, as Make does for the target
                        table[name] = self.variables.get(name, "")
                    self._assign(table, name, op, value)
                current = None
                continue
            recipe_inline = ""
            if ";" in rest:
                rest, recipe_inline = rest.split(";", 1)
            pattern = None
            if rest.count(":") == 1 and "%" in rest.split(":", 1)[0]:
                # a static pattern rule: TARGETS: PAT: PREREQS
                pattern, rest = rest.split(":", 1)
                pattern = pattern.strip()
            prereqs = self.expand(rest.split("|", 1)[0]).split()
            recipe = [recipe_inline] if recipe_inline.strip() else []
            current = _Rule(targets, prereqs, recipe, pattern)
            self.rules.append(current)

    @staticmethod
    def _assign(table: dict[str, str], name: str, op: str, value: str) -> None:
        value = value.strip()
        if op == "+=" and name in table:
            table[name] = table[name] + " " + value
        elif op == "?=":
            table.setdefault(name, value)
        elif op != "!=":
            table[name] = value

    def expand(
        self, text: str, automatic: dict[str, str] | None = None, local: dict | None = None
    ) -> str:
        if "$" not in text and self._depth < _MAX_NESTING:
            return text  # no reference: nothing to expand (most recipe words)
        self._depth += 1
        if self._depth > _MAX_NESTING:
            raise _TooComplex  # a variable that refers to itself through functions
        try:
            out = text
            for _ in range(_MAX_EXPANSION):
                expanded = _REFERENCE.sub(lambda m: self._reference(m, automatic, local), out)
                if expanded == out:
                    break
                out = expanded
            return out
        finally:
            self._depth -= 1

    def _reference(self, m: re.Match, automatic: dict | None, local: dict | None) -> str:
        self._budget -= 1
        if self._budget < 0:
            raise _TooComplex
        single = m.group("single")
        if single is not None:
            if automatic is not None and single in automatic:
                return automatic[single]
            return m.group(0) if single != "$" else "$"
        body = m.group("body") if m.group("body") is not None else m.group("body2")
        if automatic is not None:
            auto = _pattern(r"([@<^*+])(F|D)?(?::([^=]*)=(.*))?").fullmatch(body)
            if auto is not None and auto.group(1) in automatic:
                value = automatic[auto.group(1)]
                if auto.group(2) == "F":
                    value = " ".join(os.path.basename(w) for w in value.split())
                elif auto.group(2) == "D":
                    value = " ".join(os.path.dirname(w) or "." for w in value.split())
                if auto.group(3) is not None:
                    value = _substitute(value, auto.group(3), auto.group(4))
                return value
        function = _pattern(r"(\w+)\s+(.*)", re.S).match(body)
        if self._paths and function is not None and function.group(1) == "abspath":
            args = self.expand(function.group(2), automatic, local).split()
            return " ".join(os.path.normpath(w) for w in args)
        if function is not None and function.group(1) in _FUNCTIONS:
            args = [self.expand(a, automatic, local) for a in _split_args(function.group(2))]
            result = _FUNCTIONS[function.group(1)](args)
            return result if result is not None else _UNKNOWN
        ref = _pattern(r"([\w.-]+)(?::([^=]*)=(.*))?").fullmatch(body)
        if ref is None:
            return _UNKNOWN
        name = ref.group(1)
        if "bpftool" in name.lower():
            return "bpftool"  # however it is built or found, the command is bpftool
        value = (local or {}).get(name, self.variables.get(name))
        if value is None and self._paths and name == "CURDIR":
            return "."  # GNU Make sets it to the directory it runs in
        if value is None:
            return _UNKNOWN
        if ref.group(2) is not None:
            value = _substitute(self.expand(value, automatic, local), ref.group(2), ref.group(3))
        return value

    def read(self) -> BuildFile:
        linked: list[tuple[str, tuple[str, ...]]] = []
        skeletons: list[tuple[str, str]] = []
        defines: list[tuple[str | None, str]] = []
        includes: list[tuple[str, str]] = []
        for rule in self.rules:
            for target, prereqs, stem in self._instances(rule):
                local = self.target_variables.get(os.path.basename(target))
                automatic = {
                    "@": target,
                    "<": prereqs[0] if prereqs else "",
                    "^": " ".join(dict.fromkeys(prereqs)),
                    "+": " ".join(prereqs),
                    "*": stem,
                }
                for line in rule.recipe:
                    expanded = self.expand(line, automatic, local)
                    _gen(expanded, linked, skeletons)
                    if _compiles(expanded):
                        for flag in _DEFINE_FLAG.findall(expanded):
                            if "$" not in flag:
                                for source in _compiled_sources(expanded, rule, target):
                                    defines.append((source, flag))
                        if is_bpf_compile(expanded):
                            includes += self._includes(line, automatic, local)
        return BuildFile(
            self.path, tuple(linked), tuple(skeletons), tuple(defines), self._executables(),
            tuple(dict.fromkeys(includes)),
        )  # fmt: skip

    def _includes(self, line: str, automatic: dict, local: dict | None) -> list[tuple[str, str]]:
        """(source, -I directory) of a recipe line that compiles BPF C. Expanded again knowing
        what the loader reading leaves unknown: Make's CURDIR (the directory make runs in,
        which relative -I directories are relative to: the Makefile's) and `$(abspath X)`, X
        relative to that same directory. On a budget of its own: a Makefile too complex for
        this says nothing about includes but keeps its links and defines."""
        saved, self._budget = self._budget, _INCLUDE_BUDGET
        self._paths = True
        try:
            expanded = self.expand(line, automatic, local)
        except _TooComplex:
            return []
        finally:
            self._budget, self._paths = saved, False
        words = expanded.split()
        sources = [w for w in words if w.endswith(".c") and not w.startswith("-") and "$" not in w]
        if not sources:  # `-c $(filter-out ...)`: the rule's C prerequisite
            first = automatic.get("<", "")
            sources = [first] if first.endswith(".c") and "$" not in first else []
        return [(s, d) for s in sources for d in include_flags(words)]

    def _executables(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Executables and what they are linked from: kbuild's composite host programs
        (`tool-objs := tool_user.o util.o`) and explicit rules whose target has no suffix and
        whose prerequisites are C sources or objects (`tool: tool.o util.o`)."""
        out: dict[str, list[str]] = {}
        for name, value in self.variables.items():
            if name.endswith("-objs") and len(name) > 5:
                words = self.expand(value).split()
                out.setdefault(name[:-5], []).extend(_members(words))
        for rule in self.rules:
            members = _members(rule.prereqs)
            for target in rule.targets:
                base = os.path.basename(target)
                if "." in base or "%" in base or "$" in base:
                    continue
                if rule.pattern is not None:
                    # GNU Make, static pattern rules: each target's stem (what `%` matched
                    # in the target pattern) replaces `%` in its prerequisites.
                    stem = _stem(rule.pattern, target)
                    if stem is None:
                        continue
                    mine = _members([p.replace("%", stem, 1) for p in rule.prereqs])
                    if mine:
                        out.setdefault(base, []).extend(mine)
                elif members:
                    out.setdefault(base, []).extend(members)
        return tuple((name, tuple(dict.fromkeys(m))) for name, m in out.items() if m)

    def _instances(self, rule: _Rule) -> list[tuple[str, list[str], str]]:
        """(target, prerequisites, stem) of a rule: a pattern rule as it stands (stem `%`),
        and once more for every target that has variables of its own and matches it."""
        out = []
        for target in rule.targets or [""]:
            if "%" not in target:
                out.append((target, rule.prereqs, _UNKNOWN))
                continue
            out.append((target, rule.prereqs, "%"))
            head, _, tail = os.path.basename(target).partition("%")
            for name in self.target_variables:
                if name.startswith(head) and name.endswith(tail) and len(name) > len(head + tail):
                    stem = name[len(head) : len(name) - len(tail)]
                    out.append(
                        (
                            target.replace("%", stem),
                            [p.replace("%", stem) for p in rule.prereqs],
                            stem,
                        )
                    )
        return out


_UNKNOWN = "$(?)"  # an expansion secl cannot do: never a name
# A reference whose body holds no other reference, but may hold `$(?)` (a directory secl
# cannot expand: `$(addprefix $(obj)/,x.skel.h)` still names x.skel.h)
_REFERENCE = re.compile(
    r"\$(?:\((?P<body>(?:[^()$]|\$[^(]|\$\(\?\))*)\)|\{(?P<body2>[^{}$]*)\}|(?P<single>.))"
)


def _strip_comment(line: str) -> str:
    i = line.find("#")
    while i > 0 and line[i - 1] == "\\":
        i = line.find("#", i + 1)
    return line if i < 0 else line[:i]


def _substitute(value: str, old: str, new: str) -> str:
    if "%" not in old:
        old, new = "%" + old, "%" + new
    return _patsubst([old, new, value]) or ""


def _split_args(text: str) -> list[str]:
    args, depth, current = [], 0, []
    for ch in text:
        if ch == "," and depth == 0:
            args.append("".join(current))
            current = []
            continue
        depth += ch == "("
        depth -= ch == ")"
        current.append(ch)
    args.append("".join(current))
    return args


def _patsubst(args: list[str]) -> str | None:
    if len(args) != 3:
        return None
    pattern, replacement, words = (a.strip() for a in args)
    head, percent, tail = pattern.partition("%")
    out = []
    for word in words.split():
        if not percent:
            out.append(replacement if word == pattern else word)
        elif word.startswith(head) and word.endswith(tail) and len(word) >= len(head + tail):
            stem = word[len(head) : len(word) - len(tail)]
            out.append(replacement.replace("%", stem, 1))
        else:
            out.append(word)
    return " ".join(out)


def _filter(args: list[str]) -> str | None:
    if len(args) != 2:
        return None
    patterns = [re.escape(p).replace("%", ".*") for p in args[0].split()]
    return " ".join(w for w in args[1].split() if any(re.fullmatch(p, w) for p in patterns))


_FUNCTIONS = {
    "addprefix": lambda a: (
        " ".join(a[0].strip() + w for w in a[1].split()) if len(a) == 2 else None
    ),
    "addsuffix": lambda a: (
        " ".join(w + a[0].strip() for w in a[1].split()) if len(a) == 2 else None
    ),
    "patsubst": _patsubst,
    "subst": lambda a: a[2].replace(a[0], a[1]) if len(a) == 3 else None,
    "notdir": lambda a: " ".join(os.path.basename(w) for w in a[0].split()) if a else None,
    "basename": lambda a: " ".join(os.path.splitext(w)[0] for w in a[0].split()) if a else None,
    "filter": _filter,
    "strip": lambda a: " ".join(a[0].split()) if a else None,
}


def _gen(line: str, linked: list, skeletons: list) -> None:
    if "bpftool" not in line.lower():
        return  # _GEN cannot match: a substring test, not its search at every offset
    for m in _GEN.finditer(line):
        words = [_known_name(w) for w in m.group(2).split() if w]
        if m.group(1).lower() == "object":
            if len(words) >= 2 and _usable(words[0]):
                inputs = tuple(w for w in words[1:] if _usable(w) and w.endswith(".o"))
                if inputs:
                    linked.append((words[0], inputs))
            continue
        if not words or not _usable(words[0]) or not words[0].endswith(".o"):
            continue
        name = ""  # bpftool's default, from the object's name (per stem for a pattern)
        if len(words) >= 3 and words[1] in ("n", "na", "nam", "name"):
            if not re.fullmatch(r"[A-Za-z_]\w*", words[2]):
                continue  # a name secl cannot read: the default would be wrong
            name = words[2]
        skeletons.append((name, words[0]))


def _known_name(word: str) -> str:
    """`$(?)/x.bpf.o` -> `x.bpf.o`: in a directory secl cannot expand, the file's name is
    still known (objects are linked by name)."""
    head, sep, tail = word.rpartition("/")
    return tail if sep and "$" in head and tail and "$" not in tail else word


def _usable(word: str) -> bool:
    return "$" not in word and not word.startswith("-")


# What says a compile line builds BPF: clang's BPF target (`-target bpf`, `--target=bpfel`),
# llc's (`-march=bpf`, a `clang -emit-llvm | llc` pipe), or a `.bpf.c`/`.bpf.o` name.
# (Pattern texts: compiled on first use, by re's cache; most runs read no compile line.)
_BPF_COMPILE = r"(?:^|\s)(?:-target\s+|--target=|-march=)bpf(?:el|eb)?\b|\.bpf\.[co]\b"
# -I DIR, -IDIR, -isystem DIR, -idirafter DIR: the directories `<...>` and `"..."` includes
# are searched in (clang's -iquote only for `"..."`: left out).
_INCLUDE_FLAG = r"(-I|-isystem|-idirafter)(.*)"
_INCLUDE_BUDGET = 20_000


def is_bpf_compile(line: str) -> bool:
    """Whether a command line compiles C (`-c`) for BPF."""
    return _compiles(line) and _pattern(_BPF_COMPILE).search(line) is not None


def include_flags(words: list[str]) -> list[str]:
    """The include directories of a compiler's argument words, in order; a directory secl
    cannot expand (`$`) is left out."""
    out: list[str] = []
    i = 0
    while i < len(words):
        m = _pattern(_INCLUDE_FLAG).fullmatch(words[i])
        i += 1
        if m is None:
            continue
        directory = m.group(2)
        if not directory and i < len(words):
            directory = words[i]
            i += 1
        if directory and "$" not in directory and not directory.startswith("-"):
            out.append(os.path.normpath(directory))
    return list(dict.fromkeys(out))


def _compiles(line: str) -> bool:
    return ".c" in line and _pattern(r"(?:^|\s)-c(?:\s|$)").search(line) is not None


def _compiled_sources(line: str, rule: _Rule, target: str) -> list[str | None]:
    """The C files a compile line compiles (base names), `%`-patterns kept."""
    found = [w for w in line.split() if w.endswith(".c") and "$" not in w and not w.startswith("-")]
    if not found:
        found = [p for p in rule.prereqs if p.endswith(".c") and "$" not in p]
    if not found and target.endswith(".o") and "$" not in target:
        found = [target[:-2] + ".c"]
    return [os.path.basename(f) for f in found] or [None]


# -- CMake and meson -------------------------------------------------------------------------

_CMAKE_VAR = re.compile(r"\$\{[^}]*\}")
_CMAKE_KEYWORDS = frozenset(
    {"COMMAND", "DEPENDS", "OUTPUT", "WORKING_DIRECTORY", "COMMENT", "VERBATIM", "BYPRODUCTS",
     "MAIN_DEPENDENCY", "USES_TERMINAL", "COMMAND_EXPAND_LISTS", "ALL", "SOURCES",
     "OUTPUT_FILE", "OUTPUT_VARIABLE", "RESULT_VARIABLE"}
)  # fmt: skip


def _cmake(path: str, text: str) -> BuildFile:
    text = re.sub(r"(?m)#.*$", "", text)
    linked: list = []
    skeletons: list = []
    defines: list[tuple[str | None, str]] = []
    variables = dict(re.findall(r"(?i)\bset\s*\(\s*(\w+)\s+\"?([^\s\")]+)\"?\s*\)", text))

    def expand(word: str) -> str:
        for _ in range(_MAX_EXPANSION):
            done = _CMAKE_VAR.sub(lambda m: _cmake_value(variables, m.group(0)[2:-1]), word)
            if done == word:
                break
            word = done
        return word

    for name in ("add_custom_command", "add_custom_target", "execute_process"):
        for call in _meson_calls(text, name):
            command: list[str] | None = None
            for word in [expand(w.strip("\"'")) for w in call.split()] + ["COMMAND"]:
                if word in _CMAKE_KEYWORDS:
                    if command:
                        _gen(" ".join(_basename_if_var(w) for w in command), linked, skeletons)
                    command = [] if word == "COMMAND" else None
                elif command is not None:
                    command.append(word)
    targets: dict[str, list[str]] = {}
    executables = []
    for m in re.finditer(r"(?is)\badd_(executable|library)\s*\(\s*(\S+)([^)]*)\)", text):
        kind, name, rest = m.groups()
        targets[name] = [os.path.basename(w) for w in rest.split() if w.endswith(".c")]
        if kind.lower() == "executable" and targets[name] and "$" not in name:
            executables.append((name, tuple(targets[name])))
    for m in re.finditer(r"(?is)\btarget_compile_definitions\s*\(\s*(\S+)([^)]*)\)", text):
        for flag in _cmake_flags(m.group(2)):
            for source in targets.get(m.group(1), [None]):
                defines.append((source, flag))
    for m in re.finditer(r"(?is)\badd_(?:compile_definitions|definitions)\s*\(([^)]*)\)", text):
        for flag in _cmake_flags(m.group(1)):
            defines.append((None, flag))
    return BuildFile(
        path, tuple(linked), tuple(skeletons), tuple(defines), tuple(executables),
        _cmake_includes(text, variables, targets),
    )  # fmt: skip


# The directory of the CMakeLists.txt being read, as CMake names it; relative to it, `.`.
_CMAKE_HERE = ("CMAKE_CURRENT_SOURCE_DIR", "CMAKE_CURRENT_LIST_DIR")
_ROOTED = "\x00here"  # stands for the source directory while a command is read
_CMAKE_INCLUDE_KEYWORDS = frozenset({"PUBLIC", "PRIVATE", "INTERFACE", "SYSTEM", "BEFORE", "AFTER"})


def _cmake_includes(
    text: str, variables: dict[str, str], targets: dict[str, list[str]]
) -> tuple[tuple[str, str], ...]:
    """(BPF C source, include directory) of what this CMake file compiles for BPF:
    custom commands that run `clang -target bpf -c` (relative directories only where the
    command runs in the source directory: by default it runs in the build directory), and
    targets of a file that compiles C for BPF (`-target bpf` in its C flags or compile
    options) with their `include_directories` and `target_include_directories`."""
    known = {k: v for k, v in variables.items() if k not in _CMAKE_HERE}

    def value(name: str, here: str) -> str:
        return here if name in _CMAKE_HERE else known.get(name, "$?")

    def expand(word: str, here: str = ".") -> str:
        for _ in range(_MAX_EXPANSION):
            done = _CMAKE_VAR.sub(lambda m: value(m.group(0)[2:-1], here), word)
            if done == word:
                break
            word = done
        return word

    out: list[tuple[str, str]] = []
    for name in ("add_custom_command", "add_custom_target"):
        for call in _meson_calls(text, name):
            words = call.split()
            in_source = False
            if "WORKING_DIRECTORY" in words:
                at = words.index("WORKING_DIRECTORY") + 1
                in_source = at < len(words) and expand(words[at].strip("\"'")) in (".", "./")
            for command in re.split(r"\bCOMMAND\b", call)[1:]:
                line = " ".join(expand(w.strip("\"'"), _ROOTED) for w in command.split())
                if not is_bpf_compile(line):
                    continue
                words = line.split()
                sources = [
                    w.replace(_ROOTED, ".") for w in words if w.endswith(".c") and "$" not in w
                ]
                for directory in include_flags(words):
                    if directory.startswith(_ROOTED) or in_source:
                        directory = os.path.normpath(directory.replace(_ROOTED, "."))
                        out += [(s, directory) for s in sources]
    # Targets compiled for BPF: every one of a file whose C flags or compile options say so,
    # else those whose own compile options do.
    bpf = r"(?:-target\s+|--target=)bpf"
    flags = _meson_calls(text, "add_compile_options") + [
        c for c in _meson_calls(text, "set") if re.match(r"\s*CMAKE_C_FLAGS\b", c)
    ]
    if any(re.search(bpf, c) for c in flags):
        built = set(targets)
    else:
        built = {
            c.split()[0]
            for c in _meson_calls(text, "target_compile_options")
            if c.split() and re.search(bpf, c)
        }
    if not built:
        return tuple(dict.fromkeys(out))
    shared: list[str] = []
    for m in re.finditer(r"(?is)\binclude_directories\s*\(([^)]*)\)", text):
        shared += _cmake_dirs(m.group(1), expand)
    for target, sources in targets.items():
        if target not in built:
            continue
        dirs = list(shared)
        pattern = r"(?is)\btarget_include_directories\s*\(\s*" + re.escape(target) + r"\s([^)]*)\)"
        for m in re.finditer(pattern, text):
            dirs += _cmake_dirs(m.group(1), expand)
        out += [(s, d) for s in sources for d in dict.fromkeys(dirs)]
    return tuple(dict.fromkeys(out))


def _cmake_dirs(text: str, expand) -> list[str]:
    out = []
    for word in text.split():
        word = expand(word.strip("\"'"))
        if word not in _CMAKE_INCLUDE_KEYWORDS and "$" not in word and "<" not in word:
            out.append(word)
    return out


def _stem(pattern: str, target: str) -> str | None:
    """What `%` of a static pattern rule's target pattern matches in `target`, or None."""
    head, _, tail = pattern.partition("%")
    if len(target) < len(head) + len(tail) or not target.startswith(head):
        return None
    if not target.endswith(tail):
        return None
    return target[len(head) : len(target) - len(tail)]


def _members(words: list[str]) -> list[str]:
    """The base names of the C sources and objects among an executable's inputs."""
    return [os.path.basename(w) for w in words if w.endswith((".c", ".o")) and "$" not in w]


def _cmake_value(variables: dict[str, str], name: str) -> str:
    if "bpftool" in name.lower():
        return "bpftool"
    return variables.get(name, "$?")


def _basename_if_var(word: str) -> str:
    """`${OUT}/x.bpf.o` -> `x.bpf.o`: the directory is unknown, the name is not."""
    if "$?" in word and "/" in word and "$?" not in word.rsplit("/", 1)[1]:
        return word.rsplit("/", 1)[1]
    return word.replace("$?", "$")


def _cmake_flags(text: str) -> list[str]:
    out = []
    for word in text.replace(";", " ").split():
        word = word.strip("\"'")
        if word in ("PRIVATE", "PUBLIC", "INTERFACE") or "$" in word:
            continue
        word = word[2:] if word.startswith("-D") else word
        if re.fullmatch(r"[A-Za-z_]\w*(?:=\S*)?", word):
            out.append(word)
    return out


def _meson(path: str, text: str) -> BuildFile:
    text = re.sub(r"(?m)#.*$", "", text)
    linked: list = []
    skeletons: list = []
    defines: list[tuple[str | None, str]] = []
    for call in _meson_calls(text, "custom_target"):
        command = _meson_strings(_meson_keyword(call, "command"))
        inputs = [os.path.basename(w) for w in _meson_strings(_meson_keyword(call, "input"))]
        outputs = [os.path.basename(w) for w in _meson_strings(_meson_keyword(call, "output"))]
        words: list[str] = []
        for word in command:
            if word in ("@INPUT@", "@INPUT0@"):
                words += inputs if word == "@INPUT@" else inputs[:1]
            elif word in ("@OUTPUT@", "@OUTPUT0@"):
                words += outputs[:1]
            else:
                words.append(word)
        if words and "bpftool" not in words[0].lower():
            words.insert(0, "bpftool")
        _gen(" ".join(words), linked, skeletons)
    executables = []
    for call in _meson_calls(text, "executable") + _meson_calls(text, "library"):
        sources = [os.path.basename(w) for w in _meson_strings(call) if w.endswith(".c")]
        first = re.match(r"\s*'([^']+)'", call)
        if first is not None and sources and call in _meson_calls(text, "executable"):
            executables.append((first.group(1), tuple(sources)))
        for flag in _meson_strings(_meson_keyword(call, "c_args")):
            if flag.startswith("-D") and "$" not in flag:
                for source in sources or [None]:
                    defines.append((source, flag[2:]))
    for call in _meson_calls(text, "add_project_arguments") + _meson_calls(
        text, "add_global_arguments"
    ):
        for flag in _meson_strings(call):
            if flag.startswith("-D"):
                defines.append((None, flag[2:]))
    return BuildFile(
        path, tuple(linked), tuple(skeletons), tuple(defines), tuple(executables),
        _meson_includes(text),
    )  # fmt: skip


def _meson_includes(text: str) -> tuple[tuple[str, str], ...]:
    """(BPF C input, include directory) of custom targets that compile BPF C. Meson runs the
    command in the build directory: only directories it names from the source directory
    (`-I@CURRENT_SOURCE_DIR@/include`, substituted by meson in custom_target commands) are
    known."""
    out: list[tuple[str, str]] = []
    for call in _meson_calls(text, "custom_target"):
        inputs = _meson_strings(_meson_keyword(call, "input"))
        words: list[str] = []
        for word in _meson_strings(_meson_keyword(call, "command")):
            if word in ("@INPUT@", "@INPUT0@"):
                words += inputs if word == "@INPUT@" else inputs[:1]
            else:
                words.append(word.replace("@CURRENT_SOURCE_DIR@", _ROOTED))
        if not is_bpf_compile(" ".join(words)):
            continue
        sources = [w for w in inputs if w.endswith(".c") and "@" not in w]
        for directory in include_flags(words):
            if directory.startswith(_ROOTED):
                directory = os.path.normpath(directory.replace(_ROOTED, "."))
                out += [(s, directory) for s in sources]
    return tuple(dict.fromkeys(out))


def _meson_calls(text: str, name: str) -> list[str]:
    """The argument text of every call `name(...)` (balanced parentheses); CMake's too."""
    out = []
    for m in re.finditer(r"\b" + name + r"\s*\(", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += text[i] == "("
            depth -= text[i] == ")"
            i += 1
        out.append(text[m.end() : i - 1])
    return out


def _meson_keyword(call: str, key: str) -> str:
    m = re.search(r"\b" + key + r"\s*:\s*(\[[^\]]*\]|'[^']*'|\w+)", call)
    return m.group(1) if m is not None else ""


def _meson_strings(text: str) -> list[str]:
    return re.findall(r"'([^']*)'", text)
