"""Properties of fixing, over generated and real sources (hypothesis).

For every source: fixing is idempotent, bytes outside the section-string literals are the same
before and after, no fix is refused (a refusal means a rule produced a broken fix), and after
`secl fix --in-place` a second check finds nothing that the same options would fix.

Generated sources mix CRLF, a BOM, non-UTF-8 bytes, `SEC` text inside comments and strings,
section prefixes in macros, and `#if` branches, with names that every kind of fix applies to
and a loader that makes some kprobe programs need `.single`. Real sources are the bundled
examples and (with SECL_LINUX_SELFTESTS) the kernel's BPF selftests with their loaders, under
the same transformations, with some section names garbled into fixable ones.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from secl.analysis.run import run_rules
from secl.api import load
from secl.cli import main
from secl.config import Config
from secl.findings import Edit
from secl.fix import apply_edits, plan_fixes, wanted
from secl.parse.bpf import extract_sites

from .test_fix import span

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# A C string literal as the lexer sees it: what a hole may turn into.
LITERAL = rb'"(?:[^"\\\r\n]|\\.)*"'

# Section names by what secl does with them (under the default target).
NAMES = [
    "xdp", "tc", "kprobe/do_sys_open", "kretprobe/do_exit", "tracepoint/syscalls/sys_enter_openat",
    "uprobe//bin/bash:readline", "fentry/do_exit", "kprobe.single/vfs_read", "?xdp",
    "??kprobe/foo", "??xdp",  # safe (SECL110)
    "kprobes/foo", "xdp/foo", "sk_skb1", "Kprobe/foo", "xdp_devmap",  # unsafe (SECL101/102/108)
    "uprobe/usr/lib/libc.so.6:malloc",  # unsafe (SECL106)
    "fentry/", "no_such_section",  # no fix
    "kprobe/do_unlinkat", "kprobe/vfs_open",  # SECL201 when the loader attaches with an offset
]  # fmt: skip
SAFE_FIXES = ["??kprobe/foo", "??xdp", "kprobe/do_unlinkat", "kprobe/vfs_open"]


@dataclass(frozen=True)
class Source:
    """A file as fixed text and holes: the section-string literals, the only bytes a fix may
    change."""

    parts: tuple[tuple[bool, bytes], ...]  # (is_hole, bytes)

    @property
    def data(self) -> bytes:
        return b"".join(text for _, text in self.parts)

    def fixed_elsewhere(self, after: bytes) -> bool:
        """True when `after` differs from the source only inside holes (each still one
        string literal)."""
        pattern = b"".join(LITERAL if hole else re.escape(text) for hole, text in self.parts)
        return re.fullmatch(pattern, after, re.S) is not None


def holes_of(data: bytes, spans: Sequence[tuple[int, int]]) -> Source:
    parts: list[tuple[bool, bytes]] = []
    at = 0
    for start, end in sorted(set(spans)):
        parts += [(False, data[at:start]), (True, data[start:end])]
        at = end
    parts.append((False, data[at:]))
    return Source(tuple(parts))


# -- generated sources ----------------------------------------------------------------------


KINDS = ("plain", "macro", "branch", "comment", "string", "latin1")


@dataclass(frozen=True)
class Item:
    """One piece of a generated BPF source."""

    kind: str  # one of KINDS
    name: str  # the section (comment/string: the text that looks like one)
    other: str  # the section of the `#else` branch
    ws: str  # trailing whitespace after the SEC line
    offset: bool  # the loader attaches the program with an offset (kprobe/ names)


def build(items: Sequence[Item], crlf: bool, bom: bool) -> tuple[Source, str]:
    """A BPF source made of `items`, and the text of its loader."""
    nl = b"\r\n" if crlf else b"\n"
    parts: list[tuple[bool, bytes]] = []

    def text(s: str | bytes) -> None:
        raw = s.encode() if isinstance(s, str) else s
        parts.append((False, raw.replace(b"\n", nl)))

    def hole(name: str) -> None:
        parts.append((True, b'"' + name.encode() + b'"'))

    if bom:
        parts.append((False, b"\xef\xbb\xbf"))
    text('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n')
    offsets: list[str] = []  # programs the loader attaches with an offset
    for i, item in enumerate(items):
        prog, name = f"prog_{i}", item.name
        body = f"{item.ws}\nint {prog}(void *ctx)\n{{\n\treturn 0;\n}}\n\n"
        if item.kind == "plain":
            text("SEC(")
            hole(name)
            text(")" + body)
        elif item.kind == "macro":
            # The prefix in a #define: a `.single` fix rewrites the #define.
            head, _, tail = name.partition("/")
            text(f"#define PFX_{i} ")
            hole(head + "/")
            text(f"\nSEC(PFX_{i} ")
            hole(tail or "x")
            text(")" + body)
        elif item.kind == "branch":
            text(f"#if defined(FEATURE_{i})\nSEC(")
            hole(name)
            text(")" + body + "#else\nSEC(")
            hole(item.other)
            text(f"){item.ws}\nint {prog}_alt(void *ctx)\n{{\n\treturn 0;\n}}\n#endif\n\n")
        elif item.kind == "comment":
            text(f'/* SEC("{name}") is not a site, nor // SEC("??x") */\n// SEC("kprobes/y")\n')
        elif item.kind == "string":
            text(f'static const char note_{i}[] = "SEC(\\"{name}\\")";\n\n')
        else:
            text(b"/* caf\xe9 \xff\xfe na\xefve */\n")
        if item.offset and item.kind in ("plain", "macro") and name.startswith("kprobe/"):
            offsets.append(prog)
    text('char LICENSE[] SEC("license") = "GPL";\n')
    attach = "".join(
        f'\tbpf_program__attach_kprobe_opts(skel->progs.{p}, "fn", &opts);\n' for p in offsets
    )
    loader = (
        '#include <bpf/libbpf.h>\n#include "probe.skel.h"\n\nint main(void)\n{\n'
        "\tstruct probe *skel;\n\tLIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 0x10);\n\n"
        "\tskel = probe__open_and_load();\n\tif (!skel)\n\t\treturn 1;\n"
        # auto-attach too: libbpf then parses every section's suffix
        f"\tprobe__attach(skel);\n{attach}\treturn 0;\n}}\n"
    )
    return Source(tuple(parts)), loader


ITEMS = st.builds(
    Item,
    kind=st.sampled_from(KINDS),
    # Half of the names from the ones with a safe fix, so that most sources change.
    name=st.sampled_from(NAMES) | st.sampled_from(SAFE_FIXES),
    other=st.sampled_from(NAMES),
    ws=st.sampled_from(["", " ", "\t", " \t "]),
    offset=st.booleans(),
)


@st.composite
def generated(draw) -> tuple[Source, str, bool]:
    """A BPF source, its loader's text, and whether the source uses CRLF."""
    crlf = draw(st.booleans())
    items = draw(st.lists(ITEMS, max_size=8))
    # One program with a safe fix somewhere, so that nearly every source changes.
    fixable = Item("plain", draw(st.sampled_from(SAFE_FIXES)), "xdp", "", True)
    items.insert(draw(st.integers(0, len(items))), fixable)
    source, loader = build(items, crlf, draw(st.booleans()))
    return source, loader, crlf


def check_properties(
    files: dict[str, Source | bytes], unsafe: bool, target: str = "upgrade"
) -> int:
    """The three properties, for a project made of `files` (a Source is checked for bytes
    outside its holes; plain bytes must not change at all). Returns how many fixes applied."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / ".git").mkdir()  # the project root
        for name, content in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(content.data if isinstance(content, Source) else content)
        config = Config(root=str(root), target_libbpf=target)
        run = load([str(root)], config)
        plan = plan_fixes(run.project, run_rules(run.project), unsafe=unsafe)
        assert plan.refusals == []
        for name, content in files.items():
            after = plan.project.files[str(root / name)]
            if isinstance(content, Source):
                assert content.fixed_elsewhere(after), name
            else:
                assert after == content, name

        # Idempotent: fixing the fixed project changes nothing more.
        again = plan_fixes(plan.project, run_rules(plan.project), unsafe=unsafe)
        assert again.files == {} and again.refusals == []

        # In place, then a fresh run: nothing those options would fix is left.
        args = ["fix", "--in-place", "--target-libbpf", target, "--output-format", "concise"]
        args.append(str(root))
        main([*args, "--unsafe-fixes"] if unsafe else args)
        for name in files:
            assert (root / name).read_bytes() == plan.project.files[str(root / name)]
        rerun = load([str(root)], config)
        assert [f for f in run_rules(rerun.project) if wanted(f, unsafe)] == []
        return plan.applied


@SETTINGS
@given(generated(), st.booleans(), st.sampled_from(["upgrade", "1.7", "1.0"]))
def test_generated_sources(source: tuple[Source, str, bool], unsafe: bool, target: str) -> None:
    # Under a numbered target the `.single` rewrite is unsafe, and a `.single` name is then a
    # finding of its own (SECL109): no fix may turn it back.
    bpf, loader, _ = source
    files: dict[str, Source | bytes] = {"probe.bpf.c": bpf, "probe.c": loader.encode()}
    applied = check_properties(files, unsafe, target)
    event("fixes applied" if applied else "nothing to fix")


@SETTINGS
@given(generated())
def test_generated_sources_fix_what_they_should(source: tuple[Source, str, bool]) -> None:
    # A guard on the generator: the sources do get fixed, and every safe fix is applied.
    bpf, loader, crlf = source
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / ".git").mkdir()
        (root / "probe.bpf.c").write_bytes(bpf.data)
        (root / "probe.c").write_text(loader)
        run = load([str(root)], Config(root=str(root)))
        findings = run_rules(run.project)
        plan = plan_fixes(run.project, findings, unsafe=True)
        if any(wanted(f, True) for f in findings):
            assert plan.files, "fixable findings but nothing changed"
            after = plan.project.files[str(root / "probe.bpf.c")]
            assert after.count(b"\r\n") == bpf.data.count(b"\r\n") and crlf == (b"\r\n" in after)


@pytest.mark.parametrize("crlf", [False, True])
def test_the_generator_reaches_every_kind_of_fix(tmp_path: Path, crlf: bool) -> None:
    # The properties are only as good as the fixes in the generated sources: one source with
    # every name, every way, must have them all.
    items = [Item(kind, name, name, "", True) for kind in ("plain", "macro") for name in NAMES]
    source, loader = build(items, crlf=crlf, bom=True)
    (tmp_path / ".git").mkdir()
    (tmp_path / "probe.bpf.c").write_bytes(source.data)
    (tmp_path / "probe.c").write_text(loader)
    run = load([str(tmp_path)], Config(root=str(tmp_path)))
    fixes = {(f.code, f.fix.applicability if f.fix else None) for f in run_rules(run.project)}
    assert {
        ("SECL110", "safe"), ("SECL201", "safe"), ("SECL101", "unsafe"), ("SECL102", "unsafe"),
        ("SECL106", "unsafe"), ("SECL108", "unsafe"), ("SECL104", None),
    } <= fixes  # fmt: skip
    macro = [f for f in run_rules(run.project) if f.code == "SECL201" and f.fix]
    assert any(b"#define" in source.data[e.span.start_byte - 20 : e.span.start_byte]
               for f in macro for e in f.fix.edits)  # fmt: skip


# -- the edit engine on arbitrary bytes -----------------------------------------------------


@st.composite
def bytes_and_edits(draw) -> tuple[bytes, list[Edit]]:
    data = draw(st.binary(max_size=200))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12, unique=True)))
    edits = []
    for start, end in zip(cuts[::2], cuts[1::2], strict=False):
        edits.append(Edit("f.c", span(start, end), draw(st.text('abc"\\\n\r\t', max_size=6))))
    return data, draw(st.permutations(edits))


@settings(max_examples=300, deadline=None)
@given(bytes_and_edits())
def test_edits_leave_every_other_byte_alone(case: tuple[bytes, list[Edit]]) -> None:
    data, edits = case
    try:
        out = apply_edits(data, edits)
    except ValueError:
        # Only zero-width edits at one offset can clash here (the cuts are unique).
        return
    pattern, at = b"", 0
    for e in sorted(edits, key=lambda e: e.span.start_byte):
        pattern += re.escape(data[at : e.span.start_byte]) + re.escape(e.content.encode())
        at = e.span.end_byte
    pattern += re.escape(data[at:])
    assert re.fullmatch(pattern, out, re.S)


# -- real sources ---------------------------------------------------------------------------


def _transform(data: bytes, crlf: bool, bom: bool) -> bytes:
    if crlf:
        data = re.sub(rb"\r?\n", b"\r\n", data)
    return (b"\xef\xbb\xbf" if bom and not data.startswith(b"\xef\xbb\xbf") else b"") + data


def _garbled(path: str, data: bytes, picks: Sequence[int]) -> tuple[bytes, Source]:
    """`data` with some single-literal section names turned into fixable ones (a doubled `?`,
    a capital letter), and the Source whose holes are every section literal and every
    string in a #define (where a `.single` prefix may live)."""
    sites = [
        s for s in extract_sites(path, data)
        if len(s.pieces) == 1 and s.pieces[0].kind == "literal" and s.pieces[0].text.startswith('"')
        and "\\" not in s.pieces[0].text and not s.template and s.kind == "program"
    ]  # fmt: skip
    edits = []
    for n, i in enumerate(picks):
        if not sites:
            break
        piece = sites[i % len(sites)].pieces[0]
        value = piece.text[1:-1]
        new = "??" + value if n % 2 == 0 else value[:1].upper() + value[1:]
        edits.append(Edit(path, piece.span, '"' + new + '"'))
    with contextlib.suppress(ValueError):  # the same site picked twice: keep the original
        data = apply_edits(data, edits)
    spans = [
        (p.span.start_byte, p.span.end_byte)
        for s in extract_sites(path, data)
        for p in s.pieces
        if p.kind == "literal" and p.text.startswith('"')
    ]
    for m in re.finditer(rb"^[ \t]*#[ \t]*define[^\n]*?(" + LITERAL + rb")", data, re.M):
        spans.append(m.span(1))
    return data, holes_of(data, spans)


def _real_cases() -> list[tuple[str, dict[str, Path]]]:
    """(label, {file name: path}) for the examples and, when available, each selftests
    program that has a loader under prog_tests/ (found by its skeleton name)."""
    cases = [("examples", {p.name: p for p in sorted((ROOT / "examples").iterdir())})]
    selftests = os.environ.get("SECL_LINUX_SELFTESTS")
    if selftests and os.path.isdir(os.path.join(selftests, "progs")):
        progs, tests = Path(selftests, "progs"), Path(selftests, "prog_tests")
        loaders = {p: p.read_bytes() for p in sorted(tests.glob("*.c"))}
        for prog in sorted(progs.glob("*.c")):
            data = prog.read_bytes()
            if b"SEC(" not in data:
                continue
            opener = re.sub(rb"\W", b"_", prog.stem.encode()) + b"__open"
            mine = [p for p, text in loaders.items() if opener in text][:2]
            files = {f"progs/{prog.name}": prog, **{f"prog_tests/{p.name}": p for p in mine}}
            cases.append((prog.name, files))
    return cases


REAL = _real_cases()


def _files_of(paths: dict[str, Path], crlf: bool, bom: bool, picks: Sequence[int]):
    files: dict[str, Source | bytes] = {}
    for name, path in paths.items():
        data = _transform(path.read_bytes(), crlf, bom)
        if name.endswith(".bpf.c") or path.parent.name == "progs":
            files[name] = _garbled(name, data, picks)[1]
        else:
            files[name] = data
    return files


@SETTINGS
@given(
    st.sampled_from(REAL),
    st.booleans(),
    st.booleans(),
    st.lists(st.integers(0, 500), min_size=1, max_size=3),
    st.booleans(),
)
def test_real_sources(case, crlf: bool, bom: bool, picks: list[int], unsafe: bool) -> None:
    applied = check_properties(_files_of(case[1], crlf, bom, picks), unsafe)
    event("fixes applied" if applied else "nothing to fix")  # --hypothesis-show-statistics


# The selftests programs the auto-upgrade breaks (their fixes are `.single`), with loaders.
UPGRADE_BROKEN = (
    "get_func_ip_test.c", "missed_kprobe.c", "test_attach_probe_manual.c", "test_fill_link_info.c",
)  # fmt: skip


@pytest.mark.selftests
@pytest.mark.parametrize("label", UPGRADE_BROKEN)
@pytest.mark.parametrize(("crlf", "bom"), [(False, False), (True, True)])
def test_selftests_that_need_single(label: str, crlf: bool, bom: bool) -> None:
    cases = dict(REAL)
    if label not in cases:
        pytest.skip("SECL_LINUX_SELFTESTS is not set to a tools/testing/selftests/bpf tree")
    assert check_properties(_files_of(cases[label], crlf, bom, ()), unsafe=False) >= 1


@pytest.mark.selftests
def test_real_sources_include_the_selftests() -> None:
    if not os.environ.get("SECL_LINUX_SELFTESTS"):
        pytest.skip("SECL_LINUX_SELFTESTS is not set to a tools/testing/selftests/bpf tree")
    labels = {label for label, _ in REAL}
    # The programs the auto-upgrade breaks (SECL2xx, fixed with `.single`) are among them.
    assert {"missed_kprobe.c", "test_attach_probe_manual.c", "test_fill_link_info.c"} <= labels
