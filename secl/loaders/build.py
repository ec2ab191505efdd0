"""Build files (Makefile, CMake, meson) that name a BPF source for a loader library.

Read conservatively: only command lines whose meaning does not depend on variables secl
cannot expand. Two shapes count:

* a bpf2go run (`go run github.com/cilium/ebpf/cmd/bpf2go ... IDENT SOURCE`, `go tool
  bpf2go`, plain `bpf2go`): cilium/ebpf loads the object built from SOURCE;
* nothing else yet: `bpftool gen skeleton` rules are read by the C pairing (skeleton names).

A path with a variable in it (`$(BPF_DIR)/x.c`) keeps its base name only, marked uncertain.
"""

from __future__ import annotations

import re
import shlex

from secl.loaders import CILIUM, FileLoaders, LoaderUse
from secl.parse.tree import Positions

# The tool as a word of its own (`bpf2go`, `.../bpf2go@v0.16.0`), or a word of make or shell
# variables one of which is named after it (`${REPODIR}/${BPF2GO_BINARY}_${BPF2GO_VERSION}`,
# `$(BPF2GO)`): the binary a rule builds or installs first.
_BPF2GO = re.compile(
    rb"(?:^|[\s/;&|(])(?:bpf2go(?:@\S*)?|(?P<var>[^\s$]*\$[({]?\w*(?i:bpf2go)\w*[)}]?\S*))"
    # the rest of the command, over `\`-newline continuations (a backslash is never eaten
    # alone: it either escapes the next character or continues the line)
    rb"[ \t]+(?P<rest>(?:[^\\\n]|\\[^\n]|\\\n)*)"
)
# bpf2go's flags that take no value (cmd/bpf2go/main.go: flag.Bool definitions).
_BOOL_FLAGS = frozenset({"-no-strip", "-no-global-types", "-h", "-help"})


def is_build_loader(data: bytes) -> bool:
    return b"bpf2go" in data or b"BPF2GO" in data


def extract_build(path: str, data: bytes) -> FileLoaders:
    out = FileLoaders(path)
    positions = Positions(data)
    for m in _BPF2GO.finditer(data):
        args = parse_bpf2go(m.group("rest").decode("utf-8", "replace").replace("\\\n", " "))
        if args is None:
            continue
        ident, source = args
        if m.group("var") is not None and not _recipe_command(data, m.start("var"), source):
            continue
        certain = "$" not in source and "$" not in ident
        if "$" in source:
            source = source.rsplit("/", 1)[-1]
            if "$" in source:
                continue  # nothing left to link by
        out.uses.append(
            LoaderUse(
                kind=CILIUM,
                path=path,
                span=positions.span(m.start("rest"), m.end("rest")),
                value=f"bpf2go {ident} {source}",
                sources=(source,),
                idents=(ident,) if "$" not in ident else (),
                auto_attach=False,  # cilium/ebpf never attaches a program by itself
                certain=certain,
            )
        )
    return out


def _recipe_command(data: bytes, at: int, source: str) -> bool:
    """Whether a variable taken for bpf2go at `at` runs as a command of a C source: not in a
    rule's target or prerequisite list (`gen: $(BPF2GO) x.c y.c`), and given a `.c` file."""
    line = data[data.rfind(b"\n", 0, at) + 1 : at]
    return b":" not in line.replace(b"::", b"") and source.endswith(".c")


def parse_bpf2go(command: str) -> tuple[str, str] | None:
    """(IDENT, SOURCE) of a bpf2go command line (what follows `bpf2go`), or None.

    bpf2go's usage (cmd/bpf2go/main.go, newB2G): flags, then `<ident> <source file> [--
    <C flags>]`; Go's flag package stops at the first non-flag argument."""
    try:
        words = shlex.split(command.split("--", 1)[0] if " -- " in command else command)
    except ValueError:
        return None
    positional: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in (";", "&&", "||", "|", ">", ")"):
            break
        if not positional and word.startswith("-") and word != "-":
            if "=" not in word and word not in _BOOL_FLAGS:
                i += 1  # the flag's value
            i += 1
            continue
        positional.append(word)
        if len(positional) == 2:
            break
        i += 1
    if len(positional) < 2:
        return None
    return positional[0], positional[1]
