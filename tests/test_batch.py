"""Asking through batch files: `generate --batch` against the fake server's Batch API (/v1/files,
/v1/batches, stepped by each retrieve: no clock), and `batch export` → vLLM run-batch results → `batch import`.
Each path must give the dataset a live `generate` gives on the same input."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from e2e import cli_env, generate, make_policy_folder, read_out, run_cli
from fakebatch import vllm_results
from synthqa import batchfiles
from synthqa.prompts import load_template
from synthqa.questions import REASK_TEMPERATURE

TEMPLATE = load_template()


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    return make_policy_folder(tmp_path_factory.mktemp("docs") / "docs", docs=2, pages=2)


@pytest.fixture(scope="module")
def live(docs, tmp_path_factory) -> dict:
    """The tables of a live run on ``docs``: what every batch path must reproduce."""
    from fakeserver import FakeOpenAI

    out = tmp_path_factory.mktemp("live") / "out"
    with FakeOpenAI() as fake:
        proc = generate(docs, out, fake)
    assert proc.returncode == 0, proc.stderr
    return read_out(out)


def batch(docs, out, fake, *extra):
    return generate(docs, out, fake, "--batch", *extra)


def requests_in(folder: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(folder.glob("requests-*.jsonl")) for line in path.read_text().splitlines()]


def cache_keys(out: Path) -> set[str]:
    with sqlite3.connect(out / ".synthqa" / "cache.sqlite") as db:
        return {key for (key,) in db.execute("SELECT key FROM answers")}


# ---------------------------------------------------------------- the file formats (pure)
def test_a_request_line_is_the_live_request_in_the_batch_format():
    line = json.loads(batchfiles.request_line("k1", TEMPLATE, "Records are kept for seven years.", n=2,
                                              language="English", model="m", temperature=0.0, attempt=1,
                                              mode="json_schema", answers=False))
    assert line["custom_id"] == "k1" and line["method"] == "POST" and line["url"] == "/v1/chat/completions"
    assert line["body"]["model"] == "m" and line["body"]["temperature"] == 0.0
    assert line["body"]["response_format"]["type"] == "json_schema"
    assert "Records are kept for seven years." in line["body"]["messages"][-1]["content"]
    again = json.loads(batchfiles.request_line("k1", TEMPLATE, "x", n=2, language=None, model="m", temperature=0.0,
                                               attempt=2, mode="none", answers=False))
    assert again["body"]["temperature"] == REASK_TEMPERATURE and "response_format" not in again["body"]


def test_files_stay_within_the_line_and_byte_limits():
    lines = [(f"k{i}", "x" * 99) for i in range(25)]  # 100 bytes a line with its newline
    assert [len(g) for g in batchfiles.pack(lines, max_lines=10)] == [10, 10, 5]
    assert [len(g) for g in batchfiles.pack(lines, max_bytes=1000)] == [10, 10, 5]
    assert [len(g) for g in batchfiles.pack(lines, max_bytes=999)] == [9, 9, 7]
    assert [k for g in batchfiles.pack(lines, max_bytes=999) for k, _ in g] == [k for k, _ in lines]


def test_result_lines_of_openai_and_vllm_are_read_alike():
    reply = {"choices": [{"finish_reason": "stop", "message": {"content": '{"questions": ["What is kept?"]}'}}],
             "usage": {"prompt_tokens": 50, "completion_tokens": 9}}
    ok = batchfiles.read_result(json.dumps({"custom_id": "a", "response": {"status_code": 200, "body": reply},
                                            "error": None}), n=1)
    assert ok.verdict.usable and ok.verdict.found == ("What is kept?",) and ok.usage.prompt_tokens == 50
    prose = dict(reply, choices=[{"finish_reason": "stop", "message": {"content": "I cannot help."}}])
    unusable = batchfiles.read_result(json.dumps({"custom_id": "b", "response": {"status_code": 200, "body": prose}}), n=1)
    assert not unusable.verdict.usable and "unusable answer" in unusable.verdict.reason
    expired = batchfiles.read_result(json.dumps({"custom_id": "c", "response": None, "error": {
        "code": "batch_expired", "message": "This request could not be executed before the window expired."}}), n=1)
    assert expired.verdict is None and "expired" in expired.error
    refused = batchfiles.read_result(json.dumps({"custom_id": "d", "response": {"status_code": 400, "body": {
        "error": {"message": "Invalid model", "code": "model_not_found"}}}}), n=1)
    assert refused.error == "the batch endpoint answered HTTP 400: Invalid model (model_not_found)"
    vllm_error = batchfiles.read_result(json.dumps({"custom_id": "e", "response": {"status_code": 400, "body": None},
                                                    "error": "prompt too long"}), n=1)
    assert vllm_error.error == "the batch endpoint answered HTTP 400: prompt too long"
    with pytest.raises(ValueError):
        batchfiles.read_result('{"no": "custom id"}', n=1)


# ---------------------------------------------------------------- generate --batch
def test_batch_round_trip_submits_polls_and_writes_the_live_dataset(docs, live, tmp_path, fake_server):
    out = tmp_path / "out"
    first = batch(docs, out, fake_server)
    assert first.returncode == 0, first.stderr
    assert not (out / "synthqa.json").exists() and "rerun the same command to poll" in first.stdout
    sent = requests_in(out / ".synthqa" / "batch")
    assert fake_server.batches.batches["batch_1"]["request_counts"]["total"] == len(sent) > 0
    assert fake_server.requests == 0  # nothing asked live

    second = batch(docs, out, fake_server)  # validating → in_progress: still nothing to read
    assert second.returncode == 0 and "in_progress" in second.stdout and not (out / "synthqa.json").exists()
    third = batch(docs, out, fake_server)
    assert third.returncode == 0, third.stderr
    assert read_out(out) == live  # the same pairs, the same split
    # every answer is in the cache under its request's custom_id: a live rerun asks nothing
    assert cache_keys(out) == {r["custom_id"] for r in sent}
    rerun = generate(docs, out, fake_server)
    assert rerun.returncode == 0 and fake_server.requests == len(sent)  # the batch lines, no more
    manifest = json.loads((out / "synthqa.json").read_text())
    assert manifest["counts"]["requests_this_run"] == 0 and manifest["failed_chunks"] == []


def test_wait_polls_until_done_with_follow_up_batches_for_unusable_answers(docs, live, tmp_path, make_fake_server):
    fake = make_fake_server(faults={"prose": 0.3}, seed=3)
    fake.batches.lines_per_poll = 3
    out = tmp_path / "out"
    proc = batch(docs, out, fake, "--wait", "--poll-interval", "0.001")
    assert proc.returncode == 0, proc.stderr
    batches = fake.batches.batches
    assert len(batches) > 1  # a follow-up batch for the prose answers
    firsts = {line["custom_id"] for line in batches["batch_1"]["_lines"]}
    follow_ups = [line for b in list(batches.values())[1:] for line in b["_lines"]]
    prose_first = [e for e in fake.log[:len(firsts)] if e["fault"] == "prose"]
    assert len(follow_ups) >= len(prose_first) > 0
    assert {line["custom_id"] for line in follow_ups} <= firsts
    assert all(line["body"]["temperature"] == REASK_TEMPERATURE for line in follow_ups)
    # seed 3 gives no chunk three prose answers in a row: every chunk ends answered, as live
    assert json.loads((out / "synthqa.json").read_text())["failed_chunks"] == []
    assert read_out(out) == live


def test_unusable_answers_stop_at_max_attempts_as_failed_chunks(docs, tmp_path, make_fake_server):
    fake = make_fake_server(always_fail_substring="Clause 1.1.")
    out = tmp_path / "out"
    proc = batch(docs, out, fake, "--wait", "--poll-interval", "0.001", "--max-attempts", "2")
    assert proc.returncode == 4, proc.stderr  # written, with failed chunks
    assert len(fake.batches.batches) == 2  # the first, and one follow-up: max 2 attempts
    failed = json.loads((out / "synthqa.json").read_text())["failed_chunks"]
    assert failed and all("unusable answer: prose without a question (after 2 attempts)" in f["reason"] for f in failed)


def test_an_endpoint_without_a_batch_api_is_one_line(docs, tmp_path, make_fake_server):
    fake = make_fake_server()
    fake.batch_api = False
    proc = batch(docs, tmp_path / "out", fake)
    assert proc.returncode == 3 and "has no batch API (404)" in proc.stderr and "synthqa batch export" in proc.stderr
    assert "Traceback" not in proc.stderr and fake.requests == 0
    assert not (tmp_path / "out" / ".synthqa" / "batch").exists()  # refused before any request file


def test_a_batch_that_expires_half_done_gives_failed_chunks_that_retry_failed_asks_again(docs, live, tmp_path,
                                                                                         make_fake_server):
    fake = make_fake_server()
    out = tmp_path / "out"
    assert batch(docs, out, fake).returncode == 0
    total = fake.batches.batches["batch_1"]["request_counts"]["total"]
    fake.batches.expire_after = total // 2
    proc = batch(docs, out, fake, "--wait", "--poll-interval", "0.001")
    assert proc.returncode == 4, proc.stderr
    manifest = json.loads((out / "synthqa.json").read_text())
    assert len(manifest["failed_chunks"]) == total - total // 2
    assert {f["reason"] for f in manifest["failed_chunks"]} == {"the batch expired before this request ran (batch_expired)"}
    assert "--retry-failed" in proc.stderr
    assert len(cache_keys(out)) == total // 2  # what did run is kept

    fake.batches.expire_after = None
    retry = run_cli("generate", "--retry-failed", out, "--batch", "--wait", "--poll-interval", "0.001",
                    "--no-progress", "--base-url", fake.base_url)
    assert retry.returncode == 0, retry.stderr
    assert len(fake.batches.batches["batch_2"]["_lines"]) == total - total // 2  # only the expired ones
    assert read_out(out) == live


# ---------------------------------------------------------------- batch export → vllm run-batch → batch import
def test_export_then_vllm_results_then_import_gives_the_live_dataset(docs, live, tmp_path, fake_server):
    out = tmp_path / "out"
    exported = run_cli("batch", "export", docs, "-o", out, "--model", "fake-model", "--no-embed-roundtrip",
                       "--no-progress", env=cli_env())
    assert exported.returncode == 0, exported.stderr
    assert "vllm run-batch -i" in exported.stdout and f"synthqa batch import {out}" in exported.stdout
    requests = out / "batch" / "requests-001.jsonl"
    results = out / "batch" / "results-001.jsonl"
    text = vllm_results(fake_server, requests.read_text())
    stray = {"id": "vllm-x", "custom_id": "not-a-request-of-this-run", "error": None,
             "response": {"status_code": 200, "body": json.loads(text.splitlines()[0])["response"]["body"]}}
    results.write_text(text + json.dumps(stray) + "\nnot a result line\n")

    imported = run_cli("batch", "import", out, results, "--no-progress", env=cli_env())
    assert imported.returncode == 0, imported.stderr
    assert "1 result line(s) name no request of this run (unknown custom_id): not used" in imported.stderr
    lines = len(text.splitlines()) + 2
    assert f"results-001.jsonl line {lines} is not a batch result line: skipped" in imported.stderr
    assert read_out(out) == live
    manifest = json.loads((out / "synthqa.json").read_text())
    assert manifest["model"] == "fake-model" and manifest["endpoint_host"] == "vllm run-batch (batch files)"

    again = run_cli("batch", "export", docs, "-o", out, "--model", "fake-model", "--no-embed-roundtrip",
                    "--no-progress", env=cli_env())
    assert again.returncode == 0 and not (out / "batch" / "requests-002.jsonl").exists()  # all cached: no requests


def test_query_styles_through_the_batch_api_and_through_files_give_the_live_styled_dataset(docs, tmp_path,
                                                                                            fake_server):
    """Each (chunk, style) request goes through its style's prompt, and each result is judged with its
    style's count: both batch paths write what a live styled run writes."""
    mix = ("--query-styles", "question:1,keyword:3")
    live_out = tmp_path / "live"
    proc = generate(docs, live_out, fake_server, *mix)
    assert proc.returncode == 0, proc.stderr
    live_styled = read_out(live_out)
    assert {q["style"] for key, rows in live_styled.items() if key.startswith("queries/") for q in rows} == {
        "question", "keyword"}

    out = tmp_path / "api"
    for _ in range(3):  # submitted, in progress, completed
        proc = batch(docs, out, fake_server, *mix)
        assert proc.returncode == 0, proc.stderr
    assert read_out(out) == live_styled
    sent = requests_in(out / ".synthqa" / "batch")
    asked = json.loads((out / "synthqa.json").read_text())["counts"]["chunks_asked"]
    assert len(sent) == 2 * asked and all("max_tokens" not in r["body"] for r in sent)
    prompts = Counter("keyword queries" in r["body"]["messages"][-1]["content"] for r in sent)
    assert prompts == {True: asked, False: asked}

    files = tmp_path / "files"
    exported = run_cli("batch", "export", docs, "-o", files, "--model", "fake-model", "--no-embed-roundtrip",
                       "--no-progress", *mix, env=cli_env())
    assert exported.returncode == 0, exported.stderr
    requests = files / "batch" / "requests-001.jsonl"
    (files / "batch" / "results-001.jsonl").write_text(vllm_results(fake_server, requests.read_text()))
    imported = run_cli("batch", "import", files, files / "batch" / "results-001.jsonl", "--no-progress", env=cli_env())
    assert imported.returncode == 0, imported.stderr
    assert read_out(files) == read_out(out)
    by_style = {s["style"]: s for s in json.loads((files / "synthqa.json").read_text())["styles"]}
    assert by_style["keyword"]["generated"] == 3 * asked and by_style["question"]["generated"] == asked


def test_spare_questions_through_batch_files_give_the_live_dataset(docs, tmp_path, fake_server):
    """A batch request asks for the kept count plus the spares, and the import keeps the same queries as a live
    run (the choice is made when the dataset is assembled, whichever transport brought the answers)."""
    spare = ("--spare-questions", "2", "--model", "fake-model")
    live_out = tmp_path / "live"
    proc = generate(docs, live_out, fake_server, *spare)
    assert proc.returncode == 0, proc.stderr
    files = tmp_path / "files"
    exported = run_cli("batch", "export", docs, "-o", files, "--no-embed-roundtrip", "--no-progress", *spare,
                       env=cli_env())
    assert exported.returncode == 0, exported.stderr
    requests = files / "batch" / "requests-001.jsonl"
    sent = [json.loads(line) for line in requests.read_text().splitlines()]
    assert sent and all("Write 4 questions" in r["body"]["messages"][-1]["content"] for r in sent)
    (files / "batch" / "results-001.jsonl").write_text(vllm_results(fake_server, requests.read_text()))
    imported = run_cli("batch", "import", files, files / "batch" / "results-001.jsonl", "--no-progress", env=cli_env())
    assert imported.returncode == 0, imported.stderr
    assert read_out(files) == read_out(live_out)
    manifest = json.loads((files / "synthqa.json").read_text())
    assert manifest["options"]["spare_questions"] == 2
    assert manifest["counts"]["questions_generated"] == 4 * manifest["counts"]["chunks_asked"]
    assert manifest["question_filters"]["spare"] > 0


def test_import_writes_a_follow_up_file_for_unusable_answers(docs, tmp_path, make_fake_server):
    fake = make_fake_server(always_fail_substring="Clause 1.1.")
    out = tmp_path / "out"
    assert run_cli("batch", "export", docs, "-o", out, "--model", "m", "--no-progress", env=cli_env()).returncode == 0
    results = out / "batch" / "results-001.jsonl"
    results.write_text(vllm_results(fake, (out / "batch" / "requests-001.jsonl").read_text()))
    proc = run_cli("batch", "import", out, results, "--no-progress", env=cli_env())
    assert proc.returncode == 0, proc.stderr
    follow_up = requests_in(out / "batch")[len(results.read_text().splitlines()):]
    assert follow_up and all("Clause 1.1." in r["body"]["messages"][-1]["content"] for r in follow_up)
    assert "requests-002.jsonl" in proc.stderr and not (out / "synthqa.json").exists()

    # the printed hint followed: vLLM on the follow-up file, then import every results file again
    for number in (2, 3):
        folder = out / "batch"
        (folder / f"results-00{number}.jsonl").write_text(
            vllm_results(fake, (folder / f"requests-00{number}.jsonl").read_text()))
        proc = run_cli("batch", "import", out, *sorted(folder.glob("results-*.jsonl")), "--no-progress", env=cli_env())
        assert "unknown custom_id" not in proc.stderr  # files imported before are no strangers
    assert proc.returncode == 4, proc.stderr  # the third attempt failed too: written, with failed chunks
    assert "--retry-failed" in proc.stderr and "--base-url" in proc.stderr
    failed = json.loads((out / "synthqa.json").read_text())["failed_chunks"]
    assert len(failed) == len(follow_up) and all("(after 3 attempts)" in f["reason"] for f in failed)

    missing = run_cli("batch", "import", out, tmp_path / "nope.jsonl", "--no-progress", env=cli_env())
    assert missing.returncode != 0 and f"cannot read results file {tmp_path / 'nope.jsonl'}" in missing.stderr
    assert "Traceback" not in missing.stderr


# ---------------------------------------------------------------- mistakes get one line
@pytest.mark.parametrize("args, message", [
    (("generate", "{docs}", "-o", "{out}", "--batch"), "--batch needs a Batch API: set OPENAI_API_KEY"),
    (("generate", "{docs}", "-o", "{out}", "--wait"), "--wait polls the batches of --batch"),
    (("generate", "{docs}", "-o", "{out}", "--batch", "--local"), "not to the embedded model: drop --local"),
    (("batch", "export", "{docs}", "-o", "{out}"), "batch export needs --model"),
    (("batch", "import", "{out}", "{out}/results.jsonl"), "holds no batch export: run `synthqa batch export"),
])
def test_batch_mistakes_get_one_line(docs, tmp_path, monkeypatch, capsys, args, message):
    from synthqa.cli import main

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    code = main([a.format(docs=docs, out=tmp_path / "out") for a in args])
    err = capsys.readouterr().err
    assert code != 0 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
