"""Seeded, leak-free train/eval assignment.

Neighbouring chunks share their overlap text only within a section of a page (``chunks.py`` cuts long pages
and page-less documents into sections of about four chunks that share no text), so a section is the unit of
assignment: a short PDF page is one section, as before. Chunks whose text also appears elsewhere (repeated
boilerplate) pull their groups together. Groups are ranked by a seeded hash rather than shuffled, so adding
a document leaves most existing assignments where they were.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .records import Chunk

TRAIN, EVAL = "train", "eval"
SPLITS = (TRAIN, EVAL)
METHOD = ("by sections (chunks of one page section, and sections sharing a chunk text, never straddle the "
          "splits)")


Section = tuple[str, int, int]  # source, page, section


def group_chunks(chunks: Sequence[Chunk]) -> list[list[Chunk]]:
    """Chunks grouped by section, merging groups that share an identical (whitespace-normalised) chunk text."""
    parent: dict[Section, Section] = {}

    def find(key):
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    by_text: dict[str, Section] = {}
    for chunk in chunks:
        section = (chunk.source, chunk.page, chunk.section)
        parent.setdefault(section, section)
        text = " ".join(chunk.text.split())
        other = by_text.setdefault(text, section)
        parent[find(section)] = find(other)

    groups: dict[Section, list[Chunk]] = {}
    for chunk in chunks:
        groups.setdefault(find((chunk.source, chunk.page, chunk.section)), []).append(chunk)
    return list(groups.values())


def assign_splits(chunks: Sequence[Chunk], eval_fraction: float, seed: int) -> dict[str, str]:
    """Map each chunk id to "train" or "eval"; the same chunks and seed always give the same answer."""
    groups = group_chunks(chunks)

    def rank(group: list[Chunk]) -> str:
        first = group[0]
        return hashlib.sha256(f"{seed}\0{first.source}\0{first.page}\0{first.section}".encode()).hexdigest()

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
        # A tiny input (two or three sections) still gets an eval split: the smallest group goes there.
        for chunk in min(groups, key=len):
            assignment[chunk.id] = EVAL
    # One group (a single section: a page or document of at most a few chunks) cannot be split without
    # leaking overlap text: eval stays empty and the command's summary says so.
    return assignment
