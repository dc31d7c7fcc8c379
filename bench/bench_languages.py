"""Questions in the chunk's language, with the embedded model: before and after enforcement, and its cost.

    .venv/bin/python bench/bench_languages.py [--n 2] [--chunk-size 1000] [--model qwen0.5b] [--threads 1]
        [--out FILE.md]

Asks the embedded model (qwen0.5b via llama.cpp, offline) about the French, German and Spanish policy texts
in ``bench/texts/``, one chunk at a time as the pipeline does locally, with two prompts: the prompt before
languages were named ("write in the language of the chunk") and the default prompt, which names the chunk's
language ("… in French …"). Both runs check the questions, so each gives two rows: its first answers (what
the prompt alone achieves), and the questions kept after the one re-ask of answers with a question in
another language and the ``wrong_language`` filter.

"In the language" is judged twice: by py3langid (the identifier synthqa checks with, so the "+ re-ask +
filter" rows hold 100 % by construction) and by an independent judge (lingua if installed, else langdetect). Every
question goes to ``--out`` for a person to read. The re-ask cost is the extra requests, tokens and seconds of
each checked run over its first answers.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from synthqa import language, live  # noqa: E402
from synthqa.chunks import split_pages  # noqa: E402
from synthqa.filters import chunk_skip_reason, filter_questions  # noqa: E402
from synthqa.local import DEFAULT_PRESET, LocalServer, resolve_model  # noqa: E402
from synthqa.pdfs import load_pages  # noqa: E402
from synthqa.prompts import load_template  # noqa: E402
from synthqa.records import Answer, Chunk, Usage  # noqa: E402

TEXTS = ROOT / "bench" / "texts"
OLD_PROMPT = ROOT / "bench" / "prompt_variants" / "before-language.txt"


def bench_chunks(chunk_size: int) -> list[Chunk]:
    """The chunks worth asking of the bench texts, with their detected language."""
    pages = load_pages(sorted(TEXTS.glob("policy-*.md")))
    chunks = [c for c in split_pages(pages, chunk_size, chunk_size // 5) if chunk_skip_reason(c.text) is None]
    return [Chunk(c.id, c.source, c.page, c.index, c.text, c.section, language.detect(c.text)) for c in chunks]


@dataclass
class Run:
    """What one way of asking produced."""

    answers: dict[str, Answer] = field(default_factory=dict)
    first: dict[str, Answer] = field(default_factory=dict)  # each chunk's first answer, before any re-ask
    seconds: float = 0.0


async def ask_chunks(base_url: str, template, chunks: list[Chunk], n: int, check: bool) -> Run:
    """Ask about every chunk through synthqa's own LLM stage, recording first answers on the side."""
    run = Run()
    plain_ask = live.ask

    async def recording_ask(session, chunk, **kwargs):
        answer = await plain_ask(session, chunk, **kwargs)
        run.first.setdefault(chunk.id, answer)
        return answer

    live.ask = recording_ask  # ask_in_language calls the module's ask: both asks pass through here
    client = live.make_client(base_url, "local", timeout=600, max_retries=1, concurrency=1)
    started = time.perf_counter()
    try:
        await live.generate(chunks, client=client, template=template, n=n, model=DEFAULT_PRESET,
                                 concurrency=1, mode="json_object", progress=False, check_language=check,
                                 on_answer=lambda chunk, answer: run.answers.__setitem__(chunk.id, answer))
    finally:
        live.ask = plain_ask
        await client.close()
    run.seconds = time.perf_counter() - started
    return run


def judge():
    """An identifier independent of py3langid: (name, code-of-text function) or (None, None)."""
    try:
        from lingua import LanguageDetectorBuilder

        detector = LanguageDetectorBuilder.from_all_languages().build()

        def lingua_code(text: str) -> str:
            found = detector.detect_language_of(text)
            return found.iso_code_639_1.name.lower() if found else "und"

        return "lingua", lingua_code
    except ImportError:
        pass
    try:
        import langdetect

        langdetect.DetectorFactory.seed = 0
        return "langdetect", langdetect.detect
    except ImportError:
        return None, None


def kept(chunks: list[Chunk], answers: dict[str, Answer], check: bool) -> list[tuple[Chunk, str]]:
    """(chunk, question) pairs synthqa's question filters keep, with the language check when ``check``."""
    items, owners = [], []
    for chunk in chunks:
        for i, q in enumerate(answers[chunk.id].questions):
            items.append((f"q-{chunk.id}-{i}", q, chunk.text))
            owners.append(chunk)
    result = filter_questions(items, [c.language for c in owners] if check else None)
    return [(owners[i], items[i][1]) for i in result.kept]


def shares(pairs: list[tuple[Chunk, str]], judge_code) -> tuple[str, str]:
    if not pairs:
        return "-", "-"
    ours = sum(language.in_language(q, c.language) for c, q in pairs) / len(pairs)
    theirs = f"{sum(judge_code(q) == c.language for c, q in pairs) / len(pairs):.1%}" if judge_code else "-"
    return f"{ours:.1%}", theirs


def usage(answers: dict[str, Answer]) -> Usage:
    return sum((a.usage for a in answers.values()), Usage())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2, help="questions per chunk")
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--model", default=None, help="preset or GGUF path (default qwen0.5b)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write every question here (Markdown)")
    args = parser.parse_args()

    chunks = bench_chunks(args.chunk_size)
    by_language = {code: sum(c.language == code for c in chunks) for code in sorted({c.language for c in chunks})}
    judge_name, judge_code = judge()
    print(f"{len(chunks)} chunks {by_language}, n={args.n}, judge: {judge_name or 'none installed'}", flush=True)
    new, old = load_template(), load_template(OLD_PROMPT)
    with tempfile.TemporaryDirectory() as tmp:
        with LocalServer(resolve_model(args.model), threads=args.threads, log_path=Path(tmp) / "server.log",
                         model_name=DEFAULT_PRESET) as server:
            runs = {"old prompt": asyncio.run(ask_chunks(server.base_url, old, chunks, args.n, check=True)),
                    "named": asyncio.run(ask_chunks(server.base_url, new, chunks, args.n, check=True))}

    print(f"\n| prompt | questions | kept | in language (py3langid) | in language ({judge_name or '-'}) |")
    print("| --- | --- | ---: | ---: | ---: |")
    for prompt, run in runs.items():
        for name, pairs in (("first answers", kept(chunks, run.first, False)),
                            ("+ re-ask + filter", kept(chunks, run.answers, True))):
            ours, theirs = shares(pairs, judge_code)
            print(f"| {prompt} | {name} | {len(pairs)} | {ours} | {theirs} |")
    print()
    for prompt, run in runs.items():
        reasked = sum(a.attempts > run.first[cid].attempts for cid, a in run.answers.items())
        total, first = usage(run.answers), usage(run.first)
        extra = total.requests - first.requests
        print(f"re-ask cost, {prompt}: {reasked} of {len(chunks)} chunks re-asked; +{extra} requests "
              f"(+{extra / max(1, first.requests):.0%}), +{total.prompt_tokens - first.prompt_tokens} prompt and "
              f"+{total.completion_tokens - first.completion_tokens} completion tokens, "
              f"≈ +{extra * run.seconds / max(1, total.requests):.0f} s of {run.seconds:.0f} s")
    if args.out:
        lines = []
        for chunk in chunks:
            lines += [f"## {chunk.source} #{chunk.index} ({chunk.language})", "", chunk.text[:300] + " …", ""]
            for prompt, run in runs.items():
                lines += [f"- **{prompt}, first**: {q}" for q in run.first[chunk.id].questions]
                lines += [f"- **{prompt}, checked**: {q}" for q in run.answers[chunk.id].questions]
            lines.append("")
        args.out.write_text("\n".join(lines), encoding="utf-8")
        print(f"questions written to {args.out}")


if __name__ == "__main__":
    main()
