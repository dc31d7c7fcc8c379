"""Seeded, leak-free train/eval assignment.

Neighbouring chunks of a page share their overlap text, so a page is the unit of assignment; chunks whose
text also appears elsewhere (repeated boilerplate) pull their groups together. Groups are ranked by a
seeded hash rather than shuffled, so adding a document leaves most existing assignments where they were.

The core, ``assign_units``, works on flat arrays (one unit number and one text key per chunk, one rank key
per unit), so a million chunks cost a few dozen MB; ``assign_splits`` is the same for a list of chunks.
A unit is a page today; anything that must not straddle the splits can be a unit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .records import Chunk

TRAIN, EVAL = "train", "eval"
SPLITS = (TRAIN, EVAL)
METHOD = "by page groups (chunks of one page, and pages sharing a chunk text, never straddle the splits)"
TEXT_KEY_BYTES = 16  # blake2b digest of the whitespace-normalised text: 16 MB for a million chunks


def text_key(text: str) -> bytes:
    """The key under which two chunk texts count as the same (whitespace-normalised)."""
    return hashlib.blake2b(" ".join(text.split()).encode("utf-8"), digest_size=TEXT_KEY_BYTES).digest()


def unit_key(seed: int, source: str, page: int) -> bytes:
    """The seeded rank of a page: groups are taken for eval in the order of their first page's key."""
    return hashlib.sha256(f"{seed}\0{source}\0{page}".encode()).digest()


def group_units(units: np.ndarray, text_keys: np.ndarray) -> np.ndarray:
    """Group number of each chunk: units joined whenever two of their chunks share a text key.

    ``units[i]`` is chunk i's unit (0 … n_units-1), ``text_keys[i]`` its text key (fixed-width bytes).
    Groups are numbered in the order of their first chunk.
    """
    units = np.asarray(units, dtype=np.int64)
    n = len(units)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    n_units = int(units.max()) + 1
    _, first, inverse = np.unique(np.asarray(text_keys), return_index=True, return_inverse=True)
    repeat = np.flatnonzero(first[inverse] != np.arange(n))  # chunks whose text appeared earlier
    edges = coo_matrix((np.ones(len(repeat)), (units[repeat], units[first[inverse[repeat]]])), shape=(n_units,) * 2)
    _, label = connected_components(edges, directed=False)
    group = label[units]
    # renumber by first appearance, so group order (and the tie-breaks below) follow the input order
    _, first_chunk, dense = np.unique(group, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first_chunk, kind="stable"), kind="stable")[dense]


def assign_units(units: np.ndarray, text_keys: np.ndarray, unit_keys: np.ndarray, eval_fraction: float) -> np.ndarray:
    """True for each chunk that goes to eval; the same inputs always give the same answer.

    ``unit_keys[u]`` (fixed-width bytes) ranks unit u (see ``unit_key``); a group is ranked by the unit of its
    first chunk.
    Eval is filled up to ``eval_fraction`` of the chunks, group by group in rank order, never overshooting by
    more than half a group. A tiny input (two or three groups) still gets an eval split: its smallest group.
    One group (a single page) cannot be split without leaking overlap text, so its eval stays empty.
    """
    units = np.asarray(units, dtype=np.int64)
    group = group_units(units, text_keys)
    n_groups = int(group.max()) + 1 if len(group) else 0
    sizes = np.bincount(group, minlength=n_groups)
    first_chunk = np.full(n_groups, len(group), dtype=np.int64)
    np.minimum.at(first_chunk, group, np.arange(len(group)))
    keys = np.asarray(unit_keys)[units[first_chunk]]
    target = round(eval_fraction * len(group))
    take = np.zeros(n_groups, dtype=bool)
    in_eval = 0
    for g in np.argsort(keys, kind="stable"):
        size = int(sizes[g])
        if in_eval < target and (target - in_eval) * 2 >= size:
            take[g] = True
            in_eval += size
    if in_eval == 0 and n_groups > 1:
        take[int(np.argmin(sizes))] = True  # the first of the smallest groups
    return take[group]


def group_chunks(chunks: Sequence[Chunk]) -> list[list[Chunk]]:
    """Chunks grouped by page, merging groups that share an identical (whitespace-normalised) chunk text."""
    units, _ = _units(chunks)
    group = group_units(units, np.array([text_key(c.text) for c in chunks], dtype=f"S{TEXT_KEY_BYTES}"))
    groups: list[list[Chunk]] = [[] for _ in range(int(group.max()) + 1 if len(group) else 0)]
    for chunk, g in zip(chunks, group):
        groups[g].append(chunk)
    return groups


def assign_splits(chunks: Sequence[Chunk], eval_fraction: float, seed: int) -> dict[str, str]:
    """Map each chunk id to "train" or "eval"; the same chunks and seed always give the same answer."""
    units, pages = _units(chunks)
    keys = np.array([text_key(c.text) for c in chunks], dtype=f"S{TEXT_KEY_BYTES}")
    is_eval = assign_units(units, keys, np.array([unit_key(seed, s, p) for s, p in pages], dtype="S32"), eval_fraction)
    return {c.id: EVAL if e else TRAIN for c, e in zip(chunks, is_eval)}


def _units(chunks: Sequence[Chunk]) -> tuple[np.ndarray, list[tuple[str, int]]]:
    number: dict[tuple[str, int], int] = {}
    units = np.array([number.setdefault((c.source, c.page), len(number)) for c in chunks], dtype=np.int64)
    return units, list(number)
