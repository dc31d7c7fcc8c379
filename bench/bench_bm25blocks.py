"""BM25 own-chunk ranks: questions scored by block (``bm25blocks``) beside the per-question path, on the
scale bench's synthetic chunks and the fake server's questions; CPU seconds and whether every result is equal.

    .venv/bin/python bench/bench_bm25blocks.py [--chunks 20000] [--questions 12288] [--light 4096,32768]

Each ``--light`` value is a ``bm25blocks.LIGHT_ENTRIES`` (questions with more essential postings keep the
per-question path); -1 is the per-question path alone, the baseline. Ranks are censored as the pipeline
censors them (top 100, 5 candidates).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

from fakeserver import questions_for  # noqa: E402
from synthcorpus import TextMaker  # noqa: E402

from synthqa import bm25blocks, chunks, filters, roundtrip  # noqa: E402
from synthqa.bm25index import DiskBM25  # noqa: E402
from synthqa.records import Page  # noqa: E402


def corpus(n: int) -> tuple[list[str], list[str], list[int]]:
    """``n`` chunks as bench_scale prepares them, and two questions each."""
    maker, texts = TextMaker(seed=1), []
    while len(texts) < n:
        pages = [Page("doc", i + 1, maker.page()) for i in range(40)]
        texts += [c.text for c in chunks.split_pages(pages, 1000, 200) if not filters.chunk_skip_reason(c.text)]
    texts = texts[:n]
    pairs = [(q, i) for i, text in enumerate(texts) for q in questions_for(text, 2)]
    return texts, [q for q, _ in pairs], [i for _, i in pairs]


def ranks(index: DiskBM25, questions: list[str], own: list[int], light: int) -> tuple[float, list]:
    bm25blocks.LIGHT_ENTRIES = light
    started, out = time.process_time(), []
    for start in range(0, len(questions), roundtrip.QUESTION_BLOCK):  # as the Scorer feeds them
        block = slice(start, start + roundtrip.QUESTION_BLOCK)
        out += [(r.rank, r.score, r.candidates.tolist() if len(r.candidates) <= roundtrip.EXTRA_MAX_CANDIDATES
                 else None) for r in index.own_ranks(questions[block], own[block], roundtrip.EXTRA_BM25_RATIO,
                                                     (roundtrip.TOP_K, roundtrip.EXTRA_MAX_CANDIDATES))]
    return time.process_time() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--questions", type=int, default=12_288)
    parser.add_argument("--light", default="4096,32768")
    args = parser.parse_args()
    texts, questions, own = corpus(args.chunks)
    questions, own = questions[:args.questions], own[:args.questions]
    with tempfile.TemporaryDirectory() as tmp:
        index = DiskBM25(Path(tmp) / "bm25").build(texts)
        base_cpu, base = ranks(index, questions, own, -1)
        print(f"{len(texts):,} chunks, {len(questions):,} questions, load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print(f"{'path':<36} {'CPU s':>7} {'ms/question':>12}  results")
        print(f"{'per question (baseline)':<36} {base_cpu:>7.2f} {1000 * base_cpu / len(questions):>12.3f}  —")
        for light in (int(x) for x in args.light.split(",")):
            cpu, got = ranks(index, questions, own, light)
            same = sum(a == b for a, b in zip(got, base))
            print(f"{f'blocks, ≤ {light:,} essential postings':<36} {cpu:>7.2f} "
                  f"{1000 * cpu / len(questions):>12.3f}  {same:,} of {len(base):,} equal")


if __name__ == "__main__":
    main()
