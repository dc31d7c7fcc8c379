"""BM25 own-chunk ranks for a block of questions at once (``bm25index.DiskBM25.own_ranks`` calls it).

Scoring question by question costs dozens of small numpy calls each (about 0.5 ms of CPU a question at 20k
chunks, 0.3 ms at 3k). Here every step runs once per block on flat arrays: the own chunks' scores, the essential
words' postings of every question gathered together, the (question, chunk) pairs found by one sort, the
bound that prunes them, the remaining words' weights looked up in the chunks' forward rows by a vectorised
binary search, and the exact float32 sums in each question's word order. The decisions are
``bm25index``'s, exactly (the same MaxScore essential words and bounds, the same float32 sums and
comparisons); a question is scored in full here, not stopped early, so its rank is censored afterwards.

A question whose essential words' postings are long (``LIGHT_ENTRIES``) is left to the per-question path,
which scores it in chunk ranges and stops once its rank is known to be censored: scoring it in full would
cost more than that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LIGHT_ENTRIES = 1024  # a question with more essential postings is scored per question, with early stopping
BLOCK_ENTRIES = 1_000_000  # postings gathered at once for a block of questions: ~50 MB of working arrays


@dataclass(frozen=True)
class Plan:
    """One question's words as ``bm25index`` weighs them: distinct terms, counts, which are essential."""

    ids: list[int]  # the question's words in order, repeats kept
    terms: list[int]  # distinct, ascending
    counts: list[int]  # how often each term occurs
    word_columns: list[int]  # each word's column, in word order
    essential: list[int]  # columns (into ``terms``) whose postings are read
    others: list[int]  # the remaining columns, looked up in the candidate chunks
    rest: float  # sum of the remaining columns' bounds
    rests: list[float]  # what is left of ``rest`` after each of ``others`` is looked up
    threshold: float
    entries: int  # postings of the essential words


def plan(ids: list[int], max_weight: np.ndarray, indptr: np.ndarray, threshold: float) -> Plan:
    """``bm25index._Query`` in plain Python (a question has a handful of words; numpy's calls cost more)."""
    terms = sorted(set(ids))
    column = {t: c for c, t in enumerate(terms)}
    word_columns = [column[t] for t in ids]
    counts = [0] * len(terms)
    for c in word_columns:
        counts[c] += 1
    bounds = [float(max_weight[t]) * float(n) for t, n in zip(terms, counts)]
    order = sorted(range(len(terms)), key=bounds.__getitem__)  # stable, as np.argsort(kind="stable")
    cut, total = 0, 0.0
    if threshold > 0:  # np.searchsorted(np.cumsum(bounds[order]), threshold, "left")
        while cut < len(order) and total + bounds[order[cut]] < threshold:
            total += bounds[order[cut]]
            cut += 1
    essential, others = order[cut:], order[:cut][::-1]
    entries = sum(int(indptr[terms[c] + 1] - indptr[terms[c]]) for c in essential)
    rests, rest = [], total
    for c in others:
        rest -= bounds[c]
        rests.append(rest)
    return Plan(ids, terms, counts, word_columns, essential, others, total, rests, threshold, entries)


def blocks(indices: Sequence[int], plans: Sequence[Plan]) -> list[list[int]]:
    """``indices`` (into ``plans``) cut into consecutive blocks of about ``BLOCK_ENTRIES`` postings."""
    out: list[list[int]] = [[]]
    entries = 0
    for i in indices:
        if entries >= BLOCK_ENTRIES:
            out.append([])
            entries = 0
        out[-1].append(i)
        entries += plans[i].entries
    return [block for block in out if block]


def own_scores(forward_terms: np.ndarray, forward_weights: np.ndarray, entry_start: np.ndarray,
               questions: Sequence[list[int]], own: np.ndarray) -> np.ndarray:
    """Each question's score on its own chunk: float32, summed in its word order (as bm25s sums)."""
    lengths = np.array([len(ids) for ids in questions], dtype=np.int64)
    rows = np.repeat(np.arange(len(questions)), lengths)
    terms = np.fromiter((t for ids in questions for t in ids), dtype=np.int64, count=int(lengths.sum()))
    weights = forward_lookup(forward_terms, forward_weights, entry_start, own[rows], terms)
    return _ordered_sums(weights, rows, lengths, len(questions))


def forward_lookup(forward_terms: np.ndarray, forward_weights: np.ndarray, entry_start: np.ndarray,
                   docs: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """The weight of ``terms[i]`` in chunk ``docs[i]`` (0 where absent): a binary search in each chunk's forward
    row (its words ascending), all pairs stepping together."""
    base, end = entry_start[docs], entry_start[docs + 1]
    n = end - base
    last = len(forward_terms) - 1
    while len(n) and n.max() > 1:  # lower bound, branch-free: every search halves its range each step
        half = n >> 1
        probe = base + half
        base = np.where(forward_terms[np.minimum(probe, last)] < terms, probe, base)
        n = n - half
    found = n > 0
    if len(base):
        at = np.minimum(base, last)
        below = found & (forward_terms[at] < terms)
        base = base + below
        found &= (base < end)
        found[found] = forward_terms[base[found]] == terms[found]
    out = np.zeros(len(docs), dtype=np.float32)
    out[found] = forward_weights[base[found]]
    return out


def _ordered_sums(weights: np.ndarray, rows: np.ndarray, lengths: np.ndarray, n_rows: int) -> np.ndarray:
    """Per row, its weights (grouped by row, in order) summed left to right in float32."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    position = np.arange(len(rows)) - starts[rows]
    table = np.zeros((n_rows, int(lengths.max()) if len(lengths) else 0), dtype=np.float32)
    table[rows, position] = weights
    total = np.zeros(n_rows, dtype=np.float32)
    for col in range(table.shape[1]):
        total += table[:, col]
    return total


@dataclass(frozen=True)
class Found:
    """The (question, chunk) pairs of a block that can reach their question's threshold, with exact scores."""

    question: np.ndarray  # index into the block, ascending
    doc: np.ndarray  # ascending within a question
    score: np.ndarray  # float32


def score_block(postings, plans: Sequence[Plan]) -> Found:
    """Every chunk holding an essential word of a question in ``plans`` and passing its bound, scored exactly.

    ``postings`` is a ``bm25index._Postings`` (docs, weights, forward rows and the index's ``indptr``)."""
    question, column, docs, weights = _essential_postings(postings, plans)
    if not len(docs):
        return Found(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    n_docs = postings.index.n_docs
    pairs, pair_of = np.unique(question * n_docs + docs, return_inverse=True)
    pair_question, docs = np.divmod(pairs, n_docs)
    times = _column_array(plans, lambda p: p.counts)
    table = np.zeros((len(pairs), times.shape[1] + 1), dtype=np.float32)  # the last column stays 0 (padding)
    table[pair_of, column] = weights
    # the bound of bm25index._range: the essential words' weights, plus the bound of the words not yet looked
    # up; those are then looked up largest bound first, each only in the chunks still in the running
    reach = np.bincount(pair_of, weights=weights * times[question, column], minlength=len(pairs))
    del question, column, weights, pair_of
    threshold = np.array([p.threshold for p in plans])
    rests = _column_array(plans, lambda p: [p.rest, *p.rests])
    alive = np.flatnonzero(reach >= threshold[pair_question] - rests[pair_question, 0])
    others = _column_array(plans, lambda p: p.others, fill=-1, dtype=np.int64)
    terms = _column_array(plans, lambda p: p.terms, fill=-1, dtype=np.int64)
    for k in range(others.shape[1]):
        cols = others[pair_question[alive], k]
        has, cols = alive[cols >= 0], cols[cols >= 0]
        q = pair_question[has]
        table[has, cols] = forward_lookup(postings.forward_terms, postings.forward_weights,
                                          postings.index.entry_start, docs[has], terms[q, cols])
        reach[has] += table[has, cols] * times[q, cols]
        q = pair_question[alive]
        alive = alive[reach[alive] >= threshold[q] - rests[q, k + 1]]
    # exact scores: float32, in each question's word order (repeats added again), as bm25s sums
    order = _column_array(plans, lambda p: p.word_columns, fill=times.shape[1], dtype=np.int64)
    scores = np.zeros(len(alive), dtype=np.float32)
    q = pair_question[alive]
    for k in range(order.shape[1]):
        scores += table[alive, order[q, k]]
    return Found(q, docs[alive], scores)


def _essential_postings(postings, plans: Sequence[Plan]) -> tuple[np.ndarray, ...]:
    """(question, column, chunk, weight) of every posting of every question's essential words."""
    indptr = postings.index.indptr
    rows = [(q, c, int(indptr[p.terms[c]]), int(indptr[p.terms[c] + 1] - indptr[p.terms[c]]))
            for q, p in enumerate(plans) for c in p.essential]
    q_of, col_of, start, length = (np.array(x, dtype=np.int64) for x in (zip(*rows) if rows else [[]] * 4))
    total = int(length.sum())
    offsets = np.cumsum(length) - length
    entry = np.repeat(start - offsets, length) + np.arange(total)
    return (np.repeat(q_of, length), np.repeat(col_of, length), postings.docs[entry].astype(np.int64),
            postings.weights[entry])


def _column_array(plans: Sequence[Plan], row, fill=0, dtype=np.float64) -> np.ndarray:
    """One row per plan, padded with ``fill`` to the longest."""
    made = [row(p) for p in plans]
    out = np.full((len(made), max((len(r) for r in made), default=0)), fill, dtype=dtype)
    for i, r in enumerate(made):
        out[i, :len(r)] = r
    return out
