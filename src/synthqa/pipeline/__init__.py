"""The only place the stages meet: load → split → filter → ask (cached) → assemble → write → push.

Every stage module is pure or owns one resource; this package wires them, times them, and builds the
manifest. ``run_generate`` is synchronous and calls ``asyncio.run`` once: loading streams in a thread
into the LLM stage, so questions are asked while later pages are still being parsed.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from .. import dataset, prompts, questions
from ..cache import Cache, answer_key, cache_path
from ..config import DATASET_SETTINGS, GenerateConfig
from ..errors import OutputError
from ..records import Answer, Chunk, SkippedFile, Usage
from .asking import Endpoint, ask_all, resolve_endpoint
from .assemble import assemble_and_write
from .inputs import Log, ThreadedFeed, load_inputs

__all__ = ["DryRun", "Endpoint", "RunResult", "resolve_endpoint", "run_generate"]


@dataclass(frozen=True)
class DryRun:
    """What a run would ask for, without asking."""

    documents: int
    pages: int
    chunks: int
    chunks_to_ask: int
    cached: int
    prompt_tokens: int
    completion_tokens: int
    skipped_chunks: dict[str, int]
    skipped_files: list[SkippedFile]
    model: str


@dataclass(frozen=True)
class RunResult:
    """A finished run: the manifest as written, and where."""

    out: Path
    manifest: dict
    pushed: object | None = None

    @property
    def failed(self) -> int:
        return len(self.manifest["failed_chunks"])


def run_generate(config: GenerateConfig, log: Log = print, progress: bool = True) -> RunResult | DryRun:
    """Generate (or dry-run) a dataset as ``config`` says; returns what was written."""
    template = prompts.load_template(config.prompt_path)  # a bad template fails before any work
    endpoint = resolve_endpoint(config, log)
    _check_out(config, template, endpoint)
    if config.dry_run:
        return _dry_run(config, template, endpoint, log)
    if config.push_to_hub:
        from .. import hub

        hub.check_can_push(config.push_to_hub)

    feed = ThreadedFeed(config, log)
    this_run = [Usage()]
    with Cache(cache_path(config.out)) as cache:
        answers: dict[str, Answer] = {}  # chunk id → answer, from the cache or from this run
        started = time.perf_counter()

        waiting: dict[str, list[Chunk]] = {}  # key → chunks of that text: identical texts are asked once

        key_of: dict[str, str] = {}  # chunk id → cache key, computed once as the chunk streams in

        def on_answer(chunk: Chunk, answer: Answer) -> None:
            key = key_of[chunk.id]
            cache.put(key, answer)  # committed at once: SIGKILL-safe
            for same in waiting.pop(key, [chunk]):
                answers[same.id] = answer
            this_run[0] += answer.usage

        to_ask: list[int | None] = [None]  # how many chunks todo() yields, once it has ended
        retried: set[str] = set()

        async def todo() -> AsyncIterator[Chunk]:
            """The streamed chunks the cache cannot answer (or whose failure --retry-failed asks again)."""
            count = 0
            async for chunk in feed:
                key = key_of[chunk.id] = _key(config, template, endpoint, chunk)
                if key in waiting:  # the same text is being asked already (repeated boilerplate)
                    waiting[key].append(chunk)
                    continue
                stored = cache.get(key)
                if stored is not None:
                    answers[chunk.id] = stored
                if stored is None or (config.retry_failed and not stored.ok and key not in retried):
                    retried.add(key)
                    waiting[key] = [chunk]
                    count += 1
                    yield chunk
            to_ask[0] = count
            if count < len(feed.found.asked):
                log(f"resuming: {len(feed.found.asked) - count} of {len(feed.found.asked)} chunks already "
                    "answered in the cache")

        async def generate() -> None:
            pending = todo()
            first = await anext(pending, None)
            if first is None:
                return  # everything is cached: no endpoint (or local server) is needed at all
            await ask_all(config, template, endpoint, _chain(first, pending), on_answer, progress,
                          total=lambda: to_ask[0])

        try:
            asyncio.run(generate())
        except KeyboardInterrupt:
            log(f"interrupted: {len(cache)} answers are safe in {cache.path}; rerun the same command to resume")
            raise
        inputs = feed.join()
        generate_seconds = time.perf_counter() - started

    started = time.perf_counter()
    by_chunk = {c.id: answers[c.id] for c in inputs.asked if c.id in answers}
    manifest = assemble_and_write(config, template, inputs, by_chunk, endpoint)
    manifest["counts"]["requests_this_run"] = this_run[0].requests
    manifest["timings"] = {
        "load": round(inputs.load_seconds, 3),
        "split": round(inputs.split_seconds, 3),
        "generate": round(generate_seconds, 3),  # overlaps load and split, which stream into it
        "write": round(time.perf_counter() - started, 3),
    }
    dataset.write_manifest(config.out, manifest)
    pushed = None
    if config.push_to_hub:
        from .. import hub

        pushed = hub.push_dataset(config.out, config.push_to_hub, private=config.private)
    return RunResult(config.out, manifest, pushed)


def _key(config: GenerateConfig, template: prompts.PromptTemplate, endpoint: Endpoint, chunk: Chunk) -> str:
    return answer_key(
        model=endpoint.model,
        prompt_sha256=template.sha256,
        chunk_text=chunk.text,
        n_questions=config.questions_per_chunk,
        temperature=config.temperature,
    )


async def _chain(first: Chunk, rest: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    yield first
    async for chunk in rest:
        yield chunk


def _check_out(config: GenerateConfig, template: prompts.PromptTemplate, endpoint: Endpoint) -> None:
    """Refuse to mix a new run into a folder holding another run's dataset, or someone else's files."""
    out = config.out
    if not out.exists() or config.dry_run:
        return
    manifest_path = out / dataset.MANIFEST
    if manifest_path.exists():
        old = dataset.read_manifest(out)
        old_opts = old.get("options", {})
        new_opts = config.public_options()
        diffs = [
            f"{key} {old_opts.get(key)!r} → {new_opts.get(key)!r}"
            for key in DATASET_SETTINGS
            if old_opts.get(key) != new_opts.get(key)
        ]
        if old.get("model") != endpoint.model:
            diffs.append(f"model {old.get('model')!r} → {endpoint.model!r}")
        if old.get("prompt", {}).get("sha256") != template.sha256:
            diffs.append("prompt template changed")
        if diffs and not config.overwrite:
            raise OutputError(
                f"{out} holds a dataset made with other settings ({'; '.join(diffs)}): "
                "pass --overwrite to replace it (cached answers are reused), or choose another -o"
            )
    elif any(p.name != ".synthqa" for p in out.iterdir()) and not (out / ".synthqa").exists():
        if not config.overwrite:
            raise OutputError(f"{out} is not empty and is not a synthqa output: choose an empty or new folder for -o")


def _dry_run(config: GenerateConfig, template, endpoint: Endpoint, log: Log) -> DryRun:
    """Count what a run would ask, and what it would cost, without asking; cached chunks cost nothing."""
    inputs = load_inputs(config, log)
    keys = {c.id: _key(config, template, endpoint, c) for c in inputs.asked}
    cached: dict[str, Answer] = {}
    if cache_path(config.out).exists():
        with Cache(cache_path(config.out), readonly=True) as cache:
            cached = cache.get_many(list(keys.values()))
    to_ask = [c for c in inputs.asked if keys[c.id] not in cached]
    prompt_tokens = sum(
        questions.estimate_tokens(m["content"])
        for c in to_ask
        for m in questions.build_messages(template, c.text, config.questions_per_chunk)
    )
    return DryRun(
        documents=len(inputs.pages_per_doc),
        pages=sum(inputs.pages_per_doc.values()),
        chunks=len(inputs.chunks),
        chunks_to_ask=len(to_ask),
        cached=len(inputs.asked) - len(to_ask),
        prompt_tokens=prompt_tokens,
        completion_tokens=len(to_ask) * config.questions_per_chunk * questions.ESTIMATED_TOKENS_PER_QUESTION,
        skipped_chunks=dict(Counter(s.reason for s in inputs.skipped_chunks)),
        skipped_files=inputs.skipped_files,
        model=endpoint.model,
    )


