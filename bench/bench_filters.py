"""What the question and chunk filters drop on corpora/, without asking an LLM: the questions are read from the
answer cache of an earlier run (read-only, through SQLite's backup API into a temporary copy).

    PYTHONPATH=src .venv/bin/python bench/bench_filters.py [--cache OUT/.synthqa/cache.sqlite] [--examples 10]

Cached answers are matched to chunks by chunk id, with the text cleaned and not (a cache of a run from before
cleaning holds the uncleaned chunks). Prints the chunk filters' counts, each question filter's count (the new
ones marked), and a seeded sample of dropped and kept questions to read by hand.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
from collections import Counter
from pathlib import Path

from synthqa.chunks import split_pages
from synthqa.filters import QUESTION_DROP_REASONS, chunk_skip_reason, filter_questions
from synthqa.standalone import implicit_reference
from synthqa.grounding import question_grounding
from synthqa.pdfs import load_pages

ROOT = Path(__file__).resolve().parents[1]
NEW = {"implicit_reference", "ungrounded_question", "names"}


def cached_questions(cache: Path) -> list[tuple[str, list[str]]]:
    """(chunk_id, questions) of every answered chunk in ``cache``, read from a consistent copy."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "cache.sqlite"
        source = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
        target = sqlite3.connect(copy)
        source.backup(target)
        source.close()
        rows = target.execute("SELECT chunk_id, questions FROM answers WHERE error IS NULL").fetchall()
        target.close()
    return [(cid, json.loads(questions)) for cid, questions in rows]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/work/main/out/reference/.synthqa/cache.sqlite"))
    parser.add_argument("--examples", type=int, default=10)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    pdfs = sorted((ROOT / "corpora").glob("*.pdf"))
    by_id = {}
    for clean in (True, False):
        for chunk in split_pages(load_pages(pdfs, clean=clean), 1000, 200):
            by_id.setdefault(chunk.id, chunk)
    cleaned = list(split_pages(load_pages(pdfs), 1000, 200))
    skipped = Counter(chunk_skip_reason(c.text) for c in cleaned)
    print(f"chunks of corpora/ (cleaned): {len(cleaned)}; skipped by chunk filters:")
    for reason, n in skipped.most_common():
        if reason:
            print(f"  {reason:22} {n:4}{'   (new)' if reason in NEW else ''}")

    if not args.cache.is_file():
        sys.exit(f"no answer cache at {args.cache}: run synthqa generate first, or pass --cache")
    answers = cached_questions(args.cache)
    items = [(f"q-{cid}-{n}", q, by_id[cid].text) for cid, qs in answers if cid in by_id for n, q in enumerate(qs)]
    print(f"\nquestions: {len(items)} of {sum(1 for cid, _ in answers if cid in by_id)} cached chunks found in "
          f"corpora/ ({len(answers)} answered chunks in the cache)")
    result = filter_questions(items, ["en"] * len(items))
    print(f"{'filter':24} {'dropped':>7} {'share':>6}")
    for reason in QUESTION_DROP_REASONS:
        n = result.counts[reason]
        print(f"{reason:24} {n:7} {n / max(1, len(items)):6.1%}{'   (new)' if reason in NEW else ''}")
    print(f"{'kept':24} {len(result.kept):7} {len(result.kept) / max(1, len(items)):6.1%}")

    rng = random.Random(args.seed)
    new_drops = [i for i, r in result.dropped.items() if r in NEW]
    print(f"\n--- {args.examples} questions dropped by the new filters (seed {args.seed}) ---")
    for i in sorted(rng.sample(new_drops, min(args.examples, len(new_drops)))):
        question = items[i][1]
        why = implicit_reference(question) if result.dropped[i] == "implicit_reference" else \
            f"grounding {question_grounding(question, items[i][2]):.2f}"
        print(f"[{result.dropped[i]}: {why}] {question}")
    print(f"\n--- {args.examples} questions kept ---")
    for i in sorted(rng.sample(list(result.kept), min(args.examples, len(result.kept)))):
        print(f"[grounding {question_grounding(items[i][1], items[i][2]):.2f}] {items[i][1]}")


if __name__ == "__main__":
    main(sys.argv[1:])
