"""secl.methods: the compiled methods of the record classes are kept between runs of the
command line, and the classes behave as dataclasses makes them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Defines records under the kept code (or without it), then prints what they do.
PROBE = """
import sys
from dataclasses import FrozenInstanceError, dataclass, field
if sys.argv[1] == "kept":
    import secl.methods
    secl.methods.install()

@dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int = 0
    tags: tuple[str, ...] = field(default=(), compare=False)

@dataclass
class Box:
    items: list[int] = field(default_factory=list)

p = Point(1, 2, ("a",))
out = [repr(p), p == Point(1, 2), p == Point(1, 3), hash(p) == hash(Point(1, 2)),
       repr(Box()), Box([1]) == Box([1]), Point.__init__.__annotations__,
       Point.__match_args__]
try:
    p.x = 3
except FrozenInstanceError as err:
    out.append(type(err).__name__)
print(out)
if sys.argv[1] == "kept":
    print("added", secl.methods._added, file=sys.stderr)
"""


def _run(args: list[str], prefix: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environ.update(PYTHONPATH=str(REPO), PYTHONPYCACHEPREFIX=str(prefix), **env)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=environ, check=True
    )


def _kept_file(prefix: Path) -> Path:
    [found] = prefix.rglob("dataclass-methods.*.marshal")
    return found


def test_records_behave_as_dataclasses_makes_them(tmp_path: Path) -> None:
    plain = _run(["-c", PROBE, "plain"], tmp_path / "plain").stdout
    first = _run(["-c", PROBE, "kept"], tmp_path / "kept")
    again = _run(["-c", PROBE, "kept"], tmp_path / "kept")
    assert first.stdout == plain == again.stdout
    assert "FrozenInstanceError" in plain
    assert first.stderr.strip() != "added 0"  # compiled and kept ...
    assert again.stderr.strip() == "added 0"  # ... and taken from the file the next time


def test_the_command_line_keeps_the_code_and_reads_it_back(tmp_path: Path) -> None:
    (tmp_path / "probe.bpf.c").write_text('SEC("kprobes/x")\nint p(void *c) { return 0; }\n')
    prefix = tmp_path / "pycache"
    command = ["-m", "secl", "check", "--no-cache", "--output-format", "concise", "--exit-zero"]
    command.append(str(tmp_path / "probe.bpf.c"))
    first = _run(command, prefix).stdout
    kept = _kept_file(prefix)
    written = kept.stat().st_mtime_ns
    assert "SECL101" in first
    assert _run(command, prefix).stdout == first
    assert kept.stat().st_mtime_ns == written  # nothing new: not written again


@pytest.mark.parametrize("damage", ["torn", "foreign", "empty"])
def test_a_damaged_file_is_done_without_and_written_anew(tmp_path: Path, damage: str) -> None:
    _run(["-c", PROBE, "kept"], tmp_path)
    kept = _kept_file(tmp_path)
    blob = kept.read_bytes()
    kept.write_bytes(
        {"torn": blob[: len(blob) // 2], "foreign": b"\x00" * 64 + blob, "empty": b""}[damage]
    )
    result = _run(["-c", PROBE, "kept"], tmp_path)
    assert result.stderr.strip() != "added 0"
    assert result.stdout == _run(["-c", PROBE, "plain"], tmp_path / "plain").stdout
    assert _run(["-c", PROBE, "kept"], tmp_path).stderr.strip() == "added 0"  # written anew


def test_no_file_is_written_where_byte_code_is_not(tmp_path: Path) -> None:
    _run(["-c", PROBE, "kept"], tmp_path, PYTHONDONTWRITEBYTECODE="1")
    assert not list(tmp_path.rglob("dataclass-methods.*"))
