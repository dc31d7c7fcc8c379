"""What reference answers (`--answers`) cost and how good they look, with the real model.

    .venv/bin/python bench/bench_answers.py [--limit 16] [--base-url URL --model NAME] [--keep DIR]

Generates the corpora's first ``--limit`` chunks twice, without and with ``--answers`` (the embedded model
unless ``--base-url``), each into a fresh folder, then prints per variant: chunks answered and failed,
requests per chunk (re-asks), prompt and completion tokens per chunk, seconds per chunk, and for the
answers the share flagged as ungrounded, plus the share of pairs `synthqa review` flags for each reason.
Both variants run back to back on the same machine; speeds depend on what else runs (load average shown).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from synthqa.dataset import read_manifest  # noqa: E402
from synthqa.review import FLAG_NAMES, Review  # noqa: E402


def run(out: Path, args, answers: bool) -> float:
    cmd = [sys.executable, "-m", "synthqa", "generate", str(ROOT / "corpora"), "-o", str(out), "--no-progress",
           "--limit", str(args.limit), *(["--answers"] if answers else [])]
    if args.base_url:
        cmd += ["--base-url", args.base_url, "--model", args.model]
    print("$", " ".join(cmd), flush=True)
    started = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    if proc.returncode not in (0, 4):
        sys.exit(f"generate exited {proc.returncode}")
    return time.perf_counter() - started


def row(out: Path, seconds: float) -> dict:
    m = read_manifest(out)
    c, asked = m.counts, max(1, m.counts.chunks_asked)
    review = Review(out)
    pairs = max(1, len(review.pairs))
    flags = {name: sum(name in p.flags for p in review.pairs.values()) / pairs for name in FLAG_NAMES}
    return {
        "chunks asked": c.chunks_asked, "failed": len(m.failed_chunks), "questions kept": c.questions,
        "requests / chunk": f"{c.requests / asked:.2f}", "prompt tokens / chunk": f"{c.prompt_tokens / asked:.0f}",
        "completion tokens / chunk": f"{c.completion_tokens / asked:.0f}", "seconds / chunk": f"{seconds / asked:.1f}",
        "ungrounded answers": f"{c.ungrounded_answers} of {c.questions}" if m.options.answers else "–",
        **{f"flag: {FLAG_NAMES[name]}": f"{share:.0%}" for name, share in flags.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--base-url")
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--keep", type=Path, help="keep the two output folders here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-answers-"))
    results = {}
    try:
        for name, answers in (("questions only", False), ("--answers", True)):
            out = work / name.strip("-").replace(" ", "-")
            results[name] = row(out, run(out, args, answers))
        print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
              f"model: {'embedded' if not args.base_url else args.model}\n")
        names = list(results)
        print("| | " + " | ".join(names) + " |\n| --- |" + " ---: |" * len(names))
        for key in results[names[0]]:
            print(f"| {key} | " + " | ".join(str(results[n][key]) for n in names) + " |")
        if args.keep:
            shutil.copytree(work, args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
