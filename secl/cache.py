"""The results cache: per-file facts and per-project tree indexes, kept between runs.

Layout (`.secl_cache/` at the project root, config `cache-dir`, env `SECL_CACHE_DIR`):

    .secl_cache/.gitignore           `*`: git never sees the cache
    .secl_cache/CACHEDIR.TAG         marks it as a cache (backup tools skip it); `secl clean`
                                     removes a directory only if it carries this tag
    .secl_cache/v1-<fingerprint>/    one namespace per secl version, source and format
        files/<hh>/<digest>          the facts of one file, keyed by its path and content
        trees/<digest>               the index of one project tree (secl.index)

An entry is never trusted blindly: it starts with a magic string and a BLAKE2 digest of its
payload (a torn or corrupt entry is ignored and rebuilt), is unpickled with only secl's fact
classes and builtin containers allowed (a crafted entry cannot run code), and is written to a
temporary file renamed over the entry (concurrent runs write whole entries or nothing; the
last rename wins, and both wrote the same facts). A change of secl's version, of its own
source files or of the entry format starts a new namespace; older namespaces and the oldest
entries past MAX_BYTES are removed.
"""

from __future__ import annotations

import os

FORMAT = 1
MAGIC = b"secl-cache\n"
DIGEST = 16
DIRECTORY = ".secl_cache"
TAG = "CACHEDIR.TAG"
TAG_TEXT = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by secl (its results cache).\n"
)
MAX_BYTES = 512 * 1024 * 1024  # per namespace; the oldest entries go first
MAX_NAMESPACES = 3  # older secl versions' caches beyond these are removed

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from secl.config import Config

    T = TypeVar("T")


def location(config: Config, root: str) -> str:
    """Where the results cache of a project lives: SECL_CACHE_DIR, else the configured
    `cache-dir`, else `.secl_cache` at the project root."""
    env = os.environ.get("SECL_CACHE_DIR")
    if env:
        return os.path.abspath(env)
    if config.cache_dir:
        return config.cache_dir
    return os.path.join(root, DIRECTORY)


def fingerprint() -> str:
    """What makes cached facts valid: secl's version, the entry format, the Python version
    (pickle and the parsers' bindings), and the modification times and sizes of secl's own
    source files (a development checkout changes without a version bump)."""
    import sys
    from _blake2 import blake2b  # not hashlib: it loads OpenSSL, 5 ms of start-up

    from secl import __version__

    h = blake2b(digest_size=8)
    h.update(f"{__version__}\0{FORMAT}\0{sys.version_info[:2]}\0".encode())
    package = os.path.dirname(os.path.abspath(__file__))
    stack = [package]
    while stack:
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name == "__pycache__":
                continue
            try:
                if entry.is_dir():
                    stack.append(entry.path)
                elif entry.name.endswith((".py", ".json", ".toml")):
                    st = entry.stat()
                    h.update(f"{entry.path}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
            except OSError:
                continue
    return f"v{FORMAT}-{h.hexdigest()}"


def key(*parts: bytes | str) -> str:
    """A hex digest naming an entry: the parts joined unambiguously."""
    from _blake2 import blake2b  # not hashlib: it loads OpenSSL, 5 ms of start-up

    h = blake2b(digest_size=20)
    for part in parts:
        data = part.encode("utf-8", "surrogateescape") if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


class Store:
    """One namespace of a cache directory. Reads and writes never raise: a cache that cannot
    be used makes the run slower, never wrong or failed."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.namespace = os.path.join(directory, fingerprint())
        self.written = 0
        self.usable = True
        self._made: set[str] = set()

    # -- entries ----------------------------------------------------------------------------

    def path(self, kind: str, name: str) -> str:
        if kind == "files":
            return os.path.join(self.namespace, kind, name[:2], name)
        return os.path.join(self.namespace, kind, name)

    def get(self, kind: str, name: str) -> object | None:
        """The entry's object, or None when it is missing, torn, corrupt or not secl's."""
        if not self.usable:
            return None
        try:
            with open(self.path(kind, name), "rb") as fh:
                blob = fh.read()
        except OSError:
            return None
        return decode(blob)

    def put(self, kind: str, name: str, value: object) -> None:
        if self.usable:
            self.put_blob(kind, name, encode(value))

    def put_blob(self, kind: str, name: str, blob: bytes) -> None:
        """Store an entry `encode` made (a worker process encodes what it found)."""
        if not self.usable:
            return
        target = self.path(kind, name)
        directory = os.path.dirname(target)
        try:
            if directory not in self._made:
                self._prepare(directory)
            tmp = f"{target}.{os.getpid()}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(blob)
            os.replace(tmp, target)
        except OSError:
            self.usable = False  # read-only tree, full disk: run on without the cache
            return
        self.written += 1

    def _prepare(self, directory: str) -> None:
        if not os.path.isdir(self.directory):
            os.makedirs(self.directory, exist_ok=True)
            _write_small(os.path.join(self.directory, ".gitignore"), "# created by secl\n*\n")
            _write_small(os.path.join(self.directory, TAG), TAG_TEXT)
        if not os.path.isdir(self.namespace):
            os.makedirs(self.namespace, exist_ok=True)
            self._prune_namespaces()
        os.makedirs(directory, exist_ok=True)
        self._made.add(directory)

    # -- bounds -----------------------------------------------------------------------------

    def _prune_namespaces(self) -> None:
        """Keep the newest MAX_NAMESPACES namespaces (older secl versions' caches go)."""
        import shutil

        try:
            spaces = [e for e in os.scandir(self.directory) if e.is_dir() and e.name[:1] == "v"]
            spaces.sort(key=lambda e: e.stat().st_mtime_ns, reverse=True)
        except OSError:
            return
        others = [e for e in spaces if e.path != self.namespace]
        for entry in others[MAX_NAMESPACES - 1 :]:
            shutil.rmtree(entry.path, ignore_errors=True)

    def trim(self, limit: int = MAX_BYTES) -> None:
        """Remove the oldest entries of this namespace past `limit` bytes (after a run that
        wrote entries; the listing costs a stat per entry)."""
        entries = []
        total = 0
        for kind in ("files", "trees"):
            stack = [os.path.join(self.namespace, kind)]
            while stack:
                directory = stack.pop()
                try:
                    listing = list(os.scandir(directory))
                except OSError:
                    continue
                for entry in listing:
                    try:
                        if entry.is_dir():
                            stack.append(entry.path)
                            continue
                        st = entry.stat()
                    except OSError:
                        continue
                    total += st.st_size
                    entries.append((st.st_mtime_ns, st.st_size, entry.path))
        if total <= limit:
            return
        entries.sort()
        for _mtime, size, path in entries:
            if total <= limit * 3 // 4:
                break
            try:
                os.unlink(path)
            except OSError:
                continue
            total -= size

    def finish(self) -> None:
        """After the run: bound the size if this run added entries."""
        if self.written and self.usable:
            self.trim()


def _write_small(path: str, text: str) -> None:
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)


def open_store(config: Config, root: str) -> Store | None:
    """The results cache of a run, or None when the run does without (`--no-cache`). It
    becomes the one `cached` uses."""
    global _ACTIVE
    _ACTIVE = Store(location(config, root)) if config.cache else None
    return _ACTIVE


# The results cache of the run in progress (set by open_store): stages that have no handle
# on the run (the build-file reader) keep their pure functions' results in it.
_ACTIVE: Store | None = None


def cached(kind: str, parts: tuple[bytes | str, ...], compute: Callable[[], T]) -> T:
    """`compute()`, a pure function of `parts`, from the active results cache when it has
    it (and put there when not)."""
    store = _ACTIVE
    if store is None:
        return compute()
    name = key(kind, *parts)
    found = store.get("files", name)
    if found is not None:
        return found  # type: ignore[return-value]
    value = compute()
    store.put("files", name, value)
    return value


def clean(directory: str) -> bool:
    """Remove the results cache at `directory` (only a directory secl tagged as its cache).
    Whether there was one."""
    import shutil

    if not os.path.isfile(os.path.join(directory, TAG)):
        return False
    with open(os.path.join(directory, TAG), "rb") as fh:
        if not fh.read().startswith(TAG_TEXT.split("\n", 1)[0].encode()):
            return False
    shutil.rmtree(directory, ignore_errors=True)
    return True


# -- serialisation ----------------------------------------------------------------------------

# The classes an entry may build (module, name): secl's fact classes and builtin sets. A run
# imports a class's module when an entry names it (a warm run without loaders never loads
# the loader readers).
_CLASSES = (
    ("secl.facts", ("Position", "Span", "Piece", "SectionSite", "Spelling")),
    ("secl.parse.loader", ("ObjectRef", "ProgramRef", "LoaderFact", "LoaderFacts")),
    ("secl.loaders", ("LoaderUse", "FileLoaders")),
    ("secl.index", ("PairingNames", "TreeIndex")),
    ("secl.parse.filefacts", ("FileFacts",)),
    ("secl.parse.buildfiles", ("BuildFile",)),
)
_ALLOWED = frozenset((module, name) for module, names in _CLASSES for name in names)
_BUILTINS = {("builtins", "set"): set, ("builtins", "frozenset"): frozenset}
_REGISTERED = False


def _register() -> None:
    """Pickle the fact classes as (class, field values): positional construction unpickles
    in a third of the time of dataclasses' own slot state."""
    import copyreg
    from dataclasses import fields
    from importlib import import_module

    global _REGISTERED
    for module, names in _CLASSES:
        for name in names:
            cls = getattr(import_module(module), name)
            # (fields the constructor takes: a field it does not take is no state to keep)
            fields_ = tuple(f.name for f in fields(cls) if f.init)

            def reduce(obj: object, cls: type = cls, names: tuple[str, ...] = fields_) -> tuple:
                return (cls, tuple([getattr(obj, n) for n in names]))

            copyreg.pickle(cls, reduce)
    _REGISTERED = True


def _allowed_class(module: str, name: str) -> type | None:
    found = _BUILTINS.get((module, name))
    if found is None and (module, name) in _ALLOWED:
        from importlib import import_module

        found = getattr(import_module(module), name)
    return found


def encode(value: object) -> bytes:
    import pickle
    from _blake2 import blake2b  # not hashlib: it loads OpenSSL, 5 ms of start-up

    if not _REGISTERED:
        _register()
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return MAGIC + blake2b(payload, digest_size=DIGEST).digest() + payload


def decode(blob: bytes) -> object | None:
    """The object of an entry, or None when it is not one secl wrote whole."""
    import io
    import pickle
    from _blake2 import blake2b  # not hashlib: it loads OpenSSL, 5 ms of start-up

    head = len(MAGIC) + DIGEST
    if len(blob) < head or not blob.startswith(MAGIC):
        return None
    payload = memoryview(blob)[head:]
    if blake2b(payload, digest_size=DIGEST).digest() != blob[len(MAGIC) : head]:
        return None

    class _Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> type:
            cls = _allowed_class(module, name)
            if cls is None:
                raise pickle.UnpicklingError(f"{module}.{name} is not a secl fact")
            return cls

    try:
        return _Unpickler(io.BytesIO(payload)).load()
    except Exception:  # a payload that fits its digest but not this secl: ignored
        return None
