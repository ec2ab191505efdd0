"""The command line, through a subprocess as users and pre-commit run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

PROGRAM = 'SEC("{section}")\nint BPF_KPROBE(handle)\n{{\n\treturn 0;\n}}\n'


def secl(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "secl", *args],
        cwd=cwd, input=stdin.decode("latin-1") if stdin is not None else None,
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "good.bpf.c").write_text(PROGRAM.format(section="kprobe/do_unlinkat"))
    (tmp_path / "bad.bpf.c").write_text(PROGRAM.format(section="kprobes/do_unlinkat"))
    return tmp_path


def test_exit_codes(project):
    assert secl("check", "good.bpf.c", cwd=project).returncode == 0
    r = secl("check", ".", cwd=project)
    assert r.returncode == 1 and "bad.bpf.c:1:5: SECL101 [unknown-section-name]" in r.stdout
    assert secl("check", "--exit-zero", ".", cwd=project).returncode == 0
    assert secl("check", "--select", "NOPE", ".", cwd=project).returncode == 2
    assert secl("check", "--output-format", "xml", ".", cwd=project).returncode == 2


def test_default_command_is_check(project):
    r = secl("bad.bpf.c", cwd=project)
    assert r.returncode == 1 and "SECL101" in r.stdout


def test_full_format_shows_the_line_and_a_caret(project):
    out = secl("check", "bad.bpf.c", cwd=project).stdout
    assert 'SEC("kprobes/do_unlinkat")' in out and "^^^^^^^^^^^^^^^^^^^^^" in out
    assert "help: Use `kprobe/do_unlinkat` (unsafe)" in out and "Found 1 finding" in out


def test_json_format_fields(project):
    r = secl("check", "--output-format", "json", "bad.bpf.c", cwd=project)
    (item,) = json.loads(r.stdout)
    assert item["code"] == "SECL101" and item["filename"] == "bad.bpf.c"
    assert item["location"] == {"row": 1, "column": 5} and item["program"] == "handle"
    assert item["fix"]["applicability"] == "unsafe"


def test_select_ignore_and_config(project):
    assert secl("check", "--ignore", "SECL101", ".", cwd=project).returncode == 0
    assert secl("check", "--select", "SECL2", ".", cwd=project).returncode == 0
    (project / "pyproject.toml").write_text('[tool.secl]\nignore = ["SECL1"]\n')
    assert secl("check", ".", cwd=project).returncode == 0
    assert secl("check", "--no-config", ".", cwd=project).returncode == 1
    # as in ruff, a more specific selector wins over the configured prefix
    assert secl("check", "--extend-select", "SECL101", ".", cwd=project).returncode == 1
    (project / "pyproject.toml").write_text(
        '[tool.secl]\nper-file-ignores = { "bad.*" = ["SECL101"] }\n'
    )
    assert secl("check", ".", cwd=project).returncode == 0


def test_unknown_config_key_is_an_error_naming_it(project):
    (project / ".secl.toml").write_text('slect = ["SECL1"]\n')
    r = secl("check", ".", cwd=project)
    assert r.returncode == 2 and "unknown key `slect`" in r.stderr and ".secl.toml" in r.stderr


def test_target_libbpf(project):
    (project / "single.bpf.c").write_text(PROGRAM.format(section="kprobe.single/f"))
    assert secl("check", "single.bpf.c", cwd=project).returncode == 0
    r = secl("check", "--target-libbpf", "1.7", "single.bpf.c", cwd=project)
    assert r.returncode == 1 and "SECL109" in r.stdout
    assert secl("check", "--target-libbpf", "latest", "single.bpf.c", cwd=project).returncode == 2


def test_statistics(project):
    r = secl("check", "--statistics", ".", cwd=project)
    assert r.returncode == 1 and r.stdout.split() == ["1", "SECL101", "unknown-section-name"]


def test_stdin_filename(project):
    src = PROGRAM.format(section="xdp/foo").encode()
    r = secl("check", "--stdin-filename", "from_editor.bpf.c", cwd=project, stdin=src)
    assert r.returncode == 1 and "from_editor.bpf.c:1:5: SECL102" in r.stdout


def test_rule_command(project):
    r = secl("rule", "SECL101", cwd=project)
    assert r.returncode == 0 and r.stdout.startswith("# unknown-section-name (SECL101)")
    r = secl("rule", "--all", cwd=project)
    assert r.returncode == 0 and "SECL101" in r.stdout and "SECL001" in r.stdout
    assert secl("rule", "SECL999", cwd=project).returncode == 2


def test_sections_command(project):
    r = secl("sections", "--output-format", "json", "good.bpf.c", cwd=project)
    (site,) = json.loads(r.stdout)
    assert site["program"] == "handle" and site["definition"] == "kprobe+"
    assert site["upgrade"]["upgraded"] is True and site["upgrade"]["needs_single"] is False


# Bad input: one line on stderr naming the file, the run goes on, exit 2 only when nothing
# could be linted.


def test_missing_path(project):
    r = secl("check", "nope.c", "bad.bpf.c", cwd=project)
    assert r.returncode == 1 and r.stderr.strip() == "secl: nope.c: no such file or directory"
    r = secl("check", "nope.c", cwd=project)
    assert r.returncode == 2 and "nope.c" in r.stderr


def test_binary_and_empty_files(project):
    (project / "blob.c").write_bytes(b"\x7fELF\0\0\0\1" * 100)
    (project / "empty.c").write_bytes(b"")
    r = secl("check", ".", cwd=project)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        "secl: ./blob.c: binary file (NUL bytes), skipped"
    ] or r.stderr.splitlines() == ["secl: blob.c: binary file (NUL bytes), skipped"]
    assert secl("check", "empty.c", cwd=project).returncode == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable_file_as_user(project):
    path = project / "locked.bpf.c"
    path.write_text(PROGRAM.format(section="xdp"))
    path.chmod(0)
    r = secl("check", ".", cwd=project)
    assert "locked.bpf.c: permission denied" in r.stderr


def test_unreadable_file_even_as_root(project):
    # Reading /proc/self/mem from offset 0 fails with EIO whoever reads it.
    (project / "mem.c").symlink_to("/proc/self/mem")
    r = secl("check", ".", cwd=project)
    assert r.returncode == 1
    assert [line for line in r.stderr.splitlines() if "mem.c" in line] == [
        "secl: mem.c: input/output error"
    ]


def test_directory_named_like_a_source(project):
    # As root, a directory named like a source file cannot be read as one.
    (project / "dir.c").mkdir()
    r = secl("check", "dir.c", "bad.bpf.c", cwd=project)
    assert r.returncode == 1 and "dir.c" not in r.stdout


def test_symlink_loop_and_broken_link(project):
    (project / "sub").mkdir()
    (project / "sub" / "loop").symlink_to(project / "sub")
    (project / "dangling.c").symlink_to(project / "missing.c")
    r = secl("check", ".", cwd=project)
    assert r.returncode == 1
    assert "symbolic link loop" in r.stderr and "dangling.c: broken symbolic link" in r.stderr
    assert len(r.stderr.splitlines()) == 2


def test_non_utf8_and_crlf(project):
    (project / "latin1.bpf.c").write_bytes(
        b"/* caf\xe9 */\r\n" + PROGRAM.format(section="xdp/x").replace("\n", "\r\n").encode()
    )
    r = secl("check", "latin1.bpf.c", cwd=project)
    assert r.returncode == 1 and "latin1.bpf.c:2:5: SECL102" in r.stdout
    assert r.stderr.strip() == "secl: latin1.bpf.c: not valid UTF-8 (byte 6); linted as raw bytes"


def test_large_generated_header_and_error_soup(project):
    header = b"".join(
        b"#define GEN_%d %d\nstruct s%d { int a; long b[%d]; };\n" % (i, i, i, i % 7 + 1)
        for i in range(90000)
    )
    assert len(header) > 5_000_000
    (project / "vmlinux.h").write_bytes(header)
    (project / "soup.c").write_text('}}} ((( ;; SEC("kprobes/x") int f(void *c) { ]]] \n' * 200)
    r = secl("check", ".", cwd=project)
    assert r.returncode == 1 and r.stderr == ""
    assert "soup.c:1:" in r.stdout


def test_sarif_and_github(project):
    r = secl("check", "--output-format", "sarif", ".", cwd=project)
    doc = json.loads(r.stdout)
    assert doc["runs"][0]["results"][0]["ruleId"] == "SECL101"
    r = secl("check", "--output-format", "github", ".", cwd=project)
    assert r.stdout.startswith("::error file=bad.bpf.c,line=1,col=5,")


def test_output_does_not_depend_on_hash_seeds(project):
    (project / "probe.bpf.c").write_text(PROGRAM.format(section="kprobe/do_unlinkat"))
    (project / "probe.c").write_text(
        '#include "probe.skel.h"\nint main(int argc, char **argv)\n{\n'
        "\tstruct probe *skel = probe__open_and_load();\n"
        "\tLIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = argc > 1 ? 9 : 5);\n"
        "\tLIBBPF_OPTS(bpf_kprobe_opts, other, .attach_mode = argc ? PROBE_ATTACH_MODE_LINK : PROBE_ATTACH_MODE_PERF);\n"
        '\tbpf_program__attach_kprobe_opts(skel->progs.handle, "do_unlinkat", argc > 2 ? &opts : &other);\n'
        "\treturn 0;\n}\n"
    )
    outputs = set()
    for seed in ("1", "2", "3", "4"):
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONHASHSEED=seed)
        r = subprocess.run(
            [sys.executable, "-m", "secl", "check", "--output-format", "json", "probe.bpf.c"],
            cwd=project, capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        assert r.returncode == 1, r.stderr
        outputs.add(r.stdout)
    assert len(outputs) == 1


# Small things a user saw (issue 13).


def test_sections_says_upgraded_once(project):
    r = secl("sections", "good.bpf.c", cwd=project)
    assert "upgraded (upgraded)" not in r.stdout and " upgraded " in r.stdout
    r = secl("sections", "--output-format", "concise", "good.bpf.c", cwd=project)
    assert r.stdout.splitlines()[0].endswith("-> kprobe+ upgraded")


def test_rule_all_aligns_long_names(project):
    import re

    lines = secl("rule", "--all", cwd=project).stdout.splitlines()
    rows = [re.match(r"SECL\d{3}  \S+ +(?:error|warning|info) +\S", line) for line in lines]
    assert len(rows) > 20 and all(rows)
    # Severity and summary start in one column each, however long the name before them.
    assert len({re.search(r" (error|warning|info) ", line).start(1) for line in lines}) == 1
    assert len({m.end() for m in rows}) == 1


def test_rule_takes_a_name(project):
    r = secl("rule", "upgraded-kprobe-perf-mode-with-context-helpers", cwd=project)
    assert r.returncode == 0 and r.stdout.startswith(
        "# upgraded-kprobe-perf-mode-with-context-helpers (SECL203)"
    )
    assert secl("rule", "secl101", cwd=project).returncode == 0
    assert secl("rule", "no-such-rule", cwd=project).returncode == 2


@pytest.mark.parametrize("command", ["check", "sections", "fix"])
def test_every_option_has_help(project, command):
    import argparse

    from secl.cli import _parser

    parser = _parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for action in sub.choices[command]._actions:
        assert action.help, (command, action.option_strings or action.dest)


def test_recursive_macro_is_called_recursive(project):
    (project / "r.bpf.c").write_text("#define PFX PFX\nSEC(PFX)\nint f(void *ctx) { return 0; }\n")
    r = secl("check", "--select", "SECL001", "--output-format", "concise", "r.bpf.c", cwd=project)
    assert "`PFX` is a recursive macro" in r.stdout and "not defined" not in r.stdout


def test_removed_section_wording(project):
    (project / "l.bpf.c").write_text(PROGRAM.format(section="sk_lookup/x"))
    r = secl("check", "--output-format", "concise", "l.bpf.c", cwd=project)
    assert "`sk_lookup/x` was removed in libbpf 1.0.0: libbpf 1.0.0 and later reject it" in r.stdout
    assert "with the auto-upgrade" not in r.stdout
