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
