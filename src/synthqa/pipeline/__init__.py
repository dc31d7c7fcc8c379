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
from dataclasses import dataclass, replace
from pathlib import Path

from .. import dataset, language, prompts, questions
from ..cache import Cache, answer_key, cache_path
from ..config import GenerateConfig
from ..manifest import Manifest, Timings
from ..records import Answer, Chunk, SkippedFile, Usage
from .asking import Endpoint, ask_all, resolve_endpoint
from .assemble import assemble_and_write
from .inputs import Log, ThreadedFeed, load_inputs
from .rerun import check_out, config_for_retry

__all__ = ["DryRun", "Endpoint", "RunResult", "config_for_retry", "resolve_endpoint", "run_generate"]


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
    manifest: Manifest
    pushed: object | None = None

    @property
    def failed(self) -> int:
        return len(self.manifest.failed_chunks)


def run_generate(config: GenerateConfig, log: Log = print, progress: bool = True) -> RunResult | DryRun:
    """Generate (or dry-run) a dataset as ``config`` says; returns what was written."""
    template = prompts.load_template(config.prompt_path)  # a bad template fails before any work
    if not template.uses_language:
        log(f"prompt {template.name!r} has no $language: questions are not checked against their chunk's "
            "language (see prompts/README.md)")
    endpoint = resolve_endpoint(config, log)
    check_out(config, template, endpoint)
    if config.dry_run:
        return _dry_run(config, template, endpoint, log)
    if config.push_to_hub:
        from .. import hub

        hub.check_can_push(config.push_to_hub)

    dataset.write_run_settings(config.out, config.run_settings(endpoint.base_url))
    started = time.perf_counter()
    with Cache(cache_path(config.out)) as cache:
        step = AskStep(config, template, endpoint, cache, log)
        try:
            asyncio.run(step.run(progress))
        except KeyboardInterrupt:
            log(f"interrupted: {len(cache)} answers are safe in {cache.path}; rerun the same command to resume")
            raise
        inputs = step.feed.join()
    generate_seconds = time.perf_counter() - started

    started = time.perf_counter()
    by_chunk = {c.id: step.answers[c.id] for c in inputs.asked if c.id in step.answers}
    manifest = assemble_and_write(config, template, inputs, by_chunk, endpoint, log)
    manifest = replace(
        manifest,
        counts=replace(manifest.counts, requests_this_run=step.usage_this_run.requests),
        timings=Timings(
            load=round(inputs.load_seconds, 3),
            split=round(inputs.split_seconds, 3),
            generate=round(generate_seconds, 3),  # overlaps load and split, which stream into it
            write=round(time.perf_counter() - started, 3),
        ),
    )
    dataset.write_manifest(config.out, manifest)
    pushed = None
    if config.push_to_hub:
        from .. import hub

        pushed = hub.push_dataset(config.out, config.push_to_hub, private=config.private)
        manifest = dataset.read_manifest(config.out)
    return RunResult(config.out, manifest, pushed)


class AskStep:
    """The asking stage of one run: stream chunks in, answer what the cache can, ask the rest.

    Identical chunk texts are asked once. Every answer the model gave is committed to the cache the moment
    it arrives (SIGKILL-safe); transport failures are not, so a plain rerun asks those chunks again.
    """

    def __init__(self, config: GenerateConfig, template: prompts.PromptTemplate, endpoint: Endpoint, cache: Cache,
                 log: Log) -> None:
        self.config, self.template, self.endpoint, self.cache, self.log = config, template, endpoint, cache, log
        self.feed = ThreadedFeed(config, log)
        self.answers: dict[str, Answer] = {}  # chunk id → answer, from the cache or from this run
        self.usage_this_run = Usage()
        self.to_ask: int | None = None  # how many chunks todo() yields, once it has ended
        self._waiting: dict[str, list[Chunk]] = {}  # key → chunks of that text being asked
        self._key_of: dict[str, str] = {}  # chunk id → cache key, computed once as the chunk streams in
        self._retried: set[str] = set()

    def on_answer(self, chunk: Chunk, answer: Answer) -> None:
        key = self._key_of[chunk.id]
        if not answer.transient:
            self.cache.put(key, answer)
        for same in self._waiting.pop(key, [chunk]):
            self.answers[same.id] = answer
        self.usage_this_run += answer.usage

    async def todo(self) -> AsyncIterator[Chunk]:
        """The streamed chunks the cache cannot answer (or whose failure --retry-failed asks again)."""
        count = 0
        async for chunk in self.feed:
            key = self._key_of[chunk.id] = cache_key(self.config, self.template, self.endpoint, chunk)
            if key in self._waiting:  # the same text is being asked already (repeated boilerplate)
                self._waiting[key].append(chunk)
                continue
            stored = self.cache.get(key)
            if stored is not None:
                self.answers[chunk.id] = stored
            if stored is None or (self.config.retry_failed and not stored.ok and key not in self._retried):
                self._retried.add(key)
                self._waiting[key] = [chunk]
                count += 1
                yield chunk
        self.to_ask = count
        asked = len(self.feed.found.asked)
        if count < asked:
            self.log(f"resuming: {asked - count} of {asked} chunks already answered in the cache")

    async def run(self, progress: bool) -> None:
        pending = self.todo()
        first = await anext(pending, None)
        if first is None:
            return  # everything is cached: no endpoint (or local server) is needed at all
        await ask_all(self.config, self.template, self.endpoint, _chain(first, pending), self.on_answer, progress,
                      total=lambda: self.to_ask)


def cache_key(config: GenerateConfig, template: prompts.PromptTemplate, endpoint: Endpoint, chunk: Chunk) -> str:
    """The cache key of ``chunk``'s answer in this run."""
    return answer_key(
        model=endpoint.model,
        prompt_sha256=template.sha256,
        chunk_text=chunk.text,
        n_questions=config.questions_per_chunk,
        temperature=config.temperature,
        language=chunk.language if template.uses_language else None,
        answers=config.answers,
    )


async def _chain(first: Chunk, rest: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    yield first
    async for chunk in rest:
        yield chunk


def _dry_run(config: GenerateConfig, template, endpoint: Endpoint, log: Log) -> DryRun:
    """Count what a run would ask, and what it would cost, without asking; cached chunks cost nothing."""
    inputs = load_inputs(config, log)
    keys = {c.id: cache_key(config, template, endpoint, c) for c in inputs.asked}
    cached: dict[str, Answer] = {}
    if cache_path(config.out).exists():
        with Cache(cache_path(config.out), readonly=True) as cache:
            cached = cache.get_many(list(keys.values()))
    if config.retry_failed:  # failed answers are asked again, so they cost again
        cached = {key: answer for key, answer in cached.items() if answer.ok}
    to_ask = [c for c in inputs.asked if keys[c.id] not in cached]
    prompt_tokens = sum(
        questions.estimate_tokens(m["content"])
        for c in to_ask
        for m in questions.build_messages(template, c.text, config.questions_per_chunk,
                                          language.name(c.language) if template.uses_language else None,
                                          answers=config.answers)
    )
    per_question = questions.ESTIMATED_TOKENS_PER_QUESTION + (
        questions.ESTIMATED_TOKENS_PER_ANSWER if config.answers else 0)
    return DryRun(
        documents=len(inputs.pages_per_doc),
        pages=sum(inputs.pages_per_doc.values()),
        chunks=len(inputs.chunks),
        chunks_to_ask=len(to_ask),
        cached=len(inputs.asked) - len(to_ask),
        prompt_tokens=prompt_tokens,
        completion_tokens=len(to_ask) * config.questions_per_chunk * per_question,
        skipped_chunks=dict(Counter(s.reason for s in inputs.skipped_chunks)),
        skipped_files=inputs.skipped_files,
        model=endpoint.model,
    )


