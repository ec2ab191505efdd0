"""A lone CR ends a line, as for a C compiler (issue 13: with CR-only line endings the first
`//` comment hid the whole file, and secl said "All checks passed!" where clang read the
program's section). Rows count CR, LF and CR LF alike; fixes keep the file's line endings."""

from __future__ import annotations

from pathlib import Path

import pytest

from secl.api import load
from secl.cli import main
from secl.config import Config
from secl.facts import Position
from secl.parse.bpf import extract_sites
from secl.parse.cstring import decode_literal
from secl.parse.tree import Positions, lex, line_ends

SOURCE = """\
// SPDX-License-Identifier: GPL-2.0 \\
   (a comment continued on the next line)
#include "prefix.h"
#define SUFFIX "sys_" \\
    "nanosleep"

SEC("kprobe/" SYSCALL_PFX SUFFIX)
int BPF_KPROBE(sleeper)
{
\treturn 0;
}

#ifdef DEBUG
SEC("kprobes/debug") int dbg(void *ctx) { return 0; }
#else
SEC("tp/syscalls/sys_enter_" \\
    "openat")
int opener(void *ctx) { return 0; }
#endif
int counter __attribute__((section(".data.counter")));
char LICENSE[] SEC("license") = "GPL";
"""
HEADER = '#ifndef PREFIX_H\n#define PREFIX_H\n#define SYSCALL_PFX "__x64_"\n#endif\n'


def ending(text: str, end: str) -> bytes:
    return text.replace("\n", end).encode()


def facts(data: bytes) -> list[tuple]:
    return [
        (s.kind, s.program or s.symbol, s.section, s.section_text, s.branch, s.span,
         s.name_span, s.body)
        for s in extract_sites("p.bpf.c", data)
    ]  # fmt: skip


def test_line_ends_turns_lone_cr_into_lf_in_place():
    assert line_ends(b"a\rb\r\nc\n\r") == b"a\nb\r\nc\n\n"
    same = b"a\r\nb\n"
    assert line_ends(same) is same  # nothing to do: no copy


@pytest.mark.parametrize("end", ["\r", "\r\n"])
def test_sites_are_the_same_whatever_the_line_ends(end):
    lf = facts(ending(SOURCE, "\n"))
    assert [f[1] for f in lf] == ["sleeper", "dbg", "opener", "counter", "LICENSE"]
    found = facts(ending(SOURCE, end))
    if end == "\r":  # byte for byte: offsets, rows and columns are all those of the LF file
        assert found == lf
    else:  # CR LF: one more byte per line; rows and columns are the LF file's
        assert [f[:3] + f[4:5] for f in found] == [f[:3] + f[4:5] for f in lf]
        assert [(f[5].start, f[5].end) for f in found] == [(f[5].start, f[5].end) for f in lf]


def test_rows_count_a_lone_cr_as_a_compiler_does():
    positions = Positions(b"a\rb\r\nc\nd")
    rows = [(p.row, p.column) for p in map(positions.at, (0, 2, 5, 7, 8))]
    assert rows == [(1, 1), (2, 1), (3, 1), (4, 1), (4, 2)]
    assert positions.line_text(2) == "b"


def test_the_lexer_ends_comments_and_directives_at_a_lone_cr():
    text = '// note\r#define X 1\rSEC("xdp") int f;\r/* a\rb */ x'
    words = [t.text for t in lex(text.encode(), 0)]
    assert words == [b"SEC", b"(", b'"xdp"', b")", b"int", b"f", b";", b"x"]


@pytest.mark.parametrize("end", ["\n", "\r", "\r\n"])
def test_a_line_continuation_in_a_string_joins_any_line_end(end):
    assert decode_literal(f'"kprobe/\\{end}do_unlinkat"') == "kprobe/do_unlinkat"


@pytest.mark.parametrize("end", ["\r", "\r\n"])
def test_the_preprocessor_reads_cr_lines(tmp_path: Path, end: str):
    (tmp_path / "prefix.h").write_bytes(ending(HEADER, end))
    (tmp_path / "p.bpf.c").write_bytes(ending(SOURCE, end))
    run = load([str(tmp_path)], Config())
    sections = {s.program: s.section for s in run.project.sites if s.kind == "program"}
    assert sections == {
        "sleeper": "kprobe/__x64_sys_nanosleep",
        "dbg": "kprobes/debug",
        "opener": "tp/syscalls/sys_enter_openat",
    }


@pytest.fixture
def cr_project(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "prefix.h").write_bytes(ending(HEADER, "\r"))
    (tmp_path / "p.bpf.c").write_bytes(ending(SOURCE.replace("DEBUG", "__bpf__"), "\r"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_findings_in_a_cr_only_file_show_their_row(cr_project, capsys):
    assert main(["check", "p.bpf.c"]) == 1
    out = capsys.readouterr().out
    assert "p.bpf.c:14:5: SECL101" in out  # the row a compiler reports
    assert '14 | SEC("kprobes/debug") int dbg(void *ctx) { return 0; }' in out


def test_fix_keeps_cr_only_line_ends(cr_project, capsys):
    before = (cr_project / "p.bpf.c").read_bytes()
    assert main(["fix", "--in-place", "--unsafe-fixes", "p.bpf.c"]) == 0
    after = (cr_project / "p.bpf.c").read_bytes()
    assert after == before.replace(b'"kprobes/debug"', b'"kprobe/debug"')
    assert b"\n" not in after


def test_columns_count_characters_in_a_file_with_non_ascii_bytes():
    data = 'int x;\n/* é */ SEC("xdp")\nint y;\n'.encode()
    positions = Positions(data)
    assert positions.at(data.index(b"SEC")) == Position(2, 9)  # `é` is one character
    assert positions.at(data.index(b"int y")) == Position(3, 1)
    ascii_only = Positions(b'int x;\n/* e */ SEC("xdp")\n')
    assert ascii_only.at(15) == Position(2, 9)
    assert hash(ascii_only.at(15)) == hash(Position(2, 9))
