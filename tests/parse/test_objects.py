"""Reading compiled BPF objects (secl/parse/objects.py) and their line info
(secl/parse/btf.py), on objects clang compiles here, little- and big-endian; and a fuzz test
of truncated and corrupted objects."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secl.parse import objects as parse_objects
from secl.parse.btf import BTFError, line_info
from secl.parse.elf import ReusingELFFile
from secl.parse.objects import ObjectError, listing, read_bpf_object
from tests.bpf_objects import compile_bpf, write

SOURCE = """
#define SEC(name) __attribute__((section(name), used))
static long (*bpf_get_func_ip)(void *ctx) = (void *) 173;
static long (*bpf_tail_call)(void *ctx, void *map, unsigned int i) = (void *) 12;
extern int bpf_some_kfunc(int x) __attribute__((weak, section(".ksyms")));

struct { int type; } jumps SEC(".maps");

static __attribute__((noinline)) long deep(void *ctx) { return bpf_get_func_ip(ctx); }
static __attribute__((noinline)) long middle(void *ctx) { return deep(ctx) + 1; }

SEC("kprobe/do_unlinkat")
int first(void *ctx)
{
	return middle(ctx);
}

SEC("kprobe/do_unlinkat")
int second(void *ctx)
{
	bpf_tail_call(ctx, &jumps, 0);
	return bpf_some_kfunc(1);
}

SEC("xdp") static int hidden(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
"""


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("objects")
    source = write(root / "calls.bpf.c", SOURCE)
    out = {}
    for name, big in (("el", False), ("eb", True)):
        out[name] = compile_bpf(source, root / f"calls_bpf{name}.o", big_endian=big).read_bytes()
    out["nodebug"] = compile_bpf(source, root / "nodebug.o", debug=False).read_bytes()
    return out


@pytest.mark.parametrize("order", ["el", "eb"])
def test_programs_data_and_calls(objects: dict[str, bytes], order: str) -> None:
    obj = read_bpf_object("calls.o", objects[order])
    assert obj.big_endian == (order == "eb")
    programs = {p.name: p for p in obj.programs}
    assert sorted(programs) == ["first", "hidden", "second"]
    assert programs["first"].section == programs["second"].section == "kprobe/do_unlinkat"
    # through two subprograms in .text
    assert programs["first"].calls == ("bpf_get_func_ip",)
    assert set(programs["second"].calls) == {"bpf_tail_call", "bpf_some_kfunc"}
    assert programs["hidden"].is_static and not programs["first"].is_static
    assert obj.license == "Dual BSD/GPL"
    assert [(d.section, d.symbols) for d in obj.data if d.section == ".maps"] == [
        (".maps", ("jumps",))
    ]
    assert obj.sections[programs["first"].elf_section] == "kprobe/do_unlinkat"


@pytest.mark.parametrize("order", ["el", "eb"])
def test_line_info_maps_programs_to_their_source(objects: dict[str, bytes], order: str) -> None:
    obj = read_bpf_object("calls.o", objects[order])
    lines = {p.name: p.source for p in obj.programs}
    assert lines["first"] is not None and lines["first"].line == 14  # `return middle(ctx);`
    assert lines["second"] is not None and lines["second"].line == 20
    assert lines["first"].file.endswith("/calls.bpf.c")
    assert obj.sources[0].endswith("/calls.bpf.c")


def test_without_debug_info_there_is_no_line_info(objects: dict[str, bytes]) -> None:
    obj = read_bpf_object("nodebug.o", objects["nodebug"])
    assert obj.sources == ()
    assert all(p.source is None for p in obj.programs)
    assert obj.line_info_problem is None


def test_the_listing_has_one_row_per_elf_section(objects: dict[str, bytes]) -> None:
    obj = read_bpf_object("calls.o", objects["el"])
    data, sites = listing(obj)
    rows = data.decode().split("\n")
    assert len(rows) == len(obj.sections) - 1
    for site in sites:
        assert site.origin is not None
        assert site.span.start.row == site.origin.elf_section
        assert data[site.span.start_byte : site.span.end_byte].decode() == site.section_text
    first = next(s for s in sites if s.program == "first")
    assert first.body is not None
    assert b"bpf_get_func_ip();" in data[first.body[0] : first.body[1]]


def _section(data: bytes, name: bytes) -> bytes:
    order = "<" if data[5] == 1 else ">"
    shoff = struct.unpack_from(order + "Q", data, 40)[0]
    shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 58)

    def header(i: int) -> tuple[int, ...]:
        return struct.unpack_from(order + "IIQQQQIIQQ", data, shoff + i * shentsize)

    strtab = header(shstrndx)[4]
    for i in range(shnum):
        h = header(i)
        if data[strtab + h[0] :].split(b"\0", 1)[0] == name:
            return data[h[4] : h[4] + h[5]]
    raise KeyError(name)


def test_btf_reader_refuses_what_it_cannot_read(objects: dict[str, bytes]) -> None:
    btf = _section(objects["el"], b".BTF")
    ext = _section(objects["el"], b".BTF.ext")
    assert "kprobe/do_unlinkat" in line_info(btf, ext)
    for bad_btf, bad_ext in [
        (btf[:10], ext),  # truncated header
        (btf, ext[:30]),  # records cut off
        (b"\0\0" + btf[2:], ext),  # bad magic
        (btf[: len(btf) // 2], ext),  # strings cut off
    ]:
        with pytest.raises(BTFError):
            line_info(bad_btf, bad_ext)


def test_not_bpf_objects() -> None:
    with pytest.raises(ObjectError, match="not an ELF file"):
        read_bpf_object("x.o", b"int main;\n")
    with pytest.raises(ObjectError, match="cannot read the ELF file"):
        read_bpf_object("x.o", b"\x7fELF\x02\x01\x01")


# -- the symbol and relocation tables decoded with struct --------------------------------------


def _tables(data: bytes) -> tuple[SymbolTableSection, list[RelocationSection]]:
    sections = list(ReusingELFFile(data).iter_sections())
    symtab = next(s for s in sections if isinstance(s, SymbolTableSection))
    return symtab, [s for s in sections if isinstance(s, RelocationSection)]


@pytest.mark.parametrize("order", ["el", "eb"])
def test_struct_reads_the_tables_as_pyelftools_does(objects: dict[str, bytes], order: str) -> None:
    data = objects[order]
    symtab, relocations = _tables(data)
    unpacked = parse_objects._symbols_unpacked(symtab, data)
    assert unpacked is not None
    assert unpacked == parse_objects._symbols(symtab, data)
    assert {s.type for s in unpacked} >= {"STT_FUNC", "STT_OBJECT", "STT_SECTION"}
    assert {s.bind for s in unpacked} >= {"STB_LOCAL", "STB_GLOBAL"}
    assert any(s.shndx is None for s in unpacked) and any(s.shndx for s in unpacked)
    assert relocations
    for section in relocations:
        theirs = tuple((r["r_offset"], r["r_info_sym"]) for r in section.iter_relocations())
        assert parse_objects._relocations_unpacked(section) == theirs


def test_a_record_layout_pyelftools_disagrees_with_is_not_used(
    objects: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = objects["el"]
    expected = read_bpf_object("calls.o", data)
    wrong = struct.Struct("<IHBBQQ")  # st_info, st_other and st_shndx read as other fields
    monkeypatch.setattr(parse_objects, "_SYM64", {True: wrong, False: wrong})
    monkeypatch.setattr(parse_objects, "_ST_INFO_NAMES", {})
    symtab, _ = _tables(data)
    assert parse_objects._symbols_unpacked(symtab, data) is None
    assert read_bpf_object("calls.o", data) == expected  # pyelftools read the table


def test_a_symbol_table_past_the_end_is_pyelftools_to_refuse(
    objects: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytearray(objects["el"])
    symtab, _ = _tables(bytes(data))
    shoff = struct.unpack_from("<Q", data, 40)[0]
    index = next(
        i for i in range(struct.unpack_from("<H", data, 60)[0])
        if struct.unpack_from("<I", data, shoff + i * 64 + 4)[0] == 2  # SHT_SYMTAB
    )  # fmt: skip
    struct.pack_into("<Q", data, shoff + index * 64 + 24, len(data) - symtab["sh_size"] // 2)
    symtab, _ = _tables(bytes(data))
    assert parse_objects._symbols_unpacked(symtab, bytes(data)) is None
    with pytest.raises(ObjectError) as ours:
        read_bpf_object("x.o", bytes(data))
    monkeypatch.setattr(parse_objects, "_symbols_unpacked", lambda *_: None)
    with pytest.raises(ObjectError) as theirs:
        read_bpf_object("x.o", bytes(data))
    assert str(ours.value) == str(theirs.value)
    assert str(ours.value).startswith("cannot read the ELF file (")


# -- fuzz -------------------------------------------------------------------------------------


def _mutations(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out = [data[:cut] for cut in sorted({rng.randrange(len(data)) for _ in range(8)})]
    for _ in range(8):
        mutated = bytearray(data)
        for _ in range(rng.randrange(1, 16)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        out.append(bytes(mutated))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32), order=st.sampled_from(["el", "eb"]))
def test_truncated_and_corrupted_objects_never_raise_anything_else(
    objects: dict[str, bytes], seed: int, order: str
) -> None:
    for data in _mutations(objects[order], seed):
        try:
            obj = read_bpf_object("fuzz.o", data)
        except ObjectError as err:
            assert "\n" not in str(err)
            continue
        listing(obj)  # what is read becomes sites without error


@pytest.mark.parametrize("seed", range(6))
def test_fuzzed_objects_on_the_command_line(
    objects: dict[str, bytes], tmp_path: Path, seed: int
) -> None:
    """No traceback; one line per bad object; exit 2 only when nothing could be read."""
    import os
    import subprocess
    import sys

    root = tmp_path
    (root / ".secl.toml").write_text("")
    mutations = _mutations(objects["el" if seed % 2 else "eb"], seed)
    for i, data in enumerate(mutations):
        (root / f"m{i}.bpf.o").write_bytes(data)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run([sys.executable, "-m", "secl", "check", "--output-format", "json",
                             "."], cwd=root, env=env, capture_output=True, text=True)  # fmt: skip
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    problems = [
        line for line in result.stderr.splitlines()
        if line.startswith("secl: m") and not line.endswith("(the object is linted)")
    ]  # fmt: skip
    assert len(problems) == len({line.split(":")[1] for line in problems})  # one line each
    read = len(mutations) - len(problems)
    if read == 0:
        assert result.returncode == 2
    else:
        assert result.returncode in (0, 1)
        import json

        json.loads(result.stdout)
