"""Duplicate questions across the whole dataset, in time and memory that grow near-linearly with it.

Exact duplicates share their normalised text (casefolded, no punctuation, single spaces); the first is kept.
Near duplicates score ``fuzz.token_sort_ratio`` ≥ ``NEAR_DUPLICATE_RATIO`` against an earlier question that
was kept; a question is compared with kept questions only, so a chain a≈b≈c with a≉c keeps a and c.

Comparing every question with every other is O(n²): 25 minutes at 100k chunks. Instead each question is
filed under the pairs of its ``RARE_WORDS`` rarest words (by document frequency among the questions), and
rapidfuzz compares only questions filed under a common pair. Two questions that reach the ratio differ by a
word or two, so they share at least two of each other's rarest words whenever each has at most
``RARE_WORDS`` − 2 words the other lacks; on the corpora and the synthetic bench sets the decisions equal the
all-pairs comparison's (``bench/bench_scale.py`` prints both). Keys spill to files in blocks of
``KEYS_IN_MEMORY``, so memory holds one block, the word counts and one bit per question.
"""

from __future__ import annotations

import itertools
import string
import tempfile
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process

NEAR_DUPLICATE_RATIO = 92  # rapidfuzz token_sort_ratio between two questions
RARE_WORDS = 4  # a question is filed under every pair of its 4 rarest words: 6 keys
WORD_PREFIX = 4  # words are compared by their first 4 letters, so "system"/"systems" count as one
KEYS_IN_MEMORY = 2_000_000  # (key, question) rows held at once: 24 MB
THREADED_PAIRS = 100_000  # a smaller comparison is done on one thread: starting threads would cost more

_PUNCT = str.maketrans("", "", string.punctuation + "“”‘’–—…")


def normalize_question(text: str) -> str:
    """Casefold, drop punctuation, collapse whitespace: the form duplicates are compared in."""
    return " ".join(text.casefold().translate(_PUNCT).split())


def sort_tokens(text: str) -> str:
    """The text's words in sorted order: ``fuzz.ratio`` of two sorted texts is their ``token_sort_ratio``.

    Sorting each text once, instead of once per pair inside ``token_sort_ratio``, makes the comparison of a
    block of questions about 5 times faster with the same scores.
    """
    return " ".join(sorted(text.split()))


def key_words(text: str) -> set[str]:
    """The words a normalised question is filed by: distinct, cut to ``WORD_PREFIX`` letters."""
    return {word[:WORD_PREFIX] for word in text.split()}


def blocking_keys(words: set[str], df: Counter) -> list[int]:
    """The keys a question is filed under: one per pair of its rarest words (ties broken by the word)."""
    rare = sorted(sorted(words, key=lambda w: (df[w], w))[:RARE_WORDS])
    if len(rare) < 2:
        return [hash(tuple(rare))]
    return [hash(pair) for pair in itertools.combinations(rare, 2)]


def near_duplicates(texts: Callable[[], Iterable[str]], fetch: Callable[[np.ndarray], Sequence[str]],
                    workdir: Path | None = None, block: int = 1024, workers: int = 1) -> np.ndarray:
    """True for each question (in order) that nearly repeats an earlier kept one.

    ``texts()`` yields the normalised texts in order (it is called twice); ``fetch(positions)`` returns the
    texts at ascending positions (called once per block of keys, for the questions that share a key).
    ``workers``: rapidfuzz threads for the large groups' comparisons (the decisions do not depend on it).
    """
    df: Counter = Counter()
    n = 0
    for text in texts():
        df.update(key_words(text))
        n += 1
    with tempfile.TemporaryDirectory(dir=workdir, prefix="neardup-") as tmp:
        pairs = [
            _similar_pairs(keys, positions, fetch, block, workers)
            for keys, positions in _keys_by_block(texts(), df, n, Path(tmp))
        ]
    later = np.concatenate([p[0] for p in pairs]) if pairs else np.zeros(0, dtype=np.int64)
    earlier = np.concatenate([p[1] for p in pairs]) if pairs else np.zeros(0, dtype=np.int64)
    dropped = np.zeros(n, dtype=bool)
    for j, i in zip(*(a.tolist() for a in _sorted_pairs(later, earlier))):
        if not dropped[i]:  # every i < j is decided already: pairs come in order of j
            dropped[j] = True
    return dropped


def _keys_by_block(texts: Iterable[str], df: Counter, n: int, tmp: Path) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """(keys, positions) arrays, one pair per block of keys; a key's rows all land in the same block."""
    blocks = max(1, -(-n * 6 // KEYS_IN_MEMORY))
    # (key, position) rows as flat machine integers: a Python tuple per row took ~130 bytes, 16 here
    buffers = [array("q") for _ in range(blocks)]
    files = [tmp / f"keys-{b}.npy" for b in range(blocks)]
    handles = [open(f, "wb") for f in files] if blocks > 1 else []
    try:
        for pos, text in enumerate(texts):
            for key in blocking_keys(key_words(text), df):
                buffers[key % blocks].extend((key, pos))
            if handles and pos % 65536 == 65535:
                for b, rows in enumerate(buffers):
                    rows.tofile(handles[b])
                    buffers[b] = array("q")
        for b, rows in enumerate(buffers if handles else []):
            rows.tofile(handles[b])
            buffers[b] = array("q")
    finally:
        for handle in handles:
            handle.close()
    for b in range(blocks):
        rows = (np.fromfile(files[b], dtype=np.int64) if handles else np.frombuffer(buffers[b], dtype=np.int64))
        buffers[b] = array("q")
        rows = rows.reshape(-1, 2)
        yield rows[:, 0], rows[:, 1]


def _similar_pairs(keys: np.ndarray, positions: np.ndarray, fetch, block: int,
                   workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(later, earlier) positions of the questions filed under a common key that reach the ratio."""
    order = np.lexsort((positions, keys))
    keys, positions = keys[order], positions[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    groups = [np.unique(positions[s:s + k]) for s, k in zip(starts[sizes > 1], sizes[sizes > 1])]
    groups = [g for g in groups if len(g) > 1]
    if not groups:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    needed = np.unique(np.concatenate(groups))
    text_of = dict(zip(needed.tolist(), map(sort_tokens, fetch(needed))))
    later: list[np.ndarray] = []
    earlier: list[np.ndarray] = []
    for group in groups:
        texts = [text_of[p] for p in group.tolist()]
        for start in range(1, len(group), block):
            stop = min(start + block, len(group))
            scores = process.cdist(texts[start:stop], texts[:stop], scorer=fuzz.ratio, processor=None,
                                   score_cutoff=NEAR_DUPLICATE_RATIO, dtype=np.uint8,
                                   workers=workers if (stop - start) * stop >= THREADED_PAIRS else 1)
            rows, cols = np.nonzero(scores >= NEAR_DUPLICATE_RATIO)
            before = cols < rows + start  # only earlier questions count
            later.append(group[rows[before] + start])
            earlier.append(group[cols[before]])
    return np.concatenate(later), np.concatenate(earlier)


def _sorted_pairs(later: np.ndarray, earlier: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((earlier, later))
    return later[order], earlier[order]


def dedupe_questions(items: Sequence[tuple[str, str]], block: int = 1024) -> list[tuple[int, str]]:
    """(index, "duplicate" | "near_duplicate") for each question that repeats an earlier kept one.

    ``items`` are ``(query_id, question)`` over the whole dataset; the first occurrence is kept.
    """
    dropped: list[tuple[int, str]] = []
    first_of: dict[str, int] = {}
    unique: list[int] = []  # item indices of first occurrences, in order
    for i, (_, question) in enumerate(items):
        key = normalize_question(question)
        if key in first_of:
            dropped.append((i, "duplicate"))
        else:
            first_of[key] = i
            unique.append(i)
    texts = list(first_of)
    near = near_duplicates(lambda: texts, lambda positions: [texts[p] for p in positions], block=block)
    dropped += [(unique[j], "near_duplicate") for j in np.flatnonzero(near).tolist()]
    return sorted(dropped)
