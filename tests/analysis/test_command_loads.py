"""Objects loaded by a command of a script or build recipe: `bpftool prog load[all]` (libbpf
underneath; `type` sets every program's type, `autoattach` attaches each the generic way)
and iproute2's `ip ... xdp obj` / `tc ... bpf obj`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from secl.analysis.builds import _bpftool_load
from tests.analysis.test_upgrade import check

HELLO = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("raw_tp/")
int hello(void *ctx) { return 0; }

SEC("xdp/foo")
int typed(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
"""
BUILD = "hello.bpf.o: hello.bpf.c\n\tclang -O2 -target bpf -c $< -o $@\n\n"


def codes(tmp_path: Path, files: dict[str, str]) -> set[str]:
    findings, _ = check(tmp_path, files)
    return {f.code for f in findings if os.path.basename(f.path) == "hello.bpf.c"}


def test_without_a_loader_both_names_are_findings(tmp_path: Path) -> None:
    assert codes(tmp_path, {"hello.bpf.c": HELLO, "Makefile": BUILD}) == {"SECL102", "SECL104"}


def test_bpftool_prog_load_pins_without_attaching(tmp_path: Path) -> None:
    # No `autoattach`: the programs are only pinned, the suffix of `raw_tp/` is never parsed;
    # without `type` each program is typed by its section, so `xdp/foo` still fails.
    load = "load: hello.bpf.o\n\tsudo bpftool prog load hello.bpf.o /sys/fs/bpf/hello\n"
    assert codes(tmp_path, {"hello.bpf.c": HELLO, "Makefile": BUILD + load}) == {"SECL102"}


def test_bpftool_autoattach_parses_the_suffix(tmp_path: Path) -> None:
    load = "load: hello.bpf.o\n\tbpftool prog loadall hello.bpf.o /sys/fs/bpf/h autoattach\n"
    assert codes(tmp_path, {"hello.bpf.c": HELLO, "Makefile": BUILD + load}) == {
        "SECL102",
        "SECL104",
    }


def test_bpftool_type_types_every_program(tmp_path: Path) -> None:
    script = (
        "#!/bin/sh\nset -e\nbpftool -d prog loadall $OUT/hello.bpf.o /sys/fs/bpf/h \\\n"
        "    map name events pinned /sys/fs/bpf/events \\\n    type xdp\n"
    )
    assert codes(tmp_path, {"hello.bpf.c": HELLO, "Makefile": BUILD, "load.sh": script}) == set()


def test_a_recipe_variable_is_any_object_the_file_names(tmp_path: Path) -> None:
    load = "load: hello.bpf.o\n\tbpftool prog load $< /sys/fs/bpf/hello type xdp\n"
    assert codes(tmp_path, {"hello.bpf.c": HELLO, "Makefile": BUILD + load}) == set()


def test_a_command_for_another_object_or_a_comment_does_not_count(tmp_path: Path) -> None:
    load = (
        "load: other.bpf.o\n\tbpftool prog load other.bpf.o /sys/fs/bpf/o type xdp\n"
        "# bpftool prog load hello.bpf.o /sys/fs/bpf/hello type xdp\n"
    )
    assert codes(tmp_path, {"hello.bpf.c": HELLO, "Makefile": BUILD + load}) == {
        "SECL102",
        "SECL104",
    }


def test_ip_in_a_makefile_recipe_types_the_programs(tmp_path: Path) -> None:
    load = "attach: hello.bpf.o\n\tip link set dev lo xdpgeneric obj hello.bpf.o sec xdp/foo\n"
    # iproute2 types every program from its command and attaches by its own arguments.
    assert codes(tmp_path, {"hello.bpf.c": HELLO, "Makefile": BUILD + load}) == set()


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        (b"x.o /sys/fs/bpf/x", (b"x.o", False, False)),
        (b"x.o /sys/fs/bpf/x autoattach", (b"x.o", False, True)),
        (b"x.o /p map idx 0 pinned /sys/fs/bpf/m type xdp", (b"x.o", True, False)),
        # `type` as a map name is the map's value, not the keyword
        (b"x.o /p map name type pinned /sys/fs/bpf/m", (b"x.o", False, False)),
        (b"x.o /p map name events name type autoattach", (b"x.o", False, True)),
        (b"x.o /p pinmaps autoattach", (b"x.o", False, False)),
        (b"x.o", None),
    ],
)
def test_bpftool_load_words(rest: bytes, expected: object) -> None:
    assert _bpftool_load(rest) == expected


def test_an_object_bpftool_loads_is_loaded_by_libbpf_whatever_the_module_default(
    tmp_path: Path,
) -> None:
    """A Go module whose loaders use cilium/ebpf lends that library to its unnamed sources,
    but an object a recipe loads with `bpftool prog loadall` is libbpf's: the upgrade
    applies to it (the Go code only picks up the pinned programs)."""
    from secl.analysis.loaders import assignment
    from secl.api import load
    from secl.config import Config

    probe = 'SEC("kprobe/do_exit")\nint on_exit(void *ctx) { return 0; }\n'
    files = {
        "go.mod": "module example.com/m\n\ngo 1.22\n\nrequire github.com/cilium/ebpf v0.16.0\n",
        "main.go": 'package main\n\nimport "github.com/cilium/ebpf"\n\nfunc main() {\n'
        '\tebpf.LoadCollectionSpec("bpf/other.o")\n}\n',
        "bpf/proc.c": probe,
        "bpf/other.c": 'SEC("socket")\nint s(void *ctx) { return 0; }\n',
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / ".git").mkdir()

    def kind() -> tuple[str, str]:
        project = load([str(tmp_path)], Config(root=str(tmp_path), cache=False)).project
        found = assignment(project, str(tmp_path / "bpf" / "proc.c"))
        return found.kind, found.evidence[0].value if found.evidence else ""

    assert kind()[0] == "cilium-ebpf"
    (tmp_path / "bpf" / "Makefile").write_text(
        "load: proc.o\n\tsudo bpftool -m prog loadall proc.o /sys/fs/bpf/proc \\\n"
        "\t\tmap name events pinned /sys/fs/bpf/events\n"
    )
    assert kind() == ("libbpf", "bpftool prog load")
