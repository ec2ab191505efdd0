"""`compile_commands.json`: where it is, and what each entry says about one source file.

Read with the json module rather than libclang's CompilationDatabase: that keeps libclang out of
runs that never need it, and a broken file gets an error message naming what is wrong.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import BinaryIO

FILE_NAME = "compile_commands.json"
# Where a project keeps it when no path is configured: its root, or a CMake/Meson build dir.
SEARCH = ("", "build")

# Options that take a value (as the next argument or glued on) and that only change what the
# compiler writes, never how the source preprocesses: dropped before libclang sees them.
_OUTPUT_WITH_VALUE = ("-o", "-MF", "-MT", "-MQ", "-MJ")
_OUTPUT_FLAGS = frozenset(
    {"-c", "-S", "-E", "-M", "-MM", "-MD", "-MMD", "-MP", "-MG", "-v", "-###"}
)
_INCLUDE_DIR_OPTIONS = ("-iquote", "-isystem", "-idirafter", "-I")
_WITH_VALUE = frozenset(
    {"-D", "-U", "-I", "-include", "-imacros", "-iquote", "-isystem", "-idirafter", "-target",
     "-x", "-Xclang", "-arch", "-isysroot", "--sysroot", "-std"}
)  # fmt: skip


class CompileCommandsError(Exception):
    """A compile_commands.json that cannot be used: the file, and what is wrong in one line."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class CompileCommand:
    """One entry, normalised: absolute paths, and the flags split by what they do."""

    file: str  # absolute, normalised
    directory: str
    compiler: str  # argv[0]
    args: tuple[str, ...]  # flags for libclang: no compiler, source, -c or -o
    quote_dirs: tuple[str, ...]  # -iquote
    include_dirs: tuple[str, ...]  # -I, -isystem, -idirafter, in order
    defines: tuple[str, ...]  # -D texts: NAME, NAME=VALUE, NAME(ARGS)=BODY
    undefines: tuple[str, ...]
    forced_includes: tuple[str, ...]  # -include / -imacros
    target: str | None  # -target / --target=

    @property
    def configuration(self) -> str:
        """The -D/-U flags as written: what tells two entries of one file apart."""
        parts = [f"-D{text}" for text in self.defines] + [f"-U{name}" for name in self.undefines]
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class CompileDb:
    """A compile_commands.json, its entries by absolute source path."""

    path: str
    entries: dict[str, tuple[CompileCommand, ...]]  # absolute source path -> its entries
    skipped: int = 0  # entries without a usable file or command

    def for_file(self, path: str) -> tuple[CompileCommand, ...]:
        found = self.entries.get(os.path.normpath(os.path.abspath(path)))
        if found is None:
            found = self.entries.get(os.path.realpath(path), ())
        return found


def locate(root: str, configured: str | None) -> str | None:
    """The compile_commands.json to use: the configured file or directory (an error if it does
    not exist), else one in the project root or its build/ directory, else None."""
    if configured:
        candidate = os.path.join(configured, FILE_NAME) if os.path.isdir(configured) else configured
        if not os.path.isfile(candidate):
            raise CompileCommandsError(candidate, "no such file (compile-commands)")
        return candidate
    for sub in SEARCH:
        candidate = os.path.join(root, sub, FILE_NAME)
        if os.path.isfile(candidate):
            return candidate
    return None


def load(path: str, wanted: set[str] | None = None) -> CompileDb:
    """The entries of the compile_commands.json at `path`; with `wanted` (absolute,
    normalised source paths), only theirs. The file is read as a stream, one entry at a time
    (a kernel-size database is hundreds of megabytes, most of it about files the run does
    not read)."""
    try:
        with open(path, "rb") as fh:
            return parse_entries(_stream(fh, path), path, wanted)
    except OSError as err:
        raise CompileCommandsError(path, f"cannot read: {err.strerror or err}") from err


def in_view(paths: Iterable[str]) -> set[str]:
    """The source paths whose entries a run keeps (`CompileDb.for_file` looks them up by
    absolute normalised path, then by real path)."""
    out = set()
    for path in paths:
        out.add(os.path.normpath(os.path.abspath(path)))
        out.add(os.path.realpath(path))
    return out


# Bytes read at a time: an entry is a few hundred bytes, a chunk holds thousands.
_CHUNK = 1 << 20


def _stream(fh: BinaryIO, path: str) -> Iterator[object]:
    """The elements of the JSON array in `fh`, decoded one at a time (the C scanner of the
    json module on a window of the text: memory stays at a chunk plus one entry)."""
    import codecs
    import json

    decoder = json.JSONDecoder()
    text_of = codecs.getincrementaldecoder("utf-8")()
    buffer = ""
    pos = 0
    eof = False

    def fill() -> bool:
        nonlocal buffer, pos, eof
        if eof:
            return False
        chunk = fh.read(_CHUNK)
        try:
            text = text_of.decode(chunk, final=not chunk)
        except UnicodeDecodeError as err:
            raise CompileCommandsError(path, f"not valid JSON: {err}") from err
        eof = not chunk
        buffer = buffer[pos:] + text
        pos = 0
        return bool(chunk) or bool(text)

    def skip_space() -> str | None:
        nonlocal pos
        while True:
            while pos < len(buffer) and buffer[pos] in " \t\r\n":
                pos += 1
            if pos < len(buffer):
                return buffer[pos]
            if not fill():
                return None

    def invalid(what: str) -> CompileCommandsError:
        return CompileCommandsError(path, f"not valid JSON: {what}")

    if skip_space() != "[":
        if pos < len(buffer) or buffer:
            raise CompileCommandsError(path, "expected a JSON array of entries")
        raise invalid("the file is empty")
    pos += 1
    first = True
    while True:
        ch = skip_space()
        if ch is None:
            raise invalid("the array does not end")
        if ch == "]":
            pos += 1
            if skip_space() is not None:
                raise invalid("extra data after the array")
            return
        if not first:
            if ch != ",":
                raise invalid(f"expected `,` or `]` in the array, not {ch!r}")
            pos += 1
            if skip_space() is None:
                raise invalid("the array does not end")
        first = False
        while True:
            try:
                item, end = decoder.raw_decode(buffer, pos)
                if end == len(buffer) and not eof:
                    raise ValueError("maybe cut")  # a number may go on in the next chunk
            except ValueError as err:
                if fill():
                    continue
                raise invalid(str(err)) from err
            break
        pos = end
        yield item


def parse_entries(raw: object, path: str, wanted: set[str] | None = None) -> CompileDb:
    if isinstance(raw, dict | str | int | float | bool) or raw is None:
        raise CompileCommandsError(path, "expected a JSON array of entries")
    entries: dict[str, list[CompileCommand]] = {}
    skipped = 0
    seen = shaped = 0
    names = {os.path.basename(w) for w in wanted} if wanted is not None else set()
    for item in raw:
        seen += 1
        if isinstance(item, dict) and isinstance(item.get("file"), str):
            shaped += isinstance(item.get("command"), str) or isinstance(
                item.get("arguments"), list
            )
        if wanted is not None and not _is_wanted(item, path, wanted, names):
            continue
        command = _entry(item, path)
        if command is None:
            skipped += 1
            continue
        entries.setdefault(command.file, []).append(command)
    if seen and not shaped:
        raise CompileCommandsError(
            path, "no entry has a `file` and a `command` or `arguments` list"
        )
    return CompileDb(path, {k: tuple(v) for k, v in entries.items()}, skipped)


def _is_wanted(item: object, db_path: str, wanted: set[str], names: set[str]) -> bool:
    """Whether an entry is about one of the `wanted` sources (whose base names are `names`):
    cheap, no command line is split."""
    if not isinstance(item, dict):
        return False
    file, directory = item.get("file"), item.get("directory", "")
    if not isinstance(file, str) or not isinstance(directory, str):
        return False
    if os.path.basename(file) not in names:
        return False
    directory = os.path.join(os.path.dirname(os.path.abspath(db_path)), directory)
    return os.path.normpath(os.path.join(directory, file)) in wanted


def _entry(item: object, db_path: str) -> CompileCommand | None:
    if not isinstance(item, dict):
        return None
    file, directory = item.get("file"), item.get("directory", "")
    if not isinstance(file, str) or not isinstance(directory, str):
        return None
    directory = os.path.join(os.path.dirname(os.path.abspath(db_path)), directory)
    arguments = item.get("arguments")
    if isinstance(arguments, list) and all(isinstance(a, str) for a in arguments):
        argv = list(arguments)
    elif isinstance(item.get("command"), str):
        try:
            argv = shlex.split(item["command"])
        except ValueError:
            return None
    else:
        return None
    if not argv:
        return None
    source = os.path.normpath(os.path.join(directory, file))
    return command_from_argv(argv, source, directory)


def command_from_argv(argv: list[str], source: str, directory: str) -> CompileCommand:
    """Split a compiler command line; relative paths are taken from `directory`."""

    def absolute(p: str) -> str:
        return os.path.normpath(os.path.join(directory, p))

    args: list[str] = []
    quote_dirs: list[str] = []
    include_dirs: list[str] = []
    defines: list[str] = []
    undefines: list[str] = []
    forced: list[str] = []
    target: str | None = None
    i = 1
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg in _OUTPUT_FLAGS:
            continue
        if arg in _OUTPUT_WITH_VALUE:
            i += 1
            continue
        if arg.startswith(_OUTPUT_WITH_VALUE):
            continue  # glued value: -oout.o, -MFdeps.d
        if not arg.startswith("-") and absolute(arg) == source:
            continue  # the source itself
        value: str | None = None
        option = arg
        if arg in _WITH_VALUE and i < len(argv):
            value = argv[i]
            i += 1
        elif arg.startswith("--target="):
            option, value = "-target", arg.split("=", 1)[1]
        else:
            for prefix in ("-D", "-U", "-I", *_INCLUDE_DIR_OPTIONS):
                if arg.startswith(prefix) and len(arg) > len(prefix):
                    option, value = prefix, arg[len(prefix) :]
                    break
        if value is None:
            args.append(arg)
            continue
        if option == "-D":
            defines.append(value)
        elif option == "-U":
            undefines.append(value)
        elif option == "-iquote":
            quote_dirs.append(absolute(value))
            value = absolute(value)
        elif option in ("-I", "-isystem", "-idirafter"):
            include_dirs.append(absolute(value))
            value = absolute(value)
        elif option in ("-include", "-imacros"):
            forced.append(absolute(value))
            value = absolute(value)
        elif option == "-target":
            target = value
        args += [option, value]
    return CompileCommand(
        file=source,
        directory=directory,
        compiler=argv[0],
        args=tuple(args),
        quote_dirs=tuple(quote_dirs),
        include_dirs=tuple(include_dirs),
        defines=tuple(defines),
        undefines=tuple(undefines),
        forced_includes=tuple(forced),
        target=target,
    )
