"""The dataset card: Hub metadata parses, the configs load with `datasets`, provenance is all there."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from datasets import load_dataset
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard

from manifests import SYSTEM, USER, make_manifest, write_contract_folder
from synthqa.card import fenced, render_card, size_category
from synthqa.manifest import Document, LanguageCount

def front_matter(text: str) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "card does not start with YAML front matter"
    return yaml.safe_load(match.group(1))


def test_metadata_fields_follow_the_hub_schema():
    text = render_card(make_manifest())
    meta = front_matter(text)
    assert meta["license"] == "other"
    assert meta["language"] == ["en"] and meta["multilinguality"] == "monolingual"
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
                   "api.openai.com", "temperature 0.3", "seed 7", manifest.prompt.sha256, "duplicate 2",
                   "reference list 1", "unparseable answer after 3 attempts", "25% of chunks",
                   "BatchSamplers.NO_DUPLICATES", "MatryoshkaLoss", "InformationRetrievalEvaluator",
                   "extra_relevant_ids", "single-hop", "Set the licence"):
        assert needle in body, needle
    # The prompt's own ``` cannot close its fence early: it sits in a longer fence, verbatim.
    assert "````text\n" + SYSTEM + "\n````" in body
    assert "```text\n" + USER + "\n```" in body


def test_card_says_what_cleaning_and_ocr_did_per_document():
    body = render_card(make_manifest()).split("\n---\n", 1)[1]
    assert ("`budget/fy24.pdf` — 2 page(s); cleaning: 2 running-head/footer line(s) removed, 2 page number(s) "
            "removed, 3 line-break hyphen(s) joined, 12 character(s) normalised") in body
    assert "`omb-memo.pdf` — 1 page(s), 1 read by OCR; cleaning: nothing to change" in body
    assert "12 characters normalised (ligatures, full-width forms), 3 line-break hyphens joined (1 compounds " \
           "kept), 2 running-head/footer lines and 2 page numbers removed" in " ".join(body.split())
    assert "misread characters" in body  # OCR's known limit, only when pages were read by OCR
    raw = make_manifest(options={"clean": False}, documents=(Document("a.pdf", 2, None, 0, 0.0, 3, 0, 8, 0),))
    body = render_card(raw).split("\n---\n", 1)[1]
    assert "kept as extracted (`--no-clean`)" in body and "`a.pdf` — 2 page(s)\n" in body
    assert "misread characters" not in body and "read by OCR" not in body


def test_size_category_and_counts_come_from_the_manifest():
    manifest = make_manifest(counts={"train_pairs": 1500, "eval_pairs": 20})
    text = render_card(manifest)
    assert front_matter(text)["size_categories"] == "1K<n<10K"
    assert "| 1520 |" in text
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
    assert corpus["eval"]["id"] == ["d" * 16, "f" * 16]  # the chunks skipped before asking are in the corpus too
    assert corpus["eval"]["skip_reason"] == ["", "too short"]
    json.loads((out / "synthqa.json").read_text())  # the manifest sits beside the card


def test_card_states_extra_relevant_chunks_exactly_when_the_data_has_them():
    with_extras = render_card(make_manifest())
    assert "plus the chunks listed in" in with_extras and "count as misses" not in with_extras
    without = render_card(make_manifest(counts={"questions_with_extra_relevant": 0}))
    assert "count as misses" in without and "plus the chunks listed in" not in without


def test_card_of_a_dataset_without_eval_split_says_so_and_has_no_eval_snippet():
    files = {name: {"train": f"data/{name}/train-0123456789.parquet"} for name in ("default", "queries", "corpus")}
    text = render_card(make_manifest(data_files=files, counts={"eval_pairs": 0, "eval_chunks": 0}))
    configs = MetadataConfigs.from_dataset_card_data(DatasetCard(text).data)
    assert all([f["split"] for f in c["data_files"]] == ["train"] for c in configs.values())
    assert "no eval split" in text and 'split="eval"' not in text and 'pairs["eval"]' not in text
    assert "its few chunks all share overlap text" in text
    # Eval chunks whose every question was filtered out: the card says that, not that nothing could be split.
    text = render_card(make_manifest(data_files=files, counts={"eval_pairs": 0, "eval_chunks": 1}))
    assert "no question about its 1 eval\nchunk(s) passed the question filters" in text
    assert "its few chunks all share overlap text" not in text


def test_card_language_lists_the_detected_languages_most_chunks_first():
    languages = {"fr": LanguageCount(5, 9), "en": LanguageCount(2, 4), "und": LanguageCount(1, 0)}
    text = render_card(make_manifest(languages=languages))
    meta = front_matter(text)
    assert meta["language"] == ["fr", "en"] and meta["multilinguality"] == "multilingual"
    assert "French (fr): 5 chunk(s), 9 question(s); English (en): 2 chunk(s), 4 question(s); undetermined (und)" in text
    nothing = front_matter(render_card(make_manifest(languages={"und": LanguageCount(1, 2)})))
    assert "language" not in nothing
