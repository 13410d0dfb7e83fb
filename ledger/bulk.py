"""The collector's settings for bulk work: import, restore, rebuild and verify."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0


@contextmanager
def bulk_work() -> Iterator[None]:
    """Bulk work allocates millions of objects that live on (cached aggregates, staged rows,
    decoded pages): the collector's full passes over them find nothing to free but cost a
    third of the time. What exists before is frozen out of its view and it runs far less
    often; both are put back afterwards (by the outermost, when one bulk job runs another:
    a restore rebuilds)."""
    global _depth
    if _depth:
        yield
        return
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        gc.set_threshold(*thresholds)
        gc.unfreeze()
