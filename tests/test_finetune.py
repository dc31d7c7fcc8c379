"""synthqa finetune: real training steps on the CPU, on real text (the corpora, questions by the fake server).

What the loss receives is read at the loss itself (MatryoshkaLoss.forward wrapped, then called as it was);
the Hub is replaced by recorders at HfApi.create_repo/upload_folder, as in test_hub.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("sentence_transformers", reason="needs synthqa[eval] (torch, sentence-transformers)")
pytestmark = pytest.mark.eval

from e2e import CORPORA, cli_env, generate, run_cli
from fakeserver import FakeOpenAI
from huggingface_hub import HfApi
from manifests import make_manifest, write_contract_folder

import synthqa
from synthqa import evaluate as ev
from synthqa.dataset import load_tables
from synthqa.errors import ConfigError, DatasetError, HubError, OutputError
from synthqa.finetune import (
    FinetuneResult,
    finetune,
    format_comparison,
    matryoshka_dims,
)
from synthqa.finetune.card import add_recipe, dataset_source, recipe_section
from synthqa.finetune.negatives import FalseNegatives, NegativeStats, add_hard_negatives
from synthqa.finetune.progress import LOG_NAME, epoch_line
from synthqa.hub import NO_TOKEN
from synthqa.models import bundled_model_path, encoding_prompts, load_model

QUERY_PROMPT, DOCUMENT_PROMPT = "query: ", "passage: "
SMALL = {"max_steps": 2, "batch_size": 8, "max_seq_length": 64}  # a real run, kept short


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """The corpora's first 40 chunks: distinct real text, so chunks that share none with a positive exist."""
    out = tmp_path_factory.mktemp("ft") / "out"
    with FakeOpenAI() as fake:
        proc = generate(CORPORA, out, fake, "--limit", "40")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def prompted_model(tmp_path_factory) -> Path:
    """The bundled MiniLM saved with a query and a document prompt, as snowflake-arctic-embed-m declares one."""
    from sentence_transformers import SentenceTransformer

    folder = tmp_path_factory.mktemp("prompted") / "minilm-prompted"
    SentenceTransformer(str(bundled_model_path()), prompts={"query": QUERY_PROMPT, "document": DOCUMENT_PROMPT}).save(
        str(folder))
    return folder


@pytest.fixture
def loss_inputs(monkeypatch) -> list[list[str]]:
    """The texts each call of the loss receives, one list per column, decoded from its token ids."""
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss

    seen: list[list[str]] = []
    original = MatryoshkaLoss.forward

    def spy(self, sentence_features, labels):
        tokenizer = self.model.tokenizer
        seen.extend([tokenizer.batch_decode(f["input_ids"], skip_special_tokens=True) for f in sentence_features])
        return original(self, sentence_features, labels)

    monkeypatch.setattr(MatryoshkaLoss, "forward", spy)
    return seen


@pytest.fixture
def hub_calls(monkeypatch, tmp_path) -> list[tuple[str, dict]]:
    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create_repo", {"repo_id": repo_id, **kw})))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: calls.append(("upload_folder", kw)))
    monkeypatch.setenv("HF_TOKEN", "hf_test_token_not_real")
    return calls


def test_matryoshka_dims_follow_the_base_width():
    assert matryoshka_dims(384) == [384, 256, 128, 64]
    assert matryoshka_dims(768) == [768, 512, 256, 128, 64]


def test_the_models_prompts_reach_the_loss_and_evaluation_encodes_queries_the_same_way(
        dataset, prompted_model, loss_inputs, hub_calls, tmp_path):
    out = tmp_path / "model"
    result = finetune(dataset, out, base_model=str(prompted_model), push_to_hub="alice/minilm-policy", **SMALL)
    # one list per column per step: sentence_0 (questions), sentence_1 (chunks)
    assert len(loss_inputs) == 2 * SMALL["max_steps"] and len(loss_inputs[0]) == SMALL["batch_size"]
    assert all(q.startswith("query :") for column in loss_inputs[0::2] for q in column)  # uncased "query: "
    assert all(c.startswith("passage :") for column in loss_inputs[1::2] for c in column)
    assert (result.query_prompt, result.document_prompt) == (QUERY_PROMPT, DOCUMENT_PROMPT)

    # evaluate() encodes a question exactly as the prompt-prefixed text the loss was given
    model = load_model(out)
    assert encoding_prompts(model) == (QUERY_PROMPT, DOCUMENT_PROMPT)  # saved with the model
    question = load_tables(dataset)["queries"]["eval"]["text"][0]
    q_emb, _ = ev.embed(model, [question], ["x"])
    assert q_emb[0].tolist() == pytest.approx(model.encode([QUERY_PROMPT + question])[0].tolist(), abs=1e-5)
    assert q_emb[0].tolist() != pytest.approx(model.encode([question])[0].tolist(), abs=1e-3)
    # the trainer's evaluator (sentence-transformers') and evaluate() agree on the final model
    final = float(result.epoch_lines[-1].split("ndcg@10 ")[1].split()[0])
    assert final == pytest.approx(result.after.rows["finetuned"]["ndcg@10"], abs=1e-4)
    assert ev.evaluate(dataset, model=str(out), bm25=False).rows["model"]["ndcg@10"] == pytest.approx(
        result.after.rows["finetuned"]["ndcg@10"], abs=1e-6)

    assert result.steps == 2 and math.isfinite(result.training_loss) and result.training_loss > 0
    assert result.train_rows == len(load_tables(dataset)["pairs"]["train"])
    assert set(result.before.rows) == {"base", "base@256", "base@128", "base@64", "bm25"}
    assert set(result.after.rows) == {"finetuned", "finetuned@256", "finetuned@128", "finetuned@64"}
    table = format_comparison(result)
    assert all(f"| {m}" in table for m in ev.METRICS) and "dim 64" in table and "| bm25" in table
    assert not (out / "checkpoints").exists()

    card = (out / "README.md").read_text()
    assert "## Training data (synthqa)" in card and card.index("## Training data") < card.index("## Model Details")
    assert f"**Prompts:** query `{QUERY_PROMPT!r}`, document `{DOCUMENT_PROMPT!r}`" in card and "minilm-prompted" in card
    assert "| ndcg@10" in card and f"`{dataset.name}`" in card
    assert 'SentenceTransformer("alice/minilm-policy")' in card  # the usage snippet names the Hub id
    (create_name, create), (upload_name, upload) = hub_calls
    assert (create_name, create["repo_id"], create["repo_type"]) == ("create_repo", "alice/minilm-policy", "model")
    assert upload_name == "upload_folder" and upload["repo_type"] == "model" and upload["folder_path"] == str(out)
    assert result.url == "https://huggingface.co/alice/minilm-policy"


def test_cli_output_is_one_bar_one_line_per_evaluation_and_the_table(dataset, tmp_path):
    out = tmp_path / "cli"
    proc = run_cli("finetune", dataset, "-o", out, "--max-steps", "2", "--batch-size", "8", "--max-seq-length", "64",
                   "--hard-negatives", "2", "--query-prompt", "search: ", timeout=900)
    assert proc.returncode == 0, proc.stderr
    for noise in ("{'loss'", "eval_cosine", "Computing widget examples", "Batches", "Computing similarity"):
        assert noise not in proc.stderr + proc.stdout, noise
    evaluations = [line for line in proc.stderr.splitlines() if "ndcg@10" in line]
    assert len(evaluations) == 1 and "step 2/2" in evaluations[0] and "accuracy@1" in evaluations[0]
    assert "hard negatives: 2 per pair for all" in proc.stderr and "training" in proc.stderr
    assert "| ndcg@10" in proc.stdout and f"training log: {out / LOG_NAME}" in proc.stdout
    entries = [json.loads(line) for line in (out / LOG_NAME).read_text().splitlines()]
    assert entries[0]["query_prompt"] == "search: " and any("loss" in e for e in entries)
    assert any("eval_cosine_ndcg@10" in e for e in entries)  # the full log keeps every metric
    assert "negative_2" in (out / "README.md").read_text()  # trained on (question, chunk, 2 negatives)
    assert json.loads((out / "config_sentence_transformers.json").read_text())["prompts"]["query"] == "search: "


def test_hard_negatives_keep_every_pair_and_never_share_text_with_the_positive(dataset):
    tables = load_tables(dataset)
    queries, corpus = tables["queries"]["train"], tables["corpus"]["train"]
    model = load_model(None, max_seq_length=64)
    false = FalseNegatives.of_corpus(corpus)
    id_of = {text: cid for cid, text in zip(corpus["id"], corpus["text"])}
    filled = []
    # a margin of 0.9 (negatives below 10 % of the positive's score) leaves few candidates: random fill
    for margin in (0.05, 0.9):
        train, stats = add_hard_negatives(queries, corpus, model, 2, margin, 0, 16, seed=1)
        assert len(train) == len(queries) == stats.pairs  # nothing dropped
        assert stats.mined + stats.random == 2 * len(queries)
        filled.append(stats.pairs_with_random)
        for row, own, extras in zip(train, queries["chunk_id"], queries["extra_relevant_ids"]):
            for neg in (row["negative_1"], row["negative_2"]):
                assert not false.refuses(own, list(extras), id_of[neg])
    assert filled[0] < len(queries) // 10 < filled[1]


def test_false_negatives_are_own_extra_neighbours_and_shared_passages():
    shared = "Agencies must keep a public inventory of every automated system that affects the rights of people. " * 2
    false = FalseNegatives(
        ids=["own", "next", "other-page", "repeat", "far", "extra"],
        texts=["The own chunk about impact assessments and notices. " + shared, "A neighbour on the same page.",
               "Different page, same index neighbour.", "Another document repeats it: " + shared,
               "Entirely unrelated text on procurement.", "Recorded as answering too."],
        sources=["a.pdf", "a.pdf", "a.pdf", "b.pdf", "a.pdf", "a.pdf"], pages=[3, 3, 4, 1, 9, 7],
        chunk_indices=[0, 1, 1, 0, 5, 2])
    refused = {cid for cid in ["own", "next", "other-page", "repeat", "far", "extra"] if false.refuses("own", ["extra"], cid)}
    assert refused == {"own", "next", "repeat", "extra"}


def test_the_card_links_a_dataset_on_the_hub_and_states_the_recipe(tmp_path):
    folder = tmp_path / "policy"
    write_contract_folder(folder, make_manifest(repo_id="alice/policy-qa"))
    source = dataset_source(str(folder), folder)  # a local folder that was pushed: named by its Hub id
    assert (source.name, source.hub_id) == ("alice/policy-qa", "alice/policy-qa")
    assert dataset_source("bob/qa", folder).hub_id == "bob/qa"  # fetched by its id
    plain = tmp_path / "plain"
    write_contract_folder(plain)
    assert (dataset_source(str(plain), plain).name, dataset_source(str(plain), plain).hub_id) == ("plain", None)
    half = {m: 0.5 for m in ev.METRICS}
    before = ev.EvalReport("x", "eval", "base", 2, 4, {"base": half, "base@64": half, "bm25": half})
    after = ev.EvalReport("x", "eval", "finetuned", 2, 4, {"finetuned": {m: 0.75 for m in ev.METRICS},
                                                           "finetuned@64": half})
    stats = NegativeStats(per_pair=1, pairs=6, mined=5, random=1, pairs_with_random=1, refused=2, margin=0.05,
                          range_min=0)
    result = FinetuneResult("m", "all-MiniLM-L6-v2", source.name, 6, 3, 1.25, (384, 64), 9.0, before, after,
                            "Represent this sentence for searching relevant passages: ", "", stats, (), "m/log")
    text = recipe_section(result, source)
    assert "[alice/policy-qa](https://huggingface.co/datasets/alice/policy-qa)" in text
    assert "questions written by `gpt-4o-mini`" in text and "**all-MiniLM-L6-v2**" in text
    assert "query `'Represent this sentence for searching relevant passages: '`, document none" in text
    assert "5 mined by the base model (margin 0.05), 1 random" in text and "3 steps, 6 rows" in text
    assert "| ndcg@10      |   0.5000 |    0.7500 |  +0.2500 |" in text and "| dim 64" in text
    card = tmp_path / "README.md"
    card.write_text("# model\n\nintro\n\n## Model Details\n\nmore\n")
    add_recipe(card, text)
    assert card.read_text().index("## Training data (synthqa)") < card.read_text().index("## Model Details")


def test_epoch_line_names_the_epoch_and_the_two_metrics():
    args = SimpleNamespace(eval_strategy="epoch", num_train_epochs=5)
    state = SimpleNamespace(epoch=2.0, global_step=66, max_steps=165)
    line = epoch_line(args, state, {"eval_cosine_ndcg@10": 0.84123, "eval_cosine_accuracy@1": 0.75,
                                    "eval_cosine_accuracy@10": 1.0}, 0.42114)
    assert line == "epoch 2/5  ndcg@10 0.8412  accuracy@1 0.7500  loss 0.4211"


def test_push_without_a_token_fails_before_any_training(dataset, tmp_path):
    env = {k: v for k, v in cli_env().items() if not k.startswith("HF_")}
    env.update({"HF_HOME": str(tmp_path / "empty_hf_home"), "HF_HUB_OFFLINE": "1",
                "PYTHONPATH": str(Path(synthqa.__file__).resolve().parents[1])})
    proc = subprocess.run([sys.executable, "-m", "synthqa", "finetune", str(dataset), "-o", str(tmp_path / "m"),
                           "--push-to-hub", "alice/minilm-policy"], check=False, capture_output=True, text=True, env=env,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == HubError.exit_code
    assert proc.stderr.strip() == f"synthqa: error: {NO_TOKEN}"
    assert not (tmp_path / "m").exists()


def test_a_failed_push_keeps_the_model_and_says_how_to_push_it(dataset, hub_calls, monkeypatch, tmp_path):
    def offline(self, repo_id, **kw):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(HfApi, "create_repo", offline)
    out = tmp_path / "kept"
    with pytest.raises(HubError) as info:
        finetune(dataset, out, push_to_hub="alice/minilm-policy", max_steps=1, batch_size=8, max_seq_length=32)
    message = str(info.value)
    assert "\n" not in message and f"hf upload alice/minilm-policy {out}" in message
    assert (out / "model.safetensors").exists() and "## Training data (synthqa)" in (out / "README.md").read_text()


def test_refuses_a_non_empty_output_folder(dataset, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(OutputError, match="not an empty folder"):
        finetune(dataset, tmp_path / "taken", max_steps=1)


@pytest.mark.parametrize("kwargs,flag", [({"batch_size": 1}, "--batch-size"), ({"lr": 5.0}, "--lr"),
                                         ({"max_steps": 0}, "--max-steps"), ({"epochs": 0}, "--epochs"),
                                         ({"negative_margin": 1.5}, "--negative-margin"),
                                         ({"hard_negatives": 21}, "--hard-negatives")])
def test_bad_options_are_config_errors(dataset, tmp_path, kwargs, flag):
    with pytest.raises(ConfigError, match=flag):
        finetune(dataset, tmp_path / "m", **kwargs)


def test_a_missing_base_model_names_the_option(dataset, tmp_path):
    with pytest.raises(ConfigError, match="--base-model .*nope: no such folder"):
        finetune(dataset, tmp_path / "m", base_model=str(tmp_path / "nope"))


def test_a_dataset_without_an_eval_split_is_refused_before_any_training(tmp_path):
    with FakeOpenAI() as fake:
        proc = generate(CORPORA, tmp_path / "tiny", fake, "--limit", "3")  # one page: train split only
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(DatasetError, match="has no eval split .* generate from more pages"):
        finetune(tmp_path / "tiny", tmp_path / "m", max_steps=1)
    assert not (tmp_path / "m").exists()


def test_a_train_split_without_possible_negatives_is_one_clear_error(tmp_path):
    """Every chunk of the policy-folder PDFs repeats paragraphs of the others: no chunk can be a negative.
    (Without cleaning: it removes the paragraphs the pages repeat as running heads.)"""
    from test_evaluate import generate_dataset

    folder = generate_dataset(tmp_path, 1, 3, "--no-clean")
    with pytest.raises(DatasetError, match="--hard-negatives 0"):
        finetune(folder, tmp_path / "m", hard_negatives=1, max_steps=1)
    assert not any((tmp_path / "m").glob("*.safetensors"))
