"""Pipeline overhead: `synthqa generate` over the corpora against a fake server with fixed latency.

    .venv/bin/python bench/bench_pipeline.py [--latency 0.5] [--concurrency 32]

Prints the generate stage's wall time against the physical limit ceil(N/C) × latency, the other stages'
times, the share of wall time spent outside the LLM, and the CLI process's peak RSS for a small and the
full run (RSS should not grow with the number of chunks beyond the data itself). Target: generate ≤ 1.15 ×
the limit, everything outside the LLM ≤ 5 % of wall time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fakeserver import FakeOpenAI  # noqa: E402


def run(limit: int | None, args, extra: list[str]) -> dict:
    with FakeOpenAI(latency=args.latency) as fake, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "synthqa", "generate", str(ROOT / "corpora"), "-o", str(out),
               "--base-url", fake.base_url, "--concurrency", str(args.concurrency), "--keep-all-chunks",
               "--no-progress", *extra]
        if limit:
            cmd += ["--limit", str(limit)]
        env = dict(os.environ, OPENAI_API_KEY="sk-bench")
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if proc.returncode != 0:
            sys.exit(f"generate failed ({proc.returncode}): {proc.stderr[-2000:]}")
        manifest = json.loads((out / "synthqa.json").read_text())
        data_bytes = sum(p.stat().st_size for p in (out / "data").rglob("*.parquet"))
        return {"manifest": manifest, "wall": wall, "rss_mb": rss_kb / 1024, "rss_grew": rss_kb > before,
                "requests": fake.requests, "max_in_flight": fake.max_in_flight, "data_mb": data_bytes / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--small", type=int, default=64, help="chunks in the small run (RSS comparison)")
    parser.add_argument("extra", nargs="*", help="more `synthqa generate` options, after --")
    args = parser.parse_args()

    small = run(args.small, args, args.extra)
    full = run(None, args, args.extra)
    for name, r in (("small", small), ("full", full)):
        m = r["manifest"]
        n = m["counts"]["chunks_asked"]
        limit = math.ceil(n / args.concurrency) * args.latency
        t = m["timings"]
        outside = r["wall"] - t["generate"]
        print(f"== {name} run: {n} chunks, concurrency {args.concurrency}, latency {args.latency} s")
        print(f"generate stage      {t['generate']:.2f} s   limit ceil(N/C)×latency {limit:.2f} s   "
              f"ratio {t['generate'] / limit:.3f}  (target ≤ 1.15)")
        print(f"other stages        load {t['load']:.2f} s · split {t['split']:.2f} s · write (filters, "
              f"round-trip, splits, parquet) {t['write']:.2f} s")
        print(f"process wall        {r['wall']:.2f} s   outside the LLM {outside:.2f} s = "
              f"{100 * outside / r['wall']:.1f} % (target ≤ 5 %; includes Python start-up and imports)")
        print(f"requests            {r['requests']}   max in flight at the server {r['max_in_flight']}")
        print(f"peak RSS            {r['rss_mb']:.0f} MB   (parquet written {r['data_mb']:.2f} MB)")
        if m["roundtrip"].get("embedder"):
            print(f"round-trip embedder {m['roundtrip']['embedder']} (part of 'write'; pass no eval extra to skip)")
    print(f"RSS growth small → full: {full['rss_mb'] - small['rss_mb']:+.0f} MB for "
          f"{full['manifest']['counts']['chunks_asked'] - small['manifest']['counts']['chunks_asked']} more chunks")


if __name__ == "__main__":
    main()
