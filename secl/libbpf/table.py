"""libbpf's section table and a matcher that behaves like libbpf's.

The table is `rules/libbpf/sections.json`, generated from libbpf.c by
scripts/gen_section_table.py. Matching follows libbpf >= 1.0 (strict names):

* one leading `?` is removed and only turns autoload off (libbpf.c: bpf_object__init_prog());
* `X+` matches `X` and names starting with `X/`; `X/` matches names starting with `X/`;
  every other entry is an exact, case-sensitive comparison (libbpf.c: sec_def_matches());
* the first entry in table order that matches wins (libbpf.c: find_sec_def()).

For a numbered target the table is cut down to the entries that release had, and spellings it
did not accept yet (bare `kprobe` before 0.8, `?` before 0.8) do not match. Older releases
also prefix-matched exact entries in non-strict mode (before 1.0); that is not modelled:
`removed_name()` covers the names 1.0 dropped.

Program sections versus data: libbpf only turns executable ELF sections into programs and
reads a fixed set of names as data (libbpf.c: bpf_object__elf_collect()). `is_data_section()`
is exactly that set. `is_non_program_section()` adds every other name starting with `.`
(`.text`, `.init.data`, `.addr_space.2`, ...): compilers and linkers own that namespace, and
a function placed there is either a sub-program (`.text`) or not a BPF program the author
meant libbpf to type, so a linter should not call such a name an unknown program section.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache, total_ordering

from secl.resources import rules_dir

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any, Literal

    MatchKind = Literal["plus", "slash", "exact"]
    DataMatchKind = Literal["exact", "prefix"]
    RemovedKind = Literal["program", "data"]

UPGRADE = "upgrade"


@dataclass(frozen=True, slots=True, order=True)
class Version:
    """A libbpf release number, compared numerically."""

    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse "1", "1.7", "1.3.0" or "v1.7"; raise ValueError otherwise."""
        cleaned = text.strip().removeprefix("v")
        parts = cleaned.split(".")
        if not 1 <= len(parts) <= 3 or not all(part.isdigit() for part in parts):
            raise ValueError(f"not a libbpf version: {text!r}")
        numbers = [int(part) for part in parts] + [0] * (3 - len(parts))
        return cls(numbers[0], numbers[1], numbers[2])

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def _version(value: str | None) -> Version | None:
    return None if value is None else Version.parse(value)


@total_ordering
@dataclass(frozen=True, slots=True)
class Target:
    """The libbpf secl checks against: a release, or "upgrade".

    "upgrade" is the newest table plus the auto-upgrade proposal and its `.single` sections;
    it orders after every release.
    """

    version: Version | None  # None: the "upgrade" target

    @classmethod
    def parse(cls, text: str) -> Target:
        """Parse "upgrade" or a release such as "1.7", "0.8", "1.3.0"; raise ValueError."""
        if text.strip().lower() == UPGRADE:
            return cls(None)
        return cls(Version.parse(text))

    @classmethod
    def upgrade(cls) -> Target:
        return cls(None)

    @property
    def is_upgrade(self) -> bool:
        return self.version is None

    def allows_version(self, required: Version | None) -> bool:
        """Whether this target has what `required` asks for (None: only the proposal has it)."""
        if self.version is None:
            return True
        return required is not None and required <= self.version

    def allows(self, definition: SectionDef) -> bool:
        """Whether the definition is in this target's table."""
        if definition.target == UPGRADE:
            return self.version is None
        return self.allows_version(definition.since)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Target):
            return NotImplemented
        if self.version is None:
            return False
        return other.version is None or self.version < other.version

    def __str__(self) -> str:
        return UPGRADE if self.version is None else str(self.version)


@dataclass(frozen=True, slots=True)
class SectionDef:
    """One entry of libbpf's section_defs[] (or a proposed `.single` entry)."""

    index: int  # position in table order
    name: str  # the table string, e.g. "kprobe+", "xdp", "tc/ingress"
    match: MatchKind
    base: str  # name without the trailing "+" or "/"
    prog_type: str  # BPF_PROG_TYPE_*
    expected_attach_type: str | None  # BPF_* or None
    flags: tuple[str, ...]  # as written in libbpf.c, e.g. ("SEC_ATTACH_BTF", "SEC_SLEEPABLE")
    flags_expanded: tuple[str, ...]  # single bits, SEC_ATTACHABLE_OPT split up
    sleepable: bool
    attach_btf: bool
    attach_fn: str | None  # libbpf's auto-attach function, e.g. "attach_kprobe"
    since: Version | None  # first release with this entry; None for proposal entries
    bare_since: Version | None  # first release accepting the name without "/..."
    min_kernel: str | None
    min_kernel_inferred: bool
    target: str | None  # "upgrade" for entries that exist only in the proposal

    @property
    def proposal_only(self) -> bool:
        return self.target == UPGRADE

    def matches(self, section: str) -> bool:
        """libbpf.c: sec_def_matches(); `section` must already have its `?` removed."""
        if self.match == "slash":
            return section.startswith(self.name)
        if self.match == "plus":
            if not section.startswith(self.base):
                return False
            rest = section[len(self.base) :]
            return rest == "" or rest.startswith("/")
        return section == self.name

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SectionDef:
        return cls(
            index=raw["index"],
            name=raw["name"],
            match=raw["match"],
            base=raw["base"],
            prog_type=raw["prog_type"],
            expected_attach_type=raw["expected_attach_type"],
            flags=tuple(raw["flags"]),
            flags_expanded=tuple(raw["flags_expanded"]),
            sleepable=raw["sleepable"],
            attach_btf=raw["attach_btf"],
            attach_fn=raw["attach_fn"],
            since=_version(raw["since"]),
            bare_since=_version(raw["bare_since"]),
            min_kernel=raw["min_kernel"],
            min_kernel_inferred=raw["min_kernel_inferred"],
            target=raw["target"],
        )


@dataclass(frozen=True, slots=True)
class RemovedSection:
    """A section name older libbpf accepted and libbpf >= removed_in rejects."""

    name: str  # old table string: "xdp_devmap/", "maps", ...
    match: Literal["exact", "slash"]
    kind: RemovedKind
    prog_type: str | None
    expected_attach_type: str | None
    since: Version
    removed_in: Version
    replacement: tuple[str, ...]  # best first

    def matches(self, section: str) -> bool:
        if self.match == "slash":
            return section.startswith(self.name)
        return section == self.name

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RemovedSection:
        return cls(
            name=raw["name"],
            match=raw["match"],
            kind=raw["kind"],
            prog_type=raw.get("prog_type"),
            expected_attach_type=raw.get("expected_attach_type"),
            since=Version.parse(raw["since"]),
            removed_in=Version.parse(raw["removed_in"]),
            replacement=tuple(raw["replacement"]),
        )


@dataclass(frozen=True, slots=True)
class DataSection:
    """An ELF section libbpf reads as data (maps, globals, license, ...)."""

    name: str  # exact name, or the prefix for "prefix" entries (".data.")
    match: DataMatchKind
    since: Version
    role: str

    def matches(self, section: str) -> bool:
        if self.match == "prefix":
            return section.startswith(self.name)
        return section == self.name

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DataSection:
        return cls(
            name=raw["name"],
            match=raw["match"],
            since=Version.parse(raw["since"]),
            role=raw["role"],
        )


@dataclass(frozen=True, slots=True)
class SectionTable:
    """libbpf's section table: program entries in match order, removed names, data sections."""

    definitions: tuple[SectionDef, ...]
    removed: tuple[RemovedSection, ...]
    data_sections: tuple[DataSection, ...]
    libbpf_version: str | None
    question_mark_since: Version

    def get(self, name: str) -> SectionDef | None:
        """The entry whose table string is `name` ("kprobe+", "xdp"), if any."""
        for definition in self.definitions:
            if definition.name == name:
                return definition
        return None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SectionTable:
        return cls(
            definitions=tuple(SectionDef.from_json(item) for item in raw["definitions"]),
            removed=tuple(RemovedSection.from_json(item) for item in raw["removed"]),
            data_sections=tuple(DataSection.from_json(item) for item in raw["data_sections"]),
            libbpf_version=raw.get("libbpf_version"),
            question_mark_since=Version.parse(raw["question_mark_since"]),
        )


@cache
def load_table(path: str | None = None) -> SectionTable:
    """The generated table; by default rules/libbpf/sections.json. Cached, immutable."""
    source = path if path is not None else os.path.join(rules_dir(), "libbpf", "sections.json")
    with open(source, encoding="utf-8") as handle:
        return SectionTable.from_json(json.load(handle))


@dataclass(frozen=True, slots=True)
class SectionMatch:
    """A section name and the table entry libbpf gives it."""

    written: str  # as given, possibly starting with "?"
    section: str  # one leading "?" removed: what libbpf matches and parses
    autoload: bool  # False when the name started with "?"
    definition: SectionDef
    suffix: str | None  # text after "<base>/" for "+" and "/" entries; None when bare/exact
    requires: Version | None  # oldest release accepting this spelling; None: proposal only


def strip_question_mark(name: str) -> tuple[str, bool]:
    """(name without one leading "?", autoload). libbpf.c: bpf_object__init_prog()."""
    if name.startswith("?"):
        return name[1:], False
    return name, True


def _build_match(
    written: str, section: str, autoload: bool, definition: SectionDef, table: SectionTable
) -> SectionMatch:
    suffix: str | None = None
    if definition.match == "slash":
        suffix = section[len(definition.name) :]
    elif definition.match == "plus" and section != definition.base:
        suffix = section[len(definition.base) + 1 :]
    requires = definition.since
    if requires is not None:
        if definition.bare_since is not None and suffix is None:
            requires = max(requires, definition.bare_since)
        if not autoload:
            requires = max(requires, table.question_mark_since)
    return SectionMatch(written, section, autoload, definition, suffix, requires)


def match(name: str, target: Target, table: SectionTable | None = None) -> SectionMatch | None:
    """The entry libbpf of `target` gives the section `name`, or None when it has none."""
    if table is None:
        return _match_default(name, target)
    return _match(name, target, table)


@lru_cache(maxsize=8192)
def _match_default(name: str, target: Target) -> SectionMatch | None:
    # The built-in table never changes during a run, and real code repeats names a lot.
    return _match(name, target, load_table())


def _match(name: str, target: Target, table: SectionTable) -> SectionMatch | None:
    section, autoload = strip_question_mark(name)
    heads = _by_head(table)
    candidates = table.definitions if heads is None else heads.get(section.partition("/")[0], ())
    for definition in candidates:  # libbpf.c: find_sec_def(), first match wins
        if not target.allows(definition) or not definition.matches(section):
            continue
        found = _build_match(name, section, autoload, definition, table)
        return found if target.allows_version(found.requires) else None
    return None


_HEADS: dict[int, tuple[SectionTable, dict[str, tuple[SectionDef, ...]] | None]] = {}


def _by_head(table: SectionTable) -> dict[str, tuple[SectionDef, ...]] | None:
    """The entries by the text before the first "/" of the names they match, in table order:
    a name can only match an entry with the same head (exact: the same name; `X+`: X or
    X/...; `X/`: X/...), so a lookup reads a few entries instead of the whole table. None for
    a table with a `/`-entry whose name has no "/" (its matches have no fixed head)."""
    found = _HEADS.get(id(table))
    if found is None or found[0] is not table:
        heads: dict[str, list[SectionDef]] | None = {}
        for definition in table.definitions:
            key = definition.name if definition.match == "exact" else definition.base
            if definition.match == "slash" and "/" not in definition.name:
                heads = None
                break
            heads.setdefault(key.partition("/")[0], []).append(definition)
        index = None if heads is None else {k: tuple(v) for k, v in heads.items()}
        found = _HEADS[id(table)] = (table, index)
    return found[1]


def lookup_any(name: str, table: SectionTable | None = None) -> SectionMatch | None:
    """The entry of any known libbpf (or the proposal) for `name`, whatever the target.

    A name that `match()` rejects for a target but `lookup_any()` finds needs a newer libbpf
    (compare `requires` with the target); a name neither finds is unknown.
    """
    return match(name, Target.upgrade(), table)


def data_section(name: str, table: SectionTable | None = None) -> DataSection | None:
    """The data section libbpf reads under this exact name, if any."""
    table = table if table is not None else load_table()
    for entry in table.data_sections:
        if entry.matches(name):
            return entry
    return None


def is_data_section(name: str, table: SectionTable | None = None) -> bool:
    """True for the names libbpf reads as data: license, version, .maps, .data, .rodata, .bss,
    .data.*, .rodata.*, .bss.*, .kconfig, .ksyms, .struct_ops, .struct_ops.link and their
    "?" forms, .addr_space.1 and .jumptables (libbpf.c: bpf_object__elf_collect())."""
    return data_section(name, table) is not None


def is_non_program_section(name: str, table: SectionTable | None = None) -> bool:
    """True for data sections, the legacy `maps` section, and any other name whose first
    character after an optional "?" is "." (see the module docstring)."""
    if is_data_section(name, table):
        return True
    removed = removed_name(name, table)
    if removed is not None and removed.kind == "data":
        return True
    return strip_question_mark(name)[0].startswith(".")


def removed_name(name: str, table: SectionTable | None = None) -> RemovedSection | None:
    """The removed entry (xdp_devmap/..., xdp_cpumap/..., sk_lookup/..., maps) `name` uses."""
    table = table if table is not None else load_table()
    section, _ = strip_question_mark(name)
    for entry in table.removed:
        if entry.matches(section):
            return entry
    return None


def edit_distance(left: str, right: str, limit: int | None = None) -> int:
    """Levenshtein distance counting a swap of two neighbours as one edit.

    With `limit`, any distance above it comes back as `limit + 1`, after at most
    `(2 * limit + 1) * len(left)` steps: only the band |i - j| <= limit of the table can hold a
    value within the limit, and a row whose values all exceed it ends the search. Distances
    within the limit are exactly those of the full table.
    """
    over = max(len(left), len(right)) + 1 if limit is None else limit + 1
    if abs(len(left) - len(right)) >= over:
        return over
    band = over - 1
    width = len(right)
    # Rows hold only the cells within the limit (column -> value); a missing cell is `over`.
    row = {j: j for j in range(min(width, band) + 1)}
    before: dict[int, int] = {}  # the row above `row`, for swaps
    for i, left_char in enumerate(left, start=1):
        current = {0: i} if i <= band else {}
        for j in range(max(1, i - band), min(width, i + band) + 1):
            right_char = right[j - 1]
            value = min(
                row.get(j, over) + 1,
                current.get(j - 1, over) + 1,
                row.get(j - 1, over) + (left_char != right_char),
            )
            if i > 1 and j > 1 and left_char == right[j - 2] and left[i - 2] == right_char:
                value = min(value, before.get(j - 2, over) + 1)
            if value < over:
                current[j] = value
        if not current:
            return over
        before, row = row, current
    return row.get(width, over)


_SEPARATOR_TYPOS = ".:-_ \\"


class _Suggester:
    """One target's entries of one table, arranged so that a typed name is compared only with
    the entries it can be close to: the work per name no longer grows with the table, nor
    with the length of the name (issue 13: a 1 MB name, 100k distinct names)."""

    def __init__(self, table: SectionTable, target: Target) -> None:
        allowed = [d for d in table.definitions if target.allows(d)]
        self.exact: dict[str, list[SectionDef]] = {}  # exact name -> entries
        self.based: dict[str, list[SectionDef]] = {}  # base of every other entry -> entries
        # (entry, the text a typo is measured against, the distance allowed for it)
        self.keyed: list[tuple[SectionDef, str, int]] = []
        for d in allowed:
            key = d.name if d.match == "exact" else d.base
            (self.exact if d.match == "exact" else self.based).setdefault(key, []).append(d)
            self.keyed.append((d, key, max(1, min(3, len(key) // 4))))
        self.longest = max((len(key) + limit for _, key, limit in self.keyed), default=0)
        self.exact_lengths = sorted({len(n) for n in self.exact})
        self.base_lengths = sorted({len(b) for b in self.based})
        self._near: dict[str, tuple[tuple[SectionDef, int], ...]] = {}
        self._families: dict[str, tuple[SectionDef, ...]] = {}

    def near(self, typed: str) -> tuple[tuple[SectionDef, int], ...]:
        """(entry, distance) for the entries `typed` is a plausible misspelling of."""
        if len(typed) > self.longest:
            return ()  # farther from every entry than any allowed distance
        found = self._near.get(typed)
        if found is None:
            found = tuple(
                (d, distance)
                for d, key, allowed in self.keyed
                if abs(len(key) - len(typed)) <= allowed
                and (distance := edit_distance(typed, key, allowed)) <= allowed
            )
            if len(self._near) > 65536:  # names are short here, but a run may have many
                self._near.clear()
            self._near[typed] = found
        return found

    def family(self, family: str) -> tuple[SectionDef, ...]:
        """The exact entries named `family/...` (tcx/ingress, tcx/egress for `tcx`)."""
        if len(family) >= self.longest:
            return ()
        found = self._families.get(family)
        if found is None:
            prefix = family + "/"
            found = tuple(d for ds in self.exact.values() for d in ds if d.name.startswith(prefix))
            if len(self._families) > 65536:
                self._families.clear()
            self._families[family] = found
        return found

    def exact_prefixes(self, section: str) -> Iterator[SectionDef]:
        """The exact entries `section` starts with and goes on after."""
        for length in self.exact_lengths:
            if length >= len(section):
                break
            yield from self.exact.get(section[:length], ())

    def base_prefixes(self, section: str) -> Iterator[SectionDef]:
        """The other entries whose base `section` starts with and goes on after."""
        for length in self.base_lengths:
            if length >= len(section):
                break
            yield from self.based.get(section[:length], ())


_SUGGESTERS: dict[tuple[int, Target], tuple[SectionTable, _Suggester]] = {}


def _suggester(table: SectionTable, target: Target) -> _Suggester:
    key = (id(table), target)
    found = _SUGGESTERS.get(key)
    if found is None or found[0] is not table:
        found = _SUGGESTERS[key] = (table, _Suggester(table, target))
    return found[1]


def _candidates(section: str, target: Target, table: SectionTable) -> dict[str, tuple[float, int]]:
    """suggestion -> (score, table index); lower scores are better."""
    found: dict[str, tuple[float, int]] = {}

    def add(text: str, score: float, index: int) -> None:
        if text and (text not in found or (score, index) < found[text]):
            found[text] = (score, index)

    # Spellings libbpf does not normalise: a second "?", spaces, upper case.
    normalised = section.lstrip("?").strip()
    for variant in (normalised, normalised.lower()):
        known = match(variant, target, table)
        if variant != section and known is not None:
            add(variant, 0.25, known.definition.index)

    removed = removed_name(section, table)
    if removed is not None:
        for position, replacement in enumerate(removed.replacement):
            add(replacement, position * 0.1, -1)

    entries = _suggester(table, target)
    head, separator, tail = section.partition("/")
    family = head if separator else section
    # "kprobe.s/f", "xdp.s": a sleepable variant libbpf does not have.
    not_sleepable = head.removesuffix(".s") if head.endswith(".s") else None
    # A misspelt name: `kprobe.singel/f` -> the exact `kprobe.singel`s, the `kprobes` of `X+`.
    for d, distance in entries.near(section):
        if d.match == "exact":
            add(d.name, distance, d.index)
        elif not separator:
            add(d.base, distance, d.index)
    members = entries.family(family)
    if len(members) <= 3:
        for d in members:
            add(d.name, 0.5, d.index)  # "tcx", "tcx/foo" -> tcx/ingress, tcx/egress
    if separator:
        for d in entries.exact.get(head, ()):
            add(d.name, 0.4, d.index)  # "xdp/foo": a suffix on an exact name
        if tail:
            for d, distance in entries.near(tail):
                if d.match == "exact":
                    add(d.name, distance + 1, d.index)  # "cgroup/sock_ops" -> sockops
        for d, distance in entries.near(head):
            if d.match != "exact":
                add(f"{d.base}/{tail}", distance, d.index)  # "kprobes/f" -> kprobe/f
        if not_sleepable is not None:
            for d in entries.based.get(not_sleepable, ()):
                add(f"{d.base}/{tail}", 0.5, d.index)
        return found
    for d in entries.exact_prefixes(section):
        add(d.name, 1, d.index)  # "xdp_prog", "socket1": what pre-1.0 prefix matching meant
    if not_sleepable is not None:
        for d in entries.exact.get(not_sleepable, ()):
            add(d.name, 0.5, d.index)
        for d in entries.based.get(not_sleepable, ()):
            add(d.base, 0.5, d.index)
    for d in entries.base_prefixes(section):
        cut = len(d.base)
        if len(section) > cut + 1 and section[cut] in _SEPARATOR_TYPOS:
            # "fentry.do_x" -> fentry/do_x; the longest base wins ("kprobe.multi.f")
            add(f"{d.base}/{section[cut + 1 :]}", 0.5 - cut / 1000, d.index)
    return found


def did_you_mean(
    name: str, target: Target, table: SectionTable | None = None, limit: int = 3
) -> list[str]:
    """Closest section names the target's libbpf accepts, best first, keeping a leading "?".

    Empty when `name` is a name some libbpf knows (then it is a version problem, not a typo)
    or when nothing is close. `.single` names are only offered under the "upgrade" target.
    """
    if table is None:
        return list(_did_you_mean_default(name, target, limit))
    return _did_you_mean(name, target, table, limit)


@lru_cache(maxsize=4096)
def _did_you_mean_default(name: str, target: Target, limit: int) -> tuple[str, ...]:
    # The rules ask the same name several times per site, and real code repeats names.
    return tuple(_did_you_mean(name, target, load_table(), limit))


def _did_you_mean(name: str, target: Target, table: SectionTable, limit: int) -> list[str]:
    section, autoload = strip_question_mark(name)
    if lookup_any(name, table) is not None:
        return []
    found = _candidates(section, target, table)
    if not found:
        return []
    best = min(score for score, _ in found.values())
    ceiling = best + 0.5
    ranked = sorted(
        (item for item in found.items() if item[1][0] < ceiling),
        key=lambda item: (item[1][0], item[1][1], item[0]),
    )
    prefix = "" if autoload else "?"
    suggestions: list[str] = []
    for text, _ in ranked:
        candidate = prefix + text
        if candidate != name and match(candidate, target, table) is not None:
            suggestions.append(candidate)
        if len(suggestions) == limit:
            break
    return suggestions
