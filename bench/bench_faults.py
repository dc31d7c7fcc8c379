"""Fault injection: `synthqa generate` over the corpora with faults of every kind at a given total rate.

    .venv/bin/python bench/bench_faults.py [--rate 0.2] [--latency 0.05] [--concurrency 16]

Prints, for a fault-free run and a faulty one: chunks, faults injected (by kind), chunks answered, chunks
failed, requests per chunk, wall time; and checks that answered + failed = chunks asked.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fakeserver import FAULTS, FakeOpenAI  # noqa: E402


def run(faults: dict[str, float], args) -> dict:
    with FakeOpenAI(latency=args.latency, faults=faults, seed=1, hang_seconds=args.timeout * 3) as fake, \
            tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "synthqa", "generate", str(ROOT / "corpora"), "-o", str(out), "--base-url",
               fake.base_url, "--concurrency", str(args.concurrency), "--timeout", str(args.timeout),
               "--max-retries", "4", "--no-progress", "--no-embed-roundtrip", "--keep-all-chunks"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=dict(os.environ, OPENAI_API_KEY="sk-bench"), capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode not in (0, 4):
            sys.exit(f"generate failed ({proc.returncode}): {proc.stderr[-2000:]}")
        m = json.loads((out / "synthqa.json").read_text())
        return {"manifest": m, "wall": wall, "exit": proc.returncode, "requests": fake.requests,
                "faults": dict(fake.fault_counts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=0.2, help="total fault rate, spread over every kind")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=1.0, help="per-request timeout (ends 'hang' faults)")
    args = parser.parse_args()

    clean = run({}, args)
    faulty = run({name: args.rate / len(FAULTS) for name in FAULTS}, args)
    print(f"{'':24}{'fault-free':>12}{'faulty':>12}")
    for label, key in (("chunks asked", "chunks_asked"), ("questions kept", "questions"),
                       ("short chunks (kept)", "short_chunks")):
        print(f"{label:24}{clean['manifest']['counts'][key]:>12}{faulty['manifest']['counts'][key]:>12}")
    for r in (clean, faulty):
        c = r["manifest"]["counts"]
        r["failed"] = len(r["manifest"]["failed_chunks"])
        r["answered"] = c["chunks_asked"] - r["failed"]
        r["per_chunk"] = r["requests"] / c["chunks_asked"]
    for label, key, fmt in (("chunks answered", "answered", "d"), ("chunks failed", "failed", "d"),
                            ("HTTP requests", "requests", "d"), ("requests per chunk", "per_chunk", ".2f"),
                            ("wall time (s)", "wall", ".1f"), ("exit status", "exit", "d")):
        print(f"{label:24}{clean[key]:>12{fmt}}{faulty[key]:>12{fmt}}")
    injected = sum(faulty["faults"].values())
    print(f"faults injected: {injected} of {faulty['requests']} requests "
          f"({100 * injected / faulty['requests']:.1f} %): " + ", ".join(f"{k} {v}" for k, v in sorted(faulty["faults"].items())))
    reasons: dict[str, int] = {}
    for f in faulty["manifest"]["failed_chunks"]:
        reasons[f["reason"]] = reasons.get(f["reason"], 0) + 1
    if reasons:
        print("failure reasons: " + "; ".join(f"{r} ×{n}" for r, n in reasons.items()))
    c = faulty["manifest"]["counts"]
    ok = faulty["answered"] + faulty["failed"] == c["chunks_asked"]
    print(f"every chunk answered or listed as failed: {'yes' if ok else 'NO'} "
          f"({faulty['answered']} + {faulty['failed']} = {c['chunks_asked']})")


if __name__ == "__main__":
    main()
