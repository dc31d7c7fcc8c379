"""The output folder: write it, read it back, and hand the IR evaluator its three dicts.

The folder *is* a Hugging Face dataset repository (see docs/architecture.md): a card whose YAML lists three
configs, parquet files under ``data/``, the run manifest, and a cache that is never uploaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import DatasetError

MANIFEST = "synthqa.json"
CARD = "README.md"
SPLIT_NAMES = ("train", "eval")
# config name → split → path inside the folder; the card's YAML and the writer both read this table.
CONFIGS: dict[str, dict[str, str]] = {
    name: {split: f"data/{folder}/{split}.parquet" for split in SPLIT_NAMES}
    for name, folder in (("default", "pairs"), ("queries", "queries"), ("corpus", "corpus"))
}
# What `push` must never upload: the answer cache, editor/OS litter, and half-written files.
UPLOAD_IGNORE = [".synthqa/*", ".synthqa/**", "**/*.tmp", "*.tmp", ".DS_Store", "**/.DS_Store"]

PAIRS_SCHEMA = pa.schema([("sentence_0", pa.string()), ("sentence_1", pa.string())])
QUERIES_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("chunk_id", pa.string()),
        ("source", pa.string()),
        ("page", pa.int32()),
        ("bm25_rank", pa.int32()),
        ("embed_rank", pa.int32()),
        ("extra_relevant_ids", pa.list_(pa.string())),
    ]
)
CORPUS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("source", pa.string()),
        ("page", pa.int32()),
        ("chunk_index", pa.int32()),
    ]
)


def write_dataset(out: Path, *, corpus: Sequence[dict], queries: Sequence[dict], card: str) -> None:
    """Write the parquet files and the card, each replaced atomically. Call ``write_manifest`` after it:
    the manifest goes last, so its presence means the folder holds one complete, consistent dataset."""
    (Path(out) / MANIFEST).unlink(missing_ok=True)
    out = Path(out)
    text_of = {row["id"]: row["text"] for row in corpus}
    for split in SPLIT_NAMES:
        split_queries = [q for q in queries if q["split"] == split]
        split_corpus = [c for c in corpus if c["split"] == split]
        pairs = [{"sentence_0": q["text"], "sentence_1": text_of[q["chunk_id"]]} for q in split_queries]
        _write_table(out / CONFIGS["default"][split], pairs, PAIRS_SCHEMA)
        _write_table(out / CONFIGS["queries"][split], split_queries, QUERIES_SCHEMA)
        _write_table(out / CONFIGS["corpus"][split], split_corpus, CORPUS_SCHEMA)
    _write_text(out / CARD, card)


def write_manifest(out: Path, manifest: dict) -> None:
    """Write ``synthqa.json``, the run manifest (last step of a run)."""
    _write_text(Path(out) / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def _write_table(path: Path, rows: Sequence[dict], schema: pa.Schema) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    table = pa.table(columns, schema=schema)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(out: Path) -> dict:
    """The run manifest of a dataset folder."""
    path = Path(out) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{out} has no {MANIFEST}: is it a synthqa output folder (or is a run still going)?") from None
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path} cannot be read ({err}): rerun `synthqa generate` to rewrite it") from None


def load_tables(out: Path) -> dict[str, dict]:
    """Every config's splits as pandas DataFrames: ``{"pairs"|"queries"|"corpus": {split: df}}``."""
    out = Path(out)
    tables: dict[str, dict] = {}
    for config, name in (("default", "pairs"), ("queries", "queries"), ("corpus", "corpus")):
        tables[name] = {}
        for split, rel in CONFIGS[config].items():
            path = out / rel
            if not path.exists():
                raise DatasetError(f"{path} is missing: {out} does not follow synthqa's output layout")
            tables[name][split] = pq.read_table(path).to_pandas()
    return tables


def ir_evaluator_inputs(
    out: Path, split: str = "eval", corpus: str = "split"
) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """``(queries, corpus, relevant_docs)`` for sentence-transformers' InformationRetrievalEvaluator.

    ``corpus="split"`` searches the split's own chunks (as the reference card did); ``"all"`` searches every
    chunk of the dataset, a harder test. Extra relevant chunks recorded for a question count as relevant
    when they are in the searched corpus.
    """
    if split not in SPLIT_NAMES:
        raise DatasetError(f"split {split!r} does not exist: use one of {', '.join(SPLIT_NAMES)}")
    if corpus not in ("split", "all"):
        raise DatasetError(f"corpus {corpus!r} is not known: use 'split' or 'all'")
    tables = load_tables(out)
    queries_df = tables["queries"][split]
    corpus_splits = [split] if corpus == "split" else list(SPLIT_NAMES)
    corpus_dict: dict[str, str] = {}
    for name in corpus_splits:
        df = tables["corpus"][name]
        corpus_dict.update(zip(df["id"], df["text"]))
    queries = dict(zip(queries_df["id"], queries_df["text"]))
    relevant: dict[str, set[str]] = {}
    for qid, chunk_id, extras in zip(queries_df["id"], queries_df["chunk_id"], queries_df["extra_relevant_ids"]):
        ids = {chunk_id, *(list(extras) if extras is not None else [])}
        relevant[qid] = {cid for cid in ids if cid in corpus_dict}
    return queries, corpus_dict, relevant


def resolve_dataset(path_or_id: str | Path) -> Path:
    """A local output folder as it is, or a Hub dataset id downloaded (without the cache) when online."""
    path = Path(path_or_id)
    if path.exists():
        if not path.is_dir():
            raise DatasetError(f"{path} is a file: give the dataset folder written by `synthqa generate`")
        return path
    text = str(path_or_id)
    if text.count("/") != 1 or text.startswith((".", "/")):
        raise DatasetError(f"{text} is neither a folder nor a Hub dataset id like 'user/name'")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=text, repo_type="dataset", ignore_patterns=UPLOAD_IGNORE))
    except Exception as err:  # network, auth, unknown repo: one line whatever the cause
        raise DatasetError(f"cannot fetch Hub dataset {text}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None
