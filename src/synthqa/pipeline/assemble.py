"""Answers → filtered, scored, split rows → the dataset folder and its manifest.

Each step streams over the run's store (``store.RunStore``) in input order and leaves its result on disk or
in a few bytes per chunk or question, so memory holds one block of rows whatever the size of the run:

    filter (question filters, exact duplicates) → near duplicates → round trip → train/eval split → write
"""

from __future__ import annotations

import contextlib
import itertools
from array import array
from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import card, coverage, dataset, dedupe, filters, language, memory, pool, roundtrip, spares, splits, styles
from .. import curate as decisions_file
from .._compat import batched
from ..config import GenerateConfig
from ..manifest import FailedChunk, Manifest
from ..store import RunStore
from .curation import ROUNDTRIP_FILTER, apply_to_dataset, below_min_rank
from .inputs import Inputs
from .progress import Log, Progress, TotalFirstBar
from .tally import Tally, build_manifest

# One row per question kept after deduplication, in order: its ranks and up to MAX_EXTRA extra chunk indices.
RANK_ROW = np.dtype([("bm25", "<i4"), ("embed", "<i4"), ("extra", "<i4", (roundtrip.MAX_EXTRA,))])
RANKS_FILE = "ranks.bin"
FILTER_BLOCK = 1024  # answers judged at once (their queries' language checked together), a task of the pool


def assemble_and_write(config: GenerateConfig, inputs: Inputs, store: RunStore, endpoint,
                       progress: Progress, workdir: Path, plans: tuple[styles.StylePlan, ...],
                       log: Log = print) -> Manifest:
    """Turn answers into filtered, scored, split rows and write the dataset folder; returns the manifest.

    ``plans``: the run's query styles (``styles.load_plans``). Filters, near
    duplicates and counts go by style; the split stays by chunk, so a chunk's queries share its split.

    The rows the filters kept are saved (``.synthqa/generated-queries.parquet``, with the embedder's corpus
    vectors) before a person's decisions (``OUT/curation.jsonl``) are applied, so a rerun keeps the decisions
    and ``synthqa curate`` can apply new ones without asking anything.
    """
    tally = Tally(top_k=max(roundtrip.TOP_K, config.min_roundtrip_rank or 0))
    with _stage(progress, "question filters", "filter") as stage:
        filter_questions(store, tally, checked_styles={p.style for p in plans if p.checks_language},
                         workers=stage_workers(config, -(-store.chunks * len(plans) // FILTER_BLOCK)),
                         keep={p.style: p.keep for p in plans} if config.spare_questions else None)
        stage.detail = f"{tally.generated:,} questions, {store.questions:,} pass the filters and exact duplicates" + (
            f" ({tally.drop_counts[spares.SPARE_FILTER]:,} spares left out)" if config.spare_questions else "")
    with _stage(progress, "near duplicates", "near_duplicates") as stage:
        near = near_duplicates_by_style(store, [p.style for p in plans], workdir, tally, progress,
                                        config.workers or pool.default_workers())
        tally.drop_counts["near_duplicate"] = int(near.sum())
        stage.detail = f"{int(near.sum()):,} of {len(near):,} questions dropped"
    dropped = near
    if config.max_questions_per_document is not None:
        with _stage(progress, "per-document cap", "filter") as stage:
            dropped = near | cap_documents(config, store, near, tally)
            stage.detail = (f"{int(dropped.sum() - near.sum()):,} questions over "
                            f"{config.max_questions_per_document} per document dropped")
    with _stage(progress, "round trip", "roundtrip") as stage:
        score_questions(config, store, dropped, workdir, progress, tally)
        stage.detail = f"{len(near) - int(dropped.sum()):,} questions ranked by BM25" + (
            f" and {tally.embedder}" if tally.embedder else "")
    with _stage(progress, "train/eval split", "split") as stage:
        is_eval, chunk_ids = assign_splits(config, store)
        stage.detail = f"{int(is_eval.sum()):,} of {len(is_eval):,} chunks to eval"
    with _stage(progress, "writing", "write") as stage:
        files = write_tables(config, store, dropped, workdir / RANKS_FILE, is_eval, chunk_ids, inputs, tally)
        if tally.vectors is not None:
            dataset.write_corpus_vectors(config.out, [f"{int(i):016x}" for i in chunk_ids], tally.vectors.array(),
                                         tally.embedder)
        manifest = replace(build_manifest(config, plans, endpoint, inputs, tally), data_files=files)
        dataset.write_card(config.out, card.render_card(manifest), files)
        if decisions_file.curation_path(config.out).exists():
            manifest = apply_to_dataset(config.out, manifest, log, card.render_card)
        stage.detail = f"{manifest.pairs:,} pairs, {len(is_eval):,} chunks in {config.out / 'data'}"
    return manifest


@contextlib.contextmanager
def _stage(progress: Progress, name: str, key: str):
    """``progress.stage``, then the memory the stage freed handed back (``memory.release``): each stage runs
    on what the run holds, not on the last one's high-water mark."""
    with progress.stage(name, key) as stage:
        yield stage
    memory.release()


def filter_questions(store: RunStore, tally: Tally, checked_styles: frozenset[str] | set[str] = frozenset(),
                     workers: int = 1, keep: dict[str, int] | None = None) -> None:
    """Every answer's queries through their style's filters and exact deduplication (within the style), into
    the store.

    A query of a style in ``checked_styles`` (its prompt names ``$language``) not in its chunk's language is
    dropped as ``wrong_language``. A chunk failed in any style is listed once among the failed chunks.
    ``workers``: processes judging blocks of answers (``filters.drop_reasons``); the rest stays in order here.
    ``keep`` (--spare-questions): queries kept per chunk by style; of an answer's queries that pass the filters
    and are no exact duplicate, ``spares.OpenerChooser`` keeps that many and the rest are dropped as spares
    before they are stored, so a spare left out never shadows a later chunk's copy."""
    chooser = spares.OpenerChooser() if keep is not None else None
    store.begin()
    listed = ""  # the chunk id last listed as failed or never asked
    short = -1  # the chunk last counted short: a chunk short in two styles is one short chunk
    for seq, chunk, style, answer, reasons in _judged(store.answered_chunks(), checked_styles, workers):
        if answer is None or not answer.ok:
            if chunk.id != listed:
                listed = chunk.id
                if answer is None:  # after an interruption or a fatal error
                    tally.never_asked.append(FailedChunk(chunk.id, chunk.source, chunk.page, "not asked yet", True))
                else:
                    tally.failed.append(FailedChunk(chunk.id, chunk.source, chunk.page, answer.error or "",
                                                    answer.transient))
            if answer is not None:
                tally.usage += answer.usage
            continue
        tally.usage += answer.usage
        if answer.short and seq != short:
            short = seq
            tally.short_chunks += 1
        tally.style_answered[style] += 1
        if chooser is not None:
            reasons = _spare_reasons(store, chooser, style, answer.questions, reasons, keep[style])
        for n, (question, reason) in enumerate(zip(answer.questions, reasons)):
            tally.generated += 1
            tally.style_generated[style] += 1
            reference = answer.answers[n] if answer.answers else None
            # Dedupe only among survivors, so a dropped question never shadows a good later copy.
            if reason is None and not store.add_question(seq, n, question, dedupe.normalize_question(question),
                                                         reference, style):
                reason = "duplicate"
            if reason:
                tally.drop_counts[reason] += 1
                tally.style_drops[style][reason] += 1
    store.commit()


def _spare_reasons(store: RunStore, chooser: spares.OpenerChooser, style: str, questions, reasons, keep: int) -> list:
    """``reasons`` with "duplicate" for an exact duplicate (kept already, or earlier in this answer) and
    ``spares.SPARE_FILTER`` for each query the chooser leaves out of those still standing."""
    reasons, seen = list(reasons), set()
    for i, question in enumerate(questions):
        norm = dedupe.normalize_question(question)
        if reasons[i] is None and (norm in seen or store.has_question(norm, style)):
            reasons[i] = "duplicate"
        elif reasons[i] is None:
            seen.add(norm)
    standing = [i for i, reason in enumerate(reasons) if reason is None]
    for i, kept in zip(standing, chooser.choose(style, [questions[i] for i in standing], keep)):
        if not kept:
            reasons[i] = spares.SPARE_FILTER
    return reasons


def _judged(answered, checked_styles: frozenset[str] | set[str], workers: int):
    """``answered`` (seq, chunk, style, answer) rows with each query's drop reason (``filters.drop_reasons``),
    judged ``FILTER_BLOCK`` answers at a time, in ``workers`` processes when more than one."""
    blocks, again = itertools.tee(batched(answered, FILTER_BLOCK))  # the pool reads a few blocks ahead
    tasks = ([filters.ChunkQueries(chunk.text, chunk.language, style,
                                   tuple(answer.questions) if answer is not None and answer.ok else (),
                                   style in checked_styles) for _, chunk, style, answer in block]
             for block in blocks)
    judged = pool.ordered_map(filters.drop_reasons, tasks, workers, pool.worker_died("filtering questions"),
                              preload=[filters.__name__])
    with contextlib.closing(judged):  # stops the workers at once on any way out
        for reasons, block in zip(judged, again):  # judged first: it ends (its workers stop) before zip does
            for (seq, chunk, style, answer), why in zip(block, reasons):
                yield seq, chunk, style, answer, why


def near_duplicates_by_style(store: RunStore, style_names: list[str], workdir: Path, tally: Tally,
                             progress: Progress, workers: int = 1) -> np.ndarray:
    """True for each kept query that nearly repeats an earlier one of its own style: a keyword query and a
    question about the same fact are two ways to find the chunk, not one query twice. ``workers``: threads
    comparing large groups of candidates."""
    if len(style_names) == 1:
        near = _near_duplicates(store.question_norms, "", workdir, progress, workers)
        tally.style_drops[style_names[0]]["near_duplicate"] += int(near.sum())
        return near
    style_of = np.array(list(store.question_styles()), dtype=object)
    near = np.zeros(len(style_of), dtype=bool)
    for style in style_names:
        at = np.flatnonzero(style_of == style)
        found = _near_duplicates(lambda style=style: store.question_norms(style), f" ({style})", workdir, progress,
                                 workers)
        near[at] = found
        tally.style_drops[style]["near_duplicate"] += int(found.sum())
    return near


def _near_duplicates(texts, label: str, workdir: Path, progress: Progress, workers: int) -> np.ndarray:
    with TotalFirstBar(progress, f"near duplicates: comparing questions{label}", "pair") as bar:
        return dedupe.near_duplicates(texts, workdir, workers=workers, progress=bar)


def cap_documents(config: GenerateConfig, store: RunStore, near: np.ndarray, tally: Tally) -> np.ndarray:
    """True for each question --max-questions-per-document drops (see ``coverage``); counted per document."""
    sources: dict[str, int] = {}
    doc_of = np.zeros(store.chunks, dtype=np.int32)
    chunk_id: list[str] = [""] * store.chunks
    for seq, chunk in store.chunk_rows():
        doc_of[seq] = sources.setdefault(chunk.source, len(sources))
        chunk_id[seq] = chunk.id
    positions, docs, nth, keys = array("q"), array("q"), array("q"), array("q")
    style_of: list[str] = []
    last_seq, place = (-1, ""), 0
    for pos, seq, n, _, _, style in store.question_rows():
        if near[pos]:
            continue
        # each style's first query of a chunk is in the first round, so a cap never favours the first style
        place = place + 1 if (seq, style) == last_seq else 0
        last_seq = (seq, style)
        positions.append(pos)
        docs.append(int(doc_of[seq]))
        nth.append(place)
        style_of.append(style)
        keys.append(coverage.question_key(config.seed, styles.query_id(chunk_id[seq], style, n)))
    capped = coverage.cap_per_document(docs, nth, keys, config.max_questions_per_document)
    names = list(sources)
    for doc in np.asarray(docs, dtype=np.int64)[capped]:
        tally.doc_capped[names[doc]] += 1
    for i in np.flatnonzero(capped).tolist():
        tally.style_drops[style_of[i]][coverage.CAP_FILTER] += 1
    tally.drop_counts[coverage.CAP_FILTER] = int(capped.sum())
    dropped = np.zeros(len(near), dtype=bool)
    dropped[np.asarray(positions, dtype=np.int64)[capped]] = True
    return dropped


def score_questions(config: GenerateConfig, store: RunStore, near: np.ndarray, workdir: Path, progress: Progress,
                    tally: Tally) -> None:
    """Round-trip ranks and extra relevant chunks of the kept questions, into ``workdir / RANKS_FILE``."""
    kept = len(near) - int(near.sum())
    steps = {"index": ("round trip: indexing chunks", store.chunks, "chunk"),
             "embed": ("round trip: embedding chunks (MiniLM)", store.chunks, "chunk"),
             "score": ("round trip: ranking questions", kept, "question")}
    bars: dict = {}
    try:
        def on_progress(step: str, n: int) -> None:
            if step not in bars:
                for bar in bars.values():
                    bar.close()
                bars[step] = progress.bar(*steps[step])
            bars[step].update(n)

        scorer = roundtrip.Scorer(store.chunk_texts, store.chunk_text, workdir, config.embed_roundtrip, tally.top_k,
                                  on_progress, workers=stage_workers(config, -(-kept // roundtrip.QUESTION_BLOCK)))
        tally.embedder, tally.vectors = scorer.embedder, scorer.vectors
        questions = ((text, seq) for pos, seq, _, text, _, _ in store.question_rows() if not near[pos])
        # closed on any way out (Ctrl-C included), which stops the ranking processes at once
        with open(workdir / RANKS_FILE, "wb") as out, contextlib.closing(scorer.score(questions)) as scored:
            rows = np.zeros(1, dtype=RANK_ROW)
            for bm25_rank, embed_rank, extras in scored:
                rows["bm25"], rows["embed"] = bm25_rank, -1 if embed_rank is None else embed_rank
                rows["extra"] = (extras + [-1] * roundtrip.MAX_EXTRA)[: roundtrip.MAX_EXTRA]
                rows.tofile(out)
    finally:
        for bar in bars.values():
            bar.close()


def stage_workers(config: GenerateConfig, tasks: int) -> int:
    """Processes for a stage after asking with ``tasks`` blocks of work: --workers (default: the cores), at most
    one per block, and this process alone for a single block, where starting workers would only cost."""
    return 1 if tasks < 2 else min(config.workers or pool.default_workers(), tasks)


def assign_splits(config: GenerateConfig, store: RunStore) -> tuple[np.ndarray, np.ndarray]:
    """(True per chunk going to eval, chunk ids as integers), from one pass over the chunks."""
    # 8 bytes per chunk for each key and id, 4 for the unit: filled in place, never grown and copied; the run
    # keys' rows past the last run are never written, so they take no memory
    n = store.chunks
    units, text_keys, unit_keys, ids = (np.zeros(n, dtype=np.int32), np.zeros(n, dtype=np.uint64),
                                        np.zeros(n, dtype=np.uint64), np.zeros(n, dtype=np.uint64))
    n_units, prev = 0, None
    for seq, chunk in store.chunk_rows():
        if splits.starts_run(prev, chunk):  # a run's chunks come one after another
            unit_keys[n_units] = splits.unit_key(config.seed, chunk.source, chunk.page, chunk.index)
            n_units += 1
        units[seq] = n_units - 1
        text_keys[seq] = splits.text_key(chunk.text)
        ids[seq] = int(chunk.id, 16)
        prev = chunk
    is_eval = splits.assign_units(units, text_keys, unit_keys[:n_units], config.eval_fraction)
    return is_eval, ids


def write_tables(config: GenerateConfig, store: RunStore, dropped: np.ndarray, ranks_path: Path,
                 is_eval: np.ndarray, chunk_ids: np.ndarray, inputs: Inputs, tally: Tally) -> dataset.DataFiles:
    """The parquet files, streamed: each chunk, then its kept questions (``dropped`` ones left out, and those
    --min-roundtrip-rank drops); extra relevant chunks are kept when they sit in the question's split. The
    chunks the chunk filters skipped go to the corpus in their place, with their ``skip_reason``. Every query
    row also goes to ``.synthqa/generated-queries.parquet``, the rows a person's decisions start from."""
    ranks = _read_rows(ranks_path)
    questions = store.question_rows()
    pending = next(questions, None)
    skipped = store.skipped_rows()
    waiting = next(skipped, None)
    written = tally.written
    ocr_pages = {(source, page) for source, read in inputs.documents.items() for page in read.ocr_pages}

    def corpus_row(chunk, reason: str) -> dict:
        return {"id": chunk.id, "text": chunk.text, "source": chunk.source, "page": chunk.page,
                "chunk_index": chunk.index, "ocr": (chunk.source, chunk.page) in ocr_pages,
                "language": chunk.language, "skip_reason": reason}

    styled = config.query_styles is not None
    with dataset.TableWriter(config.out, styled) as writer, dataset.GeneratedWriter(config.out) as generated:
        prev = None  # (source, split) of the asked chunk before
        for seq, chunk in store.chunk_rows():
            split = splits.EVAL if is_eval[seq] else splits.TRAIN
            while waiting is not None and waiting.asked_before <= seq:
                writer.add_chunk(skipped_split(waiting.chunk.source, prev, (chunk.source, split)),
                                 corpus_row(waiting.chunk, waiting.reason))
                waiting = next(skipped, None)
            prev = (chunk.source, split)
            code = chunk.language or language.UNDETERMINED
            writer.add_chunk(split, corpus_row(chunk, ""))
            written[f"{split}_chunks"] += 1
            tally.chunk_languages[code] += 1
            while pending is not None and pending[1] == seq:
                pos, _, n, question, answer, style = pending
                pending = next(questions, None)
                if dropped[pos]:
                    continue
                ranked = next(ranks)
                extras = [f"{int(chunk_ids[j]):016x}" for j in ranked["extra"].tolist() if j >= 0
                          and is_eval[j] == is_eval[seq]]
                row = {"id": styles.query_id(chunk.id, style, n), "text": question, "chunk_id": chunk.id,
                       "source": chunk.source, "page": chunk.page, "bm25_rank": int(ranked["bm25"]),
                       "embed_rank": int(ranked["embed"]) if ranked["embed"] >= 0 else None,
                       "extra_relevant_ids": extras, "answer": answer}
                if styled:
                    row["style"] = style
                if below_min_rank(row, config.min_roundtrip_rank):
                    tally.drop_counts[ROUNDTRIP_FILTER] += 1
                    tally.style_drops[style][ROUNDTRIP_FILTER] += 1
                    continue
                writer.add_query(split, row, chunk.text)
                generated.add(dict(row, split=split))
                written[f"{split}_pairs"] += 1
                tally.style_written[style, split] += 1
                written["extra"] += bool(extras)
                written["question_chars"] += len(question)
                written["ungrounded"] += bool(answer) and not filters.answer_grounded(answer, chunk.text)
                tally.question_languages[code] += 1
                tally.doc_questions[chunk.source] += 1
        for rest in [waiting, *skipped] if waiting is not None else []:  # after the last asked chunk
            writer.add_chunk(skipped_split(rest.chunk.source, prev, None), corpus_row(rest.chunk, rest.reason))
    return writer.files


def skipped_split(source: str, before: tuple[str, str] | None, after: tuple[str, str] | None) -> str:
    """The split of a skipped chunk: that of the asked chunk before it, or after it when only that one is of
    the same document. No question is about a skipped chunk, so either side is leak-free; staying with its
    document keeps each split's corpus whole documents' worth of text."""
    if after is not None and (before is None or (before[0] != source and after[0] == source)):
        return after[1]
    return before[1] if before is not None else splits.TRAIN


def _read_rows(path: Path, block: int = 65536):
    """The rows of a ranks file, read ``block`` at a time."""
    with open(path, "rb") as f:
        while len(rows := np.fromfile(f, dtype=RANK_ROW, count=block)):
            yield from rows
