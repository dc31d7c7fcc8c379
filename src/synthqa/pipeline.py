"""The only place the stages meet: load → split → filter → ask (cached) → assemble → write → push.

Every stage module is pure or owns one resource; this module wires them, times them, and builds the
manifest. ``run_generate`` is synchronous and calls ``asyncio.run`` once, for the LLM stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from . import __version__, card, chunks, dataset, filters, pdfs, prompts, questions, roundtrip, splits
from .cache import Cache, answer_key, cache_path
from .config import DATASET_SETTINGS, DEFAULT_MODEL, GenerateConfig
from .errors import InputError, LocalModelError, OutputError
from .records import Answer, Chunk, SkippedChunk, SkippedFile, Usage

Log = Callable[[str], None]


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


@dataclass
class _Inputs:
    chunks: list[Chunk] = field(default_factory=list)
    skipped_files: list[SkippedFile] = field(default_factory=list)
    pages_per_doc: Counter = field(default_factory=Counter)
    load_seconds: float = 0.0
    split_seconds: float = 0.0


def run_generate(config: GenerateConfig, log: Log = print, progress: bool = True) -> RunResult | DryRun:
    """Generate (or dry-run) a dataset as ``config`` says; returns what was written."""
    template = prompts.load_template(config.prompt_path)  # a bad template fails before any work
    endpoint = resolve_endpoint(config, log)
    _check_out(config, template, endpoint)
    if config.push_to_hub and not config.dry_run:
        from . import hub

        hub.check_can_push(config.push_to_hub)
    inputs = _load_and_split(config, log)
    asked, skipped = _select_chunks(inputs.chunks, config)
    keys = {
        c.id: answer_key(
            model=endpoint.model,
            prompt_sha256=template.sha256,
            chunk_text=c.text,
            n_questions=config.questions_per_chunk,
            temperature=config.temperature,
        )
        for c in asked
    }
    if config.dry_run:
        return _dry_run(config, template, endpoint, inputs, asked, skipped, keys)

    with Cache(cache_path(config.out)) as cache:
        answers = cache.get_many(list(keys.values()))
        todo = [c for c in asked if keys[c.id] not in answers or (config.retry_failed and not answers[keys[c.id]].ok)]
        this_run = [Usage()]
        started = time.perf_counter()
        if todo:
            if len(todo) < len(asked):
                log(f"resuming: {len(asked) - len(todo)} of {len(asked)} chunks already answered in the cache")

            def on_answer(chunk: Chunk, answer: Answer) -> None:
                cache.put(keys[chunk.id], answer)
                answers[keys[chunk.id]] = answer
                this_run[0] += answer.usage

            try:
                _ask(config, template, endpoint, todo, on_answer, progress)
            except KeyboardInterrupt:
                log(f"interrupted: {len(answers)} answers are safe in {cache.path}; rerun the same command to resume")
                raise
        generate_seconds = time.perf_counter() - started
        by_chunk = {c.id: answers[keys[c.id]] for c in asked if keys[c.id] in answers}

    started = time.perf_counter()
    manifest = _assemble_and_write(config, template, inputs, asked, skipped, by_chunk, endpoint)
    manifest["counts"]["requests_this_run"] = this_run[0].requests
    manifest["timings"] = {
        "load": round(inputs.load_seconds, 3),
        "split": round(inputs.split_seconds, 3),
        "generate": round(generate_seconds, 3),
        "write": round(time.perf_counter() - started, 3),
    }
    dataset.write_manifest(config.out, manifest)
    pushed = None
    if config.push_to_hub:
        from . import hub

        pushed = hub.push_dataset(config.out, config.push_to_hub, private=config.private)
    return RunResult(config.out, manifest, pushed)


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
    if config.overwrite:
        for sub in ("data",):
            shutil.rmtree(out / sub, ignore_errors=True)


def _load_and_split(config: GenerateConfig, log: Log) -> _Inputs:
    """Stream pages into chunks, timing each stage and reporting each skipped file at once."""
    found = _Inputs()

    def on_skip(skipped: SkippedFile) -> None:
        found.skipped_files.append(skipped)
        log(f"skipped {skipped.path}: {skipped.reason}")

    def timed_pages() -> Iterator:
        pages = pdfs.load_pages(config.inputs, password=config.pdf_password, on_skip=on_skip)
        while True:
            t0 = time.perf_counter()
            page = next(pages, None)
            found.load_seconds += time.perf_counter() - t0
            if page is None:
                return
            found.pages_per_doc[page.source] += 1
            yield page

    t0 = time.perf_counter()
    found.chunks = list(chunks.split_pages(timed_pages(), config.chunk_size, config.chunk_overlap))
    found.split_seconds = time.perf_counter() - t0 - found.load_seconds
    if not found.chunks:
        what = f"{len(found.skipped_files)} file(s) skipped" if found.skipped_files else "no PDF, .txt or .md file found"
        raise InputError(f"nothing usable in {', '.join(map(str, config.inputs))} ({what}): nothing to do")
    return found


def _select_chunks(all_chunks: list[Chunk], config: GenerateConfig) -> tuple[list[Chunk], list[SkippedChunk]]:
    """Chunks worth asking about (first --limit of them), and those skipped before any request."""
    asked: list[Chunk] = []
    skipped: list[SkippedChunk] = []
    for chunk in all_chunks:
        reason = None if config.keep_all_chunks else filters.chunk_skip_reason(chunk.text)
        if reason:
            skipped.append(SkippedChunk(chunk.id, chunk.source, chunk.page, reason))
        else:
            asked.append(chunk)
    if config.limit is not None:
        asked = asked[: config.limit]
    return asked, skipped


def _dry_run(config, template, endpoint, inputs, asked, skipped, keys) -> DryRun:
    if config.out.exists() and cache_path(config.out).exists():
        with Cache(cache_path(config.out), readonly=True) as cache:
            cached = len(cache.get_many(list(keys.values())))
    else:
        cached = 0
    prompt_tokens = sum(
        questions.estimate_tokens(m["content"])
        for c in asked
        for m in questions.build_messages(template, c.text, config.questions_per_chunk)
    )
    return DryRun(
        documents=len(inputs.pages_per_doc),
        pages=sum(inputs.pages_per_doc.values()),
        chunks=len(inputs.chunks),
        chunks_to_ask=len(asked) - cached,
        cached=cached,
        prompt_tokens=prompt_tokens,
        completion_tokens=len(asked) * config.questions_per_chunk * 30,  # ≈ 30 tokens a question, measured
        skipped_chunks=dict(Counter(s.reason for s in skipped)),
        skipped_files=inputs.skipped_files,
        model=endpoint.model,
    )


@dataclass(frozen=True)
class Endpoint:
    """Where questions are asked: a remote OpenAI-compatible URL, or the embedded model (started later)."""

    local: bool
    model: str
    base_url: str | None
    mode: str
    concurrency: int

    @property
    def host(self) -> str:
        if self.local:
            return "127.0.0.1 (embedded llama.cpp)"
        return urlparse(self.base_url).hostname if self.base_url else "api.openai.com"


def resolve_endpoint(config: GenerateConfig, log: Log) -> Endpoint:
    """Decide remote or local before any work, so the cache key names the model really used."""
    base_url = config.base_url or os.environ.get("OPENAI_BASE_URL") or None
    use_local = config.local or config.local_model is not None or not (os.environ.get("OPENAI_API_KEY") or base_url)
    if not use_local:
        mode = "json_schema" if config.response_format == "auto" else config.response_format
        return Endpoint(False, config.model or DEFAULT_MODEL, base_url, mode, config.concurrency)
    from . import local

    if not (config.local or config.local_model) and not config.dry_run:
        log("no OPENAI_API_KEY or --base-url given: using the embedded local model (offline); see --local-model")
    mode = "json_object" if config.response_format == "auto" else config.response_format
    # llama.cpp's server answers one request at a time: more in flight would only queue there.
    return Endpoint(True, local.model_name(config.local_model), None, mode, 1)


def _ask(config, template, endpoint: Endpoint, todo, on_answer, progress: bool) -> None:
    """Ask the endpoint (remote, or the embedded model started here) for every chunk in ``todo``."""
    with contextlib.ExitStack() as stack:
        base_url, api_key = endpoint.base_url, os.environ.get("OPENAI_API_KEY") or "not-needed"
        checked = on_answer
        if endpoint.local:
            from . import local

            log_path = config.out / ".synthqa" / "llama-server.log"
            server = stack.enter_context(
                local.local_endpoint(config.local_model, threads=config.local_threads, log_path=log_path)
            )
            base_url, api_key = server.base_url, server.api_key

            def checked(chunk: Chunk, answer: Answer) -> None:
                # A dead server fails every chunk after it: stop, without storing this non-answer.
                if not answer.ok and not server.server.alive():
                    raise LocalModelError(
                        f"the embedded model server stopped mid-run (log: {log_path}); answers so far are "
                        "cached: rerun the same command to resume"
                    )
                on_answer(chunk, answer)
        client = questions.make_client(
            base_url=base_url,
            api_key=api_key,
            timeout=config.timeout,
            max_retries=config.max_retries,
            concurrency=endpoint.concurrency,
        )

        async def ask_all() -> None:
            try:
                await questions.generate(
                    todo,
                    client=client,
                    template=template,
                    n=config.questions_per_chunk,
                    model=endpoint.model,
                    temperature=config.temperature,
                    concurrency=endpoint.concurrency,
                    max_attempts=config.max_attempts,
                    mode=endpoint.mode,
                    rpm=config.rpm,
                    tpm=config.tpm,
                    on_answer=checked,
                    progress=progress,
                )
            finally:
                await client.close()

        asyncio.run(ask_all())


def _assemble_and_write(config, template, inputs, asked, skipped, by_chunk, endpoint) -> dict:
    """Turn answers into filtered, scored, split rows and write the dataset folder."""
    chunk_of = {c.id: c for c in asked}
    failed = [
        {"chunk_id": cid, "source": chunk_of[cid].source, "page": chunk_of[cid].page, "reason": a.error}
        for cid, a in by_chunk.items()
        if not a.ok
    ]
    missing = [c for c in asked if c.id not in by_chunk]  # only after an interrupted or fatal run
    failed += [{"chunk_id": c.id, "source": c.source, "page": c.page, "reason": "not asked yet"} for c in missing]

    items = [
        (f"q-{cid}-{n}", question, chunk_of[cid].text)
        for cid, answer in by_chunk.items()
        if answer.ok
        for n, question in enumerate(answer.questions)
    ]
    result = filters.filter_questions(items)
    kept = [items[i] for i in result.kept]
    drop_counts = Counter(result.counts)

    index_of = {c.id: i for i, c in enumerate(asked)}
    own = [index_of[qid.split("-")[1]] for qid, _, _ in kept]
    scores = roundtrip.score_roundtrip(
        [q for _, q, _ in kept], own, [c.text for c in asked], use_embeddings=config.embed_roundtrip
    )
    assignment = splits.assign_splits(asked, config.eval_fraction, config.seed)

    queries = []
    for k, (qid, question, _) in enumerate(kept):
        chunk = asked[own[k]]
        bm25_rank = scores.bm25_rank[k]
        embed_rank = scores.embed_rank[k] if scores.embed_rank is not None else None
        if config.min_roundtrip_rank is not None:
            best = min(r for r in (bm25_rank, embed_rank) if r is not None)
            if best > config.min_roundtrip_rank:
                drop_counts["roundtrip_rank"] += 1
                continue
        extras = [asked[j].id for j in scores.extra_relevant[k] if assignment[asked[j].id] == assignment[chunk.id]]
        queries.append(
            {
                "id": qid, "text": question, "chunk_id": chunk.id, "source": chunk.source, "page": chunk.page,
                "bm25_rank": bm25_rank, "embed_rank": embed_rank, "extra_relevant_ids": extras,
                "split": assignment[chunk.id],
            }
        )
    corpus = [
        {"id": c.id, "text": c.text, "source": c.source, "page": c.page, "chunk_index": c.index, "split": assignment[c.id]}
        for c in asked
    ]
    usage = sum((a.usage for a in by_chunk.values()), Usage())
    per_split = Counter(q["split"] for q in queries)
    chunks_per_split = Counter(c["split"] for c in corpus)
    manifest = {
        "synthqa_version": __version__,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "options": config.public_options(),
        "model": endpoint.model,
        "endpoint_host": endpoint.host,
        "local": endpoint.local,
        "prompt": {"name": template.name, "system": template.system, "user": template.user, "sha256": template.sha256},
        "counts": {
            "documents": len(inputs.pages_per_doc),
            "pages": sum(inputs.pages_per_doc.values()),
            "chunks": len(inputs.chunks),
            "chunks_asked": len(asked),
            "questions": len(queries),
            "questions_generated": len(items),
            "train_pairs": per_split["train"],
            "eval_pairs": per_split["eval"],
            "train_chunks": chunks_per_split["train"],
            "eval_chunks": chunks_per_split["eval"],
            "short_chunks": sum(1 for a in by_chunk.values() if a.ok and a.short),
            "avg_question_chars": round(sum(len(q["text"]) for q in queries) / max(1, len(queries)), 1),
            "avg_chunk_chars": round(sum(len(c.text) for c in asked) / max(1, len(asked)), 1),
            "requests": usage.requests,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
        },
        "documents": [{"source": s, "pages": n} for s, n in sorted(inputs.pages_per_doc.items())],
        "skipped_files": [{"path": s.path, "reason": s.reason} for s in inputs.skipped_files],
        "skipped_chunks": dict(Counter(s.reason for s in skipped)),
        "question_filters": dict(drop_counts),
        "failed_chunks": failed,
        "roundtrip": {"bm25": True, "embedder": scores.embedder, "min_rank": config.min_roundtrip_rank},
        "split": {"method": splits.METHOD, "seed": config.seed, "eval_fraction": config.eval_fraction},
    }
    return dataset.write_dataset(config.out, corpus=corpus, queries=queries, manifest=manifest, render_card=card.render_card)
