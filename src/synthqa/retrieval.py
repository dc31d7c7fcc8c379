"""What a question is searched among when a dataset measures retrieval (``evaluate``, ``finetune``).

The corpus config holds every chunk of the inputs, the skipped ones too (reference lists, tables of
contents … with their ``skip_reason``), because a real retriever searches everything. So:

* ``all`` (the default): every chunk of both splits, asked or skipped: what a deployed search sees;
* ``split``: the split's own chunks that were asked about, as synthqa 0.1.0 and the reference card measured
  (figures comparable with earlier runs; an easier test).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from .config import CORPUS_CHOICES, DEFAULT_CORPUS
from .dataset import SPLIT_NAMES, load_tables, read_manifest
from .errors import DatasetError

__all__ = ["CORPUS_CHOICES", "CORPUS_MEANING", "DEFAULT_CORPUS", "ir_evaluator_inputs", "searched_corpus"]
CORPUS_MEANING = {
    "all": "every chunk of the dataset, those never asked about included",
    "split": "the split's own chunks that were asked about",
}


def searched_corpus(tables: dict, split: str, corpus: str = DEFAULT_CORPUS) -> dict[str, str]:
    """Chunk id → text of the chunks ``split``'s questions are searched among (``tables`` from ``load_tables``)."""
    if corpus not in CORPUS_CHOICES:
        raise DatasetError(f"corpus {corpus!r} is not known: use {' or '.join(map(repr, CORPUS_CHOICES))}")
    found: dict[str, str] = {}
    for name in SPLIT_NAMES if corpus == "all" else [split]:
        df = tables["corpus"][name]
        if corpus == "split":
            df = df[df["skip_reason"] == ""]
        found.update(zip(df["id"], df["text"]))
    return found


def query_styles(out: Path, split: str = "eval") -> dict[str, str]:
    """Query id → its style (generate --query-styles); empty for a dataset without a ``style`` column."""
    rel = read_manifest(out).data_files.get("queries", {}).get(split)
    if rel is None:
        return {}
    table = pq.read_table(Path(out) / rel)  # one small file, not the whole dataset again
    if "style" not in table.column_names:
        return {}
    return dict(zip(table["id"].to_pylist(), table["style"].to_pylist(), strict=True))


def ir_evaluator_inputs(
    out: Path, split: str = "eval", corpus: str = DEFAULT_CORPUS
) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """``(queries, corpus, relevant_docs)`` for sentence-transformers' InformationRetrievalEvaluator.

    ``corpus`` is ``"all"`` or ``"split"`` (see the module). Extra relevant chunks recorded for a question
    count as relevant when they are in the searched corpus.
    """
    if split not in SPLIT_NAMES:
        raise DatasetError(f"split {split!r} does not exist: use one of {', '.join(SPLIT_NAMES)}")
    tables = load_tables(out)
    corpus_dict = searched_corpus(tables, split, corpus)
    queries_df = tables["queries"][split]
    queries = dict(zip(queries_df["id"], queries_df["text"]))
    relevant: dict[str, set[str]] = {}
    for qid, chunk_id, extras in zip(queries_df["id"], queries_df["chunk_id"], queries_df["extra_relevant_ids"]):
        ids = {chunk_id, *(list(extras) if extras is not None else [])}
        relevant[qid] = {cid for cid in ids if cid in corpus_dict}
    return queries, corpus_dict, relevant
