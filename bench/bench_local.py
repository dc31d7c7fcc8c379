"""Speed of the embedded model (a preset via llama.cpp) on real corpus chunks, for 1 and 2 threads.

    .venv/bin/python bench/bench_local.py [--preset qwen1.5b] [--chunks 10] [--threads 1 2] [--n 2]

Prints, per thread count: seconds per chunk, prompt and completion tokens/s, parse rate, and the server's
peak RSS (VmHWM). Token rates come from llama.cpp's own perf lines in the server log; its "prompt eval"
figure is unreliable in llama-cpp-python 0.3.x, so prompt time is taken as total time minus decode time.
The first request (warm-up: grammar and cache set-up) is not counted. Speeds depend on what else runs:
the load average is printed with each result.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from synthqa.chunks import split_pages  # noqa: E402
from synthqa.filters import chunk_skip_reason  # noqa: E402
from synthqa.local import DEFAULT_PRESET, PRESETS, LocalServer, resolve_model  # noqa: E402
from synthqa.pdfs import load_pages  # noqa: E402
from synthqa.prompts import PromptTemplate, load_template  # noqa: E402
from synthqa.questions import ParseError, build_messages, parse_questions, response_format  # noqa: E402
from synthqa.records import Chunk  # noqa: E402

_EVAL = re.compile(r"^llama_perf_context_print:\s+eval time =\s+([\d.]+) ms /\s+(\d+) runs", re.M)
_TOTAL = re.compile(r"^llama_perf_context_print:\s+total time =\s+([\d.]+) ms /\s+(\d+) tokens", re.M)


def corpus_chunks(count: int, corpora: Path = ROOT / "corpora") -> list[Chunk]:
    """``count`` question-worthy chunks spread evenly over the corpus (deterministic)."""
    usable = [c for c in split_pages(load_pages([corpora])) if chunk_skip_reason(c.text) is None]
    step = max(1, len(usable) // count)
    return usable[::step][:count]


@dataclass(frozen=True)
class Reply:
    chunk: Chunk
    seconds: float
    questions: tuple[str, ...]
    parsed: bool
    content: str
    prompt_tokens: int
    completion_tokens: int


def ask_all(base_url: str, model: str, template: PromptTemplate, chunks: list[Chunk], n: int) -> list[Reply]:
    """One request per chunk, one at a time, as the pipeline does with the embedded server."""
    client = openai.OpenAI(base_url=base_url, api_key="local", max_retries=0, timeout=300)
    out = []
    for chunk in chunks:
        start = time.perf_counter()
        resp = client.chat.completions.create(
            model=model,
            messages=build_messages(template, chunk.text, n),
            response_format=response_format(n, "json_object"),
            temperature=0.0,
            max_tokens=60 * n + 40,
        )
        seconds = time.perf_counter() - start
        content = resp.choices[0].message.content or ""
        try:
            questions, parsed = tuple(parse_questions(content)), True
        except ParseError:
            questions, parsed = (), False
        usage = resp.usage
        out.append(Reply(chunk, seconds, questions, parsed, content, usage.prompt_tokens, usage.completion_tokens))
    return out


def perf_from_log(text: str) -> tuple[float, int, float, int]:
    """(prompt ms, prompt tokens, decode ms, decode tokens) summed over the requests logged in ``text``."""
    evals = [(float(ms), int(runs)) for ms, runs in _EVAL.findall(text)]
    totals = [(float(ms), int(toks)) for ms, toks in _TOTAL.findall(text)]
    decode_ms = sum(ms for ms, _ in evals)
    decode_tokens = sum(runs for _, runs in evals)
    total_ms = sum(ms for ms, _ in totals)
    total_tokens = sum(toks for _, toks in totals)
    return total_ms - decode_ms, total_tokens - decode_tokens, decode_ms, decode_tokens


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(model_path: Path, threads: int, template: PromptTemplate, chunks: list[Chunk], n: int,
        name: str = DEFAULT_PRESET) -> dict:
    """Start a server for ``model_path`` with ``threads``, warm it up, ask every chunk, and measure."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "llama-server.log"
        with LocalServer(model_path, threads=threads, log_path=log, model_name=name) as server:
            ask_all(server.base_url, name, template, chunks[:1], n)  # warm-up, not counted
            warm = log.read_text(errors="replace")
            replies = ask_all(server.base_url, name, template, chunks, n)
            rss = peak_rss_mib(server.pid)
            text = log.read_text(errors="replace")[len(warm) :]
    prompt_ms, prompt_tokens, decode_ms, decode_tokens = perf_from_log(text)
    seconds = [r.seconds for r in replies]
    return {
        "threads": threads,
        "chunks": len(replies),
        "s_per_chunk": statistics.mean(seconds),
        "s_per_chunk_max": max(seconds),
        "prompt_tok_s": prompt_tokens / (prompt_ms / 1000) if prompt_ms > 0 else float("nan"),
        "completion_tok_s": decode_tokens / (decode_ms / 1000) if decode_ms > 0 else float("nan"),
        "prompt_tokens_per_chunk": statistics.mean(r.prompt_tokens for r in replies),
        "completion_tokens_per_chunk": statistics.mean(r.completion_tokens for r in replies),
        "parse_rate": sum(r.parsed for r in replies) / len(replies),
        "exact_n_rate": sum(len(r.questions) == n for r in replies) / len(replies),
        "peak_rss_mib": rss,
        "load_avg": os.getloadavg()[0],
    }


HEADER = ("threads", "s/chunk", "max s", "prompt tok/s", "compl tok/s", "prompt tok", "compl tok", "parse",
          "exact n", "peak RSS MiB", "load")


def format_row(r: dict) -> str:
    """One result of ``run`` as a table row under ``HEADER``."""
    return (f"{r['threads']} | {r['s_per_chunk']:.2f} | {r['s_per_chunk_max']:.2f} | {r['prompt_tok_s']:.0f}"
            f" | {r['completion_tok_s']:.1f} | {r['prompt_tokens_per_chunk']:.0f}"
            f" | {r['completion_tokens_per_chunk']:.0f} | {r['parse_rate']:.0%} | {r['exact_n_rate']:.0%}"
            f" | {r['peak_rss_mib']:.0f} | {r['load_avg']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--n", type=int, default=2, help="questions per chunk")
    parser.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET, help="bundled model preset")
    parser.add_argument("--model", default=None, help="a GGUF path instead of a preset")
    parser.add_argument("--corpora", type=Path, default=ROOT / "corpora", help="PDF folder the chunks come from")
    args = parser.parse_args()
    model_path = resolve_model(args.model or args.preset)
    name = Path(args.model).stem if args.model else args.preset
    chunks = corpus_chunks(args.chunks, args.corpora)
    template = load_template()
    print(f"model {model_path.name}, {len(chunks)} chunks, n={args.n}, {os.cpu_count()} CPUs,"
          f" load average before {os.getloadavg()[0]:.2f}")
    print(" | ".join(HEADER))
    for threads in args.threads:
        print(format_row(run(model_path, threads, template, chunks, args.n, name)), flush=True)


if __name__ == "__main__":
    main()
