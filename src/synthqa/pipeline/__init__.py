"""The only place the stages meet: count → read → split → filter → ask (cached) → assemble → write → push.

Every stage module is pure or owns one resource; this package wires them, times them, and builds the
manifest. ``run_generate`` is synchronous and calls ``asyncio.run`` once: reading streams in a thread into
the LLM stage, so questions are asked while later files are still being read. Between the stages, chunks
and questions wait on disk (``store.RunStore`` in ``OUT/.synthqa/work/``), never all in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields, replace
from pathlib import Path

from .. import dataset, language, prompts, questions, styles
from ..cache import CACHE_DIRNAME, Cache, answer_key, cache_path
from ..config import GenerateConfig
from ..manifest import Manifest, Timings
from ..records import Answer, Chunk, SkippedFile, Usage
from ..styles import StylePlan
from ..store import WORK_FILENAME, RunStore
from ..batchstate import BatchState, state_path
from .asking import Endpoint, ask_all, resolve_endpoint
from .batching import BatchPending, BatchStep, add_failures
from .assemble import assemble_and_write
from .inputs import Inputs, ThreadedFeed, stream_inputs
from .progress import Log, Progress, count_done_before, start_clock
from .rerun import check_out, config_for_retry

__all__ = ["BatchPending", "DryRun", "Endpoint", "RunResult", "config_for_retry", "resolve_endpoint", "run_generate"]
WORK_DIRNAME = "work"  # inside OUT/.synthqa/: scratch files of the run in progress


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
    styles: int = 1  # query styles: chunks_to_ask and cached count requests (a chunk in a style) when more than 1


@dataclass(frozen=True)
class RunResult:
    """A finished run: the manifest as written, and where."""

    out: Path
    manifest: Manifest
    pushed: object | None = None

    @property
    def failed(self) -> int:
        return len(self.manifest.failed_chunks)


def run_generate(config: GenerateConfig, log: Log = print, progress: bool = True,
                 results: tuple[Path, ...] = (), *, asked_before: Usage = Usage(),
                 ask_seconds_before: float = 0.0,
                 answered_since: float | None = None) -> RunResult | DryRun | BatchPending:
    """Generate (or dry-run) a dataset as ``config`` says; returns what was written.

    With ``config.batch`` the questions are asked through batch files (``results``: result files of vllm
    run-batch to import); a ``BatchPending`` comes back while batches are still open. ``asked_before`` and
    ``ask_seconds_before``: what asking elsewhere (a Ray cluster) cost this run before it filled the cache,
    counted in the manifest with this run's own requests and ask time; ``answered_since``: when that asking began
    (``time.time()``), so its answers are not taken for an earlier run's (default: now)."""
    plans = styles.load_plans(config.style_mix, config.prompt_path, config.spare_questions)  # a bad template fails before any work
    template = styles.main_template(plans)
    if not template.uses_language:
        log(f"prompt {template.name!r} has no $language: questions are not checked against their chunk's "
            "language (see prompts/README.md)")
    endpoint = resolve_endpoint(config, log)
    plans = styles.for_endpoint(plans, endpoint.local)
    check_out(config, template, endpoint)
    shown = Progress(progress, log)
    if config.dry_run:
        return _dry_run(config, plans, endpoint, log, shown)
    if config.push_to_hub:
        from .. import hub

        hub.check_can_push(config.push_to_hub)

    dataset.write_run_settings(config.out, config.run_settings(endpoint.base_url))
    workdir = work_dir(config.out)
    shutil.rmtree(workdir, ignore_errors=True)  # what an interrupted run left
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(RunStore(workdir / WORK_FILENAME))
        cache = stack.enter_context(Cache(cache_path(config.out)))
        state = stack.enter_context(BatchState(state_path(config.out))) if config.batch else None
        step = AskStep(config, template, endpoint, cache, store, log, shown, plans, answered_since)
        asking = step.run() if state is None else BatchStep(step, state, results).run()
        try:
            pending = asyncio.run(asking)
        except KeyboardInterrupt as interrupt:
            step.feed.stop()  # reading processes, when any, are killed before the run ends
            # the CLI's one "interrupted" line says it, the exit status still telling Ctrl-C from SIGTERM
            raise KeyboardInterrupt(f"{len(cache)} answers are safe in {cache.path}; rerun the same command to "
                                    "resume") from interrupt
        inputs = step.feed.join()
        if pending is None:  # else batches are still open: the dataset is written once they have all ended
            if state is not None:
                add_failures(state, store)
            cache.close()
            store.attach_cache(cache_path(config.out))
            manifest = assemble_and_write(config, inputs, store, endpoint, shown, workdir, plans, log)
            if state is not None:
                state.clear_cycle()
    shutil.rmtree(workdir, ignore_errors=True)
    if pending is not None:
        return pending
    manifest = replace(
        manifest,
        counts=replace(manifest.counts, requests_this_run=step.usage_this_run.requests + asked_before.requests),
        timings=Timings(**{f.name: round(shown.seconds.get(f.name, 0.0) + (ask_seconds_before if f.name == "ask"
                                                                            else 0.0), 3) for f in fields(Timings)}),
    )
    dataset.write_manifest(config.out, manifest)
    pushed = None
    if config.push_to_hub:
        from .. import hub

        with shown.stage("push", "push") as stage:
            pushed = hub.push_dataset(config.out, config.push_to_hub, private=config.private)
            stage.detail = f"{config.push_to_hub} on the Hub"
        manifest = dataset.read_manifest(config.out)
    return RunResult(config.out, manifest, pushed)


def work_dir(out: Path) -> Path:
    """Where a run keeps its scratch files (removed when the dataset is written)."""
    return Path(out) / CACHE_DIRNAME / WORK_DIRNAME


class AskStep:
    """The asking stage of one run: stream chunks in, answer what the cache can, ask the rest.

    One request per (chunk, query style), each with its own cache key. Identical chunk texts are asked once.
    Every answer the model gave is committed to the cache the moment it arrives (SIGKILL-safe); transport
    failures are not, so a plain rerun asks those chunks again: they are kept in the run's store. Memory
    holds only the chunks in flight.
    """

    def __init__(self, config: GenerateConfig, template: prompts.PromptTemplate, endpoint: Endpoint, cache: Cache,
                 store: RunStore, log: Log, progress: Progress, plans: tuple[StylePlan, ...],
                 since: float | None = None) -> None:
        self.config, self.template, self.endpoint, self.cache, self.log = config, template, endpoint, cache, log
        self.plans = plans
        self.store, self.progress = store, progress
        self.feed = ThreadedFeed(config, log, progress, self.keep, store.add_skipped)
        self.usage_this_run = Usage()
        self.asked = self.cached = 0
        self.earlier = 0  # requests answered earlier in this run: another chunk of the same text, or on Ray
        self._since = time.time() if since is None else since  # answers stored from then are this run's
        self.bar = None
        self._exact = False  # whether the bar's total is exact yet
        self._waiting: dict[str, list[Chunk]] = {}  # key → chunks of that text being asked (in that style)
        self._key_of: dict[tuple[str, str], str] = {}  # (chunk id, style) → cache key, for the requests in flight
        self._retried: set[str] = set()  # --retry-failed: keys asked again in this run
        self._failed: set[str] = set()  # keys whose failure this run is in the store

    def keep(self, batch: list[Chunk]) -> list[tuple[str, ...]]:
        """Store a batch of chunks (in the reading thread) and return their cache keys, one per style."""
        keys = [tuple(cache_key(self.config, plan.template, self.endpoint, chunk, plan.style) for plan in self.plans)
                for chunk in batch]
        self.store.add_chunks(list(zip(batch, keys)), [plan.style for plan in self.plans])
        return keys

    def on_answer(self, item: tuple[Chunk, StylePlan], answer: Answer) -> None:
        chunk, plan = item
        key = self._key_of.pop((chunk.id, plan.style))
        if answer.transient:
            self.store.add_failure(key, answer)
            self._failed.add(key)
        else:
            self.cache.put(key, answer)
            if key in self._failed:  # a later copy of the text got an answer: it stands for every copy
                self.store.remove_failure(key)
                self._failed.discard(key)
        self.usage_this_run += answer.usage
        self._advance(len(self._waiting.pop(key, [chunk])))

    async def unanswered(self) -> AsyncIterator[tuple[Chunk, StylePlan, str]]:
        """(chunk, style plan, key) of the streamed requests the cache cannot answer (or whose failure
        --retry-failed asks again); the others are counted as cached."""
        async for chunk, keys in self.feed:
            for plan, key in zip(self.plans, keys):
                if key in self._waiting:  # the same text is being asked already (repeated boilerplate)
                    self._waiting[key].append(chunk)
                    continue
                stored, stored_at = self.cache.get_dated(key) or (None, 0.0)
                if stored is None or (self.config.retry_failed and not stored.ok and key not in self._retried):
                    if self.config.retry_failed:
                        self._retried.add(key)
                    yield chunk, plan, key
                else:
                    if stored_at >= self._since:  # repeated boilerplate, or a Ray run: not a resumed run
                        self.earlier += 1
                    else:
                        self.cached += 1
                    self._advance(1, cached=True)
        found = self.feed.found
        if self.cached:
            if len(self.plans) == 1:
                self.log(f"resuming: {self.cached} of {found.asked} chunks already answered in the cache")
            else:
                self.log(f"resuming: {self.cached} of {found.asked * len(self.plans)} requests (a chunk in a style) "
                         "already answered in the cache")

    async def todo(self) -> AsyncIterator[tuple[Chunk, StylePlan]]:
        """The (chunk, style plan) requests to ask live: ``unanswered``, each text once while it is in flight."""
        async for chunk, plan, key in self.unanswered():
            self._waiting[key] = [chunk]
            self._key_of[(chunk.id, plan.style)] = key
            self.asked += 1
            yield chunk, plan

    def _advance(self, n: int, cached: bool = False) -> None:
        """Move the questions bar by ``n`` requests (chunks, with one style), its total estimated from the pages
        read until exact; ``cached`` ones move it without counting in its rate (a resumed run's ETA)."""
        total, exact = self.feed.found.expected_asked()
        if total is not None and self.config.limit is not None:
            total = min(total, self.config.limit)
        if total is not None:
            total *= len(self.plans)
        if self.bar is None:  # the bar (and its clock) starts with the first chunk, with its estimated total
            unit = "chunk" if len(self.plans) == 1 else "request"
            self.bar = self.progress.bar("questions" if exact else "questions (total estimated)", total, unit)
            self._exact = exact
        elif total is not None and total != self.bar.total:
            self.bar.total = total
        if exact and not self._exact:
            self._exact = True
            self.bar.set_description("questions", refresh=False)
        if cached:
            count_done_before(self.bar, n, restart_clock=self.asked == 0)
        else:
            self.bar.update(n)

    def _endpoint_ready(self) -> None:
        """A resumed run's bar times the live work from here: the embedded model's server start (15 s or so)
        taken for the first chunk's work made its first ETAs twice too long."""
        if self.bar is not None:
            start_clock(self.bar)

    async def run(self) -> None:
        """Ask live for every chunk the cache cannot answer."""
        try:
            with self.progress.stage("asking", "ask") as stage:
                pending = self.todo()
                first = await anext(pending, None)
                if first is not None:  # everything cached: no endpoint (or local server) is needed at all
                    await ask_all(self.config, self.template, self.endpoint, _chain(first, pending), self.on_answer,
                                  on_ready=self._endpoint_ready)
                what = "chunks" if len(self.plans) == 1 else "requests (a chunk in a style)"
                repeats = f", {self.earlier:,} answered earlier in this run" if self.earlier else ""
                stage.detail = (f"{self.asked:,} {what} asked, {self.cached:,} answered from the cache{repeats}, "
                                f"{self.usage_this_run.requests:,} requests")
        finally:
            if self.bar is not None:
                self.bar.close()


def cache_key(config: GenerateConfig, template: prompts.PromptTemplate, endpoint: Endpoint, chunk: Chunk,
              style: str = styles.QUESTION) -> str:
    """The cache key of ``chunk``'s answer in ``style`` in this run; ``template`` is that style's."""
    n = config.asked_count(style)
    return answer_key(
        model=endpoint.model,
        prompt_sha256=template.sha256,
        chunk_text=chunk.text,
        n_questions=n,
        temperature=config.temperature,
        language=chunk.language if template.uses_language else None,
        answers=config.answers,
        style=style,
        openers=prompts.request_openers(template, chunk.text, n, language.name(chunk.language)) or None,
    )


async def _chain(first: Chunk, rest: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    yield first
    async for chunk in rest:
        yield chunk


def _dry_run(config: GenerateConfig, plans: tuple[StylePlan, ...], endpoint: Endpoint, log: Log,
             progress: Progress) -> DryRun:
    """Count what a run would ask, and what it would cost, without asking; cached requests cost nothing."""
    found = Inputs()
    cache = Cache(cache_path(config.out), readonly=True) if cache_path(config.out).exists() else None
    to_ask = prompt_tokens = completion_tokens = 0
    per_question = questions.ESTIMATED_TOKENS_PER_QUESTION + (
        questions.ESTIMATED_TOKENS_PER_ANSWER if config.answers else 0)
    try:
        for batch in stream_inputs(config, log, found, progress):
            for plan in plans:
                keys = [cache_key(config, plan.template, endpoint, c, plan.style) for c in batch]
                cached = cache.get_many(keys) if cache is not None else {}
                if config.retry_failed:  # failed answers are asked again, so they cost again
                    cached = {key: answer for key, answer in cached.items() if answer.ok}
                for chunk, key in zip(batch, keys):
                    if key not in cached:
                        to_ask += 1
                        completion_tokens += plan.n * per_question
                        name = language.name(chunk.language) if plan.template.uses_language else None
                        prompt_tokens += sum(questions.estimate_tokens(m["content"]) for m in questions.build_messages(
                            plan.template, chunk.text, plan.n, name, answers=config.answers))
    finally:
        if cache is not None:
            cache.close()
    return DryRun(
        documents=len(found.pages_per_doc),
        pages=sum(found.pages_per_doc.values()),
        chunks=found.chunks,
        chunks_to_ask=to_ask,
        cached=found.asked * len(plans) - to_ask,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        skipped_chunks=dict(found.skipped_chunks),
        skipped_files=found.skipped_files,
        model=endpoint.model,
        styles=len(plans),
    )
