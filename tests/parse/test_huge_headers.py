"""A huge header with no section call and no function body (a vmlinux.h that bpftool dumped)
is neither parsed with tree-sitter nor scanned for directives the slow way, and that changes
nothing: its facts are the ones a parse finds, its directives the ones the full scan finds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import secl.parse.filefacts as filefacts
from secl.parse import macros
from secl.parse.loader import extract_loader_facts, is_loader
from secl.parse.tree import parse

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from scale import vmlinux_h  # the bench's generator


@pytest.fixture(scope="module")
def header() -> bytes:
    data = vmlinux_h(filefacts.HUGE + 100_000).encode()
    assert b"SEC" in data and b"section" in data and is_loader(data)
    return data


def test_its_facts_are_those_of_a_parse(header: bytes, monkeypatch) -> None:
    parsed = extract_loader_facts("vmlinux.h", header, parse(header))
    monkeypatch.setattr("secl.parse.tree.parse", lambda data: pytest.fail("parsed"))
    facts = filefacts.file_facts("vmlinux.h", header)
    assert facts.sites == ()
    assert facts.loader == parsed
    assert not filefacts.needs_parse(header)


def test_a_huge_file_with_a_site_or_a_body_is_parsed(header: bytes) -> None:
    with_site = header + b'SEC("kprobe/x") int f(void *ctx) { return 0; }\n'
    assert filefacts.needs_parse(with_site)
    assert [s.section for s in filefacts.file_facts("x.h", with_site).sites] == ["kprobe/x"]
    with_body = header + b"static int g(int x) { return bpf_link__destroy(x); }\n"
    assert filefacts.needs_parse(with_body)


@pytest.mark.parametrize(
    "extra",
    [
        b"",
        b"#define A 1\n  #  if A\n#endif\n",
        b"/* #define HIDDEN 1 */\n#define SHOWN 2\n",  # a comment: the full scan
        b'char *s = "x \\\n#define IN_STRING";\n#define AFTER 3\n',  # a continued literal
        b"#define X 1 /* opened on the line of a directive\n#define SEEN 2 */\n",
        b"// a /* in a line comment\n#define D 4\n/* unclosed\n#define E 5\n",
        b"  /* a */ # define F /* b */ 6\n//\n#endif",
    ],
)
def test_directives_are_those_of_the_full_scan(header: bytes, monkeypatch, extra: bytes) -> None:
    data = header + extra
    assert macros._plain(data) == (b'"' not in extra)
    fast = macros.directives(data)
    monkeypatch.setattr(macros, "_plain", lambda data: False)
    assert fast == macros.directives(data)
    if b"HIDDEN" in extra:
        assert b"HIDDEN" not in b"".join(data[d.start : d.end] for d in fast)
