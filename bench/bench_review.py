"""How `synthqa review` and `synthqa curate` scale to a full corpus run.

    .venv/bin/python bench/bench_review.py [--decisions 200] [--no-embed-roundtrip]

Generates the corpora with every chunk (``--keep-all-chunks``, 2 questions each, with answers) against the
tests' fake OpenAI server, then measures: loading a review (flags and nearest neighbours of every pair),
the page's size and render time, the round trip of one decision over HTTP (appended and fsynced before
the answer) while a real ``ReviewServer`` runs, ``synthqa curate`` with those decisions, and a ``generate``
rerun that applies them again from the cache. The fake server's questions are word salad, so flag shares
from this run mean nothing (see bench_answers.py for the real model's).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from fakeserver import FakeOpenAI  # noqa: E402
from synthqa.review import Review, ReviewServer  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OPENAI_API_KEY": "sk-bench"}


def synthqa(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "synthqa", *args], env=ENV, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def post(server: ReviewServer, body: dict) -> float:
    request = urllib.request.Request(server.url.split("/?")[0] + "/api/decision", data=json.dumps(body).encode(),
                                     headers={"X-Synthqa-Token": server.token})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as resp:
        resp.read()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--no-embed-roundtrip", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-review-"))
    try:
        measure(work / "out", args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(out: Path, args) -> None:
    extra = ["--no-embed-roundtrip"] if args.no_embed_roundtrip else []
    with FakeOpenAI() as fake:
        gen = ["generate", str(ROOT / "corpora"), "-o", str(out), "--base-url", fake.base_url, "--keep-all-chunks",
               "--answers", "--no-progress", *extra]
        first = synthqa(*gen)

        started = time.perf_counter()
        review = Review(out)
        load = time.perf_counter() - started
        started = time.perf_counter()
        page = review.page()
        render = time.perf_counter() - started
        server = ReviewServer(review)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        ids = list(review.pairs)[: args.decisions]
        latencies, edits = [], 0
        for k, qid in enumerate(ids):
            if k % 10 == 9:  # every tenth an edit: the filters run against every other question first
                text = review.pairs[qid].row["text"].replace("What does the policy say about", "What is said about")
                latencies.append(post(server, {"id": qid, "decision": "edit", "text": text}))
                edits += 1
            else:
                latencies.append(post(server, {"id": qid, "decision": "reject" if k % 2 else "accept"}))
        server.shutdown()
        curate = synthqa("curate", str(out))
        rerun = synthqa(*gen)

    ms = sorted(x * 1000 for x in latencies)
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; embedding ranks "
          f"{'off' if args.no_embed_roundtrip else 'on (MiniLM)'}\n")
    print("| step | result |\n| --- | ---: |")
    for name, value in (
        ("pairs", len(review.pairs)),
        ("generate (fake server, first run)", f"{first:.1f} s"),
        ("review: load pairs, flags, neighbours", f"{load:.2f} s"),
        ("review: render the page", f"{render * 1000:.0f} ms, {len(page.encode()) / 1e6:.1f} MB"),
        (f"decision round trip, median / p95 ({len(ms)}, {edits} edits)",
         f"{statistics.median(ms):.1f} / {ms[int(0.95 * (len(ms) - 1))]:.1f} ms"),
        ("edit round trip, median", f"{statistics.median(latencies[9::10]) * 1000:.1f} ms" if edits else "–"),
        ("synthqa curate (whole command)", f"{curate:.1f} s"),
        ("generate rerun, all cached, decisions applied", f"{rerun:.1f} s"),
    ):
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
