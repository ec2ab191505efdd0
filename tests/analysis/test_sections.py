"""SECL0xx notes and SECL1xx section-name rules, through the analysis API."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.catalogue_harness import run_example


def codes(
    tmp_path: Path, files: dict[str, str], target: str | None = None
) -> list[tuple[str, int, str]]:
    return [
        (f.code, f.span.start.row, f.program or "")
        for f in run_example(tmp_path, files, target)
        if f.code.startswith(("SECL0", "SECL1"))
    ]


def prog(section: str, name: str = "p", static: bool = False) -> str:
    return f'SEC("{section}")\n{"static " if static else ""}int {name}(void *ctx)\n{{\n\treturn 0;\n}}\n'


@pytest.mark.parametrize(
    ("section", "code"),
    [
        ("kprobes/do_unlinkat", "SECL101"),
        (" xdp", "SECL101"),
        ("XDP", "SECL101"),
        ("kprobe.s/do_x", "SECL101"),
        ("tcx", "SECL101"),
        ("cgroup/sock_ops", "SECL101"),
        ("xdp/my_prog", "SECL102"),
        ("sk_skb1", "SECL102"),
        ("tc/foo", "SECL102"),
        ("kretprobe/f+8", "SECL104"),
        ("kprobe/", "SECL104"),
        ("tp/sched", "SECL104"),
        ("raw_tp/", "SECL104"),
        ("usdt/bin:prov", "SECL104"),
        ("uprobe.multi//bin/x", "SECL104"),
        ("kprobe/foo-bar", "SECL105"),
        ("kprobe/mod:func", "SECL105"),
        ("uprobe/usr/lib/libc.so.6:malloc", "SECL106"),
        ("usdt.s", "SECL107"),
        ("xdp_devmap/x", "SECL108"),
        ("sk_lookup/dispatch", "SECL108"),
        ("??xdp", "SECL110"),
        ("tp_btf/btf_trace_sched_switch", "SECL112"),
        ("iter/bpf_iter_task", "SECL112"),
    ],
)
def test_bad_names(tmp_path, section, code):
    assert codes(tmp_path, {"x.bpf.c": prog(section)}) == [(code, 1, "p")]


@pytest.mark.parametrize(
    "section",
    ["kprobe/do_unlinkat", "kprobe", "?kprobe/f", "kretprobe/f", "kprobe/f+0x10", "uprobe",
     "uprobe//usr/lib/libc.so.6:malloc", "uprobe/libc.so.6:malloc+16", "usdt//bin/x:p:n",
     "tp/sched/sched_switch", "raw_tp/sched_switch", "fentry/do_unlinkat", "lsm/file_open",
     "xdp", "xdp.frags", "xdp/devmap", "tc", "tc/ingress", "tcx/egress", "cgroup/skb",
     "sk_lookup", "struct_ops/x", "kprobe.multi/tcp_*", "kprobe.session/f", "ksyscall/openat",
     "uprobe.session//bin/x:f", "kprobe.single/f", "?uretprobe.single"],
)  # fmt: skip
def test_good_names(tmp_path, section):
    assert codes(tmp_path, {"x.bpf.c": prog(section)}) == []


def test_data_sections_are_never_unknown(tmp_path):
    src = 'char LICENSE[] SEC("license") = "GPL";\nint x SEC(".data.counters") = 0;\nint y SEC("whatever") = 1;\n'
    assert codes(tmp_path, {"x.bpf.c": src}) == []


def test_legacy_maps_section(tmp_path):
    src = 'struct bpf_map_def SEC("maps") m = { .type = 1 };\n'
    assert codes(tmp_path, {"x.bpf.c": src}) == [("SECL108", 1, "")]
    assert codes(tmp_path, {"x.bpf.c": src}, target="0.8") == []


def test_needs_newer_libbpf(tmp_path):
    files = {"x.bpf.c": prog("tc/ingress") + prog("kprobe", "q") + prog("?xdp", "r")}
    assert codes(tmp_path, files, target="1.2") == [("SECL109", 1, "p")]
    assert codes(tmp_path, files, target="0.7") == [
        ("SECL109", 1, "p"), ("SECL109", 6, "q"), ("SECL109", 11, "r"),
    ]  # fmt: skip
    assert codes(tmp_path, files, target="1.3") == []


def test_single_under_numbered_target_is_never_a_typo(tmp_path):
    findings = run_example(tmp_path, {"x.bpf.c": prog("kprobe.single/f")}, "1.7")
    assert [f.code for f in findings] == ["SECL109"]
    assert "proposed" in findings[0].message and findings[0].fix is None


def test_static_program(tmp_path):
    assert codes(tmp_path, {"x.bpf.c": prog("xdp", static=True)}) == [("SECL111", 1, "p")]


def test_unresolved_site_gets_only_the_note(tmp_path):
    src = 'SEC("kprobes/" SYS_PREFIX "sys_x")\nint BPF_KPROBE(p)\n{\n\treturn 0;\n}\n'
    assert codes(tmp_path, {"x.bpf.c": src}) == [("SECL001", 1, "p")]


def test_templates_are_not_programs(tmp_path):
    src = '#define KPROBE(fn) SEC("kprobes/" #fn)\n#define BAD SEC("xdp/foo")\n'
    assert codes(tmp_path, {"x.bpf.c": src}) == []


def test_branch_is_named_in_the_finding(tmp_path):
    src = "#ifdef LEGACY\n" + prog("xdp_devmap/x") + "#endif\n"
    (finding,) = run_example(tmp_path, {"x.bpf.c": src})
    assert finding.code == "SECL108" and finding.notes == ("only when `defined(LEGACY)`",)


def test_custom_handlers_claim_names_for_their_loader_only(tmp_path):
    loader = (
        '#include "mine.skel.h"\nint main(void) {\n'
        '\tlibbpf_register_prog_handler("mine+", BPF_PROG_TYPE_KPROBE, 0, NULL);\n'
        "\treturn !mine__open_and_load();\n}\n"
    )
    other = '#include "theirs.skel.h"\nint main(void) { return !theirs__open_and_load(); }\n'
    files = {
        "mine.bpf.c": prog("mine/x"), "theirs.bpf.c": prog("mine/x"), "loader.c": loader,
        "other.c": other,
    }  # fmt: skip
    got = codes(tmp_path, files)
    assert ("SECL101", 1, "p") in got and len(got) == 1
    assert all(
        f.path.endswith("theirs.bpf.c") for f in run_example(tmp_path, files) if f.code == "SECL101"
    )


def test_fallback_handler_and_set_type_accept_unknown_names(tmp_path):
    fallback = '#include "a.skel.h"\nint main(void) { libbpf_register_prog_handler(NULL, 1, 0, NULL); return !a__open(); }\n'
    assert codes(tmp_path, {"a.bpf.c": prog("weird_name"), "a.c": fallback}) == []
    set_type = '#include "b.skel.h"\nint main(void) { struct b *s = b__open(); bpf_program__set_type(s->progs.p, 5); return 0; }\n'
    assert codes(tmp_path, {"b.bpf.c": prog("dummy_tracepoint"), "b.c": set_type}) == []


def test_autoload_off_accepts_unknown_names(tmp_path):
    loader = (
        '#include "c.skel.h"\nint main(void) {\n\tstruct c *skel = c__open();\n'
        "\tbpf_program__set_autoload(skel->progs.p, false);\n\treturn c__load(skel);\n}\n"
    )
    assert codes(tmp_path, {"c.bpf.c": prog("encap_gre"), "c.c": loader}) == []


def test_objects_for_other_loaders_are_left_alone(tmp_path):
    files = {"lwt.bpf.c": prog("encap_gre") + prog("encap_vxlan", "q")}
    assert codes(tmp_path, files) == []
    # ...but a typo next to real libbpf programs is reported
    files = {"lwt.bpf.c": prog("encap_gre") + prog("xdp", "q")}
    assert codes(tmp_path, files) == [("SECL101", 1, "p")]


def test_btf_target_required_needs_a_loader_in_view(tmp_path):
    assert codes(tmp_path, {"t.bpf.c": prog("fentry")}) == []
    loader = '#include "t.skel.h"\nint main(void) { return !t__open_and_load(); }\n'
    assert codes(tmp_path, {"t.bpf.c": prog("fentry"), "t.c": loader}) == [("SECL113", 1, "p")]
    assert codes(tmp_path, {"t.bpf.c": prog("?fentry"), "t.c": loader}) == []


def test_suppressions_and_stale_suppressions(tmp_path):
    src = (
        'SEC("xdp/a") // secl: ignore[SECL102]\nint a(void *c) { return 0; }\n'
        '/* secl: ignore */\nSEC("xdp/b")\nint b(void *c) { return 0; }\n'
        'SEC("xdp") // secl: ignore[SECL101]\nint c(void *c) { return 0; }\n'
    )
    assert codes(tmp_path, {"x.bpf.c": src}) == [("SECL003", 6, "")]


def test_fixes(tmp_path):
    findings = run_example(tmp_path, {"x.bpf.c": prog("??xdp") + prog("kprobes/f", "q")})
    fixes = {f.code: (f.fix.applicability, f.fix.edits[0].content) for f in findings if f.fix}
    assert fixes == {"SECL110": ("safe", '"?xdp"'), "SECL101": ("unsafe", '"kprobe/f"')}


def test_sleepable_calls(tmp_path):
    body = "\tchar b[8];\n\tbpf_copy_from_user(b, 8, 0);\n\treturn 0;\n"
    src = (
        f'SEC("lsm/file_open")\nint BPF_PROG(a, struct file *f)\n{{\n{body}}}\n'
        f'SEC("lsm.s/file_open")\nint BPF_PROG(b, struct file *f)\n{{\n{body}}}\n'
        f'SEC("kprobe/f")\nint BPF_KPROBE(c)\n{{\n{body}}}\n'
        f'SEC("?fentry/f")\nint BPF_PROG(d)\n{{\n{body}}}\n'
        'SEC("fentry/f")\nint BPF_PROG(e)\n{\n\t/* bpf_copy_from_user(b, 8, 0); */\n\treturn 0;\n}\n'
    )
    findings = [f for f in run_example(tmp_path, {"x.bpf.c": src}) if f.code == "SECL114"]
    assert [(f.program, f.fix.edits[0].content if f.fix else None) for f in findings] == [
        ("a", '"lsm.s/file_open"'),
        ("c", None),
    ]
    loader = '#include "x.skel.h"\nint main(void) { struct x *s = x__open();\n bpf_program__set_flags(s->progs.a, BPF_F_SLEEPABLE); return 0; }\n'
    findings = run_example(tmp_path, {"x.bpf.c": src, "x.c": loader})
    assert [f.program for f in findings if f.code == "SECL114"] == []


def test_unreferenced_struct_ops(tmp_path):
    progs = prog("struct_ops/a", "a") + prog("struct_ops/b", "b")
    maps = 'SEC(".struct_ops")\nstruct ops o = {\n\t.a = (void *)a,\n};\n'
    assert codes(tmp_path, {"x.bpf.c": progs + maps}) == [("SECL115", 6, "b")]
    # no map in the file, or members filled by a macro: nothing secl can be sure of
    assert codes(tmp_path, {"x.bpf.c": progs}) == []
    macro_maps = 'SEC(".struct_ops")\nstruct ops o = {\n\tF(a),\n};\n'
    assert codes(tmp_path, {"x.bpf.c": progs + macro_maps}) == []


def test_attach_suffix_problems_need_auto_attach(tmp_path):
    bpf = prog("uretprobe/readline")
    manual = (
        '#include "r.skel.h"\nint main(void) {\n\tstruct r_bpf *obj = r_bpf__open_and_load();\n'
        '\tobj->links.p = bpf_program__attach_uprobe(obj->progs.p, true, -1, "/bin/bash", 0x1234);\n'
        "\treturn 0;\n}\n"
    )
    # attached by hand only: libbpf never parses the suffix
    assert codes(tmp_path / "a", {"r.bpf.c": bpf, "r.c": manual}) == []
    auto = manual.replace("\treturn 0;", "\tr_bpf__attach(obj);\n\treturn 0;")
    # the link stored by hand first: the skeleton's attach skips the program (libbpf.c
    # bpf_object__attach_skeleton(), since v0.8: "if user already set the link manually,
    # don't attempt auto-attach")
    assert codes(tmp_path / "s", {"r.bpf.c": bpf, "r.c": auto}) == []
    auto = auto.replace("obj->links.p = ", "struct bpf_link *l = ")
    assert codes(tmp_path / "b", {"r.bpf.c": bpf, "r.c": auto}) == [("SECL104", 1, "p")]
    # no loader in view: it may be auto-attached
    assert codes(tmp_path / "c", {"only.bpf.c": bpf}) == [("SECL104", 1, "p")]
