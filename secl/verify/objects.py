"""The programs of a BPF object file, read from its ELF tables the way libbpf finds them
(libbpf.c: bpf_object__add_programs: every STT_FUNC symbol of an executable section other
than .text is a program, and the section name is its SEC())."""

from __future__ import annotations

import errno
import os
import stat
import struct
from dataclasses import dataclass

EM_BPF = 247
SHT_SYMTAB = 2
SHF_EXECINSTR = 0x4
STT_FUNC = 2


class NotABpfObject(ValueError):
    pass


class NotRegularFile(NotABpfObject):
    """A FIFO, device, socket or directory: skipped, never read (a FIFO would block, a device
    like /dev/zero would never end)."""


@dataclass(frozen=True, slots=True)
class ObjectProgram:
    """A program of a compiled object file."""

    object: str  # the path as given
    name: str
    section: str


def read_object(path: str) -> bytes:
    """The bytes of a regular file. A device is never opened (opening some has effects); the
    open is non-blocking and checked again on its descriptor, so that a FIFO swapped in after
    the first check cannot block it either."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise NotRegularFile(f"{path}: not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        if err.errno == errno.ENXIO:  # a FIFO or socket with nobody at the other end
            raise NotRegularFile(f"{path}: not a regular file") from err
        raise NotABpfObject(f"{path}: {err.strerror}") from err
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(f"{path}: not a regular file")
        return f.read()


def read_programs(path: str) -> list[ObjectProgram]:
    data = read_object(path)
    if data[:4] != b"\x7fELF" or len(data) < 64:
        raise NotABpfObject(f"{path}: not an ELF file")
    if data[4] != 2 or data[5] != 1:
        raise NotABpfObject(f"{path}: not a little-endian 64-bit ELF file")
    (machine,) = struct.unpack_from("<H", data, 18)
    if machine != EM_BPF:
        raise NotABpfObject(f"{path}: not a BPF object (e_machine {machine})")
    shoff, = struct.unpack_from("<Q", data, 40)  # fmt: skip
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 58)
    sections = []
    for i in range(shnum):
        name, stype, flags, _addr, offset, size, link, _info, _align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, shoff + i * shentsize
        )
        sections.append((name, stype, flags, offset, size, link, entsize))
    if not sections or shstrndx >= len(sections):
        raise NotABpfObject(f"{path}: no section header string table")
    strtab_offset = sections[shstrndx][3]

    def cstring(base: int, index: int) -> str:
        end = data.index(b"\0", base + index)
        return data[base + index : end].decode("utf-8", "replace")

    names = [cstring(strtab_offset, s[0]) for s in sections]
    programs: list[ObjectProgram] = []
    for _name, stype, _flags, offset, size, link, entsize in sections:
        if stype != SHT_SYMTAB or not entsize:
            continue
        strings = sections[link][3]
        for at in range(offset, offset + size, entsize):
            st_name, st_info, _other, st_shndx = struct.unpack_from("<IBBH", data, at)
            if st_info & 0xF != STT_FUNC or not 0 < st_shndx < len(sections):
                continue
            section_name = names[st_shndx]
            if not sections[st_shndx][2] & SHF_EXECINSTR or section_name == ".text":
                continue
            programs.append(ObjectProgram(path, cstring(strings, st_name), section_name))
    return programs
