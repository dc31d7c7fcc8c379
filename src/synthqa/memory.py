"""Giving freed memory back to the system between the stages of a large run.

A stage that built and dropped large arrays or row buffers leaves its memory freed but still resident: glibc
keeps freed blocks inside its heap (only the top is trimmed, and its mmap threshold rises after the first large
free, so later large blocks land in the heap too), and Arrow's allocator (mimalloc) keeps what its tables used.
The next stage then runs on top of the last one's high-water mark. At a million chunks that was most of what the
process held beyond its first 100k chunks' worth (``bench/bench_scale.py``, ``bench/bench_write.py``).
``release`` hands both back; it frees nothing that is still in use, so it is safe at any point, only not free
(a few milliseconds), and it is called between stages and between row groups, not per row.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None (musl, macOS, Windows: nothing to call)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release(heap: bool = True) -> None:
    """Return the freed memory that Arrow's default pool (once pyarrow is imported) and, with ``heap``, the C
    heap hold to the system. Arrow's alone is what a writer between row groups needs, and cheaper."""
    trim = _malloc_trim() if heap else None
    if trim is not None:
        trim(0)
    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()
