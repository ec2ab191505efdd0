"""The build files of a C project, as the loader analysis needs them: which skeletons are
linked from several BPF sources (`bpftool gen object` + `gen skeleton`), and which `-D`
flags a loader is compiled with (with `--define`, `defines` and compile_commands.json).

Build files are looked for in the directories of the project's C files and their parents up
to the project root, and read once per run.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace

from secl.analysis.project import Project
from secl.facts import Span
from secl.parse.buildfiles import BuildFile, default_skeleton_name, is_build_file, read_build_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from secl.loaders import LoaderUse

_MAX_BUILD_BYTES = 2 * 1024 * 1024
# What build systems put between a source's name and `.o` for the objects made from it:
# `x.bpf.o`, `x.tmp.bpf.o`, `x.bpf.linked1.o`, `x.lto.o`.
_OBJECT_PARTS = re.compile(r"\.(?:bpf|tmp|lto|linked\d*|o)$")


# What a build file must contain (in any case) to be worth reading for each question: linked
# skeletons need `bpftool gen`; loader -D flags any define (most Makefiles: read only when
# asked). Substrings of the lowered text: a case-insensitive regex costs more than the rest of
# a warm one-file run's look at the build files up to a kernel tree's root.
_LINKS = (b"bpftool",)
# (`-i`, `include_directories`: the include directories of secl.parse.includes, which reads
# the same files and so shares the one look at each directory)
_DEFINES = (b"bpftool", b"-d", b"definitions", b"c_args", b"-i", b"include_directories")


def build_files(project: Project, wanted: tuple[bytes, ...] = _DEFINES) -> list[BuildFile]:
    key = f"c-build-files:{wanted!r}"
    found = project.memo.get(key)
    if found is None:
        found = project.memo[key] = _read_build_files(project, wanted)
    return found  # type: ignore[return-value]


def _read_build_files(project: Project, wanted: tuple[bytes, ...]) -> list[BuildFile]:
    root = project.absolute(project.root)
    directories: set[str] = set()
    for path in project.files:
        directory = os.path.dirname(project.absolute(path))
        while directory not in directories:
            directories.add(directory)
            if directory == root or not directory.startswith(root + os.sep):
                break
            directory = os.path.dirname(directory)
    # Each build file is read once per run, whatever it is asked for.
    parsed = project.memo.setdefault("c-build-parsed", {})
    # and each directory listed once (its build files' names), whatever is asked
    listed = project.memo.setdefault("c-build-listed", {})
    return [
        b
        for directory in sorted(directories)
        for b in _build_files_in(directory, wanted, parsed, listed)  # type: ignore[arg-type]
    ]


def _build_files_in(
    directory: str,
    wanted: tuple[bytes, ...],
    parsed: dict[str, BuildFile] | None = None,
    listed: dict[str, list[str]] | None = None,
) -> list[BuildFile]:
    """The build files of one directory whose text holds one of `wanted` (in any case),
    read (from `parsed` when an earlier question read them; the names from `listed`)."""
    names = listed.get(directory) if listed is not None else None
    if names is None:
        try:
            with os.scandir(directory) as entries:
                names = sorted(e.name for e in entries if is_build_file(e.name) and e.is_file())
        except OSError:
            names = []
        if listed is not None:
            listed[directory] = names
    out = []
    for name in names:
        path = os.path.join(directory, name)
        try:
            if os.path.getsize(path) > _MAX_BUILD_BYTES:
                continue
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        lowered = data.lower()
        if any(needle in lowered for needle in wanted):
            build = parsed.get(path) if parsed is not None else None
            if build is None:
                build = read_build_file(path, data)
                if parsed is not None:
                    parsed[path] = build
            out.append(build)
    return out


def loader_defines(project: Project, path: str) -> dict[str, str]:
    """NAME -> VALUE for the macros a loader is compiled with: the configuration's
    `defines`, its compile_commands.json entry, and the -D flags of the build rule that
    compiles it. A name given two different values is left out: which one applies is not
    known."""
    values: dict[str, set[str]] = {}

    def add(text: str) -> None:
        name, sep, value = text.partition("=")
        name = name.strip()
        if re.fullmatch(r"[A-Za-z_]\w*", name):
            values.setdefault(name, set()).add(value.strip() if sep else "1")

    for text in project.config.defines:
        add(text)
    db = _compile_db(project)
    if db is not None:
        for command in db.for_file(path):
            for text in command.defines:
                add(text)
    base = os.path.basename(path)
    for build in build_files(project):
        for source, text in build.defines:
            if source is None or source == base or _matches(source, base):
                add(text)
    return {name: next(iter(found)) for name, found in values.items() if len(found) == 1}


def _matches(pattern: str, name: str) -> bool:
    if "%" not in pattern:
        return False
    head, _, tail = pattern.partition("%")
    return name.startswith(head) and name.endswith(tail) and len(name) > len(head + tail)


def _compile_db(project: Project):
    if "c-compile-db" not in project.memo:
        from secl.parse import compdb

        db = None
        try:
            located = compdb.locate(project.root, project.config.compile_commands)
            if located is not None:
                db = compdb.load(located)
        except compdb.CompileCommandsError:
            db = None  # reported once by the macro resolution
        project.memo["c-compile-db"] = db
    return project.memo["c-compile-db"]


def object_stem(obj: str) -> str:
    """`out/x.tmp.bpf.o` -> `x`: the source name an object is built from, by convention."""
    name = os.path.basename(obj)
    while True:
        shorter = _OBJECT_PARTS.sub("", name)
        if shorter == name:
            return name
        name = shorter


def linked_skeletons(project: Project, sources: list[str]) -> dict[str, list[str]]:
    """Skeleton name -> the BPF sources linked into it, for skeletons whose object
    `bpftool gen object` links from more than one source. `sources` are the project's BPF
    sources."""
    found = project.memo.get("c-linked-skeletons")
    if found is not None:
        return found  # type: ignore[return-value]
    by_stem: dict[str, list[str]] = {}
    for path in sources:
        name = os.path.basename(path)
        for suffix in (".bpf.c", ".c"):
            if name.endswith(suffix):
                by_stem.setdefault(name[: -len(suffix)], []).append(path)
                break
    out: dict[str, list[str]] = {}
    for build in build_files(project, _LINKS):
        here = os.path.dirname(os.path.abspath(build.path))
        links = dict(build.linked)
        names: dict[str, set[str]] = {}
        for name, obj in build.skeletons:
            names.setdefault(os.path.basename(obj), set()).add(name)
        for output, inputs in build.linked:
            stems = [_stems(i, links, set()) for i in inputs]
            if "%" in output:
                extra = [s for s in stems if s and not any("%" in x for x in s)]
                if not extra:
                    continue  # every object from its own source: nothing is linked
                for stem, paths in by_stem.items():
                    members = [_near(here, by_stem.get(x.replace("%", stem), [])) for s in stems
                               for x in s]  # fmt: skip
                    if not paths or not all(members):
                        continue
                    obj = os.path.basename(output).replace("%", stem)
                    linked = sorted({p for group in members for p in group})
                    explicit = {n for n in names.get(os.path.basename(output), set()) if n}
                    for name in _names(obj, explicit or {""}):
                        _merge(out, name, linked)
                continue
            members = [_near(here, by_stem.get(x, [])) for s in stems for x in s]
            if not members or not all(members):
                continue  # an input secl cannot tie to one source: do not guess
            linked = sorted({p for group in members for p in group})
            if len(linked) < 2:
                continue
            obj = os.path.basename(output)
            for name in _names(obj, names.get(obj, {""})):
                _merge(out, name, linked)
    project.memo["c-linked-skeletons"] = out
    return out


def _names(obj: str, given: set[str]) -> set[str]:
    """Skeleton names of an object: the `name` given to gen skeleton, else bpftool's default
    and the object's stem (what build systems that pass `name $*` use)."""
    out = {n for n in given if n}
    if "" in given:
        out |= {default_skeleton_name(obj), object_stem(obj)}
    return out


def _stems(obj: str, links: dict[str, tuple[str, ...]], seen: set[str]) -> list[str]:
    """The source stems an object is made of, through nested `gen object` links."""
    if obj in links and obj not in seen:
        seen.add(obj)
        return [x for i in links[obj] for x in _stems(i, links, seen)]
    return [object_stem(obj)]


def _near(here: str, candidates: list[str]) -> list[str]:
    """Of several sources with one name, those under the build file's directory."""
    if len(candidates) <= 1:
        return candidates
    inside = [p for p in candidates if os.path.abspath(p).startswith(here + os.sep)]
    return inside if len(inside) == 1 else []


def _merge(out: dict[str, list[str]], name: str, paths: list[str]) -> None:
    known = out.setdefault(name, [])
    known += [p for p in paths if p not in known]


def linked_near(path: str, root: str) -> dict[str, set[str]]:
    """Skeleton name -> the source stems `bpftool gen object` links into it, as the build
    files in the directory of `path` and its parents up to `root` say (for pairing, before
    any project exists: a one-file run of one linked source must find the loader that opens
    the skeleton by another name). Pattern rules (`%`) are left out: they make one skeleton
    per stem, which the stem already names."""
    out: dict[str, set[str]] = {}
    root = os.path.abspath(root)
    directory = os.path.dirname(os.path.abspath(path))
    while True:
        for build in _build_files_in(directory, _LINKS):
            links = dict(build.linked)
            skeletons: dict[str, set[str]] = {}
            for skeleton, obj in build.skeletons:
                skeletons.setdefault(os.path.basename(obj), set()).add(skeleton)
            for output, _inputs in build.linked:
                if "%" in output:
                    continue
                stems = set(_stems(output, links, set()))
                obj = os.path.basename(output)
                for skeleton in _names(obj, skeletons.get(obj, {""})):
                    out.setdefault(skeleton, set()).update(stems)
        if directory == root or not directory.startswith(root + os.sep):
            return out
        directory = os.path.dirname(directory)


# Build files that may link an executable: a composite kbuild program, a rule over objects
# or sources, CMake's add_executable(), meson's executable().
_EXECUTABLES = (b".o", b".c", b"executable")


def executables_of(project: Project, path: str) -> list[str]:
    """The executables the build files in the directory of C file `path` and above link
    from it (its source or object among their inputs): the names its argv[0] can have."""
    memo = project.memo.setdefault("c-executables", {})
    known = memo.get(path)  # type: ignore[attr-defined]
    if known is not None:
        return known
    here = os.path.dirname(os.path.abspath(path))
    own = os.path.splitext(os.path.basename(path))[0]
    found: list[str] = []
    for build in build_files(project, _EXECUTABLES):
        directory = os.path.dirname(os.path.abspath(build.path))
        if here != directory and not here.startswith(directory + os.sep):
            continue
        for name, members in build.executables:
            if any(os.path.splitext(m)[0] == own for m in members) and name not in found:
                found.append(name)
    memo[path] = found  # type: ignore[index]
    return found


def samples_executable(path: str) -> list[str]:
    """For a C file in a directory with no build file: the executable samples/bpf's own
    layout makes of it, which the loaders of its bpf_load.c copied (Linux
    samples/bpf/Makefile: `X-objs := X_user.o`, and X opens "%s_kern.o" of argv[0],
    X_kern.o), or none. A build file beside it that links no executable from it says
    otherwise."""
    name = os.path.basename(path)
    if not name.endswith("_user.c") or len(name) <= len("_user.c"):
        return []
    try:
        with os.scandir(os.path.dirname(os.path.abspath(path))) as entries:
            if any(is_build_file(e.name) for e in entries):
                return []
    except OSError:
        return []
    return [name[: -len("_user.c")]]


# Objects loaded by a command in a shell script or a build recipe, not by code of the project.
#
# iproute2 loads a BPF object named on its command line: `tc filter add ... bpf da obj F sec S`,
# `ip link set dev D xdp obj F sec S` (iproute2 lib/bpf_libbpf.c load_bpf_object(): every
# program's type is set from the command, bpf_program__set_type(p, cfg->type), and the
# section picks the program, so libbpf never types a program by its section name).
_IPROUTE2_LOAD = re.compile(rb"(?m)^[^#\n]*\b(?:bpf|xdp\w*)\b[^\n]*\bobj\s+\S")
# bpftool loads with libbpf: `bpftool [OPTIONS] prog load|loadall OBJ PATH [type TYPE] ...
# [autoattach]` (tools/bpf/bpftool/prog.c load_with_options(): with `type`, every program
# gets that type (bpf_program__set_type); without it each is typed by its section name
# (get_prog_type_by_name(), which fails the command on a name libbpf does not know);
# `autoattach` attaches every program with bpf_program__attach() (auto_attach_program()),
# which parses the section's suffix; without it programs are only pinned.)
_BPFTOOL_LOAD = re.compile(
    rb"(?m)^[^#\n]*\bbpftool(?:[ \t]+-{1,2}[\w-]+)*[ \t]+prog[ \t]+load(?:all)?[ \t]+"
    rb"(?P<rest>(?:[^\\\n;&|]|\\[^\n]|\\\n)*)"
)
# xdp-tools' loader: `xdp-loader load [options] IFACE FILE...` (xdp-loader/xdp-loader.c
# do_load(): each FILE is opened with xdp_program__create()/xdp_program__open_file(), the
# program picked by `--prog-name`/`--section`, and attached through libxdp, which sets
# BPF_PROG_TYPE_XDP on it before loading (lib/libxdp/libxdp.c xdp_program__attach_single()),
# so libbpf never types it by its section name). Every `.o` word after `load` is an object,
# and a variable ending the command may be one.
_XDP_LOADER_LOAD = re.compile(
    rb"(?m)^[^#\n]*\bxdp-loader[ \t]+load[ \t]+(?P<rest>(?:[^\\\n;&|]|\\[^\n]|\\\n)*)"
)
# bpftool's keywords of `prog load` that take a value, and how many (prog.c do_help(): `map
# {idx IDX | name NAME} MAP`, and MAP is `id ID`, `pinned FILE` or `name NAME`).
_BPFTOOL_VALUES = {"type": 1, "map": 4, "dev": 1, "offload_dev": 1, "xdpmeta_dev": 1,
                   "pinmaps": 1, "kernel_btf": 1}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CommandLoad:
    """One command that loads the object of a BPF source (see _BPFTOOL_LOAD)."""

    tool: str  # "bpftool", "iproute2" or "xdp-loader"
    path: str  # the script or build file
    typed: bool  # every program's type is given on the command line
    autoattach: bool  # every program is attached the generic way (suffix parsed)
    span: Span | None = None  # the command
    named: bool = True  # the object is written out (not a variable: any object the file names)


def command_loads(project: Project, bpf_path: str, shelled: bool = False) -> list[CommandLoad]:
    """The commands in the shell scripts and build files of the directory of `bpf_path` and
    above that load the object built from it (named by its file name); with `shelled`, the
    commands C programs there run too (_shelled_commands: read only where a finding hangs on
    it, never for every source)."""
    from secl.pairing import stem

    base = stem(bpf_path)
    names = {f"{base}.o", f"{base}.bpf.o"}
    root = project.absolute(project.root)
    directory = os.path.dirname(project.absolute(bpf_path))
    memo = project.memo.setdefault("command-loads", {})
    shelled_memo = project.memo.setdefault("command-loads-c", {}) if shelled else None
    found: list[CommandLoad] = []
    while True:
        loads = memo.get(directory)  # type: ignore[attr-defined]
        if loads is None:
            loads = memo[directory] = _command_loads_in(directory)  # type: ignore[index]
        found.extend(load for obj, load in loads if obj in names)
        if shelled_memo is not None:  # the C programs' commands, read once, on top
            more = shelled_memo.get(directory)  # type: ignore[attr-defined]
            if more is None:
                skip = _bpf_sources(project)
                more = shelled_memo[directory] = _command_loads_in(directory, skip)  # type: ignore[index]
            found.extend(load for obj, load in more if obj in names)
        if directory == root or not directory.startswith(root + os.sep):
            return found
        directory = os.path.dirname(directory)


def _bpf_sources(project: Project) -> frozenset[str]:
    """The absolute paths of the files with section sites: BPF code, which shells out to
    nothing (their C is never read for commands)."""
    found = project.memo.get("command-bpf-sources")
    if found is None:
        found = project.memo["command-bpf-sources"] = frozenset(
            os.path.abspath(p) for p in {s.path for s in project.sites}
        )
    return found  # type: ignore[return-value]


def _command_loads_in(
    directory: str, skip: frozenset[str] | None = None
) -> list[tuple[str, CommandLoad]]:
    """(object file name, load) for the commands of one directory's scripts and build files
    or, given the BPF sources to `skip`, of its other C programs."""
    out: list[tuple[str, CommandLoad]] = []
    try:
        with os.scandir(directory) as entries:
            names = sorted(
                e.name for e in entries
                if (e.name.endswith(_C_SUFFIXES) if skip is not None
                    else e.name.endswith(".sh") or is_build_file(e.name))
                and e.is_file()
            )  # fmt: skip
    except OSError:
        return []
    if skip:
        names = [n for n in names if os.path.join(directory, n) not in skip]
    for name in names:
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as fh:
                data = fh.read(_MAX_BUILD_BYTES)
        except OSError:
            continue
        if name.endswith(_C_SUFFIXES):
            data = _shelled_commands(data)
        loads: list[tuple[bytes, CommandLoad]] = []
        if b"obj" in data:
            for m in _IPROUTE2_LOAD.finditer(data):
                end = data.find(b"\n", m.end())
                line = data[m.start() : end if end >= 0 else len(data)]
                span = _span(data, m.start(), m.end())
                for obj in re.findall(rb"\bobj\s+(\S+)", line):
                    loads.append((obj, CommandLoad("iproute2", path, True, False, span)))
        if b"bpftool" in data:
            for m in _BPFTOOL_LOAD.finditer(data):
                parsed = _bpftool_load(m.group("rest").replace(b"\\\n", b" "))
                if parsed is not None:
                    obj, typed, autoattach = parsed
                    span = _span(data, m.start(), m.end())
                    loads.append((obj, CommandLoad("bpftool", path, typed, autoattach, span)))
        if b"xdp-loader" in data:
            for m in _XDP_LOADER_LOAD.finditer(data):
                span = _span(data, m.start(), m.end())
                words = m.group("rest").replace(b"\\\n", b" ").split()
                for i, obj in enumerate(words):
                    # FILE... come last: a variable there (`$<`) may be any object named
                    if obj.rstrip(b"\"'").endswith(b".o") or (b"$" in obj and i == len(words) - 1):
                        loads.append((obj, CommandLoad("xdp-loader", path, True, False, span)))
        for obj, load in loads:
            if b"$" not in obj:
                out.append((_file_name(obj), load))
                continue
            # A variable (`obj $OBJ`, `prog load $< ...`): any object the file names may be it.
            for name in sorted(set(_OBJECT_NAME.findall(data))):
                out.append((name.decode("utf-8", "replace"), replace(load, named=False)))
    return out


# A C program that shells out: the command line it hands system() or popen() (one string,
# adjacent literals joined as C joins them) or the argv it hands execl()/execlp()/execle()
# (one literal a word, after the path) runs the same tool a script would.
_C_SUFFIXES = (".c", ".cc", ".cpp", ".cxx")
# (Patterns: re compiles them on first use, in a run that needs them.)
_SHELL_CALL = rb"\b(?:(?P<shell>system|popen)|execl[pe]?)\s*\("
_CALL_TOKEN = rb'"((?:[^"\\\n]|\\.)*)"|[();]'


def _shelled_commands(data: bytes) -> bytes:
    """The command lines a C file runs through system()/popen()/execl*(), from their string
    literals only (a command built at run time is not read), each written where its first
    literal starts over a copy of the file blanked to spaces and newlines, so a span found in
    it is the call's place in the file. `b""` for a file that shells out to no such command:
    a cheap byte test keeps the others from being scanned."""
    if b"obj" not in data or (b"system" not in data and b"popen" not in data
                              and b"execl" not in data):  # fmt: skip
        return b""
    out = bytearray(re.sub(rb"[^\n]", b" ", data))
    tokens = re.compile(_CALL_TOKEN)
    for m in re.finditer(_SHELL_CALL, data):
        literals, depth = [], 1
        for t in tokens.finditer(data, m.end()):  # the call's own arguments only
            if t.group(1) is not None:
                literals.append(t)
            else:
                depth += 1 if t.group() == b"(" else -1
                if depth == 0 or t.group() == b";":
                    break
        if not literals:
            continue
        words = [w.group(1) for w in literals]
        # execl's first argument is the file run, its second argv[0]: the command's words
        # start there
        line = b"".join(words) if m.group("shell") else b" ".join(words[1:])
        at, end = literals[0].start(), literals[-1].end()
        # never longer than the literals; the newlines between them follow it, so every
        # later line keeps its number
        line = line.replace(b"\n", b" ") + b"\n" * data.count(b"\n", at, end)
        out[at : at + len(line)] = line
    return bytes(out)


# An object file name written in a script or build file.
_OBJECT_NAME = re.compile(rb"(?<![\w.-])[\w.-]+\.o\b(?![\w.-])")


def _span(data: bytes, start: int, end: int) -> Span:
    from secl.parse.tree import Positions

    start += len(data[start:end]) - len(data[start:end].lstrip())  # the command, not the indent
    return Positions(data).span(start, end)


def command_uses(project: Project, bpf_path: str) -> list[LoaderUse]:
    """`bpftool prog load` commands of the object of `bpf_path` as uses of libbpf (bpftool
    opens and loads with it: prog.c load_with_options()), so the upgrade applies to what they
    load; certain when the command writes the object's name out."""
    from secl.loaders import LIBBPF, LoaderUse

    out = []
    for load in command_loads(project, bpf_path):
        if load.span is None:
            continue
        # iproute2 built with libbpf loads every object through it (lib/bpf_legacy.c
        # bpf_do_load(): iproute2_load_libbpf() under HAVE_LIBBPF), typing programs itself.
        # xdp-loader opens and loads through libxdp, over libbpf (xdp-loader.c do_load()).
        value = {"iproute2": "iproute2 ... obj", "xdp-loader": "xdp-loader load"}.get(
            load.tool, "bpftool prog load"
        )
        value += " ... autoattach" if load.autoattach else ""
        out.append(
            LoaderUse(
                LIBBPF, os.path.relpath(load.path), load.span, value,
                auto_attach=load.autoattach, certain=load.named,
            )
        )  # fmt: skip
    return out


def _file_name(word: bytes) -> str:
    """The file name of a path as written (`$(OUTPUT)/x.bpf.o` -> `x.bpf.o`)."""
    return os.path.basename(word.decode("utf-8", "replace").strip("\"'"))


def _bpftool_load(rest: bytes) -> tuple[bytes, bool, bool] | None:
    """(OBJ, whether `type` is given, whether `autoattach` is) of what follows `prog load`."""
    words = rest.split()
    if len(words) < 2:
        return None
    typed = autoattach = False
    i = 2  # OBJ PATH, then keywords
    while i < len(words):
        word = words[i].decode("utf-8", "replace")
        if word == "autoattach":
            autoattach = True
        elif word == "type":
            typed = True
        i += 1 + _BPFTOOL_VALUES.get(word, 0)
    return words[0], typed, autoattach
