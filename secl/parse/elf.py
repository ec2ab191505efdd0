"""pyelftools' ELFFile, cheaper to open once per object when a run reads many objects.

pyelftools builds its `ELFStructs` (a few dozen construct structs) anew for every ELFFile:
elftools/elf/elffile.py, ELFFile.__init__() calls ELFStructs.create_basic_structs() and
create_advanced_structs() each time, about 70% of what ELFFile() costs on a BPF object. The
structs depend only on the byte order, the class and, for the advanced ones, on e_type,
e_machine and EI_OSABI (elftools/elf/structs.py: ELFStructs.__getstate__() names exactly
these five as its whole state), and construct parses without changing them, so files of the
same kind can share them.

ReusingELFFile takes ELFFile.__init__'s steps (pyelftools 0.33) with the structs taken from
that cache. It relies on internals of pyelftools, hence the pin `pyelftools>=0.33,<0.34`;
tests/parse/test_elf.py fails when a new pyelftools sets other attributes in __init__, reads
a file otherwise, or stops using the shared structs.

Importing this module imports pyelftools (≈35 ms): only code that reads an object does.
"""

from __future__ import annotations

import functools
import io

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.structs import ELFStructs

_Key = tuple[bool, int, object, object, object]
# A run meets one or two kinds (BPF, both byte orders); corrupted headers can make up more
# keys, so the memo is bounded.
_MAX_KINDS = 16


@functools.lru_cache(maxsize=4)
def _basic_structs(little_endian: bool, elfclass: int) -> ELFStructs:
    structs = ELFStructs(little_endian=little_endian, elfclass=elfclass)
    structs.create_basic_structs()
    return structs


@functools.lru_cache(maxsize=_MAX_KINDS)
def _full_structs(key: _Key) -> ELFStructs:
    little_endian, elfclass, e_type, e_machine, osabi = key
    structs = ELFStructs(little_endian=little_endian, elfclass=elfclass)
    structs.create_basic_structs()
    structs.create_advanced_structs(e_type, e_machine, osabi)  # type: ignore[arg-type]
    return structs


class ReusingELFFile(ELFFile):
    """An ELFFile over `data` whose ELFStructs are shared with earlier files of its kind."""

    def __init__(self, data: bytes) -> None:
        # ELFFile.__init__ of pyelftools 0.33, step by step; no stream_loader (no DWARF
        # is read through it).
        self.stream = io.BytesIO(data)
        self.stream_len = len(data)
        self._identify_file()
        self.structs = _basic_structs(self.little_endian, self.elfclass)
        self.header = self._parse_elf_header()
        self.structs = _full_structs(
            (
                self.little_endian,
                self.elfclass,
                self["e_type"],
                self["e_machine"],
                self["e_ident"]["EI_OSABI"],
            )
        )
        self.stream.seek(0)
        self.e_ident_raw = self.stream.read(16)
        self.stream_loader = None
        self._shdr_size = self.structs.Elf_Shdr.sizeof()

    def _section_offset(self, n: int) -> int:
        # ELFFile._section_offset() with the size of a section header computed once: the
        # base class has construct add up the struct's fields on every call.
        shentsize = self["e_shentsize"]
        if self["e_shoff"] > 0 and shentsize < self._shdr_size:
            raise ELFError(f"Too small e_shentsize: {shentsize}")
        return self["e_shoff"] + n * shentsize
