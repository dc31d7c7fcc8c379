"""A dataset in the formats evaluation tools read: BEIR, RAGAS, and plain JSONL.

- ``beir``: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and
  ``qrels/{train,test}.tsv`` (``query-id``, ``corpus-id``, ``score``; the eval split is BEIR's ``test``), as
  ``beir.datasets.data_loader.GenericDataLoader`` reads them. A question's extra relevant chunks are qrels
  too. BEIR has one corpus, so it holds every chunk, those skipped before asking too (their ``skip_reason``
  in the metadata): searching it is ``synthqa evaluate --corpus all``.
- ``ragas``: ``{train,eval}.jsonl`` of RAGAS' single-turn samples (``user_input``, ``reference``,
  ``reference_contexts``, ``reference_context_ids``), read by ``EvaluationDataset.from_jsonl``; needs the
  reference answers of ``synthqa generate --answers``.
- ``jsonl``: ``{train,eval}.jsonl``, one pair a line with everything the dataset knows about it.

A split without rows gets no file. Only folders that are new, empty or an earlier export are written to.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import curate
from .dataset import SPLIT_NAMES, read_manifest, read_rows, resolve_dataset
from .errors import DatasetError, OutputError

FORMATS = ("beir", "ragas", "jsonl")
BEIR_SPLIT = {"train": "train", "eval": "test"}
# Every file a format may write, so a re-export replaces its own files and never touches anyone else's.
OWN_FILES = {
    "beir": {"corpus.jsonl", "queries.jsonl", *(f"qrels/{s}.tsv" for s in BEIR_SPLIT.values())},
    "ragas": {f"{s}.jsonl" for s in SPLIT_NAMES},
    "jsonl": {f"{s}.jsonl" for s in SPLIT_NAMES},
}
Files = dict[str, list[str]]  # path inside the export folder → its lines


@dataclass(frozen=True)
class Exported:
    """What ``export_dataset`` wrote."""

    format: str
    dest: Path
    files: tuple[str, ...]
    queries: dict[str, int]  # split → questions written
    chunks: int
    without_answer: int  # questions left out of a RAGAS export for want of a reference answer
    pending: int  # decisions in curation.jsonl that `synthqa curate` has not applied yet


def export_dataset(target: str | Path, fmt: str, dest: str | Path) -> Exported:
    """Write the dataset of a folder or Hub id in format ``fmt`` into the folder ``dest``."""
    if fmt not in FORMATS:
        raise DatasetError(f"--format {fmt!r} is not known: use one of {', '.join(FORMATS)}")
    folder = resolve_dataset(target)
    manifest = read_manifest(folder)
    queries, corpus = read_rows(folder, "queries"), read_rows(folder, "corpus")
    text_of = {c["id"]: c["text"] for c in corpus}
    without_answer = 0
    if fmt == "ragas":
        answered = [q for q in queries if q["answer"]]
        if not answered:
            raise DatasetError(f"{target} has no reference answers, which RAGAS needs (`reference`): make the "
                               "dataset with `synthqa generate --answers` (the questions are asked again)")
        queries, without_answer = answered, len(queries) - len(answered)
    files = FORMATTERS[fmt](queries, corpus, text_of)
    dest = Path(dest)
    write_files(dest, files, OWN_FILES[fmt])
    return Exported(
        format=fmt, dest=dest, files=tuple(sorted(files)),
        queries={s: n for s in SPLIT_NAMES if (n := sum(q["split"] == s for q in queries))},
        chunks=len(corpus), without_answer=without_answer,
        pending=curate.pending(folder, manifest.curation),
    )


def beir_files(queries: Sequence[dict], corpus: Sequence[dict], text_of: dict[str, str]) -> Files:
    """BEIR's three parts; metadata rides along in fields its loader ignores."""
    files: Files = {
        "corpus.jsonl": [_line({"_id": c["id"], "title": "", "text": c["text"],
                                "metadata": {"source": c["source"], "page": c["page"], "split": c["split"],
                                             "skip_reason": c["skip_reason"]}})
                         for c in corpus],
        "queries.jsonl": [_line({"_id": q["id"], "text": q["text"],
                                 "metadata": {"chunk_id": q["chunk_id"], "answer": q["answer"], "split": q["split"]}})
                          for q in queries],
    }
    for split, name in BEIR_SPLIT.items():
        rows = [f"{q['id']}\t{cid}\t1" for q in queries if q["split"] == split for cid in _relevant(q)]
        if rows:
            files[f"qrels/{name}.tsv"] = ["query-id\tcorpus-id\tscore", *rows]
    return files


def ragas_files(queries: Sequence[dict], corpus: Sequence[dict], text_of: dict[str, str]) -> Files:
    """RAGAS SingleTurnSample rows per split; the reference contexts are the question's relevant chunks."""
    return _per_split(queries, lambda q: {
        "user_input": q["text"],
        "reference": q["answer"],
        "reference_contexts": [text_of[cid] for cid in _relevant(q)],
        "reference_context_ids": _relevant(q),
    })


def jsonl_files(queries: Sequence[dict], corpus: Sequence[dict], text_of: dict[str, str]) -> Files:
    """One pair a line, with its chunk, answer, provenance, ranks and every relevant chunk id."""
    return _per_split(queries, lambda q: {
        "id": q["id"], "question": q["text"], "answer": q["answer"], "chunk_id": q["chunk_id"],
        "chunk": text_of[q["chunk_id"]], "source": q["source"], "page": q["page"],
        "relevant_chunk_ids": _relevant(q), "bm25_rank": q["bm25_rank"], "embed_rank": q["embed_rank"],
    })


FORMATTERS: dict[str, Callable[[Sequence[dict], Sequence[dict], dict[str, str]], Files]] = {
    "beir": beir_files, "ragas": ragas_files, "jsonl": jsonl_files,
}


def _per_split(queries: Sequence[dict], row: Callable[[dict], dict]) -> Files:
    files: Files = {}
    for split in SPLIT_NAMES:
        lines = [_line(row(q)) for q in queries if q["split"] == split]
        if lines:
            files[f"{split}.jsonl"] = lines
    return files


def _relevant(query: dict) -> list[str]:
    return [query["chunk_id"], *(query["extra_relevant_ids"] or [])]


def _line(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False)


def write_files(dest: Path, files: Files, own: set[str]) -> None:
    """Write ``files`` into ``dest``, removing earlier exports' files in ``own`` that are not written now.

    Refuses a folder holding anything else: an export never overwrites files it did not write.
    """
    if dest.exists() and not dest.is_dir():
        raise OutputError(f"-o {dest} is a file: name a folder for the export")
    present = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()} if dest.exists() else set()
    foreign = sorted(present - own)
    if foreign:
        raise OutputError(f"{dest} holds {foreign[0]}, which this export does not write: choose a new or empty "
                          "folder for -o")
    try:
        for rel in sorted(present - set(files)):
            (dest / rel).unlink()
        for rel, lines in files.items():
            path = dest / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
            os.replace(tmp, path)
    except OSError as err:
        raise OutputError(f"cannot write the export in {dest}: {err.strerror or err}") from None
