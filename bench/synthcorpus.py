"""Synthetic policy-like text for the scale benchmark: Zipf-distributed words, so BM25 postings and question
words look like a real document store's (a few very common words, a long tail of rare ones, and a vocabulary
that keeps growing with the corpus: document codes and names)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Function words at roughly their English frequencies: bm25s drops only 33 of them, so questions and chunks
# share "should", "which", "from" … as they do in real documents.
FUNCTION_WORDS = ("the of and to in a is that for be by with as on are this or an it from at which may should "
                  "must not their will have any such can other these all been has its more than when where "
                  "who what how into about also each those both over under between after before through").split()
FUNCTION_SHARE = 0.45
ZIPF_OFFSET = 20  # content words ∝ 1/(rank + 20): the most common appears in about 40 % of chunks
PAGE_CHARS = 2600  # with chunk size 1000 / overlap 200: about 4.4 chunks a page
CHUNKS_PER_PAGE = 4.4
LETTERS = np.array(list("abcdefghiklmnoprstuvwy"))


def vocabulary(size: int, seed: int) -> np.ndarray:
    """``size`` distinct pronounceable-ish words of 3–12 letters."""
    rng = np.random.default_rng(seed)
    words: dict[str, None] = {}
    while len(words) < size:
        lengths = rng.integers(3, 13, size=size)
        letters = rng.choice(LETTERS, size=(size, 12))
        for row, n in zip(letters, lengths):
            words["".join(row[:n])] = None
    return np.array(list(words)[:size])


class TextMaker:
    """Pages of prose-like text: sentences of Zipf-drawn words with stopwords between them."""

    def __init__(self, vocab_size: int = 60_000, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.vocab = vocabulary(vocab_size, seed)
        ranks = np.arange(1, vocab_size + 1)
        weights = 1 / (ranks + ZIPF_OFFSET)
        self.cdf = np.cumsum(weights / weights.sum())
        self.function_cdf = np.cumsum(1 / np.arange(1, len(FUNCTION_WORDS) + 1))
        self.serial = 0

    def page(self, chars: int = PAGE_CHARS) -> str:
        """One page: paragraphs of sentences, a document code that no other page has."""
        self.serial += 1
        n = chars // 6
        content = self.vocab[np.minimum(np.searchsorted(self.cdf, self.rng.random(n)), len(self.vocab) - 1)]
        function = np.array(FUNCTION_WORDS)[np.searchsorted(self.function_cdf, self.rng.random(n) * self.function_cdf[-1])]
        words = np.where(self.rng.random(n) < FUNCTION_SHARE, function, content)
        ends = np.flatnonzero(self.rng.random(n) < 1 / 14)
        out, start = [], 0
        for k, end in enumerate(ends.tolist()):
            sentence = " ".join(words[start:end + 1].tolist())
            if sentence:
                out.append(sentence[:1].upper() + sentence[1:] + ".")
            if k % 5 == 4:
                out.append("\n\n")
            start = end + 1
        out.append(f"Reference code PX-{self.serial:07d}.")
        return " ".join(out).replace(" \n\n ", "\n\n")


def write_text_corpus(folder: Path, chunks: int, pages_per_file: int = 40, seed: int = 0) -> int:
    """Text files of form-feed separated pages, about ``chunks`` chunks in all; returns the pages written."""
    folder.mkdir(parents=True, exist_ok=True)
    maker = TextMaker(seed=seed)
    pages = max(1, round(chunks / CHUNKS_PER_PAGE))
    for start in range(0, pages, pages_per_file):
        count = min(pages_per_file, pages - start)
        text = "\f".join(maker.page() for _ in range(count))
        (folder / f"doc-{start // pages_per_file:06d}.txt").write_text(text, encoding="utf-8")
    return pages
