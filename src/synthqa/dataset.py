"""The output folder: write it, read it back, and hand the IR evaluator its three dicts.

The folder *is* a Hugging Face dataset repository (see docs/architecture.md): a card whose YAML lists three
configs, parquet files under ``data/``, the run manifest, and a cache that is never uploaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import memory
from .cache import CACHE_DIRNAME
from .errors import DatasetError, OutputError
from .manifest import Manifest, RunSettings

MANIFEST = "synthqa.json"
CARD = "README.md"
RUN_SETTINGS = "run.json"  # inside .synthqa/
# Inside .synthqa/: every pair the filters kept, before a person's decisions, so `curate` can apply (and undo)
# decisions without the inputs or the endpoint, and `review` can show rejected pairs again.
GENERATED = "generated-queries.parquet"
VECTORS = "corpus-embeddings.npz"  # inside .synthqa/: the round-trip embedder's corpus vectors, for curate
SPLIT_NAMES = ("train", "eval")
# config name → split → path inside the folder, before the writer adds each file's content fingerprint.
CONFIGS: dict[str, dict[str, str]] = {
    name: {split: f"data/{folder}/{split}.parquet" for split in SPLIT_NAMES}
    for name, folder in (("default", "pairs"), ("queries", "queries"), ("corpus", "corpus"))
}
# What `push` must never upload: the answer cache, the review decisions (they hold the rejected questions;
# the manifest and card say what was done), editor/OS litter, and half-written files.
UPLOAD_IGNORE = [".synthqa/*", ".synthqa/**", "batch/*", "batch/**", "curation.jsonl", "**/*.tmp", "*.tmp", ".DS_Store", "**/.DS_Store"]

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
        ("answer", pa.string()),  # the reference answer (--answers), else null
    ]
)
CORPUS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("source", pa.string()),
        ("page", pa.int32()),
        ("chunk_index", pa.int32()),
        ("ocr", pa.bool_()),  # the page's text was read by OCR (no text layer)
        ("language", pa.string()),
        ("skip_reason", pa.string()),  # the chunk filter that kept it from the LLM (no question is about it); "" if asked
    ]
)
SCHEMAS = {"default": PAIRS_SCHEMA, "queries": QUERIES_SCHEMA, "corpus": CORPUS_SCHEMA}
# With --query-styles the queries carry their style (question, keyword, situation); without it the table is
# the one written before styles existed.
STYLED_QUERIES_SCHEMA = QUERIES_SCHEMA.append(pa.field("style", pa.string()))
GENERATED_SCHEMA = STYLED_QUERIES_SCHEMA.append(pa.field("split", pa.string()))
DataFiles = dict[str, dict[str, str]]  # config → split → parquet path inside the folder


def write_dataset(out: Path, *, corpus: Sequence[dict], queries: Sequence[dict],
                  render_card: Callable[[DataFiles], str]) -> DataFiles:
    """Write the tables, then the card ``render_card(data_files)``; returns the data files for the manifest.

    Then call ``write_manifest``: until then the folder has no manifest and counts as a run in progress.
    """
    with _writing(out):
        files = write_tables(out, corpus=corpus, queries=queries)
        write_card(out, render_card(files), files)
    return files


@contextlib.contextmanager
def _writing(out: Path):
    """Disk full, permission denied …: one line naming the folder; the answers stay in the cache."""
    try:
        yield
    except OSError as err:
        raise OutputError(
            f"cannot write the dataset in {out}: {err.strerror or err} (fix it, then rerun: no answer is asked again)"
        ) from None


def write_tables(out: Path, *, corpus: Sequence[dict], queries: Sequence[dict]) -> DataFiles:
    """Write the parquet files of in-memory rows (each with a "split"); returns config → split → path."""
    text_of = {row["id"]: row["text"] for row in corpus}
    with TableWriter(out, styled=any(row.get("style") for row in queries)) as writer:
        for row in corpus:
            writer.add_chunk(row["split"], row)
        for row in queries:
            writer.add_query(row["split"], row, text_of[row["chunk_id"]])
    return writer.files


class TableWriter:
    """The parquet files of a dataset, written as rows stream in: never the whole dataset in memory.

    Rows of each (config, split) are buffered and appended to that file as a row group of at most
    ``ROWS_PER_GROUP`` rows; once all buffers together hold ``BUFFERED_BYTES`` of row values, the largest is
    written early (six buffers of whole chunk texts filled side by side, the eval ones slowly, held over 100 MB
    at a million chunks). ``close`` (or leaving the ``with``) names each file after its content (see ``files``).
    File names carry a fingerprint of their content: `datasets` caches a local folder under a key that
    ignores the files' paths and times, so a regenerated folder under fixed names would load stale rows.
    An empty split gets no file, and a config without rows none at all: `datasets` refuses to load a
    zero-row parquet file, and the output contract is that the folder always loads.
    Files of an earlier run are removed by ``write_card`` once the new card points at the new ones.
    """

    ROWS_PER_GROUP = 16384
    BUFFERED_BYTES = 24 << 20

    def __init__(self, out: Path, styled: bool = False) -> None:
        """``styled``: the queries have a ``style`` column (a --query-styles run)."""
        self.out = Path(out)
        self.schemas = {**SCHEMAS, "queries": STYLED_QUERIES_SCHEMA if styled else QUERIES_SCHEMA}
        (self.out / MANIFEST).unlink(missing_ok=True)  # from here until write_manifest the folder is incomplete
        self.files: DataFiles = {}
        self._writers: dict[tuple[str, str], pq.ParquetWriter] = {}
        self._rows: dict[tuple[str, str], list[dict]] = {}
        self._bytes: dict[tuple[str, str], int] = {}  # about what each buffer's row values take

    def add_chunk(self, split: str, row: dict) -> None:
        """One corpus row (id, text, source, page, chunk_index)."""
        self._add("corpus", split, row)

    def add_query(self, split: str, row: dict, chunk_text: str) -> None:
        """One query row (id, text, chunk_id, …) and its pair (question, chunk text)."""
        self._add("queries", split, row)
        self._add("default", split, {"sentence_0": row["text"], "sentence_1": chunk_text})

    def _add(self, config: str, split: str, row: dict) -> None:
        key = (config, split)
        rows = self._rows.setdefault(key, [])
        rows.append(row)
        self._bytes[key] = self._bytes.get(key, 0) + sum(len(v) for v in row.values() if isinstance(v, str)) + 100
        if len(rows) >= self.ROWS_PER_GROUP:
            self._flush(config, split)
        elif sum(self._bytes.values()) >= self.BUFFERED_BYTES:
            self._flush(*max(self._bytes, key=self._bytes.__getitem__))

    def _flush(self, config: str, split: str) -> None:
        self._bytes.pop((config, split), None)
        rows = self._rows.pop((config, split), [])
        if not rows:
            return
        schema = self.schemas[config]
        writer = self._writers.get((config, split))
        if writer is None:
            tmp = self.out / (CONFIGS[config][split] + ".tmp")
            tmp.parent.mkdir(parents=True, exist_ok=True)
            writer = self._writers[config, split] = pq.ParquetWriter(tmp, schema)
        writer.write_table(_table(rows, schema))
        memory.release(heap=False)  # Arrow's pool keeps each row group's buffers otherwise

    def close(self) -> DataFiles:
        """Finish every file and give it its fingerprinted name; returns config → split → path."""
        for config, split in list(self._rows):
            self._flush(config, split)
        for (config, split), writer in self._writers.items():
            writer.close()
            rel = CONFIGS[config][split]
            tmp = self.out / (rel + ".tmp")
            digest = hashlib.sha256()
            with open(tmp, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            final = rel.replace(".parquet", f"-{digest.hexdigest()[:10]}.parquet")
            os.replace(tmp, self.out / final)
            self.files.setdefault(config, {})[split] = final
        self._writers.clear()
        self.files = {config: {split: self.files[config][split] for split in SPLIT_NAMES if split in self.files[config]}
                      for config in CONFIGS if config in self.files}
        return self.files

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, kind, *exc) -> None:
        if kind is None:
            self.close()
        else:
            for writer in self._writers.values():
                writer.close()


def _table(rows: Sequence[dict], schema: pa.Schema) -> pa.Table:
    """Row dicts as a table of ``schema`` (a missing key is null)."""
    return pa.table({name: [row.get(name) for row in rows] for name in schema.names}, schema=schema)


def write_card(out: Path, card: str, files: DataFiles) -> None:
    """Write the card, then remove data files of earlier runs that it no longer lists.

    Only files synthqa itself names (``data/<config>/<split>-<fingerprint>.parquet``) are ever removed.
    """
    out = Path(out)
    _write_text(out / CARD, card)
    keep = {out / path for split_files in files.values() for path in split_files.values()}
    for path in own_data_files(out):
        if path not in keep:
            path.unlink()


def own_data_files(out: Path) -> list[Path]:
    """The parquet files in ``out`` that synthqa wrote (by their name pattern), whatever run wrote them."""
    found = []
    for folder in {Path(rel).parent for split_files in CONFIGS.values() for rel in split_files.values()}:
        for path in (Path(out) / folder).glob("*.parquet"):
            if _OWN_FILE.fullmatch(path.name):
                found.append(path)
    return sorted(found)


_OWN_FILE = re.compile(r"(?:%s)(?:-[0-9a-f]{10})?\.parquet" % "|".join(SPLIT_NAMES))


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_manifest(out: Path, manifest: Manifest) -> None:
    """Write ``synthqa.json``, the run manifest (last step of a run)."""
    with _writing(out):
        _write_text(Path(out) / MANIFEST, json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False) + "\n")


def read_manifest(out: Path) -> Manifest:
    """The run manifest of a dataset folder; ``DatasetError`` with the fix when it is missing or unreadable."""
    path = Path(out) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{out} has no {MANIFEST}: is it a synthqa output folder (or is a run still going)?") from None
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path} cannot be read ({err}): rerun `synthqa generate` to rewrite it") from None
    return Manifest.from_dict(data, where=str(path))


def run_settings_path(out: Path) -> Path:
    return Path(out) / CACHE_DIRNAME / RUN_SETTINGS


def write_run_settings(out: Path, settings: RunSettings) -> None:
    """Record what a rerun needs (absolute inputs, prompt file) beside the cache; never uploaded."""
    path = run_settings_path(out)
    with _writing(out):
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_text(path, json.dumps(settings.to_dict(), indent=2, ensure_ascii=False) + "\n")


def read_run_settings(out: Path) -> RunSettings | None:
    """The run settings of ``out``, or None when it has none (or they cannot be read)."""
    path = run_settings_path(out)
    try:
        return RunSettings.from_dict(json.loads(path.read_text(encoding="utf-8")), where=str(path))
    except (OSError, ValueError, DatasetError):
        return None


def write_generated(out: Path, queries: Iterable[dict]) -> None:
    """Keep every pair the filters kept (with its split), before a person's decisions, in ``.synthqa/``."""
    with _writing(out), GeneratedWriter(out) as writer:
        for row in queries:
            writer.add(row)


class GeneratedWriter:
    """``write_generated`` as the rows stream in: row groups of ``TableWriter.ROWS_PER_GROUP``, the file
    renamed into place on ``close``."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / CACHE_DIRNAME / GENERATED
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._writer = pq.ParquetWriter(self._tmp, GENERATED_SCHEMA)
        self._rows: list[dict] = []

    def add(self, row: dict) -> None:
        self._rows.append(row)
        if len(self._rows) >= TableWriter.ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(_table(self._rows, GENERATED_SCHEMA))
            self._rows = []
            memory.release(heap=False)

    def __enter__(self) -> GeneratedWriter:
        return self

    def __exit__(self, kind, *exc) -> None:
        if kind is None:
            self._flush()
        self._writer.close()
        if kind is None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)


def read_generated(out: Path) -> list[dict]:
    """The rows ``write_generated`` kept; ``DatasetError`` with the fix when there are none."""
    path = Path(out) / CACHE_DIRNAME / GENERATED
    try:
        return pq.read_table(path).to_pylist()
    except FileNotFoundError:
        raise DatasetError(f"{out} lacks {CACHE_DIRNAME}/{GENERATED}: rerun the same `synthqa generate` command "
                           "(cached answers are reused: nothing is asked again)") from None
    except (OSError, pa.ArrowException) as err:
        raise DatasetError(f"{path} cannot be read ({err}): rerun `synthqa generate` to rewrite it") from None


def write_corpus_vectors(out: Path, ids: Sequence[str], vectors: np.ndarray, model: str) -> None:
    """Keep the corpus vectors of the round-trip embedder, so ranking an edited question costs one encode."""
    path = Path(out) / CACHE_DIRNAME / VECTORS
    with _writing(out):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, ids=np.array(ids), vectors=vectors, model=np.array(model))
        os.replace(tmp, path)


def read_corpus_vectors(out: Path, ids: Sequence[str], model: str) -> np.ndarray | None:
    """The kept vectors of chunks ``ids``, in that order; None when absent, unreadable or of another model."""
    try:
        with np.load(Path(out) / CACHE_DIRNAME / VECTORS, allow_pickle=False) as data:
            if str(data["model"]) != model:
                return None
            index = {cid: i for i, cid in enumerate(data["ids"].tolist())}
            if any(cid not in index for cid in ids):
                return None
            return data["vectors"][[index[cid] for cid in ids]]
    except (OSError, ValueError, KeyError):
        return None


def read_rows(out: Path, config: str, files: DataFiles | None = None) -> list[dict]:
    """Every row of one config (``default``, ``queries``, ``corpus``) with its ``split``, as plain dicts.

    ``files`` names the data files (default: those of the manifest in ``out``)."""
    out = Path(out)
    rows: list[dict] = []
    for split, rel in (read_manifest(out).data_files if files is None else files).get(config, {}).items():
        if not (out / rel).exists():
            raise DatasetError(f"{out / rel} is missing: {out} does not follow synthqa's output layout")
        rows += [dict(row, split=split) for row in pq.read_table(out / rel).to_pylist()]
    return rows


def load_tables(out: Path) -> dict[str, dict]:
    """Every config's splits as pandas DataFrames: ``{"pairs"|"queries"|"corpus": {split: df}}``.

    A split the dataset left out (it had no rows) comes back as an empty frame with the right columns.
    """
    out = Path(out)
    files = read_manifest(out).data_files
    tables: dict[str, dict] = {}
    for config, name in (("default", "pairs"), ("queries", "queries"), ("corpus", "corpus")):
        tables[name] = {}
        for split in SPLIT_NAMES:
            rel = files.get(config, {}).get(split)
            if rel is None:
                tables[name][split] = SCHEMAS[config].empty_table().to_pandas()
                continue
            path = out / rel
            if not path.exists():
                raise DatasetError(f"{path} is missing: {out} does not follow synthqa's output layout")
            tables[name][split] = pq.read_table(path).to_pandas()
    return tables


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
