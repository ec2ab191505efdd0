"""Python's cyclic garbage collector during a run (secl.api, secl.cli)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Young objects a run allocates before the cyclic collector looks at them: a run makes
# hundreds of thousands (nodes, tokens, facts) and frees them by reference counting (no
# secl record sits in a cycle: tests/test_api_memory.py), so the default 700 makes the
# collector walk them, and now and then every object of the process, for nothing.
_YOUNG_OBJECTS = 20_000


@contextmanager
def collecting_less() -> Iterator[None]:
    """The body runs with the collector's youngest-generation threshold raised (as mypy
    does), put back after; a threshold of 0 (collection switched off) is left alone."""
    threshold = gc.get_threshold()
    if threshold[0]:
        gc.set_threshold(max(threshold[0], _YOUNG_OBJECTS), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
