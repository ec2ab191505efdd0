"""Skeleton names pasted by function-like macros (C11 6.10.3: parameters replaced, `##`
joined, the result rescanned)."""

from __future__ import annotations

from secl.parse.pasted import macros_that_open, pasted_skeletons

HEADER = rb"""
#define __OPEN(name, t, suffix) ({                              \
	struct name##_tool_##suffix *__skel;                    \
	t->skel = __skel = name##_tool_##suffix##__open();      \
	t->name_str = #name;                                    \
})
#define OPEN(name, t) ({                                        \
	if (legacy)                                             \
		__OPEN(name, t, bpf_legacy);                    \
	else                                                    \
		__OPEN(name, t, bpf);                           \
})
#define LOG(fmt, x) printf(fmt, x)
"""


def test_nested_macros_paste_every_variant() -> None:
    macros = macros_that_open([HEADER])
    assert set(macros) == {b"__OPEN", b"OPEN"}
    loader = b'#include "tool.h"\nint init(struct t *t)\n{\n\treturn OPEN(tcp_buffer, t);\n}\n'
    assert pasted_skeletons(loader, macros) == {"tcp_buffer_tool_bpf", "tcp_buffer_tool_bpf_legacy"}


def test_definitions_and_unreadable_arguments_name_nothing() -> None:
    macros = macros_that_open([HEADER])
    assert pasted_skeletons(HEADER, macros) == set()  # the definitions themselves
    loader = b'int init(struct t *t)\n{\n\treturn OPEN(names[i], t) + LOG("%d", 1);\n}\n'
    assert pasted_skeletons(loader, macros) == set()


# Two probes define `LOAD_PROBE` each their own way: one opens (pasting `__open`), the other
# only attaches; a third file's own macro calls the header's `OPEN`.
OPENS = rb"#define LOAD_PROBE(p) p##_bpf__open_and_load()" + b"\n"
ATTACHES = rb"#define LOAD_PROBE(p) p##_bpf__attach(p##_skel)" + b"\n"


def test_the_definition_that_opens_stands_for_a_name_defined_twice() -> None:
    for order in ([ATTACHES, OPENS], [OPENS, ATTACHES]):
        macros = macros_that_open(order)
        assert set(macros) == {b"LOAD_PROBE"}
        assert pasted_skeletons(b"int f(void) { LOAD_PROBE(tcp); }\n", macros) == {"tcp_bpf"}
    # a file with its own definition expands that one
    mine = ATTACHES + b"int f(void) { LOAD_PROBE(tcp); }\n"
    assert pasted_skeletons(mine, macros_that_open([OPENS, ATTACHES])) == set()


def test_a_files_own_macro_over_one_that_opens() -> None:
    loader = (
        b"#define __LOAD(p, t) \\\n\tINIT(p); \\\n\tOPEN(p, t)\n"
        b"int init(struct t *t)\n{\n\t__LOAD(kern_sock, t);\n\treturn 0;\n}\n"
    )
    macros = macros_that_open([HEADER])
    assert pasted_skeletons(loader, macros) == {"kern_sock_tool_bpf", "kern_sock_tool_bpf_legacy"}
