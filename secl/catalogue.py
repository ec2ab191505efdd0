"""The rule catalogue: one TOML file per rule under rules/, shipped inside the wheel."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache

from secl.families import FAMILIES

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from secl.findings import Severity


@dataclass(frozen=True, slots=True)
class Example:
    """A bad or good example of a rule: the files, and for a bad one the fixed files."""

    kind: str  # "bad" or "good"
    files: dict[str, str]
    fixed: dict[str, str]
    target_libbpf: str | None = None
    # Compiled objects of the example: object name -> the C source it is compiled from
    # (with clang, elsewhere: the object's line info names a file of that name).
    objects: dict[str, str] = field(default_factory=dict)
    # [tool.secl] keys of the example (paths relative to its files).
    config: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of the catalogue (rules/SECLnnn.toml)."""

    code: str
    name: str
    severity: Severity
    summary: str
    explanation: str
    fix: str | None
    examples: tuple[Example, ...]

    @property
    def default_selected(self) -> bool:
        return FAMILIES[self.code[:5]][2]

    @property
    def url(self) -> str:
        return f"secl rule {self.code}"


def _rules_dir() -> str:
    from secl.resources import rules_dir

    return rules_dir()


@cache
def load_catalogue() -> dict[str, Rule]:
    import tomllib  # only when the catalogue is needed: it costs start-up time

    rules: dict[str, Rule] = {}
    directory = _rules_dir()
    names = sorted(n for n in os.listdir(directory) if n.startswith("SECL") and n.endswith(".toml"))
    for name in names:
        path = os.path.join(directory, name)
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
        examples = tuple(
            Example(
                kind=e["kind"],
                files=dict(e.get("files", {})),
                fixed=dict(e.get("fixed", {})),
                target_libbpf=e.get("target-libbpf"),
                objects=dict(e.get("objects", {})),
                config=dict(e.get("config", {})),
            )
            for e in raw.get("examples", [])
        )
        rule = Rule(
            code=raw["code"],
            name=raw["name"],
            severity=raw["severity"],
            summary=raw["summary"],
            explanation=raw["explanation"].strip(),
            fix=raw.get("fix"),
            examples=examples,
        )
        if rule.code != name.removesuffix(".toml"):
            raise ValueError(f"{path}: code {rule.code} does not match the file name")
        rules[rule.code] = rule
    return rules


def rule(code: str) -> Rule:
    return load_catalogue()[code]
