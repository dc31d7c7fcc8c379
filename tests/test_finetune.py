"""synthqa finetune: a few real training steps on the CPU, then the saved model is reloaded and evaluated."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("sentence_transformers", reason="needs synthqa[eval] (torch, sentence-transformers)")
pytestmark = pytest.mark.eval

from test_evaluate import generate_dataset

from synthqa import evaluate as ev
from synthqa.cli import main
from synthqa.dataset import load_tables
from synthqa.errors import ConfigError, OutputError
from synthqa.finetune import finetune, format_comparison, matryoshka_dims


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("ft"), docs=3, pages=20)  # about 100 train pairs


def test_matryoshka_dims_follow_the_base_width():
    assert matryoshka_dims(384) == [384, 256, 128, 64]
    assert matryoshka_dims(768) == [768, 512, 256, 128, 64]


def test_finetune_a_few_steps_saves_a_model_that_reloads(dataset, tmp_path):
    out = tmp_path / "model"
    result = finetune(dataset, out, max_steps=4, batch_size=16, max_seq_length=128)
    assert result.steps == 4 and math.isfinite(result.training_loss) and result.training_loss > 0
    assert result.train_rows == len(load_tables(dataset)["pairs"]["train"]) >= 80
    assert result.matryoshka_dims == (384, 256, 128, 64)
    card = (out / "README.md").read_text()
    assert "MatryoshkaLoss" in card and "MultipleNegativesRankingLoss" in card and "no_duplicates" in card
    assert not (out / "checkpoints").exists()
    assert set(result.before.rows) == {"base", "base@256", "base@128", "base@64", "bm25"}
    assert set(result.after.rows) == {"finetuned", "finetuned@256", "finetuned@128", "finetuned@64"}
    assert result.after.rows != result.before.rows  # the weights moved
    reloaded = ev.evaluate(dataset, model=str(out), bm25=False)
    assert reloaded.rows[out.name]["ndcg@10"] == pytest.approx(result.after.rows["finetuned"]["ndcg@10"], abs=1e-6)
    table = format_comparison(result)
    assert "| ndcg@10" in table and "dim 64" in table


def test_refuses_a_non_empty_output_folder(dataset, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(OutputError, match="not an empty folder"):
        finetune(dataset, tmp_path / "taken", max_steps=1)


@pytest.mark.parametrize("kwargs,flag", [({"batch_size": 1}, "--batch-size"), ({"lr": 5.0}, "--lr"),
                                         ({"max_steps": 0}, "--max-steps"), ({"epochs": 0}, "--epochs")])
def test_bad_options_are_config_errors(dataset, tmp_path, kwargs, flag):
    with pytest.raises(ConfigError, match=flag):
        finetune(dataset, tmp_path / "m", **kwargs)


def test_cli_with_hard_negatives_prints_before_after(dataset, tmp_path, capsys):
    code = main(["finetune", str(dataset), "-o", str(tmp_path / "cli"), "--max-steps", "2", "--batch-size", "8",
                 "--max-seq-length", "64", "--hard-negatives", "2"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "finetuned" in printed and "change" in printed and "model saved to" in printed
    assert "negative_2" in (tmp_path / "cli" / "README.md").read_text()  # trained on mined n-tuples
