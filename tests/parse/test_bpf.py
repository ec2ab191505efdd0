"""Extraction of section sites from BPF C sources."""

from __future__ import annotations

import pytest

from secl.parse.bpf import extract_sites


def sites(src: str | bytes, path: str = "x.bpf.c"):
    data = src.encode() if isinstance(src, str) else src
    return extract_sites(path, data)


def one(src: str | bytes):
    found = sites(src)
    assert len(found) == 1, found
    return found[0]


def test_plain_program():
    s = one('SEC("kprobe/do_unlinkat")\nint handle(struct pt_regs *ctx)\n{\n\treturn 0;\n}\n')
    assert (s.kind, s.program, s.section, s.section_text) == (
        "program",
        "handle",
        "kprobe/do_unlinkat",
        '"kprobe/do_unlinkat"',
    )
    assert (s.span.start.row, s.span.start.column) == (1, 5)
    assert s.name_span is not None and s.name_span.start.row == 2
    assert s.body is not None and s.branch is None and not s.template and not s.is_static


@pytest.mark.parametrize(
    "wrapper", ["BPF_KPROBE", "BPF_KRETPROBE", "BPF_UPROBE", "BPF_URETPROBE", "BPF_KSYSCALL",
                "BPF_PROG", "BPF_PROG2", "BPF_USDT", "BPF_STRUCT_OPS"],
)  # fmt: skip
def test_wrapper_macros_name_the_program(wrapper):
    s = one(f'SEC("kprobe/f")\nint {wrapper}(my_prog, int a, long b)\n{{\n\treturn 0;\n}}\n')
    assert s.program == "my_prog"


def test_wrapper_with_only_the_name():
    assert (
        one('SEC("tp_btf/sched_switch")\nint BPF_PROG(on_switch)\n{ return 0; }\n').program
        == "on_switch"
    )


def test_all_caps_function_with_real_parameters_keeps_its_name():
    assert (
        one('SEC("xdp")\nint XDP_PASS_ALL(struct xdp_md *ctx) { return 2; }\n').program
        == "XDP_PASS_ALL"
    )


def test_annotations_between_site_and_function():
    src = (
        'SEC("cgroup/skb")\n__description("spin_lock: test1 success")\n'
        '__success __failure_unpriv __msg_unpriv("")\n__retval(0)\n'
        '__naked void spin_lock_test1_success(void)\n{\n\tasm volatile ("r0 = 0; exit;" ::: __clobber_all);\n}\n'
    )
    s = one(src)
    assert (s.kind, s.program, s.section) == ("program", "spin_lock_test1_success", "cgroup/skb")


def test_attribute_after_parameters():
    s = one('SEC("xdp")\nint f(struct xdp_md *ctx) __attribute__((noinline))\n{ return 0; }\n')
    assert s.program == "f"


def test_static_program_function():
    s = one('SEC("xdp")\nstatic int f(struct xdp_md *ctx)\n{ return 0; }\n')
    assert s.is_static
    s = one(
        'SEC("xdp")\n__success\nstatic __always_inline int g(struct xdp_md *ctx)\n{ return 0; }\n'
    )
    assert s.is_static and s.program == "g"
    s = one(
        'SEC("xdp")\n__description("static things")\nint h(struct xdp_md *ctx)\n{ return 0; }\n'
    )
    assert not s.is_static


def test_data_sections():
    src = (
        'char LICENSE[] SEC("license") = "GPL";\n'
        'struct {\n\t__uint(type, BPF_MAP_TYPE_HASH);\n\t__uint(max_entries, 8);\n} counts SEC(".maps");\n'
        'const volatile int debug SEC(".rodata") = 0;\n'
        'SEC(".maps") struct {\n\t__uint(type, BPF_MAP_TYPE_SOCKMAP);\n} socks, more;\n'
        'struct bpf_map_def SEC("maps") legacy = { .type = 1 };\n'
    )
    got = [(s.kind, s.symbol, s.section) for s in sites(src)]
    assert got == [
        ("data", "LICENSE", "license"),
        ("data", "counts", ".maps"),
        ("data", "debug", ".rodata"),
        ("data", "socks", ".maps"),
        ("data", "legacy", "maps"),
    ]


def test_attribute_section_in_either_position():
    src = (
        '__attribute__((section("xdp"), used)) int f(struct xdp_md *ctx) { return 0; }\n'
        'int __attribute__((section("tc"))) g(void *ctx) { return 0; }\n'
        'char lic[] __attribute__((section("license"))) = "GPL";\n'
    )
    got = [(s.macro, s.kind, s.program or s.symbol, s.section) for s in sites(src)]
    assert got == [
        ("section", "program", "f", "xdp"),
        ("section", "program", "g", "tc"),
        ("section", "data", "lic", "license"),
    ]


def test_a_call_named_section_is_not_a_site():
    assert (
        sites(
            'int f(void) { return section("kprobe/x"); }\nSEC("xdp") int g(void *c) { return 0; }\n'
        )[0].section
        == "xdp"
    )
    assert len(sites('int f(void) { return section("kprobe/x"); }\n')) == 0


def test_concatenation_and_macro_pieces():
    s = one('SEC("kprobe/" "do_" "unlinkat")\nint f(void *ctx) { return 0; }\n')
    assert s.section == "kprobe/do_unlinkat" and [p.kind for p in s.pieces] == ["literal"] * 3
    s = one('SEC("kprobe/" SYS_PREFIX "sys_nanosleep")\nint BPF_KPROBE(f) { return 0; }\n')
    assert s.section is None and s.section_text == '"kprobe/" SYS_PREFIX "sys_nanosleep"'
    assert [p.kind for p in s.pieces] == ["literal", "macro", "literal"]
    assert s.pieces[0].value == "kprobe/" and s.pieces[0].span.start.column == 5
    s = one("SEC(MY_SECTION)\nint f(void *ctx) { return 0; }\n")
    assert s.section is None and s.program == "f"
    s = one("SEC(STR(kprobe/x))\nint f(void *ctx) { return 0; }\n")
    assert s.section is None and s.pieces[0].text == "STR(kprobe/x)"


def test_escapes_are_decoded():
    assert one('SEC("kprobe/\\x66oo")\nint f(void *ctx) { return 0; }\n').section == "kprobe/foo"


def test_branches():
    src = (
        "#ifdef USE_MULTI\n"
        'SEC("kprobe.multi/do_*")\n'
        "#elif defined(OLD) && OLD > 2\n"
        'SEC("kprobe/do_old")\n'
        "#else\n"
        'SEC("kprobe/do_x")\n'
        "#endif\n"
        "int BPF_KPROBE(handle)\n{\n\treturn 0;\n}\n"
        '#if 0\nSEC("xdp") int dead(void *c) { return 0; }\n#endif\n'
    )
    got = [(s.section, s.program, s.branch) for s in sites(src)]
    assert got == [
        ("kprobe.multi/do_*", "handle", "defined(USE_MULTI)"),
        ("kprobe/do_old", "handle", "!defined(USE_MULTI) && defined(OLD) && OLD > 2"),
        ("kprobe/do_x", "handle", "!defined(USE_MULTI) && !(defined(OLD) && OLD > 2)"),
        ("xdp", "dead", "0"),
    ]


def test_include_guard_is_not_a_branch():
    src = (
        '#ifndef __PROBES_H\n#define __PROBES_H\nSEC("xdp") int f(void *c) { return 0; }\n#endif\n'
    )
    assert one(src).branch is None


def test_templates_in_defines():
    src = (
        '#define KPROBE(fn) SEC("kprobe/" #fn) int BPF_KPROBE(fn)\n'
        "#define SEC(name) __attribute__((section(name), used))\n"
        '#define MY_SEC SEC("xdp")\n'
    )
    got = [(s.template, s.template_macro, s.section_text, s.section) for s in sites(src)]
    assert got == [
        (True, "KPROBE", '"kprobe/" #fn', None),
        (True, "MY_SEC", '"xdp"', "xdp"),
    ]


def test_section_macro_defined_in_the_file_is_followed():
    src = '#define __sec(x) __attribute__((section(x), used))\n__sec("xdp") int f(void *c) { return 0; }\n'
    got = [(s.macro, s.program, s.section) for s in sites(src)]
    assert got == [("__sec", "f", "xdp")]


def test_nothing_from_comments_or_strings():
    src = (
        '// SEC("kprobe/a")\n/* SEC("kprobe/b")\n int f(void) {} */\n'
        'const char *s = "SEC(\\"kprobe/c\\")";\n'
        'SEC("xdp") int real(void *c) { return 0; }\n'
    )
    assert [s.section for s in sites(src)] == ["xdp"]


def test_columns_count_characters_and_crlf_is_fine():
    src = '/* é */ SEC("xdp")\r\nint f(void *c)\r\n{\r\n\treturn 0;\r\n}\r\n'.encode()
    s = one(src)
    assert (s.span.start.row, s.span.start.column) == (1, 13) and s.program == "f"


def test_bom_and_non_utf8_bytes():
    s = one(b'\xef\xbb\xbfSEC("xdp")\nint f(void *c) { return 0; /* \xff\xfe */ }\n')
    assert s.section == "xdp" and s.program == "f"
    s = one(b'/* caf\xe9 */\nSEC("tc")\nint g(void *c) { return 0; }\n')
    assert s.section == "tc" and s.program == "g"


def test_prototype_is_not_a_program():
    assert one('SEC("xdp") int f(void *ctx);\n').kind == "prototype"


def test_two_sites_in_a_row_do_not_share_a_function():
    got = [
        (s.kind, s.program) for s in sites('SEC("xdp")\nSEC("tc")\nint f(void *c) { return 0; }\n')
    ]
    assert got == [("unknown", None), ("program", "f")]


def test_mostly_error_nodes_do_not_crash():
    src = '}}}} ((( SEC("xdp") int f(void *c) { return 0; } ]]] #### \n' * 50
    assert all(s.section == "xdp" for s in sites(src))


def test_files_without_sites_are_not_parsed():
    assert sites(b"int main(void) { return 0; }\n") == []
