"""What the stages ask of a huge file's bytes (a vmlinux.h that bpftool dumped: megabytes of
declarations, a few directives, no string literal), each answered once per file.

Every whole-file search of a 3 MB header costs about a millisecond, and a header meets a
dozen of them on its way through the stages; one regex of all their words costs more than
all of them together (Python's `re` tries an alternation at every byte). So the answers
come from where a few bytes are, found with memchr: `#` (directives, includes), `/`
(comments, suppressions), `\\`, quotes; and `SEC` and `section` (section calls), where
there are few. A stage asks `marks(data)` and searches from those places instead of
scanning the file again; a file with too many of a byte gets None there and is searched as
any other. The record of a file is computed on first ask and kept while the file is among
the last few asked about (by identity: hashing megabytes to key a cache is itself a scan).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")

# From this size on a file is huge: its bytes are searched through `marks` (and it is
# parsed with tree-sitter only when it may hold a site or a function body: filefacts).
HUGE = 1024 * 1024
# Past this many places of one byte or word, the list is not kept (None): a loop over them in
# Python would cost more than the scan it saves.
MAX_PLACES = 2048


@dataclass(frozen=True, slots=True)
class Marks:
    """Where a huge file's rare bytes and section words are (byte offsets, ascending); None
    where there are more than MAX_PLACES."""

    hashes: tuple[int, ...] | None  # `#`: every directive and include starts at one
    slashes: tuple[int, ...] | None  # `/`: every comment starts at one
    sec: tuple[int, ...] | None  # `SEC`: every SEC(...) call
    section: tuple[int, ...] | None  # `section`: every __attribute__((section(...)))
    backslash: bool  # a `\\` (a line continuation, an escape)
    quotes: bool  # a `"` or a `'` (a literal)
    cr: bool  # a CR (secl.parse.tree.line_ends)


def places(data: bytes, needle: bytes) -> tuple[int, ...] | None:
    """The offsets of the byte `needle` in `data` (memchr), None past MAX_PLACES."""
    out: list[int] = []
    find = data.find
    at = find(needle)
    while at >= 0:
        if len(out) == MAX_PLACES:
            return None
        out.append(at)
        at = find(needle, at + 1)
    return tuple(out)


# The section words, found by `re`: its scan for a pattern's first byte is a tight loop, where
# bytes.find's skips mispredict (three times slower on a vmlinux.h, for the same answer).
_SEC = re.compile(rb"SEC")
_SECTION = re.compile(rb"section")


def matched(pattern: re.Pattern[bytes], data: bytes) -> tuple[int, ...] | None:
    """The offsets of `pattern`'s matches (a word that cannot overlap itself), None past
    MAX_PLACES."""
    out = tuple(m.start() for m in islice(pattern.finditer(data), MAX_PLACES + 1))
    return None if len(out) > MAX_PLACES else out


def _marks(data: bytes) -> Marks:
    return Marks(
        hashes=places(data, b"#"),
        slashes=places(data, b"/"),
        sec=matched(_SEC, data),
        section=matched(_SECTION, data),
        backslash=b"\\" in data,
        quotes=b'"' in data or b"'" in data,
        cr=b"\r" in data,
    )


def marks(data: bytes) -> Marks | None:
    """The marks of a huge file; None for a smaller one (searched as it always was)."""
    if len(data) < HUGE:
        return None
    return once(data, "marks", _marks)


def search_at(
    pattern: re.Pattern[bytes], data: bytes, at: tuple[int, ...] | None
) -> re.Match[bytes] | None:
    """`pattern.search(data)` for a pattern whose every match starts at one of `at` (the
    first match; a full search when `at` is None)."""
    if at is None:
        return pattern.search(data)
    match = pattern.match
    for i in at:
        found = match(data, i)
        if found is not None:
            return found
    return None


def finditer_at(
    pattern: re.Pattern[bytes], data: bytes, at: tuple[int, ...] | None
) -> Iterator[re.Match[bytes]]:
    """`pattern.finditer(data)` for a pattern whose every match starts at one of `at` and is
    not empty: the leftmost match, then the leftmost that starts where it ends, as finditer
    goes."""
    if at is None:
        yield from pattern.finditer(data)
        return
    end = 0
    match = pattern.match
    for i in at:
        if i < end:
            continue
        found = match(data, i)
        if found is not None:
            yield found
            end = found.end()


# The files asked about last, the latest at the end: id -> (the bytes, which keeps the id
# theirs; answers by question). A run's stages each go over every file: more huge files than
# this would be searched again by each.
_KNOWN: dict[int, tuple[bytes, dict[str, object]]] = {}
_KEEP = 64


def once(data: bytes, question: str, answer: Callable[[bytes], T]) -> T:
    """`answer(data)`, computed once per file (by identity) among the last _KEEP files."""
    key = id(data)
    known = _KNOWN.pop(key, None)
    if known is None or known[0] is not data:
        if len(_KNOWN) >= _KEEP:
            del _KNOWN[next(iter(_KNOWN))]  # the least recently asked about
        known = (data, {})
    _KNOWN[key] = known
    answers = known[1]
    if question not in answers:
        answers[question] = answer(data)
    return answers[question]  # type: ignore[return-value]
