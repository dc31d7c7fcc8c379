"""Overhead of questions.generate over the ideal: 511 chunks, concurrency 32, 0.5 s server latency.

Ideal = ceil(N / C) x latency. Prints the measured time and the ratio (target <= 1.15; a bare AsyncOpenAI
loop under a semaphore reaches about 1.13). Run: .venv/bin/python bench/bench_generate_stage.py
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fakeserver import FakeOpenAI  # noqa: E402

from synthqa.prompts import load_template  # noqa: E402
from synthqa.live import generate, make_client  # noqa: E402
from synthqa.records import Chunk  # noqa: E402

WORDS = "policy coverage deductible claim premium insured exclusion benefit period notice renewal limit".split()


def synthetic_chunks(count: int, size: int = 1000) -> list[Chunk]:
    chunks = []
    for i in range(count):
        words, text = [], ""
        j = i
        while len(text) < size:
            words.append(WORDS[j % len(WORDS)])
            j = j * 7 + 3
            text = " ".join(words)
        chunks.append(Chunk(f"{i:016x}", "bench.pdf", 1 + i // 4, i % 4, text[:size]))
    return chunks


async def run(args) -> None:
    chunks = synthetic_chunks(args.chunks)
    template = load_template()
    with FakeOpenAI(latency=args.latency) as fake:
        client = make_client(fake.base_url, "bench", timeout=30, max_retries=2, concurrency=args.concurrency)
        answers = []
        start = time.perf_counter()
        await generate(chunks, client=client, template=template, n=2, model="bench", concurrency=args.concurrency,
                       on_answer=lambda c, a: answers.append(a), progress=False)
        elapsed = time.perf_counter() - start
        await client.close()
        ideal = math.ceil(args.chunks / args.concurrency) * args.latency
        ok = sum(a.ok for a in answers)
        print(f"chunks={args.chunks} concurrency={args.concurrency} latency={args.latency}s answered={ok}"
              f" max_in_flight={fake.max_in_flight}")
        print(f"generate: {elapsed:.2f}s  ideal: {ideal:.2f}s  ratio: {elapsed / ideal:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=511)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.5)
    asyncio.run(run(parser.parse_args()))
