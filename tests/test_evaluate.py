"""synthqa evaluate: metrics from one shared function, cross-checked against sentence-transformers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

st = pytest.importorskip("sentence_transformers", reason="needs synthqa[eval] (torch, sentence-transformers)")
pytestmark = pytest.mark.eval

from e2e import make_policy_folder
from fakeserver import FakeOpenAI

from synthqa import evaluate as ev
from synthqa.cli import main
from synthqa.retrieval import ir_evaluator_inputs
from synthqa.errors import ConfigError, DatasetError


def generate_dataset(folder: Path, docs: int = 3, pages: int = 10, *options: str) -> Path:
    """A real dataset: small PDFs → `synthqa generate` against the fake OpenAI server on 127.0.0.1."""
    make_policy_folder(folder / "docs", docs=docs, pages=pages)
    out = folder / "out"
    with FakeOpenAI() as fake, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", "sk-test")
        code = main(["generate", str(folder / "docs"), "-o", str(out), "--base-url", fake.base_url, "--no-progress",
                     *options])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("ds"))


@pytest.fixture(scope="module")
def minilm():
    return ev.load_model(None)


def test_ranking_metrics_by_hand():
    # q1: relevant at rank 2 of 3; q2: two relevant docs at ranks 1 and 3; q3: nothing relevant → skipped
    m = ev.ranking_metrics([["a", "b", "c"], ["x", "y", "z"], ["a"]], [{"b"}, {"x", "z"}, set()])
    assert m["accuracy@1"] == 0.5 and m["accuracy@3"] == 1.0
    assert m["precision@3"] == pytest.approx((1 / 3 + 2 / 3) / 2)
    assert m["recall@1"] == pytest.approx((0 + 0.5) / 2)
    assert m["mrr@10"] == pytest.approx((0.5 + 1) / 2)
    assert m["map@100"] == pytest.approx((0.5 + (1 + 2 / 3) / 2) / 2)
    ndcg2 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert m["ndcg@10"] == pytest.approx((1 / math.log2(3) + ndcg2) / 2)


def test_ties_are_broken_by_corpus_id_not_position():
    assert ev.rank_by_scores([[1.0, 2.0, 2.0, 0.5]], ["d", "c", "b", "a"]) == [["b", "c", "d", "a"]]


def test_metric_function_matches_the_evaluator_on_the_same_ranking(dataset):
    """Feed the BM25 ranking to the evaluator's own compute_metrics and to ours: same numbers."""
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
    )

    queries, corpus, relevant = ir_evaluator_inputs(dataset)
    qids, cids = list(queries), list(corpus)
    scores = ev.bm25_scores([queries[q] for q in qids], [corpus[c] for c in cids])
    ours = ev.ranking_metrics(ev.rank_by_scores(scores, cids), [relevant[q] for q in qids])
    evaluator = InformationRetrievalEvaluator(queries, corpus, relevant)
    hits = [[{"corpus_id": cids[j], "score": float(s)} for j, s in enumerate(row)] for row in scores]
    theirs = evaluator.compute_metrics(hits)
    flat = {f"{name.replace('@k', '')}@{k}": v for name, by_k in theirs.items() for k, v in by_k.items()}
    assert set(flat) == set(ours)
    for name, value in ours.items():
        assert value == pytest.approx(float(flat[name]), abs=1e-12), name


def test_evaluate_rows_dims_and_agreement_with_the_evaluator(dataset, minilm):
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
    )

    report = ev.evaluate(dataset, model=minilm, dims=[384, 256, 64], label="minilm")
    assert list(report.rows) == ["minilm", "minilm@256", "minilm@64", "bm25"]
    queries, corpus, relevant = ir_evaluator_inputs(dataset)
    assert report.queries == len(queries) > 0 and report.corpus == len(corpus) > 1
    for row in report.rows.values():
        assert list(row) == list(ev.METRICS)
        assert all(0.0 <= v <= 1.0 for v in row.values())
    # the full-width row is the evaluator's result; the 64-wide row is the evaluator's truncate_dim result
    for dim, row in ((None, "minilm"), (64, "minilm@64")):
        res = InformationRetrievalEvaluator(queries, corpus, relevant, name="x", truncate_dim=dim)(minilm)
        for metric, value in report.rows[row].items():
            assert value == pytest.approx(res[f"x_cosine_{metric}"], abs=1e-9), (row, metric)
    assert report.rows["minilm@64"] != report.rows["minilm"]  # truncation really changed the vectors


def test_dims_wider_than_the_model_are_refused(dataset, minilm):
    with pytest.raises(ConfigError, match="512 exceed .* 384"):
        ev.evaluate(dataset, model=minilm, dims=[512], bm25=False)


@pytest.mark.parametrize("text", ["384,abc", "0", "-5"])
def test_parse_dims_rejects_bad_values(text):
    with pytest.raises(ConfigError, match="--dims"):
        ev.parse_dims(text)


def test_cli_prints_table_and_writes_json(dataset, tmp_path, capsys):
    out_file = tmp_path / "res" / "r.json"
    assert main(["evaluate", str(dataset), "--dims", "128", "--output", str(out_file)]) == 0
    printed = capsys.readouterr().out
    assert "| ndcg@10" in printed and "all-MiniLM-L6-v2@128" in printed and "bm25" in printed
    data = json.loads(out_file.read_text())
    assert data["split"] == "eval" and set(data["rows"]) == {"all-MiniLM-L6-v2", "all-MiniLM-L6-v2@128", "bm25"}
    assert data["rows"]["bm25"] == pytest.approx(ev.evaluate(dataset, model=None, bm25=True).rows["bm25"])


def test_cli_default_output_is_outside_data(dataset, capsys):
    assert main(["evaluate", str(dataset), "--no-bm25"]) == 0
    path = dataset / ".synthqa" / "eval-all-MiniLM-L6-v2-eval-all.json"
    assert json.loads(path.read_text())["rows"].keys() == {"all-MiniLM-L6-v2"}
    assert str(path) in capsys.readouterr().out


def test_output_inside_data_is_refused(dataset, capsys):
    assert main(["evaluate", str(dataset), "--no-bm25", "--output", str(dataset / "data" / "x.json")]) == 2
    assert "never write inside a dataset's data/ folder" in capsys.readouterr().err


def test_bad_inputs_give_one_line(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("synthqa: error:") and "has no synthqa.json" in err and "Traceback" not in err


def test_missing_model_folder_is_one_line(dataset, tmp_path, capsys):
    assert main(["evaluate", str(dataset), "--model", str(tmp_path / "nope")]) == 2
    assert "--model" in capsys.readouterr().err


def test_empty_relevant_everywhere_is_a_dataset_error():
    with pytest.raises(DatasetError):
        ev.ranking_metrics([["a"]], [set()])
