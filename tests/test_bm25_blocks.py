"""Block scoring of BM25 own-chunk ranks (``bm25blocks``): the same ranks, scores and candidates as bm25s's dense
scores of every chunk, and as the per-question path, whichever path a question takes."""

from __future__ import annotations

import random
import re
from collections import Counter

import numpy as np
import pytest

from e2e import policy_pages
from synthqa import bm25blocks, bm25index, roundtrip


def _case(seed: int) -> tuple[list[str], list[str], list[int]]:
    """Real policy text in overlapping chunks (shared passages, a chunk repeated: ties), and questions from
    their words, among them some of only the corpus's commonest words and some of unknown words only."""
    rng = random.Random(seed)
    corpus = [p[i:i + 600] for p in policy_pages(25, seed=seed) for i in range(0, 1200, 300)]
    twin = "Sabbatical leave of sixteen weeks follows seven years of service, approved by the dean."
    corpus += [twin, corpus[3], twin, "the and of"]  # repeats score exactly as their first copy; stopwords only
    counts = Counter(w for text in corpus for w in set(bm25index.tokenize([text])[0]))
    common = [w for w, _ in counts.most_common(6)]
    questions, own = [], []
    for _ in range(240):
        j = rng.randrange(len(corpus))
        words = re.findall(r"\w+", corpus[j]) or ["nothing"]
        picked = [rng.choice(words) for _ in range(rng.randint(1, 8))] + rng.sample(["the", "zyzzyva", common[0]], 2)
        questions.append(" ".join(picked) + "?")
        own.append(j)
    for j in range(0, len(corpus), 9):  # words every chunk shares: ranks beyond k, or 0 scores and ties
        questions.append(" ".join(rng.sample(common, 3)) + "?")
        own.append(j)
    questions += ["zyzzyva quux?", "sabbatical sixteen weeks dean?", "sabbatical sixteen weeks dean?"]
    own += [4, len(corpus) - 2, len(corpus) - 4]  # no known word; the repeated chunk, asked as either copy
    return corpus, questions, own


@pytest.fixture(params=["blocks", "per question"])
def path(request, monkeypatch):
    """Every question through the block scorer (in many small blocks), or every one through the per-question
    path (scored in chunk ranges that can stop early)."""
    monkeypatch.setattr(bm25index, "RANGE_ENTRIES", 8)
    if request.param == "blocks":
        monkeypatch.setattr(bm25blocks, "BLOCK_ENTRIES", 50)
        monkeypatch.setattr(bm25blocks, "LIGHT_ENTRIES", 10**9)
    else:
        monkeypatch.setattr(bm25blocks, "LIGHT_ENTRIES", -1)
    return request.param


def assert_equal_to_dense(index: bm25index.DiskBM25, questions: list[str], own: list[int], corpus: list[str],
                          stop: tuple[int, int]) -> list[int]:
    """``index.own_ranks`` against bm25s's dense scores of every chunk: ranks, own scores, candidates and their
    scores exact; with ``stop`` ranks censored beyond k. Returns the dense ranks."""
    dense = roundtrip.bm25_scores(questions, corpus)
    ranks = roundtrip.ranks_from_scores(dense, own)
    exact = list(index.own_ranks(questions, own, roundtrip.EXTRA_BM25_RATIO))
    censored = list(index.own_ranks(questions, own, roundtrip.EXTRA_BM25_RATIO, stop=stop))
    for row, (j, want, got, cut) in enumerate(zip(own, ranks, exact, censored)):
        own_score = float(dense[row, j])
        ok = dense[row] >= roundtrip.EXTRA_BM25_RATIO * own_score
        ok[j] = False
        candidates = np.flatnonzero(ok) if own_score > 0 else np.zeros(0, dtype=np.int64)
        assert (got.rank, got.score) == (want, own_score), row
        assert np.array_equal(got.candidates, candidates), row
        assert np.array_equal(got.scores, dense[row, candidates]), row
        assert cut.rank == min(want, stop[0] + 1), row  # "> k" beyond k
        if len(candidates) <= stop[1]:  # beyond m candidates the list is never used, and may be partial
            assert np.array_equal(cut.candidates, candidates), row
    return ranks


@pytest.mark.parametrize("seed", [0, 1])
def test_ranks_scores_and_candidates_equal_bm25s_dense_scores(tmp_path, path, seed):
    corpus, questions, own = _case(seed)
    index = bm25index.DiskBM25(tmp_path / "bm25").build(iter(corpus))
    ranks = assert_equal_to_dense(index, questions, own, corpus, stop=(5, 2))
    # the case holds what the block scorer must get right: first, middling and censored ranks, ties between
    # the repeated chunk's copies (the later copy ranks second), a question scoring 0 everywhere
    assert ranks[-2] == 2 and ranks[-1] == 1 and ranks[-3] == own[-3] + 1
    assert min(ranks) == 1 and max(ranks) > 6 and len(set(ranks)) > 8
    assert sum(r > 6 for r in ranks[240:-3]) >= 3  # all-common-word questions beyond k


def test_both_paths_give_identical_results(tmp_path, monkeypatch):
    corpus, questions, own = _case(2)
    index = bm25index.DiskBM25(tmp_path / "bm25").build(iter(corpus))
    monkeypatch.setattr(bm25blocks, "BLOCK_ENTRIES", 200)
    results = {}
    for light in (-1, 10**9, 40):  # per question, blocks, and the two mixed by the size of the essential postings
        monkeypatch.setattr(bm25blocks, "LIGHT_ENTRIES", light)
        results[light] = list(index.own_ranks(questions, own, roundtrip.EXTRA_BM25_RATIO, stop=(5, 3)))
    for row, (a, b, c) in enumerate(zip(*results.values())):
        assert a.rank == b.rank == c.rank and a.score == b.score == c.score, row
        if len(a.candidates) <= 3:
            assert np.array_equal(a.candidates, b.candidates) and np.array_equal(b.candidates, c.candidates), row
            assert np.array_equal(a.scores, b.scores) and np.array_equal(b.scores, c.scores), row


def test_forward_lookup_finds_each_word_weight_or_zero():
    # three chunks' forward rows (words ascending) and lookups of present, absent, first/last and empty-row words
    terms = np.array([2, 5, 9, 1, 3, 4], dtype=np.int32)
    weights = np.array([0.5, 1.5, 2.5, 3.5, 4.5, 5.5], dtype=np.float32)
    starts = np.array([0, 3, 3, 6], dtype=np.int64)  # chunk 1 has no words
    docs = np.array([0, 0, 0, 0, 1, 2, 2, 2, 2])
    words = np.array([2, 9, 5, 7, 2, 1, 4, 0, 6])
    got = bm25blocks.forward_lookup(terms, weights, starts, docs, words)
    assert got.tolist() == [0.5, 2.5, 1.5, 0.0, 0.0, 3.5, 5.5, 0.0, 0.0]
