"""Where the report goes and how much of it: --quiet, --silent, --output-file, and
--exit-non-zero-on-fix (as ruff has them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_cli import secl
from tests.test_fix import MIXED_BPF, PROBE_BPF, PROBE_LOADER, project_dir

BAD = 'SEC("kprobes/do_unlinkat")\nint handle(void *ctx) { return 0; }\n'
GOOD = 'SEC("kprobe/do_unlinkat")\nint handle(void *ctx) { return 0; }\n'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return project_dir(tmp_path, {"bad.bpf.c": BAD, "good.bpf.c": GOOD})


@pytest.mark.parametrize("fmt", ["full", "concise"])
def test_quiet_prints_the_findings_without_the_summary(project: Path, fmt: str) -> None:
    loud = secl("check", "--output-format", fmt, ".", cwd=project)
    quiet = secl("check", "-q", "--output-format", fmt, ".", cwd=project)
    assert loud.returncode == quiet.returncode == 1
    assert "Found 1 finding" in loud.stdout and "Found" not in quiet.stdout
    assert "SECL101" in quiet.stdout
    assert loud.stdout.startswith(quiet.stdout.rstrip("\n"))
    clean = secl("check", "--quiet", "good.bpf.c", cwd=project)
    assert (clean.returncode, clean.stdout) == (0, "")


def test_silent_prints_nothing_but_the_exit_code_and_problems_tell(project: Path) -> None:
    (project / "gone.bpf.c").symlink_to(project / "missing.c")
    r = secl("check", "--silent", ".", cwd=project)
    assert (r.returncode, r.stdout) == (1, "")
    assert "gone.bpf.c: broken symbolic link" in r.stderr  # file problems still go to stderr
    r = secl("check", "-s", "good.bpf.c", cwd=project)
    assert (r.returncode, r.stdout) == (0, "")


@pytest.mark.parametrize("command", ["check", "sections"])
def test_output_file_holds_what_stdout_would(project: Path, command: str) -> None:
    expected = secl(command, "--output-format", "json", ".", cwd=project)
    target = project / "reports" / "new" / "secl.json"  # its directories are made
    r = secl(command, "--output-format", "json", "-o", str(target), ".", cwd=project)
    assert r.returncode == expected.returncode
    assert r.stdout == ""
    assert target.read_text() == expected.stdout
    # An existing report is replaced whole, with the mode a new file gets.
    target.write_text("old text " * 1000)
    r = secl(command, "--output-format", "json", "--output-file", str(target), ".", cwd=project)
    assert target.read_text() == expected.stdout
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in target.parent.iterdir()] == ["secl.json"]  # no temporary left


def test_an_output_file_that_cannot_be_written_is_one_error_line(project: Path) -> None:
    (project / "adir").mkdir()
    r = secl("check", "-o", "adir", ".", cwd=project)
    assert r.returncode == 2 and r.stdout == ""
    (line,) = r.stderr.splitlines()
    assert line.startswith("secl: error: --output-file adir:")
    assert os.listdir(project / "adir") == []
    (project / "file").write_text("")
    r = secl("check", "-o", "file/under/it.txt", ".", cwd=project)
    assert r.returncode == 2 and r.stderr.startswith(
        "secl: error: --output-file file/under/it.txt:"
    )


def test_exit_non_zero_on_fix(tmp_path: Path) -> None:
    files = {"probe.bpf.c": PROBE_BPF, "loader.c": PROBE_LOADER}
    for name in "abc":
        (tmp_path / name).mkdir()
    # The one finding has a safe fix: once it is written nothing remains, exit 0 ...
    root = project_dir(tmp_path / "a", files)
    r = secl("check", "--fix", ".", cwd=root)
    assert r.returncode == 0 and "kprobe.single/do_unlinkat" in (root / "probe.bpf.c").read_text()
    # ... unless the hook is to fail when it changed a file.
    root = project_dir(tmp_path / "b", files)
    r = secl("check", "--fix", "--exit-non-zero-on-fix", ".", cwd=root)
    assert r.returncode == 1 and "kprobe.single/do_unlinkat" in (root / "probe.bpf.c").read_text()
    r = secl("check", "--fix", "-e", ".", cwd=root)  # nothing left to change
    assert r.returncode == 0
    root = project_dir(tmp_path / "c", files)
    r = secl("fix", "--in-place", "-e", "-q", ".", cwd=root)
    assert r.returncode == 1 and "Fixed" not in r.stdout


def test_quiet_fix_keeps_the_findings_and_drops_the_summary_lines(tmp_path: Path) -> None:
    root = project_dir(tmp_path, {"mixed.bpf.c": MIXED_BPF})
    r = secl("check", "--fix", "--quiet", "--output-format", "concise", ".", cwd=root)
    assert r.returncode == 1
    assert "Found" not in r.stdout and "Fixed" not in r.stdout
    assert "SECL101" in r.stdout
    r = secl("check", "--diff", "-q", ".", cwd=root)
    assert "Would fix" not in r.stderr
