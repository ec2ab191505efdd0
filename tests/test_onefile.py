"""One-file runs (pre-commit: `secl check FILE...`) say what the whole-tree run says about
the file, for every way the whole-tree linking ties a loader to a BPF source: macro-pasted
skeleton names, objects named by a macro, objects named after the executable (build files),
open wrappers of another file, loaders with an ELF reader of their own, program references
whose skeleton is not shown, headers judged by the sources that include them.

Each test edits a loader (or the file a loader relies on) between runs: the one-file run,
with the results cache warm from the run before, must follow the whole-tree run (without
the cache) each time, and the finding must appear or disappear with the edit. The index
trusts files by their signatures here (RACY_NS = 0), as it does past the racy window."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import secl.api
import secl.index
from secl.cli import main
from tests.catalogue_harness import write_files

BPF = """\
#include <bpf/bpf_helpers.h>
SEC("kprobe/do_unlinkat")
int handle(void *ctx) { return 0; }
"""
# A loader's attach at an offset: SECL201 on the program it reaches.
ATTACH = """\
    LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 0x10);
    bpf_program__attach_kprobe_opts({prog}, "do_unlinkat", &opts);
"""


@pytest.fixture(params=["walked", "git"])
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Path:
    """A project root; `git`: a git work tree listed and searched by git (as a tree of
    GIT_GREP_FROM C files is), its files untracked."""
    monkeypatch.delenv("SECL_CACHE_DIR", raising=False)
    monkeypatch.setattr(secl.index, "RACY_NS", 0)
    monkeypatch.chdir(tmp_path)
    if request.param == "git":
        if shutil.which("git") is None:
            pytest.skip("no git")
        monkeypatch.setattr(secl.index, "GIT_GREP_FROM", 1)
        monkeypatch.setattr(secl.api, "GIT_GREP_FROM", 1)
        subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


def _lines(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    main(["check", "--output-format", "concise", *args])
    return [line for line in capsys.readouterr().out.splitlines() if ": SECL" in line]


def _one_file(capsys: pytest.CaptureFixture[str], path: str) -> list[str]:
    """The findings of `secl check PATH` (cached), checked against the whole-tree run and
    the one-file run without the cache."""
    cached = _lines(capsys, path)
    whole = [line for line in _lines(capsys, "--no-cache", ".") if line.startswith(path + ":")]
    assert cached == whole
    if not (Path.cwd() / ".git" / "HEAD").exists():
        # (Without the cache, a git tree is searched by git for the direct names alone:
        # secl.api._GitCandidates, the path of a large tree run without the cache.)
        assert _lines(capsys, "--no-cache", path) == whole
    return cached


def _loader(body: str, head: str = "#include <bpf/libbpf.h>\n") -> str:
    return f"{head}int main(int argc, char **argv) {{\n{body}    return 0;\n}}\n"


# A program that calls a helper that may sleep: SECL114, unless a loader of its object sets
# BPF_F_SLEEPABLE (secl.analysis.sections.sleepable_call asks the loaders that open the
# object, secl.analysis.sections.loaders_of). The loaders below name no program: nothing
# links them to the source by a program's name.
SLEEPS = """\
#include <bpf/bpf_helpers.h>
SEC("kprobe/do_unlinkat")
int handle(void *ctx)
{
    char buf[8];
    bpf_copy_from_user(buf, sizeof(buf), ctx);
    return 0;
}
"""
SET_SLEEPABLE = """\
    bpf_program__set_flags(bpf_object__next_program(obj, NULL), BPF_F_SLEEPABLE);
    bpf_object__load(obj);
"""


def _sleepable(capsys: pytest.CaptureFixture[str], path: str) -> bool:
    """Whether a loader of `path` makes its program sleepable (no SECL114), as the one-file
    run and the whole-tree run agree."""
    return not any("SECL114" in line for line in _one_file(capsys, path))


BY_MACRO = "    struct bpf_object *obj = bpf_object__open_file(PROBE_OBJ, NULL);\n" + SET_SLEEPABLE


def test_an_object_named_by_a_macro_of_another_file(tree: Path, capsys) -> None:
    write_files(
        tree,
        {
            "bpf/probe.bpf.c": SLEEPS,
            "include/objs.h": '#define PROBE_OBJ "probe.bpf.o"\n',
            "user/main.c": _loader(BY_MACRO, '#include "../include/objs.h"\n'),
        },
    )
    assert _sleepable(capsys, "bpf/probe.bpf.c")
    (tree / "include/objs.h").write_text('#define PROBE_OBJ "other_object.bpf.o"\n')
    assert not _sleepable(capsys, "bpf/probe.bpf.c")
    (tree / "include/objs.h").write_text('#define PROBE_OBJ "probe.bpf.o"\n')
    assert _sleepable(capsys, "bpf/probe.bpf.c")


def _pasted(name: str) -> str:
    body = f"    struct {name} *obj = OPEN({name});\n" + SET_SLEEPABLE
    return _loader(body, '#include "ops.h"\n')


def test_a_skeleton_name_pasted_by_a_macro_of_another_file(tree: Path, capsys) -> None:
    write_files(
        tree,
        {
            "bpf/probe.bpf.c": SLEEPS,
            "user/ops.h": "#define OPEN(p) p##__open_and_load()\n",
            "user/main.c": _pasted("probe"),
        },
    )
    assert _sleepable(capsys, "bpf/probe.bpf.c")
    (tree / "user/main.c").write_text(_pasted("other_skeleton"))
    assert not _sleepable(capsys, "bpf/probe.bpf.c")
    (tree / "user/ops.h").write_text("#define OPEN(p) p##_kernel__open_and_load()\n")
    (tree / "user/main.c").write_text(_pasted("probe"))
    assert not _sleepable(capsys, "bpf/probe.bpf.c")  # now `probe_kernel`
    (tree / "user/ops.h").write_text("#define OPEN(p) p##__open_and_load()\n")
    assert _sleepable(capsys, "bpf/probe.bpf.c")


AFTER_EXECUTABLE = (
    """\
    char filename[256];
    snprintf(filename, sizeof(filename), "%s_kern.o", argv[0]);
    struct bpf_object *obj = bpf_object__open_file(filename, NULL);
"""
    + SET_SLEEPABLE
)


def test_an_object_named_after_the_executable_the_build_file_links(tree: Path, capsys) -> None:
    write_files(
        tree,
        {
            "samples/probe_kern.c": SLEEPS,
            "samples/Makefile": "tprogs-y += probe\nprobe-objs := probe_user.o\n",
            "samples/probe_user.c": _loader(AFTER_EXECUTABLE),
        },
    )
    assert _sleepable(capsys, "samples/probe_kern.c")
    (tree / "samples/Makefile").write_text("tprogs-y += another\nanother-objs := probe_user.o\n")
    assert not _sleepable(capsys, "samples/probe_kern.c")
    (tree / "samples/Makefile").write_text("tprogs-y += probe\nprobe-objs := probe_user.o\n")
    assert _sleepable(capsys, "samples/probe_kern.c")


OPEN_WRAPPER = """\
#include <bpf/libbpf.h>
struct bpf_object *open_obj(const char *file) {
    return bpf_object__open_file(file, NULL);
}
"""
BY_WRAPPER = '    struct bpf_object *obj = open_obj("probe.bpf.o");\n' + SET_SLEEPABLE


def test_an_open_wrapper_of_another_file(tree: Path, capsys) -> None:
    write_files(
        tree,
        {
            "bpf/probe.bpf.c": SLEEPS,
            "lib/open.c": OPEN_WRAPPER,
            "user/main.c": _loader(BY_WRAPPER),
        },
    )
    assert _sleepable(capsys, "bpf/probe.bpf.c")
    (tree / "lib/open.c").write_text(OPEN_WRAPPER.replace("bpf_object__open_file(file, NULL)", "0"))
    assert not _sleepable(capsys, "bpf/probe.bpf.c")
    (tree / "lib/open.c").write_text(OPEN_WRAPPER)
    assert _sleepable(capsys, "bpf/probe.bpf.c")


UNOWNED = (
    """\
#include <bpf/libbpf.h>
struct attacher { struct SKEL_NAME *skel; };
int attach(struct attacher *att) {
"""
    + ATTACH.format(prog="att->skel->progs.{name}")
    + "    return 0;\n}\n"
)


def test_a_program_reference_whose_skeleton_is_not_shown(tree: Path, capsys) -> None:
    write_files(
        tree,
        {
            "bpf/probe.bpf.c": BPF,
            "user/attacher.c": UNOWNED.replace("{name}", "handle"),
        },
    )
    assert any("SECL201" in line for line in _one_file(capsys, "bpf/probe.bpf.c"))
    (tree / "user/attacher.c").write_text(UNOWNED.replace("{name}", "other_prog"))
    assert _one_file(capsys, "bpf/probe.bpf.c") == []
    (tree / "user/attacher.c").write_text(UNOWNED.replace("{name}", "handle"))
    assert _one_file(capsys, "bpf/probe.bpf.c") != []


LEGACY = """\
#include <bpf/bpf_helpers.h>
#include "maps.h"
struct bpf_map_def SEC("maps") counts = { .type = 1 };
SEC("kprobe/do_unlinkat")
int handle(void *ctx) { return 0; }
"""
MAPS_H = 'struct bpf_map_def SEC("maps") events = { .type = 4 };\n'
OWN_ELF = """\
#include <gelf.h>
#include <string.h>
static int load_section(const char *name, void *insns, int size) {
    if (memcmp(name, "kprobe/", 7) == 0)
        return LOAD;
    return -1;
}
int load_file(Elf *elf, size_t strndx) {
    Elf_Scn *scn = NULL;
    GElf_Shdr shdr;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        gelf_getshdr(scn, &shdr);
        char *name = elf_strptr(elf, strndx, shdr.sh_name);
        if (strcmp(name, "maps") == 0)
            continue;
        load_section(name, NULL, 0);
    }
    return 0;
}
"""
RAW_LOAD = 'bpf_load_program(BPF_PROG_TYPE_KPROBE, insns, size, "GPL", 0, NULL, 0)'


@pytest.mark.parametrize("target", ["bpf/probe.c", "bpf/maps.h"])
def test_a_loader_with_its_own_elf_reader_and_a_header_of_its_source(
    tree: Path, capsys, target: str
) -> None:
    """A legacy `maps` section is no finding where the project's own ELF reader loads the
    object (libbpf's rules do not apply), in the source and in a header it includes."""
    write_files(
        tree,
        {
            "bpf/probe.c": LEGACY,
            "bpf/maps.h": MAPS_H,
            "user/load.c": OWN_ELF.replace("LOAD", RAW_LOAD),
        },
    )
    assert _one_file(capsys, target) == []
    (tree / "user/load.c").write_text(OWN_ELF.replace("LOAD", "0"))
    assert any("SECL108" in line for line in _one_file(capsys, target))
    (tree / "user/load.c").write_text(OWN_ELF.replace("LOAD", RAW_LOAD))
    assert _one_file(capsys, target) == []


XDP_SOURCE = """\
#include <bpf/bpf_helpers.h>
SEC("{section}")
int rx(struct xdp_md *ctx) {{ return 2; }}
"""
# A libxdp loader that names its object only at run time and picks the program by section:
# libxdp types it (secl.analysis.sections._libxdp_sections), so `xdp_rx` is no SECL102.
LIBXDP_PICK = """\
#include <xdp/libxdp.h>
int attach(const char *object, int ifindex)
{
    struct xdp_program *prog = xdp_program__open_file(object, "xdp_rx", NULL);
    return xdp_program__attach(prog, ifindex, XDP_MODE_NATIVE, 0);
}
"""


def test_a_libxdp_loader_that_picks_the_section_by_name(tree: Path, capsys) -> None:
    write_files(
        tree,
        {
            "bpf/rx.c": XDP_SOURCE.format(section="xdp_rx"),
            "bpf/tx.c": XDP_SOURCE.format(section="xdp_tx"),
            "src/xdp.c": LIBXDP_PICK,
        },
    )
    assert _one_file(capsys, "bpf/rx.c") == []
    assert [line.split()[1] for line in _one_file(capsys, "bpf/tx.c")] == ["SECL102"]
    (tree / "src/xdp.c").write_text(LIBXDP_PICK.replace('"xdp_rx"', '"xdp_tx"'))
    assert [line.split()[1] for line in _one_file(capsys, "bpf/rx.c")] == ["SECL102"]
    assert _one_file(capsys, "bpf/tx.c") == []
