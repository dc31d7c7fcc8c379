"""Answers → filtered, scored, split rows → the dataset folder and its manifest."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from .. import __version__, card, dataset, filters, roundtrip, splits
from ..config import GenerateConfig
from ..records import Answer, Usage
from .inputs import Inputs


def assemble_and_write(config: GenerateConfig, template, inputs: Inputs, by_chunk: dict[str, Answer], endpoint) -> dict:
    """Turn answers into filtered, scored, split rows and write the dataset folder; returns the manifest."""
    asked = inputs.asked
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
        "skipped_chunks": dict(Counter(s.reason for s in inputs.skipped_chunks)),
        "question_filters": dict(drop_counts),
        "failed_chunks": failed,
        "roundtrip": {"bm25": True, "embedder": scores.embedder, "min_rank": config.min_roundtrip_rank},
        "split": {"method": splits.METHOD, "seed": config.seed, "eval_fraction": config.eval_fraction},
    }
    return dataset.write_dataset(config.out, corpus=corpus, queries=queries, manifest=manifest, render_card=card.render_card)
