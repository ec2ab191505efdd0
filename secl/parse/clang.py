"""libclang, with a file's own compile command, for the sections tree-sitter leaves unresolved.

The Python bindings never show a section attribute's string (it is an UNEXPOSED_ATTR without
tokens), but they do show an `annotate` attribute's, already concatenated. So `section(x)` is
defined on the command line as `annotate("secl-section:" x)`: every `SEC(...)`, however many
macros build it, ends up as an ANNOTATE_ATTR on its function or variable, located where the
outermost macro is used. `clang.cindex` is imported only here, and only when a site needs it.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from secl.parse.compdb import CompileCommand

MARKER = "secl-section:"
_ANNOTATE = (
    f'-Dsection(x)=annotate("{MARKER}" x)',
    f'-D__section__(x)=annotate("{MARKER}" x)',
    # libbpf's definition, for when bpf_helpers.h is not on the include path (its own
    # definition, when found, replaces this one and means the same).
    "-DSEC(name)=__attribute__((section(name), used))",
)
RESOURCE_ENV = "SECL_CLANG_RESOURCE_DIR"
# Where distributions install clang's builtin headers (stddef.h, stdarg.h, ...).
RESOURCE_GLOBS = (
    "/usr/lib/llvm-*/lib/clang/*/include",
    "/usr/lib/clang/*/include",
    "/usr/lib64/clang/*/include",
    "/usr/local/lib/clang/*/include",
    "/opt/homebrew/opt/llvm/lib/clang/*/include",
)
_KEEP_GOING = 0x200  # CXTranslationUnit_KeepGoing: report every error, keep the partial AST


class ClangUnavailable(Exception):
    """libclang cannot run here: one line saying what to install or set."""


@dataclass(frozen=True, slots=True)
class ClangSection:
    """One declaration with a section, as libclang expanded it."""

    path: str  # absolute: the file where the outermost macro (SEC, a wrapper) is used
    offset: int  # byte offset of that macro's name
    end: int | None  # end of the macro use, when libclang recorded it
    name: str  # the function or variable
    kind: str  # "program" (function) or "data"
    section: str


@dataclass(frozen=True, slots=True)
class ClangResult:
    """The sections libclang computed for one file, and its first errors."""

    sections: tuple[ClangSection, ...]
    errors: tuple[str, ...]  # the first error diagnostics, "file:line: message"


def find_resource_include(
    compilers: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    globs: Sequence[str] = RESOURCE_GLOBS,
    which=shutil.which,
) -> str | None:
    """A clang builtin-header directory (it must hold stddef.h): $SECL_CLANG_RESOURCE_DIR,
    then `<compiler> -print-resource-dir` for the compile commands' clang and for `clang` on
    PATH, then the usual install locations, newest version first."""
    env = os.environ if env is None else env
    configured = env.get(RESOURCE_ENV)
    if configured:
        return _with_stddef(configured)
    tried: set[str] = set()
    for compiler in [*compilers, "clang"]:
        if "clang" not in os.path.basename(compiler):
            continue
        exe = which(compiler)
        if exe is None or exe in tried:
            continue
        tried.add(exe)
        try:
            out = subprocess.run(
                [exe, "-print-resource-dir"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        found = _with_stddef(out) if out else None
        if found is not None:
            return found
    candidates = [path for pattern in globs for path in glob.glob(pattern)]
    for path in sorted(candidates, key=_version_key, reverse=True):
        if os.path.isfile(os.path.join(path, "stddef.h")):
            return path
    return None


def _with_stddef(directory: str) -> str | None:
    for candidate in (os.path.join(directory, "include"), directory):
        if os.path.isfile(os.path.join(candidate, "stddef.h")):
            return candidate
    return None


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path)[-3:])


def missing_resource_message(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if env.get(RESOURCE_ENV):
        return (
            f"{RESOURCE_ENV}={env[RESOURCE_ENV]} holds no stddef.h (give clang's resource "
            "directory, the output of `clang -print-resource-dir`)"
        )
    return (
        "libclang needs clang's builtin headers (stddef.h, ...), which the libclang wheel does "
        "not ship, and none were found (`clang -print-resource-dir`, "
        f"{RESOURCE_GLOBS[0]}): install clang or set {RESOURCE_ENV}"
    )


def parse_sections(
    path: str,
    data: bytes,
    command: CompileCommand,
    resource_include: str,
    extra_defines: Sequence[str] = (),
) -> ClangResult:
    """Every section attribute of the translation unit `path` (its text is `data`), compiled
    with `command`'s flags plus `extra_defines` (--define, --target-arch)."""
    try:
        import clang.cindex as ci
    except ImportError as err:
        raise ClangUnavailable(f"libclang is not installed (pip install libclang): {err}") from err
    source = os.path.abspath(path)
    args = [
        *command.args,
        "-isystem",
        resource_include,
        *(f"-D{d}" for d in extra_defines),
        *_ANNOTATE,
        "-Wno-everything",
        "-ferror-limit=0",
    ]
    options = (
        ci.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD
        | ci.TranslationUnit.PARSE_SKIP_FUNCTION_BODIES
        | _KEEP_GOING
    )
    try:
        index = ci.Index.create()
        tu = index.parse(source, args=args, unsaved_files=[(source, data)], options=options)
    except ci.TranslationUnitLoadError:
        # libclang says no more than "Error parsing translation unit": show the flags.
        flags = " ".join(command.args)
        flags = flags if len(flags) <= 160 else flags[:159] + "…"
        return ClangResult((), (f"cannot compile it with its compile command's flags ({flags})",))
    except ci.LibclangError as err:  # the shared library itself failed to load
        raise ClangUnavailable(f"libclang cannot be loaded: {err}") from err
    uses: dict[tuple[str, int], int] = {}
    found: dict[tuple[str, int, str], ClangSection] = {}
    decl_kinds = {ci.CursorKind.FUNCTION_DECL: "program", ci.CursorKind.VAR_DECL: "data"}
    for cursor in tu.cursor.get_children():
        kind = cursor.kind
        if kind == ci.CursorKind.MACRO_INSTANTIATION:
            start, end = cursor.extent.start, cursor.extent.end
            if start.file is not None:
                uses[(os.path.abspath(start.file.name), start.offset)] = end.offset
            continue
        if kind not in decl_kinds:
            continue
        for attr in cursor.get_children():
            if attr.kind != ci.CursorKind.ANNOTATE_ATTR or not attr.spelling.startswith(MARKER):
                continue
            loc = attr.location
            if loc.file is None:
                continue
            file = os.path.abspath(loc.file.name)
            key = (file, loc.offset, cursor.spelling)
            if key not in found:
                found[key] = ClangSection(
                    file, loc.offset, None, cursor.spelling, decl_kinds[kind],
                    attr.spelling[len(MARKER) :],
                )  # fmt: skip
    sections = tuple(
        ClangSection(s.path, s.offset, uses.get((s.path, s.offset)), s.name, s.kind, s.section)
        for s in found.values()
    )
    errors = tuple(f"{_where(d.location)}{d.spelling}" for d in tu.diagnostics if d.severity >= 3)[
        :3
    ]
    return ClangResult(sections, errors)


def compiler_version() -> tuple[int, int, int] | None:
    """libclang's own __clang_major__/__clang_minor__/__clang_patchlevel__ (array sizes are
    the one place the bindings show a macro's value)."""
    try:
        import clang.cindex as ci

        source = "char a[__clang_major__]; char b[__clang_minor__ + 1];"
        source += " char c[__clang_patchlevel__ + 1];"
        tu = ci.Index.create().parse(
            "v.c", args=["-target", "bpf"], unsaved_files=[("v.c", source)]
        )
    except (ImportError, ci.LibclangError, ci.TranslationUnitLoadError):
        return None
    sizes = [c.type.get_array_size() for c in tu.cursor.get_children()]
    if len(sizes) != 3 or min(sizes) < 1:
        return None
    return sizes[0], sizes[1] - 1, sizes[2] - 1


def _where(location) -> str:
    if location.file is None:
        return ""
    return f"{os.path.relpath(location.file.name)}:{location.line}: "
