"""compile_commands.json read as a stream: the same entries as a whole-file read, whatever
the chunk boundaries cut, only the entries of the files in view, and JSON errors named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secl.parse import compdb


def _entries(n: int, base: Path) -> list[dict]:
    out = []
    for i in range(n):
        entry = {"directory": str(base), "file": f"src/f{i}.bpf.c", "output": f"o{i}.o"}
        if i % 2:
            entry["arguments"] = ["clang", f"-DN={i}", "-Iinc", "-c", f"src/f{i}.bpf.c"]
        else:
            entry["command"] = f'clang -DNAME="é{i}" -c src/f{i}.bpf.c -o o{i}.o'
        entry["n"] = i * 1.5  # numbers cut at a chunk's end
        out.append(entry)
    return out


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_streamed_entries_equal_a_whole_read(tmp_path: Path, monkeypatch, chunk: int) -> None:
    raw = _entries(40, tmp_path)
    path = tmp_path / "compile_commands.json"
    path.write_text(json.dumps(raw, indent=1 if chunk % 2 else None, ensure_ascii=False))
    monkeypatch.setattr(compdb, "_CHUNK", chunk)
    whole = compdb.parse_entries(raw, str(path))
    assert compdb.load(str(path)) == whole
    wanted = compdb.in_view([str(tmp_path / "src/f3.bpf.c"), str(tmp_path / "src/f8.bpf.c")])
    kept = compdb.load(str(path), wanted)
    assert set(kept.entries) == {str(tmp_path / "src/f3.bpf.c"), str(tmp_path / "src/f8.bpf.c")}
    for name, commands in kept.entries.items():
        assert commands == whole.entries[name]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("{}", "expected a JSON array of entries"),
        ("[", "the array does not end"),
        ('[{"file": "a.c"', "not valid JSON"),
        ('[{"file": "a.c", "command": "cc a.c"} {}]', "expected `,` or `]`"),
        ('[{"file": "a.c", "command": "cc a.c"}] x', "extra data after the array"),
        ("[1, 2]", "no entry has a `file`"),
    ],
)
def test_errors_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "compile_commands.json"
    path.write_text(text)
    with pytest.raises(compdb.CompileCommandsError) as err:
        compdb.load(str(path))
    assert message in err.value.message


def test_an_empty_array_is_an_empty_database(tmp_path: Path) -> None:
    path = tmp_path / "compile_commands.json"
    path.write_text(" [ ] \n")
    assert compdb.load(str(path)).entries == {}
