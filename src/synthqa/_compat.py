"""Small shims for the Python versions synthqa supports (3.11+)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator


def batched(items: Iterable, size: int) -> Iterator[list]:
    """Lists of ``size`` consecutive items (the last one shorter): ``itertools.batched`` from Python 3.12."""
    iterator = iter(items)
    while block := list(itertools.islice(iterator, size)):
        yield block
