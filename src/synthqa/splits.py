"""Seeded, leak-free train/eval assignment.

Neighbouring chunks share their overlap text, and only within a section of a page (``chunks.py`` cuts long
pages and page-less documents into sections of about four chunks that share no text). So the unit of
assignment is a run of neighbouring chunks of one section that share text: a short PDF page, whose chunks
all overlap, is one unit as before, while paragraphs longer than the overlap give units of one chunk each.
Chunks whose text also appears elsewhere (repeated boilerplate) pull their groups together. Groups are ranked
by a seeded hash rather than shuffled, so adding a document leaves most existing assignments where they were.

The core, ``assign_units``, works on flat arrays (one unit number and one text key per chunk, one rank key
per unit), so a million chunks cost a few dozen MB; ``assign_splits`` is the same for a list of chunks, and
``starts_run`` finds the runs in one pass over chunks streamed in input order.
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
METHOD = ("by runs of overlapping chunks within a page section (chunks sharing text, and groups sharing a "
          "chunk text, never straddle the splits)")
# Neighbours sharing less than this (a heading or page-number line carried over as overlap) may go to either
# side: such a line on both sides tells a retriever nothing, and splitting there gives short documents an eval
# split. It is also the span the leak tests look for.
MIN_SHARED_CHARS = 50
TEXT_KEY_BYTES = 8  # blake2b digest of the whitespace-normalised text: 8 MB for a million chunks
RANK_KEY_BYTES = 8  # of a run's SHA-256 (see unit_key)


def shares_text(prev: str, nxt: str, min_chars: int = MIN_SHARED_CHARS) -> bool:
    """Whether ``nxt`` begins with an end of ``prev`` at least ``min_chars`` long: the splitter's overlap."""
    # Such an end begins where ``nxt``'s first ``min_chars`` characters occur in ``prev``: only those are tried.
    head = nxt[:min_chars]
    if len(head) < min_chars:
        return False
    at = prev.find(head)
    while at != -1:
        if nxt.startswith(prev[at:]):
            return True
        at = prev.find(head, at + 1)
    return False


def starts_run(prev: Chunk | None, chunk: Chunk) -> bool:
    """Whether ``chunk`` starts a run after ``prev``, the chunk before it in input order (None: the first).

    Consecutive chunks of one section that share overlap text are one run, the unit of the split."""
    return (prev is None or (prev.source, prev.page, prev.section) != (chunk.source, chunk.page, chunk.section)
            or not shares_text(prev.text, chunk.text))


def text_key(text: str) -> int:
    """The key under which two chunk texts count as the same (whitespace-normalised), as an unsigned 64-bit int.

    Two different texts with one key (about one chance in 10^7 among a million chunks) only join two groups."""
    digest = hashlib.blake2b(" ".join(text.split()).encode("utf-8"), digest_size=TEXT_KEY_BYTES).digest()
    return int.from_bytes(digest, "big")


def unit_key(seed: int, source: str, page: int, index: int) -> int:
    """The seeded rank of a run (by its first chunk), as an unsigned 64-bit int: groups are taken for eval in
    the order of their first run's key.

    The first 8 bytes of a SHA-256, read big-endian: they order runs as the whole digest did in earlier
    versions (ties in 64 bits aside), so a dataset's split stays where it was."""
    digest = hashlib.sha256(f"{seed}\0{source}\0{page}\0{index}".encode()).digest()
    return int.from_bytes(digest[:RANK_KEY_BYTES], "big")


def group_units(units: np.ndarray, text_keys: np.ndarray) -> np.ndarray:
    """Group number of each chunk: units joined whenever two of their chunks share a text key.

    ``units[i]`` is chunk i's unit, numbered in input order (nondecreasing from 0, every number used: a run's
    chunks come one after another), ``text_keys[i]`` its text key (any sortable fixed-width type). Groups are
    numbered in the order of their first chunk.
    """
    units = np.asarray(units)
    return _unit_groups(units, np.asarray(text_keys))[0][units] if len(units) else np.zeros(0, dtype=np.int32)


def _unit_groups(units: np.ndarray, text_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``group_units`` per unit, not per chunk, and each group's first unit.

    Chunk by chunk only the text keys are sorted, to find the repeated texts; the graph of units joined by a
    shared text is solved on the units it touches, and every other unit is a group of its own. At a million
    chunks (nearly all texts unique) this holds about 25 MB; a graph over every unit, and int64 labels, held
    twice that."""
    if np.any(units[1:] < units[:-1]):
        raise ValueError("units must be numbered in input order")
    n_units = int(units[-1]) + 1
    order = np.argsort(text_keys, kind="stable")  # equal keys keep input order: each run of them starts at its first
    sorted_keys = text_keys[order]
    repeat = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1]) + 1  # sorted positions whose text came earlier
    first = np.searchsorted(sorted_keys, sorted_keys[repeat], side="left")  # each repeat's first occurrence
    del sorted_keys
    joined = np.concatenate([units[order[repeat]], units[order[first]]])
    del order
    root = np.arange(n_units, dtype=np.int32)  # each unit's group, named by its lowest unit
    if len(joined):
        nodes, ends = np.unique(joined, return_inverse=True)
        edges = coo_matrix((np.ones(len(repeat)), (ends[:len(repeat)], ends[len(repeat):])), shape=(len(nodes),) * 2)
        _, label = connected_components(edges, directed=False)
        lowest = np.full(int(label.max()) + 1, n_units, dtype=np.int64)
        np.minimum.at(lowest, label, nodes)
        root[nodes] = lowest[label]
    # a group's first chunk is in its lowest unit (units are in input order): groups are numbered by that unit
    is_root = root == np.arange(n_units, dtype=np.int32)
    number = np.cumsum(is_root, dtype=np.int32) - 1
    return number[root], np.flatnonzero(is_root).astype(np.int32)


def assign_units(units: np.ndarray, text_keys: np.ndarray, unit_keys: np.ndarray, eval_fraction: float) -> np.ndarray:
    """True for each chunk that goes to eval; the same inputs always give the same answer.

    ``units`` and ``text_keys`` as ``group_units`` takes them; ``unit_keys[u]`` (any sortable fixed-width type)
    ranks unit u (see ``unit_key``); a group is ranked by its first unit.
    Eval is filled up to ``eval_fraction`` of the chunks, group by group in rank order, never overshooting by
    more than half a group. A tiny input (two or three groups) still gets an eval split: its smallest group.
    One group (a single page) cannot be split without leaking overlap text, so its eval stays empty.
    """
    units = np.asarray(units)
    if not len(units):
        return np.zeros(0, dtype=bool)
    unit_group, first_unit = _unit_groups(units, np.asarray(text_keys))
    n_groups = len(first_unit)
    sizes = np.bincount(unit_group[units], minlength=n_groups)
    by_rank = np.argsort(np.asarray(unit_keys)[first_unit], kind="stable")
    target = round(eval_fraction * len(units))
    take = np.zeros(n_groups, dtype=bool)
    in_eval = 0
    for g in by_rank:
        if in_eval >= target:
            break  # nothing more is taken: the loop runs over the eval groups, not all of them
        size = int(sizes[g])
        if (target - in_eval) * 2 >= size:
            take[g] = True
            in_eval += size
    if in_eval == 0 and n_groups > 1:
        take[int(np.argmin(sizes))] = True  # the first of the smallest groups
    return take[unit_group][units]


def group_chunks(chunks: Sequence[Chunk]) -> list[list[Chunk]]:
    """Chunks grouped by run, merging groups that share an identical (whitespace-normalised) chunk text."""
    units, _ = _units(chunks)
    group = group_units(units, np.array([text_key(c.text) for c in chunks], dtype=np.uint64))
    groups: list[list[Chunk]] = [[] for _ in range(int(group.max()) + 1 if len(group) else 0)]
    for chunk, g in zip(chunks, group):
        groups[g].append(chunk)
    return groups


def assign_splits(chunks: Sequence[Chunk], eval_fraction: float, seed: int) -> dict[str, str]:
    """Map each chunk id to "train" or "eval"; the same chunks and seed always give the same answer."""
    units, runs = _units(chunks)
    keys = np.array([text_key(c.text) for c in chunks], dtype=np.uint64)
    is_eval = assign_units(units, keys, np.array([unit_key(seed, *run) for run in runs], dtype=np.uint64),
                           eval_fraction)
    return {c.id: EVAL if e else TRAIN for c, e in zip(chunks, is_eval)}


def _units(chunks: Sequence[Chunk]) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
    """Each chunk's run number, and (source, page, first chunk index) of each run."""
    units, first = [], []
    for prev, chunk in zip([None, *chunks], chunks):
        if starts_run(prev, chunk):
            first.append((chunk.source, chunk.page, chunk.index))
        units.append(len(first) - 1)
    return np.array(units, dtype=np.int64), first
