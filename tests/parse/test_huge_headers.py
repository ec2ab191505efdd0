"""A huge header with no section call and no function body (a vmlinux.h that bpftool dumped)
is neither parsed with tree-sitter nor scanned for directives the slow way, and that changes
nothing: its facts are the ones a parse finds, its directives the ones the full scan finds."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import ClassVar

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
    ("extra", "plain"),
    [
        (b"", True),
        (b"#define A 1\n  #  if A\n#endif\n", True),
        (b"/* #define HIDDEN 1 */\n#define SHOWN 2\n", True),  # a comment: the full scan
        # a continued literal
        (b'char *s = "x \\\n#define IN_STRING";\n#define AFTER 3\n', False),
        (b"#define X 1 /* opened on the line of a directive\n#define SEEN 2 */\n", True),
        (b"// a /* in a line comment\n#define D 4\n/* unclosed\n#define E 5\n", True),
        (b"  /* a */ # define F /* b */ 6\n//\n#endif", True),
        # quotes in comments only (kernel-doc: "don't"): no literal, the fast path
        (b"/**\n * @X: don't \"quote\" me\n */\n#define Q 1\n// it's\n#define R 2\n", True),
        (b'/* it\'s */ /* a "b" */\n#define S 3\n', True),
        # a quote in code, on a directive's line, or in a comment opened on one: the scan
        (b"char c = 'x';\n#define T 4\n", False),
        (b"#error don't\n#define U 5\n", False),
        (b"#define V 6 /* it's\n * here */\n", False),
        (b'/* a */ int x; char *s = "/* not a comment */";\n#define W 7\n', False),
    ],
)
def test_directives_are_those_of_the_full_scan(
    header: bytes, monkeypatch, extra: bytes, plain: bool
) -> None:
    data = header + extra
    assert macros._plain(data) == plain
    fast = macros.directives(data)
    monkeypatch.setattr(macros, "_plain", lambda data: False)
    assert fast == macros.directives(data)
    if b"HIDDEN" in extra:
        assert b"HIDDEN" not in b"".join(data[d.start : d.end] for d in fast)


# -- end to end: a huge header in a project -------------------------------------------------

LOADER = (
    '#include "probe.skel.h"\nint main(void)\n{\n\tstruct probe *s = probe__open_and_load();\n'
    "\tLIBBPF_OPTS(bpf_kprobe_opts, o, .offset = 8);\n"
    '\tbpf_program__attach_kprobe_opts(s->progs.handle, "do_sys_open", &o);\n\treturn 0;\n}\n'
)


def _project(root: Path, header: bytes, probe: str) -> Path:
    (root / ".secl.toml").write_text("")
    (root / "big.h").write_bytes(header)
    (root / "probe.bpf.c").write_text('#include "big.h"\n' + probe)
    (root / "main.c").write_text(LOADER)
    return root


def _inventory(root: Path, monkeypatch) -> list:
    from secl.api import inventory
    from secl.config import Config

    monkeypatch.chdir(root)
    return inventory(["."], Config(root=str(root), cache=False)).entries


def _sites(root: Path, monkeypatch) -> dict[str, tuple]:
    return {
        e.site.program: (e.site.path, e.site.section, e.site.unresolved_macro)
        for e in _inventory(root, monkeypatch)
        if e.site.program
    }


@pytest.mark.parametrize("huge", [False, True], ids=["small", "huge"])
def test_a_huge_header_holding_a_macro_a_site_needs_is_read(header, huge, tmp_path, monkeypatch):
    base = header if huge else b""
    probe = 'SEC(PFX "do_sys_open")\nint handle(void *ctx) { return 0; }\n'
    _project(tmp_path, base + b'#define PFX "kprobe/"\n', probe)
    assert _sites(tmp_path, monkeypatch) == {"handle": ("probe.bpf.c", "kprobe/do_sys_open", None)}
    (tmp_path / "big.h").write_bytes(base)  # without the #define: unresolved, naming PFX
    assert _sites(tmp_path, monkeypatch) == {"handle": ("probe.bpf.c", None, "PFX")}


@pytest.mark.parametrize("huge", [False, True], ids=["small", "huge"])
def test_a_huge_header_holding_sites_has_them(header, huge, tmp_path, monkeypatch):
    base = header if huge else b""
    text = (
        b'SEC("kprobe/do_in_header")\nint in_header(void *ctx) { return 0; }\n'
        b'#define KPROBE(fn) SEC("kprobe/" #fn) int fn(void *ctx)\n'
    )
    _project(tmp_path, base + text, "KPROBE(do_unlinkat) { return 0; }\n")
    assert _sites(tmp_path, monkeypatch) == {
        "in_header": ("big.h", "kprobe/do_in_header", None),
        "do_unlinkat": ("probe.bpf.c", "kprobe/do_unlinkat", None),
    }


@pytest.mark.parametrize(
    ("text", "opens"),
    [
        (b"struct probe *probe__open(void);\n", False),  # a declaration: no loader code
        (b"static inline struct probe *probe__open(void)\n{\n\treturn 0;\n}\n", True),
    ],
    ids=["declaration", "body"],
)
def test_a_huge_header_without_a_function_body_opens_nothing(
    header, text, opens, tmp_path, monkeypatch
):
    # A huge header without `) {` holds no loader code (secl.parse.filefacts.has_body): no
    # loader facts, and it is no loader of the skeleton it names. With a body it is one.
    _project(tmp_path, header + text, 'SEC("kprobe/do_x")\nint handle(void *ctx) { return 0; }\n')
    (entry,) = [e for e in _inventory(tmp_path, monkeypatch) if e.site.program == "handle"]
    paths = {e.path for e in entry.loader.evidence}
    assert paths == ({"big.h", "main.c"} if opens else {"main.c"})


class _Counted(bytes):
    """A file's bytes that note every search of them from their start (a whole-file scan):
    `in`, find() and count() of more than one byte (one byte is a memchr)."""

    scans: ClassVar[list[bytes]] = []

    def __contains__(self, needle: object) -> bool:
        if isinstance(needle, bytes) and len(needle) > 1:
            _Counted.scans.append(needle)
        return bytes.__contains__(self, needle)  # type: ignore[operator]

    def find(self, needle, *args):  # type: ignore[override]
        if len(needle) > 1 and not args[:1]:
            _Counted.scans.append(needle)
        return bytes.find(self, needle, *args)

    def count(self, needle, *args):  # type: ignore[override]
        if len(needle) > 1 and not args[:1]:
            _Counted.scans.append(needle)
        return bytes.count(self, needle, *args)


class _Pattern:
    """A compiled pattern that notes search(), finditer(), findall() and sub() from the start
    of a _Counted file (match() tries one place)."""

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self._pattern = pattern

    def __getattr__(self, name: str):
        found = getattr(self._pattern, name)
        if name not in ("search", "finditer", "findall", "sub"):
            return found

        def scan(*args, **kwargs):
            text = args[1] if name == "sub" else args[0]
            start = args[1] if name != "sub" and len(args) > 1 else 0
            if isinstance(text, _Counted) and not start:
                _Counted.scans.append(b"re:" + self._pattern.pattern)
            return found(*args, **kwargs)

        return scan


def test_a_huge_header_is_searched_once_per_question(header, tmp_path, monkeypatch):
    # `secl check` of a project with a huge header: each search of all of it runs once at
    # most (secl.parse.large.once), and only those the marks cannot answer run at all.
    import secl.api
    from secl.config import Config
    from secl.files import SourceFile, read

    probe = 'SEC(PFX "do_sys_open")\nint handle(void *ctx) { return 0; }\n'
    _project(tmp_path, header + b'#define PFX "kprobe/"\n// secl: ignore\n', probe)
    monkeypatch.chdir(tmp_path)
    config = Config(root=str(tmp_path), cache=False)
    secl.api.check(["."], config)  # the modules a run needs, imported
    for module in [m for n, m in sys.modules.items() if n.startswith("secl.")]:
        for name, value in list(vars(module).items()):
            if isinstance(value, re.Pattern) and isinstance(value.pattern, bytes):
                monkeypatch.setattr(module, name, _Pattern(value))

    def counting_read(path: str, *args, **kwargs):
        source = read(path, *args, **kwargs)
        if isinstance(source, SourceFile) and len(source.data) >= filefacts.HUGE:
            return SourceFile(source.path, _Counted(source.data), source.identity)
        return source

    monkeypatch.setattr(secl.api, "read", counting_read)
    monkeypatch.setattr(_Counted, "scans", [])
    found = secl.api.check(["."], config)
    assert [f.code for f in found.findings] == ["SECL201"]  # the macro was read
    scans = _Counted.scans
    assert len(scans) == len(set(scans)), scans  # each question once
    # The section words and the function body; the first loader hints hit at once.
    allowed = {b"re:SEC", b"re:section", b"re:" + filefacts._BODY.pattern}
    allowed |= {b"bpf_", b"BPF_PERF_EVENT", b"BPF_LINK_TYPE_PERF_EVENT"}
    assert set(scans) <= allowed, scans
