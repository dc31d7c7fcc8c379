"""`synthqa generate` end to end through the CLI, against a real fake-OpenAI server on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from e2e import CORPORA, cli_env, generate, make_policy_folder, read_out, run_cli, spans
from fakeserver import FakeOpenAI


@pytest.fixture
def docs(tmp_path) -> Path:
    return make_policy_folder(tmp_path / "docs", docs=3, pages=4)


def test_output_contract_on_generated_pdfs(docs, tmp_path, fake_server):
    out = tmp_path / "out"
    proc = generate(docs, out, fake_server, embed=True)
    assert proc.returncode == 0, proc.stderr

    pairs = datasets.load_dataset(str(out))
    assert set(pairs) == {"train", "eval"}
    for split in ("train", "eval"):
        assert pairs[split].column_names == ["sentence_0", "sentence_1"]
        assert len(pairs[split]) > 0
    queries = datasets.load_dataset(str(out), "queries")
    corpus = datasets.load_dataset(str(out), "corpus")
    assert {"id", "text", "chunk_id"} <= set(queries["eval"].column_names)
    assert {"id", "text", "source", "page"} <= set(corpus["eval"].column_names)

    # Every pair is (question, its own chunk's text), and every question came from that chunk.
    text_of = {r["id"]: r["text"] for s in ("train", "eval") for r in corpus[s]}
    for split in ("train", "eval"):
        for q, pair in zip(queries[split], pairs[split]):
            assert pair == {"sentence_0": q["text"], "sentence_1": text_of[q["chunk_id"]]}

    manifest = json.loads((out / "synthqa.json").read_text())
    counts = manifest["counts"]
    assert counts["documents"] == 3 and counts["pages"] == 12
    assert counts["questions"] == len(pairs["train"]) + len(pairs["eval"])
    assert counts["train_pairs"] == len(pairs["train"]) and counts["eval_pairs"] == len(pairs["eval"])
    assert counts["requests"] == fake_server.requests == counts["chunks_asked"]
    assert manifest["failed_chunks"] == []
    assert set(manifest["timings"]) == {"count", "read", "ask", "filter", "near_duplicates", "roundtrip", "split", "write"}
    assert manifest["endpoint_host"] == "127.0.0.1"
    assert len(manifest["prompt"]["sha256"]) == 64 and "$chunk" in manifest["prompt"]["user"]
    assert "train / eval pairs" in proc.stdout  # the summary table
    assert manifest["roundtrip"]["embedder"]  # the eval extra is installed here: MiniLM ranks too
    ranks = [(q["bm25_rank"], q["embed_rank"]) for s in ("train", "eval") for q in queries[s]]
    assert all(b >= 1 and e >= 1 for b, e in ranks)


def test_splits_are_disjoint_and_deterministic_on_the_corpora(tmp_path, fake_server):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        proc = generate(CORPORA, out, fake_server, "--limit", "80")
        assert proc.returncode == 0, proc.stderr
    assert read_out(a) == read_out(b)

    tables = read_out(a)
    train_ids = {r["id"] for r in tables["corpus/train"]}
    eval_ids = {r["id"] for r in tables["corpus/eval"]}
    assert train_ids and eval_ids and not train_ids & eval_ids
    train_texts = {r["text"] for r in tables["corpus/train"]}
    eval_texts = {r["text"] for r in tables["corpus/eval"]}
    assert not train_texts & eval_texts
    # Neighbouring chunks share overlap text within a section of a page: pages longer than a section are
    # split, yet no span of 50 characters of a page is on both sides. (The Blueprint repeats its principles
    # verbatim on other pages: text repeated across pages is not what the sections are about.)
    train_spans = {(r["source"], r["page"], s) for r in tables["corpus/train"] for s in spans(r["text"])}
    assert not any((r["source"], r["page"], s) in train_spans for r in tables["corpus/eval"] for s in spans(r["text"]))
    assert {r["chunk_id"] for r in tables["queries/eval"]} <= eval_ids


def test_other_seed_gives_other_split(tmp_path, fake_server):
    a, b = tmp_path / "a", tmp_path / "b"
    assert generate(CORPORA, a, fake_server, "--limit", "60").returncode == 0
    assert generate(CORPORA, b, fake_server, "--limit", "60", "--seed", "7").returncode == 0
    ids = lambda out: {r["id"] for r in read_out(out)["corpus/eval"]}  # noqa: E731
    assert ids(a) != ids(b)


def test_rerun_makes_zero_requests(docs, tmp_path, fake_server):
    out = tmp_path / "out"
    assert generate(docs, out, fake_server).returncode == 0
    first = read_out(out)
    asked = fake_server.requests
    proc = generate(docs, out, fake_server)
    assert proc.returncode == 0, proc.stderr
    assert fake_server.requests == asked
    assert json.loads((out / "synthqa.json").read_text())["counts"]["requests_this_run"] == 0
    assert read_out(out) == first


def test_prompt_missing_variable_is_refused_before_any_request(docs, tmp_path, fake_server):
    bad = tmp_path / "bad.txt"
    bad.write_text("Write $n_questions questions about this policy.\n")
    proc = generate(docs, tmp_path / "out", fake_server, "--prompt", bad)
    assert proc.returncode == 2
    assert "chunk" in proc.stderr and str(bad.name) in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert fake_server.requests == 0


def test_dry_run_sends_nothing(docs, tmp_path, fake_server):
    proc = generate(docs, tmp_path / "out", fake_server, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert fake_server.requests == 0
    assert "prompt tokens" in proc.stdout and "chunks" in proc.stdout
    assert not (tmp_path / "out" / "synthqa.json").exists()


def test_other_settings_need_overwrite_and_reuse_the_cache(docs, tmp_path, fake_server):
    out = tmp_path / "out"
    assert generate(docs, out, fake_server).returncode == 0
    asked = fake_server.requests
    proc = generate(docs, out, fake_server, "--seed", "3")
    assert proc.returncode != 0 and "--overwrite" in proc.stderr and "seed" in proc.stderr
    proc = generate(docs, out, fake_server, "--seed", "3", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert fake_server.requests == asked  # a new split needs no new answers
    assert json.loads((out / "synthqa.json").read_text())["options"]["seed"] == 3
    proc = generate(docs, out, fake_server, "--questions-per-chunk", "3", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert fake_server.requests == 2 * asked  # a new question count asks every chunk again


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--chunk-size", "0"], "--chunk-size"),
        (["--chunk-overlap", "1000"], "--chunk-overlap"),
        (["--eval-fraction", "1.5"], "--eval-fraction"),
        (["--concurrency", "-2"], "--concurrency"),
    ],
)
def test_invalid_options_are_refused_with_one_line(docs, tmp_path, fake_server, args, needle):
    proc = generate(docs, tmp_path / "out", fake_server, *args)
    assert proc.returncode == 2
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert fake_server.requests == 0


def test_output_that_is_a_file_is_refused(docs, tmp_path, fake_server):
    target = tmp_path / "file.txt"
    target.write_text("x")
    proc = generate(docs, target, fake_server)
    assert proc.returncode == 2 and "is a file" in proc.stderr


def test_failed_chunks_are_listed_and_retried(tmp_path):
    docs = tmp_path / "docs"
    make_policy_folder(docs, docs=2, pages=3)
    from pdfmaker import make_pdf

    make_pdf(docs / "poison.pdf", ["POISON " + "This clause sets the poison control policy for the lab. " * 12])
    out = tmp_path / "out"
    with FakeOpenAI(always_fail_substring="POISON") as fake:
        proc = generate(docs, out, fake)
    assert proc.returncode == 4, proc.stderr
    manifest = json.loads((out / "synthqa.json").read_text())
    failed = manifest["failed_chunks"]
    assert failed and all(f["source"] == "poison.pdf" and f["reason"] for f in failed)
    assert "--retry-failed" in proc.stderr
    with FakeOpenAI() as fake:
        proc = run_cli("generate", "--retry-failed", out, "--base-url", fake.base_url, "--no-progress",
                       env=cli_env(OPENAI_API_KEY="sk-test"))
        assert proc.returncode == 0, proc.stderr
        assert fake.requests == len(failed)
    manifest = json.loads((out / "synthqa.json").read_text())
    assert manifest["failed_chunks"] == []
    assert any(r["source"] == "poison.pdf" for r in read_out(out)["queries/train"] + read_out(out)["queries/eval"])


def test_secrets_never_reach_output_or_logs(docs, tmp_path):
    secret_key, secret_hf = "sk-PLANTED-openai-5f1e2d", "hf_PLANTEDtoken9a8b7c"
    out = tmp_path / "out"
    with FakeOpenAI(api_key=secret_key, faults={"500": 0.2, "prose": 0.2}) as fake:
        env = cli_env(OPENAI_API_KEY=secret_key, HF_TOKEN=secret_hf)
        proc = run_cli("generate", docs, "-o", out, "--base-url", fake.base_url, "--no-progress", env=env)
        bad = run_cli("generate", docs, "-o", tmp_path / "out2", "--base-url", fake.base_url, env=cli_env(
            OPENAI_API_KEY="sk-WRONG-planted-77", HF_TOKEN=secret_hf))
    assert proc.returncode in (0, 4), proc.stderr
    assert bad.returncode == 3 and "401" in bad.stderr
    everything = proc.stdout + proc.stderr + bad.stdout + bad.stderr
    for secret in (secret_key, secret_hf, "sk-WRONG-planted-77"):
        assert secret not in everything
        for path in [*out.rglob("*"), *(tmp_path / "out2").rglob("*")]:
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("repo, needle", [("not a repo id!", "not a repo id!"), ("alice/policy-qa", "no Hugging Face token")])
def test_push_to_hub_problems_stop_the_run_before_any_request(docs, tmp_path, fake_server, repo, needle):
    env = cli_env(OPENAI_API_KEY="sk-test", HF_HOME=str(tmp_path / "empty-hf-home"))
    proc = generate(docs, tmp_path / "out", fake_server, "--push-to-hub", repo, env=env)
    assert proc.returncode != 0 and needle in proc.stderr and "Traceback" not in proc.stderr
    assert fake_server.requests == 0


def test_dry_run_after_a_run_counts_only_what_is_left(docs, tmp_path, fake_server):
    out = tmp_path / "out"
    assert generate(docs, out, fake_server, "--limit", "5").returncode == 0
    proc = generate(docs, out, fake_server, "--limit", "8", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "to ask             3 (5 already cached)" in proc.stdout


def test_retry_failed_takes_options_given_again(tmp_path):
    docs = make_policy_folder(tmp_path / "docs", docs=1, pages=2)
    from pdfmaker import make_pdf

    make_pdf(docs / "poison.pdf", ["POISON " + "This clause sets the poison control policy for the lab. " * 12])
    out = tmp_path / "out"
    with FakeOpenAI(always_fail_substring="POISON") as fake:
        assert generate(docs, out, fake).returncode == 4
        asked = fake.requests
        proc = run_cli("generate", "--retry-failed", out, "--base-url", fake.base_url, "--dry-run",
                       env=cli_env(OPENAI_API_KEY="sk-test"))
        assert proc.returncode == 0, proc.stderr
        assert fake.requests == asked  # --dry-run given with --retry-failed sends nothing


def test_identical_chunk_texts_are_asked_once_and_answered_alike(tmp_path, fake_server):
    from e2e import policy_pages
    from pdfmaker import make_pdf

    docs = tmp_path / "docs"
    pages = policy_pages(3)
    make_pdf(docs / "a.pdf", pages)
    make_pdf(docs / "copy-of-a.pdf", pages)  # the same text under another name
    out = tmp_path / "out"
    assert generate(docs, out, fake_server).returncode == 0
    manifest = json.loads((out / "synthqa.json").read_text())
    assert fake_server.requests == manifest["counts"]["chunks_asked"] // 2
    assert max(fake_server.chunks_seen.values()) == 1
    first = read_out(out)
    assert generate(docs, out, fake_server).returncode == 0
    assert read_out(out) == first
