"""Python's cyclic garbage collector during a run.

A run allocates hundreds of thousands of short-lived objects (tree-sitter nodes, tokens,
facts). With the default thresholds the collector walks the young ones every 700 allocations
and, now and then, every object of the process: the imported modules and the caller's own
data, none of which the run can turn into garbage. Measured on bench/loaders.py's tree that
was 7-8 % of a whole-tree check. During a run the objects that exist before it are frozen
(left out of every collection) and the youngest generation is collected less often; both are
put back when the run ends, so a library caller's process is as it was.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Most objects of a run die young through reference counting; cycles are rare (a memo that
# holds a closure over its project), so waiting for this many allocations costs little memory.
_YOUNGEST = 20_000


@contextmanager
def run_scope() -> Iterator[None]:
    """Run the body with the objects that exist now frozen and a higher youngest-generation
    threshold. Nested scopes, and a process that already froze its objects (a server that
    forks workers), are left as they are."""
    if gc.get_freeze_count():
        yield
        return
    threshold = gc.get_threshold()
    gc.freeze()
    if threshold[0]:  # 0: the caller switched collection off; keep it so
        gc.set_threshold(max(threshold[0], _YOUNGEST), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
