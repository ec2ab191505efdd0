"""A huge file's questions are answered from its marks (secl.parse.large), each once per file,
and every answer is the one a search of the whole file gives."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secl.analysis import suppress
from secl.parse import filefacts, large, macros
from secl.parse.tree import Positions, line_ends

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from scale import vmlinux_h  # the bench's generator


@pytest.fixture(scope="module")
def header() -> bytes:
    data = vmlinux_h(large.HUGE + 50_000).encode()
    assert b"SEC" in data and b"section" in data and b"#" in data and b"/" in data
    return data


EXTRAS = [
    b"",
    b'SEC("kprobe/x") int f(void *ctx) { return 0; }\n',
    b"#define SEC(name) __attribute__((section(name), used))\n",
    b'int m __attribute__((__section__(".maps")));\n',
    b'int x __section("a");\nint y SEC_X (1);\n',
    b"static int g(void)\n\t\n{\n}\n",
    b"SECTION_A SEC_B section_c; int (*f)(void);\n",
    b"// secl: ignore[SECL201]\n/* SECL: ignore */\n///secl:ignore\n/*secl:ignore[SECL2,]*/\n",
    b"/* Secl: ignore */\n",  # the mixed case alone is no suppression (as for any file)
    b'#include "x.h"\n  #  include <y/z.h>\n',
    b'int include; /* #include "in_a_comment.h" */\n',
    b"#define A 1 \\\n  + 2\n",
    b"/* a lone \\ in a comment */\n",
    b"x\r\ny\rz\n",
    b"'a' \"b\" /* c */ // d\n# /* e */ define E 1\n",
]


def _ids(extra: bytes) -> str:
    return extra[:24].decode(errors="replace") or "none"


@pytest.mark.parametrize("extra", EXTRAS, ids=_ids)
def test_each_answer_is_that_of_a_search_of_the_whole_file(header, extra) -> None:
    data = line_ends(header + extra)  # a new object: its own marks
    assert len(data) >= large.HUGE
    sites = filefacts._SEC_CALL.search(data) or filefacts._SECTION_CALL.search(data)
    assert filefacts.has_sites(data) == (sites is not None)
    assert filefacts.has_body(data) == (filefacts._BODY.search(data) is not None)
    assert macros._site_call(data) == (macros._SITE_CALL.search(data) is not None)
    assert macros._may_include(data) == (macros._ANY_INCLUDE.search(data) is not None)
    assert list(macros._hash_lines(data)) == list(macros._hash_lines_found(data))
    no_literal = (
        b'"' not in data
        and b"'" not in data
        and b"\\\n" not in data
        and b"\\\r\n" not in data
        and not data.endswith(b"\\")
    )
    # No literal: the fast path; quotes in comments only may take it too, with the same
    # directives as the full scan.
    assert macros._plain(data) or not no_literal
    if macros._plain(data) and not no_literal:
        assert macros._plain_directives(data) == [d for d in _scan_directives(data)]
    # A huge file's suppressions are tried at its `/`; the whole-file search finds the same.
    positions = Positions(data)
    found = suppress.suppressions("h.h", data, positions)
    whole = []
    if b"secl:" in data or b"SECL:" in data:
        whole = [m.span() for m in suppress._SUPPRESSION.finditer(data)]
    assert [(s.span.start_byte, s.span.end_byte) for s in found] == whole
    assert bool(found) == (b"ignore" in extra and b"Secl" not in extra)


def test_marks_say_where_the_rare_bytes_are(header) -> None:
    data = header + b"// one\n#define B 2\n"
    marks = large.marks(data)
    assert marks is not None
    assert marks.hashes == tuple(m.start() for m in re.finditer(rb"#", data))
    assert marks.slashes == tuple(m.start() for m in re.finditer(rb"/", data))
    assert marks.sec == tuple(m.start() for m in re.finditer(rb"SEC", data))
    assert not marks.backslash and not marks.quotes and not marks.cr
    assert large.marks(data[: large.HUGE - 1]) is None  # a smaller file is searched as ever


def test_too_many_places_are_none(header) -> None:
    data = header + b"#\n" * (large.MAX_PLACES + 1)
    marks = large.marks(data)
    assert marks is not None and marks.hashes is None and marks.slashes is not None
    # ... and the questions are then answered by searching the whole file
    assert list(macros._hash_lines(data)) == list(macros._hash_lines_found(data))
    assert macros._may_include(data) is False


def test_each_question_is_answered_once_per_file(header) -> None:
    asked: list[bytes] = []

    def answer(data: bytes) -> int:
        asked.append(data)
        return len(asked)

    a = header + b"a"
    b = header + b"a"  # equal bytes, another file: answered for itself
    assert large.once(a, "q", answer) == 1
    assert large.once(a, "q", answer) == 1
    assert large.once(b, "q", answer) == 2
    assert large.once(a, "other", answer) == 3
    assert asked[0] is a and asked[1] is b
    # The least recently asked about is forgotten first.
    others = [bytes([i]) * 8 for i in range(large._KEEP - 2)]  # with `a` and `b`: full
    for other in others:
        large.once(other, "q", answer)
    assert large.once(a, "q", answer) == 1  # kept, and now asked about last
    assert id(b) in large._KNOWN
    large.once(b"new" * 3, "q", answer)  # one more: `b`, the least recent, goes
    assert id(b) not in large._KNOWN and large.once(a, "q", answer) == 1
    count = len(asked)
    assert large.once(b, "q", answer) == count + 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"/", b"*", b"x", b"\n", b" ", b"secl:", b"ignore"]), max_size=30))
def test_matches_tried_at_their_first_byte_are_those_of_finditer(parts) -> None:
    data = b"".join(parts)
    for pattern in (macros._COMMENT_OPENER, suppress._SUPPRESSION):
        at = tuple(m.start() for m in re.finditer(rb"/", data))
        fast = [m.span() for m in large.finditer_at(pattern, data, at)]
        assert fast == [m.span() for m in pattern.finditer(data)]
        first = large.search_at(pattern, data, at)
        whole = pattern.search(data)
        assert (first and first.span()) == (whole and whole.span())


def _scan_directives(data: bytes) -> list:
    """The full scan's directives (secl.parse.macros.directives without its fast path)."""
    return [
        macros.Directive(m.group("w").decode(), m.start("d") - 1, m.end() - 1, m.end("w") - 1)
        for m in macros._SCAN.finditer(b"\n" + data)
        if m.start("d") >= 0
    ]
