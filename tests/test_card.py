"""The dataset card: Hub metadata parses, the configs load with `datasets`, provenance is all there."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import yaml
from datasets import load_dataset
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard

from synthqa.card import fenced, render_card, size_category
from synthqa.dataset import load_tables, write_dataset, write_manifest

SYSTEM = "You write questions a reader of US policy would ask. Never use ``` fences."
USER = "Write {n} questions about this passage:\n{chunk}"


def make_manifest(**overrides) -> dict:
    """A complete manifest as docs/architecture.md specifies it."""
    manifest = {
        "synthqa_version": "0.1.0",
        "created_at": "2025-01-02T03:04:05Z",
        "options": {"chunk_size": 1000, "chunk_overlap": 200, "questions_per_chunk": 2, "temperature": 0.3,
                    "seed": 7, "eval_fraction": 0.25, "model": "gpt-4o-mini"},
        "model": "gpt-4o-mini",
        "endpoint_host": "api.openai.com",
        "local": False,
        "prompt": {"name": "default", "system": SYSTEM, "user": USER,
                   "sha256": hashlib.sha256((SYSTEM + USER).encode()).hexdigest()},
        "counts": {"documents": 2, "pages": 3, "chunks": 6, "chunks_asked": 4, "questions": 8, "train_pairs": 6,
                   "eval_pairs": 2, "train_chunks": 3, "eval_chunks": 1, "short_chunks": 1, "requests": 5,
                   "prompt_tokens": 4000, "completion_tokens": 300},
        "documents": [{"source": "budget/fy24.pdf", "pages": 2}, {"source": "omb-memo.pdf", "pages": 1}],
        "skipped_files": [{"path": "scan.pdf", "reason": "no extractable text (scanned image?)"}],
        "skipped_chunks": {"reference list": 1, "too short": 1},
        "question_filters": {"duplicate": 2},
        "failed_chunks": [{"chunk_id": "ffffffffffffffff", "source": "omb-memo.pdf", "page": 1,
                           "reason": "unparseable answer after 3 attempts"}],
        "timings": {"load": 0.1, "split": 0.0, "generate": 2.0, "write": 0.1},
        "split": {"method": "chunk", "seed": 7, "eval_fraction": 0.25},
    }
    manifest.update(overrides)
    return manifest


def write_contract_folder(out, manifest: dict | None = None, *, extra: bool = True) -> dict:
    """A real output folder through the writer the pipeline uses: 4 chunks, 8 questions, card rendered."""
    manifest = manifest or make_manifest()
    chunks = [
        ("a" * 16, "budget/fy24.pdf", 1, 0, "train", "The agency budget for fiscal year 2024 is 4 billion dollars."),
        ("b" * 16, "budget/fy24.pdf", 2, 0, "train", "Travel expenses require prior written approval by a director."),
        ("c" * 16, "omb-memo.pdf", 1, 0, "train", "Federal agencies must publish open data inventories yearly."),
        ("d" * 16, "omb-memo.pdf", 1, 1, "eval", "Zero trust architecture adoption is due by the end of 2026."),
    ]
    corpus = [{"id": cid, "text": text, "source": src, "page": page, "chunk_index": idx, "split": split}
              for cid, src, page, idx, split, text in chunks]
    questions = {
        "a" * 16: ["What is the agency budget for FY2024?", "How many dollars does the agency get in 2024?"],
        "b" * 16: ["Who approves travel expenses?", "Do travel expenses need approval?"],
        "c" * 16: ["How often must agencies publish data inventories?", "What must agencies publish yearly?"],
        "d" * 16: ["When is zero trust adoption due?", "Which architecture must be adopted by 2026?"],
    }
    queries = []
    for cid, src, page, _idx, split, _text in chunks:
        for n, q in enumerate(questions[cid]):
            queries.append({"id": f"q-{cid}-{n}", "text": q, "chunk_id": cid, "source": src, "page": page,
                            "bm25_rank": n + 1, "embed_rank": None if n else 1,
                            "extra_relevant_ids": ["c" * 16] if extra and cid == "d" * 16 and n == 1 else [],
                            "split": split})
    (out / ".synthqa").mkdir(parents=True, exist_ok=True)
    (out / ".synthqa" / "cache.sqlite").write_bytes(b"not uploaded")
    write_dataset(out, corpus=corpus, queries=queries, manifest=manifest, render_card=render_card)
    write_manifest(out, manifest)
    return manifest


def front_matter(text: str) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "card does not start with YAML front matter"
    return yaml.safe_load(match.group(1))


def test_metadata_fields_follow_the_hub_schema():
    text = render_card(make_manifest())
    meta = front_matter(text)
    assert meta["license"] == "other"
    assert meta["language"] == "en"
    assert meta["task_categories"] == ["sentence-similarity", "feature-extraction"]
    assert meta["size_categories"] == "n<1K"
    assert {"synthetic", "rag"} <= set(meta["tags"])
    assert meta["pretty_name"]
    card = DatasetCard(text)  # huggingface_hub's own parser, as the Hub uses it
    assert card.data.license == "other"
    configs = MetadataConfigs.from_dataset_card_data(card.data)  # datasets' own validation of `configs:`
    assert set(configs) == {"default", "queries", "corpus"}
    assert configs["default"]["default"] is True
    assert configs["queries"]["data_files"] == [{"split": "train", "path": "data/queries/train.parquet"},
                                                {"split": "eval", "path": "data/queries/eval.parquet"}]
    assert configs.get_default_config_name() == "default"
    # A written dataset's card names its content-fingerprinted files.
    written = make_manifest(data_files={"queries": {"train": "data/queries/train-0123456789.parquet"}})
    configs = MetadataConfigs.from_dataset_card_data(DatasetCard(render_card(written)).data)
    assert configs["queries"]["data_files"] == [{"split": "train", "path": "data/queries/train-0123456789.parquet"}]


def test_body_records_how_the_data_was_made():
    manifest = make_manifest()
    text = render_card(manifest)
    body = text.split("\n---\n", 1)[1]
    for needle in ("budget/fy24.pdf", "2 page(s)", "scan.pdf", "chunk size 1000", "overlap 200", "gpt-4o-mini",
                   "api.openai.com", "temperature 0.3", "seed 7", manifest["prompt"]["sha256"], "duplicate 2",
                   "reference list 1", "unparseable answer after 3 attempts", "25% of chunks",
                   "BatchSamplers.NO_DUPLICATES", "MatryoshkaLoss", "InformationRetrievalEvaluator",
                   "extra_relevant_ids", "single-hop", "Set the licence"):
        assert needle in body, needle
    # The prompt's own ``` cannot close its fence early: it sits in a longer fence, verbatim.
    assert "````text\n" + SYSTEM + "\n````" in body
    assert "```text\n" + USER + "\n```" in body


def test_old_manifest_without_optional_keys_still_renders():
    text = render_card({"counts": {"train_pairs": 1500, "eval_pairs": 20}})
    meta = front_matter(text)
    assert meta["size_categories"] == "1K<n<10K"
    assert "an unrecorded model" in text and "1520" in text
    DatasetCard(text)


def test_license_and_repo_id_are_used_when_given():
    text = render_card(make_manifest(), license="cc-by-4.0", repo_id="alice/omb-qa")
    assert front_matter(text)["license"] == "cc-by-4.0"
    assert 'load_dataset("alice/omb-qa", "queries"' in text
    assert "Set the licence" not in text


@pytest.mark.parametrize("n, label", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (250_000, "100K<n<1M")])
def test_size_category(n, label):
    assert size_category(n) == label


def test_fence_is_longer_than_any_backtick_run():
    assert fenced("a ```` b").startswith("`````text\n")


def test_datasets_loads_every_config_of_a_written_folder(tmp_path):
    out = tmp_path / "out"
    write_contract_folder(out)
    pairs = load_dataset(str(out))
    assert set(pairs) == {"train", "eval"}
    assert pairs["train"].column_names == ["sentence_0", "sentence_1"]
    assert (pairs["train"].num_rows, pairs["eval"].num_rows) == (6, 2)
    queries = load_dataset(str(out), "queries", split="eval")
    assert queries[1]["extra_relevant_ids"] == ["c" * 16]
    corpus = load_dataset(str(out), "corpus")
    assert corpus["eval"]["id"] == ["d" * 16]
    json.loads((out / "synthqa.json").read_text())  # the manifest sits beside the card


def test_tables_add_average_lengths_and_extras_note(tmp_path):
    out = tmp_path / "out"
    write_contract_folder(out)
    tables = load_tables(out)
    text = render_card(make_manifest(), tables=tables)
    pairs = [q for df in tables["pairs"].values() for q in df["sentence_0"]]
    assert f"Average question length: {round(sum(map(len, pairs)) / len(pairs))} characters" in text
    assert "plus the chunks listed in" in text
