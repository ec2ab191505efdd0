"""quick_init: the same records as the dataclass __init__ makes, made faster."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import pytest

from secl.analysis.links import LinkedFact, Resolution
from secl.facts import Piece, Position, SectionSite, Span
from secl.findings import Finding, Related, UpgradeInfo
from secl.loaders import FileLoaders, LoaderUse
from secl.parse.loader import LoaderFact, ObjectRef, ProgramRef
from secl.records import quick_init

QUICK = [Span, Piece, SectionSite, LoaderUse, ObjectRef, ProgramRef, LoaderFact, Resolution,
         LinkedFact, UpgradeInfo, Finding, Related]  # fmt: skip


def _plain(cls: type) -> type:
    """The same fields as a plain frozen dataclass: what the dataclass __init__ would be."""
    return dataclasses.make_dataclass(
        cls.__name__,
        [(f.name, object, f) for f in dataclasses.fields(cls)],
        frozen=True,
        slots=True,
    )


@pytest.mark.parametrize("cls", QUICK, ids=lambda c: c.__name__)
def test_the_signature_is_the_dataclass_one(cls: type) -> None:
    assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"
    assert "_set0" in cls.__init__.__code__.co_names  # the quick one is in place
    quick = inspect.signature(cls.__init__)
    plain = inspect.signature(_plain(cls).__init__)
    assert [(p.name, p.default, p.kind) for p in quick.parameters.values()] == [
        (p.name, p.default, p.kind) for p in plain.parameters.values()
    ]


def test_records_behave_as_dataclasses() -> None:
    start, end = Position(1, 1), Position(1, 4)
    span = Span(0, 3, start, end)
    assert span == Span(start_byte=0, end_byte=3, start=start, end=end)
    assert hash(span) == hash(Span(0, 3, Position(1, 1), Position(1, 4)))
    assert dataclasses.replace(span, end_byte=9).end_byte == 9
    assert pickle.loads(pickle.dumps(span)) == span
    with pytest.raises(dataclasses.FrozenInstanceError):
        span.start_byte = 1  # type: ignore[misc]
    use = LoaderUse("cilium", "a.go", span, "bpf2go")  # defaults filled in
    assert use.sources == () and use.certain is True
    with pytest.raises(TypeError):
        Span(0, 3, start)  # type: ignore[call-arg]


def test_classes_it_cannot_speed_up_keep_their_own_init() -> None:
    assert quick_init(FileLoaders) is FileLoaders  # a default factory
    assert "_set0" not in FileLoaders.__init__.__code__.co_names
