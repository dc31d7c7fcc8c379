"""Coverage per document: how much of the dataset each document gives, and the cap that keeps one long
document from swamping a short one.

``--max-questions-per-document N`` keeps at most N of a document's questions (after the question filters and
near duplicates, before round-trip ranking and the train/eval split). It keeps them round by round: every
chunk's first query of each style before any chunk's second, and within a round in the order of a seeded hash of the
question id. So a capped document keeps as many of its chunks as it can, the same seed keeps the same
questions, and since the split is made per chunk afterwards, the cap cannot move a question across it.

``--min-questions-per-document N`` drops nothing: a document keeping fewer than N questions is flagged in the
summary, ``inspect``, the report and the card, with what to do about it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from .manifest import Document, Manifest

CAP_FILTER = "max_per_document"  # the cap's name among the manifest's question_filters
MIN_HINT = ("raise --questions-per-chunk and cap the long documents with --max-questions-per-document, or "
            "check why their chunks were skipped or their questions dropped")


def question_key(seed: int, query_id: str) -> int:
    """The seeded order of a question within its round (a 63-bit integer)."""
    digest = hashlib.sha256(f"{seed}\0{query_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def cap_per_document(documents: Sequence[int], nth: Sequence[int], keys: Sequence[int], limit: int | None) -> np.ndarray:
    """True for each question the cap drops.

    ``documents[i]`` is question i's document number, ``nth[i]`` its place among its chunk's kept queries
    of its style (0 for the first), ``keys[i]`` its ``question_key``. Each document keeps its ``limit`` questions that come
    first by (nth, key)."""
    documents = np.asarray(documents, dtype=np.int64)
    dropped = np.zeros(len(documents), dtype=bool)
    if limit is None or not len(documents):
        return dropped
    order = np.lexsort((np.asarray(keys, dtype=np.int64), np.asarray(nth, dtype=np.int64), documents))
    in_order = documents[order]
    place = np.arange(len(order)) - np.searchsorted(in_order, in_order, side="left")
    dropped[order] = place >= limit
    return dropped


def share(document: Document, total: int) -> float:
    """The document's share of the dataset's questions, in percent."""
    return 100.0 * document.questions / total if total else 0.0


def under_covered(manifest: Manifest) -> list[Document]:
    """The documents keeping fewer questions than ``--min-questions-per-document`` (none when it is unset)."""
    minimum = manifest.options.min_questions_per_document
    if minimum is None:
        return []
    return [d for d in manifest.documents if d.questions < minimum]


def table_rows(manifest: Manifest) -> list[tuple[str, ...]]:
    """One row of text per document: source, pages, chunks asked, chunks skipped, questions kept (and capped),
    share of the dataset; the same figures for every renderer."""
    total = sum(d.questions for d in manifest.documents)
    low = {d.source for d in under_covered(manifest)}
    rows = []
    for d in manifest.documents:
        kept = f"{d.questions}" + (f" ({d.questions_capped} capped)" if d.questions_capped else "")
        flag = f" (below {manifest.options.min_questions_per_document})" if d.source in low else ""
        rows.append((d.source, str(d.pages), str(d.chunks_asked), str(d.chunks_skipped), kept + flag,
                     f"{share(d, total):.1f} %"))
    return rows


TABLE_HEADER = ("document", "pages", "chunks asked", "chunks skipped", "questions kept", "share")


def describe(manifest: Manifest) -> str:
    """One line: the cap and the floor, what they did."""
    opts = manifest.options
    parts = []
    if opts.max_questions_per_document is not None:
        capped = sum(d.questions_capped for d in manifest.documents)
        hit = sum(1 for d in manifest.documents if d.questions_capped)
        parts.append(f"at most {opts.max_questions_per_document} questions per document ({capped} dropped from "
                     f"{hit} document(s), chosen by seed {opts.seed})")
    if opts.min_questions_per_document is not None:
        low = under_covered(manifest)
        parts.append(f"at least {opts.min_questions_per_document} wanted: " + (
            f"{len(low)} document(s) below ({', '.join(f'{d.source} {d.questions}' for d in low[:5])}"
            f"{', …' if len(low) > 5 else ''})" if low else "every document has them"))
    return "; ".join(parts) or "no per-document cap or floor"


def warning(manifest: Manifest) -> str | None:
    """The line a user should act on when documents are under-covered, else None."""
    low = under_covered(manifest)
    if not low:
        return None
    named = ", ".join(f"{d.source} ({d.questions})" for d in low[:5]) + (", …" if len(low) > 5 else "")
    return (f"{len(low)} document(s) keep fewer than {manifest.options.min_questions_per_document} questions: "
            f"{named}; {MIN_HINT}")
