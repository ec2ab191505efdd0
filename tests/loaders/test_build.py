"""bpf2go commands in build files (secl.loaders.build)."""

from __future__ import annotations

from secl.loaders import CILIUM
from secl.loaders.build import extract_build, is_build_loader


def uses(text: str) -> list[tuple[str, tuple[str, ...], tuple[str, ...], int]]:
    data = text.encode()
    assert is_build_loader(data)
    return [
        (u.kind, u.sources, u.idents, u.span.start.row)
        for u in extract_build("Makefile", data).uses
    ]


def test_a_command_continued_over_several_lines() -> None:
    text = (
        "gen:\n"
        "\tcd pkg/probe && go run github.com/cilium/ebpf/cmd/bpf2go \\\n"
        '\t\t-cc clang -cflags "-O2 -g" \\\n'
        "\t\t-target amd64 bpf \\\n"
        "\t\tbpf/probe.bpf.c -- -I../headers\n"
    )
    assert uses(text) == [(CILIUM, ("bpf/probe.bpf.c",), ("bpf",), 2)]


def test_the_tool_named_by_a_variable_of_its_name() -> None:
    """The binary a rule builds first (`$(BIN)/bpf2go_$(VERSION)`), run through variables
    named after it; the same variables in a rule's target or prerequisites, or in front of
    arguments that are no C source, are no run of bpf2go."""
    text = (
        "BPF2GO_BINARY := bin/bpf2go\n"
        "generate: ${BPF2GO_BINARY}_${BPF2GO_VERSION} \\\n"
        "\t\theaders probe.c\n"
        "\t(cd ${REPODIR}/pkg/tracing && \\\n"
        "\t\tGOPACKAGE=tracing ${REPODIR}/${BPF2GO_BINARY}_${BPF2GO_VERSION} \\\n"
        '\t\t-cc "${BPF_CLANG}" -target arm64,amd64 bpf \\\n'
        "\t\tebpf/tracer.bpf.c --)\n"
        "${BPF2GO_BINARY}_${BPF2GO_VERSION}:\n"
        "\tgit clone --branch v${BPF2GO_VERSION} https://github.com/cilium/ebpf x\n"
        "other:\n"
        "\t$(BPF2GO) -version now\n"
    )
    assert uses(text) == [(CILIUM, ("ebpf/tracer.bpf.c",), ("bpf",), 5)]
