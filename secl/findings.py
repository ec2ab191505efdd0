"""What the analysis produces and every renderer, the fixer and the tests consume."""

from __future__ import annotations

from dataclasses import dataclass, field

from secl.facts import SectionSite, Span
from secl.records import quick_init

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Literal

    Severity = Literal["error", "warning", "info"]
    Applicability = Literal["safe", "unsafe"]


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace bytes [span.start_byte, span.end_byte) of `path` with `content`."""

    path: str
    span: Span
    content: str


@dataclass(frozen=True, slots=True)
class Fix:
    """The edits that fix one finding, and whether they are safe to apply."""

    applicability: Applicability
    message: str
    edits: tuple[Edit, ...]


@quick_init
@dataclass(frozen=True, slots=True)
class Related:
    """Another place a finding points at (the loader line behind it, say)."""

    path: str
    span: Span
    message: str


@quick_init
@dataclass(frozen=True, slots=True)
class Finding:
    """One problem a rule reports at one span."""

    code: str  # SECL101
    name: str  # kebab-case rule name
    severity: Severity
    message: str
    path: str
    span: Span
    program: str | None = None
    section: str | None = None  # the section as written
    related: tuple[Related, ...] = ()
    fix: Fix | None = None
    # Extra words for the `full` format (a note under the caret), never needed to act.
    notes: tuple[str, ...] = field(default=())

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.span.start.row, self.span.start.column, self.code)


@dataclass(frozen=True, slots=True)
class Evidence:
    """A fact found in loader code that the runtime verifier can replay."""

    kind: str  # attach-offset, attach-mode, link-info, perf-event, expected-attach-type, ...
    path: str
    span: Span
    value: str | int | None
    # False when the analysis could not tell whether it applies to the program (the order
    # of a store and the attach call, say): shown, never the reason for a finding.
    certain: bool = True
    # True when the loader's object is not known and the fact was tied to the program by
    # its name alone (secl.analysis.links): shown as `"linked_by": "program-name"`.
    by_name: bool = False


@quick_init
@dataclass(frozen=True, slots=True)
class UpgradeInfo:
    """What the auto-upgrade does to one program, and why."""

    upgraded: bool
    reason_code: str
    reason: str
    needs_single: bool
    codes: tuple[str, ...]
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class LoaderEvidence:
    """Where a loader of a BPF source was found."""

    path: str
    span: Span
    value: str
    kind: str  # the loader kind this evidence is for
    certain: bool = True


@dataclass(frozen=True, slots=True)
class LoaderInfo:
    """The library judged to load a program's object, and why."""

    kind: str  # secl.loaders.KINDS
    version: str | None
    evidence: tuple[LoaderEvidence, ...]


@dataclass(frozen=True, slots=True)
class InventoryEntry:
    """One line of `secl sections`: a site, the libbpf entry it matches, its upgrade fate."""

    site: SectionSite
    definition: str | None  # the libbpf table string it matches, e.g. "kprobe+"
    upgrade: UpgradeInfo | None
    loader: LoaderInfo | None = None  # None for data sections
