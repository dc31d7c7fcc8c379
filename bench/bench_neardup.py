"""The near-duplicate stage at scale: how large its comparison groups grow, and what the stage costs.

    .venv/bin/python bench/bench_neardup.py [--chunks 100k] [--run] [--dir DIR]

The scale bench's synthetic chunks and the fake server's two questions each (exact duplicates removed, as the
stage receives them). Prints the blocking groups (pairs of rare words): how many, the largest, and the pairs
rapidfuzz compares in all and in the groups over 1,000 questions; with ``--run``, the stage itself
(``dedupe.near_duplicates``, 2 threads, texts streamed from a file so the harness holds none): wall and CPU
seconds, near duplicates found, and peak RSS. The questions are kept in ``DIR`` (one per line) and reused.

Measured 2026-12-06 (2 cores): 100k chunks, 199,886 questions, 217.6 million pairs, the largest group 7,715;
1M chunks, 1,990,818 questions, 21.3 billion pairs (98 times as many for 10 times the questions), the largest
group 75,277, 98 % of the pairs in the 700 groups over 1,000 (questions built on one frame, see
docs/architecture.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

from fakeserver import questions_for  # noqa: E402
from synthcorpus import TextMaker  # noqa: E402

from synthqa import chunks, dedupe, filters  # noqa: E402
from synthqa.pipeline.progress import Progress, TotalFirstBar  # noqa: E402
from synthqa.records import Page  # noqa: E402


def write_questions(n_chunks: int, path: Path) -> None:
    """The normalised questions of ``n_chunks`` synthetic chunks, first occurrences only, one per line."""
    maker, asked, pages, seen = TextMaker(seed=1), 0, 0, set()
    with open(path, "w") as out:
        while asked < n_chunks:
            batch = [Page(f"doc-{pages // 40:06d}.txt", pages % 40 + 1 + i, maker.page()) for i in range(40)]
            pages += 40
            for chunk in chunks.split_pages(batch, 1000, 200):
                if filters.chunk_skip_reason(chunk.text) or asked >= n_chunks:
                    continue
                asked += 1
                for question in questions_for(chunk.text, 2):
                    norm = dedupe.normalize_question(question)
                    if norm not in seen:
                        seen.add(norm)
                        out.write(norm + "\n")


def read_questions(path: Path):
    with open(path) as lines:
        for line in lines:
            yield line.rstrip("\n")


def groups(path: Path) -> str:
    """The blocking groups of 2 or more questions: count, largest, pairs in all and in groups over 1,000."""
    df: Counter = Counter()
    for text in read_questions(path):
        df.update(dedupe.key_words(text))
    filed: Counter = Counter()
    for text in read_questions(path):
        filed.update(set(dedupe.blocking_keys(dedupe.key_words(text), df)))
    sizes = np.array([k for k in filed.values() if k > 1], dtype=np.int64)
    pairs = sizes * (sizes - 1) // 2
    return (f"{len(sizes):,} groups of 2+, largest {sizes.max():,}; {int(pairs.sum()):,} pairs, "
            f"{int(pairs[sizes > 1000].sum()):,} of them in the {int((sizes > 1000).sum())} groups over 1,000")


def run_stage(path: Path, workdir: Path) -> dict:
    started, cpu = time.perf_counter(), time.process_time()
    with TotalFirstBar(Progress(True, print), "near duplicates: comparing questions", "pair") as bar:
        near = dedupe.near_duplicates(lambda: read_questions(path), workdir, workers=2, progress=bar)
    return {"questions": len(near), "near_duplicates": int(near.sum()),
            "wall_s": round(time.perf_counter() - started, 1), "cpu_s": round(time.process_time() - cpu, 1),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", default="100k")
    parser.add_argument("--run", action="store_true", help="also run the stage: seconds, near duplicates, RSS")
    parser.add_argument("--dir", type=Path, help="where the questions are kept (default: a new temporary folder)")
    args = parser.parse_args()
    n = int(float(args.chunks[:-1]) * {"k": 1_000, "m": 1_000_000}[args.chunks[-1].lower()]) \
        if args.chunks[-1].isalpha() else int(args.chunks)
    folder = args.dir or Path(tempfile.mkdtemp(prefix="synthqa-neardup-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"questions-{n}.txt"
    if not path.exists():
        started = time.perf_counter()
        write_questions(n, path)
        print(f"{n:,} chunks' questions written in {time.perf_counter() - started:.0f} s: {path}")
    if args.run:  # first: its peak RSS is the process's, and counting the groups holds every key in a Counter
        print(json.dumps(run_stage(path, folder)), flush=True)
    print(f"{n:,} chunks: {groups(path)}")


if __name__ == "__main__":
    main()
