"""Calibrate and time round-trip scoring on the bundled corpora with pseudo-questions.

    PYTHONPATH=src .venv/bin/python bench/roundtrip_calibration.py [--no-embeddings]

No LLM is needed: each pseudo-question is a sentence of a chunk with 40% of its content words removed and
"What" in front (lexical overlap like a generated question, a bit less). The ground truth for "extra relevant"
is exact: chunk j ≠ own also answers when it contains the same source sentence (overlap neighbours, repeated
boilerplate). Prints rank statistics, the precision/recall of extra_relevant for a grid of thresholds, and
the time score_roundtrip takes.
"""

from __future__ import annotations

import random
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from filters_calibration import ROOT, corpus_chunks  # noqa: E402

from synthqa import roundtrip  # noqa: E402
from synthqa.filters import chunk_skip_reason  # noqa: E402

STOP = set("the a an of and or to in for on by with as is are be that this it from at which their its".split())


def flat(text: str) -> str:
    return " ".join(text.split()).casefold()


def pseudo_questions(corpus: list[str], rng: random.Random) -> tuple[list[str], list[int], list[str]]:
    questions, own, sources = [], [], []
    for i, text in enumerate(corpus):
        sentences = [s for s in re.split(r"(?<=[.;])\s+", " ".join(text.split())) if len(s.split()) >= 8]
        for sentence in rng.sample(sentences, min(2, len(sentences))):
            words = [w for w in re.findall(r"[\w’'-]+", sentence) if w.casefold() not in STOP]
            keep = sorted(rng.sample(range(len(words)), max(3, int(len(words) * 0.6))))
            questions.append("What " + " ".join(words[k] for k in keep) + "?")
            own.append(i)
            sources.append(flat(sentence))
    return questions, own, sources


def main(argv: list[str]) -> None:
    use_embeddings = "--no-embeddings" not in argv
    chunks = [t for _, _, t in corpus_chunks(sorted((ROOT / "corpora").glob("*.pdf")))]
    corpus = [t for t in chunks if chunk_skip_reason(t) is None]
    flats = [flat(t) for t in corpus]
    questions, own, sources = pseudo_questions(corpus, random.Random(0))
    truth = [{j for j, f in enumerate(flats) if j != o and s in f} for s, o in zip(sources, own, strict=True)]
    print(f"corpus {len(corpus)} chunks, {len(questions)} pseudo-questions, "
          f"{sum(map(bool, truth))} with another chunk containing their sentence")

    t0 = time.perf_counter()
    result = roundtrip.score_roundtrip(questions, own, corpus, use_embeddings=use_embeddings)
    print(f"score_roundtrip: {time.perf_counter() - t0:.2f}s (embedder {result.embedder}, incl. model load)")
    for name, ranks in (("bm25", result.bm25_rank), ("embed", result.embed_rank)):
        if ranks:
            r = np.array(ranks)
            print(f"  {name:5} rank1 {np.mean(r == 1):.3f}  top5 {np.mean(r <= 5):.3f}  MRR {np.mean(1 / r):.3f}"
                  f"  median {np.median(r):.0f}")

    bm25 = roundtrip.bm25_scores(questions, corpus)
    cosine = roundtrip.embedding_scores(questions, corpus) if use_embeddings else None
    print("extra_relevant vs truth: ratio margin min_shared  precision recall flagged")
    saved = roundtrip.EXTRA_BM25_RATIO, roundtrip.EXTRA_COSINE_MARGIN, roundtrip.EXTRA_MIN_SHARED_CHARS
    wanted = sum(min(len(t), roundtrip.MAX_EXTRA) for t in truth)
    for ratio in (0.7, 0.8, 0.9, 0.95):
        for margin in ((0.02, 0.05, 0.1, None) if cosine is not None else (None,)):
            for min_shared in (0, 100):
                roundtrip.EXTRA_BM25_RATIO, roundtrip.EXTRA_MIN_SHARED_CHARS = ratio, min_shared
                roundtrip.EXTRA_COSINE_MARGIN = margin or 0.0
                extras = roundtrip.extra_relevant(bm25, own, corpus, cosine if margin is not None else None)
                flagged = sum(len(e) for e in extras)
                hits = sum(len(set(e) & t) for e, t in zip(extras, truth, strict=True))
                print(f"  {ratio:4} {margin!s:5} {min_shared:4}   {hits / max(flagged, 1):.3f}  "
                      f"{hits / max(wanted, 1):.3f}  {flagged}")
    roundtrip.EXTRA_BM25_RATIO, roundtrip.EXTRA_COSINE_MARGIN, roundtrip.EXTRA_MIN_SHARED_CHARS = saved

if __name__ == "__main__":
    main(sys.argv[1:])
