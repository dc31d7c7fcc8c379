"""What the stages after asking counted (``Tally``), and the manifest made of it with the inputs' counts."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace

from .. import __version__, filters, roundtrip, splits, styles
from ..config import GenerateConfig, public_url
from ..manifest import (
    Counts,
    Document,
    FailedChunk,
    Manifest,
    PromptInfo,
    RoundTrip,
    SkippedFile,
    SkippedPage,
    SplitInfo,
    StyleCount,
)
from ..records import Usage
from .curation import language_counts
from .inputs import Inputs


@dataclass
class Tally:
    """What the steps counted, for the manifest."""

    generated: int = 0
    drop_counts: Counter = field(default_factory=lambda: Counter(dict.fromkeys(filters.QUESTION_DROP_REASONS, 0)))
    failed: list[FailedChunk] = field(default_factory=list)
    never_asked: list[FailedChunk] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    short_chunks: int = 0
    written: Counter = field(default_factory=Counter)  # "train_pairs", "eval_chunks", "extra", "ungrounded" …
    chunk_languages: Counter = field(default_factory=Counter)  # language code → chunks written
    question_languages: Counter = field(default_factory=Counter)  # chunk language code → questions written
    doc_questions: Counter = field(default_factory=Counter)  # source → questions written
    doc_capped: Counter = field(default_factory=Counter)  # source → questions the per-document cap dropped
    # per query style: chunks answered, queries before the filters, drops by filter; rows written by (style, split)
    style_answered: Counter = field(default_factory=Counter)
    style_generated: Counter = field(default_factory=Counter)
    style_drops: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    style_written: Counter = field(default_factory=Counter)
    embedder: str | None = None
    vectors: object = None  # the embedder's ``vectors.VectorIndex`` of the chunks, when it ranked
    top_k: int = roundtrip.TOP_K


def build_manifest(config: GenerateConfig, plans: tuple[styles.StylePlan, ...], endpoint, inputs: Inputs,
                   tally: Tally) -> Manifest:
    """The manifest of this run (``data_files`` and ``timings`` still empty)."""
    template = styles.main_template(plans)
    return Manifest(
        synthqa_version=__version__,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        # the endpoint really asked (--base-url or OPENAI_BASE_URL), so --retry-failed asks it again
        options=replace(config.public_options(), base_url=public_url(endpoint.base_url)),
        model=endpoint.model,
        endpoint_host=endpoint.host,
        local=endpoint.local,
        prompt=PromptInfo(template.name, template.system, template.user, template.sha256),
        counts=_counts(inputs, tally),
        documents=documents(inputs, tally),
        skipped_files=tuple(SkippedFile(s.source, s.reason) for s in inputs.skipped_files),
        skipped_pages=tuple(SkippedPage(s.source, s.page, s.reason) for s in inputs.skipped_pages),
        skipped_chunks=dict(inputs.skipped_chunks),
        question_filters=dict(tally.drop_counts),
        failed_chunks=tuple(tally.failed + tally.never_asked),
        roundtrip=RoundTrip(bm25=True, embedder=tally.embedder, min_rank=config.min_roundtrip_rank, top_k=tally.top_k),
        split=SplitInfo(method=splits.METHOD, seed=config.seed, eval_fraction=config.eval_fraction),
        languages=language_counts(tally.chunk_languages, tally.question_languages),
        language_check=all(p.template.uses_language for p in plans),
        styles=style_counts(plans, tally) if config.query_styles is not None else (),
    )


def style_counts(plans: tuple[styles.StylePlan, ...], tally: Tally) -> tuple[StyleCount, ...]:
    """What each query style asked, kept and dropped, in the mix's order."""
    return tuple(StyleCount(
        style=p.style, per_chunk=p.keep, prompt=p.template.name, prompt_sha256=p.template.sha256,
        chunks_answered=tally.style_answered[p.style], generated=tally.style_generated[p.style],
        kept=tally.style_written[p.style, splits.TRAIN] + tally.style_written[p.style, splits.EVAL],
        train_pairs=tally.style_written[p.style, splits.TRAIN], eval_pairs=tally.style_written[p.style, splits.EVAL],
        dropped={reason: n for reason, n in sorted(tally.style_drops[p.style].items()) if n},
    ) for p in plans)


def documents(inputs: Inputs, tally: Tally) -> tuple[Document, ...]:
    """Each document that gave pages: how many, what cleaning changed, what OCR read, and its coverage."""
    listed = []
    for source, pages in sorted(inputs.pages_per_doc.items()):
        read = inputs.documents[source]
        listed.append(Document(source, pages, read.cleaning, len(read.ocr_pages), read.ocr_seconds,
                               chunks_asked=inputs.asked_per_doc[source], chunks_skipped=inputs.skipped_per_doc[source],
                               questions=tally.doc_questions[source], questions_capped=tally.doc_capped[source]))
    return tuple(listed)


def _counts(inputs: Inputs, tally: Tally) -> Counts:
    w = tally.written
    questions = w["train_pairs"] + w["eval_pairs"]
    return Counts(
        documents=len(inputs.pages_per_doc),
        pages=sum(inputs.pages_per_doc.values()),
        chunks=inputs.chunks,
        chunks_asked=inputs.asked,
        questions=questions,
        questions_generated=tally.generated,
        train_pairs=w["train_pairs"],
        eval_pairs=w["eval_pairs"],
        train_chunks=w["train_chunks"],
        eval_chunks=w["eval_chunks"],
        short_chunks=tally.short_chunks,
        questions_with_extra_relevant=w["extra"],
        ungrounded_answers=w["ungrounded"],
        avg_question_chars=round(w["question_chars"] / max(1, questions), 1),
        avg_chunk_chars=round(inputs.asked_chars / max(1, inputs.asked), 1),
        requests=tally.usage.requests,
        requests_this_run=0,
        prompt_tokens=tally.usage.prompt_tokens,
        completion_tokens=tally.usage.completion_tokens,
    )
