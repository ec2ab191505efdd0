"""Compiled BPF objects (ELF, e_machine EM_BPF, either byte order) as section-site facts.

The ELF header and section table are read with pyelftools, and the symbol and relocation
tables it locates have their fixed-size records decoded with `struct` (_symbols_unpacked(),
_relocations_unpacked(); pyelftools reads any table they do not take); `.BTF`/`.BTF.ext`
line info is read with secl.parse.btf.
Programs are found the way libbpf finds them (libbpf.c: bpf_object__elf_collect() takes the
executable SHT_PROGBITS sections, bpf_object__add_programs() every STT_FUNC symbol of such a
section other than `.text`, whose name is the program's SEC()). Each program also records the
helpers and kfuncs it calls, through the subprograms it calls (the upgrade analysis and
SECL114 read calls).

An object becomes the same `SectionSite`s the C parser produces, marked with an
`ObjectOrigin`, over a listing secl writes for it: one row per ELF section (row N is the
section `readelf -S` numbers N), in C syntax, e.g.

    SEC("kprobe/do_unlinkat") int body(void *ctx) { bpf_get_func_ip(); }

so that findings on an object have a row and column, and the `full` format something to show.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

from secl.facts import ObjectOrigin, Piece, SectionSite
from secl.parse.btf import BTFError, LineInfo, line_info
from secl.parse.tree import Positions

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.sections import SymbolTableSection

ELF_MAGIC = b"\x7fELF"
SHF_EXECINSTR = 0x4
BPF_INSN_SIZE = 8
BPF_CALL = 0x85  # BPF_JMP | BPF_CALL
BPF_PSEUDO_CALL = 1
BPF_PSEUDO_KFUNC_CALL = 2
# Helper ids secl's rules care about (include/uapi/linux/bpf.h: ___BPF_FUNC_MAPPER).
HELPERS = {
    12: "bpf_tail_call",
    148: "bpf_copy_from_user",
    161: "bpf_ima_inode_hash",
    173: "bpf_get_func_ip",
    174: "bpf_get_attach_cookie",
    191: "bpf_copy_from_user_task",
    193: "bpf_ima_file_hash",
}
# Sections a source declares with SEC() on data (libbpf.c: bpf_object__elf_collect() and
# its section kinds); `.data`, `.rodata`, `.bss` hold ordinary globals, and the compiler
# makes `.rodata.str1.1`, `.rodata.cst16` ... itself.
_DECLARED_DATA = ("maps", ".maps", "license", "version")
_DATA_PREFIXES = (".data.", ".rodata.", ".bss.", ".struct_ops", ".addr_space.")
_COMPILER_DATA = (".rodata.str", ".rodata.cst")


class ObjectError(ValueError):
    """An object secl cannot read as a BPF object, said in one line."""


@dataclass(frozen=True, slots=True)
class ObjectProgram:
    """One program of an object: a function symbol of an executable section."""

    name: str
    section: str
    elf_section: int
    offset: int  # bytes into the section
    is_static: bool  # STB_LOCAL: libbpf refuses the object
    calls: tuple[str, ...]  # helpers (by name) and kfuncs it calls, subprograms included
    source: LineInfo | None  # the first line of it that line info names


@dataclass(frozen=True, slots=True)
class ObjectData:
    """A data section the source declares with SEC(), and the variables in it."""

    section: str
    elf_section: int
    symbols: tuple[str, ...]
    value: str | None = None  # the license string
    # For each of `symbols`, the functions its initializer points at (the relocations of a
    # `.struct_ops` variable name the programs it uses; SECL115 reads them).
    members: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class BpfObject:
    """What secl reads of a BPF object."""

    path: str
    big_endian: bool
    sections: tuple[str, ...]  # every ELF section name, by index
    programs: tuple[ObjectProgram, ...]
    data: tuple[ObjectData, ...]
    sources: tuple[str, ...]  # the source files its line info names, as recorded
    line_info_problem: str | None = None  # .BTF/.BTF.ext present but unreadable

    @property
    def license(self) -> str | None:
        return next((d.value for d in self.data if d.section == "license"), None)


# -- reading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Section:
    index: int
    name: str
    type: str
    flags: int
    data: bytes | None  # read for program, data, symbol-less use only


@dataclass(frozen=True, slots=True)
class _Symbol:
    name: str
    type: str
    bind: str
    shndx: int | None  # None: undefined, absolute or otherwise special
    value: int
    size: int


@dataclass(frozen=True, slots=True)
class _Elf:
    """The ELF tables as plain data, copied out of pyelftools in one place."""

    big_endian: bool
    sections: tuple[_Section, ...]
    symbols: tuple[_Symbol, ...] | None  # None: no symbol table
    relocations: dict[int, tuple[tuple[int, int], ...]]  # section -> (offset, symbol index)


def _wanted_data(section: str) -> bool:
    if section in _DECLARED_DATA:
        return True
    return section.startswith(_DATA_PREFIXES) and not section.startswith(_COMPILER_DATA)


def _read_elf(data: bytes) -> _Elf:
    """pyelftools' view of the file. Whatever pyelftools raises on a corrupted file is a
    file that cannot be read, not a bug of secl: it is said in one line."""
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.sections import SymbolTableSection

    from secl.parse.elf import ReusingELFFile

    try:
        elf = ReusingELFFile(data)
        machine = elf["e_machine"]
        if machine != "EM_BPF":
            raise ObjectError(f"not a BPF object (e_machine {machine})")
        sections = []
        symtab = None
        relocation_sections = []
        for index, section in enumerate(elf.iter_sections()):
            kind = section["sh_type"]
            flags = section["sh_flags"]
            name = section.name
            wanted = (kind == "SHT_PROGBITS" and flags & SHF_EXECINSTR) or (
                kind in ("SHT_PROGBITS", "SHT_NOBITS") and _wanted_data(name)
            )
            wanted = wanted or name in (".BTF", ".BTF.ext")
            body = section.data() if wanted and kind != "SHT_NOBITS" else None
            sections.append(_Section(index, name, str(kind), int(flags), body))
            if isinstance(section, SymbolTableSection) and kind == "SHT_SYMTAB":
                symtab = section
            elif isinstance(section, RelocationSection):
                relocation_sections.append(section)
        symbols = None
        if symtab is not None:
            symbols = _symbols_unpacked(symtab, data)
            if symbols is None:
                symbols = _symbols(symtab, data)
        relocations: dict[int, tuple[tuple[int, int], ...]] = {}
        for section in relocation_sections:
            target = section["sh_info"]
            if not 0 < target < len(sections):
                continue
            if not (
                sections[target].flags & SHF_EXECINSTR
                or sections[target].name.startswith(".struct_ops")
            ):
                continue  # calls and struct_ops members: debug info and BTF are skipped
            found = _relocations_unpacked(section)
            if found is None:
                found = tuple(
                    (int(r["r_offset"]), int(r["r_info_sym"])) for r in section.iter_relocations()
                )
            relocations[target] = found
        return _Elf(not elf.little_endian, tuple(sections), symbols, relocations)
    except ObjectError:
        raise
    except Exception as err:  # pyelftools on a truncated or corrupted file: any exception
        raise ObjectError(f"cannot read the ELF file ({_one_line(err)})") from err


def _symbols(symtab: SymbolTableSection, data: bytes) -> tuple[_Symbol, ...]:
    """The symbol table, entry by entry as pyelftools' SymbolTableSection.get_symbol() parses
    it, with the names cut out of the file at once rather than read from the stream each."""
    from elftools.common.utils import struct_parse

    entry, stream = symtab.structs.Elf_Sym, symtab.stream
    base, size = symtab["sh_offset"], symtab["sh_entsize"]
    names = symtab.stringtable["sh_offset"]
    found = []
    for n in range(symtab.num_symbols()):
        symbol = struct_parse(entry, stream, base + n * size)
        info = symbol["st_info"]
        shndx = symbol["st_shndx"]
        found.append(
            _Symbol(
                _cstring(data, names + symbol["st_name"]),
                str(info["type"]),
                str(info["bind"]),
                shndx if isinstance(shndx, int) else None,
                int(symbol["st_value"]),
                int(symbol["st_size"]),
            )
        )
    return tuple(found)


# The fixed-size records of the tables pyelftools located, decoded with `struct` rather than
# one construct parse each (the symbol table is most of what reading an object costs). Only
# ELFCLASS64, the class of every BPF object; layouts of the ELF gABI ("Symbol Table",
# "Relocation") as pyelftools declares them (elftools/elf/structs.py: ELFStructs._create_sym()
# and _create_rel(), elfclass 64, not EM_MIPS):
#   Elf64_Sym  st_name u32, st_info u8, st_other u8, st_shndx u16, st_value u64, st_size u64
#   Elf64_Rel  r_offset u64, r_info u64 (symbol: r_info >> 32); Elf64_Rela adds r_addend s64
# A table whose sh_entsize is not its record's size, that is compressed or runs past the end
# of the file is left to pyelftools, whose answer (or error) it then is.
_SYM64 = {True: struct.Struct("<IBBHQQ"), False: struct.Struct(">IBBHQQ")}
_REL64 = {
    (True, False): struct.Struct("<QQ"),
    (False, False): struct.Struct(">QQ"),
    (True, True): struct.Struct("<QQq"),
    (False, True): struct.Struct(">QQq"),
}
_ST_INFO_NAMES: dict[tuple[object, int], tuple[str, str]] = {}


def _symbols_unpacked(symtab: SymbolTableSection, data: bytes) -> tuple[_Symbol, ...] | None:
    """The symbol table as _symbols() reads it, or None when it is pyelftools' to read."""
    elf = symtab.elffile
    record = _SYM64[elf.little_endian]
    if elf.elfclass != 64 or symtab["sh_entsize"] != record.size or symtab.compressed:
        return None
    end = symtab.num_symbols() * record.size
    raw = symtab.data()
    if len(raw) < end:
        return None  # past the end of the file
    from elftools.elf.enums import ENUM_ST_SHNDX

    special = {v for k, v in ENUM_ST_SHNDX.items() if k != "_default_"}  # not indices
    names = symtab.stringtable["sh_offset"]
    found = []
    for at, (st_name, st_info, _, st_shndx, st_value, st_size) in zip(
        range(0, end, record.size), record.iter_unpack(raw[:end]), strict=True
    ):
        shndx = None if st_shndx in special else st_shndx
        kinds = _ST_INFO_NAMES.get((elf.structs, st_info))
        if kinds is None:
            kinds = _learn_st_info(elf.structs, raw[at : at + record.size],
                                   (st_name, shndx, st_value, st_size))  # fmt: skip
            if kinds is None:
                return None
        found.append(
            _Symbol(_cstring(data, names + st_name), kinds[0], kinds[1], shndx, st_value, st_size)
        )
    return tuple(found)


def _learn_st_info(
    structs: object, raw: bytes, unpacked: tuple[int, int | None, int, int]
) -> tuple[str, str] | None:
    """The names of a symbol's type and bind as pyelftools' own Elf_Sym decodes them, learnt
    once per st_info value and kind of file; on the way, the fields `struct` read are
    checked against pyelftools' (None: they differ, and pyelftools reads the table)."""
    entry = structs.Elf_Sym.parse(raw)  # type: ignore[attr-defined]
    shndx = entry["st_shndx"]
    theirs = (entry["st_name"], shndx if isinstance(shndx, int) else None, entry["st_value"],
              entry["st_size"])  # fmt: skip
    if theirs != unpacked:
        return None
    kinds = (str(entry["st_info"]["type"]), str(entry["st_info"]["bind"]))
    if len(_ST_INFO_NAMES) > 4096:  # corrupted headers can make up kinds of files
        _ST_INFO_NAMES.clear()
    _ST_INFO_NAMES[structs, raw[4]] = kinds  # st_info: the fifth byte
    return kinds


def _relocations_unpacked(section: RelocationSection) -> tuple[tuple[int, int], ...] | None:
    """(r_offset, symbol index) of each entry, or None when the table is pyelftools' to read."""
    elf = section.elffile
    record = _REL64[elf.little_endian, section.is_RELA()]
    if elf.elfclass != 64 or section["sh_entsize"] != record.size or section.compressed:
        return None
    end = section.num_relocations() * record.size
    raw = section.data()
    if len(raw) < end:
        return None  # past the end of the file
    return tuple((r[0], r[1] >> 32) for r in record.iter_unpack(raw[:end]))


def _cstring(data: bytes, at: int) -> str:
    """The string at `at` of the file, as pyelftools' StringTableSection.get_string() reads
    it (elftools/common/utils.py parse_cstring_from_stream()): up to the next NUL of the
    file, not of the section; "" when there is none; undecodable bytes replaced."""
    end = data.find(b"\0", at)
    return data[at:end].decode("utf-8", "replace") if end > at else ""


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:159] + "…"


def read_bpf_object(path: str, data: bytes) -> BpfObject:
    """The programs, data sections and source lines of a BPF object; ObjectError when it is
    not one, or not one libbpf could open."""
    if data[:4] != ELF_MAGIC:
        raise ObjectError("not an ELF file")
    elf = _read_elf(data)
    if elf.symbols is None:
        raise ObjectError("no symbol table (stripped?): libbpf cannot open it")
    names = tuple(s.name for s in elf.sections)
    lines, problem = _line_info(elf)
    calls = _Calls(elf)
    programs = []
    for symbol in elf.symbols:
        if symbol.type != "STT_FUNC" or symbol.shndx is None:
            continue
        if not 0 < symbol.shndx < len(elf.sections):
            continue
        section = elf.sections[symbol.shndx]
        if section.type != "SHT_PROGBITS" or not section.flags & SHF_EXECINSTR:
            continue
        if section.name == ".text":
            continue  # subprograms
        programs.append(
            ObjectProgram(
                name=symbol.name,
                section=section.name,
                elf_section=section.index,
                offset=symbol.value,
                is_static=symbol.bind == "STB_LOCAL",
                calls=calls.of(section.index, symbol.value),
                source=_first_line(lines.get(section.name, ()), symbol.value, symbol.size),
            )
        )
    programs.sort(key=lambda p: (p.elf_section, p.offset))
    data_sections = []
    for section in elf.sections:
        if section.flags & SHF_EXECINSTR or not _wanted_data(section.name):
            continue
        owned = [
            s for s in elf.symbols if s.shndx == section.index and s.type == "STT_OBJECT" and s.name
        ]
        variables = tuple(s.name for s in owned)
        value = None
        if section.name == "license" and section.data is not None:
            value = section.data.split(b"\0", 1)[0].decode("utf-8", "replace")
        members: tuple[tuple[str, ...], ...] = ()
        relocations = elf.relocations.get(section.index)
        if relocations:
            members = tuple(_pointed_at(s, relocations, elf.symbols) for s in owned)
        data_sections.append(ObjectData(section.name, section.index, variables, value, members))
    sources = tuple(dict.fromkeys(i.file for infos in lines.values() for i in infos))
    return BpfObject(
        path, elf.big_endian, names, tuple(programs), tuple(data_sections), sources, problem
    )


def _pointed_at(
    variable: _Symbol, relocations: tuple[tuple[int, int], ...], symbols: tuple[_Symbol, ...]
) -> tuple[str, ...]:
    """The functions the relocations inside a variable point at, in order."""
    end = variable.value + max(variable.size, 1)
    names = [
        symbols[index].name
        for offset, index in sorted(relocations)
        if variable.value <= offset < end and 0 <= index < len(symbols)
    ]
    return tuple(dict.fromkeys(n for n in names if n))


def _line_info(elf: _Elf) -> tuple[dict[str, list[LineInfo]], str | None]:
    btf = next((s.data for s in elf.sections if s.name == ".BTF"), None)
    ext = next((s.data for s in elf.sections if s.name == ".BTF.ext"), None)
    if btf is None or ext is None:
        return {}, None
    try:
        return line_info(btf, ext), None
    except BTFError as err:
        return {}, f"line info not read: {err}"


def _first_line(infos: list[LineInfo] | tuple[()], start: int, size: int) -> LineInfo | None:
    """The earliest source line among a function's instructions (its first instruction's
    line is often in the body; the smallest is nearest to the definition)."""
    end = start + size if size else start + 1
    mine = [i for i in infos if start <= i.insn_offset < end and i.line]
    if not mine:
        return None
    return min(mine, key=lambda i: (i.line, i.insn_offset))


class _Calls:
    """Helper and kfunc calls of a function, through the subprograms it calls."""

    def __init__(self, elf: _Elf) -> None:
        self.elf = elf
        self.order = ">" if elf.big_endian else "<"
        self.functions: dict[int, list[tuple[int, int]]] = {}  # section -> (start, end)
        assert elf.symbols is not None
        for s in elf.symbols:
            if s.type == "STT_FUNC" and s.shndx is not None and 0 < s.shndx < len(elf.sections):
                self.functions.setdefault(s.shndx, []).append((s.value, s.value + s.size))
        self.relocations = {section: dict(entries) for section, entries in elf.relocations.items()}

    def _extent(self, section: int, start: int) -> tuple[int, int]:
        data = self.elf.sections[section].data or b""
        for begin, end in self.functions.get(section, ()):
            if begin == start and end > begin:
                return begin, min(end, len(data))
        return start, len(data)

    def of(self, section: int, start: int) -> tuple[str, ...]:
        found: dict[str, None] = {}
        pending = [(section, start)]
        seen = set(pending)
        symbols = self.elf.symbols or ()
        while pending:
            sec, begin = pending.pop()
            code = self.elf.sections[sec].data if 0 < sec < len(self.elf.sections) else None
            if not code:
                continue
            relocs = self.relocations.get(sec, {})
            begin, end = self._extent(sec, begin)
            for at in range(begin, end - BPF_INSN_SIZE + 1, BPF_INSN_SIZE):
                if code[at] != BPF_CALL:
                    continue
                regs = code[at + 1]
                src = regs & 0x0F if self.order == ">" else regs >> 4
                (imm,) = struct.unpack_from(self.order + "i", code, at + 4)
                if src == 0:
                    name = HELPERS.get(imm)
                    if name is not None:
                        found[name] = None
                    continue
                index = relocs.get(at)
                target: tuple[int, int] | None = None
                if index is not None and 0 <= index < len(symbols):
                    symbol = symbols[index]
                    if symbol.shndx is None:  # an extern: a kfunc (or an extern subprogram)
                        if src == BPF_PSEUDO_KFUNC_CALL or symbol.type != "STT_SECTION":
                            found[symbol.name] = None
                        continue
                    target = (symbol.shndx, symbol.value + (imm + 1) * BPF_INSN_SIZE)
                elif src == BPF_PSEUDO_CALL:
                    target = (sec, at + (imm + 1) * BPF_INSN_SIZE)
                if target is not None and target not in seen and target[1] >= 0:
                    seen.add(target)
                    pending.append(target)
        return tuple(found)


# -- sites ---------------------------------------------------------------------------------


def _literal(text: str) -> str:
    """A C string literal (JSON's escapes are C's, and no line break survives)."""
    return json.dumps(text, ensure_ascii=False)


def _comment(text: str) -> str:
    return "/* " + text.replace("*/", "*\\/").replace("\n", " ") + " */"


def listing(obj: BpfObject) -> tuple[bytes, list[SectionSite]]:
    """secl's listing of an object (row N = ELF section N) and the sites in it."""
    rows: dict[int, list[tuple[str, object]]] = {}
    for program in obj.programs:
        rows.setdefault(program.elf_section, []).append(("program", program))
    for data in obj.data:
        rows.setdefault(data.elf_section, []).append(("data", data))
    text = bytearray()
    marks: list[tuple[str, object, int, int, int, int, tuple[int, int] | None]] = []
    for index in range(1, max(len(obj.sections), 2)):
        if index > 1:
            text += b"\n"
        items = rows.get(index)
        if not items:
            name = obj.sections[index] if index < len(obj.sections) else ""
            text += _comment(name or "(unnamed)").encode()
            continue
        for n, (kind, item) in enumerate(items):
            if n:
                text += b" "
            if kind == "program":
                assert isinstance(item, ObjectProgram)
                _program_text(text, item, marks)
            else:
                assert isinstance(item, ObjectData)
                _data_text(text, item, marks)
    data = bytes(text)
    positions = Positions(data)
    sites = []
    for kind, item, lit_start, lit_end, name_start, name_end, body in marks:
        span = positions.span(lit_start, lit_end)
        literal = data[lit_start:lit_end].decode()
        piece = Piece("literal", literal, item.section, span)  # type: ignore[attr-defined]
        if kind == "program":
            assert isinstance(item, ObjectProgram)
            source = item.source
            origin = ObjectOrigin(
                obj.path, item.elf_section, source.file if source else None,
                source.line if source else None, source.column if source else None,
            )  # fmt: skip
            sites.append(
                SectionSite(
                    path=obj.path,
                    macro="SEC",
                    span=span,
                    pieces=(piece,),
                    section_text=literal,
                    section=item.section,
                    kind="program",
                    program=item.name,
                    symbol=None,
                    name_span=positions.span(name_start, name_end),
                    is_static=item.is_static,
                    body=body,
                    branch=None,
                    template=False,
                    origin=origin,
                )
            )
        else:
            assert isinstance(item, ObjectData)
            origin = ObjectOrigin(obj.path, item.elf_section)
            symbol = data[name_start:name_end].decode() if name_end > name_start else None
            sites.append(
                SectionSite(
                    path=obj.path,
                    macro="SEC",
                    span=span,
                    pieces=(piece,),
                    section_text=literal,
                    section=item.section,
                    kind="data",
                    program=None,
                    symbol=symbol,
                    name_span=positions.span(name_start, name_end) if symbol else None,
                    is_static=False,
                    body=None,
                    branch=None,
                    template=False,
                    origin=origin,
                )
            )
    return data, sites


def _name(name: str) -> bytes:
    """A symbol name as the listing shows it: one row per section, whatever the name holds."""
    return name.replace("\n", "\\n").replace("\r", "\\r").encode()


def _program_text(text: bytearray, program: ObjectProgram, marks: list) -> None:
    text += b"SEC("
    lit_start = len(text)
    text += _literal(program.section).encode()
    lit_end = len(text)
    text += b") " + (b"static " if program.is_static else b"") + b"int "
    name_start = len(text)
    text += _name(program.name)
    name_end = len(text)
    text += b"(void *ctx) "
    body_start = len(text)
    text += b"{" + b"".join(f" {call}();".encode() for call in program.calls) + b" }"
    marks.append(("program", program, lit_start, lit_end, name_start, name_end,
                  (body_start, len(text))))  # fmt: skip


def _data_text(text: bytearray, data: ObjectData, marks: list) -> None:
    for n, symbol in enumerate(data.symbols or ("",)):
        if n:
            text += b" "
        text += b"SEC("
        lit_start = len(text)
        text += _literal(data.section).encode()
        lit_end = len(text)
        text += b") char "
        name_start = len(text)
        text += _name(symbol)
        name_end = len(text)
        if data.value is not None:
            text += b"[] = " + _literal(data.value).encode()
        elif n < len(data.members):
            text += b" = {" + b",".join(b" " + _name(m) for m in data.members[n]) + b" }"
        text += b";"
        marks.append(("data", data, lit_start, lit_end, name_start, name_end, None))
