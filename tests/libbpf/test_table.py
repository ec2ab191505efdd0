"""The section table and the libbpf-exact matcher."""

from __future__ import annotations

import os

import pytest

from secl.libbpf import (
    SectionDef,
    SectionTable,
    Target,
    Version,
    data_section,
    did_you_mean,
    edit_distance,
    is_data_section,
    is_non_program_section,
    load_table,
    lookup_any,
    match,
    removed_name,
    strip_question_mark,
)
from secl.resources import rules_dir

UPGRADE = Target.parse("upgrade")
V17 = Target.parse("1.7")
TABLE = load_table()


# --- the table itself -------------------------------------------------------------------


def test_rules_dir_has_the_table() -> None:
    assert os.path.isfile(os.path.join(rules_dir(), "libbpf", "sections.json"))


def test_table_size_and_order() -> None:
    libbpf = [d for d in TABLE.definitions if not d.proposal_only]
    assert len(libbpf) == 116
    assert [d.index for d in TABLE.definitions] == list(range(120))
    assert [d.name for d in TABLE.definitions[:4]] == [
        "socket",
        "sk_reuseport/migrate",
        "sk_reuseport",
        "kprobe+",
    ]
    assert TABLE.definitions[115].name == "netfilter"
    assert sum(d.match == "plus" for d in libbpf) == 53
    assert sum(d.match == "exact" for d in libbpf) == 63
    assert sum(d.sleepable for d in libbpf) == 22
    assert sum(d.attach_fn is not None for d in libbpf) == 50


@pytest.mark.parametrize(
    ("name", "classic"),
    [
        ("kprobe.single+", "kprobe+"),
        ("kretprobe.single+", "kretprobe+"),
        ("uprobe.single+", "uprobe+"),
        ("uretprobe.single+", "uretprobe+"),
    ],
)
def test_single_entries_copy_their_classic_counterpart(name: str, classic: str) -> None:
    single, original = TABLE.get(name), TABLE.get(classic)
    assert single is not None and original is not None
    assert single.proposal_only and single.target == "upgrade" and single.since is None
    assert single.prog_type == original.prog_type == "BPF_PROG_TYPE_KPROBE"
    assert single.attach_fn == original.attach_fn
    assert single.match == "plus"


@pytest.mark.parametrize(
    ("name", "attach_fn"),
    [("kprobe+", "attach_kprobe"), ("uprobe+", "attach_uprobe"), ("uretprobe.s+", "attach_uprobe")],
)
def test_attach_functions(name: str, attach_fn: str) -> None:
    definition = TABLE.get(name)
    assert definition is not None and definition.attach_fn == attach_fn


def _samples(definition: SectionDef) -> list[str]:
    if definition.match == "plus":
        return [definition.base, definition.base + "/", definition.base + "/x/y:z"]
    if definition.match == "slash":
        return [definition.name, definition.name + "x"]
    return [definition.name]


def test_no_two_entries_match_one_name() -> None:
    """libbpf >= 1.0's table never relies on its order; neither does the proposal."""
    for definition in TABLE.definitions:
        for sample in _samples(definition):
            owners = [d.name for d in TABLE.definitions if d.matches(sample)]
            assert owners == [definition.name], sample


# --- versions and targets ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.7", Version(1, 7, 0)),
        ("0.8", Version(0, 8, 0)),
        ("1.3.0", Version(1, 3, 0)),
        ("v1.2", Version(1, 2, 0)),
        ("1", Version(1, 0, 0)),
        ("0.0.3", Version(0, 0, 3)),
    ],
)
def test_version_parse(text: str, expected: Version) -> None:
    assert Version.parse(text) == expected


@pytest.mark.parametrize("text", ["", "1.x", "1.2.3.4", "latest", "1..2", "-1"])
def test_version_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        Version.parse(text)


def test_target_parse_and_order() -> None:
    assert Target.parse("upgrade").is_upgrade
    assert Target.parse("UPGRADE") == UPGRADE
    assert str(UPGRADE) == "upgrade" and str(V17) == "1.7.0"
    assert Target.parse("0.8") < Target.parse("1.0") < V17 < Target.parse("1.8") < UPGRADE
    assert Target.parse("1.3.0") == Target.parse("1.3")
    assert max([UPGRADE, V17]) == UPGRADE
    assert sorted([UPGRADE, V17, Target.parse("0.8")])[0] == Target.parse("0.8")
    with pytest.raises(ValueError):
        Target.parse("newest")


@pytest.mark.parametrize(
    ("entry", "target", "allowed"),
    [
        ("kprobe+", "0.0.3", True),
        ("tc/ingress", "1.2", False),
        ("tc/ingress", "1.3", True),
        ("tp.s+", "1.7", False),
        ("tp.s+", "1.8", True),
        ("tp.s+", "upgrade", True),
        ("kprobe.single+", "1.8", False),
        ("kprobe.single+", "99.0", False),
        ("kprobe.single+", "upgrade", True),
        ("fsession+", "1.6", False),
        ("fsession+", "1.7", True),
    ],
)
def test_target_allows(entry: str, target: str, allowed: bool) -> None:
    definition = TABLE.get(entry)
    assert definition is not None
    assert Target.parse(target).allows(definition) is allowed


# --- matching ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "entry", "suffix", "autoload"),
    [
        ("xdp", "xdp", None, True),
        ("?xdp", "xdp", None, False),
        ("kprobe", "kprobe+", None, True),
        ("kprobe/", "kprobe+", "", True),
        ("kprobe/do_unlinkat", "kprobe+", "do_unlinkat", True),
        ("kprobe/a/b", "kprobe+", "a/b", True),
        ("kprobe.multi/foo", "kprobe.multi+", "foo", True),
        ("kprobe.multi", "kprobe.multi+", None, True),
        ("kretprobe/f", "kretprobe+", "f", True),
        ("uprobe//usr/lib/libc.so.6:malloc", "uprobe+", "/usr/lib/libc.so.6:malloc", True),
        ("uprobe.s/bin:f", "uprobe.s+", "bin:f", True),
        ("?uprobe.s", "uprobe.s+", None, False),
        ("tc/ingress", "tc/ingress", None, True),
        ("tc/egress", "tc/egress", None, True),
        ("tc", "tc", None, True),
        ("tcx/ingress", "tcx/ingress", None, True),
        ("xdp.frags/devmap", "xdp.frags/devmap", None, True),
        ("xdp.frags", "xdp.frags", None, True),
        ("sk_skb/verdict", "sk_skb/verdict", None, True),
        ("sk_reuseport/migrate", "sk_reuseport/migrate", None, True),
        ("cgroup/sock", "cgroup/sock", None, True),
        ("cgroup/sock_create", "cgroup/sock_create", None, True),
        ("struct_ops/anything", "struct_ops+", "anything", True),
        ("struct_ops.s", "struct_ops.s+", None, True),
        ("tp/sched/sched_switch", "tp+", "sched/sched_switch", True),
        ("tp.s/syscalls/sys_enter_openat", "tp.s+", "syscalls/sys_enter_openat", True),
        ("raw_tp.w/x", "raw_tp.w+", "x", True),
        ("fentry.multi/bpf_testmod:f*", "fentry.multi+", "bpf_testmod:f*", True),
        ("usdt.s//bin/x:p:n", "usdt.s+", "/bin/x:p:n", True),
        ("syscall", "syscall", None, True),
        ("kprobe.single/f", "kprobe.single+", "f", True),
        ("?uretprobe.single", "uretprobe.single+", None, False),
    ],
)
def test_match_under_upgrade(name: str, entry: str, suffix: str | None, autoload: bool) -> None:
    found = match(name, UPGRADE)
    assert found is not None
    assert found.definition.name == entry
    assert found.suffix == suffix
    assert found.autoload is autoload
    assert found.written == name
    assert found.section == name.removeprefix("?")


@pytest.mark.parametrize(
    "name",
    [
        "??xdp",  # only one "?" is removed
        " xdp",  # whitespace counts
        "xdp ",
        "XDP",  # case counts
        "Kprobe/f",
        "xdp/",
        "xdp/foo",
        "xdp_prog",
        "tc/foo",
        "tcx",
        "tcx/foo",
        "netkit",
        "sk_lookup/foo",
        "syscall/foo",
        "cgroup/foo",
        "cgroup/sock_ops",
        "socket1",
        "kprobes/foo",
        "kprobe_foo",
        "kprobe.foo",
        "kprobe.s/f",
        "xdp.s",
        "ksyscall.s/x",
        "xdp_devmap/x",
        "xdp_cpumap/x",
        "maps",
        "",
        "?",
        "license",
        ".maps",
        "kretprobe.session/f",
        "cgroup/bind_unix",
        "cgroup/post_bind_unix",
    ],
)
def test_unknown_names(name: str) -> None:
    assert match(name, UPGRADE) is None
    assert lookup_any(name) is None


def test_kprobe_multi_is_not_kprobe_plus() -> None:
    kprobe = TABLE.get("kprobe+")
    assert kprobe is not None
    assert not kprobe.matches("kprobe.multi/foo")
    assert not kprobe.matches("kprobes/foo")
    assert kprobe.matches("kprobe")
    assert kprobe.matches("kprobe/")


def test_single_only_under_upgrade() -> None:
    assert match("kprobe.single/f", UPGRADE) is not None
    assert match("kprobe.single/f", V17) is None
    assert match("kprobe.single/f", Target.parse("1.8")) is None
    found = lookup_any("kprobe.single/f")
    assert found is not None and found.requires is None


@pytest.mark.parametrize(
    ("name", "requires"),
    [
        ("kprobe/f", "0.0.3"),
        ("kprobe", "0.8.0"),  # bare tracing names came with the "+" entries
        ("?kprobe/f", "0.8.0"),  # so did "?"
        ("xdp", "0.0.3"),
        ("?xdp", "0.8.0"),
        ("sk_lookup", "0.6.0"),
        ("tc/ingress", "1.3.0"),
        ("sk_skb/verdict", "1.4.0"),
        ("kprobe.session/f*", "1.5.0"),
        ("uprobe.session//bin/x:f", "1.6.0"),
        ("fsession/f", "1.7.0"),
        ("tp.s/syscalls/sys_enter_openat", "1.8.0"),
        ("fentry.multi/f*", "1.8.0"),
        ("struct_ops", "0.0.7"),
        ("iter.s/task", "0.7.0"),
        ("iter.s", "0.8.0"),
    ],
)
def test_requires(name: str, requires: str) -> None:
    found = lookup_any(name)
    assert found is not None
    assert found.requires == Version.parse(requires)


@pytest.mark.parametrize(
    ("name", "target", "known"),
    [
        ("kprobe", "0.7", False),
        ("kprobe", "0.8", True),
        ("kprobe/f", "0.7", True),
        ("?xdp", "0.7", False),
        ("?xdp", "0.8", True),
        ("tc/ingress", "1.2", False),
        ("tc/ingress", "1.3", True),
        ("sk_skb/verdict", "1.3", False),
        ("sk_skb/verdict", "1.4", True),
        ("kprobe.session/f*", "1.4", False),
        ("uprobe.session//bin/x:f", "1.5", False),
        ("fsession/f", "1.6", False),
        ("fsession/f", "1.7", True),
        ("tp.s/syscalls/sys_enter_openat", "1.7", False),
        ("fentry.multi/f*", "1.7", False),
        ("fentry.multi/f*", "1.8", True),
        ("uprobe.multi//bin/x:f", "1.2", False),
        ("ksyscall/openat", "0.8", False),
        ("ksyscall/openat", "1.0", True),
    ],
)
def test_match_under_numbered_targets(name: str, target: str, known: bool) -> None:
    assert (match(name, Target.parse(target)) is not None) is known
    assert lookup_any(name) is not None


def test_strip_question_mark() -> None:
    assert strip_question_mark("?xdp") == ("xdp", False)
    assert strip_question_mark("??xdp") == ("?xdp", False)
    assert strip_question_mark("xdp") == ("xdp", True)


def test_first_match_wins_and_slash_entries() -> None:
    """A hand-made table: "/" entries need the slash, and table order decides."""
    base = TABLE.get("xdp")
    assert base is not None

    def entry(index: int, name: str, kind: str, base_name: str) -> SectionDef:
        return SectionDef(
            index=index,
            name=name,
            match=kind,  # type: ignore[arg-type]
            base=base_name,
            prog_type=f"TYPE_{index}",
            expected_attach_type=None,
            flags=(),
            flags_expanded=(),
            sleepable=False,
            attach_btf=False,
            attach_fn=None,
            since=Version(0, 0, 3),
            bare_since=None,
            min_kernel=None,
            min_kernel_inferred=False,
            target=None,
        )

    custom = SectionTable(
        definitions=(
            entry(0, "dev/", "slash", "dev"),
            entry(1, "dev+", "plus", "dev"),
            entry(2, "dev", "exact", "dev"),
        ),
        removed=(),
        data_sections=(),
        libbpf_version=None,
        question_mark_since=Version(0, 8, 0),
    )
    slash = match("dev/x", UPGRADE, custom)
    assert slash is not None and slash.definition.index == 0 and slash.suffix == "x"
    assert match("dev/", UPGRADE, custom).definition.index == 0  # type: ignore[union-attr]
    bare = match("dev", UPGRADE, custom)
    assert bare is not None and bare.definition.index == 1  # "+" before the exact entry
    assert match("devx", UPGRADE, custom) is None


# --- data sections and removed names ----------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "license",
        "version",
        ".maps",
        ".data",
        ".rodata",
        ".bss",
        ".data.counters",
        ".rodata.str1.1",
        ".bss.x",
        ".data.",
        ".kconfig",
        ".ksyms",
        ".struct_ops",
        ".struct_ops.link",
        "?.struct_ops",
        "?.struct_ops.link",
        ".addr_space.1",
        ".jumptables",
    ],
)
def test_data_sections(name: str) -> None:
    assert is_data_section(name)
    assert is_non_program_section(name)
    assert lookup_any(name) is None


@pytest.mark.parametrize(
    "name",
    ["maps", ".maps.x", "?.maps", ".data_x", ".addr_space.2", "LICENSE", "xdp", "?license"],
)
def test_not_data_sections(name: str) -> None:
    assert not is_data_section(name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (".text", True),
        (".addr_space.2", True),
        ("?.foo", True),
        ("maps", True),  # legacy maps: data, although libbpf >= 1.0 rejects it
        ("xdp", False),
        ("kprobe/f", False),
        ("foo", False),
    ],
)
def test_non_program_sections(name: str, expected: bool) -> None:
    assert is_non_program_section(name) is expected


def test_data_section_since() -> None:
    found = data_section(".struct_ops.link")
    assert found is not None and found.since == Version(1, 2, 0)
    found = data_section(".data.foo")
    assert found is not None and found.match == "prefix" and found.since == Version(0, 6, 0)


@pytest.mark.parametrize(
    ("name", "old", "replacement", "removed_in"),
    [
        ("xdp_devmap/foo", "xdp_devmap/", "xdp/devmap", "1.0.0"),
        ("xdp_devmap/", "xdp_devmap/", "xdp/devmap", "1.0.0"),
        ("?xdp_cpumap/foo", "xdp_cpumap/", "xdp/cpumap", "1.0.0"),
        ("xdp_devmap", "xdp_devmap", "xdp/devmap", "0.1.0"),
        ("sk_lookup/dispatch", "sk_lookup/", "sk_lookup", "1.0.0"),
        ("maps", "maps", ".maps", "1.0.0"),
    ],
)
def test_removed_name(name: str, old: str, replacement: str, removed_in: str) -> None:
    found = removed_name(name)
    assert found is not None
    assert found.name == old
    assert found.replacement[0] == replacement
    assert found.removed_in == Version.parse(removed_in)


@pytest.mark.parametrize("name", ["xdp", "xdp/devmap", "xdp_cpumap", "sk_lookup", ".maps", "map"])
def test_not_removed(name: str) -> None:
    assert removed_name(name) is None


# --- did you mean -----------------------------------------------------------------------


def test_edit_distance() -> None:
    assert edit_distance("kprobe", "kprobe") == 0
    assert edit_distance("kprobes", "kprobe") == 1
    assert edit_distance("kpobre", "kprobe") == 2
    assert edit_distance("kporbe", "kprobe") == 1  # a swap counts once
    assert edit_distance("", "abc") == 3
    assert edit_distance("abc", "") == 3


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("kprobes/do_unlinkat", ["kprobe/do_unlinkat"]),
        ("?kprobes/do_unlinkat", ["?kprobe/do_unlinkat"]),
        ("tcx", ["tcx/ingress", "tcx/egress"]),
        ("tcx/foo", ["tcx/ingress", "tcx/egress"]),
        ("netkit", ["netkit/primary", "netkit/peer"]),
        ("cgroup/sock_ops", ["sockops"]),
        ("fentry.do_x", ["fentry/do_x"]),
        ("fentry:do_x", ["fentry/do_x"]),
        ("kprobe.foo", ["kprobe/foo"]),
        ("tp_btfx/y", ["tp_btf/y"]),
        ("??xdp", ["?xdp"]),
        (" xdp", ["xdp"]),
        ("XDP", ["xdp"]),
        ("Kprobe/x", ["kprobe/x"]),
        ("xdp_prog", ["xdp"]),
        ("socket1", ["socket"]),
        ("sk_lookup/dispatch", ["sk_lookup"]),
        ("xdp_devmap/x", ["xdp/devmap", "xdp.frags/devmap"]),
        ("kprobe.s/f", ["kprobe/f"]),
        ("xdp.s", ["xdp"]),
        ("classifer", ["classifier"]),
        ("cgroups/dev", ["cgroup/dev"]),
        ("uprobe.mult//bin/x:f", ["uprobe.multi//bin/x:f"]),
    ],
)
def test_did_you_mean(name: str, expected: list[str]) -> None:
    assert did_you_mean(name, UPGRADE) == expected


def test_did_you_mean_suffix_on_exact_name() -> None:
    assert did_you_mean("xdp/foo", UPGRADE)[0] == "xdp"
    assert did_you_mean("tc/foo", UPGRADE)[0] == "tc"


@pytest.mark.parametrize("name", ["kprobe/x", "xdp", "kprobe.single/x", "tp.s/a/b", "foo", "k/x"])
def test_did_you_mean_has_nothing_for_known_or_far_names(name: str) -> None:
    assert did_you_mean(name, V17) == []


def test_did_you_mean_respects_target() -> None:
    assert did_you_mean("kprobe.singel/f", UPGRADE) == ["kprobe.single/f"]
    for target in ("0.8", "1.0", "1.7", "1.8"):
        suggestions = did_you_mean("kprobe.singel/f", Target.parse(target))
        assert not any(".single" in text for text in suggestions)
    assert did_you_mean("tcx", Target.parse("1.2")) == ["tc"]  # no tcx before 1.3
    assert "raw_tp.s/y" not in did_you_mean("raw_tp.x/y", V17)
    assert "raw_tp.s/y" in did_you_mean("raw_tp.x/y", UPGRADE)


def test_did_you_mean_suggestions_match() -> None:
    for name in ("kprobes/f", "tcx", "fentry.x", "??xdp", "lsmx/file_open", "iters/task"):
        for target in (UPGRADE, V17, Target.parse("1.0")):
            for suggestion in did_you_mean(name, target):
                assert match(suggestion, target) is not None, (name, target, suggestion)
