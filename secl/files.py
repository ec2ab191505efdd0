"""Paths to source files: walk, exclude, read bytes once, report problems as one line each."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

SOURCE_SUFFIXES = (".c", ".h")
# Directories that never hold sources a user wants linted.
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "node_modules", ".tox", ".cache"}
)
BINARY_SNIFF = 8192


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file read once, as bytes."""

    path: str  # as reached from the arguments
    data: bytes

    @property
    def text_problem(self) -> str | None:
        """A note for files that are not clean UTF-8 (they are still linted)."""
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

    def __str__(self) -> str:
        return f"secl: {self.path}: {self.message}"


def is_excluded(path: str, patterns: Iterable[str]) -> bool:
    """Whether `path` (or one of its directories) matches an exclude pattern: a pattern with a
    `/` is matched against the whole path, one without against each component, as ruff does."""
    return _exclude_matcher(tuple(patterns))(path)


@lru_cache(maxsize=32)
def _exclude_matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    whole = [p.rstrip("/") for p in patterns if "/" in p.rstrip("/")]
    parts = [p.rstrip("/") for p in patterns if "/" not in p.rstrip("/")]
    whole_re = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in whole)) if whole else None
    whole_dir_re = (
        re.compile("|".join(f"(?:{fnmatch.translate(p + '/*')})" for p in whole)) if whole else None
    )
    part_re = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in parts)) if parts else None

    def excluded(path: str) -> bool:
        norm = path.replace(os.sep, "/")
        if norm.startswith("./"):
            norm = norm[2:]
        if whole_re is not None and (whole_re.match(norm) or whole_dir_re.match(norm)):  # type: ignore[union-attr]
            return True
        return part_re is not None and any(part_re.match(part) for part in norm.split("/"))

    return excluded


def discover(paths: Iterable[str], exclude: Iterable[str] = ()) -> Iterator[str | FileProblem]:
    """Yield source paths (explicit files always, directories recursively) or problems."""
    exclude = tuple(exclude)
    for arg in paths:
        if not os.path.lexists(arg):
            yield FileProblem(arg, "no such file or directory")
            continue
        if os.path.isdir(arg):
            yield from _walk(arg, exclude)
        elif not os.path.exists(arg):  # it exists as a link only
            yield FileProblem(arg, "broken symbolic link")
        else:
            # An explicit file is linted whatever its suffix, as ruff does.
            yield arg


def _walk(root: str, exclude: tuple[str, ...]) -> Iterator[str | FileProblem]:
    seen_dirs: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            st = os.stat(directory)
        except OSError as err:
            yield FileProblem(directory, _os_message(err))
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            yield FileProblem(directory, "symbolic link loop, not followed")
            continue
        seen_dirs.add(key)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as err:
            yield FileProblem(directory, _os_message(err))
            continue
        subdirs = []
        for entry in entries:
            path = entry.path if directory != "." else entry.name
            if exclude and is_excluded(path, exclude):
                continue
            try:
                if entry.is_dir():
                    if entry.name not in SKIP_DIRS:
                        subdirs.append(path)
                    continue
            except OSError as err:
                yield FileProblem(path, _os_message(err))
                continue
            if entry.name.endswith(SOURCE_SUFFIXES):
                if entry.is_symlink() and not os.path.exists(entry.path):
                    yield FileProblem(path, "broken symbolic link")
                    continue
                yield path
        stack.extend(reversed(subdirs))


def read(path: str) -> SourceFile | FileProblem:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except IsADirectoryError:
        return FileProblem(path, "is a directory")
    except OSError as err:
        return FileProblem(path, _os_message(err))
    if b"\0" in data[:BINARY_SNIFF]:
        return FileProblem(path, "binary file (NUL bytes), skipped")
    return SourceFile(path, data)


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


def _git(root: str, *args: str, ok: tuple[int, ...] = (0,)) -> bytes | None:
    """Standard output of `git -C root ARGS`, or None when git is missing or exits with a
    status not in `ok`."""
    import subprocess  # only for trees worth it: the import alone costs milliseconds

    try:
        result = subprocess.run(
            ["git", "-C", root, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    except OSError:
        return None
    return result.stdout if result.returncode in ok else None


def _under(root: str, listing: bytes, exclude: tuple[str, ...]) -> list[str]:
    """git's NUL-separated names (relative to `root`) as paths under `root`, with secl's own
    exclusions applied."""
    out = []
    for name in listing.split(b"\0"):
        if not name:
            continue
        relative = os.fsdecode(name)
        if any(part in SKIP_DIRS for part in relative.split("/")[:-1]):
            continue
        path = os.path.join(root, relative)
        if exclude and is_excluded(path, exclude):
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
    root: str, exclude: tuple[str, ...] = (), names: Sequence[str] | None = None
) -> list[str] | None:
    """The .c/.h files under `root` that git knows, tracked or untracked but not ignored, as
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


def git_grep(
    root: str, needles: Iterable[bytes], exclude: tuple[str, ...] = ()
) -> list[str] | None:
    """The files of `git_sources` whose text contains one of `needles` (fixed strings), or
    None when git cannot tell. Names stay relative to `root` whatever grep.fullName says."""
    args = ["grep", "-l", "-z", "-F", "-I", "--untracked", "--no-color", "--no-full-name"]
    patterns = [arg for needle in needles for arg in ("-e", os.fsdecode(needle))]
    if not patterns:
        return []
    found = _git(root, *args, *patterns, "--", *_GLOBS, ok=(0, 1))  # 1: nothing found
    return None if found is None else _under(root, found, exclude)


_GLOBS = tuple(f"*{suffix}" for suffix in SOURCE_SUFFIXES)
