"""Python loaders: BCC."""

from __future__ import annotations

from pathlib import Path

import pytest

from secl.loaders import BCC, LIBBPF, FileLoaders, LoaderUse
from secl.loaders.python import extract_python, is_python_loader

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "loaders"


def read(source: str, path: str = "tools/snoop.py") -> FileLoaders:
    return extract_python(path, source.encode())


def uses(source: str) -> list[tuple[int, tuple[str, ...], bool]]:
    found = read(source)
    assert all(u.kind == BCC for u in found.uses)
    assert found.facts is None  # BCC is not modelled: only the use matters
    return [(u.span.start.row, u.sources, u.certain) for u in found.uses]


def only_use(source: str) -> LoaderUse:
    found = read(source).uses
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    "text", [b"from bcc import BPF\nb = BPF(text=prog)\n", b"import bcc\nbcc.BPF(src_file='x.c')"]
)
def test_prefilter_accepts_bcc_tools(text: bytes) -> None:
    assert is_python_loader(text)


@pytest.mark.parametrize("text", [b"import os\nprint('BPF')\n", b"from bcc import USDT\n", b""])
def test_prefilter_rejects_other_python(text: bytes) -> None:
    assert not is_python_loader(text)


def test_src_file_keyword_bytes_and_positional() -> None:
    source = """
from bcc import BPF
a = BPF(src_file="probe.c")
b = BPF(src_file=b"bytes.c", cflags=["-DX"])
c = BPF("positional.c")
"""
    assert uses(source) == [
        (3, ("probe.c",), True),
        (4, ("bytes.c",), True),
        (5, ("positional.c",), True),
    ]


def test_src_file_next_to_the_script() -> None:
    source = """
import os
from pathlib import Path
from bcc import BPF
HERE = os.path.dirname(os.path.abspath(__file__))
a = BPF(src_file=os.path.join(HERE, "bpf", "probe.c"))
b = BPF(src_file=str(Path(__file__).parent / "other.c"))
"""
    assert uses(source) == [(6, ("bpf/probe.c",), True), (7, ("other.c",), True)]


def test_text_read_from_a_file() -> None:
    source = """
from bcc import BPF
a = BPF(text=open("one.c").read())
with open("two.c") as f:
    prog = f.read()
prog = prog.replace("FILTER", "1")
b = BPF(text=prog)
def load():
    return open("three.c", "r").read()
c = BPF(text=load())
"""
    assert uses(source) == [
        (3, ("one.c",), True),
        (7, ("two.c",), True),
        (10, ("three.c",), True),
    ]


def test_inline_text_has_no_source() -> None:
    source = '''
from bcc import BPF
bpf_text = """
int kprobe__do_unlinkat(struct pt_regs *ctx) { return 0; }
"""
if filter_pid:
    bpf_text = bpf_text.replace("FILTER", "pid != %d" % pid)
bpf_text += "\\n"
b = BPF(text=bpf_text)
c = BPF(text=f"int x = {value};")
'''
    found = read(source).uses
    assert [(u.sources, u.certain, u.value) for u in found] == [
        ((), True, "BPF(text=<C in Python>)"),
        ((), True, "BPF(text=<C in Python>)"),
    ]


def test_unknown_source_is_uncertain() -> None:
    source = """
import sys
from bcc import BPF
b = BPF(src_file=sys.argv[1])
c = BPF(text=make_text())
"""
    assert uses(source) == [(4, (), False), (5, (), False)]


def test_aliases_and_module_import() -> None:
    source = """
import bcc as B
from bcc import BPF as Loader
a = B.BPF(src_file="a.c")
b = Loader(src_file="b.c")
c = BPF(src_file="not-bcc.c")  # BPF is not bound to bcc's class here
"""
    assert uses(source) == [(4, ("a.c",), True), (5, ("b.c",), True)]


def test_no_bcc_import_no_use() -> None:
    assert read("from mylib import BPF\nb = BPF(src_file='x.c')\n").uses == []


def test_attach_calls_are_nothing_more() -> None:
    source = """
from bcc import BPF
b = BPF(src_file="probe.c")
b.attach_kprobe(event="do_unlinkat", fn_name="trace_unlink")
b.attach_uprobe(name="c", sym="malloc", fn_name="trace_malloc")
"""
    found = read(source)
    assert len(found.uses) == 1 and found.facts is None


def test_file_that_does_not_parse() -> None:
    source = """
from bcc import BPF
b = BPF(src_file="ok.c")
def broken(:
    pass
"""
    found = read(source)
    assert found.problem is not None and "line" in found.problem and "\n" not in found.problem
    assert [u.sources for u in found.uses] == [("ok.c",)]


def test_binary_garbage_does_not_raise() -> None:
    assert isinstance(extract_python("x.py", b"\xff\x00 bcc BPF( \xfe"), FileLoaders)


def test_bcc_fixture() -> None:
    root = FIXTURES / "bcc"
    found = extract_python("unlinksnoop.py", (root / "unlinksnoop.py").read_bytes())
    use = only_use((root / "unlinksnoop.py").read_text())
    assert found.problem is None
    assert (use.kind, use.sources, use.certain) == (BCC, ("probe.c",), True)
    assert (root / use.sources[0]).is_file()


# -- pylibbpf: libbpf itself, bound for Python -------------------------------------------

PYLIBBPF = """
import os
from pylibbpf import BpfObject, BpfMap
import pylibbpf as plb

HERE = os.path.dirname(os.path.abspath(__file__))

def main():
    obj = BpfObject(os.path.join(HERE, "probe.bpf.o"))
    obj.load()
    obj.attach_all()
    other = plb.BpfObject(object_path="build/other.o")
    unknown = BpfObject(sys.argv[1])
"""


def test_pylibbpf_objects_are_opened_by_libbpf() -> None:
    found = read(PYLIBBPF, "tools/run.py")
    assert [(u.kind, u.objects, u.value, u.auto_attach, u.certain) for u in found.uses] == [
        (LIBBPF, ("probe.bpf.o",), "pylibbpf BpfObject(probe.bpf.o)", True, True),
        (LIBBPF, ("build/other.o",), "pylibbpf BpfObject(other.o)", True, True),
        (LIBBPF, (), "pylibbpf BpfObject(?)", True, False),
    ]


def test_pylibbpf_prefilter_and_other_classes() -> None:
    assert is_python_loader(b"from pylibbpf import BpfObject\n")
    # BpfMap and a BpfObject of another module are not pylibbpf's object opener.
    source = "from pylibbpf import BpfMap\nfrom mine import BpfObject\nBpfObject('x.o')\n"
    assert read(source).uses == []


def test_tinybpf_load_is_opened_by_libbpf() -> None:
    source = """
from pathlib import Path
import tinybpf

def main():
    bpf_obj = Path(__file__).parent / "trace_exec.bpf.o"
    with tinybpf.load(bpf_obj) as obj:
        obj.programs["trace_execve"].attach()
"""
    use = only_use(source)
    assert (use.kind, use.objects, use.value, use.certain) == (
        LIBBPF, ("trace_exec.bpf.o",), "tinybpf load(trace_exec.bpf.o)", True
    )  # fmt: skip
