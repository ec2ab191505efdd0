"""Include directories from what the build passes when it compiles the BPF C (Makefiles,
CMake, bpf2go, libbpf-cargo build scripts), and an include no directory resolves found by a
unique path suffix (secl.parse.includes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from secl.api import load
from secl.cli import main
from secl.config import Config
from secl.parse.buildfiles import read_build_file
from secl.parse.includes import bpf2go_includes, suffix_key
from tests.catalogue_harness import write_files

# A framework header (a bare name: never looked for by its path suffix) whose macro writes the section around the program's name, as
# sched_ext's BPF_STRUCT_OPS does: without the header, no program is seen at all.
HEADER = """
#define OPS(name, args...) SEC("struct_ops/" #name) int name(args)
"""
SOURCE = """
#include <fw_common.bpf.h>

void OPS(demo_enqueue, void *p)
{
}
"""
MAKEFILE = """
CURDIR := $(abspath .)
OUT := $(CURDIR)/build
BPF_CFLAGS = -g -I$(CURDIR)/include -I$(OUT)/include -Wall
CFLAGS = -O2 -I$(CURDIR)/user

$(OUT)/%.bpf.o: %.bpf.c
\t$(CLANG) $(BPF_CFLAGS) -target bpf -c $< -o $@

demo: demo.c
\t$(CC) $(CFLAGS) -c demo.c -o demo.o
"""


def _programs(root: Path) -> dict[str, str | None]:
    run = load([str(root)], Config())
    return {
        s.program: s.section
        for s in run.project.sites
        if s.kind == "program" and not s.template and s.program
    }


def test_makefile_bpf_recipe_gives_the_include_dirs(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {"include/fw_common.bpf.h": HEADER, "demo.bpf.c": SOURCE, "Makefile": MAKEFILE},
    )
    assert _programs(tmp_path) == {"demo_enqueue": "struct_ops/demo_enqueue"}


def test_without_the_makefile_the_header_is_not_found(tmp_path: Path) -> None:
    write_files(tmp_path, {"include/fw_common.bpf.h": HEADER, "demo.bpf.c": SOURCE})
    assert _programs(tmp_path) == {}


def test_flags_of_a_user_space_compile_are_not_taken(tmp_path: Path) -> None:
    # The same -I on the loader's compile line only: not what the BPF C is built with.
    makefile = MAKEFILE.replace("-I$(CURDIR)/include -I", "-I").replace(
        "-I$(CURDIR)/user", "-I$(CURDIR)/include"
    )
    write_files(
        tmp_path,
        {"include/fw_common.bpf.h": HEADER, "demo.bpf.c": SOURCE, "Makefile": makefile},
    )
    assert _programs(tmp_path) == {}


def test_a_rule_applies_to_the_sources_it_compiles(tmp_path: Path) -> None:
    makefile = MAKEFILE.replace("$(OUT)/%.bpf.o: %.bpf.c", "$(OUT)/%.bpf.o: other/%.bpf.c")
    write_files(
        tmp_path,
        {"include/fw_common.bpf.h": HEADER, "demo.bpf.c": SOURCE, "Makefile": makefile},
    )
    assert _programs(tmp_path) == {}


def test_makefile_include_pairs() -> None:
    build = read_build_file("/p/Makefile", MAKEFILE.encode())
    # Unknown directories ($(OUT) is not in the checkout) are left out; CURDIR is `.`.
    assert build.includes == (("%.bpf.c", "include"), ("%.bpf.c", "build/include"))


def test_llc_pipeline_and_separate_i_words() -> None:
    makefile = (
        "INC = -I $(obj)/x -I include\n"
        "bpf/%.o: src/%.c\n"
        "\t$(CLANG) $(INC) -O2 -emit-llvm -c $< -o -| $(LLC) -march=bpf -filetype=obj -o $@\n"
    )
    build = read_build_file("/p/Makefile", makefile.encode())
    assert build.includes == (("src/%.c", "include"),)


def test_cmake_custom_command_compiling_for_bpf(tmp_path: Path) -> None:
    cmake = """
add_custom_command(OUTPUT demo.bpf.o
  COMMAND clang -g -O2 -target bpf -I${CMAKE_CURRENT_SOURCE_DIR}/include
          -I${GENERATED}/vmlinux -c ${CMAKE_CURRENT_SOURCE_DIR}/demo.bpf.c -o demo.bpf.o
  DEPENDS demo.bpf.c)
add_executable(demo demo.c)
target_include_directories(demo PRIVATE user)
"""
    write_files(
        tmp_path,
        {"include/fw_common.bpf.h": HEADER, "demo.bpf.c": SOURCE, "CMakeLists.txt": cmake},
    )
    assert _programs(tmp_path) == {"demo_enqueue": "struct_ops/demo_enqueue"}


def test_cmake_relative_dirs_of_a_custom_command_are_the_build_directorys() -> None:
    # A custom command runs in the build directory unless told otherwise.
    cmake = "add_custom_command(OUTPUT a.o COMMAND clang -target bpf -Iinclude -c a.bpf.c)\n"
    assert read_build_file("/p/CMakeLists.txt", cmake.encode()).includes == ()
    cmake = cmake.replace("OUTPUT a.o", "OUTPUT a.o WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}")
    assert read_build_file("/p/CMakeLists.txt", cmake.encode()).includes == (
        ("a.bpf.c", "include"),
    )


def test_cmake_target_built_for_bpf() -> None:
    cmake = """
set(CMAKE_C_FLAGS "-O2 -target bpf")
include_directories(common)
add_library(xdp OBJECT xdp.c)
target_include_directories(xdp PUBLIC ${SRC} headers)
"""
    build = read_build_file("/p/CMakeLists.txt", cmake.encode())
    assert build.includes == (("xdp.c", "common"), ("xdp.c", "headers"))
    # Only the target compiled for BPF, when its own options say so.
    cmake = """
include_directories(common)
add_library(xdp OBJECT xdp.c)
add_executable(loader loader.c)
target_compile_options(xdp PRIVATE -O2 --target=bpf)
"""
    build = read_build_file("/p/CMakeLists.txt", cmake.encode())
    assert build.includes == (("xdp.c", "common"),)


def test_meson_custom_target_compiling_for_bpf() -> None:
    meson = """
bpf_o = custom_target('demo',
  input: 'src/demo.bpf.c',
  output: 'demo.bpf.o',
  command: [clang, '-g', '-target', 'bpf', '-I@CURRENT_SOURCE_DIR@/include', '-Ibuild',
            '-c', '@INPUT@', '-o', '@OUTPUT@'])
"""
    build = read_build_file("/p/meson.build", meson.encode())
    assert build.includes == (("src/demo.bpf.c", "include"),)


GO_GENERATE = (
    "package demo\n\n"
    '//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc "$BPF_CLANG" "$BPF_STRIP"'
    ' -cflags "-O2 -I../common" probe ../bpf/probe.c -- -I../headers -I../$ARCH -Wall\n'
)


def test_bpf2go_flags_after_the_dashes_and_in_cflags(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "headers/fw_common.bpf.h": HEADER,
            "bpf/probe.c": SOURCE,
            "pkg/gen.go": GO_GENERATE,
            "go.mod": "module x\n\nrequire github.com/cilium/ebpf v0.16.0\n",
        },
    )
    assert _programs(tmp_path) == {"demo_enqueue": "struct_ops/demo_enqueue"}


def test_bpf2go_arguments() -> None:
    args = ["-cc", "clang -Iextra", "-cflags", "-O2 -I ../common", "-target", "amd64",
            "probe", "../bpf/probe.c", "--", "-I../headers", "-Wall"]  # fmt: skip
    # -cc's own words come first (newB2G: append(ccParts[1:], cFlags...))
    assert bpf2go_includes(args) == ("../bpf/probe.c", ["extra", "../common", "../headers"])
    assert bpf2go_includes(["probe"]) is None
    # Words go generate takes from the environment (golang._UNKNOWN_VAR): a whole word before
    # a flag is one flag; a directory built from one is unknown.
    args = ["\x00", "-cflags", "-I a", "p", "x.c", "--", "-I../v/\x00/", "-I", "b"]
    assert bpf2go_includes(args) == ("x.c", ["a", "b"])


def test_cargo_build_script_clang_args(tmp_path: Path) -> None:
    build_rs = """
use libbpf_cargo::SkeletonBuilder;
fn main() {
    SkeletonBuilder::new()
        .source("src/bpf/probe.bpf.c")
        .clang_args([OsStr::new("-I"), OsStr::new("src/include"), vmlinux::include_path_root().as_os_str()])
        .build_and_generate(&out)
        .unwrap();
}
"""
    write_files(
        tmp_path,
        {
            "src/include/fw_common.bpf.h": HEADER,
            "src/bpf/probe.bpf.c": SOURCE,
            "build.rs": build_rs,
            "Cargo.toml": '[package]\nname = "x"\n\n[build-dependencies]\nlibbpf-cargo = "0.24"\n',
            "src/main.rs": 'mod probe { include!("probe.skel.rs"); }\nfn main() {}\n',
        },
    )
    assert _programs(tmp_path) == {"demo_enqueue": "struct_ops/demo_enqueue"}


# -- a unique path suffix ------------------------------------------------------------------

ROOTED = """
#include "proj/lib/consts.h"

SEC(PROG_SEC)
int entry(void *ctx) { return 0; }
"""
CONSTS = '#ifndef PROG_SEC\n#define PROG_SEC "xdp"\n#endif\n'


def test_an_include_rooted_elsewhere_is_found_by_its_unique_suffix(tmp_path: Path) -> None:
    # (the include is rooted at `src/`, not at the project root)
    write_files(tmp_path, {"src/proj/lib/consts.h": CONSTS, "src/proj/lib/bpf/entry.bpf.c": ROOTED})
    assert _programs(tmp_path) == {"entry": "xdp"}


def test_an_include_rooted_at_the_project_root_in_a_one_file_run(tmp_path: Path) -> None:
    write_files(tmp_path, {"proj/lib/consts.h": CONSTS, "proj/lib/bpf/entry.bpf.c": ROOTED})
    run = load([str(tmp_path / "proj/lib/bpf/entry.bpf.c")], Config())
    assert [(s.program, s.section) for s in run.project.sites] == [("entry", "xdp")]


def test_two_files_with_the_suffix_resolve_nothing(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "a/proj/lib/consts.h": CONSTS,
            "b/proj/lib/consts.h": CONSTS.replace("xdp", "tc"),
            "a/proj/lib/bpf/entry.bpf.c": ROOTED,
        },
    )
    assert _programs(tmp_path) == {"entry": None}


def test_suffix_keys() -> None:
    assert suffix_key("proj/lib/x.h") == "proj/lib/x.h"
    assert suffix_key("x.h") is None  # a bare name could be any header
    assert suffix_key("../x/y.h") is None
    assert suffix_key("linux/bpf.h") is None  # system and libbpf headers are the system's
    assert suffix_key("bpf/bpf_helpers.h") is None
    assert suffix_key("katran/lib/bpf/x.h") == "katran/lib/bpf/x.h"


# -- the results cache ---------------------------------------------------------------------


def _cached_runs_follow(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str],
    edited: str,
    broken: str,
) -> None:
    """With the results cache: the program is found; writing `broken` to `edited` (an include
    directory that no longer holds the header) loses it; writing the file back finds it."""
    monkeypatch.delenv("SECL_CACHE_DIR", raising=False)
    write_files(tmp_path, {"pyproject.toml": "[project]\nname = 'x'\n", **files})
    monkeypatch.chdir(tmp_path)

    def sections() -> str:
        assert main(["sections", "--output-format", "concise", "."]) == 0
        return capsys.readouterr().out

    assert "program demo_enqueue" in sections()
    assert (tmp_path / ".secl_cache").is_dir()
    (tmp_path / edited).write_text(broken)
    assert "program demo_enqueue" not in sections()
    (tmp_path / edited).write_text(files[edited])
    assert "program demo_enqueue" in sections()


def test_editing_the_build_file_between_cached_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"include/fw_common.bpf.h": HEADER, "demo.bpf.c": SOURCE, "Makefile": MAKEFILE}
    broken = MAKEFILE.replace("$(CURDIR)/include", "$(CURDIR)/inc")
    _cached_runs_follow(tmp_path, monkeypatch, capsys, files, "Makefile", broken)


def test_editing_a_go_generate_line_between_cached_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The bpf2go flags are kept with the Go file's loader scan in the tree index (secl.index):
    # a changed line is read again.
    files = {
        "headers/fw_common.bpf.h": HEADER,
        "bpf/probe.c": SOURCE,
        "pkg/gen.go": GO_GENERATE,
        "go.mod": "module x\n\nrequire github.com/cilium/ebpf v0.16.0\n",
    }
    broken = GO_GENERATE.replace("-I../headers", "-I../h")
    _cached_runs_follow(tmp_path, monkeypatch, capsys, files, "pkg/gen.go", broken)


def test_cargo_build_script_in_statements_with_a_const_source(tmp_path: Path) -> None:
    build_rs = """
const SRC: &str = "src/bpf/probe.bpf.c";
fn main() {
    let mut builder = SkeletonBuilder::new();
    let builder = builder.source(SRC);
    builder.clang_args(["-Isrc/include"]);
    builder.build_and_generate(&out).unwrap();
}
"""
    write_files(
        tmp_path,
        {
            "src/include/fw_common.bpf.h": HEADER,
            "src/bpf/probe.bpf.c": SOURCE,
            "build.rs": build_rs,
            "Cargo.toml": '[package]\nname = "x"\n\n[build-dependencies]\nlibbpf-cargo = "0.24"\n',
            "src/main.rs": 'mod probe { include!("probe.skel.rs"); }\nfn main() {}\n',
        },
    )
    assert _programs(tmp_path) == {"demo_enqueue": "struct_ops/demo_enqueue"}
