"""Embedding ranks for corpora larger than memory: the corpus's normalised vectors in a file, searched in
blocks, so memory holds one block of scores (``QUERY_BLOCK`` × ``CORPUS_BLOCK``) whatever the corpus size.

The search is exact and dense: every question against every chunk, O(questions × chunks) dot products.
With MiniLM on CPU, encoding costs about as much as asking a fast endpoint; past a few tens of thousands of
chunks the search itself dominates, and ``--no-embed-roundtrip`` is the way to go.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._compat import batched

ENCODE_BLOCK = 2048  # texts handed to the model at once (it batches 64 at a time inside)
CORPUS_BLOCK = 16384
QUERY_BLOCK = 512


def encode(model: Any, texts: Sequence[str]) -> np.ndarray:
    """Unit-length float32 vectors of ``texts``."""
    return model.encode(
        list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    ).astype(np.float32)


class VectorIndex:
    """The corpus's vectors in ``path``: ``build`` once, then ``own_ranks`` and ``cosines``."""

    def __init__(self, model: Any, path: Path) -> None:
        self.model, self.path = model, Path(path)
        self.n_docs = 0
        self.dim = 0

    def build(self, texts: Iterable[str], on_docs=None) -> VectorIndex:
        with open(self.path, "wb") as out:
            for block in batched(texts, ENCODE_BLOCK):
                vectors = encode(self.model, block)
                vectors.tofile(out)
                self.n_docs += len(block)
                self.dim = vectors.shape[1]
                if on_docs:
                    on_docs(len(block))
        return self

    def write(self, vectors: np.ndarray) -> VectorIndex:
        """Take vectors encoded earlier (one row per chunk, in order) instead of encoding the texts."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        vectors.tofile(self.path)
        self.n_docs, self.dim = vectors.shape
        return self

    def array(self) -> np.ndarray:
        """The vectors, mapped from the file rather than read into memory."""
        if not self.n_docs:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(np.memmap(self.path, dtype=np.float32, mode="r", shape=(self.n_docs, self.dim)))

    def own_ranks(self, questions: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(1-based rank of each question's own chunk by cosine, that cosine); ties go to the lower index."""
        corpus = self.array()
        own = np.asarray(own, dtype=np.int64)
        own_cos = np.einsum("ij,ij->i", questions, corpus[own])
        better = np.zeros(len(questions), dtype=np.int64)
        rows = np.arange(len(questions))
        for start in range(0, self.n_docs, CORPUS_BLOCK):
            stop = min(start + CORPUS_BLOCK, self.n_docs)
            scores = questions @ corpus[start:stop].T
            index = np.arange(start, stop)
            beats = (scores > own_cos[:, None]) | ((scores == own_cos[:, None]) & (index[None, :] < own[:, None]))
            inside = (own >= start) & (own < stop)
            beats[rows[inside], own[inside] - start] = False  # a chunk never outranks itself
            better += beats.sum(axis=1)
        del corpus
        return better + 1, own_cos

    def cosines(self, question: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """Cosine of one question's vector with the chunks ``docs``."""
        corpus = self.array()
        return corpus[docs] @ question
