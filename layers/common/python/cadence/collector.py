"""The cyclic garbage collector held off while bulk code builds many short-lived containers.

Ingest builds millions of lists, tuples and dicts per file (rows, cells, items) that hold no reference cycles
and die by reference count. Each 700 container allocations start a collection that walks the young objects
anyway, and every so often all of them: a sixth of the CPU of cleaning a chunk (`make bench` ingest-cpu).
`paused()` holds the collector off for one bulk step, as a `with` block or a decorator; whatever cycles the
step made are collected at the next collection after it. It nests, and code that turned the collector off
itself keeps it off.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """The collector off for the block, back on after it (also when the block raises) if it was on before."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
