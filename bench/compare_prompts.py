"""Compare prompt templates on the embedded model: parse rate, speed, and every question for reading.

    .venv/bin/python bench/compare_prompts.py [--chunks 30] [--threads 1] [--n 2]
        [--variants prompts/default.txt bench/prompt_variants/example.txt] [--out FILE.md]

Answerability cannot be measured by a script honestly, so all questions are written to ``--out`` (a
Markdown file: each chunk followed by each variant's questions) for a person to read. The script prints
what it can count: parse rate, exact-count rate, seconds per chunk, the share of questions that mention
"the context/text/document/…", and how many questions synthqa's own question filters would drop.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections import Counter
from pathlib import Path

from bench_local import ROOT, ask_all, corpus_chunks

from synthqa.filters import question_drop_reason
from synthqa.local import DEFAULT_PRESET, LocalServer, resolve_model
from synthqa.prompts import load_template

_MENTIONS = re.compile(
    r"\b(?:the|this|that|given|above|provided)\s+(?:context|text|document|passage|chunk|section|excerpt)\b", re.I
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, default=2, help="questions per chunk")
    parser.add_argument("--model", default=None, help="preset or GGUF path (default qwen0.5b)")
    parser.add_argument(
        "--variants",
        type=Path,
        nargs="+",
        default=[ROOT / "prompts" / "default.txt", ROOT / "bench" / "prompt_variants" / "example.txt"],
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/synthqa-compare-prompts.md"))
    args = parser.parse_args()

    templates = [load_template(p) for p in args.variants]
    chunks = corpus_chunks(args.chunks)
    model_path = resolve_model(args.model)
    results = {}
    with LocalServer(model_path, threads=args.threads, model_name=DEFAULT_PRESET) as server:
        ask_all(server.base_url, DEFAULT_PRESET, templates[0], chunks[:1], args.n)  # warm-up
        for template in templates:
            results[template.name] = ask_all(server.base_url, DEFAULT_PRESET, template, chunks, args.n)
            print(f"  {template.name}: done", file=sys.stderr, flush=True)

    print(f"model {model_path.name}, {len(chunks)} chunks, n={args.n}, threads={args.threads}")
    print("variant | parse | exact n | s/chunk | questions | mention context | filter drops")
    for name, replies in results.items():
        questions = [(q, r.chunk.text) for r in replies for q in r.questions]
        drops = Counter(reason for q, text in questions if (reason := question_drop_reason(q, text)))
        mentions = sum(bool(_MENTIONS.search(q)) for q, _ in questions)
        print(
            f"{name} | {sum(r.parsed for r in replies) / len(replies):.0%}"
            f" | {sum(len(r.questions) == args.n for r in replies) / len(replies):.0%}"
            f" | {statistics.mean(r.seconds for r in replies):.2f} | {len(questions)}"
            f" | {mentions / max(1, len(questions)):.0%} | {dict(drops) or '-'}"
        )

    lines = [f"# Prompt comparison on {model_path.name} ({len(chunks)} chunks, n={args.n})", ""]
    for i, chunk in enumerate(chunks):
        lines += [f"## {i + 1}. {chunk.source} p.{chunk.page} ({chunk.id})", "", "```text", chunk.text, "```", ""]
        for name, replies in results.items():
            reply = replies[i]
            got = [f"- {q}" for q in reply.questions] or [f"- (unparsed) {reply.content!r}"]
            lines += [f"**{name}** ({reply.seconds:.1f} s)", "", *got, ""]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"questions written to {args.out}")


if __name__ == "__main__":
    main()
