"""The fix stage: the edit engine, the re-parse check, atomic writes, and the three commands
that use it (`secl fix`, `secl check --fix`, `secl check --diff`)."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from secl.analysis.run import run_rules
from secl.api import load
from secl.cli import main
from secl.config import Config
from secl.facts import Position, Span
from secl.findings import Edit, Finding, Fix
from secl.fix import (
    EditError,
    Mode,
    Refusal,
    apply_edits,
    choose,
    execute,
    plan_fixes,
    reparse_problem,
    summary_line,
    unified_diff,
)

# A program the auto-upgrade breaks (SECL201: attached with an offset): its fix is safe.
PROBE_BPF = """\
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("kprobe/do_unlinkat")
int handle(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""
PROBE_LOADER = """\
#include <bpf/libbpf.h>
#include "probe.skel.h"

int main(void)
{
	struct probe *skel;
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 0x10);

	skel = probe__open_and_load();
	if (!skel)
		return 1;
	bpf_program__attach_kprobe_opts(skel->progs.handle, "do_unlinkat", &opts);
	return 0;
}
"""
# One safe fix (SECL110), one unsafe fix (SECL101 did-you-mean), one finding with no fix.
MIXED_BPF = """\
SEC("??kprobe/foo")
int one(void *ctx) { return 0; }

SEC("kprobes/bar")
int two(void *ctx) { return 0; }

SEC("fentry/")
int three(void *ctx) { return 0; }
"""


def project_dir(root: Path, files: dict[str, str | bytes]) -> Path:
    (root / ".git").mkdir(exist_ok=True)  # the project root for pairing
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
    return root


def span(start: int, end: int) -> Span:
    return Span(start, end, Position(1, start + 1), Position(1, end + 1))


def edit(start: int, end: int, content: str, path: str = "f.c") -> Edit:
    return Edit(path, span(start, end), content)


def finding(
    path: str, edits: tuple[Edit, ...], code: str = "SECL999", safe: bool = True
) -> Finding:
    fix = Fix("safe" if safe else "unsafe", "fix it", edits)
    return Finding(code, "test-rule", "error", "message", path, edits[0].span, fix=fix)


def analysed(root: Path, paths: list[str] | None = None, **config):
    run = load(
        [str(root / p) for p in paths] if paths else [str(root)], Config(root=str(root), **config)
    )
    return run.project, run_rules(run.project)


# -- the edit engine ------------------------------------------------------------------------


def test_edits_refer_to_the_original_bytes_and_apply_bottom_up() -> None:
    data = b"0123456789"
    # Given in any order; a shorter and a longer replacement must not shift each other.
    out = apply_edits(data, [edit(1, 2, "A"), edit(7, 9, ""), edit(4, 5, "BBBB")])
    assert out == b"0A23BBBB569"


def test_identical_edits_count_once() -> None:
    assert apply_edits(b"abc", [edit(1, 2, "X"), edit(1, 2, "X")]) == b"aXc"


@pytest.mark.parametrize(
    "edits",
    [
        [edit(1, 4, "X"), edit(3, 5, "Y")],  # overlapping ranges
        [edit(2, 2, "X"), edit(2, 2, "Y")],  # two insertions at one point: order unknown
        [edit(1, 3, "X"), edit(1, 3, "Y")],  # the same range, different text
        [edit(0, 99, "X")],  # past the end
    ],
)
def test_malformed_edits_are_refused(edits: list[Edit]) -> None:
    with pytest.raises(EditError):
        apply_edits(b"0123456789", edits)


def test_adjacent_edits_are_not_overlapping() -> None:
    assert apply_edits(b"abcd", [edit(0, 2, "X"), edit(2, 4, "Y")]) == b"XY"


def test_non_ascii_text_only_goes_into_utf8_files() -> None:
    assert apply_edits("é-x".encode(), [edit(3, 4, "ü")]) == "é-ü".encode()
    assert apply_edits(b"\xe9-x", [edit(2, 3, "y")]) == b"\xe9-y"  # ASCII into latin-1: fine
    with pytest.raises(EditError, match="not UTF-8"):
        apply_edits(b"\xe9-x", [edit(2, 3, "ü")])


def test_choose_defers_an_overlapping_fix_and_takes_a_duplicate_along() -> None:
    project, _ = _project_of({"f.c": b'SEC("aaaa")'})
    first = finding("f.c", (edit(4, 10, '"bbbb"'),), "SECL201")
    same = finding("f.c", (edit(4, 10, '"bbbb"'),), "SECL204")
    other = finding("f.c", (edit(5, 7, "cc"),), "SECL101")
    chosen, refusals = choose([other, first, same], project, unsafe=False, blocked=set())
    assert [f.code for f in chosen] == ["SECL201", "SECL204"] and not refusals


def test_choose_honours_applicability_and_reported_files() -> None:
    project, _ = _project_of({"f.c": b'SEC("aaaa")'})
    unsafe = finding("f.c", (edit(4, 10, '"bbbb"'),), safe=False)
    elsewhere = finding("g.c", (edit(0, 1, "x", path="g.c"),))
    assert choose([unsafe, elsewhere], project, unsafe=False, blocked=set())[0] == []
    assert choose([unsafe, elsewhere], project, unsafe=True, blocked=set())[0] == [unsafe]


# -- the re-parse check ---------------------------------------------------------------------

TWO_SITES = (
    b'SEC("kprobe/a")\nint a(void *c) { return 0; }\nSEC("xdp")\nint b(void *c) { return 0; }\n'
)


def test_reparse_accepts_the_intended_change() -> None:
    piece = edit(4, 14, '"kprobe.single/a"')
    after = apply_edits(TWO_SITES, [piece])
    assert reparse_problem("f.c", TWO_SITES, after, [piece]) is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        # Closes the call and opens a new site: one more section than before.
        ('"kprobe/a")\nint x;\nSEC("tc"', "3 section sites instead of 2"),
        # Opens a comment that swallows the rest of the file.
        ('"kprobe/a") /*', "parses differently"),
        # Two literals where there was one.
        ('"kprobe/" "b"', "parses differently"),
    ],
)
def test_reparse_refuses_unintended_changes(content: str, problem: str) -> None:
    # The edit covers `SEC(` too, so the literal rule does not apply: the sites tell.
    piece = edit(0, 14, "SEC(" + content)
    after = apply_edits(TWO_SITES, [piece])
    found = reparse_problem("f.c", TWO_SITES, after, [piece])
    assert found is not None and problem in found


def test_reparse_refuses_a_section_change_no_edit_asked_for() -> None:
    at = TWO_SITES.index(b'"xdp"')
    first, second = edit(4, 14, '"kprobe/b"'), edit(at, at + 5, '"tc"')
    after = apply_edits(TWO_SITES, [first, second])
    found = reparse_problem("f.c", TWO_SITES, after, [first])  # only the first was intended
    assert found == 'the section at 3:5 changed to "tc" without a fix for it'


def test_reparse_refuses_an_edit_that_moves_a_site_to_another_branch() -> None:
    data = b'#if A\nSEC("xdp")\nint b(void *c) { return 0; }\n#endif\n'
    cond = edit(4, 5, "B")
    found = reparse_problem("f.c", data, apply_edits(data, [cond]), [cond])
    assert found == "the section site at 2:5 parses differently after the fix"


@pytest.mark.parametrize("content", ['"kprobe/a', '"kprobe/a" "b"', "kprobe_a", '"a\nb"'])
def test_reparse_refuses_a_literal_that_is_no_longer_one_literal(content: str) -> None:
    piece = edit(4, 14, content)
    found = reparse_problem("f.c", TWO_SITES, apply_edits(TWO_SITES, [piece]), [piece])
    assert found == (
        f'the fix replaces the string literal "kprobe/a" with {content}, '
        "which is not one string literal"
    )


def test_a_fix_that_breaks_the_file_is_not_written(tmp_path: Path, capsys) -> None:
    root = project_dir(tmp_path, {"f.bpf.c": TWO_SITES})
    project, _ = analysed(root)
    (path,) = project.reported
    broken = finding(path, (Edit(path, span(0, 14), 'SEC("kprobe/a")\nint x;\nSEC("tc"'),))
    code = execute(project, [broken], Mode(write=True, unsafe=False))
    assert code == 2
    assert (root / "f.bpf.c").read_bytes() == TWO_SITES
    err = capsys.readouterr().err
    assert "f.bpf.c: not fixed: the fixed file has 3 section sites instead of 2" in err


def test_a_fix_whose_own_edits_overlap_is_refused_once() -> None:
    project, _ = _project_of({"f.c": b"abcdef"})
    bad = finding("f.c", (edit(0, 3, "x"), edit(2, 4, "y")))
    plan = plan_fixes(project, [bad], analyse=lambda p: [bad])
    assert plan.files == {}
    assert plan.refusals == [Refusal("f.c", "SECL999: the fix's edits overlap", True)]


def test_non_ascii_into_a_latin1_file_is_refused_as_the_file_s_matter() -> None:
    project, _ = _project_of({"f.c": b"caf\xe9 x"})
    accent = finding("f.c", (edit(5, 6, "\u00fc"),))
    plan = plan_fixes(project, [accent], analyse=lambda p: [])
    assert plan.files == {} and plan.refusals == [
        Refusal("f.c", "not fixed: non-ASCII replacement text for a file that is not UTF-8", False)
    ]


# -- never a fix that a later run undoes ----------------------------------------------------


def _project_of(files: dict[str, bytes]):
    from secl.analysis.project import Project

    project = Project(
        root=".", files=dict(files), sites=[], reported=frozenset(files), config=Config()
    )
    return project, []


def _rule(propose: Callable[[bytes], tuple[bytes, bytes, bool] | None]):
    """An analysis whose one rule proposes to replace the first `old` with `new`."""

    def analyse(project) -> list[Finding]:
        out = []
        for path in sorted(project.reported):
            data = project.files[path]
            hit = propose(data)
            if hit is not None:
                old, new, safe = hit
                start = data.index(old)
                e = Edit(path, span(start, start + len(old)), new.decode())
                out.append(finding(path, (e,), safe=safe))
        return out

    return analyse


def test_a_fix_that_the_next_round_undoes_is_refused() -> None:
    flip = _rule(lambda d: (b"aa", b"bb", True) if b"aa" in d else (b"bb", b"aa", True))
    project, _ = _project_of({"f.c": b"xx aa yy"})
    plan = plan_fixes(project, flip(project), analyse=flip)
    assert plan.files == {}
    assert plan.project.files["f.c"] == b"xx aa yy"
    assert [r.reason for r in plan.refusals] == [
        "not fixed: the fix for SECL999 undoes an earlier fix"
    ]


def test_a_safe_fix_that_an_unsafe_fix_would_undo_is_refused() -> None:
    # With --fix only the first rewrite runs; `--unsafe-fixes` later would turn it back.
    rule = _rule(lambda d: (b"aa", b"bb", True) if b"aa" in d else (b"bb", b"aa", False))
    project, _ = _project_of({"f.c": b"xx aa yy"})
    plan = plan_fixes(project, rule(project), analyse=rule)
    assert plan.files == {} and "would undo it" in plan.refusals[0].reason


def test_fixes_that_never_settle_are_refused() -> None:
    grow = _rule(lambda d: (b"a", b"aa", True))
    project, _ = _project_of({"f.c": b"xx a yy"})
    plan = plan_fixes(project, grow(project), analyse=grow, max_rounds=3)
    assert plan.files == {} and "did not settle after 3 rounds" in plan.refusals[0].reason


def test_a_fix_that_unlocks_another_is_applied_in_the_next_round() -> None:
    chain = _rule(
        lambda d: (
            (b"a1", b"a2", True) if b"a1" in d else (b"a2", b"a3", True) if b"a2" in d else None
        )
    )
    project, _ = _project_of({"f.c": b"<a1>"})
    plan = plan_fixes(project, chain(project), analyse=chain)
    assert plan.project.files["f.c"] == b"<a3>" and plan.applied == 2 and not plan.refusals


# -- secl fix -------------------------------------------------------------------------------


def test_secl_fix_prints_a_diff_and_changes_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    root = project_dir(tmp_path, {"probe.bpf.c": PROBE_BPF, "probe.c": PROBE_LOADER})
    monkeypatch.chdir(root)
    assert main(["fix", "probe.bpf.c"]) == 1
    out, err = capsys.readouterr()
    assert out == (
        "--- probe.bpf.c\n+++ probe.bpf.c\n@@ -1,7 +1,7 @@\n"
        ' #include "vmlinux.h"\n #include <bpf/bpf_helpers.h>\n \n'
        '-SEC("kprobe/do_unlinkat")\n+SEC("kprobe.single/do_unlinkat")\n'
        " int handle(void *ctx)\n {\n \treturn 0;\n"
    )
    assert "Would fix 1 finding; 0 more fixable with `--unsafe-fixes`; 0 without a fix." in err
    assert (root / "probe.bpf.c").read_text() == PROBE_BPF


def test_secl_fix_in_place_then_nothing_left(tmp_path: Path, capsys, monkeypatch) -> None:
    root = project_dir(tmp_path, {"probe.bpf.c": PROBE_BPF, "probe.c": PROBE_LOADER})
    monkeypatch.chdir(root)
    assert main(["fix", "--in-place", "probe.bpf.c"]) == 0
    assert (root / "probe.bpf.c").read_text() == PROBE_BPF.replace("kprobe/", "kprobe.single/")
    assert "Fixed 1 finding;" in capsys.readouterr().out
    assert main(["fix", "probe.bpf.c"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["check", "probe.bpf.c"]) == 0


def test_secl_fix_in_place_exits_1_while_findings_remain(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    root = project_dir(tmp_path, {"mixed.bpf.c": MIXED_BPF})
    monkeypatch.chdir(root)
    assert main(["fix", "--in-place", "--output-format", "concise", "."]) == 1
    out = capsys.readouterr().out
    text = (root / "mixed.bpf.c").read_text()
    assert 'SEC("?kprobe/foo")' in text and 'SEC("kprobes/bar")' in text  # safe only
    assert "mixed.bpf.c:4:5: SECL101" in out and "mixed.bpf.c:7:5: SECL104" in out
    assert "Fixed 1 finding; 1 more fixable with `--unsafe-fixes`; 1 without a fix." in out
    assert main(["fix", "--in-place", "--unsafe-fixes", "."]) == 1  # SECL104 has no fix
    assert 'SEC("kprobe/bar")' in (root / "mixed.bpf.c").read_text()
    # With --unsafe-fixes given, the summary does not count what it would fix.
    assert "Fixed 1 finding; 1 without a fix." in capsys.readouterr().out


def test_secl_fix_select(tmp_path: Path, capsys, monkeypatch) -> None:
    root = project_dir(tmp_path, {"mixed.bpf.c": MIXED_BPF})
    monkeypatch.chdir(root)
    assert main(["fix", "--unsafe-fixes", "--select", "SECL101", "mixed.bpf.c"]) == 1
    out = capsys.readouterr().out
    assert '+SEC("kprobe/bar")' in out and '-SEC("??kprobe' not in out


# -- secl check --fix / --diff --------------------------------------------------------------


def test_check_diff_prints_and_exits_1_without_writing(tmp_path: Path, capsys, monkeypatch) -> None:
    root = project_dir(tmp_path, {"mixed.bpf.c": MIXED_BPF})
    monkeypatch.chdir(root)
    assert main(["check", "--diff", "mixed.bpf.c"]) == 1
    out, err = capsys.readouterr()
    assert '-SEC("??kprobe/foo")\n+SEC("?kprobe/foo")\n' in out and '-SEC("kprobes' not in out
    assert "Would fix 1 finding; 1 more fixable with `--unsafe-fixes`; 1 without a fix." in err
    assert (root / "mixed.bpf.c").read_text() == MIXED_BPF
    assert main(["check", "--diff", "--fix", "mixed.bpf.c"]) == 1  # --diff wins: still no write
    assert (root / "mixed.bpf.c").read_text() == MIXED_BPF


def test_check_diff_with_nothing_to_fix_exits_0(tmp_path: Path, capsys, monkeypatch) -> None:
    root = project_dir(tmp_path, {"ok.bpf.c": 'SEC("xdp")\nint x(void *c) { return 0; }\n'})
    monkeypatch.chdir(root)
    assert main(["check", "--diff", "."]) == 0
    assert capsys.readouterr().out == ""


def test_check_fix_applies_safe_fixes_and_reports_the_rest(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    root = project_dir(tmp_path, {"mixed.bpf.c": MIXED_BPF})
    monkeypatch.chdir(root)
    assert main(["check", "--fix", "mixed.bpf.c"]) == 1
    out = capsys.readouterr().out
    assert "SECL110" not in out and "SECL101" in out and "SECL104" in out
    assert out.rstrip().endswith(
        "Found 2 findings.\nFixed 1 finding; 1 more fixable with `--unsafe-fixes`; 1 without a fix."
    )
    assert main(["check", "--fix", "--unsafe-fixes", "--exit-zero", "mixed.bpf.c"]) == 0
    assert (root / "mixed.bpf.c").read_text() == MIXED_BPF.replace("??", "?").replace(
        "kprobes", "kprobe"
    )


def test_check_fix_json_stays_json(tmp_path: Path, capsys, monkeypatch) -> None:
    root = project_dir(tmp_path, {"mixed.bpf.c": MIXED_BPF})
    monkeypatch.chdir(root)
    assert main(["check", "--fix", "--output-format", "json", "mixed.bpf.c"]) == 1
    out, err = capsys.readouterr()
    assert sorted(f["code"] for f in json.loads(out)) == ["SECL101", "SECL104"]
    assert "Fixed 1 finding" in err


def test_check_fix_on_standard_input_prints_the_fixed_source(
    tmp_path: Path, capsysbinary, monkeypatch
) -> None:
    root = project_dir(tmp_path, {})
    monkeypatch.chdir(root)
    source = MIXED_BPF.replace("\n", "\r\n").encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(source)))
    assert main(["check", "--fix", "--stdin-filename", "mixed.bpf.c"]) == 1
    out, err = capsysbinary.readouterr()
    assert out == source.replace(b"??", b"?")
    assert b"mixed.bpf.c:4:5: SECL101" in err


# -- what a write keeps ---------------------------------------------------------------------


def test_bytes_encoding_line_ends_and_mode_are_kept(tmp_path: Path, capsys, monkeypatch) -> None:
    # BOM, CRLF, a tab, trailing whitespace, a Latin-1 byte, no newline at the end.
    source = (
        b"\xef\xbb\xbf/* caf\xe9 */  \r\n"
        b'SEC("??kprobe/foo")\t \r\n'
        b"int one(void *ctx)\t{ return 0; }   "
    )
    root = project_dir(tmp_path, {"odd.bpf.c": source})
    path = root / "odd.bpf.c"
    path.chmod(0o751)
    before = os.stat(path)
    monkeypatch.chdir(root)
    assert main(["check", "--fix", "odd.bpf.c"]) == 0
    assert path.read_bytes() == source.replace(b"??", b"?")
    after = os.stat(path)
    assert stat.S_IMODE(after.st_mode) == 0o751
    assert after.st_ino != before.st_ino  # replaced by a rename, not rewritten in place
    assert [p.name for p in root.iterdir() if p.name.startswith(".odd")] == []  # no temp left


def test_diff_of_crlf_latin1_without_final_newline_applies_with_patch(
    tmp_path: Path, capsysbinary, monkeypatch
) -> None:
    source = b'/* caf\xe9 */\r\nSEC("??kprobe/foo")\r\nint one(void *ctx) { return 0; }'
    root = project_dir(tmp_path, {"odd.bpf.c": source})
    monkeypatch.chdir(root)
    assert main(["fix", "odd.bpf.c"]) == 1
    diff = capsysbinary.readouterr().out
    assert b'-SEC("??kprobe/foo")\r\n+SEC("?kprobe/foo")\r\n' in diff
    assert unified_diff("x", b"a\nb", b"a\nc").endswith(b"+c\n\\ No newline at end of file\n")
    if shutil.which("patch") is None:
        pytest.skip("no patch(1)")
    subprocess.run(["patch", "-p0", "--binary", "-s"], input=diff, cwd=root, check=True)
    assert (root / "odd.bpf.c").read_bytes() == source.replace(b"??", b"?")


def test_a_symlink_stays_a_link_and_its_target_is_written(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    root = project_dir(tmp_path, {"real/target.c": MIXED_BPF})
    (root / "mixed.bpf.c").symlink_to("real/target.c")
    monkeypatch.chdir(root)
    assert main(["check", "--fix", "mixed.bpf.c"]) == 1
    assert (root / "mixed.bpf.c").is_symlink()
    assert os.readlink(root / "mixed.bpf.c") == "real/target.c"
    assert 'SEC("?kprobe/foo")' in (root / "real/target.c").read_text()


def test_the_same_file_by_two_paths_is_written_once(tmp_path: Path, monkeypatch, capsys) -> None:
    root = project_dir(tmp_path, {"a.bpf.c": MIXED_BPF})
    (root / "b.bpf.c").symlink_to("a.bpf.c")
    monkeypatch.chdir(root)
    main(["check", "--fix", "a.bpf.c", "b.bpf.c"])
    assert (root / "a.bpf.c").read_text() == MIXED_BPF.replace("??", "?")
    assert "changed since" not in capsys.readouterr().err


def test_a_read_only_file_is_reported_not_forced(tmp_path: Path, capsys, monkeypatch) -> None:
    root = project_dir(tmp_path, {"mixed.bpf.c": MIXED_BPF})
    (root / "mixed.bpf.c").chmod(0o444)
    monkeypatch.chdir(root)
    assert main(["fix", "--in-place", "mixed.bpf.c"]) == 1
    out, err = capsys.readouterr()
    assert "secl: mixed.bpf.c: read-only; not fixed" in err
    assert (root / "mixed.bpf.c").read_text() == MIXED_BPF
    assert stat.S_IMODE(os.stat(root / "mixed.bpf.c").st_mode) == 0o444
    # What is reported is what is on disk: the SECL110 is still there, and not counted as fixed.
    assert "SECL110" in out and "Fixed 0 findings;" in out and "1 fixable finding not fixed" in out


def test_a_file_changed_after_reading_is_not_overwritten(tmp_path: Path, capsys) -> None:
    root = project_dir(tmp_path, {"mixed.bpf.c": MIXED_BPF})
    project, findings = analysed(root)
    (root / "mixed.bpf.c").write_text(MIXED_BPF + "\n// edited meanwhile\n")
    assert execute(project, findings, Mode(write=True, unsafe=False)) == 1
    assert "changed since secl read it; not fixed" in capsys.readouterr().err
    assert (root / "mixed.bpf.c").read_text().endswith("// edited meanwhile\n")


def test_only_the_files_given_are_edited(tmp_path: Path, capsys, monkeypatch) -> None:
    # The loader is read for pairing, the BPF source is not given: nothing is fixed.
    root = project_dir(tmp_path, {"probe.bpf.c": PROBE_BPF, "probe.c": PROBE_LOADER})
    monkeypatch.chdir(root)
    assert main(["fix", "--in-place", "probe.c"]) == 0
    assert (root / "probe.bpf.c").read_text() == PROBE_BPF


# -- the summary line -----------------------------------------------------------------------


def test_summary_line_counts() -> None:
    e = edit(0, 1, "x")
    remaining = [
        finding("f.c", (e,), safe=False),
        finding("f.c", (e,), safe=False),
        Finding("SECL104", "n", "error", "m", "f.c", e.span),
    ]
    assert summary_line(3, remaining, unsafe=False, would=False) == (
        "Fixed 3 findings; 2 more fixable with `--unsafe-fixes`; 1 without a fix."
    )
    assert summary_line(1, remaining, unsafe=True, would=True) == (
        "Would fix 1 finding; 1 without a fix; 2 fixable findings not fixed (see the errors above)."
    )
