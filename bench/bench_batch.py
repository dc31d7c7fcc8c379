"""What the batch transport costs on this machine, and how many requests a batch file holds.

For N synthetic 1,000-character chunks: the time to build the request lines (``batchfiles.request_line``,
the live request's body) and pack them into files within OpenAI's limits, the bytes per line (so which
limit binds: 50,000 lines or 200 MB), and the time to read the same number of result lines
(``batchfiles.read_result``: the same ``questions.judge`` a live reply gets). The results are what the fake
model answers (``FakeOpenAI.completion``, in process: no HTTP). Then a whole `generate --batch --wait`
against the loopback fake Batch API beside a live `generate` on the same small folder (seconds, both
dominated by reading and the stages after asking).
Run: .venv/bin/python bench/bench_batch.py [--chunks 20000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_generate_stage import synthetic_chunks  # noqa: E402
from e2e import make_policy_folder  # noqa: E402
from fakebatch import FakeBatches  # noqa: E402
from fakeserver import FakeOpenAI  # noqa: E402

from synthqa import batchfiles  # noqa: E402
from synthqa.cache import answer_key  # noqa: E402
from synthqa.prompts import load_template  # noqa: E402


def formats(n_chunks: int) -> list[tuple[str, str]]:
    template = load_template()
    chunks = synthetic_chunks(n_chunks)
    start = time.perf_counter()
    lines = [(key, batchfiles.request_line(key, template, c.text, n=2, language="English", model="gpt-4o-mini",
                                           temperature=0.0, attempt=1, mode="json_schema", answers=False))
             for c in chunks
             for key in [answer_key(model="gpt-4o-mini", prompt_sha256=template.sha256, chunk_text=c.text,
                                    n_questions=2, temperature=0.0, language="en")]]
    files = list(batchfiles.pack(lines))
    build = time.perf_counter() - start
    size = sum(len(line.encode()) + 1 for _, line in lines)
    per_line = size / len(lines)
    with FakeOpenAI() as fake:
        answers = FakeBatches(fake)
        results = [json.dumps(answers.answer(json.loads(line))[1]) for _, line in lines]
    start = time.perf_counter()
    verdicts = [batchfiles.read_result(line, 2) for line in results]
    read = time.perf_counter() - start
    assert all(r.verdict.usable for r in verdicts)
    print("| requests | build + pack (s) | per 1k (ms) | bytes per line | lines per 200 MB | files | "
          "read results (s) | per 1k (ms) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {len(lines):,} | {build:.2f} | {1e6 * build / len(lines):.1f} | {per_line:,.0f} | "
          f"{int(batchfiles.MAX_BYTES // per_line):,} | {len(files)} | {read:.2f} | {1e6 * read / len(lines):.1f} |")
    return lines


def end_to_end() -> None:
    env_python = sys.executable
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI() as fake:
        docs = make_policy_folder(Path(tmp) / "docs", docs=4, pages=4)
        common = ["--base-url", fake.base_url, "--no-progress", "--no-embed-roundtrip"]
        env = {"OPENAI_API_KEY": "sk-bench", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src")}
        timings = {}
        for name, extra in (("live", []), ("batch --wait", ["--batch", "--wait", "--poll-interval", "0.01"])):
            start = time.perf_counter()
            proc = subprocess.run([env_python, "-m", "synthqa", "generate", str(docs), "-o", f"{tmp}/{name[:5]}",
                                   *common, *extra], env=env, capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr
            timings[name] = time.perf_counter() - start
        a = (Path(tmp) / "live" / "synthqa.json").read_text()
        b = (Path(tmp) / "batch" / "synthqa.json").read_text()
        same = json.loads(a)["counts"]["train_pairs"] == json.loads(b)["counts"]["train_pairs"]
        print()
        print("| run (16 pages, fake server) | seconds | same train pairs |")
        print("| --- | ---: | --- |")
        for name, seconds in timings.items():
            print(f"| {name} | {seconds:.1f} | {same} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20_000)
    args = parser.parse_args()
    formats(args.chunks)
    end_to_end()


if __name__ == "__main__":
    main()
