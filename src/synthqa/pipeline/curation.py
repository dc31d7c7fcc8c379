"""A person's decisions applied to the dataset: by every ``generate`` run, and by ``synthqa curate`` alone.

Both start from the rows the filters kept (``.synthqa/generated-queries.parquet``) and the decisions in
``OUT/curation.jsonl``, so applying is repeatable and a decision taken back restores its pair. Nothing moves
between splits: a rejected pair leaves, an edited question stays with its chunk, so the split stays leak-free.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from .. import curate as decisions_file
from .. import dataset, filters, language, roundtrip
from ..manifest import Curation, LanguageCount, Manifest, RefusedEdit
from ..splits import EVAL, TRAIN
from .inputs import Log

ROUNDTRIP_FILTER = "roundtrip_rank"


def curate(out: Path, log: Log = print) -> Manifest:
    """Apply ``OUT/curation.jsonl`` to the dataset in ``out`` and rewrite its files, card and manifest.

    Needs neither the inputs nor the endpoint: the rows come from ``.synthqa/``, the chunks from the corpus.
    """
    from ..hub import card_for

    out = Path(out)
    manifest = dataset.read_manifest(out)
    if manifest.curation is None and not decisions_file.curation_path(out).exists():
        return manifest  # nothing decided, nothing to undo
    manifest = apply_to_dataset(out, manifest, log, lambda shown: card_for(out, shown, manifest.repo_id))
    dataset.write_manifest(out, manifest)
    return manifest


def apply_to_dataset(out: Path, manifest: Manifest, log: Log, render_card: Callable[[Manifest], str]) -> Manifest:
    """The decisions in ``out`` applied to the written dataset ``manifest`` describes, from the rows the filters
    kept (``.synthqa/``): tables and card (``render_card``) rewritten; returns the manifest, not yet written.

    The rows are held in memory: a person reviews thousands of pairs, not millions."""
    generated = dataset.read_generated(out)
    corpus = dataset.read_rows(out, "corpus", manifest.data_files)
    asked = [c for c in corpus if not c["skip_reason"]]  # the chunks the run ranked questions among
    embedder = manifest.roundtrip.embedder
    vectors = dataset.read_corpus_vectors(out, [c["id"] for c in asked], embedder) if embedder else None
    queries, curation = apply_curation(out, generated, asked, manifest.roundtrip.min_rank, embedder, log, vectors)
    counts = replace(manifest.counts, **row_counts(queries, {c["id"]: c["text"] for c in asked}))
    language_of = {c["id"]: c["language"] or language.UNDETERMINED for c in asked}
    languages = language_counts(Counter(language_of.values()), Counter(language_of[q["chunk_id"]] for q in queries))
    kept = Counter(q["source"] for q in queries)
    documents = tuple(replace(d, questions=kept[d.source]) for d in manifest.documents)
    by_style = Counter((q["style"], q["split"]) for q in queries) if manifest.styles else Counter()
    styles = tuple(replace(s, kept=by_style[s.style, TRAIN] + by_style[s.style, EVAL],
                           train_pairs=by_style[s.style, TRAIN], eval_pairs=by_style[s.style, EVAL])
                   for s in manifest.styles)
    manifest = replace(manifest, counts=counts, curation=curation, languages=languages, documents=documents,
                       styles=styles)
    files = dataset.write_dataset(out, corpus=corpus, queries=queries,
                                  render_card=lambda files: render_card(replace(manifest, data_files=files)))
    return replace(manifest, data_files=files)


def language_counts(chunks: Counter, questions: Counter) -> dict[str, LanguageCount]:
    """Chunks asked and questions kept per chunk language (counters by code), the most chunks first."""
    ordered = sorted(chunks.items(), key=lambda kv: (-kv[1], kv[0]))
    return {code: LanguageCount(n, questions[code]) for code, n in ordered}


def apply_curation(out: Path, queries: list[dict], corpus: Sequence[dict], min_rank: int | None,
                   embedder: str | None, log: Log, corpus_vectors=None) -> tuple[list[dict], Curation | None]:
    """``queries`` after the decisions in ``out`` (edited questions ranked again, with the run's embedder and
    its ``corpus_vectors`` when known), and what was done; ``(queries, None)`` when nobody decided anything."""
    found = decisions_file.read_decisions(out)
    if found.unreadable:
        lines = ", ".join(map(str, found.unreadable[:10]))
        log(f"{decisions_file.curation_path(out)}: line(s) {lines} hold no decision and were skipped")
    if not found.lines:
        return queries, None
    applied = decisions_file.apply_decisions(queries, found.latest, {c["id"]: c["text"] for c in corpus})
    rows, refused = rerank_edits(applied.rows, set(applied.edited), queries, corpus, min_rank, embedder is not None,
                                 corpus_vectors)
    refused = {**applied.refused, **refused}
    curation = Curation(
        decisions=found.lines, pairs_before=len(queries), accepted=len(applied.accepted),
        rejected=len(applied.rejected), edited=len(applied.edited) - len(set(refused) & set(applied.edited)),
        missing=applied.missing, outdated=applied.outdated,
        refused_edits=tuple(RefusedEdit(qid, reason) for qid, reason in sorted(refused.items())),
    )
    for line in warnings(curation):
        log(line)
    return rows, curation


def rerank_edits(rows: list[dict], edited: set[str], generated: Sequence[dict], corpus: Sequence[dict],
                 min_rank: int | None, use_embeddings: bool, corpus_vectors=None) -> tuple[list[dict], dict[str, str]]:
    """Round-trip ranks and extra relevant chunks for the edited questions; an edit whose chunk falls out of
    ``--min-roundtrip-rank`` is refused (the generated question comes back). Returns rows and refusals."""
    todo = [row for row in rows if row["id"] in edited]
    if not todo:
        return rows, {}
    index_of = {c["id"]: i for i, c in enumerate(corpus)}
    scores = roundtrip.score_roundtrip([r["text"] for r in todo], [index_of[r["chunk_id"]] for r in todo],
                                       [c["text"] for c in corpus], use_embeddings=use_embeddings,
                                       corpus_vectors=corpus_vectors)
    original = {row["id"]: row for row in generated}
    new, refused = {}, {}
    for k, row in enumerate(todo):
        ranked = dict(row, **ranks(scores, k, corpus, row["split"]))
        if below_min_rank(ranked, min_rank):
            new[row["id"]], refused[row["id"]] = original[row["id"]], ROUNDTRIP_FILTER
        else:
            new[row["id"]] = ranked
    return [new.get(row["id"], row) for row in rows], refused


def ranks(scores: roundtrip.RoundTrip, k: int, corpus: Sequence[dict], split: str) -> dict:
    """The rank columns of question ``k``; extra relevant chunks only from its own split (no leak)."""
    return {
        "bm25_rank": scores.bm25_rank[k],
        "embed_rank": scores.embed_rank[k] if scores.embed_rank is not None else None,
        "extra_relevant_ids": [corpus[j]["id"] for j in scores.extra_relevant[k] if corpus[j]["split"] == split],
    }


def below_min_rank(row: dict, min_rank: int | None) -> bool:
    """True when ``--min-roundtrip-rank`` drops the row: its chunk is in neither ranker's top ``min_rank``."""
    if min_rank is None:
        return False
    return min(r for r in (row["bm25_rank"], row["embed_rank"]) if r is not None) > min_rank


def row_counts(queries: Sequence[dict], chunk_text: dict[str, str]) -> dict:
    """The manifest counts that follow from the query rows (recounted after a person's decisions)."""
    per_split = Counter(q["split"] for q in queries)
    return {
        "questions": len(queries),
        "train_pairs": per_split["train"],
        "eval_pairs": per_split["eval"],
        "questions_with_extra_relevant": sum(1 for q in queries if q["extra_relevant_ids"]),
        "ungrounded_answers": sum(1 for q in queries
                                  if q["answer"] and not filters.answer_grounded(q["answer"], chunk_text[q["chunk_id"]])),
        "avg_question_chars": round(sum(len(q["text"]) for q in queries) / max(1, len(queries)), 1),
    }


def warnings(curation: Curation) -> list[str]:
    """One line per kind of decision that could not be applied, naming the pairs."""
    lines = []
    if curation.missing:
        lines.append(f"{len(curation.missing)} decision(s) name pairs this dataset no longer has (kept in "
                     f"{decisions_file.CURATION_FILE}, applied if they come back): {_ids(curation.missing)}")
    if curation.outdated:
        lines.append(f"{len(curation.outdated)} decision(s) were made on a question that has been regenerated "
                     f"since, so they were not applied: review these pairs again: {_ids(curation.outdated)}")
    if curation.refused_edits:
        shown = ", ".join(f"{e.id} ({e.reason})" for e in curation.refused_edits[:5])
        lines.append(f"{len(curation.refused_edits)} edited question(s) failed the question filters and kept "
                     f"the generated question: {shown}")
    return lines


def _ids(ids: Sequence[str], shown: int = 5) -> str:
    return ", ".join(ids[:shown]) + (f" … and {len(ids) - shown} more" if len(ids) > shown else "")
