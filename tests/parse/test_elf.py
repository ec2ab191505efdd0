"""secl.parse.elf: pyelftools' ELFFile with its structs shared between files. These tests fail
when a pyelftools release changes what ELFFile.__init__ sets up, or when the sharing silently
stops (secl then reads objects right, only slower)."""

from __future__ import annotations

import io

import pytest
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection
from elftools.elf.structs import ELFStructs

from secl.parse import elf as reuse
from secl.parse.elf import ReusingELFFile
from tests.bpf_objects import FIXTURES, compile_bpf


@pytest.fixture(scope="module")
def blobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("elf")
    source = FIXTURES / "probe.bpf.c"
    out = {}
    for name, big in (("el", False), ("eb", True)):
        out[name] = compile_bpf(source, root / f"probe_{name}.o", big_endian=big).read_bytes()
    host = root / "host.o"
    compile_bpf(source, host, "-target", "x86_64-linux-gnu", "-fno-asynchronous-unwind-tables")
    out["host"] = host.read_bytes()
    return out


def _view(elf: ELFFile) -> list[tuple]:
    """Every section header and name, and every symbol, as pyelftools reads them."""
    out: list[tuple] = []
    for section in elf.iter_sections():
        out.append((section.name, dict(section.header)))
        if isinstance(section, SymbolTableSection):
            out += [(s.name, dict(s.entry)) for s in section.iter_symbols()]
    return out


@pytest.mark.parametrize("kind", ["el", "eb", "host"])
def test_it_is_the_elffile_pyelftools_makes(blobs: dict[str, bytes], kind: str) -> None:
    data = blobs[kind]
    ours, theirs = ReusingELFFile(data), ELFFile(io.BytesIO(data))
    assert set(vars(ours)) - {"_shdr_size"} == set(vars(theirs))
    for name, value in vars(theirs).items():
        if name == "structs":
            assert ours.structs.__getstate__() == value.__getstate__()
        elif name == "stream":
            assert ours.stream.getvalue() == value.getvalue()
            assert ours.stream.tell() == value.tell()
        else:
            assert getattr(ours, name) == value, name
    assert _view(ours) == _view(theirs)
    for n in range(ours.num_sections()):
        assert ours._section_offset(n) == ELFFile._section_offset(theirs, n)


def test_files_of_a_kind_share_their_structs(
    blobs: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[object] = []
    create = ELFStructs.create_advanced_structs

    def counting(self: ELFStructs, *args: object) -> None:
        built.append(args)
        create(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ELFStructs, "create_advanced_structs", counting)
    reuse._full_structs.cache_clear()
    reuse._basic_structs.cache_clear()
    first = [ReusingELFFile(blobs[k]) for k in ("el", "eb", "host")]
    again = [ReusingELFFile(blobs[k]) for k in ("el", "eb", "host")]
    assert len(built) == 3
    assert all(a.structs is b.structs for a, b in zip(first, again, strict=True))
    assert len({id(a.structs) for a in first}) == 3


def test_a_bad_section_header_size_is_refused_as_pyelftools_does(
    blobs: dict[str, bytes],
) -> None:
    data = bytearray(blobs["el"])
    data[58:60] = (20).to_bytes(2, "little")  # e_shentsize of an ELF64 header
    with pytest.raises(ELFError) as theirs:
        list(ELFFile(io.BytesIO(bytes(data))).iter_sections())
    with pytest.raises(ELFError) as ours:
        list(ReusingELFFile(bytes(data)).iter_sections())
    assert str(ours.value) == str(theirs.value)


def test_the_cache_of_kinds_is_bounded(
    blobs: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    reuse._full_structs.cache_clear()
    data = bytearray(blobs["el"])
    for osabi in range(40):  # a corrupted EI_OSABI is a kind of its own
        data[7] = osabi
        ReusingELFFile(bytes(data))
    assert reuse._full_structs.cache_info().currsize == reuse._MAX_KINDS
