"""Sections built by the preprocessor, resolved without a compile database (secl.parse.macros).

Every fixture is written here: a header with an arch-dependent prefix, wrapper macros, #ifdef'd
families, and the cases that must stay unresolved.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from secl.analysis.run import run_rules
from secl.api import load
from secl.config import Config
from secl.facts import SectionSite
from secl.parse import macros
from secl.parse.macros import arch_defines, known_arch, prefix_spelling

ROOT = Path(__file__).resolve().parents[2]

# The shape of an arch-dependent syscall prefix: the header decides from the compiler's
# arch macros, secl only predefines those.
PREFIX_H = """\
#ifndef PREFIX_H
#define PREFIX_H
#if defined(__TARGET_ARCH_x86)
#define SYSCALL_PFX "__x64_"
#elif defined(__TARGET_ARCH_s390)
#define SYSCALL_PFX "__s390x_"
#elif defined(__TARGET_ARCH_arm64)
#define SYSCALL_PFX "__arm64_"
#else
#define SYSCALL_PFX "__se_"
#endif
#endif
"""


def body(name: str) -> str:
    return f"int {name}(void *ctx)\n{{\n\treturn 0;\n}}\n"


def write(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def run_of(tmp_path: Path, files: dict[str, str], **config):
    write(tmp_path, files)
    return load([str(tmp_path)], Config(**config))


def programs(tmp_path: Path, files: dict[str, str], **config) -> dict[str, SectionSite]:
    run = run_of(tmp_path, files, **config)
    return {s.program: s for s in run.project.sites if s.kind == "program" and not s.template}


def section_of(tmp_path: Path, src: str, **config) -> str | None:
    found = programs(tmp_path, {"p.bpf.c": src}, **config)
    assert list(found) == ["p"], found
    return found["p"].section


SLEEP = '#include "prefix.h"\nSEC("kprobe/" SYSCALL_PFX "sys_nanosleep")\n' + body("p")


# -- the arch-dependent prefix ----------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "section"),
    [
        ("x86_64", "kprobe/__x64_sys_nanosleep"),
        ("x86", "kprobe/__x64_sys_nanosleep"),
        ("arm64", "kprobe/__arm64_sys_nanosleep"),
        ("aarch64", "kprobe/__arm64_sys_nanosleep"),
        ("s390x", "kprobe/__s390x_sys_nanosleep"),
        ("riscv64", "kprobe/__se_sys_nanosleep"),  # the header's own #else
    ],
)
def test_target_arch_picks_the_prefix_through_the_headers_logic(tmp_path, arch, section):
    site = programs(tmp_path, {"p.bpf.c": SLEEP, "prefix.h": PREFIX_H}, target_arch=arch)["p"]
    assert site.section == section
    assert site.resolved_by == "macro"


def test_a_header_that_tests_compiler_macros_works_the_same(tmp_path):
    header = '#if defined(__aarch64__)\n#define PFX "__arm64_"\n#elif defined(__x86_64__)\n'
    header += '#define PFX "__x64_"\n#endif\n'
    src = '#include "pfx.h"\nSEC("fentry/" PFX "sys_getpgid")\n' + body("p")
    files = {"p.bpf.c": src, "pfx.h": header}
    assert (
        programs(tmp_path, files, target_arch="arm64")["p"].section == "fentry/__arm64_sys_getpgid"
    )


def test_without_an_arch_the_prefix_stays_unresolved_and_the_note_names_the_macro(tmp_path):
    run = run_of(tmp_path, {"p.bpf.c": SLEEP, "prefix.h": PREFIX_H}, select=("ALL",))
    (site,) = [s for s in run.project.sites if s.program == "p"]
    assert site.section is None
    assert site.unresolved_macro == "SYSCALL_PFX"
    assert "__TARGET_ARCH_x86" in (site.unresolved_reason or "")
    assert "--target-arch" in (site.unresolved_reason or "")
    findings = run_rules(run.project)
    assert [f.code for f in findings] == ["SECL001"]  # a note, never a guess
    assert "`SYSCALL_PFX`" in findings[0].message and "--target-arch" in findings[0].message


def test_the_configuration_says_which_condition_the_section_holds_for(tmp_path):
    site = programs(tmp_path, {"p.bpf.c": SLEEP, "prefix.h": PREFIX_H}, target_arch="s390x")["p"]
    assert site.configuration == "defined(__TARGET_ARCH_s390)"
    site = programs(tmp_path, {"p.bpf.c": SLEEP, "prefix.h": PREFIX_H}, target_arch="riscv64")["p"]
    assert site.configuration == (
        "!defined(__TARGET_ARCH_x86) && !defined(__TARGET_ARCH_s390) && "
        "!defined(__TARGET_ARCH_arm64)"
    )


def test_spellings_point_at_each_literal_where_it_is_written(tmp_path):
    site = programs(tmp_path, {"p.bpf.c": SLEEP, "prefix.h": PREFIX_H}, target_arch="x86_64")["p"]
    where = [
        (os.path.basename(s.path), s.piece.span.start.row, s.piece.span.start.column, s.macro)
        for s in site.spellings
    ]
    assert where == [("p.bpf.c", 2, 5, None), ("prefix.h", 4, 21, "SYSCALL_PFX"),
                     ("p.bpf.c", 2, 27, None)]  # fmt: skip
    assert "".join(s.piece.value or "" for s in site.spellings) == site.section
    text = (tmp_path / "prefix.h").read_bytes()
    header = site.spellings[1].piece.span
    assert text[header.start_byte : header.end_byte] == b'"__x64_"'
    # The program type is spelled at the call site: a fix renaming it edits p.bpf.c only.
    first = prefix_spelling(site)
    assert first is not None and first.path.endswith("p.bpf.c") and first.piece.text == '"kprobe/"'


def test_arch_predefines_are_the_compilers_not_syscall_prefixes():
    names = {d.split("=")[0] for d in arch_defines("x86_64")}
    assert {"__x86_64__", "__TARGET_ARCH_x86", "__BYTE_ORDER__"} <= names
    assert not any("x64_" in d for d in arch_defines("x86_64"))
    assert dict(d.split("=") for d in arch_defines("s390x"))["__BYTE_ORDER__"] == (
        "__ORDER_BIG_ENDIAN__"
    )
    assert known_arch("amd64") == "x86_64" and known_arch("vax") is None


# -- object-like, function-like, # and ## ----------------------------------------------


@pytest.mark.parametrize(
    ("defines", "argument", "section"),
    [
        ('#define PFX "uprobe/"\n', 'PFX "x"', "uprobe/x"),
        ('#define KP(fn) "kprobe/" #fn\n', "KP(do_unlinkat)", "kprobe/do_unlinkat"),
        ("#define STR(x) #x\n#define XSTR(x) STR(x)\n#define T tc\n", '"" XSTR(T)', "tc"),
        ("#define STR(x) #x\n#define T tc\n", '"" STR(T)', "T"),  # # does not expand
        ('#define CAT(a, b) a ## b\n#define kp_pfx "kprobe/"\n', 'CAT(kp_, pfx) "f"', "kprobe/f"),
        ('#define P(...) "fentry/" __VA_ARGS__\n', 'P("a" "b")', "fentry/ab"),
        ("#define P(fmt, args...) fmt, ## args\n", 'P("xdp")', "xdp"),
        ("#define Q(x) #x\n", 'Q(a "b\\\\c" d)', 'a "b\\\\c" d'),
        (
            '#define A B\n#define B "raw_tp/" C\n#define C "sched_switch"\n',
            "A",
            "raw_tp/sched_switch",
        ),
        ('#define SELF SELF "x"\n', "SELF", None),  # stops at the hide set; SELF stays
    ],
)
def test_expansion(tmp_path, defines, argument, section):
    assert section_of(tmp_path, f"{defines}SEC({argument})\n{body('p')}") == section


def test_a_redefinition_applies_from_where_it_is_written(tmp_path):
    src = (
        '#define PFX "kprobe/"\nSEC(PFX "a")\n' + body("a")
        + '#undef PFX\n#define PFX "kretprobe/"\nSEC(PFX "b")\n' + body("b")
    )  # fmt: skip
    found = programs(tmp_path, {"p.bpf.c": src})
    assert (found["a"].section, found["b"].section) == ("kprobe/a", "kretprobe/b")


# -- #if arithmetic, three-valued ----------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "section"),
    [
        ("1 + 2 * 3 == 7", "yes/x"),
        ("(1 << 4) > 15 && !0", "yes/x"),
        ("0x10 == 16 && 010 == 8 && 'A' == 65 && -7 / 2 == -3 && -7 % 2 == -1", "yes/x"),
        ("MISSING_NAME && 0", "no/x"),  # unknown && 0 is 0
        ("MISSING_NAME || 1", "yes/x"),
        ("MISSING_NAME", None),  # unknown: neither branch is certain
        ("defined(MISSING_NAME)", None),
        ("1 ? 2 : MISSING_NAME", "yes/x"),
        ("__has_builtin(__builtin_memcpy)", None),
        ('__has_include("prefix.h")', "yes/x"),
        ("defined(__bpf__) && __GNUC__ >= 4", "yes/x"),  # what clang -target bpf predefines
        ("LOCAL == 3", "yes/x"),
        ("defined LOCAL", "yes/x"),
        ("NEVER_SET_HERE_BUT_DEFINED_BELOW", "no/x"),  # a name the file defines is not unknown
    ],
)
def test_if_evaluation(tmp_path, condition, section):
    src = (
        f'#define LOCAL 3\n#if {condition}\n#define P "yes/"\n#else\n#define P "no/"\n#endif\n'
        f'SEC(P "x")\n{body("p")}#define NEVER_SET_HERE_BUT_DEFINED_BELOW 1\n'
    )
    write(tmp_path, {"prefix.h": "\n"})
    assert section_of(tmp_path, src) == section


def test_a_macro_under_an_unknown_if_serves_uses_under_the_same_if(tmp_path):
    src = (
        '#if HAVE_FEATURE\n#define T(n) SEC("socket") int n(void *ctx) { return 0; }\n'
        "T(in_branch)\n#endif\nT(outside)\n"
    )
    run = run_of(tmp_path, {"p.bpf.c": src})
    found = {s.program: s for s in run.project.sites if not s.template}
    assert found["in_branch"].section == "socket"
    assert found["in_branch"].branch == "HAVE_FEATURE"
    assert found["in_branch"].configuration is None  # its own #if is its branch, not a choice
    assert found["outside"].section is None
    assert "HAVE_FEATURE" in (found["outside"].unresolved_reason or "")


# -- macros that wrap SEC -----------------------------------------------------------------

WRAPPERS_H = """\
#define KPROBE(fn) SEC("kprobe/" #fn)
#define TAIL(n) SEC("tc") int classifier_##n(void *skb)
#define TWO(t, a, b) SEC(t) int a(void *ctx) { return 0; } SEC("?" t) int b(void *ctx) { return 1; }
#define BPF_PROG(name, args...) name(void *ctx); int name(void *ctx)
#define PRIVATE(n) SEC(".data." #n) __attribute__((aligned(8)))
"""


def test_uses_of_wrappers_become_sites(tmp_path):
    src = (
        '#include "wrappers.h"\n'
        "KPROBE(do_sys_open)\nint BPF_PROG(on_open)\n{\n\treturn 0;\n}\n"
        "TAIL(0)\n{\n\treturn 0;\n}\n"
        "TAIL(1)\n{\n\treturn 1;\n}\n"
        'TWO("xdp", first, second)\n'
        "PRIVATE(A) struct lock glock;\n"
    )
    run = run_of(tmp_path, {"p.bpf.c": src, "wrappers.h": WRAPPERS_H})
    got = [
        (s.span.start.row, s.kind, s.program or s.symbol, s.section, s.macro)
        for s in run.project.sites
        if not s.template
    ]
    assert got == [
        (2, "program", "on_open", "kprobe/do_sys_open", "KPROBE"),
        (7, "program", "classifier_0", "tc", "TAIL"),
        (11, "program", "classifier_1", "tc", "TAIL"),
        (15, "program", "first", "xdp", "TWO"),
        (15, "program", "second", "?xdp", "TWO"),
        (16, "data", "glock", ".data.A", "PRIVATE"),
    ]
    on_open = next(s for s in run.project.sites if s.program == "on_open")
    assert on_open.name_span is not None and on_open.name_span.start.row == 3
    assert on_open.body is not None and src.encode()[on_open.body[0]] == ord("{")
    assert on_open.pieces == ()  # a use has no argument of its own: see spellings
    kinds = [
        (s.piece.kind, s.piece.text, os.path.basename(s.path), s.macro) for s in on_open.spellings
    ]
    assert kinds == [("literal", '"kprobe/"', "wrappers.h", "KPROBE"),
                     ("stringify", '"do_sys_open"', "p.bpf.c", None)]  # fmt: skip


def test_a_literal_in_a_define_knows_the_other_programs_it_serves(tmp_path):
    src = '#include "wrappers.h"\nTAIL(0)\n{ return 0; }\nTAIL(1)\n{ return 1; }\n'
    src += "KPROBE(a) int a_prog(void *ctx) { return 0; }\n"
    run = run_of(tmp_path, {"p.bpf.c": src, "wrappers.h": WRAPPERS_H})
    by_name = {s.program: s for s in run.project.sites if s.program}
    assert by_name["classifier_0"].macro_users == ("classifier_1",)
    tc = prefix_spelling(by_name["classifier_0"])
    assert tc is not None and tc.macro == "TAIL" and tc.shared == ("classifier_1",)
    assert by_name["a_prog"].macro_users == ()  # the only user of KPROBE's literal


def test_a_wrapper_whose_section_is_wrong_gets_the_finding(tmp_path):
    src = (
        '#define PROBE(fn) SEC("kprobes/" #fn)\nPROBE(do_unlinkat) int p(void *ctx) { return 0; }\n'
    )
    run = run_of(tmp_path, {"p.bpf.c": src})
    assert [(f.code, f.program, f.span.start.row) for f in run_rules(run.project)] == [
        ("SECL101", "p", 2)
    ]


def test_an_unresolved_wrapper_use_is_a_note_not_a_finding(tmp_path):
    src = "#define PROBE(fn) SEC(FAMILY #fn)\nPROBE(do_unlinkat) int p(void *ctx) { return 0; }\n"
    run = run_of(tmp_path, {"p.bpf.c": src}, select=("ALL",))
    findings = run_rules(run.project)
    assert [f.code for f in findings] == ["SECL001"]
    assert "`FAMILY`" in findings[0].message


# -- #ifdef'd families and --define -----------------------------------------------------------

FAMILY = """\
#ifdef USE_MULTI
#define KSEC(fn) SEC("kprobe.multi/" #fn)
#else
#define KSEC(fn) SEC("kprobe/" #fn)
#endif
KSEC(do_sys_open) int p(void *ctx) { return 0; }
"""


def test_an_ifdef_family_without_a_choice_stays_unresolved(tmp_path):
    site = programs(tmp_path, {"p.bpf.c": FAMILY})["p"]
    assert site.section is None and site.unresolved_macro == "KSEC"
    assert "`USE_MULTI`" in (site.unresolved_reason or "")
    assert "--define" in (site.unresolved_reason or "")


@pytest.mark.parametrize(
    ("defines", "section", "configuration"),
    [
        (("USE_MULTI",), "kprobe.multi/do_sys_open", "defined(USE_MULTI)"),
        (("USE_MULTI=0",), "kprobe.multi/do_sys_open", "defined(USE_MULTI)"),  # #ifdef
    ],
)
def test_define_chooses_the_family_and_the_site_says_so(tmp_path, defines, section, configuration):
    site = programs(tmp_path, {"p.bpf.c": FAMILY}, defines=defines)["p"]
    assert (site.section, site.configuration) == (section, configuration)


def test_a_define_secl_has_never_seen(tmp_path):
    src = 'SEC(MY_FAMILY "do_x")\n' + body("p")
    assert section_of(tmp_path, src) is None
    assert section_of(tmp_path, src, defines=('MY_FAMILY="kretprobe/"',)) == "kretprobe/do_x"
    assert section_of(tmp_path, src, defines=("MY_FAMILY(x)=x",)) is None  # used without args
    fn = 'SEC(MY_FAMILY("do_x"))\n' + body("p")
    assert section_of(tmp_path, fn, defines=('MY_FAMILY(x)="fexit/" x',)) == "fexit/do_x"


def test_a_bad_define_is_reported_and_skipped(tmp_path):
    run = run_of(tmp_path, {"p.bpf.c": SLEEP, "prefix.h": PREFIX_H}, defines=("1BAD",))
    assert [str(p) for p in run.problems] == [
        "secl: defines: '1BAD' is not NAME, NAME=VALUE or NAME(ARGS)=BODY"
    ]


# -- what stays out -----------------------------------------------------------------------


def test_only_local_includes_are_read(tmp_path):
    # <...> needs the compile command's -I directories; a same-named local file is not used.
    src = '#include <prefix.h>\nSEC("kprobe/" SYSCALL_PFX "x")\n' + body("p")
    run = run_of(tmp_path, {"p.bpf.c": src, "prefix.h": PREFIX_H}, target_arch="x86_64")
    (site,) = [s for s in run.project.sites if s.program == "p"]
    assert site.section is None
    assert "<prefix.h>" in (site.unresolved_reason or "")


def test_a_header_in_a_subdirectory_and_one_from_the_parent(tmp_path):
    files = {
        "src/p.bpf.c": '#include "../include/pfx.h"\nSEC(PFX "x")\n' + body("p"),
        "include/pfx.h": '#include "inner/more.h"\n#define PFX MORE\n',
        "include/inner/more.h": '#define MORE "tp/"\n',
    }
    assert programs(tmp_path, files)["p"].section == "tp/x"


def test_an_include_cycle_ends(tmp_path):
    files = {
        "p.bpf.c": '#include "a.h"\nSEC(A_PFX "x")\n' + body("p"),
        "a.h": '#include "b.h"\n#define A_PFX "xdp"\n',
        "b.h": '#include "a.h"\n',
    }
    assert programs(tmp_path, files)["p"].section == "xdpx"


def test_no_compile_commands_means_no_libclang_import(tmp_path):
    write(tmp_path, {"p.bpf.c": SLEEP, "prefix.h": PREFIX_H})
    code = (
        "import sys\nfrom secl.api import load\nfrom secl.config import Config\n"
        f"run = load([{str(tmp_path)!r}], Config(target_arch='x86_64'))\n"
        "assert run.project.sites[0].section == 'kprobe/__x64_sys_nanosleep'\n"
        "print('clang.cindex' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert out.stdout.strip() == "False"


# -- the command line ---------------------------------------------------------------------


def secl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secl", *args], capture_output=True, text=True, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False,
    )  # fmt: skip


def test_cli_options(tmp_path):
    import json

    write(tmp_path, {"p.bpf.c": SLEEP + FAMILY.replace("int p(", "int q("), "prefix.h": PREFIX_H})
    out = secl("sections", "--output-format", "json", "--no-config", "--target-arch", "arm64",
               "--define", "USE_MULTI", "p.bpf.c", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = {e["program"]: e["section"] for e in json.loads(out.stdout) if not e["template"]}
    assert got == {"p": "kprobe/__arm64_sys_nanosleep", "q": "kprobe.multi/do_sys_open"}
    bad = secl("sections", "--target-arch", "pdp11", "p.bpf.c", cwd=tmp_path)
    assert bad.returncode == 2 and "--target-arch: unknown 'pdp11'" in bad.stderr


def test_configuration_file_keys(tmp_path):
    import json

    write(
        tmp_path,
        {
            "pyproject.toml": '[tool.secl]\ntarget-arch = "s390x"\ndefines = ["USE_MULTI"]\n',
            "p.bpf.c": SLEEP + FAMILY.replace("int p(", "int q("),
            "prefix.h": PREFIX_H,
        },
    )
    out = secl("sections", "--output-format", "json", "p.bpf.c", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    got = {e["program"]: e["section"] for e in json.loads(out.stdout) if not e["template"]}
    assert got == {"p": "kprobe/__s390x_sys_nanosleep", "q": "kprobe.multi/do_sys_open"}


def test_an_unknown_arch_from_a_configuration_file_is_reported(tmp_path):
    run = run_of(tmp_path, {"p.bpf.c": SLEEP, "prefix.h": PREFIX_H}, target_arch="pdp11")
    assert [(p.path, p.message.split(" (")[0]) for p in run.problems] == [
        ("target-arch", "unknown architecture 'pdp11'")
    ]
    assert programs(tmp_path, {}, target_arch="pdp11")["p"].section is None


# The directive scan as a `^` in MULTILINE mode writes it: the scan of secl.parse.macros
# finds a directive by the newline before it instead, and must find the same ones.
_REFERENCE_SCAN = re.compile(
    rb"/\*.*?(?:\*/|\Z)|//(?:[^\n\\]|\\(?:\r\n|.))*"
    rb"|\"(?:[^\"\\\n]|\\(?:\r\n|.))*\"|'(?:[^'\\\n]|\\(?:\r\n|.))*'"
    rb"|(?P<d>^[ \t]*\#[ \t]*(?P<w>[a-z_]*)(?:[^\n\\]|\\(?:\r\n|.))*)",
    re.S | re.M,
)


@pytest.mark.parametrize(
    "text",
    [
        b"#include <x.h>\n#define A 1\n",  # a directive at the start of the file
        b"int x;\n  #  if A\nint y;\n#endif",  # indented, and no newline at the end
        b"// comment \\\n#define CONTINUED_COMMENT 1\n#define AFTER 2\n",
        b"// comment \\\n\n#define AFTER_BLANK 1\n",
        b"/* a\n#define IN_COMMENT 1\n*/\n#define OUT 2\n",
        b"/* a */#define NOT_AT_LINE_START 1\n/* b */\n#define AT_LINE_START 2\n",
        b'char *s = "a \\\n#define IN_STRING";\n#define AFTER 3\n',
        b"#define LONG \\\n  x \\\n  y\n#undef LONG\n",
        b"#define CRLF 1\r\n#ifdef CRLF\r\n#endif\r\n",
        b"x = '#';\n'#define\n#define AFTER_BAD_CHAR 1\n",
        b'"unterminated\n#define AFTER_BAD_STRING 1\n',
        b"/* never closed\n#define HIDDEN 1\n",
        b"\n\n\n#\n#pragma once\n",
        b"a // x\\\n\\",
    ],
)
def test_directives_are_those_of_a_line_start_scan(text: bytes) -> None:
    expected = [
        macros.Directive(m.group("w").decode(), m.start(), m.end(), m.end("w"))
        for m in _REFERENCE_SCAN.finditer(text)
        if m.start("d") >= 0
    ]
    assert macros.directives(text) == expected
