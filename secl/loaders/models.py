"""Section models of the loaders that are not libbpf: cilium/ebpf and aya.

Each model is `rules/loaders/<kind>.json`, generated from the library's own source by
scripts/gen_loader_tables.py and pinned to a release; older releases read by the generator date
the entries (`since`, `until`), so a project pinned to one of them is judged by its table.

cilium/ebpf (elf_reader.go: getProgType, matchSectionName):
* one leading `?` is removed (strings.TrimPrefix) and means nothing else: NewCollection still
  loads the program;
* `X+` entries match when the text before the first `/` is `X`, `X/` entries also need the `/`,
  and every other entry is a *prefix* match: `socket1` is a socket filter, `xdp_foo` and
  `xdp/foo` are XDP programs, `tcx` is a `tc` program; the first match wins;
* a name nothing matches is not an error when the object is read: the program gets
  UnspecifiedProgram. NewCollection / LoadCollection skip it (collection.go:
  NewCollectionWithOptions), while CollectionSpec.LoadAndAssign fails on it ("cannot load
  program X: program type is unspecified", collection.go: collectionLoader.loadProgram) — and
  bpf2go's generated `load<Name>Objects` is LoadAndAssign over a struct with a field for every
  program of the object (cmd/bpf2go/main.go: convert lists all spec.Programs);
* the suffix is never parsed: it becomes ProgramSpec.AttachTo, used only as the BTF target of
  fentry/fexit/lsm/iter/tp_btf/freplace/struct_ops programs at load time. kprobes and uprobes
  are attached by the link package with an explicit symbol, never from the name.
* sections named `license*`, `version*`, `maps*` (legacy map definitions, still read), `.maps`
  and the data sections are classified before programs (LoadCollectionSpecFromReader).

aya (aya-obj/src/obj.rs: ProgramSection::from_str):
* the name is split at `/` and the first piece compared exactly: no `?`, no prefixes, no
  case folding;
* `sk_skb`, `cgroup_skb` and `cgroup` need one of a fixed set of second pieces; `xdp`,
  `xdp.frags` and `sk_reuseport` take none or one of a fixed set; every other kind ignores
  whatever follows;
* one name it rejects fails Object::parse, and with it `Ebpf::load` for the whole object;
* `license*`, `version*`, `maps*` (legacy maps, read), `.maps*`, `.text*`, `.bss*`, `.data*`
  and `.rodata*` are classified before programs (EbpfSectionKind::from_name).

`judge()` is what secl asks: a `Verdict` with a code secl can report ("ok", "skip", SECL101,
SECL102), the matching entry, and a message that names the loader and the release.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache, lru_cache

from secl.loaders import AYA, CILIUM
from secl.resources import rules_dir

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from typing import Any

    from secl.libbpf.table import SectionDef, SectionTable

OK = "ok"
# cilium/ebpf: the program gets no type. NewCollection skips it silently; a bpf2go-generated
# loader fails on it (see Verdict.code_for).
SKIP = "skip"
UNKNOWN = "SECL101"
SUFFIX_ON_EXACT = "SECL102"
MALFORMED_SUFFIX = "SECL104"  # neither model rejects a suffix it cannot parse today

LIBRARY_NAMES = {CILIUM: "cilium/ebpf", AYA: "aya"}
# How the object is read: aya fails on every program section it cannot type.
_AYA_FAILURE = "`Ebpf::load` fails for the whole object"
_CILIUM_SKIPPED = (
    "so the program gets no type (UnspecifiedProgram): NewCollection skips it and a "
    "bpf2go-generated loader fails on it"
)
# elf_reader.go getProgType drops the `?` ("Skip optional program marking for now") and nothing
# else reads it: NewCollection loads the program like any other.
_CILIUM_OPTIONAL = (
    "cilium/ebpf ignores the leading `?`: NewCollection loads the program, and fails if the "
    "kernel rejects it"
)
_ROLE_WORDS = {
    "license": "the license",
    "version": "the kernel version",
    "legacy-maps": "legacy map definitions",
    "btf-maps": "BTF map definitions",
    "data": "global data",
    "struct-ops": "struct_ops maps",
    "btf": "BTF",
    "btf-ext": "BTF",
}


def _release_key(text: str | None) -> tuple[int, int, int] | None:
    """(major, minor, patch) of "v0.22.0", "0.14.0", "0.13" or a Go pseudo-version such as
    "v0.16.1-0.20240101-abcdef" (read as 0.16.1); None when it is not a release number."""
    if text is None:
        return None
    core = text.strip().removeprefix("v").split("-")[0].split("+")[0]
    parts = core.split(".")
    if not 1 <= len(parts) <= 3 or not all(part.isdigit() for part in parts):
        return None
    numbers = [int(part) for part in parts] + [0] * (3 - len(parts))
    return numbers[0], numbers[1], numbers[2]


@dataclass(frozen=True, slots=True)
class LoaderEntry:
    """One entry of a loader's section table."""

    index: int  # position in match order (over all releases read)
    name: str  # cilium: the pattern ("kprobe+", "socket"); aya: "kprobe", "xdp/cpumap"
    # cilium: "plus" | "slash" | "prefix"; aya: "kind" (rest ignored), "bare" (nothing after
    # the kind), "choice" (the second piece is `choice`, the rest ignored)
    match: str
    base: str  # cilium: the pattern without "+" or "/"; aya: the first piece
    choice: str | None  # aya: the second piece of a "choice" entry
    second_piece: str | None  # aya: "ignored" | "optional" | "required" for this kind
    prog_type: str  # BPF_PROG_TYPE_*
    attach_type: str | None  # cilium: BPF_* or None; aya: None
    variant: str | None  # aya: the ProgramSection variant ("KProbe")
    detail: str | None  # aya: the attach type or kind the second piece selects
    flags: tuple[str, ...]  # cilium: libbpf's SEC_* flags of the entry
    sleepable: bool
    attach_btf: bool  # cilium: the suffix is the BTF target the program loads against
    probe_family: str | None  # "kprobe" | "uprobe" for BPF_PROG_TYPE_KPROBE entries
    since: tuple[int, int, int]
    until: tuple[int, int, int] | None

    def valid_in(self, release: tuple[int, int, int]) -> bool:
        return self.since <= release and (self.until is None or release <= self.until)

    def matches(self, section: str) -> bool:
        """cilium: elf_reader.go matchSectionName, `section` without its `?`.
        aya: ProgramSection::from_str for this entry, `section` as written."""
        head, slash, rest = section.partition("/")
        if self.match == "plus":
            return head == self.base
        if self.match == "slash":
            return head == self.base and slash == "/"
        if self.match == "prefix":
            return section.startswith(self.name)
        if self.match == "kind":
            return head == self.base
        if self.match == "bare":
            return section == self.base
        return head == self.base and slash == "/" and rest.split("/")[0] == self.choice

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LoaderEntry:
        until = raw.get("until")
        return cls(
            index=raw["index"],
            name=raw["name"],
            match=raw["match"],
            base=raw["base"],
            choice=raw.get("choice"),
            second_piece=raw.get("second_piece"),
            prog_type=raw["prog_type"],
            attach_type=raw.get("attach_type"),
            variant=raw.get("variant"),
            detail=raw.get("detail"),
            flags=tuple(raw.get("flags", ())),
            sleepable=bool(raw.get("sleepable", False)),
            attach_btf=bool(raw.get("attach_btf", False)),
            probe_family=raw.get("probe_family"),
            since=_required_key(raw["since"]),
            until=None if until is None else _required_key(until),
        )


@dataclass(frozen=True, slots=True)
class LoaderDataSection:
    """A section name the loader reads as something other than a program section."""

    name: str
    match: str  # "exact" | "prefix"
    role: str  # "license", "version", "legacy-maps", "btf-maps", "data", "text", ...
    since: tuple[int, int, int]
    until: tuple[int, int, int] | None

    def matches(self, section: str) -> bool:
        return section.startswith(self.name) if self.match == "prefix" else section == self.name

    def valid_in(self, release: tuple[int, int, int]) -> bool:
        return self.since <= release and (self.until is None or release <= self.until)


def _required_key(text: str) -> tuple[int, int, int]:
    key = _release_key(text)
    if key is None:
        raise ValueError(f"not a release number: {text!r}")
    return key


@dataclass(frozen=True, slots=True, eq=False)  # compared and hashed by identity: caches key on it
class LoaderModel:
    """A loader's section table over the releases its generator read."""

    kind: str  # CILIUM or AYA
    library: str  # "cilium/ebpf", "aya"
    release: str  # the release it is pinned to (the newest read)
    releases: tuple[str, ...]  # every release read, oldest first
    commit: str | None
    entries: tuple[LoaderEntry, ...]
    data_sections: tuple[LoaderDataSection, ...]

    def release_for(self, version: str | None) -> str:
        """The release read that judges `version`: the newest one not newer than it, the oldest
        for older versions, the pinned one when the version is unknown or not a release."""
        key = _release_key(version)
        if key is None or key == (0, 0, 0):
            return self.release
        chosen = self.releases[0]
        for release in self.releases:
            if _required_key(release) <= key:
                chosen = release
        return chosen

    def entries_in(self, release: str) -> tuple[LoaderEntry, ...]:
        return _entries_in(self, release)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LoaderModel:
        return cls(
            kind=raw["loader"],
            library=raw["library"],
            release=raw["release"],
            releases=tuple(raw["releases"]),
            commit=raw.get("commit"),
            entries=tuple(LoaderEntry.from_json(item) for item in raw["entries"]),
            data_sections=tuple(
                LoaderDataSection(
                    name=item["name"],
                    match=item["match"],
                    role=item["role"],
                    since=_required_key(item["since"]),
                    until=None if item["until"] is None else _required_key(item["until"]),
                )
                for item in raw["data_sections"]
            ),
        )


@lru_cache(maxsize=64)
def _entries_in(model: LoaderModel, release: str) -> tuple[LoaderEntry, ...]:
    key = _required_key(release)
    return tuple(entry for entry in model.entries if entry.valid_in(key))


@cache
def load_model(kind: str, path: str | None = None) -> LoaderModel:
    """The generated model of `kind` (CILIUM or AYA); by default rules/loaders/<kind>.json."""
    if kind not in LIBRARY_NAMES:
        raise ValueError(f"no section model for loader {kind!r}")
    source = path if path is not None else os.path.join(rules_dir(), "loaders", f"{kind}.json")
    with open(source, encoding="utf-8") as handle:
        model = LoaderModel.from_json(json.load(handle))
    if model.kind != kind:
        raise ValueError(f"{source} is the model of {model.kind!r}, not {kind!r}")
    return model


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one loader does with a program in one section, and what secl should say.

    `code` is "ok", "skip" (cilium/ebpf: no program type; see `code_for`), "SECL101" (the
    loader cannot type the program and fails, or reads the section as data), "SECL102" (a
    suffix on a name that takes none of that form). `message` is empty for "ok".
    """

    loader: str  # CILIUM or AYA
    release: str  # the release judged against ("v0.22.0", "0.14.0")
    section: str  # as written
    accepted: bool  # the loader gives the program a type from this name
    code: str
    entry: str | None  # the table entry that matched ("kprobe+", "socket", "xdp/cpumap")
    prog_type: str | None  # BPF_PROG_TYPE_* of that entry
    attach_type: str | None  # cilium: the expected attach type it sets
    variant: str | None  # aya: the ProgramSection variant ("KProbe", "Xdp")
    probe_family: str | None  # "kprobe" | "uprobe" when it is a kprobe/uprobe-family program
    sleepable: bool
    data_role: str | None  # the loader reads the section as this, never as a program
    # cilium/ebpf: the program has no type, so a bpf2go-generated `load<Name>Objects` (which is
    # LoadAndAssign over every program) fails on it, while NewCollection skips it.
    fails_with_generated_loader: bool
    needs_release: str | None  # the first newer release read that accepts the name
    message: str
    note: str  # what differs from libbpf although the name is accepted ("" when nothing)
    did_you_mean: tuple[str, ...]

    def code_for(self, generated_loader: bool) -> str:
        """The code to report when the object is (True) or is not (False) loaded through a
        bpf2go-generated loader: an untyped program fails the first and is skipped by
        NewCollection, where the project may still set its type by hand."""
        if self.code == SKIP and generated_loader and self.fails_with_generated_loader:
            return UNKNOWN
        return self.code

    @property
    def full_message(self) -> str:
        """`message` with the suggestions appended, as a finding shows it."""
        if not self.did_you_mean:
            return self.message
        return (
            self.message
            + "; did you mean "
            + " or ".join(f"`{s}`" for s in self.did_you_mean)
            + "?"
        )


def release_for(kind: str, version: str | None = None) -> str:
    """The release of `kind` that judges a project on `version` (see LoaderModel.release_for)."""
    return load_model(kind).release_for(version)


def data_section(kind: str, section: str, version: str | None = None) -> LoaderDataSection | None:
    """The non-program section `kind` reads under this name as written, if any: license,
    version, legacy `maps` (both libraries still read them), `.maps`, data, `.text`, ..."""
    model = load_model(kind)
    key = _required_key(model.release_for(version))
    for entry in model.data_sections:
        if entry.valid_in(key) and entry.matches(section):
            return entry
    return None


def is_probe(kind: str, section: str, version: str | None = None) -> bool:
    """Whether a program in `section` is a kprobe/uprobe-family program for that loader."""
    return probe_family(kind, section, version) is not None


def probe_family(kind: str, section: str, version: str | None = None) -> str | None:
    """The probe family of a program `kind` types as a kprobe/uprobe: "kprobe" (kprobe,
    kretprobe, ksyscall, kprobe.multi, ...) or "uprobe" (uprobe, usdt, uprobe.multi, ...);
    None for every other program and for names the loader does not type."""
    return judge(kind, section, version).probe_family


@lru_cache(maxsize=8192)
def judge(kind: str, section: str, version: str | None = None) -> Verdict:
    """What `kind` (CILIUM or AYA) of `version` (default: the pinned release) does with a
    program in `section`."""
    model = load_model(kind)
    release = model.release_for(version)
    data = data_section(kind, section, release)
    if data is not None:
        return _data_verdict(model, release, section, data)
    if kind == CILIUM:
        return _judge_cilium(model, release, section)
    return _judge_aya(model, release, section)


def _verdict(
    model: LoaderModel,
    release: str,
    section: str,
    code: str,
    entry: LoaderEntry | None = None,
    **fields: Any,
) -> Verdict:
    values: dict[str, Any] = {
        "loader": model.kind,
        "release": release,
        "section": section,
        "accepted": code == OK,
        "code": code,
        "entry": None if entry is None else entry.name,
        "prog_type": None if entry is None else entry.prog_type,
        "attach_type": None if entry is None else entry.attach_type,
        "variant": None if entry is None else entry.variant,
        "probe_family": None if entry is None else entry.probe_family,
        "sleepable": False if entry is None else entry.sleepable,
        "data_role": None,
        "fails_with_generated_loader": False,
        "needs_release": None,
        "message": "",
        "note": "",
        "did_you_mean": (),
    }
    values.update(fields)
    return Verdict(**values)


def _shown(model: LoaderModel, release: str) -> str:
    return f"{model.library} {release}"


def _data_verdict(
    model: LoaderModel, release: str, section: str, data: LoaderDataSection
) -> Verdict:
    if data.role == "text":  # sub-programs: neither library makes them programs of their own
        return _verdict(model, release, section, OK, data_role=data.role)
    shown = _shown(model, release)
    if data.role == "unsupported":  # cilium >= 0.21: LoadCollectionSpecFromReader refuses it
        message = f"{shown} refuses a `{data.name}` section: reading the object fails"
    else:
        named = f"the `{data.name}` section"
        if data.match == "prefix":
            named = f"sections starting with `{data.name}`"
        role = _ROLE_WORDS.get(data.role, data.role)
        message = f"{shown} reads {named} as {role}, so `{section}` holds no program"
    return _verdict(model, release, section, UNKNOWN, data_role=data.role, message=message)


def _first_match(model: LoaderModel, release: str, section: str) -> LoaderEntry | None:
    for entry in model.entries_in(release):
        if entry.matches(section):
            return entry
    return None


def _newer_release(model: LoaderModel, release: str, accepts: Any) -> str | None:
    key = _required_key(release)
    for newer in model.releases:
        if _required_key(newer) > key and accepts(newer):
            return newer
    return None


def _judge_cilium(model: LoaderModel, release: str, section: str) -> Verdict:
    # elf_reader.go getProgType: strings.TrimPrefix(sectionName, "?") removes one `?`.
    name = section[1:] if section.startswith("?") else section
    entry = _first_match(model, release, name)
    if entry is not None:
        note = _CILIUM_OPTIONAL if name != section else ""
        return _verdict(model, release, section, OK, entry, note=note)
    newer = _newer_release(model, release, lambda r: _first_match(model, r, name) is not None)
    message = f"{_shown(model, release)} does not know `{section}`, {_CILIUM_SKIPPED}"
    if newer is not None:
        message += f" ({model.library} {newer} knows it)"
    return _verdict(
        model,
        release,
        section,
        SKIP,
        fails_with_generated_loader=True,
        needs_release=newer,
        message=message,
        did_you_mean=_suggestions(model, release, name, question=section != name),
    )


def _aya_outcome(model: LoaderModel, release: str, section: str) -> tuple[str, LoaderEntry | None]:
    """(code, entry) of aya-obj's ProgramSection::from_str for `section`."""
    head = section.partition("/")[0]
    same_kind = [entry for entry in model.entries_in(release) if entry.base == head]
    if not same_kind:
        return UNKNOWN, None
    for entry in same_kind:
        if entry.matches(section):
            return OK, entry
    # `xdp/foo`: a kind that takes only some second pieces, or none, got another one.
    if same_kind[0].second_piece == "optional":
        return SUFFIX_ON_EXACT, None
    return UNKNOWN, None  # `sk_skb`, `cgroup/foo`: the second piece is part of the name


def _judge_aya(model: LoaderModel, release: str, section: str) -> Verdict:
    code, entry = _aya_outcome(model, release, section)
    if entry is not None:
        return _verdict(model, release, section, OK, entry)
    shown = _shown(model, release)
    head = section.partition("/")[0]
    kinds = [item for item in model.entries_in(release) if item.base == head]
    if section.startswith("?") and _aya_outcome(model, release, section[1:])[0] == OK:
        # from_str sees the `?`: aya has no optional programs.
        return _verdict(
            model,
            release,
            section,
            UNKNOWN,
            message=f"{shown} does not strip a leading `?`, so it does not know `{section}`: "
            f"{_AYA_FAILURE}",
            did_you_mean=(section[1:],),
        )
    if kinds:
        named = [f"`{item.name}`" for item in kinds if item.match == "choice"]
        choices = (
            " or ".join(named)
            if len(named) <= 3
            else (f"one of {len(named)} names such as {', '.join(named[:3])}")
        )
        if code == SUFFIX_ON_EXACT:
            problem = f"accepts `{head}` only bare or as {choices}, not `{section}`"
        else:
            problem = f"knows `{head}` only as {choices}, not `{section}`"
        message = f"{shown} {problem}: {_AYA_FAILURE}"
    else:
        message = f"{shown} does not know `{section}`: {_AYA_FAILURE}"
    newer = _newer_release(model, release, lambda r: _aya_outcome(model, r, section)[0] == OK)
    if newer is not None:
        message += f" ({model.library} {newer} knows it)"
    return _verdict(
        model,
        release,
        section,
        code,
        needs_release=newer,
        message=message,
        did_you_mean=_suggestions(model, release, section, question=False),
    )


# -- suggestions -----------------------------------------------------------------------------

# Program types whose programs do not depend on the expected attach type the section sets, so
# a libbpf name of that type can be written as any entry of the loader with the same type.
_SAME_TYPE_IS_ENOUGH = frozenset(
    "BPF_PROG_TYPE_" + name
    for name in ("KPROBE", "SCHED_CLS", "SCHED_ACT", "SOCKET_FILTER", "TRACEPOINT",
                 "RAW_TRACEPOINT", "PERF_EVENT", "XDP")
)  # fmt: skip


def _accepts(model: LoaderModel, release: str, name: str) -> bool:
    if model.kind == CILIUM:
        return _first_match(model, release, name.removeprefix("?")) is not None
    return _aya_outcome(model, release, name)[0] == OK


def _suggestions(model: LoaderModel, release: str, name: str, question: bool) -> tuple[str, ...]:
    """Names this loader release accepts, best first: the loader's spelling of a name libbpf
    knows (`tc` -> `classifier` in aya), else the close spellings of its own table."""
    from secl.libbpf.table import Target, did_you_mean, lookup_any

    prefix = "?" if question else ""
    # A libbpf name this loader lacks is no typo: suggest what means the same here.
    known = lookup_any(name)
    found = [] if known is None else _equivalents(model, release, known.definition, known.suffix)
    if not found:
        found = did_you_mean(name, Target.upgrade(), _pseudo_table(model, release))
    result: list[str] = []
    for text in found:
        candidate = prefix + text.removeprefix("?")
        if (
            candidate not in result
            and candidate != prefix + name
            and _accepts(model, release, candidate)
        ):
            result.append(candidate)
    return tuple(result[:3])


def _equivalents(
    model: LoaderModel, release: str, definition: SectionDef, suffix: str | None
) -> list[str]:
    """This loader's entries for what the libbpf entry `definition` means: the same program
    type (and expected attach type where it matters), probe family, return-ness, sleepability;
    the spellings closest to libbpf's, with libbpf's suffix kept where the entry takes one."""
    from secl.libbpf.table import edit_distance

    libbpf_family = None
    if definition.prog_type == "BPF_PROG_TYPE_KPROBE":
        libbpf_family = "kprobe" if definition.base.startswith("k") else "uprobe"
    returns = "ret" in definition.base
    ranked: list[tuple[int, int, str]] = []
    for entry in model.entries_in(release):
        if entry.prog_type != definition.prog_type or entry.sleepable != definition.sleepable:
            continue
        if definition.prog_type not in _SAME_TYPE_IS_ENOUGH and (
            entry.attach_type is None or entry.attach_type != definition.expected_attach_type
        ):
            continue
        if entry.probe_family != libbpf_family or ("ret" in entry.base) != returns:
            continue
        takes_suffix = entry.match in ("plus", "slash", "kind")
        text = f"{entry.base}/{suffix}" if takes_suffix and suffix else entry.name
        ranked.append((edit_distance(definition.base, entry.base), entry.index, text))
    if not ranked:
        return []
    best = min(distance for distance, _, _ in ranked)
    return [text for distance, _, text in sorted(ranked) if distance == best]


@lru_cache(maxsize=64)
def _pseudo_table(model: LoaderModel, release: str) -> SectionTable:
    """The loader's entries of `release` as a libbpf-style table, for libbpf's typo search:
    every suggestion it makes is checked against the loader's own matching afterwards."""
    from secl.libbpf.table import SectionDef, SectionTable, Version

    definitions: list[SectionDef] = []
    for position, entry in enumerate(model.entries_in(release)):
        if entry.match in ("plus", "kind"):
            name, match = entry.base + "+", "plus"
        elif entry.match == "slash":
            name, match = entry.name, "slash"
        else:  # cilium prefix entries and aya bare/choice entries: offer the exact spelling
            name, match = entry.name, "exact"
        definitions.append(
            SectionDef(
                index=position,
                name=name,
                match=match,
                base=name.rstrip("+/"),
                prog_type=entry.prog_type,
                expected_attach_type=entry.attach_type,
                flags=entry.flags,
                flags_expanded=entry.flags,
                sleepable=entry.sleepable,
                attach_btf=entry.attach_btf,
                attach_fn=None,
                since=None,
                bare_since=None,
                min_kernel=None,
                min_kernel_inferred=False,
                target=None,
            )
        )
    return SectionTable(
        definitions=tuple(definitions),
        removed=(),
        data_sections=(),
        libbpf_version=None,
        question_mark_since=Version(0, 0),
    )
