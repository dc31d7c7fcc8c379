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
``KEYS_IN_MEMORY``, the texts (their words sorted) wait in a file read by ``pread``, and the similar pairs found
wait in files by the later question's range, so memory holds one block of keys, the word counts, one range's
pairs, and an offset and a bit per question.
"""

from __future__ import annotations

import itertools
import os
import string
import tempfile
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process

NEAR_DUPLICATE_RATIO = 92  # rapidfuzz token_sort_ratio between two questions
RARE_WORDS = 4  # a question is filed under every pair of its 4 rarest words: 6 keys
WORD_PREFIX = 4  # words are compared by their first 4 letters, so "system"/"systems" count as one
KEYS_IN_MEMORY = 500_000  # (key, question) rows held at once: 8 MB, about 45 while they are grouped
THREADED_PAIRS = 100_000  # a smaller comparison is done on one thread: starting threads would cost more
PAIRS_AT_ONCE = 131_072  # pairs turned into Python ints at once when the decisions are made: ~10 MB
PAIRS_IN_MEMORY = 1_000_000  # pairs found held before they spill to files: 8 MB
PAIR_BUCKET_QUESTIONS = 65_536  # later questions whose pairs share a file (the decisions load one at a time)
# earlier questions a block is scored against at once: the score matrix (and its mask) is block × this many
# bytes, 16 MB, where a whole group of a million chunks' framed questions (75,277) made it 77 MB
COLUMNS_AT_ONCE = 16_384

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


def near_duplicates(texts: Callable[[], Iterable[str]], workdir: Path | None = None, block: int = 1024,
                    workers: int = 1, progress: Callable[[str, int], None] | None = None,
                    columns: int = COLUMNS_AT_ONCE) -> np.ndarray:
    """True for each question (in order) that nearly repeats an earlier kept one.

    ``texts()`` yields the normalised texts in order (it is called once). ``workers``: rapidfuzz threads for the
    large groups' comparisons (the decisions do not depend on it). ``progress(step, n)`` hears ``("total", n)``
    once, the pairs to compare, before any is, then ``("compared", n)`` as they are: on a large corpus
    whose questions share a frame the comparisons outlast every other stage after asking, and the bar has an ETA.
    """
    tick = progress or (lambda step, n: None)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="neardup-") as tmp:
        sorted_texts = _SortedTexts.write(texts(), Path(tmp) / "sorted.txt")
        n = len(sorted_texts)
        with sorted_texts:
            df: Counter = Counter()
            for text in sorted_texts:
                df.update(key_words(text))  # the same set of words in any order
            total, blocks = _grouped_blocks(sorted_texts, df, n, Path(tmp))
            del df  # every word prefix (49,473 at a million chunks): needed for the keys only
            tick("total", total)
            pairs = _PairBuckets(n, Path(tmp))
            while blocks:  # each block's groups dropped once compared (a block held in memory included)
                _similar_pairs(blocks.pop(0)(), sorted_texts, (block, columns), workers, pairs.add,
                               lambda k: tick("compared", k))
        del sorted_texts  # its offsets, 8 bytes a question: not needed for the decisions
        return _decide(pairs, n)


def _decide(pairs: _PairBuckets, n: int) -> np.ndarray:
    """A question is a near duplicate when it pairs with an earlier one that is not: the pairs in order of the
    later question, so every earlier one is decided when it is asked about."""
    dropped = np.zeros(n, dtype=bool)
    for bucket in pairs.in_order():
        for start in range(0, len(bucket), PAIRS_AT_ONCE):  # Python ints for a slice at a time: ~36 bytes each
            part = bucket[start:start + PAIRS_AT_ONCE]
            for j, i in zip(*(a.tolist() for a in np.divmod(part, n))):
                if not dropped[i]:
                    dropped[j] = True
    return dropped


class _PairBuckets:
    """The pairs found (each one number, later × n + earlier), filed by the later question's range of
    ``PAIR_BUCKET_QUESTIONS``, spilled to a file per range past ``PAIRS_IN_MEMORY``. The decisions take the
    ranges in order, so memory holds one range's pairs: a million chunks of questions on one frame found tens
    of millions of pairs, and all of them in one array grew the stage by hundreds of MB."""

    def __init__(self, n: int, tmp: Path) -> None:
        self.n = max(n, 1)
        self.buckets: list[list[np.ndarray]] = [[] for _ in range(max(1, -(-n // PAIR_BUCKET_QUESTIONS)))]
        self.paths = [tmp / f"pairs-{b}.bin" for b in range(len(self.buckets))]
        self.held = 0

    def add(self, pairs: np.ndarray) -> None:
        if not len(pairs):
            return
        pairs = np.sort(pairs)  # in bucket order, so each bucket is one slice
        cuts = np.searchsorted(pairs, np.arange(1, len(self.buckets)) * PAIR_BUCKET_QUESTIONS * self.n)
        for b, part in enumerate(np.split(pairs, cuts)):
            if len(part):
                self.buckets[b].append(part)
        self.held += len(pairs)
        if self.held > PAIRS_IN_MEMORY:
            for b, parts in enumerate(self.buckets):
                if parts:
                    with open(self.paths[b], "ab") as out:
                        np.unique(np.concatenate(parts)).tofile(out)
                    self.buckets[b] = []
            self.held = 0

    def in_order(self) -> Iterator[np.ndarray]:
        """Each range's pairs, sorted and without repeats (one pair found under several keys counts once)."""
        for b, path in enumerate(self.paths):
            parts = ([np.fromfile(path, dtype=np.int64)] if path.exists() else []) + self.buckets[b]
            self.buckets[b] = []
            if parts:
                yield np.unique(np.concatenate(parts))


class _SortedTexts:
    """Every question's words in sorted order (``sort_tokens``), in one file: a group of questions sharing a key
    reads its texts from there, so memory holds no text per question (a dict of a key block's texts grew with
    the dataset: ~250 MB at a million chunks), only an offset. Read by ``pread``, not through a memory map: the
    groups touch every page of the file, and a mapped page stays in the process's resident size (180 MB at a
    million chunks), where a read one stays in the kernel's page cache only."""

    def __init__(self, path: Path, offsets: np.ndarray) -> None:
        self.offsets = offsets
        self._path = path
        self._fd = os.open(path, os.O_RDONLY)

    @classmethod
    def write(cls, texts: Iterable[str], path: Path) -> _SortedTexts:
        offsets = array("q", [0])
        with open(path, "wb") as out:
            for text in texts:
                data = sort_tokens(text).encode("utf-8")
                out.write(data)
                offsets.append(offsets[-1] + len(data))
        return cls(path, np.frombuffer(offsets, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, position: int) -> str:
        start, stop = self.offsets[position:position + 2].tolist()
        return os.pread(self._fd, stop - start, start).decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        lengths = np.diff(self.offsets)
        with open(self._path, "rb") as file:  # in order: one buffered pass
            for first in range(0, len(lengths), 65536):  # Python ints for a slice at a time
                for n in lengths[first:first + 65536].tolist():
                    yield file.read(n).decode("utf-8")

    def __enter__(self) -> _SortedTexts:
        return self

    def __exit__(self, *exc) -> None:
        os.close(self._fd)


def _keys_by_block(texts: Iterable[str], df: Counter, n: int, tmp: Path) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """(keys, positions) arrays, one pair per block of keys; a key's rows all land in the same block."""
    blocks = _key_blocks(n)
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


Grouped = tuple[np.ndarray, np.ndarray, np.ndarray]  # positions in key order, starts and sizes of groups of 2+


def _grouped_blocks(texts: _SortedTexts, df: Counter, n: int, tmp: Path) -> tuple[int, list[Callable[[], Grouped]]]:
    """Every key block's groups, and the pairs they hold in all: counted before any is compared. A block
    spilled to files waits in one again, grouped, so memory holds one block at a time."""
    total, blocks = 0, []
    spilled = _key_blocks(n) > 1  # as _keys_by_block decides it
    for b, (keys, positions) in enumerate(_keys_by_block(texts, df, n, tmp)):
        grouped = _grouped(keys, positions)
        total += int((grouped[2] * (grouped[2] - 1) // 2).sum())
        if spilled:
            path = tmp / f"groups-{b}.npz"
            np.savez(path, *grouped)
            blocks.append(lambda path=path: _load(path))
        else:
            blocks.append(lambda grouped=grouped: grouped)
    return total, blocks


def _key_blocks(n: int) -> int:
    """The blocks the (key, question) rows of ``n`` questions (6 keys each) are split into."""
    return max(1, -(-n * 6 // KEYS_IN_MEMORY))


def _load(path: Path) -> Grouped:
    with np.load(path) as arrays:
        return arrays["arr_0"], arrays["arr_1"], arrays["arr_2"]


def _grouped(keys: np.ndarray, positions: np.ndarray) -> Grouped:
    order = np.lexsort((positions, keys))
    keys, positions = keys[order], positions[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    return positions, starts[sizes > 1], sizes[sizes > 1]


def _similar_pairs(grouped: Grouped, texts: _SortedTexts, shape: tuple[int, int], workers: int,
                   found: Callable[[np.ndarray], None], compared: Callable[[int], None]) -> None:
    """The pairs of questions filed under a common key that reach the ratio, to ``found`` a group at a time,
    each as one number, later × n + earlier (n questions). As two arrays of every pair found under every key,
    then two lists of Python ints, they took the stage to 2.2 GB at a million chunks of framed questions."""
    positions, starts, sizes = grouped
    (block, columns), n = shape, len(texts)
    held: list[np.ndarray] = []  # handed on 65,536 pairs or so at a time
    held_n = 0
    for s, k in zip(starts.tolist(), sizes.tolist()):  # a group at a time: memory stays flat
        group = np.unique(positions[s:s + k])
        group_texts = [texts[p] for p in group.tolist()] if len(group) > 1 else []
        for start in range(1, len(group_texts), block):
            stop = min(start + block, len(group))
            for first in range(0, stop, columns):  # the earlier questions, a slice at a time
                last = min(first + columns, stop)
                scores = process.cdist(group_texts[start:stop], group_texts[first:last], scorer=fuzz.ratio,
                                       processor=None, score_cutoff=NEAR_DUPLICATE_RATIO, dtype=np.uint8,
                                       workers=workers if (stop - start) * (last - first) >= THREADED_PAIRS else 1)
                rows, cols = np.nonzero(scores >= NEAR_DUPLICATE_RATIO)
                before = cols + first < rows + start  # only earlier questions count
                if before.any():
                    held.append(group[rows[before] + start] * n + group[cols[before] + first])
                    held_n += len(held[-1])
            compared((start + stop - 1) * (stop - start) // 2)
            if held_n >= 65_536:
                found(np.concatenate(held))
                held, held_n = [], 0
        if len(group) < k:  # a question filed twice under one key (two pairs of words with one hash)
            compared(k * (k - 1) // 2 - len(group) * (len(group) - 1) // 2)
    if held:
        found(np.concatenate(held))


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
    near = near_duplicates(lambda: texts, block=block)
    dropped += [(unique[j], "near_duplicate") for j in np.flatnonzero(near).tolist()]
    return sorted(dropped)
