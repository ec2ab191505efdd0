"""Paths to source files: walk, exclude, read bytes once, report problems as one line each."""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter

# C++ user-space code is read as libbpf loader code (never as BPF sources): the suffixes GCC
# takes for C++ sources and headers (GCC manual, "Options Controlling the Kind of Output").
# `.h` stays C, as GCC reads it.
CPP_SUFFIXES = (".cc", ".cp", ".cxx", ".cpp", ".CPP", ".c++", ".C",
                ".hh", ".H", ".hp", ".hxx", ".hpp", ".HPP", ".h++", ".tcc")  # fmt: skip
SOURCE_SUFFIXES = (".c", ".h", *CPP_SUFFIXES)
# Compiled BPF objects (`x.bpf.o`, bpf2go's `x_bpfel.o`), read when the configuration's
# `objects` is true (secl/objects.py).
OBJECT_SUFFIXES = (".o",)
ELF_MAGIC = b"\x7fELF"
# Directories that never hold sources a user wants linted.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".venv",
        "venv",
        "node_modules",
        ".tox",
        ".cache",
        ".secl_cache",
    }
)
BINARY_SNIFF = 8192
# Larger sources are refused (config `max-file-size`): a generated file that big holds no
# section worth its parse, and a bound keeps a wrong path (a disk image) from eating memory.
DEFAULT_MAX_FILE_SIZE = 64 * 1024 * 1024


def is_cpp(path: str) -> bool:
    """Whether `path` names C++ code (read with tree-sitter-cpp, as a loader only)."""
    return path.endswith(CPP_SUFFIXES)


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file read once, as bytes."""

    path: str  # as reached from the arguments
    data: bytes
    # (st_dev, st_ino): one file reached by two paths (a symbolic link, a hard link) is one
    # source, read under the first path.
    identity: tuple[int, int] | None = None

    @property
    def text_problem(self) -> str | None:
        """A note for files that are not clean UTF-8 (they are still linted)."""
        if self.data.isascii():  # most sources; ten times faster than decoding megabytes
            return None
        try:
            self.data.decode("utf-8")
        except UnicodeDecodeError as err:
            return f"not valid UTF-8 (byte {err.start}); linted as raw bytes"
        return None


@dataclass(frozen=True, slots=True)
class FileProblem:
    """A file secl could not read or use, said in one line."""

    path: str
    message: str
    internal: bool = False  # secl failed on the file (a bug): the run exits 2
    detail: str | None = None  # the traceback of an internal error, shown with --verbose

    def __str__(self) -> str:
        return f"secl: {self.path}: {self.message}"


def is_excluded(path: str, patterns: Iterable[str], root: str | None = None) -> bool:
    """Whether `path` (or one of its directories) matches an exclude pattern (see Exclusion)."""
    return Exclusion(patterns, root)(path)


class Exclusion:
    """The exclude patterns of a run, matched as ruff does: a pattern with a `/` against the
    path relative to the project root `root` (the path as reached when it lies outside), one
    without against each component of that path. It remembers which patterns matched, so
    that `--verbose` can name the ones that matched nothing."""

    def __init__(self, patterns: Iterable[str] = (), root: str | None = None) -> None:
        self.patterns = tuple(patterns)
        self.root = os.path.abspath(root) if root is not None else None
        self.matched: set[str] = set()
        self._match = _exclude_matcher(self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def names(self) -> dict[str, list[str]] | None:
        """Name -> its patterns, when every pattern is a plain name (no `/`, no wildcard):
        then a path is excluded exactly when one of its components is such a name, and a
        walk that checked a directory's components tests only each entry's own name."""
        out: dict[str, list[str]] = {}
        for p in self.patterns:
            name = p.rstrip("/")
            if not name or "/" in name or any(c in name for c in "*?["):
                return None
            out.setdefault(name, []).append(p)
        return out

    def relative(self, path: str) -> str:
        """`path` relative to the root, with `/`; as reached (normalised) outside the root."""
        if self.root is not None:
            relative = os.path.relpath(os.path.abspath(path), self.root)
            if relative != os.pardir and not relative.startswith(os.pardir + os.sep):
                return relative.replace(os.sep, "/")
        return os.path.normpath(path).replace(os.sep, "/")

    def __call__(self, path: str, relative: str | None = None) -> bool:
        """Whether `path` is excluded; `relative` is `self.relative(path)` if the caller has it."""
        if not self.patterns:
            return False
        relative = self.relative(path) if relative is None else relative
        if not self._match(relative):
            return False
        # Which patterns: only for excluded paths, so the combined regex stays the fast path.
        self.matched.update(p for p in self.patterns if _exclude_matcher((p,))(relative))
        return True

    def unmatched(self) -> list[str]:
        """The patterns no path of the run matched, in the order given."""
        return [p for p in self.patterns if p not in self.matched]


@lru_cache(maxsize=64)
def _exclude_matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    whole = [p.rstrip("/") for p in patterns if "/" in p.rstrip("/")]
    parts = [p.rstrip("/") for p in patterns if "/" not in p.rstrip("/")]
    # `./x` is `x`: the path it is matched against is relative and normalised.
    whole = [p[2:] if p.startswith("./") else p for p in whole]
    whole_re = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in whole)) if whole else None
    whole_dir_re = (
        re.compile("|".join(f"(?:{fnmatch.translate(p + '/*')})" for p in whole)) if whole else None
    )
    part_re = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in parts)) if parts else None
    # Whether a directory has a component that matches: the files of a directory share it
    # (git lists a kernel tree's 64,000 files from 4,000 directories).
    directories: dict[str, bool] = {}

    def excluded(norm: str) -> bool:
        if whole_re is not None and (whole_re.match(norm) or whole_dir_re.match(norm)):  # type: ignore[union-attr]
            return True
        if part_re is None:
            return False
        head, _, name = norm.rpartition("/")
        if part_re.match(name):
            return True
        if not head:
            return False
        found = directories.get(head)
        if found is None:
            found = directories[head] = any(part_re.match(part) for part in head.split("/"))
        return found

    return excluded


@dataclass
class AlsoFound:
    """Files of another kind that one walk of a directory gathers besides the sources (the
    loader scan's candidates, secl.loaders.discover): the regular files whose names `wanted`
    accepts, outside the directories named in `skipped` and below them, in the order of a
    walk that skipped those directories. `complete` is False when this walk cannot tell
    (a directory it reached first under a skipped one, then again outside: such a walk
    would have entered it); the caller then walks again."""

    directory: str  # the argument of discover() it is gathered for
    wanted: Callable[[str], bool]
    skipped: frozenset[str]
    found: list[str] = field(default_factory=list)
    complete: bool = True


def discover(
    paths: Iterable[str],
    exclude: Iterable[str] | Exclusion = (),
    root: str | None = None,
    *,
    objects: bool = False,
    also: AlsoFound | None = None,
) -> Iterator[str | FileProblem]:
    """Yield source paths (explicit files always, directories recursively) or problems;
    with `objects`, the walk also yields `*.o` files. Exclude patterns are matched relative
    to `root` (the project root). The walk of the directory `also` names gathers its files
    too (one walk where two would read every directory twice)."""
    exclusion = exclude if isinstance(exclude, Exclusion) else Exclusion(exclude, root)
    suffixes = SOURCE_SUFFIXES + OBJECT_SUFFIXES if objects else SOURCE_SUFFIXES
    for arg in paths:
        if not os.path.lexists(arg):
            yield FileProblem(arg, "no such file or directory")
            continue
        if os.path.isdir(arg):
            if also is not None and arg == also.directory:
                yield from _walk(arg, exclusion, suffixes, also)
                also = None  # once: a second walk of it gathers nothing new
            else:
                yield from _walk(arg, exclusion, suffixes)
        elif not os.path.exists(arg):  # it exists as a link only
            yield FileProblem(arg, "broken symbolic link")
        else:
            # An explicit file is linted whatever its suffix, as ruff does.
            yield arg


def _walk(
    root: str,
    exclusion: Exclusion,
    suffixes: tuple[str, ...] = SOURCE_SUFFIXES,
    also: AlsoFound | None = None,
) -> Iterator[str | FileProblem]:
    # A linked directory inside the tree is walked at its own path, not again through the
    # link (findings name the real file); one that leads out of the tree is followed, once.
    # Only a link to a directory that holds it is a loop worth a line.
    real_root = os.path.realpath(root)
    seen_dirs: dict[tuple[int, int], bool] = {}  # -> whether reached under a skipped one
    # The path relative to the exclusion root of each directory: the walk's own for a walk
    # inside the root (a child's is its parent's and its name), else relative() every time.
    top = exclusion.relative(root) if exclusion else "."
    inside = not top.startswith(os.pardir) and not os.path.isabs(top)
    # (directory, its relative path, whether under a directory `also` skips, whether reached
    # through a link). Only a directory reached through a link can be reached twice (there
    # are no hard links to directories, and a link into the tree is never followed), so
    # only those are told apart by device and inode: one stat each, not one per directory.
    stack = [(root, top, False, False)]
    wanted = also.wanted if also is not None else None
    # Plain names only and a walk inside the root that is not itself excluded: an entry is
    # excluded when its own name is one of them (its directories were checked on the way).
    names = exclusion.names() if exclusion and inside else None
    if names is not None and top != "." and exclusion._match(top):
        names = None
    while stack:
        directory, base, under_skipped, linked = stack.pop()
        outside = also is not None and not under_skipped
        if linked or directory is root:
            try:
                st = os.stat(directory)
            except OSError as err:
                yield FileProblem(directory, _os_message(err))
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                if outside and seen_dirs[key]:
                    also.complete = False  # type: ignore[union-attr]
                continue  # reached before through another link
            seen_dirs[key] = not outside
        try:
            entries = sorted(os.scandir(directory), key=_entry_name)
        except OSError as err:
            yield FileProblem(directory, _os_message(err))
            continue
        if exclusion and not inside:
            base = exclusion.relative(directory)
        subdirs = []
        for entry in entries:
            name = entry.name
            path = entry.path if directory != "." else name
            relative = name if base == "." else f"{base}/{name}"
            if names is not None:
                if name in names:
                    exclusion.matched.update(names[name])
                    continue
            elif exclusion and exclusion(path, relative):
                continue
            source = name.endswith(suffixes)
            try:
                if entry.is_dir():
                    if name in SKIP_DIRS:
                        continue
                    skipped = also is not None and (not outside or name in also.skipped)
                    link = linked
                    if entry.is_symlink():
                        kept = link_kept(entry.path, directory, real_root)
                        if kept is None:
                            yield FileProblem(path, "symbolic link loop, not followed")
                        if not kept:
                            continue
                        link = True
                    subdirs.append((path, relative, skipped, link))
                    continue
            except OSError as err:  # a link that loops: a problem only where a source would be
                if source:
                    yield FileProblem(path, _os_message(err))
                continue
            if outside and wanted(name):  # type: ignore[misc]
                try:  # FIFOs, sockets, devices are never read
                    if entry.is_file():
                        also.found.append(path)  # type: ignore[union-attr]
                except OSError:
                    pass
            if source:
                if entry.is_symlink() and not os.path.exists(entry.path):
                    yield FileProblem(path, "broken symbolic link")
                    continue
                yield path
        stack.extend(reversed(subdirs))


_entry_name = attrgetter("name")


def link_kept(link: str, directory: str, real_root: str) -> bool | None:
    """Whether a walk of the tree at `real_root` (resolved) enters the linked directory
    `link` found in `directory`: not when the link leads inside the tree (the directory is
    walked at its own path, so files are named by their real path), None when it leads to a
    directory that holds it (a loop). Every walk of secl (sources, loader candidates, the
    tree index) follows this one rule, so they name the same files."""
    target = os.path.realpath(link)
    if _contains(target, os.path.realpath(directory)):
        return None
    return not _contains(real_root, target)


def _contains(directory: str, path: str) -> bool:
    """Whether `path` is `directory` or lies under it (both resolved)."""
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def read(
    path: str, max_size: int = DEFAULT_MAX_FILE_SIZE, *, binary: bool = False
) -> SourceFile | FileProblem:
    """The file's bytes, read once. Only a regular file is opened (a FIFO would block, a
    device such as /dev/zero never ends, and opening some devices acts on them), and no more
    than `max_size` bytes are read. A file with NUL bytes is a problem unless `binary`."""
    try:
        st = os.stat(path)
    except OSError as err:
        return FileProblem(path, _os_message(err))
    if not stat.S_ISREG(st.st_mode):
        return _not_regular(path, st.st_mode)
    if st.st_size > max_size:
        return _too_large(path, st.st_size, max_size)
    try:
        # O_NONBLOCK: if the path was swapped for a FIFO since the stat, opening returns at once.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        return FileProblem(path, _os_message(err))
    try:
        st = os.fstat(fd)  # what was opened is what counts
        if not stat.S_ISREG(st.st_mode):
            return _not_regular(path, st.st_mode)
        data = _read_bounded(fd, st.st_size, max_size)
    except OSError as err:
        return FileProblem(path, _os_message(err))
    finally:
        os.close(fd)
    if data is None:
        return _too_large(path, None, max_size)
    if not binary and data.find(b"\0", 0, BINARY_SNIFF) >= 0:  # no copy of the slice
        return FileProblem(path, "binary file (NUL bytes), skipped")
    return SourceFile(path, data, (st.st_dev, st.st_ino))


def split_objects(paths: Iterable[str], given: Iterable[str]) -> tuple[list[str], list[str]]:
    """(sources, compiled objects) of the paths of a run: an object is a file named `*.o`,
    or a file given by name whose first bytes are the ELF magic (whatever its name)."""
    explicit = set(given)
    sources, objects = [], []
    for path in paths:
        if path.endswith(OBJECT_SUFFIXES) or (path in explicit and _starts_elf(path)):
            objects.append(path)
        else:
            sources.append(path)
    return sources, objects


def _starts_elf(path: str) -> bool:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False  # read() says what it is
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return os.read(fd, len(ELF_MAGIC)) == ELF_MAGIC
    except OSError:
        return False
    finally:
        os.close(fd)


def _read_bounded(fd: int, size: int, limit: int) -> bytes | None:
    """At most `limit` bytes of `fd` (None past it); `size` is what fstat said, the first read
    asks for one byte more so that one more read sees the end."""
    chunks: list[bytes] = []
    total = 0
    want = size + 1
    while True:
        chunk = os.read(fd, max(1, min(want, limit + 1 - total)))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            return None
        want = 1 << 16  # the file grows while read (or fstat said 0, as /proc files do)


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(path: str, mode: int) -> FileProblem:
    if stat.S_ISDIR(mode):
        return FileProblem(path, "is a directory")
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
    return FileProblem(path, f"{kind}, not a regular file; skipped")


def _too_large(path: str, size: int | None, limit: int) -> FileProblem:
    what = f"{size} bytes" if size is not None else "more bytes"
    return FileProblem(path, f"{what} is more than max-file-size ({limit} bytes); skipped")


def _os_message(err: OSError) -> str:
    if err.errno is not None and err.strerror:
        return err.strerror.lower() if err.strerror[0].isupper() else err.strerror
    return str(err)


# -- git: listing and searching a large work tree ---------------------------------------------


def upwards(start: str) -> list[str]:
    """The directory of `start` (itself if a directory) and every directory above it.
    os.path rather than pathlib: pathlib costs several milliseconds of start-up."""
    path = os.path.realpath(start)
    if not os.path.isdir(path):
        path = os.path.dirname(path)
    out = [path]
    while (parent := os.path.dirname(out[-1])) != out[-1]:
        out.append(parent)
    return out


def in_git_work_tree(root: str) -> bool:
    """Whether `root` lies in a git work tree: a `.git` at it or above."""
    return any(os.path.exists(os.path.join(d, ".git")) for d in upwards(root))


# A repository's config must not make secl run its programs (core.fsmonitor is a shell
# command that ls-files and grep run): fsmonitor off, no pager, no hooks, no optional index
# writes. secl runs only rev-parse, check-ignore, ls-files and grep (with --no-textconv),
# never a command that would run a diff driver or an external diff.
_GIT_SAFE = (
    "--no-pager",
    "--no-optional-locks",
    "-c", "core.fsmonitor=false",
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.pager=cat",
)  # fmt: skip


def _git(root: str, *args: str, ok: tuple[int, ...] = (0,)) -> bytes | None:
    """Standard output of `git -C root ARGS`, or None when git is missing or exits with a
    status not in `ok`."""
    import subprocess  # only for trees worth it: the import alone costs milliseconds

    try:
        result = subprocess.run(
            ["git", *_GIT_SAFE, "-C", root, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    except OSError:
        return None
    return result.stdout if result.returncode in ok else None


def _under(root: str, listing: bytes, exclude: Iterable[str] | Exclusion) -> list[str]:
    """git's NUL-separated names (relative to `root`) as paths under `root`, with secl's own
    exclusions applied."""
    exclusion = exclude if isinstance(exclude, Exclusion) else Exclusion(exclude, root)
    # git's names are relative to `root`: when that is the exclusion's root, they are the
    # relative paths the patterns match.
    same_root = exclusion.root == os.path.abspath(root)
    prefix = os.path.join(root, "")  # git's names are relative: joined as os.path.join does
    skipped: dict[str, bool] = {}  # directory -> whether a component is in SKIP_DIRS
    out = []
    for name in listing.split(b"\0"):
        if not name:
            continue
        relative = os.fsdecode(name)
        directory = relative.rpartition("/")[0]
        skip = skipped.get(directory)
        if skip is None:
            skip = skipped[directory] = any(part in SKIP_DIRS for part in directory.split("/"))
        if skip:
            continue
        path = prefix + relative
        if exclusion and exclusion(path, relative if same_root else None):
            continue
        out.append(path)
    return sorted(set(out))


def git_answers(root: str) -> bool:
    """Whether git can answer for `root`: git runs, `root` is in a work tree, and that work
    tree does not ignore it (in a vendored project under an ignored directory git would
    list nothing)."""
    if _git(root, "rev-parse", "--is-inside-work-tree") != b"true\n":
        return False
    return _git(root, "check-ignore", "-q", ".", ok=(1,)) is not None  # 1: not ignored


def git_sources(
    root: str, exclude: Iterable[str] | Exclusion = (), names: Sequence[str] | None = None
) -> list[str] | None:
    """The C and C++ files under `root` that git knows, tracked or untracked but not ignored, as
    paths under `root`, with secl's own exclusions; None when git cannot tell. With `names`,
    only the files of those stems (`NAME.c`, `NAME.bpf.c`, `NAME.h`; one pathspec each, so
    for a few names only). Unlike a walk it skips what .gitignore hides (build trees full of
    generated headers) and costs one process however large the tree; it does not look into
    submodules or nested repositories, and leaves symbolic links to `git grep`, which skips
    them."""
    if names is None:
        specs = list(_GLOBS)
    else:
        specs = [f":(glob)**/{n}{suffix}" for n in names for suffix in (".c", ".bpf.c", ".h")]
        if not specs:
            return []
    listing = _git(
        root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *specs
    )
    return None if listing is None else _under(root, listing, exclude)


def git_tracked(root: str, exclude: Iterable[str] | Exclusion = ()) -> list[str] | None:
    """The tracked C and C++ files under `root` (git's index only: no walk of the work tree), as
    `git_sources` gives them; None when git cannot tell."""
    listing = _git(root, "ls-files", "-z", "--cached", "--", *_GLOBS)
    return None if listing is None else _under(root, listing, exclude)


def git_dir(root: str) -> str | None:
    """The git directory of the work tree `root` lies in (read from `.git`, git is not run):
    where its index and info/exclude are."""
    for directory in upwards(root):
        dotgit = os.path.join(directory, ".git")
        if os.path.isdir(dotgit):
            return dotgit
        if os.path.isfile(dotgit):  # a worktree or submodule: "gitdir: PATH"
            try:
                with open(dotgit, encoding="utf-8", errors="replace") as fh:
                    line = fh.readline().strip()
            except OSError:
                return None
            if line.startswith("gitdir:"):
                return os.path.join(directory, line[len("gitdir:") :].strip())
            return None
    return None


def git_grep(
    root: str, needles: Iterable[bytes], exclude: Iterable[str] | Exclusion = ()
) -> list[str] | None:
    """The files of `git_sources` whose text contains one of `needles` (fixed strings), or
    None when git cannot tell. Names stay relative to `root` whatever grep.fullName says."""
    args = ["grep", "-l", "-z", "-F", "-I", "--untracked", "--no-color", "--no-full-name"]
    args.append("--no-textconv")  # textconv drivers are commands from the repository config
    patterns = [arg for needle in needles for arg in ("-e", os.fsdecode(needle))]
    if not patterns:
        return []
    found = _git(root, *args, *patterns, "--", *_GLOBS, ok=(0, 1))  # 1: nothing found
    return None if found is None else _under(root, found, exclude)


_GLOBS = tuple(f"*{suffix}" for suffix in SOURCE_SUFFIXES)
