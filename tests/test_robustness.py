"""Hostile input, odd files and signals (issue 13): nothing crashes, hangs, leaks or loses data.

Each test is the regression test of one fault of the issue; the ones that would hang or eat
memory without their fix run secl in a subprocess with a deadline or a memory limit.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import secl
from secl.cli import main
from secl.config import Config
from secl.fix import plan_fixes

from .test_fix import MIXED_BPF, PROBE_BPF, PROBE_LOADER, project_dir

REPO = Path(__file__).resolve().parent.parent
KPROBE = 'SEC("kprobe/do_unlinkat")\nint handle(void *ctx) { return 0; }\n'
UNKNOWN = 'SEC("kprobes/do_unlinkat")\nint handle(void *ctx) { return 0; }\n'


def secl_process(
    *args: str, cwd: Path, stdin: bytes = b"", memory: int | None = None
) -> subprocess.CompletedProcess[bytes]:
    """secl in a subprocess; the deadline only ends a hang (no test measures time)."""

    def limit() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("SECL_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "secl", *args],
        cwd=cwd, input=stdin, capture_output=True, env=env, timeout=120, preexec_fn=limit,
        check=False,
    )  # fmt: skip


def tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """`files` under `root` (a new directory), a project root for pairing."""
    root.mkdir(parents=True, exist_ok=True)
    return project_dir(root, files)


def no_traceback(result: subprocess.CompletedProcess[bytes]) -> None:
    assert b"Traceback" not in result.stderr, result.stderr.decode(errors="replace")


# -- 1. files that are not regular files, and files too large ---------------------------------


def test_a_fifo_given_explicitly_is_skipped_with_one_line(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "x.c")
    (tmp_path / "a.bpf.c").write_text(UNKNOWN)
    result = secl_process("check", "x.c", "a.bpf.c", cwd=tmp_path)
    no_traceback(result)
    assert result.returncode == 1  # the other file's finding
    assert result.stderr.decode() == "secl: x.c: a FIFO, not a regular file; skipped\n"
    alone = secl_process("check", "x.c", cwd=tmp_path)
    assert alone.returncode == 2 and b"nothing could be linted" in alone.stderr


def test_a_fifo_met_in_a_walk_is_skipped(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    os.mkfifo(tmp_path / "pipe.bpf.c")
    os.mkfifo(tmp_path / "pipe.h")
    (tmp_path / "a.bpf.c").write_text(UNKNOWN)
    result = secl_process("check", ".", cwd=tmp_path)
    no_traceback(result)
    assert result.returncode == 1 and b"a.bpf.c:1:5: SECL101" in result.stdout
    assert b"pipe.bpf.c: a FIFO, not a regular file; skipped" in result.stderr
    # A one-file run reads the rest of the project for pairing: the FIFOs are passed by.
    assert secl_process("check", "a.bpf.c", cwd=tmp_path).returncode == 1


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_devices_are_not_read(tmp_path: Path) -> None:
    (tmp_path / "z.c").symlink_to("/dev/zero")
    (tmp_path / "a.bpf.c").write_text(UNKNOWN)
    # Without the fix /dev/zero is read until memory runs out: a limit makes that quick.
    result = secl_process("check", "/dev/zero", "z.c", "a.bpf.c", cwd=tmp_path, memory=1 << 30)
    no_traceback(result)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        "secl: /dev/zero: a character device, not a regular file; skipped",
        "secl: z.c: a character device, not a regular file; skipped",
    ]


def test_max_file_size_skips_larger_sources(tmp_path: Path, capsys, monkeypatch) -> None:
    root = project_dir(tmp_path, {"small.bpf.c": UNKNOWN, "big.bpf.c": UNKNOWN + " " * 400})
    (root / ".secl.toml").write_text('max-file-size = "300 B"\n')
    monkeypatch.chdir(root)
    assert main(["check", "--output-format", "concise", "."]) == 1
    out, err = capsys.readouterr()
    assert "small.bpf.c:1:5: SECL101" in out and "big.bpf.c" not in out
    size = len(UNKNOWN) + 400
    assert err == f"secl: big.bpf.c: {size} bytes is more than max-file-size (300 bytes); skipped\n"
    (root / ".secl.toml").write_text("max-file-size = 0\n")
    assert main(["check", "."]) == 2
    assert "`max-file-size` must be more than 0 bytes" in capsys.readouterr().err


def test_a_configuration_file_that_is_no_regular_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.toml")
    (tmp_path / "a.bpf.c").write_text(UNKNOWN)
    for config in ("fifo.toml", "/dev/zero"):
        result = secl_process("check", "--config", config, "a.bpf.c", cwd=tmp_path, memory=1 << 30)
        no_traceback(result)
        assert result.returncode == 2
        assert result.stderr.decode().startswith(f"secl: error: {config}: cannot read: a ")


def test_the_default_size_limit_is_at_least_64_mib() -> None:
    assert Config().max_file_size >= 64 * 1024 * 1024


# -- 5. pairing past odd directory entries --------------------------------------------------


def test_a_self_looping_link_beside_the_checked_file(tmp_path: Path) -> None:
    (tmp_path / "a.bpf.c").write_text(UNKNOWN)
    (tmp_path / "loop.c").symlink_to("loop.c")
    result = secl_process("check", "a.bpf.c", cwd=tmp_path)  # no project marker: own directory
    no_traceback(result)
    assert result.returncode == 1 and b"SECL101" in result.stdout and result.stderr == b""


def test_stdin_filename_in_a_missing_directory(tmp_path: Path) -> None:
    result = secl_process(
        "check", "--stdin-filename", "nosuchdir/a.bpf.c", cwd=tmp_path, stdin=UNKNOWN.encode()
    )
    no_traceback(result)
    assert result.returncode == 1 and b"nosuchdir/a.bpf.c:1:5: SECL101" in result.stdout


# -- 6, 7. configuration files --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[tool.secl]\nselect = ["SECL1"\nignore = []\n', "pyproject.toml:3:1: invalid TOML"),
        ('[tool.secl]\nignore = []\nignore = ["SECL2"]\n', "pyproject.toml:3:"),
        ("[tool.secl]\nselect = [\n", "pyproject.toml:2: invalid TOML"),
        (b"[tool.secl]\n# caf\xe9\n", "pyproject.toml:2: invalid TOML: not valid UTF-8"),
    ],
)
def test_a_malformed_pyproject_is_an_error_not_skipped(
    tmp_path: Path, capsys, monkeypatch, text: str | bytes, where: str
) -> None:
    # The parent's configuration would hide the finding: the search must stop at the child.
    (tmp_path / "pyproject.toml").write_text('[tool.secl]\nignore = ["SECL1"]\n')
    child = tree(tmp_path / "child", {"a.bpf.c": UNKNOWN})
    (child / "pyproject.toml").write_bytes(text if isinstance(text, bytes) else text.encode())
    monkeypatch.chdir(child)
    assert main(["check", "a.bpf.c"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("secl: error: ") and where in err and err.count("\n") == 1


def test_a_pyproject_without_secl_is_not_parsed(tmp_path: Path, capsys, monkeypatch) -> None:
    # It cannot configure secl, so its syntax is not secl's business (nor worth start-up time).
    root = project_dir(tmp_path, {"a.bpf.c": UNKNOWN, "pyproject.toml": "[project\nname = 1\n"})
    monkeypatch.chdir(root)
    assert main(["check", "a.bpf.c"]) == 1


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("pyproject.toml", "[tool]\nsecl = 5\n", "[tool.secl] must be a table, not a number"),
        ("pyproject.toml", "tool = 5  # secl\n", "`tool` must be a table"),
        ("pyproject.toml", 'tool = "secl"\n', "`tool` must be a table"),
        (".secl.toml", 'tool = "secl"\n', "unknown key `tool`"),
        (".secl.toml", "[tool]\nsecl = []\n", "[tool.secl] must be a table, not an array"),
        (".secl.toml", "max-file-size = true\n", "`max-file-size` must be a number of bytes"),
        (".secl.toml", "exclude = 5\n", "`exclude` must be a list"),
        (".secl.toml", "per-file-ignores = 5\n", "`per-file-ignores` must be a dict"),
    ],
)
def test_config_shapes_are_errors_not_tracebacks(
    tmp_path: Path, capsys, monkeypatch, name: str, text: str, message: str
) -> None:
    root = project_dir(tmp_path, {"a.bpf.c": UNKNOWN, name: text})
    monkeypatch.chdir(root)
    assert main(["check", "a.bpf.c"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"secl: error: {root / name}: ") and message in err


# -- 8. signals while writing ---------------------------------------------------------------


def test_ctrl_c_while_writing_leaves_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    root = project_dir(tmp_path, {"mixed.bpf.c": MIXED_BPF})
    monkeypatch.chdir(root)

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    assert main(["fix", "--in-place", "mixed.bpf.c"]) == 130
    assert sorted(p.name for p in root.iterdir()) == [".git", "mixed.bpf.c"]
    assert (root / "mixed.bpf.c").read_text() == MIXED_BPF


def test_signals_wait_until_the_file_is_replaced(tmp_path: Path, monkeypatch) -> None:
    # A SIGINT that arrives while the temporary file exists is held until it is renamed.
    import signal

    root = project_dir(tmp_path, {"mixed.bpf.c": MIXED_BPF})
    monkeypatch.chdir(root)
    real_fsync = os.fsync
    pending: list[set[int]] = []

    def fsync_then_signal(fd: int) -> None:
        real_fsync(fd)
        os.kill(os.getpid(), signal.SIGINT)
        pending.append(signal.sigpending())

    monkeypatch.setattr(os, "fsync", fsync_then_signal)
    assert main(["fix", "--in-place", "mixed.bpf.c"]) == 130  # delivered after the rename
    assert pending == [{signal.SIGINT}]
    assert sorted(p.name for p in root.iterdir()) == [".git", "mixed.bpf.c"]
    assert 'SEC("?kprobe/foo")' in (root / "mixed.bpf.c").read_text()


# -- 9. a shared header's fix, and one file's failure --------------------------------------


def test_a_define_in_a_shared_header_is_fixed_and_other_files_too(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    root = project_dir(
        tmp_path,
        {
            "probes.h": '#define KP "kprobe/"\n',
            "probe.bpf.c": '#include "probes.h"\nSEC(KP "do_unlinkat")\nint handle(void *ctx) { return 0; }\n',
            "probe.c": PROBE_LOADER,
            "other.bpf.c": 'SEC("??xdp")\nint x(void *ctx) { return 0; }\n',
        },
    )
    monkeypatch.chdir(root)
    assert main(["check", "--fix", "."]) == 0
    out, err = capsys.readouterr()
    assert "did not settle" not in err and "Fixed 2 findings;" in out
    assert (root / "probes.h").read_text() == '#define KP "kprobe.single/"\n'
    assert (root / "other.bpf.c").read_text().startswith('SEC("?xdp")')


def test_one_files_unsettled_fixes_do_not_block_another_file() -> None:
    from .test_fix import _project_of, _rule

    # In g.c a rewrite that never ends; in f.c one that ends after a round.
    rule = _rule(
        lambda d: (b"a", b"aa", True) if b"a" in d else (b"b1", b"b2", True) if b"b1" in d else None
    )
    project, _ = _project_of({"f.c": b"<b1>", "g.c": b"<a>"})
    plan = plan_fixes(project, rule(project), analyse=rule, max_rounds=3)
    assert plan.project.files["f.c"] == b"<b2>" and plan.project.files["g.c"] == b"<a>"
    assert [(r.path, r.reason) for r in plan.refusals] == [
        ("g.c", "not fixed: fixes did not settle after 3 rounds")
    ]


# -- 10, 11. what sources and file names hold, on a terminal and in JSON/SARIF ------------------

HOSTILE = "\x1b]0;owned\x07\x1b[2J\u202e\x9b"


def test_control_characters_are_shown_not_sent(tmp_path: Path, capsys, monkeypatch) -> None:
    name = f"evil{HOSTILE}.bpf.c"
    source = f'SEC("kprobes/{HOSTILE}x")\nint handle(void *ctx) {{ return 0; }}\n'
    root = project_dir(tmp_path, {name: source})
    monkeypatch.chdir(root)
    for command in (
        ["check"], ["check", "--output-format", "concise"], ["check", "--output-format", "github"],
        ["sections"], ["sections", "--output-format", "concise"],
    ):  # fmt: skip
        main([*command, "."])
        out, err = capsys.readouterr()
        for text in (out, err):
            assert not any(c in text for c in "\x1b\x07\u202e\x9b"), (command, text)
        assert "evil␛]0;owned␇␛[2J" in out, command
    main(["check", "--output-format", "json", "."])
    (item,) = json.loads(capsys.readouterr().out)
    assert item["filename"] == name  # JSON escapes, and keeps the name exact


def test_the_caret_stays_under_an_escaped_line(tmp_path: Path, capsys, monkeypatch) -> None:
    root = project_dir(
        tmp_path, {"a.bpf.c": '/*\x1b*/SEC("kprobes/x")\nint h(void *c) { return 0; }\n'}
    )
    monkeypatch.chdir(root)
    main(["check", "a.bpf.c"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == '1 | /*␛*/SEC("kprobes/x")'
    assert lines[3] == "  |          ^^^^^^^^^^^"


@pytest.mark.skipif(sys.platform == "darwin", reason="names must be bytes the FS accepts")
def test_file_names_that_are_not_utf8(tmp_path: Path, capsysbinary, monkeypatch) -> None:
    root = project_dir(tmp_path, {})
    (root / os.fsdecode(b"caf\xe9.bpf.c")).write_text(UNKNOWN)
    monkeypatch.chdir(root)
    assert main(["check", "--output-format", "json", "."]) == 1
    out = capsysbinary.readouterr().out.decode("utf-8")  # valid UTF-8, or this raises
    assert json.loads(out)[0]["filename"] == "caf\\xe9.bpf.c"
    assert main(["check", "--output-format", "sarif", "."]) == 1
    sarif = json.loads(capsysbinary.readouterr().out.decode("utf-8"))
    location = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "caf%E9.bpf.c"
    for fmt in ("full", "concise", "github"):
        assert main(["check", "--output-format", fmt, "."]) == 1
        assert "caf\\xe9.bpf.c" in capsysbinary.readouterr().out.decode("utf-8")
    assert main(["sections", "--output-format", "json", "."]) == 0
    assert json.loads(capsysbinary.readouterr().out.decode("utf-8"))[0]["filename"] == (
        "caf\\xe9.bpf.c"
    )


# -- 14. one file by two paths --------------------------------------------------------------


def test_a_symlinked_duplicate_is_one_source(tmp_path: Path, capsys, monkeypatch) -> None:
    # Two paths to one BPF source of skeleton `probe` made the program ambiguous (SECL002).
    root = project_dir(tmp_path, {"probe.bpf.c": PROBE_BPF, "probe.c": PROBE_LOADER})
    (root / "copy").mkdir()
    (root / "copy" / "probe.bpf.c").symlink_to("../probe.bpf.c")
    os.link(root / "probe.c", root / "copy" / "probe.c")
    monkeypatch.chdir(root)
    for paths in (["."], ["probe.bpf.c"], ["copy/probe.bpf.c", "probe.bpf.c"]):
        assert main(["check", "--select", "ALL", "--output-format", "concise", *paths]) == 1
        lines = capsys.readouterr().out.splitlines()
        # Reported once, under the first path of the sorted walk (or of the arguments).
        first = paths[0] if paths != ["."] else "probe.bpf.c"
        found = [line.split(" [")[0] for line in lines if ": SECL" in line]
        assert found == [f"{first}:4:5: SECL201"], paths
    assert main(["fix", "--in-place", "."]) == 0
    assert "Fixed 1 finding;" in capsys.readouterr().out


def test_a_linked_directory_is_walked_once_at_its_own_path(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    # sched-ext/scx links shared include directories into every scheduler
    # (`src/bpf/lib -> ../../../lib`); the walk reported each as a "symbolic link loop" and,
    # when the link sorted first, named the files by the link's path.
    outside = tmp_path / "shared"
    outside.mkdir()
    (outside / "far.bpf.c").write_text(UNKNOWN)
    (tmp_path / "p").mkdir()
    root = project_dir(tmp_path / "p", {"lib/common.bpf.c": UNKNOWN, "pyproject.toml": ""})
    (root / "a" / "src").mkdir(parents=True)
    (root / "a" / "src" / "lib").symlink_to("../../lib")  # inside the tree: walked as lib/
    (root / "b").symlink_to(outside)  # outside the tree: followed, once
    (root / "c").symlink_to(outside)
    (root / "lib" / "up").symlink_to("..")  # a real loop
    monkeypatch.chdir(root)
    assert main(["check", "--output-format", "concise", "."]) == 1
    captured = capsys.readouterr()
    found = sorted(line.split(":")[0] for line in captured.out.splitlines() if ": SECL" in line)
    assert found == ["b/far.bpf.c", "lib/common.bpf.c"]
    assert captured.err.splitlines() == ["secl: lib/up: symbolic link loop, not followed"]


def test_fix_counts_each_edit_once(tmp_path: Path, capsys, monkeypatch) -> None:
    root = project_dir(tmp_path, {"mixed.bpf.c": MIXED_BPF})
    for n in range(3):
        (root / f"link{n}.bpf.c").symlink_to("mixed.bpf.c")
    monkeypatch.chdir(root)
    assert main(["check", "--fix", "--unsafe-fixes", "--exit-zero", "."]) == 0
    assert "Fixed 2 findings; 1 without a fix." in capsys.readouterr().out


# -- 15. exclude patterns --------------------------------------------------------------------


def test_exclude_patterns_match_relative_to_the_project_root(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    root = project_dir(
        tmp_path,
        {"scheds/vmlinux/vmlinux.h": UNKNOWN, "scheds/a.bpf.c": UNKNOWN, "pyproject.toml": ""},
    )
    monkeypatch.chdir(root / "scheds")  # the path given is the parent directory
    assert main(["check", "--exclude", "scheds/vmlinux", "--output-format", "concise", ".."]) == 1
    out = capsys.readouterr().out
    assert "a.bpf.c" in out and "vmlinux.h" not in out
    # A project under a directory named like a default exclude is still linted.
    build = tree(tmp_path / "build" / "proj", {"a.bpf.c": UNKNOWN})
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--output-format", "concise", str(build)]) == 1
    assert "SECL101" in capsys.readouterr().out


def test_verbose_names_an_exclude_that_matched_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    root = project_dir(tmp_path, {"a.bpf.c": UNKNOWN, "gen/x.bpf.c": UNKNOWN})
    monkeypatch.chdir(root)
    main(["check", "--exclude", "gen", "--exclude", "scheds/vmlinux", "."])
    assert "matched nothing" not in capsys.readouterr().err
    main(["check", "--verbose", "--exclude", "gen", "--exclude", "scheds/vmlinux", "."])
    err = capsys.readouterr().err
    assert err == "secl: exclude pattern 'scheds/vmlinux' matched nothing\n"


# -- internal errors ------------------------------------------------------------------------


@pytest.fixture
def boom(monkeypatch):
    """Site extraction fails on files whose name holds `boom` (a stand-in for a secl bug)."""
    import secl.parse.bpf

    real = secl.parse.bpf.extract_sites

    def extract(path, data, tree=None):
        if "boom" in path:
            raise ValueError("simulated bug")
        return real(path, data, tree)

    monkeypatch.setattr(secl.parse.bpf, "extract_sites", extract)


@pytest.mark.parametrize("command", ["check", "sections", "fix"])
def test_an_internal_error_skips_one_file(
    tmp_path: Path, capsys, monkeypatch, boom, command: str
) -> None:
    safe = 'SEC("??xdp")\nint x(void *ctx) { return 0; }\n'  # a fix `secl fix` shows
    root = project_dir(tmp_path, {"boom.bpf.c": safe, "ok.bpf.c": safe})
    monkeypatch.chdir(root)
    monkeypatch.delenv("SECL_DEBUG", raising=False)
    assert main([command, "."]) == 2
    out, err = capsys.readouterr()
    assert "ok.bpf.c" in out  # the run went on
    assert err.splitlines()[0] == (
        f"secl: boom.bpf.c: internal error in secl {secl.__version__} "
        "(ValueError: simulated bug); file skipped"
    )
    assert "boom" not in "".join(err.splitlines(keepends=True)[1:])
    assert main([command, "--verbose", "."]) == 2
    assert "Traceback (most recent call last)" in capsys.readouterr().err
    monkeypatch.setenv("SECL_DEBUG", "1")
    assert main([command, "."]) == 2
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_a_rule_failing_on_one_file_skips_that_file(tmp_path: Path, capsys, monkeypatch) -> None:
    import secl.analysis.run as run_module

    def broken(project):
        for site in project.sites:
            if "boom" in site.path:
                raise RuntimeError("rule bug")
        return iter(())

    real = run_module._rule_sets
    monkeypatch.setattr(run_module, "_rule_sets", lambda: [*real(), {"X": broken}])
    root = project_dir(tmp_path, {"a.bpf.c": UNKNOWN, "boom.bpf.c": UNKNOWN, "c.bpf.c": UNKNOWN})
    monkeypatch.chdir(root)
    assert main(["check", "--output-format", "concise", "."]) == 2
    out, err = capsys.readouterr()
    assert "a.bpf.c:1:5: SECL101" in out and "c.bpf.c:1:5: SECL101" in out
    assert "boom.bpf.c:" not in out
    assert err.startswith("secl: boom.bpf.c: internal error in secl ") and err.count("\n") == 1


def test_an_internal_error_outside_any_file_is_one_line(capsys, monkeypatch) -> None:
    import secl.catalogue

    def broken():
        raise KeyError("no catalogue")

    monkeypatch.setattr(secl.catalogue, "load_catalogue", broken)
    monkeypatch.delenv("SECL_DEBUG", raising=False)
    assert main(["rule", "SECL101"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"secl: internal error in secl {secl.__version__}: KeyError")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert main(["rule", "--verbose", "SECL101"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_verbose_is_on_every_subcommand() -> None:
    for command in ("check", "sections", "fix", "rule", "verify"):
        result = subprocess.run(
            [sys.executable, "-m", "secl", command, "--help"],
            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)),
            check=True,
        )  # fmt: skip
        assert "--verbose" in result.stdout, command


# -- fix --in-place keeps what the file was -------------------------------------------------


def test_fix_keeps_owner_and_extended_attributes(tmp_path: Path, capsys, monkeypatch) -> None:
    root = project_dir(tmp_path, {"mixed.bpf.c": MIXED_BPF})
    path = root / "mixed.bpf.c"
    path.chmod(0o640)
    try:
        os.setxattr(path, "user.secl-test", b"kept")
    except OSError:
        pytest.skip("no user extended attributes here")
    owner = None
    if os.geteuid() == 0:
        owner = (4242, 4343)
        os.chown(path, *owner)
    monkeypatch.chdir(root)
    assert main(["check", "--fix", "--exit-zero", "mixed.bpf.c"]) == 0
    st = os.stat(path)
    assert 'SEC("?kprobe/foo")' in path.read_text()
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert os.getxattr(path, "user.secl-test") == b"kept"
    if owner is not None:
        assert (st.st_uid, st.st_gid) == owner


def test_a_hard_linked_file_is_not_rewritten(tmp_path: Path, capsys, monkeypatch) -> None:
    root = project_dir(tmp_path, {"mixed.bpf.c": MIXED_BPF})
    os.link(root / "mixed.bpf.c", tmp_path / "elsewhere.c")
    monkeypatch.chdir(root)
    assert main(["fix", "--in-place", "mixed.bpf.c"]) == 2
    err = capsys.readouterr().err
    assert err == "secl: mixed.bpf.c: has 2 hard links, which a rewrite would separate; not fixed\n"
    assert (root / "mixed.bpf.c").read_text() == MIXED_BPF
    assert os.stat(root / "mixed.bpf.c").st_nlink == 2


def test_a_file_whose_owner_cannot_be_kept_is_not_rewritten(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    root = project_dir(tmp_path, {"mixed.bpf.c": MIXED_BPF})
    real_fstat = os.fstat

    def other_owner(fd: int):
        # The new file looks owned by someone else, and giving it away is refused, as for a
        # user fixing a file another user owns in a directory they may write.
        st = real_fstat(fd)
        if stat.S_ISREG(st.st_mode) and fd > 2:
            values = list(st)
            values[4] += 1
            return os.stat_result(values)
        return st

    def refused(*args) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("secl.fix.os.fstat", other_owner)
    monkeypatch.setattr("secl.fix.os.fchown", refused)
    monkeypatch.chdir(root)
    assert main(["fix", "--in-place", "mixed.bpf.c"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("secl: mixed.bpf.c: its owner (") and err.endswith(
        ") cannot be kept; not fixed\n"
    )
    assert (root / "mixed.bpf.c").read_text() == MIXED_BPF
    assert sorted(p.name for p in root.iterdir()) == [".git", "mixed.bpf.c"]


# -- 13. git runs nothing the repository's config names --------------------------------------


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_runs_no_command_from_the_repository_config(tmp_path: Path, monkeypatch) -> None:
    import secl.api
    from secl.api import load

    root = tree(tmp_path / "repo", {"probe.bpf.c": PROBE_BPF, "probe.c": PROBE_LOADER})
    (root / ".git").rmdir()
    marker = tmp_path / "ran"

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    command = f"touch {marker}; false"
    for key in ("core.fsmonitor", "core.pager", "pager.grep", "pager.ls-files"):
        git("config", key, command)
    git("config", "diff.evil.textconv", command)
    (root / ".gitattributes").write_text("*.c diff=evil\n")
    monkeypatch.setattr(secl.api, "GIT_GREP_FROM", 1)
    monkeypatch.chdir(root)
    run = load(["probe.bpf.c"], Config(root=str(root)))
    assert "probe.c" in run.project.files  # git answered (listing and grep)
    assert not marker.exists()
