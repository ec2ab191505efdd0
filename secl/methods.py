"""Start-up: the compiled methods of secl's record classes, kept between runs like byte-code.

`dataclasses` writes the `__init__`, `__eq__`, `__repr__`, `__hash__` (and, frozen,
`__setattr__` and `__delattr__`) of every class it decorates as source text and compiles it
with `exec` when the class is defined: for secl's 70-odd records, at every start, about a
third of the instructions of a one-file run (callgrind; Python 3.11 compiles each method
alone). The same text always compiles to the same code, so the command line (secl.cli.main)
lets dataclasses' `exec` take the code compiled from a text before, kept in a file beside
secl's byte-code (`__pycache__/dataclass-methods.<tag>.marshal`, or under
PYTHONPYCACHEPREFIX), and write it again when a text was new. Nothing else changes: each
text is still run by `exec` in the namespace dataclasses gives, compiled as dataclasses
compiles it (no inherited `__future__` flags). As for byte-code, PYTHONDONTWRITEBYTECODE
(sys.dont_write_bytecode) means the file is read but not written; a file that cannot be
read or written is done without. Library use of secl (secl.api) does not install it.
"""

from __future__ import annotations

import builtins
import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from types import CodeType

# A file of other code, or of another byte-code format, is not read (the importlib magic
# number of this interpreter, and the file's own format).
FORMAT = b"secl-methods-1\n"
# Past this many texts (older secl versions' records) the file starts over.
MAX_TEXTS = 4096

_codes: dict[str, CodeType] = {}
_used: set[str] = set()  # the texts of this run (what is kept when the file starts over)
_added = 0


def install() -> None:
    """Let dataclasses' `exec` use the kept code (once per process; not if something else
    set dataclasses' `exec` already)."""
    import dataclasses

    if "exec" in vars(dataclasses):
        return
    path = _path()
    if path is not None:
        _read(path)
    dataclasses.exec = _exec  # type: ignore[attr-defined]
    if path is not None and not sys.dont_write_bytecode:
        import atexit

        atexit.register(_write, path)


def _exec(
    source: object, globals: dict | None = None, locals: object = None, **more: object
) -> None:
    global _added
    if type(source) is str:
        _used.add(source)
        code = _codes.get(source)
        if code is None:
            # As exec compiles a text in dataclasses: no __future__ flags of this module.
            code = _codes[source] = compile(source, "<string>", "exec", dont_inherit=True)
            _added += 1
        source = code
    builtins.exec(source, globals, locals, **more)  # type: ignore[arg-type]


def _path() -> str | None:
    """Where the file is: as importlib places byte-code (its cache_from_source, without
    importing importlib.util, which costs start-up)."""
    tag = sys.implementation.cache_tag
    if tag is None:
        return None
    here = os.path.dirname(os.path.abspath(__file__))
    name = f"dataclass-methods.{tag}.marshal"
    if sys.pycache_prefix:
        return os.path.join(sys.pycache_prefix, here.lstrip(os.sep), name)
    return os.path.join(here, "__pycache__", name)


def _header() -> bytes:
    from importlib._bootstrap_external import MAGIC_NUMBER

    return FORMAT + MAGIC_NUMBER


def _read(path: str) -> None:
    import marshal

    try:
        with open(path, "rb") as fh:
            blob = fh.read()
    except OSError:
        return
    header = _header()
    if not blob.startswith(header):
        return
    try:
        codes = marshal.loads(memoryview(blob)[len(header) :])
    except (EOFError, ValueError, TypeError):
        return
    if isinstance(codes, dict):
        code_type = type(_path.__code__)
        _codes.update((t, c) for t, c in codes.items() if type(t) is str and type(c) is code_type)


def _write(path: str) -> None:
    """Write the texts again (after the run) if one was new."""
    import marshal

    if not _added:
        return
    codes = _codes if len(_codes) <= MAX_TEXTS else {t: _codes[t] for t in _used}
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(_header() + marshal.dumps(codes))
        os.replace(tmp, path)
    except (OSError, ValueError):
        import contextlib  # (not at the top: its import costs start-up)

        with contextlib.suppress(OSError):
            os.unlink(tmp)
