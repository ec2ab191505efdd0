"""The little of `.BTF` and `.BTF.ext` that maps a compiled program back to its source: the
string section, and the line info records (instruction -> file, line, column).

No maintained Python library reads BTF, and secl needs only this part of it, so it is read
here with `struct`, after the kernel's own layout (include/uapi/linux/btf.h: struct
btf_header; tools/lib/bpf/libbpf_internal.h: struct btf_ext_header, btf_ext_info_sec,
bpf_line_info). Both sections are written in the object's byte order: the magic 0xeB9F
tells which. Every offset is checked: a truncated or corrupted section raises BTFError.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

BTF_MAGIC = 0xEB9F
# include/uapi/linux/bpf.h: BPF_LINE_INFO_LINE_NUM / BPF_LINE_INFO_LINE_COL
_LINE_SHIFT = 10
_COLUMN_MASK = 0x3FF


class BTFError(ValueError):
    """A .BTF or .BTF.ext section that cannot be read."""


@dataclass(frozen=True, slots=True)
class LineInfo:
    """Where one instruction of a program section comes from."""

    insn_offset: int  # bytes from the start of the ELF section
    file: str
    line: int
    column: int


def _order(data: bytes, what: str) -> str:
    """`<` or `>`: the byte order the section's magic is written in."""
    if len(data) < 8:
        raise BTFError(f"{what}: {len(data)} bytes, shorter than its header")
    if struct.unpack_from("<H", data)[0] == BTF_MAGIC:
        return "<"
    if struct.unpack_from(">H", data)[0] == BTF_MAGIC:
        return ">"
    raise BTFError(f"{what}: bad magic {data[:2].hex()}")


def _within(data: bytes, start: int, length: int, what: str) -> bytes:
    if start < 0 or length < 0 or start + length > len(data):
        raise BTFError(f"{what} lies outside the section ({start}+{length} > {len(data)})")
    return data[start : start + length]


@dataclass(frozen=True, slots=True)
class Strings:
    """The string section of a .BTF section."""

    blob: bytes

    def at(self, offset: int) -> str:
        if not 0 <= offset < len(self.blob):
            raise BTFError(f"string offset {offset} outside the string section")
        end = self.blob.find(b"\0", offset)
        if end < 0:
            raise BTFError(f"string at {offset} is not terminated")
        return self.blob[offset:end].decode("utf-8", "replace")


def btf_strings(btf: bytes) -> Strings:
    """The strings of a .BTF section (file names and section names of .BTF.ext point here)."""
    order = _order(btf, ".BTF")
    if len(btf) < 24:
        raise BTFError(f".BTF: {len(btf)} bytes, shorter than its header")
    hdr_len, _type_off, _type_len, str_off, str_len = struct.unpack_from(order + "5I", btf, 4)
    if hdr_len < 24:
        raise BTFError(f".BTF: header length {hdr_len}")
    return Strings(_within(btf, hdr_len + str_off, str_len, ".BTF strings"))


def line_info(btf: bytes, btf_ext: bytes) -> dict[str, list[LineInfo]]:
    """ELF section name -> its line info records in instruction order."""
    strings = btf_strings(btf)
    order = _order(btf_ext, ".BTF.ext")
    if len(btf_ext) < 24:
        raise BTFError(f".BTF.ext: {len(btf_ext)} bytes, shorter than its header")
    hdr_len, _func_off, _func_len, line_off, line_len = struct.unpack_from(order + "5I", btf_ext, 4)
    if hdr_len < 24:
        raise BTFError(f".BTF.ext: header length {hdr_len}")
    if line_len == 0:
        return {}
    block = _within(btf_ext, hdr_len + line_off, line_len, ".BTF.ext line info")
    if len(block) < 4:
        raise BTFError(".BTF.ext line info: no record size")
    (record_size,) = struct.unpack_from(order + "I", block)
    if record_size < 16:
        raise BTFError(f".BTF.ext line info: record size {record_size}")
    out: dict[str, list[LineInfo]] = {}
    files: dict[int, str] = {}
    at = 4
    while at < len(block):
        if at + 8 > len(block):
            raise BTFError(".BTF.ext line info: truncated section header")
        name_off, count = struct.unpack_from(order + "2I", block, at)
        at += 8
        records = _within(block, at, count * record_size, ".BTF.ext line info records")
        at += len(records)
        infos = out.setdefault(strings.at(name_off), [])
        for i in range(count):
            insn, file_off, _line_off, line_col = struct.unpack_from(
                order + "4I", records, i * record_size
            )
            name = files.get(file_off)
            if name is None:
                name = files[file_off] = strings.at(file_off)
            infos.append(LineInfo(insn, name, line_col >> _LINE_SHIFT, line_col & _COLUMN_MASK))
    for infos in out.values():
        infos.sort(key=lambda i: i.insn_offset)
    return out
