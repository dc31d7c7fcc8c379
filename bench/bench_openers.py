"""Sampling levers on the embedded model's openers: a logit bias against "What", a sampling temperature.

    .venv/bin/python bench/bench_openers.py DATASET [--variants plain,what-2,what-4,t0.7] [--preset qwen0.5b]

DATASET is a dataset folder synthqa wrote (its corpus config gives the chunks that were asked, e.g. the
sample `bench_queries.py` generates). Each variant sends every asked chunk the default prompt through the
embedded model's server (llama.cpp, 1 thread) as `synthqa generate` does — same messages, same
`response_format`, temperature 0 — changing only what the variant names:

- ``plain``: nothing (the default run);
- ``what-N``: ``logit_bias`` −N on the token "What" (llama.cpp's ``logit_bias_type: tokens``), which opens
  most first questions;
- ``tX``: temperature X with a fixed seed.

It prints per variant the questions written and kept by today's question filters (exact and near duplicates
aside), the top opener's share of each (issue 13's target: ≤ 25 %) with the top 5, and each drop reason's
count. A lever worth having keeps about as many questions as ``plain`` with a lower top opener.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import querystats  # noqa: E402

from synthqa import language, prompts  # noqa: E402
from synthqa.filters import question_drop_reason  # noqa: E402
from synthqa.local import DEFAULT_PRESET, PRESETS, LocalServer, resolve_model  # noqa: E402
from synthqa.questions import build_messages, parse_questions, response_format  # noqa: E402

N_QUESTIONS = 2


def variant_fields(name: str) -> dict:
    """The request fields a variant adds (see the module docstring)."""
    if name == "plain":
        return {}
    if name.startswith("what-"):
        return {"logit_bias": {"What": -float(name[5:])}, "logit_bias_type": "tokens"}
    if name.startswith("t"):
        return {"temperature": float(name[1:]), "seed": 7}
    raise SystemExit(f"--variants: unknown variant {name!r}: use plain, what-N or tX")


def asked_chunks(folder: Path) -> list[dict]:
    """The chunks of ``folder``'s corpus config that were asked (no skip reason), in order."""
    rows = [row for f in sorted((folder / "data" / "corpus").glob("*.parquet"))
            for row in pq.read_table(f).to_pylist()]
    if not rows:
        raise SystemExit(f"{folder}: no data/corpus/*.parquet: point DATASET at a folder synthqa generate wrote")
    return [row for row in rows if not row.get("skip_reason")]


def run_variant(server: LocalServer, chunks: list[dict], fields: dict) -> tuple[list[str], list[str], Counter]:
    """(every question written, those the filters keep, drop reasons) for one variant."""
    template = prompts.load_template(None)
    written, kept, reasons = [], [], Counter()
    for chunk in chunks:
        code = chunk.get("language")
        body = {"model": server.model_name, "temperature": 0, "max_tokens": 300,
                "messages": build_messages(template, chunk["text"], N_QUESTIONS, language.name(code)),
                "response_format": response_format(N_QUESTIONS, "json_object"), **fields}
        reply = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=900).json()
        for question in parse_questions(reply["choices"][0]["message"]["content"]):
            written.append(question)
            reason = question_drop_reason(question, chunk["text"], code)
            reasons[reason or "kept"] += 1
            if reason is None:
                kept.append(question)
    return written, kept, reasons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--variants", default="plain,what-2,what-4,t0.7")
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS))
    args = parser.parse_args()
    chunks = asked_chunks(args.dataset)
    variants = {name: variant_fields(name) for name in args.variants.split(",")}
    print(f"{len(chunks)} asked chunks of {args.dataset}; preset {args.preset}; {querystats.load_average()}")
    with LocalServer(resolve_model(args.preset), threads=1) as server:
        for name, fields in variants.items():
            started = time.perf_counter()
            written, kept, reasons = run_variant(server, chunks, fields)
            share, top = querystats.openers(written)
            kept_share, kept_top = querystats.openers(kept)
            print(f"{name}: {time.perf_counter() - started:.0f} s; written {len(written)}, top opener {share:.0%} "
                  f"{top}; kept {len(kept)}, top opener {kept_share:.0%} {kept_top}; "
                  f"{dict(reasons.most_common())}; {querystats.load_average()}", flush=True)


if __name__ == "__main__":
    main()
