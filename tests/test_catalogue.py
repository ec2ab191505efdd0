"""Every catalogue example runs; every rule has examples and tests (the meta-test)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from secl.catalogue import load_catalogue
from tests.catalogue_harness import (
    apply_fixes,
    compare,
    compare_objects,
    markers,
    run_example,
)

CATALOGUE = load_catalogue()
EXAMPLES = [
    pytest.param(code, i, id=f"{code}-{ex.kind}-{i}")
    for code, rule in CATALOGUE.items()
    for i, ex in enumerate(rule.examples)
]
TESTS_DIR = Path(__file__).parent


@pytest.mark.parametrize(("code", "index"), EXAMPLES)
def test_example(code: str, index: int, tmp_path: Path) -> None:
    example = CATALOGUE[code].examples[index]
    findings = run_example(
        tmp_path, example.files, example.target_libbpf,
        objects=example.objects, config=example.config,
    )  # fmt: skip
    errors = compare(code, example.files, findings)
    errors += compare_objects(code, example.objects, findings)
    assert not errors, "\n".join(errors)
    marked = any(
        c == code
        for text in [*example.files.values(), *example.objects.values()]
        for _, c in markers(text)[example.kind != "bad"]
    )
    assert marked, (
        f"{code} example {index} has no `{'ruleid' if example.kind == 'bad' else 'ok'}: {code}` marker"
    )
    if example.fixed:
        fixed = apply_fixes(example.files, findings, code)
        for name, expected in example.fixed.items():
            assert fixed[name] == expected.lstrip("\n"), f"fix of {name} differs"


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_rule_has_examples_and_tests(code: str) -> None:
    rule = CATALOGUE[code]
    kinds = {e.kind for e in rule.examples}
    assert "bad" in kinds, f"{code} has no bad example"
    assert "good" in kinds, f"{code} has no good example"
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name), f"{code}: name is not kebab-case"
    assert not rule.summary.endswith("."), f"{code}: summary ends with a period"
    # Beyond its catalogue examples, a rule is named in at least one test module of its own.
    mentioned = any(
        code in path.read_text(encoding="utf-8")
        for path in TESTS_DIR.rglob("test_*.py")
        if path.name != "test_catalogue.py"
    )
    assert mentioned, f"{code} has no test outside its catalogue examples"


def test_every_fixable_bad_example_shows_the_fix() -> None:
    for code, rule in CATALOGUE.items():
        for example in rule.examples:
            if example.fixed:
                assert example.kind == "bad", f"{code}: a good example has a `fixed` text"
