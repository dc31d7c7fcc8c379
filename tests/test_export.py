"""`synthqa export`: each format loaded by its tool's own loader (BEIR, `datasets`), RAGAS by its schema."""

from __future__ import annotations

import json

import datasets
import pytest
from beir.datasets.data_loader import GenericDataLoader

from e2e import run_cli
from manifests import CHUNKS, QUESTIONS, SKIPPED, answer_of, write_contract_folder
from synthqa.curate import Decision, append_decision
from synthqa.errors import OutputError
from synthqa.export import export_dataset, write_files

TEXT = {cid: text for cid, _src, _page, _idx, _split, text in CHUNKS}
SKIPPED_TEXT = {cid: text for cid, _src, _page, _idx, _split, text, _reason in SKIPPED}
SPLIT = {cid: split for cid, _src, _page, _idx, split, _text in CHUNKS}
EXTRA = ("q-" + "d" * 16 + "-1", "c" * 16)  # the contract folder's one question with an extra relevant chunk
# RAGAS' SingleTurnSample (ragas.dataset_schema, 0.4.3): the fields and the types this export fills in.
RAGAS_FIELDS = {"user_input", "retrieved_contexts", "reference_contexts", "retrieved_context_ids",
                "reference_context_ids", "response", "multi_responses", "reference", "rubrics", "persona_name",
                "query_style", "query_length"}


@pytest.fixture
def out(tmp_path):
    write_contract_folder(tmp_path / "out", answers=True)
    return tmp_path / "out"


def export(out, fmt, dest):
    proc = run_cli("export", out, "--format", fmt, "-o", dest)
    assert proc.returncode == 0, proc.stderr
    return proc


def questions_of(split):
    return {f"q-{cid}-{n}": q for cid, qs in QUESTIONS.items() if SPLIT[cid] == split for n, q in enumerate(qs)}


def test_beir_export_loads_with_beirs_generic_data_loader(out, tmp_path):
    proc = export(out, "beir", tmp_path / "beir")
    assert "6 train, 2 eval question(s) and 6 chunks" in proc.stdout and "GenericDataLoader" in proc.stdout
    corpus, queries, qrels = GenericDataLoader(str(tmp_path / "beir")).load(split="test")
    # one corpus: every chunk, those the chunk filters skipped too (distractors no qrel points at)
    assert corpus == {cid: {"text": text, "title": ""} for cid, text in {**TEXT, **SKIPPED_TEXT}.items()}
    metadata = [json.loads(line)["metadata"] for line in (tmp_path / "beir" / "corpus.jsonl").read_text().splitlines()]
    assert sorted(m["skip_reason"] for m in metadata) == ["", "", "", "", "reference list", "too short"]
    assert queries == questions_of("eval")
    qid, extra = EXTRA
    assert qrels[qid] == {"d" * 16: 1, extra: 1}  # the extra relevant chunk is a qrel too
    assert all(qrels[q] == {q.split("-")[1]: 1} for q in queries if q != qid)
    _, train_queries, train_qrels = GenericDataLoader(str(tmp_path / "beir")).load(split="train")
    assert train_queries == questions_of("train") and set(train_qrels) == set(train_queries)


def test_ragas_export_has_ragas_single_turn_columns(out, tmp_path):
    done = export_dataset(out, "ragas", tmp_path / "ragas")
    assert done.files == ("eval.jsonl", "train.jsonl") and done.without_answer == 0
    for split in ("train", "eval"):
        lines = (tmp_path / "ragas" / f"{split}.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines]
        assert len(rows) == len(questions_of(split))
        for row in rows:
            assert set(row) <= RAGAS_FIELDS
            assert row["reference"] == answer_of(row["user_input"])
            assert all(isinstance(c, str) for c in row["reference_contexts"])
            assert row["reference_contexts"] == [TEXT[cid] for cid in row["reference_context_ids"]]
            assert row["user_input"] in questions_of(split).values()
    evals = [json.loads(line) for line in (tmp_path / "ragas" / "eval.jsonl").read_text().splitlines()]
    assert sorted(len(r["reference_contexts"]) for r in evals) == [1, 2]  # own chunk, and one extra


def test_ragas_export_without_answers_says_how_to_get_them(tmp_path):
    write_contract_folder(tmp_path / "plain")
    proc = run_cli("export", tmp_path / "plain", "--format", "ragas", "-o", tmp_path / "ragas")
    assert proc.returncode == 1 and "--answers" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ragas").exists()


def test_jsonl_export_loads_with_datasets(out, tmp_path):
    export_dataset(out, "jsonl", tmp_path / "jsonl")
    loaded = datasets.load_dataset("json", data_files={s: str(tmp_path / "jsonl" / f"{s}.jsonl")
                                                       for s in ("train", "eval")})
    for split in ("train", "eval"):
        assert dict(zip(loaded[split]["id"], loaded[split]["question"])) == questions_of(split)
        for row in loaded[split]:
            assert row["chunk"] == TEXT[row["chunk_id"]] and row["answer"] == answer_of(row["question"])
            assert row["relevant_chunk_ids"][0] == row["chunk_id"]


def test_export_warns_about_decisions_not_applied_yet(out, tmp_path):
    append_decision(out, Decision.now("q-" + "a" * 16 + "-0", "reject", QUESTIONS["a" * 16][0]))
    proc = export(out, "jsonl", tmp_path / "jsonl")
    assert "1 decision(s) in curation.jsonl are not applied yet" in proc.stderr and "synthqa curate" in proc.stderr


def test_export_never_writes_into_someone_elses_folder(out, tmp_path):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="notes.txt"):
        export_dataset(out, "beir", dest)
    assert sorted(dest.iterdir()) == [dest / "notes.txt"]


def test_a_re_export_replaces_its_own_files_and_removes_stale_ones(tmp_path):
    own = {"corpus.jsonl", "queries.jsonl", "qrels/train.tsv", "qrels/test.tsv"}
    write_files(tmp_path, {"corpus.jsonl": ["a"], "queries.jsonl": ["b"], "qrels/train.tsv": ["h"],
                           "qrels/test.tsv": ["h"]}, own)
    write_files(tmp_path, {"corpus.jsonl": ["A"], "queries.jsonl": ["B"], "qrels/train.tsv": ["H"]}, own)
    assert not (tmp_path / "qrels" / "test.tsv").exists()  # the eval split is gone: so is its old qrels file
    assert (tmp_path / "corpus.jsonl").read_text() == "A\n"
    with pytest.raises(OutputError, match="is a file"):
        write_files(tmp_path / "corpus.jsonl", {}, own)
