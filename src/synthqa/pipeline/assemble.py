"""Answers → filtered, scored, split rows → the dataset folder and its manifest."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field, replace

from .. import __version__, card, dataset, filters, language, roundtrip, splits
from ..config import GenerateConfig, public_url
from ..manifest import (
    Counts,
    Document,
    FailedChunk,
    LanguageCount,
    Manifest,
    PromptInfo,
    RoundTrip,
    SkippedFile,
    SkippedPage,
    SplitInfo,
)
from ..records import Answer, Chunk, Usage
from .curation import ROUNDTRIP_FILTER, apply_curation, below_min_rank, ranks, row_counts
from .inputs import Inputs, Log


@dataclass
class Rows:
    """The tables of the dataset, as row dicts, and what the filters dropped on the way."""

    queries: list[dict] = field(default_factory=list)
    corpus: list[dict] = field(default_factory=list)
    generated: int = 0
    drop_counts: Counter = field(default_factory=Counter)
    embedder: str | None = None
    corpus_vectors: object = None  # the embedder's vectors of ``corpus``, in its order


def assemble_and_write(config: GenerateConfig, template, inputs: Inputs, by_chunk: dict[str, Answer],
                       endpoint, log: Log = print) -> Manifest:
    """Turn answers into filtered, scored, split rows and write the dataset folder; returns the manifest.

    The rows the filters kept are saved before a person's decisions (``OUT/curation.jsonl``) are applied,
    so a rerun keeps the decisions and ``synthqa curate`` can apply new ones without asking anything.
    """
    rows = build_rows(config, inputs, by_chunk, check_language=template.uses_language)
    dataset.write_generated(config.out, rows.queries)
    if rows.corpus_vectors is not None:
        dataset.write_corpus_vectors(config.out, [c["id"] for c in rows.corpus], rows.corpus_vectors, rows.embedder)
    rows.queries, curation = apply_curation(config.out, rows.queries, rows.corpus, config.min_roundtrip_rank,
                                            rows.embedder, log, rows.corpus_vectors)
    manifest = replace(build_manifest(config, template, endpoint, inputs, by_chunk, rows), curation=curation)
    files = dataset.write_dataset(config.out, corpus=rows.corpus, queries=rows.queries,
                                  render_card=lambda files: card.render_card(replace(manifest, data_files=files)))
    return replace(manifest, data_files=files)


def build_rows(config: GenerateConfig, inputs: Inputs, by_chunk: dict[str, Answer],
               check_language: bool = False) -> Rows:
    """Filter the questions, rank each one's own chunk, split by chunk, and lay out the table rows.

    With ``check_language`` a question not in its chunk's language is dropped as ``wrong_language``."""
    asked = inputs.asked
    chunk_of = {c.id: c for c in asked}
    items = [
        (f"q-{cid}-{n}", question, chunk_of[cid].text)
        for cid, answer in by_chunk.items()
        if answer.ok
        for n, question in enumerate(answer.questions)
    ]
    reference = {f"q-{cid}-{n}": text for cid, answer in by_chunk.items() if answer.ok
                 for n, text in enumerate(answer.answers)}
    chunk_languages = [chunk_of[qid.split("-")[1]].language for qid, _, _ in items]
    result = filters.filter_questions(items, chunk_languages if check_language else None, chunk_languages)
    kept = [items[i] for i in result.kept]
    index_of = {c.id: i for i, c in enumerate(asked)}
    own = [index_of[qid.split("-")[1]] for qid, _, _ in kept]
    scores = roundtrip.score_roundtrip(
        [q for _, q, _ in kept], own, [c.text for c in asked], use_embeddings=config.embed_roundtrip
    )
    assignment = splits.assign_splits(asked, config.eval_fraction, config.seed)
    rows = Rows(generated=len(items), drop_counts=Counter(result.counts), embedder=scores.embedder,
                corpus_vectors=scores.corpus_vectors)
    ocr_pages = {(source, page) for source, read in inputs.documents.items() for page in read.ocr_pages}
    rows.corpus = [
        {"id": c.id, "text": c.text, "source": c.source, "page": c.page, "chunk_index": c.index,
         "ocr": (c.source, c.page) in ocr_pages, "language": c.language, "split": assignment[c.id]}
        for c in asked
    ]
    for k, (qid, question, _) in enumerate(kept):
        chunk = asked[own[k]]
        row = {"id": qid, "text": question, "chunk_id": chunk.id, "source": chunk.source, "page": chunk.page,
               **ranks(scores, k, rows.corpus, assignment[chunk.id]), "answer": reference.get(qid),
               "split": assignment[chunk.id]}
        if below_min_rank(row, config.min_roundtrip_rank):
            rows.drop_counts[ROUNDTRIP_FILTER] += 1
            continue
        rows.queries.append(row)
    return rows


def failed_chunks(asked: list[Chunk], by_chunk: dict[str, Answer]) -> tuple[FailedChunk, ...]:
    """Every chunk asked about that has no questions to show: failed answers, and (after an interruption or a
    fatal error) chunks never asked."""
    chunk_of = {c.id: c for c in asked}
    failed = [
        FailedChunk(cid, chunk_of[cid].source, chunk_of[cid].page, a.error or "", a.transient)
        for cid, a in by_chunk.items()
        if not a.ok
    ]
    failed += [FailedChunk(c.id, c.source, c.page, "not asked yet", True) for c in asked if c.id not in by_chunk]
    return tuple(failed)


def build_manifest(config: GenerateConfig, template, endpoint, inputs: Inputs, by_chunk: dict[str, Answer],
                   rows: Rows) -> Manifest:
    """The manifest of this run, before the data files are written (``data_files`` and ``timings`` empty)."""
    usage = sum((a.usage for a in by_chunk.values()), Usage())
    return Manifest(
        synthqa_version=__version__,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        # the endpoint really asked (--base-url or OPENAI_BASE_URL), so --retry-failed asks it again
        options=replace(config.public_options(), base_url=public_url(endpoint.base_url)),
        model=endpoint.model,
        endpoint_host=endpoint.host,
        local=endpoint.local,
        prompt=PromptInfo(template.name, template.system, template.user, template.sha256),
        counts=_counts(inputs, by_chunk, rows, usage),
        documents=documents(inputs),
        skipped_files=tuple(SkippedFile(s.source, s.reason) for s in inputs.skipped_files),
        skipped_pages=tuple(SkippedPage(s.source, s.page, s.reason) for s in inputs.skipped_pages),
        skipped_chunks=dict(Counter(s.reason for s in inputs.skipped_chunks)),
        question_filters=dict(rows.drop_counts),
        failed_chunks=failed_chunks(inputs.asked, by_chunk),
        roundtrip=RoundTrip(bm25=True, embedder=rows.embedder, min_rank=config.min_roundtrip_rank),
        split=SplitInfo(method=splits.METHOD, seed=config.seed, eval_fraction=config.eval_fraction),
        languages=language_counts(inputs.asked, rows.queries),
        language_check=template.uses_language,
    )


def documents(inputs: Inputs) -> tuple[Document, ...]:
    """Each document that gave pages: how many, what cleaning changed, and what OCR read."""
    listed = []
    for source, pages in sorted(inputs.pages_per_doc.items()):
        read = inputs.documents[source]
        listed.append(Document(source, pages, read.cleaning, len(read.ocr_pages), read.ocr_seconds))
    return tuple(listed)


def language_counts(asked: list[Chunk], queries: list[dict]) -> dict[str, LanguageCount]:
    """Chunks asked and questions kept per chunk language, the language with most chunks first."""
    language_of = {c.id: c.language or language.UNDETERMINED for c in asked}
    chunks = Counter(language_of.values())
    questions = Counter(language_of[q["chunk_id"]] for q in queries)
    ordered = sorted(chunks.items(), key=lambda kv: (-kv[1], kv[0]))
    return {code: LanguageCount(n, questions[code]) for code, n in ordered}


def _counts(inputs: Inputs, by_chunk: dict[str, Answer], rows: Rows, usage: Usage) -> Counts:
    asked = inputs.asked
    chunks_per_split = Counter(c["split"] for c in rows.corpus)
    return Counts(
        documents=len(inputs.pages_per_doc),
        pages=sum(inputs.pages_per_doc.values()),
        chunks=len(inputs.chunks),
        chunks_asked=len(asked),
        questions_generated=rows.generated,
        train_chunks=chunks_per_split["train"],
        eval_chunks=chunks_per_split["eval"],
        short_chunks=sum(1 for a in by_chunk.values() if a.ok and a.short),
        avg_chunk_chars=round(sum(len(c.text) for c in asked) / max(1, len(asked)), 1),
        **row_counts(rows.queries, {c.id: c.text for c in asked}),
        requests=usage.requests,
        requests_this_run=0,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
    )
