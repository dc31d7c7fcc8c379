"""Off the happy path, through the real CLI: each test is one thing a user does on day one.

Tiny runs, the printed --retry-failed hint followed exactly, transient failures, --overwrite on someone
else's folder, private paths in what gets published, a missing dependency, and pages that fail to extract.
Signals have their own file (test_signals.py).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from e2e import CORPORA, cli_env, generate, make_policy_folder, policy_pages, read_out, run_cli
from fakeserver import FakeOpenAI
from pdfmaker import make_pdf, make_pdf_with_broken_page

CONFIGS = ("default", "queries", "corpus")


def manifest_of(out: Path) -> dict:
    return json.loads((out / "synthqa.json").read_text())


def load_every_config(out: Path) -> dict[str, datasets.DatasetDict]:
    return {config: datasets.load_dataset(str(out), config) for config in CONFIGS}


@pytest.mark.parametrize("case", ["limit-1", "limit-3", "one-page-pdf"])
def test_tiny_runs_write_a_dataset_that_loads_with_every_config(tmp_path, fake_server, case):
    out = tmp_path / "out"
    if case == "one-page-pdf":
        proc = generate(make_pdf(tmp_path / "one.pdf", policy_pages(1)), out, fake_server)
    else:
        proc = generate(CORPORA, out, fake_server, "--limit", case.split("-")[1])
    assert proc.returncode == 0, proc.stderr
    loaded = load_every_config(out)
    manifest = manifest_of(out)
    counts = manifest["counts"]
    for config, ds in loaded.items():
        assert "train" in ds and all(len(ds[split]) > 0 for split in ds), config
    assert len(loaded["default"]["train"]) == counts["train_pairs"]
    if counts["eval_pairs"] == 0:
        # One page cannot be split without leaking overlap text: the dataset has no eval split, and says so.
        assert all(set(ds) == {"train"} for ds in loaded.values())
        assert "the eval split is empty" in proc.stdout
        assert "no eval split" in (out / "README.md").read_text()
    else:
        assert all(set(ds) == {"train", "eval"} for ds in loaded.values())
    assert case != "limit-1" or counts["eval_pairs"] == 0  # one chunk: one page


def test_the_retry_hint_works_exactly_as_printed_for_a_run_with_other_settings(tmp_path):
    docs = make_policy_folder(tmp_path / "my docs", docs=2, pages=3)
    out = tmp_path / "out folder"  # a space: the hint must quote it
    settings = ("--questions-per-chunk", "3", "--seed", "7", "--chunk-size", "700", "--chunk-overlap", "100",
                "--eval-fraction", "0.3", "--max-attempts", "2")
    with FakeOpenAI(always_fail_substring="Clause 2.2") as fake:  # the model answers prose for those chunks
        proc = generate(docs, out, fake, *settings)
        assert proc.returncode == 4, proc.stderr
        failed = manifest_of(out)["failed_chunks"]
        assert failed and not any(f["transient"] for f in failed)
        hint = proc.stderr.split("ask again with: ")[1].splitlines()[0]
        argv = shlex.split(hint)
        assert argv[:3] == ["synthqa", "generate", "--retry-failed"] and argv[3] == str(out)

        dry = subprocess.run([sys.executable, "-m", *argv, "--dry-run"], env=cli_env(OPENAI_API_KEY="sk-test"),
                             capture_output=True, text=True, timeout=300)
        assert dry.returncode == 0, dry.stderr
        assert f"to ask             {len(failed)} (" in dry.stdout  # the failed chunks cost again

        fake.always_fail_substring = None
        before = fake.requests
        retry = subprocess.run([sys.executable, "-m", *argv], env=cli_env(OPENAI_API_KEY="sk-test"),
                               capture_output=True, text=True, timeout=300)
        assert retry.returncode == 0, retry.stderr
        assert fake.requests - before == len(failed)  # only the failed chunks were asked again
    manifest = manifest_of(out)
    assert manifest["failed_chunks"] == []
    assert manifest["options"]["questions_per_chunk"] == 3 and manifest["split"]["seed"] == 7
    answered = {q["chunk_id"] for name, rows in read_out(out).items() if name.startswith("queries/") for q in rows}
    assert {f["chunk_id"] for f in failed} <= answered


def test_retry_asks_the_endpoint_of_the_run_even_when_it_came_from_the_environment(tmp_path, fake_server):
    docs = make_policy_folder(tmp_path / "docs", docs=1, pages=3)
    out = tmp_path / "out"
    fake_server.always_fail_substring = "Clause 2.1"  # page 2: pages 1 and 3 open alike, so cleaning strips their first lines
    first = run_cli("generate", docs, "-o", out, "--no-progress", "--no-embed-roundtrip", "--max-attempts", "1",
                    env=cli_env(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=fake_server.base_url))
    assert first.returncode == 4, first.stderr
    fake_server.always_fail_substring = None
    retry = run_cli("generate", "--retry-failed", out, "--no-progress", env=cli_env(OPENAI_API_KEY="sk-test"))
    assert retry.returncode == 0, retry.stderr
    assert "embedded local model" not in retry.stderr
    assert manifest_of(out)["failed_chunks"] == [] and manifest_of(out)["endpoint_host"] == "127.0.0.1"


def test_retry_never_falls_back_to_the_embedded_model_without_the_key(tmp_path, fake_server):
    docs = make_policy_folder(tmp_path / "docs", docs=1, pages=2)
    out = tmp_path / "out"
    fake_server.always_fail_substring = "Clause 2.1"  # page 2: pages 1 and 3 open alike, so cleaning strips their first lines
    assert generate(docs, out, fake_server, "--max-attempts", "1").returncode == 4
    manifest = manifest_of(out)
    manifest["options"]["base_url"] = None  # as if it had asked api.openai.com
    (out / "synthqa.json").write_text(json.dumps(manifest))
    retry = run_cli("generate", "--retry-failed", out, "--no-progress", env=cli_env())
    assert retry.returncode == 2
    assert "set OPENAI_API_KEY" in retry.stderr and "embedded" not in retry.stderr


def test_retry_of_encrypted_inputs_asks_for_the_password_again(tmp_path, fake_server):
    docs = tmp_path / "docs"
    make_pdf(docs / "locked.pdf", policy_pages(2), encrypt_password="s3cret")
    out = tmp_path / "out"
    fake_server.always_fail_substring = "Clause 2.1"  # page 2: pages 1 and 3 open alike, so cleaning strips their first lines
    proc = generate(docs, out, fake_server, "--pdf-password", "s3cret", "--max-attempts", "1")
    assert proc.returncode == 4, proc.stderr
    fake_server.always_fail_substring = None
    refused = run_cli("generate", "--retry-failed", out, "--no-progress")
    assert refused.returncode == 2 and "--pdf-password" in refused.stderr
    retry = run_cli("generate", "--retry-failed", out, "--no-progress", "--pdf-password", "s3cret")
    assert retry.returncode == 0, retry.stderr
    assert manifest_of(out)["counts"]["documents"] == 1  # the encrypted document was read, not dropped


def test_a_429_storm_past_the_retries_is_asked_again_by_a_plain_rerun(tmp_path):
    docs = make_policy_folder(tmp_path / "docs", docs=1, pages=2)
    out = tmp_path / "out"
    with FakeOpenAI(faults={"429": 1.0}, retry_after=0.01) as fake:
        first = generate(docs, out, fake, "--max-retries", "1")
        assert first.returncode == 4, first.stderr
        failed = manifest_of(out)["failed_chunks"]
        assert failed and all(f["transient"] and "429" in f["reason"] for f in failed)
        fake.faults = {}
        before = fake.requests
        again = generate(docs, out, fake, "--max-retries", "1")
        assert again.returncode == 0, again.stderr
        assert fake.requests - before == len(failed)
    assert manifest_of(out)["failed_chunks"] == []


def test_the_card_states_extra_relevant_chunks_as_the_data_has_them(tmp_path, fake_server):
    out = tmp_path / "out"
    assert generate(CORPORA, out, fake_server, "--limit", "60").returncode == 0
    queries = [q for name, rows in read_out(out).items() if name.startswith("queries/") for q in rows]
    with_extras = sum(1 for q in queries if q["extra_relevant_ids"])
    assert with_extras > 0
    assert manifest_of(out)["counts"]["questions_with_extra_relevant"] == with_extras
    card = (out / "README.md").read_text()
    assert "plus the chunks listed in" in card and "count as misses" not in card


def test_overwrite_never_touches_a_folder_synthqa_did_not_write(tmp_path, fake_server):
    foreign = tmp_path / "someone-elses-dataset"
    (foreign / "data").mkdir(parents=True)
    (foreign / "README.md").write_text("# my dataset\n")
    (foreign / "data" / "train-00000-of-00001.parquet").write_bytes(b"PAR1 precious")
    before = {p: p.read_bytes() for p in foreign.rglob("*") if p.is_file()}
    docs = make_policy_folder(tmp_path / "docs", docs=1, pages=2)
    proc = generate(docs, foreign, fake_server, "--overwrite")
    assert proc.returncode == 1 and "not a synthqa output" in proc.stderr
    assert {p: p.read_bytes() for p in foreign.rglob("*") if p.is_file()} == before
    assert fake_server.requests == 0


def test_a_different_corpus_into_the_same_out_is_other_settings(tmp_path, fake_server):
    a = make_policy_folder(tmp_path / "a", docs=1, pages=2)
    b = make_policy_folder(tmp_path / "b", docs=1, pages=3)
    out = tmp_path / "out"
    assert generate(a, out, fake_server).returncode == 0
    proc = generate(b, out, fake_server)
    assert proc.returncode == 1 and "other settings" in proc.stderr and "inputs a → b" in proc.stderr
    assert generate(b, out, fake_server, "--overwrite").returncode == 0
    assert manifest_of(out)["options"]["inputs"] == ["b"]


def test_no_path_of_the_users_machine_reaches_what_is_published(tmp_path, fake_server):
    home = tmp_path / "home" / "alice-private-7f3a"
    docs = make_policy_folder(home / "policies", docs=2, pages=2)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7 not really")
    (docs / "notes.docx").write_bytes(b"PK")
    prompt = home / "prompts" / "mine.txt"
    prompt.parent.mkdir(parents=True)
    prompt.write_text((Path(__file__).parents[1] / "prompts" / "default.txt").read_text())
    out = home / "out"
    proc = generate(docs, out, fake_server, "--prompt", prompt)
    assert proc.returncode == 0, proc.stderr
    published = [p for p in out.rglob("*") if p.is_file() and ".synthqa" not in p.relative_to(out).parts]
    assert {p.name for p in published} >= {"README.md", "synthqa.json"}
    for path in published:
        assert b"alice-private-7f3a" not in path.read_bytes(), path
        assert str(tmp_path).encode() not in path.read_bytes(), path
    manifest = manifest_of(out)
    assert sorted(s["path"] for s in manifest["skipped_files"]) == ["broken.pdf", "notes.docx"]
    assert manifest["options"]["inputs"] == ["policies"] and manifest["options"]["prompt_path"] == "mine.txt"
    assert "skipped `broken.pdf`" in (out / "README.md").read_text()
    # What a rerun needs stays beside the cache, which is never uploaded.
    assert str(docs) in (out / ".synthqa" / "run.json").read_text()


def test_a_page_that_fails_to_extract_is_recorded_in_the_manifest_and_the_card(tmp_path, fake_server):
    docs = tmp_path / "docs"
    make_pdf_with_broken_page(docs / "b.pdf", policy_pages(3), broken=1)
    out = tmp_path / "out"
    proc = generate(docs, out, fake_server)
    assert proc.returncode == 0, proc.stderr
    pages = manifest_of(out)["skipped_pages"]
    assert [(p["source"], p["page"]) for p in pages] == [("b.pdf", 2)]
    assert "page 2 of `b.pdf` left out" in (out / "README.md").read_text()
    assert "b.pdf: page 2 skipped" in proc.stderr


def test_a_missing_dependency_is_one_line_and_the_answers_stay_cached(tmp_path, fake_server):
    """The bare-install bug: the card needs jinja2. Hide it, and the run must say what to do, once."""
    shim = tmp_path / "shim" / "jinja2"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named jinja2 (hidden by the test)')\n")
    docs = make_policy_folder(tmp_path / "docs", docs=1, pages=2)
    out = tmp_path / "out"
    # The shim goes before whatever PYTHONPATH already holds (a checkout's src/ under test).
    env = cli_env(OPENAI_API_KEY="sk-test", PYTHONPATH=os.pathsep.join(filter(None, [str(shim.parent),
                                                                                    os.environ.get("PYTHONPATH")])))
    proc = generate(docs, out, fake_server, env=env)
    assert proc.returncode == 1
    assert "a package synthqa needs is missing" in proc.stderr and "Traceback" not in proc.stderr
    asked = fake_server.requests
    again = generate(docs, out, fake_server)
    assert again.returncode == 0, again.stderr
    assert fake_server.requests == asked  # every answer was cached before the card failed
    load_every_config(out)
