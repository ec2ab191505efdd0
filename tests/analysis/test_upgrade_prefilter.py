"""`_may_read_registers` is a prefilter: wherever `register_reads` finds a read, it says yes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from secl.analysis import upgrade
from secl.parse.bpf import extract_sites

BODIES = [
    "int f(struct pt_regs *ctx) { return ctx->bx; }",
    "int f(struct pt_regs *ctx) { long x = ctx -> /* c */ r12; return x; }",
    "int f(struct pt_regs *ctx) { return sizeof(*ctx); }",
    "int f(struct pt_regs *ctx) { return sizeof ( /* c */ * ctx ); }",
    "int f(struct pt_regs *c) { return sizeof(*c); }",
    "int f(struct pt_regs *ctx) { struct pt_regs r = *ctx; return 0; }",
    "int f(void *ctx) { return sizeof(struct pt_regs); }",
    "int f(struct pt_regs *ctx) { struct event *e; return sizeof(*e); }",
    "int f(struct pt_regs *ctx) { return BPF_CORE_READ(ctx, orig_ax); }",
]


class _Project:
    """What `_BpfSource` reads of a project: the file's bytes and positions."""

    def __init__(self, path: str, data: bytes) -> None:
        from secl.parse.tree import Positions

        self.files = {path: data}
        self._positions = Positions(data)

    def positions(self, _path: str):
        return self._positions


def _check(path: str, data: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """(programs with reads, programs the prefilter let through) of one file."""
    found = passed = 0
    source = upgrade._BpfSource(_Project(path, data), path)  # type: ignore[arg-type]
    for site in extract_sites(path, data):
        if site.kind != "program" or site.body is None:
            continue
        names = source._context_names(site)
        maybe = upgrade._may_read_registers(data, site.body, names)
        with monkeypatch.context() as m:
            m.setattr(upgrade, "_may_read_registers", lambda *_: True)
            reads = source.register_reads(site)
        assert maybe or not reads, (path, site.program, reads)
        found += bool(reads)
        passed += maybe
    return found, passed


@pytest.mark.parametrize("body", BODIES)
def test_every_read_passes_the_prefilter(body: str, monkeypatch: pytest.MonkeyPatch) -> None:
    found, passed = _check("x.bpf.c", f'SEC("kprobe/f")\n{body}\n'.encode(), monkeypatch)
    if "*e)" in body:  # `sizeof(*e)` of another pointer reads no register: not even lexed
        assert (found, passed) == (0, 0)
    elif "ctx->ip" in body:
        assert found == 0
    else:
        assert found == passed == 1


def test_the_selftests_reads_all_pass_the_prefilter(monkeypatch: pytest.MonkeyPatch) -> None:
    selftests = os.environ.get("SECL_LINUX_SELFTESTS")
    if not selftests:
        pytest.skip("SECL_LINUX_SELFTESTS is not set")
    found = 0
    for path in sorted((Path(selftests) / "progs").rglob("*.c")):
        found += _check(str(path), path.read_bytes(), monkeypatch)[0]
    assert found >= 3  # programs with such reads in the Linux 7.2 selftests
