"""Seeded, leak-free train/eval assignment.

Neighbouring chunks share their overlap text, and only within a section of a page (``chunks.py`` cuts long
pages and page-less documents into sections of about four chunks that share no text). So the unit of
assignment is a run of neighbouring chunks of one section that share text: a short PDF page, whose chunks
all overlap, is one unit as before, while paragraphs longer than the overlap give units of one chunk each.
Chunks whose text also appears elsewhere (repeated boilerplate) pull their groups together. Groups are ranked
by a seeded hash rather than shuffled, so adding a document leaves most existing assignments where they were.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .records import Chunk

TRAIN, EVAL = "train", "eval"
SPLITS = (TRAIN, EVAL)
METHOD = ("by runs of overlapping chunks within a page section (chunks sharing text, and groups sharing a "
          "chunk text, never straddle the splits)")
# Neighbours sharing less than this (a heading or page-number line carried over as overlap) may go to either
# side: such a line on both sides tells a retriever nothing, and splitting there gives short documents an eval
# split. It is also the span the leak tests look for.
MIN_SHARED_CHARS = 50

Run = tuple[str, int, int, int]  # source, page, section, index of the run's first chunk


def shares_text(prev: str, nxt: str, min_chars: int = MIN_SHARED_CHARS) -> bool:
    """Whether ``nxt`` begins with an end of ``prev`` at least ``min_chars`` long: the splitter's overlap."""
    return any(nxt.startswith(prev[i:]) for i in range(len(prev) - min_chars + 1))


def runs(chunks: Sequence[Chunk]) -> dict[str, Run]:
    """Chunk id → its run: consecutive chunks of one section that share overlap text are one run."""
    of: dict[str, Run] = {}
    prev: Chunk | None = None
    for chunk in chunks:
        same_section = prev is not None and (prev.source, prev.page, prev.section) == (
            chunk.source, chunk.page, chunk.section)
        if same_section and shares_text(prev.text, chunk.text):
            of[chunk.id] = of[prev.id]
        else:
            of[chunk.id] = (chunk.source, chunk.page, chunk.section, chunk.index)
        prev = chunk
    return of


def group_chunks(chunks: Sequence[Chunk]) -> list[list[Chunk]]:
    """Chunks grouped by run, merging groups that share an identical (whitespace-normalised) chunk text."""
    run_of = runs(chunks)
    parent: dict[Run, Run] = {run: run for run in run_of.values()}

    def find(key):
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    by_text: dict[str, Run] = {}
    for chunk in chunks:
        run = run_of[chunk.id]
        other = by_text.setdefault(" ".join(chunk.text.split()), run)
        parent[find(run)] = find(other)

    groups: dict[Run, list[Chunk]] = {}
    for chunk in chunks:
        groups.setdefault(find(run_of[chunk.id]), []).append(chunk)
    return list(groups.values())


def assign_splits(chunks: Sequence[Chunk], eval_fraction: float, seed: int) -> dict[str, str]:
    """Map each chunk id to "train" or "eval"; the same chunks and seed always give the same answer."""
    groups = group_chunks(chunks)

    def rank(group: list[Chunk]) -> str:
        first = group[0]
        return hashlib.sha256(f"{seed}\0{first.source}\0{first.page}\0{first.index}".encode()).hexdigest()

    target = round(eval_fraction * len(chunks))
    assignment: dict[str, str] = {}
    in_eval = 0
    for group in sorted(groups, key=rank):
        # Fill eval up to the target without overshooting by more than half a group.
        take = in_eval < target and (target - in_eval) * 2 >= len(group)
        if take:
            in_eval += len(group)
        for chunk in group:
            assignment[chunk.id] = EVAL if take else TRAIN
    if in_eval == 0 and len(groups) > 1:
        # A tiny input (two or three groups) still gets an eval split: the smallest group goes there.
        for chunk in min(groups, key=len):
            assignment[chunk.id] = EVAL
    # One group (chunks that all overlap: a page or document of at most a few chunks) cannot be split
    # without leaking overlap text: eval stays empty and the command's summary says so.
    return assignment
