"""scripts/gen_section_table.py on a small SEC_DEF table written for these tests."""

from __future__ import annotations

import importlib.util
import json
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_section_table", REPO / "scripts" / "gen_section_table.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()

# A made-up table in libbpf's notation: exact, "+" and "/" entries, flags joined with "|",
# flags written as 0 and SEC_NONE, optional attach functions and comments in between.
FIXTURE_C = """\
#define SEC_DEF(sec_pfx, ptype, atype, flags, ...) {  \\
	.sec = (char *)sec_pfx,  \\
}

static int attach_probe(const struct bpf_program *prog, long cookie, struct bpf_link **link);

static const struct bpf_sec_def section_defs[] = {
	SEC_DEF("alpha",		SOCKET_FILTER, 0, SEC_NONE),
	SEC_DEF("beta/one",	SK_SKB, BPF_SK_SKB_STREAM_PARSER, SEC_ATTACHABLE_OPT),
	SEC_DEF("gamma+",		KPROBE,	0, SEC_NONE, attach_probe),
	SEC_DEF("gamma.s+",	KPROBE,	0, SEC_SLEEPABLE, attach_probe), /* sleeps */
	// a line comment
	SEC_DEF("delta+",		TRACING, BPF_TRACE_FENTRY, SEC_ATTACH_BTF | SEC_SLEEPABLE, attach_x),
	SEC_DEF("eps/",		XDP, BPF_XDP_DEVMAP, 0),
	SEC_DEF("zeta",		XDP, BPF_XDP, SEC_XDP_FRAGS | SEC_USDT),
};

static void later(void) { SEC_DEF("not-in-table", XDP, 0, 0); }
"""

FIXTURE_HISTORY = """\
schema = "secl-section-history/1"
question_mark_since = "0.8.0"

[definitions]
"alpha" = { since = "0.0.3", min_kernel = "3.19" }
"beta/one" = { since = "0.5.0" }
"gamma+" = { since = "0.0.3", bare_since = "0.8.0", min_kernel = "4.1" }
"delta+" = { since = "1.8", min_kernel = "7.2", min_kernel_inferred = true }
"eps/" = { since = "0.1.0" }
"zeta" = { since = "0.7.0" }
"ghost" = { since = "0.1.0" }

[[proposal]]
name = "gamma.single+"
like = "gamma+"

[[removed]]
name = "old/"
match = "slash"
kind = "program"
since = "0.1.0"
removed_in = "1.0.0"
replacement = ["alpha"]

[[data_sections]]
name = ".maps"
match = "exact"
since = "0.0.4"
role = "maps"
"""


@pytest.fixture
def fixture_dir(tmp_path: Path) -> Path:
    (tmp_path / "libbpf.c").write_text(FIXTURE_C)
    (tmp_path / "libbpf_version.h").write_text(
        "#define LIBBPF_MAJOR_VERSION 9\n#define LIBBPF_MINOR_VERSION 4\n"
    )
    (tmp_path / "history.toml").write_text(FIXTURE_HISTORY)
    return tmp_path


def _run(directory: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict, str, str, str]:
    output = directory / "out" / "sections.json"
    code = gen.main(
        [
            str(directory / "libbpf.c"),
            "-o",
            str(output),
            "--history",
            str(directory / "history.toml"),
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    text = output.read_text()
    return json.loads(text), text, captured.out, captured.err


def test_parse_sec_defs_reads_table_only() -> None:
    raw = gen.parse_sec_defs(FIXTURE_C)
    assert [entry.name for entry in raw] == [
        "alpha",
        "beta/one",
        "gamma+",
        "gamma.s+",
        "delta+",
        "eps/",
        "zeta",
    ]
    assert raw[3].flags == ("SEC_SLEEPABLE",)
    assert raw[4].flags == ("SEC_ATTACH_BTF", "SEC_SLEEPABLE")
    assert raw[5].flags == ()
    assert raw[0].flags == ()
    assert raw[2].attach_fn == "attach_probe"
    assert raw[0].attach_fn is None


def test_parse_rejects_unknown_flag() -> None:
    source = (
        'static const struct bpf_sec_def section_defs[] = {\n\tSEC_DEF("a", XDP, 0, SEC_BOGUS),\n};'
    )
    with pytest.raises(gen.GeneratorError, match="SEC_BOGUS"):
        gen.parse_sec_defs(source)


def test_parse_needs_the_table() -> None:
    with pytest.raises(gen.GeneratorError):
        gen.parse_sec_defs("int main(void) { return 0; }")


def test_generated_entries(fixture_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document, _, out, err = _run(fixture_dir, capsys)
    entries = document["definitions"]
    assert document["count"] == 7
    assert document["libbpf_version"] == "9.4"
    assert document["question_mark_since"] == "0.8.0"
    assert [entry["index"] for entry in entries] == list(range(8))

    alpha, beta, gamma, gamma_s, delta, eps, zeta, single = entries
    assert (alpha["match"], alpha["base"], alpha["prog_type"]) == (
        "exact",
        "alpha",
        "BPF_PROG_TYPE_SOCKET_FILTER",
    )
    assert alpha["expected_attach_type"] is None
    assert alpha["since"] == "0.0.3" and alpha["min_kernel"] == "3.19"
    assert beta["flags"] == ["SEC_ATTACHABLE_OPT"]
    assert beta["flags_expanded"] == ["SEC_ATTACHABLE", "SEC_EXP_ATTACH_OPT"]
    assert (gamma["match"], gamma["base"], gamma["bare_since"]) == ("plus", "gamma", "0.8.0")
    assert gamma_s["sleepable"] is True and gamma_s["since"] is None  # no history given
    assert delta["attach_btf"] is True and delta["sleepable"] is True
    assert delta["min_kernel_inferred"] is True
    assert (eps["match"], eps["base"]) == ("slash", "eps")
    assert zeta["flags_expanded"] == ["SEC_USDT", "SEC_XDP_FRAGS"]
    assert single["name"] == "gamma.single+" and single["target"] == "upgrade"
    assert (single["base"], single["attach_fn"], single["prog_type"]) == (
        "gamma.single",
        "attach_probe",
        "BPF_PROG_TYPE_KPROBE",
    )
    assert single["since"] is None and single["bare_since"] is None
    assert all(entry["target"] is None for entry in entries[:7])

    assert document["removed"][0]["name"] == "old/"
    assert document["data_sections"][0]["name"] == ".maps"
    assert "7 SEC_DEF entries parsed" in out and "1 proposal entries" in out
    assert "'gamma.s+'" in err and "'ghost'" in err


def test_output_is_deterministic_and_line_per_entry(
    fixture_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, first, _, _ = _run(fixture_dir, capsys)
    _, second, _, _ = _run(fixture_dir, capsys)
    assert first == second
    lines = first.splitlines()
    entry_lines = [line for line in lines if '"prog_type"' in line]
    assert len(entry_lines) == 8
    for line in entry_lines:
        body = line.strip().rstrip(",")
        assert list(json.loads(body)) == sorted(json.loads(body))
    top_keys = [line.split('"')[1] for line in lines if line.startswith('  "')]
    assert top_keys == sorted(top_keys)


def test_missing_input_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gen.main([str(tmp_path / "nope.c"), "-o", str(tmp_path / "x.json")]) == 2
    assert "gen_section_table" in capsys.readouterr().err


def test_repository_table_matches_history() -> None:
    """The committed table and the committed history agree (no libbpf.c needed)."""
    table = json.loads((REPO / "rules" / "libbpf" / "sections.json").read_text())
    with (REPO / "scripts" / "section-history.toml").open("rb") as handle:
        history = tomllib.load(handle)
    libbpf_entries = [entry for entry in table["definitions"] if entry["target"] is None]
    assert table["count"] == len(libbpf_entries) == gen.EXPECTED_LINUX_7_2
    assert [entry["name"] for entry in libbpf_entries] == list(history["definitions"])
    for entry in libbpf_entries:
        assert entry["since"] == history["definitions"][entry["name"]]["since"]
    proposal = [entry["name"] for entry in table["definitions"] if entry["target"] == "upgrade"]
    assert proposal == [item["name"] for item in history["proposal"]]
    assert table["removed"] == history["removed"]
    assert table["data_sections"] == history["data_sections"]
