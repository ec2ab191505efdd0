"""Build files of C projects: linked objects, skeleton names, a loader's -D flags."""

from __future__ import annotations

from secl.analysis.builds import object_stem
from secl.parse.buildfiles import default_skeleton_name, read_build_file

MAKEFILE = b"""
OUTPUT := .output
BPFTOOL ?= $(abspath $(OUTPUT)/bpftool/bootstrap/bpftool)
CFLAGS := -g -Wall
UNITS := entry exit
LINKED := $(addprefix $(OUTPUT)/,$(addsuffix .tmp.bpf.o,$(UNITS)))

$(OUTPUT)/%.tmp.bpf.o: %.bpf.c | $(OUTPUT)
\t$(CLANG) -g -O2 -target bpf -c $(filter %.c,$^) -o $@

$(OUTPUT)/tool.bpf.o: $(LINKED) | $(OUTPUT)
\t$(Q)$(BPFTOOL) gen object $@ $^

$(OUTPUT)/tool.skel.h: $(OUTPUT)/tool.bpf.o | $(OUTPUT) $(BPFTOOL)
\t$(Q)$(BPFTOOL) gen skeleton $< name tool_bpf > $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
\t$(BPFTOOL) gen skeleton $< > $@

$(OUTPUT)/attacher.o: CFLAGS += -DSKEL_NAME=tool_bpf -DSKEL_HEADER=tool.skel.h

$(OUTPUT)/%.o: %.c $(wildcard %.h) | $(OUTPUT)
\t$(CC) $(CFLAGS) -c $(filter %.c,$^) -o $@

# a pattern rule with an extra prerequisite
$(OUTPUT)/%.full.bpf.o: $(OUTPUT)/%.tmp.bpf.o $(OUTPUT)/common.tmp.bpf.o
\t$(BPFTOOL) gen object $@ $^

# a name secl cannot read: no guess
$(OUTPUT)/x.skel.h: $(OUTPUT)/x.bpf.o
\t$(BPFTOOL) gen skeleton $< name $(shell cat name.txt) > $@
"""


def test_makefile_links_skeletons_and_loader_flags() -> None:
    build = read_build_file("Makefile", MAKEFILE)
    assert build.linked == (
        (".output/tool.bpf.o", (".output/entry.tmp.bpf.o", ".output/exit.tmp.bpf.o")),
        (".output/%.full.bpf.o", (".output/%.tmp.bpf.o", ".output/common.tmp.bpf.o")),
    )
    assert build.skeletons == (("tool_bpf", ".output/tool.bpf.o"), ("", ".output/%.bpf.o"))
    # the target-specific variable applies to attacher.o only, through the pattern rule
    assert set(build.defines) == {
        ("attacher.c", "SKEL_NAME=tool_bpf"),
        ("attacher.c", "SKEL_HEADER=tool.skel.h"),
    }


def test_selftests_style_linked_skeletons() -> None:
    # tools/testing/selftests/bpf/Makefile: `NAME.skel.h-deps := A.bpf.o B.bpf.o`, linked in
    # a rule whose objects come from a computed variable: only what can be expanded counts.
    build = read_build_file(
        "Makefile",
        b"""
linked_funcs.skel.h-deps := linked_funcs1.bpf.o linked_funcs2.bpf.o
OUT := out
out/linked_funcs.bpf.o: out/linked_funcs1.bpf.o out/linked_funcs2.bpf.o
\t$(BPFTOOL) gen object $@ $^
out/linked_funcs.skel.h: out/linked_funcs.bpf.o
\t$(BPFTOOL) gen skeleton $< name linked_funcs > $@
""",
    )
    assert build.linked == (
        ("out/linked_funcs.bpf.o", ("out/linked_funcs1.bpf.o", "out/linked_funcs2.bpf.o")),
    )
    assert build.skeletons == (("linked_funcs", "out/linked_funcs.bpf.o"),)


def test_cmake_custom_commands_and_definitions() -> None:
    build = read_build_file(
        "CMakeLists.txt",
        b"""
set(BPF_OUT ${CMAKE_CURRENT_BINARY_DIR})
add_custom_command(
  OUTPUT ${BPF_OUT}/tool.bpf.o
  COMMAND ${BPFTOOL} gen object ${BPF_OUT}/tool.bpf.o ${BPF_OUT}/entry.bpf.o ${BPF_OUT}/exit.bpf.o
  DEPENDS entry_bpf exit_bpf)
add_custom_command(
  OUTPUT ${BPF_OUT}/tool.skel.h
  COMMAND bpftool gen skeleton ${BPF_OUT}/tool.bpf.o name tool_bpf > ${BPF_OUT}/tool.skel.h
  VERBATIM)
add_executable(attacher attacher.c main.c)
target_compile_definitions(attacher PRIVATE SKEL_NAME=tool_bpf "SKEL_HEADER=tool.skel.h")
add_compile_definitions(HAVE_MULTI=1)
""",
    )
    assert build.linked == (("tool.bpf.o", ("entry.bpf.o", "exit.bpf.o")),)
    assert build.skeletons == (("tool_bpf", "tool.bpf.o"),)
    assert set(build.defines) == {
        ("attacher.c", "SKEL_NAME=tool_bpf"),
        ("main.c", "SKEL_NAME=tool_bpf"),
        ("attacher.c", "SKEL_HEADER=tool.skel.h"),
        ("main.c", "SKEL_HEADER=tool.skel.h"),
        (None, "HAVE_MULTI=1"),
    }


def test_meson_custom_targets_and_c_args() -> None:
    build = read_build_file(
        "meson.build",
        b"""
tool_obj = custom_target('tool.bpf.o',
  input: [entry_obj, exit_obj, 'entry.bpf.o', 'exit.bpf.o'],
  output: 'tool.bpf.o',
  command: [bpftool, 'gen', 'object', '@OUTPUT@', '@INPUT@'])
tool_skel = custom_target('tool.skel.h',
  input: tool_obj, output: 'tool.skel.h', capture: true,
  command: [bpftool, 'gen', 'skeleton', 'tool.bpf.o', 'name', 'tool_bpf'])
executable('attacher', 'attacher.c', c_args: ['-DSKEL_NAME=tool_bpf'])
""",
    )
    assert build.linked == (("tool.bpf.o", ("entry.bpf.o", "exit.bpf.o")),)
    assert build.skeletons == (("tool_bpf", "tool.bpf.o"),)
    assert build.defines == (("attacher.c", "SKEL_NAME=tool_bpf"),)


def test_names_bpftool_and_build_systems_give() -> None:
    assert default_skeleton_name("out/tool.bpf.o") == "tool_bpf"
    assert default_skeleton_name("probe.o") == "probe"
    assert object_stem("out/x.tmp.bpf.o") == "x"
    assert object_stem("linked_funcs1.bpf.o") == "linked_funcs1"
    assert object_stem("x.bpf.linked3.o") == "x"


def test_a_makefile_too_costly_to_expand_says_nothing_rather_than_stall() -> None:
    from secl.parse import buildfiles

    # Each variable refers to the one before twice: 2**24 references to expand in all.
    lines = ["A0 := x.bpf.o"] + [f"A{i} = $(A{i - 1}) $(A{i - 1})" for i in range(1, 25)]
    lines += ["out.bpf.o: $(A24)", "\tbpftool gen object $@ $^"]
    data = ("\n".join(lines) + "\n").encode()
    assert buildfiles._read_build_file("Makefile", data) == buildfiles.BuildFile("Makefile")
    small = b"tool.bpf.o: a.bpf.o b.bpf.o\n\tbpftool gen object $@ $^\n"
    assert buildfiles._read_build_file("Makefile", small).linked


def test_unknown_directories_keep_the_names_they_prefix() -> None:
    # `$(obj)` is set by the caller of the Makefile (kbuild); the objects' names are known,
    # and a computed variable name (`$($(@F)-deps)`) expands from them.
    text = b"""
SKELS := router.skel.h
router.skel.h-deps := router.bpf.o sample.bpf.o
SKEL_PATHS := $(addprefix $(obj)/,$(SKELS))

$(SKEL_PATHS): $(BPF_OBJS)
\t$(BPFTOOL) gen object $(@:.skel.h=.lbpf.o) $(addprefix $(obj)/,$($(@F)-deps))
\t$(BPFTOOL) gen skeleton $(@:.skel.h=.lbpf.o) name $(notdir $(@:.skel.h=)) > $@
"""
    build = read_build_file("Makefile", text)
    assert build.linked == (("router.lbpf.o", ("router.bpf.o", "sample.bpf.o")),)
    assert build.skeletons == (("router", "router.lbpf.o"),)


def test_executables_and_what_they_are_linked_from() -> None:
    make = read_build_file(
        "Makefile",
        b"tprogs-y += tool\ntool-objs := tool_user.o helpers.o\n"
        b"other: other.o util.o\n\t$(CC) -o $@ $^\n%.o: %.c\n\t$(CC) -c $<\n",
    )
    assert dict(make.executables) == {
        "tool": ("tool_user.o", "helpers.o"),
        "other": ("other.o", "util.o"),
    }
    cmake = read_build_file("CMakeLists.txt", b"add_executable(tool src/tool_user.c)\n")
    assert cmake.executables == (("tool", ("tool_user.c",)),)
    meson = read_build_file("meson.build", b"executable('tool', 'tool_user.c')\n")
    assert meson.executables == (("tool", ("tool_user.c",)),)


def test_a_static_pattern_rule_links_each_target_from_its_own_stem() -> None:
    # `$(TARGETS): %: %_user.c helpers.o`: every target's stem replaces `%` in its inputs
    make = read_build_file(
        "Makefile",
        b"TARGETS := alpha\nTARGETS += beta\n"
        b"$(TARGETS): %: %_user.c helpers.o Makefile\n\t$(CC) -o $@ $<\n"
        b"$(TOOLS): x%: lib%.c\n\t$(CC) -o $@ $<\nTOOLS := xone\n",
    )
    assert dict(make.executables) == {
        "alpha": ("alpha_user.c", "helpers.o"),
        "beta": ("beta_user.c", "helpers.o"),
    }


def test_a_variable_that_refers_to_itself_through_functions_is_not_read() -> None:
    # Expanding it never ends: the file says nothing, and secl does not recurse to death.
    text = b"A = $(A:.c=.o)\nx.skel.h: $(A)\n\t$(BPFTOOL) gen skeleton $(A) > $@\n"
    assert read_build_file("Makefile", text).skeletons == ()
