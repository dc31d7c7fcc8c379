"""Retrieval quality of an embedding model (and of BM25) on a synthqa dataset's eval split.

Every row of the report comes from the same two functions — ``rank_by_scores`` and ``ranking_metrics`` —
so BM25, the full embedding and each Matryoshka-truncated width are measured identically, and the
embedding is computed once: truncated widths are slices of it, not fresh encodes.
``ranking_metrics`` mirrors sentence-transformers' ``InformationRetrievalEvaluator`` (ties broken by
ascending corpus id, queries without a relevant chunk skipped); the tests hold the two side by side.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .dataset import resolve_dataset
from .errors import ConfigError, DatasetError
from .models import BUNDLED_ALIASES, DEFAULT_MODEL_NAME, load_model
from .retrieval import CORPUS_MEANING, DEFAULT_CORPUS, ir_evaluator_inputs, query_styles

ACCURACY_AT = (1, 3, 5, 10)
PRECISION_RECALL_AT = (1, 3, 5, 10)
NDCG_AT = 10
MRR_AT = 10
MAP_AT = 100
METRICS: tuple[str, ...] = (
    *(f"accuracy@{k}" for k in ACCURACY_AT),
    *(f"precision@{k}" for k in PRECISION_RECALL_AT),
    *(f"recall@{k}" for k in PRECISION_RECALL_AT),
    f"ndcg@{NDCG_AT}",
    f"mrr@{MRR_AT}",
    f"map@{MAP_AT}",
)
DEPTH = max(*ACCURACY_AT, *PRECISION_RECALL_AT, NDCG_AT, MRR_AT, MAP_AT)
BM25_ROW = "bm25"


@dataclass(frozen=True)
class EvalReport:
    """Metrics per row (model, model@dim, bm25), in the order the table shows them."""

    dataset: str
    split: str
    model: str
    queries: int
    corpus: int
    rows: dict[str, dict[str, float]] = field(default_factory=dict)
    searched: str = DEFAULT_CORPUS  # "all": every chunk of the dataset; "split": the split's asked chunks
    # With more than one query style (generate --query-styles): style → the rows above over its queries alone,
    # and style → its number of queries; empty otherwise.
    styles: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    style_queries: dict[str, int] = field(default_factory=dict)

    @property
    def scope(self) -> str:
        """What the questions were searched among, in words."""
        return f"{self.corpus} chunks: {CORPUS_MEANING[self.searched]} (--corpus {self.searched})"

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "metrics": list(METRICS)}, indent=2) + "\n"


# ---------------------------------------------------------------------------------------------- metrics
def rank_by_scores(scores: np.ndarray, corpus_ids: Sequence[str], depth: int = DEPTH) -> list[list[str]]:
    """Top-``depth`` corpus ids per query row, best first; equal scores go by ascending id (as the
    evaluator does) so a ranking never depends on corpus order."""
    scores = np.asarray(scores, dtype=np.float64)
    ids = np.asarray(corpus_ids, dtype=object)
    id_order = np.argsort(ids, kind="stable")
    id_rank = np.empty(len(ids), dtype=np.int64)
    id_rank[id_order] = np.arange(len(ids))
    depth = min(depth, len(ids))
    ranked = []
    for row in scores:
        order = np.lexsort((id_rank, -row))[:depth]
        ranked.append([ids[i] for i in order])
    return ranked


def ranking_metrics(rankings: Sequence[Sequence[str]], relevant: Sequence[set[str]]) -> dict[str, float]:
    """Accuracy/precision/recall@k, nDCG@10, MRR@10 and MAP@100 averaged over queries that have at least
    one relevant id. ``rankings[i]`` is query i's ranked ids, ``relevant[i]`` its relevant ids."""
    sums = dict.fromkeys(METRICS, 0.0)
    n = 0
    for ranked, rel in zip(rankings, relevant, strict=True):
        if not rel:
            continue
        n += 1
        hits = [cid in rel for cid in ranked]
        for k in ACCURACY_AT:
            sums[f"accuracy@{k}"] += float(any(hits[:k]))
        for k in PRECISION_RECALL_AT:
            found = sum(hits[:k])
            sums[f"precision@{k}"] += found / k
            sums[f"recall@{k}"] += found / len(rel)
        first = next((i for i, hit in enumerate(hits[:MRR_AT]) if hit), None)
        sums[f"mrr@{MRR_AT}"] += 0.0 if first is None else 1.0 / (first + 1)
        dcg = sum(1.0 / math.log2(i + 2) for i, hit in enumerate(hits[:NDCG_AT]) if hit)
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(rel), NDCG_AT)))
        sums[f"ndcg@{NDCG_AT}"] += dcg / ideal
        found, precisions = 0, 0.0
        for i, hit in enumerate(hits[:MAP_AT]):
            if hit:
                found += 1
                precisions += found / (i + 1)
        sums[f"map@{MAP_AT}"] += precisions / min(MAP_AT, len(rel))
    if n == 0:
        raise DatasetError("no query has a relevant chunk in the searched corpus: the split is empty or broken")
    return {name: total / n for name, total in sums.items()}


# ---------------------------------------------------------------------------------------------- models
def model_label(name_or_path: str | os.PathLike | None) -> str:
    """A short column name for a model: the bundled name, a folder's name, or a Hub id's last part."""
    if name_or_path is None or str(name_or_path).lower() in BUNDLED_ALIASES:
        return DEFAULT_MODEL_NAME
    return Path(str(name_or_path).rstrip("/")).name or str(name_or_path)


def embed(model, queries: Sequence[str], documents: Sequence[str], batch_size: int = 32):
    """Query and document embeddings as the evaluator computes them (same calls, same batch size)."""
    kwargs = {"batch_size": batch_size, "convert_to_tensor": True, "show_progress_bar": False}
    return model.encode_query(list(queries), **kwargs), model.encode_document(list(documents), **kwargs)


def embedding_rows(
    model, label: str, q_emb, c_emb, corpus_ids: Sequence[str], relevant: Sequence[set[str]], dims=None
) -> dict[str, dict[str, float]]:
    """Metrics for the full embedding and each truncated width, from one pair of embedding matrices."""
    return {row: ranking_metrics(ranked, relevant)
            for row, ranked in embedding_rankings(model, label, q_emb, c_emb, corpus_ids, dims).items()}


def embedding_rankings(model, label: str, q_emb, c_emb, corpus_ids: Sequence[str], dims=None) -> dict[str, list]:
    """Each query's ranked corpus ids, for the full embedding and each truncated width.

    Slicing then applying the model's own similarity is exactly what ``truncate_dim`` does (cosine
    renormalises the slice), without encoding again per width."""
    full = int(q_emb.shape[1])
    rankings = {label: _ranked(model, q_emb, c_emb, corpus_ids)}
    for dim in dims or ():
        if dim != full:
            rankings[f"{label}@{dim}"] = _ranked(model, q_emb[:, :dim], c_emb[:, :dim], corpus_ids)
    return rankings


def _ranked(model, q_emb, c_emb, corpus_ids) -> list[list[str]]:
    return rank_by_scores(model.similarity(q_emb, c_emb).float().cpu().numpy(), corpus_ids)


def style_rows(rankings: dict[str, list], relevant: Sequence[set[str]], styles: Sequence[str]
               ) -> dict[str, dict[str, dict[str, float]]]:
    """The metrics of each row over each query style's queries alone (``styles``: one per query, in order)."""
    by_style: dict[str, dict[str, dict[str, float]]] = {}
    for style in dict.fromkeys(styles):
        at = [i for i, s in enumerate(styles) if s == style]
        by_style[style] = {row: ranking_metrics([ranked[i] for i in at], [relevant[i] for i in at])
                           for row, ranked in rankings.items()}
    return by_style


def bm25_scores(queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
    """Full BM25 score matrix (queries × documents) with bm25s' defaults and English stopwords."""
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(list(documents), stopwords="en", show_progress=False), show_progress=False)
    tokenized = bm25s.tokenize(list(queries), stopwords="en", return_ids=False, show_progress=False)
    return np.vstack([retriever.get_scores(tokens) for tokens in tokenized]) if tokenized else np.zeros((0, 0))


# ---------------------------------------------------------------------------------------------- entry
def parse_dims(text: str | None) -> list[int] | None:
    """``"384,256,128"`` → ``[384, 256, 128]``; ConfigError naming the bad value otherwise."""
    if text is None or not text.strip():
        return None
    try:
        dims = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--dims {text!r}: give whole numbers separated by commas, e.g. 384,256,128,64") from None
    if not dims or any(d < 1 for d in dims):
        raise ConfigError(f"--dims {text!r}: every width must be at least 1, e.g. 384,256,128,64")
    return dims


def evaluate(
    out: str | os.PathLike,
    model=None,
    split: str = "eval",
    dims: Sequence[int] | None = None,
    bm25: bool = True,
    batch_size: int = 32,
    corpus: str = DEFAULT_CORPUS,
    label: str | None = None,
) -> EvalReport:
    """Evaluate ``model`` (a SentenceTransformer, a folder, a Hub name, or None for the bundled MiniLM)
    and BM25 on one split of a synthqa dataset (folder or Hub id), searching ``corpus`` ("all" or "split",
    see ``retrieval``). ``label`` names the model's column."""
    folder = resolve_dataset(out)
    queries, corpus_dict, relevant_docs = ir_evaluator_inputs(folder, split=split, corpus=corpus)
    style_of = query_styles(folder, split)
    qids = [qid for qid in queries if relevant_docs.get(qid)]
    if not qids:
        raise DatasetError(f"{folder}: the {split} split has no question with its chunk in the corpus; nothing to evaluate")
    corpus_ids = list(corpus_dict)
    documents = [corpus_dict[cid] for cid in corpus_ids]
    texts = [queries[qid] for qid in qids]
    relevant = [relevant_docs[qid] for qid in qids]

    st_model = load_model(model) if model is None or isinstance(model, str | os.PathLike) else model
    label = label or model_label(model if st_model is not model else "model")
    full = st_model.get_embedding_dimension()
    bad = [d for d in dims or () if d > full]
    if bad:
        raise ConfigError(f"--dims {','.join(map(str, bad))} exceed {label}'s embedding width {full}: use {full} or less")

    q_emb, c_emb = embed(st_model, texts, documents, batch_size=batch_size)
    rankings = embedding_rankings(st_model, label, q_emb, c_emb, corpus_ids, dims)
    if bm25:
        rankings[BM25_ROW] = rank_by_scores(bm25_scores(texts, documents), corpus_ids)
    rows = {row: ranking_metrics(ranked, relevant) for row, ranked in rankings.items()}
    styles = [style_of[qid] for qid in qids] if style_of else []
    by_style = style_rows(rankings, relevant, styles) if len(set(styles)) > 1 else {}
    return EvalReport(str(out), split, label, len(qids), len(corpus_ids), rows, corpus, by_style,
                      {style: styles.count(style) for style in by_style})


def default_output_path(out: str | os.PathLike, report: EvalReport) -> Path:
    """Where results go unless ``--output`` says otherwise: beside the data, in the never-uploaded
    ``.synthqa/`` folder of a local dataset, or in the current folder for a Hub dataset."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", report.model)
    name = f"eval-{slug}-{report.split}-{report.searched}.json"
    folder = Path(out)
    return folder / ".synthqa" / name if folder.is_dir() else Path.cwd() / name


def write_report(report: EvalReport, path: str | os.PathLike) -> Path:
    """Write the report as JSON; refuses paths inside a dataset's ``data/`` folder."""
    path = Path(path)
    if any(p.name == "data" and (p.parent / "synthqa.json").exists() for p in path.resolve().parents):
        raise ConfigError(f"--output {path}: never write inside a dataset's data/ folder; choose another path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report.to_json(), encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"--output {path} cannot be written ({err.strerror}): choose another path") from None
    return path


def format_table(report: EvalReport) -> str:
    """Metric rows × model columns, like the reference card's table."""
    columns = list(report.rows)
    width = max(len(m) for m in METRICS)
    col_w = [max(len(c), 6) for c in columns]
    lines = [
        f"{report.split} split: {report.queries} queries searching {report.scope}",
        "| " + "metric".ljust(width) + " | " + " | ".join(c.rjust(w) for c, w in zip(columns, col_w)) + " |",
        "|" + "-" * (width + 2) + "|" + "|".join("-" * (w + 1) + ":" for w in col_w) + "|",
    ]
    for metric in METRICS:
        cells = [f"{report.rows[c][metric]:.4f}".rjust(w) for c, w in zip(columns, col_w)]
        lines.append("| " + metric.ljust(width) + " | " + " | ".join(cells) + " |")
    if report.styles:
        lines += ["", style_table(report)]
    return "\n".join(lines)


STYLE_METRICS = (f"ndcg@{NDCG_AT}", f"mrr@{MRR_AT}", "accuracy@1", "recall@10")


def style_table(report: EvalReport) -> str:
    """Per query style and row: a few headline metrics (the full set is in the JSON results)."""
    names = {style: f"{style} ({report.style_queries[style]})" for style in report.styles}
    style_w = max(len("style (queries)"), *map(len, names.values()))
    row_w = max(len("row"), *map(len, report.rows))
    col_w = [max(len(m), 6) for m in STYLE_METRICS]
    lines = [
        "by query style (each style's queries alone, searching the same chunks):",
        f"| {'style (queries)'.ljust(style_w)} | {'row'.ljust(row_w)} | "
        + " | ".join(m.rjust(w) for m, w in zip(STYLE_METRICS, col_w)) + " |",
        f"|{'-' * (style_w + 2)}|{'-' * (row_w + 2)}|" + "|".join("-" * (w + 1) + ":" for w in col_w) + "|",
    ]
    for style, rows in report.styles.items():
        for row, metrics in rows.items():
            cells = " | ".join(f"{metrics[m]:.4f}".rjust(w) for m, w in zip(STYLE_METRICS, col_w))
            lines.append(f"| {names[style].ljust(style_w)} | {row.ljust(row_w)} | {cells} |")
    return "\n".join(lines)
