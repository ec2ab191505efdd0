"""A run's facts are freed by reference counting when its result is dropped: nothing secl
builds may sit in a reference cycle (a memo entry holding its project), or a library caller
that checks many trees keeps every tree and fact until the cyclic collector runs."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from secl.api import check
from secl.config import Config

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = [ROOT / "examples", *sorted((ROOT / "tests" / "fixtures" / "loaders").iterdir())]


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_a_dropped_result_leaves_no_cyclic_garbage(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    config = Config(root=str(project), cache=False, jobs=1)
    check(["."], config)  # imports and first-use caches, outside the count
    gc.collect()
    gc.disable()
    try:
        result = check(["."], config)
        assert result.run.project.sites  # the run did read something
        del result
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        cyclic = [o for o in gc.garbage if type(o).__module__.startswith("secl")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    names = sorted({type(o).__qualname__ for o in cyclic})
    assert not cyclic, (
        f"{len(cyclic)} secl objects left in cycles in {os.path.basename(project)}: {names[:8]}"
    )


def test_the_collector_looks_less_often_during_a_run_and_as_before_after() -> None:
    from secl.collector import collecting_less

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with collecting_less():
            assert gc.get_threshold() == (20_000, 10, 10)
            with collecting_less():  # nested runs keep the raised value
                assert gc.get_threshold() == (20_000, 10, 10)
            assert gc.get_threshold() == (20_000, 10, 10)
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(0, 10, 10)  # switched off by the caller: left so
        with collecting_less():
            assert gc.get_threshold() == (0, 10, 10)
        gc.set_threshold(700, 10, 10)
        with pytest.raises(RuntimeError), collecting_less():
            raise RuntimeError
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)
