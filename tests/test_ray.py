"""`synthqa generate --ray` / ``synthqa.ray`` on a real local Ray instance (2 CPUs, started once for the
module) against the loopback fake server: the dataset must be the one a run without Ray writes."""

from __future__ import annotations

import json
import sys

import pytest
from e2e import CORPORA, cli_env, generate, make_policy_folder, read_out, run_cli
from fakeserver import FakeOpenAI
from pdfmaker import make_pdf

from synthqa import styles
from synthqa.config import GenerateConfig
from synthqa.errors import ConfigError, EndpointError
from synthqa.pipeline import config_for_retry, resolve_endpoint, run_generate
from synthqa.records import Answer, Usage

ray = pytest.importorskip("ray", reason="the ray extra: pip install 'synthqa[ray]'")
synthqa_ray = pytest.importorskip("synthqa.ray")


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """One local Ray instance for the module: starting one costs seconds and about 1 GB."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def docs(tmp_path):
    folder = make_policy_folder(tmp_path / "docs", docs=3, pages=3)
    leave = " ".join(f"Rule {i}: staff take leave of type {i} after a manager approves form L-{i}." for i in range(40))
    travel = " ".join(f"Claim {i}: travel of kind {i} is filed within {i + 5} days on form T-{i}." for i in range(40))
    (folder / "handbook.md").write_text(f"# Leave\n\n{leave}\n\n# Travel\n\n{travel}\n")
    return folder


def _config(inputs, out, fake, **options) -> GenerateConfig:
    return GenerateConfig(inputs=(inputs,), out=out, base_url=fake.base_url, embed_roundtrip=False, **options)


def _same_run(a, b) -> None:
    """Two output folders hold the same dataset: every table, and the manifest's counts but this run's requests."""
    assert read_out(a) == read_out(b)
    counts = [json.loads((out / "synthqa.json").read_text())["counts"] for out in (a, b)]
    for c in counts:
        c.pop("requests_this_run")
    assert counts[0] == counts[1]


def test_ray_run_writes_the_dataset_generate_writes(docs, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAI() as fake:
        assert generate(docs, tmp_path / "plain", fake).returncode == 0
        plain_requests = fake.requests
        result = synthqa_ray.generate_on_ray(_config(docs, tmp_path / "ray", fake), log=lambda line: None,
                                             progress=False)
    _same_run(tmp_path / "plain", tmp_path / "ray")
    tables = read_out(tmp_path / "ray")
    assert tables["default/train"] and tables["default/eval"]
    assert {r["source"] for r in tables["corpus/train"] + tables["corpus/eval"]} >= {"handbook.md", "policy-1.pdf"}
    # every chunk was asked on the cluster, once: the driver's pipeline found them all in the cache
    assert fake.requests == 2 * plain_requests
    assert result.manifest.counts.requests_this_run == plain_requests
    assert not result.failed


def test_query_styles_on_ray_write_the_dataset_generate_writes(docs, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    mix = {"query_styles": "question:1,keyword:1", "limit": 6}
    with FakeOpenAI() as fake:
        assert run_generate(_config(docs, tmp_path / "plain", fake, **mix), lambda line: None, False).manifest
        plain = list(fake.log)
        result = synthqa_ray.generate_on_ray(_config(docs, tmp_path / "ray", fake, **mix), log=lambda line: None,
                                             progress=False)
    _same_run(tmp_path / "plain", tmp_path / "ray")
    assert len(plain) == 12 and {e["style"] for e in plain} == {"question", "keyword"}
    # the cluster asked each (chunk, style) once, the same requests as the plain run; the driver asked nothing
    assert sorted((e["chunk"], e["style"]) for e in fake.log[len(plain):]) == sorted(
        (e["chunk"], e["style"]) for e in plain)
    assert {s.style: s.chunks_answered for s in result.manifest.styles} == {"question": 6, "keyword": 6}
    assert {row["style"] for row in read_out(tmp_path / "ray")["queries/train"]} == {"question", "keyword"}


def test_limit_takes_the_same_first_chunks_of_the_corpora(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAI() as fake:
        assert generate(CORPORA, tmp_path / "plain", fake, "--limit", "30").returncode == 0
        asked = fake.requests
        synthqa_ray.generate_on_ray(_config(CORPORA, tmp_path / "ray", fake, limit=30), log=lambda line: None,
                                    progress=False)
    _same_run(tmp_path / "plain", tmp_path / "ray")
    assert fake.requests == 2 * asked  # Ray kept the input order: the driver had nothing left to ask


def test_rerun_asks_nothing_and_retry_failed_asks_on_ray(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    docs = make_policy_folder(tmp_path / "docs", docs=2, pages=2)
    make_pdf(docs / "poison.pdf", ["POISON " + "This clause sets the poison control policy for the lab. " * 12])
    out = tmp_path / "out"
    with FakeOpenAI(always_fail_substring="POISON") as fake:
        first = synthqa_ray.generate_on_ray(_config(docs, out, fake), log=lambda line: None, progress=False)
        assert first.failed and all(f.source == "poison.pdf" for f in first.manifest.failed_chunks)
        asked = fake.requests
        again = synthqa_ray.generate_on_ray(_config(docs, out, fake), log=lambda line: None, progress=False)
        assert fake.requests == asked  # the cluster skipped every cached chunk, the failed ones too
        assert again.manifest.counts.requests_this_run == 0
    with FakeOpenAI() as fake:
        retried = synthqa_ray.generate_on_ray(config_for_retry(out, {"base_url": fake.base_url}),
                                              log=lambda line: None, progress=False)
        assert fake.requests == len(first.manifest.failed_chunks)  # only the failed chunks, all on Ray
    assert not retried.failed
    assert any(r["source"] == "poison.pdf" for r in read_out(out)["corpus/train"] + read_out(out)["corpus/eval"])


def test_transport_failures_on_the_cluster_are_asked_again_by_the_driver(docs, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    out = tmp_path / "out"
    with FakeOpenAI(faults={"503": 1.0}) as fake:
        config = _config(docs, out, fake, max_retries=0)
        plans = styles.load_plans(config.style_mix, config.prompt_path)
        endpoint = resolve_endpoint(config, print)
        asked = synthqa_ray.ask_on_ray(config, plans, endpoint, log=lambda line: None, progress=False)
        assert asked.asked > 0 and asked.transient == asked.asked and asked.committed == 0
        assert _cached(out) == 0  # a transport failure is not an answer: nothing cached
        fake.faults = {}  # the endpoint recovers: the normal pipeline asks what the cluster could not
        result = run_generate(config, log=lambda line: None, progress=False)
    assert not result.failed and result.manifest.counts.requests_this_run == asked.asked
    with FakeOpenAI() as fake:
        assert generate(docs, tmp_path / "plain", fake).returncode == 0
    _same_run(tmp_path / "plain", out)


def _cached(out) -> int:
    from synthqa.cache import Cache, cache_path

    with Cache(cache_path(out)) as cache:
        return len(cache)


def test_unreachable_endpoint_is_one_error_from_the_workers(docs, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    fake = FakeOpenAI().start()
    config = _config(docs, tmp_path / "out", fake)
    fake.stop()  # nothing listens at the port now
    with pytest.raises(EndpointError, match="cannot reach 127.0.0.1"):
        synthqa_ray.generate_on_ray(config, log=lambda line: None, progress=False)


def test_the_api_key_reaches_the_workers_and_no_file(docs, tmp_path, monkeypatch, make_fake_server):
    # The workers were started before the key was set: only the job's runtime environment can carry it.
    fake = make_fake_server(api_key="sk-ray-secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    with pytest.raises(EndpointError, match="rejected the API key"):
        synthqa_ray.generate_on_ray(_config(docs, tmp_path / "wrong", fake), log=lambda line: None, progress=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-ray-secret")
    result = synthqa_ray.generate_on_ray(_config(docs, tmp_path / "out", fake), log=lambda line: None, progress=False)
    assert result.manifest.counts.requests_this_run == result.manifest.counts.requests > 0
    assert not result.failed
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert b"sk-ray-secret" not in path.read_bytes(), path


# A new Ray driver joining the cluster takes ~100 s beside a 2-core load of 4 and passed 300 s at a load of 5-6
# (the full suite beside benchmarks, two stops running): the bounds are hang guards, set for a loaded machine.
@pytest.mark.timeout(1800)
def test_cli_joins_a_running_cluster(cluster, docs, tmp_path, fake_server):
    proc = run_cli("generate", docs, "-o", tmp_path / "out", "--base-url", fake_server.base_url, "--no-progress",
                   "--no-embed-roundtrip", "--ray-address", cluster, "--ray-tasks", "1",
                   env=cli_env(OPENAI_API_KEY="sk-test"), timeout=1500)
    assert proc.returncode == 0, proc.stderr
    assert "asking on the Ray cluster: 2 CPUs" in proc.stderr and "asked on Ray:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "requests" in proc.stdout and "this run)" in proc.stdout
    assert generate(docs, tmp_path / "plain", fake_server).returncode == 0
    _same_run(tmp_path / "plain", tmp_path / "out")


def test_the_embedded_model_is_refused_before_any_work(docs, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    config = GenerateConfig(inputs=(docs,), out=tmp_path / "out")
    with pytest.raises(ConfigError, match="--ray asks a served model.*--base-url"):
        synthqa_ray.generate_on_ray(config, log=lambda line: None, progress=False)
    assert not (tmp_path / "out").exists()


def test_missing_ray_names_the_extra(docs, tmp_path, monkeypatch, fake_server):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setitem(sys.modules, "ray", None)  # what a bare install sees: import ray fails
    proc_config = _config(docs, tmp_path / "out", fake_server)
    with pytest.raises(ConfigError, match=r"pip install 'synthqa\[ray\]'"):
        synthqa_ray.generate_on_ray(proc_config, log=lambda line: None, progress=False)


def test_answers_cross_from_the_workers_unchanged():
    answers = [
        Answer("c1", ("What is kept?", "Who signs?"), usage=Usage(2, 300, 40), attempts=2, short=True,
               answers=("Records.", "The board.")),
        Answer("c2", error="the request timed out", usage=Usage(1, 100, 0), attempts=1, transient=True),
        Answer("c3", ("Qu'est-ce qui est conservé ?",)),
    ]
    for answer in answers:
        assert synthqa_ray.answer_from_json(synthqa_ray.answer_json(answer)) == answer


def test_rate_limits_are_shared_between_ask_tasks():
    assert synthqa_ray._share(None, 4) is None
    assert synthqa_ray._share(600, 4) == 150
    assert synthqa_ray._share(100, 3) == 33  # rounded down: together the tasks stay under the limit
    assert synthqa_ray._share(3, 4) == 1  # never 0: a task must be able to ask


def test_ray_tasks_without_ray_is_refused(docs, tmp_path, fake_server):
    proc = run_cli("generate", docs, "-o", tmp_path / "out", "--base-url", fake_server.base_url, "--ray-tasks", "2")
    assert proc.returncode == 2 and "--ray-tasks is for runs on Ray: add --ray" in proc.stderr, proc.stderr
    assert fake_server.requests == 0 and not (tmp_path / "out").exists()


def test_a_cluster_address_where_nothing_listens_is_one_line(docs, tmp_path, fake_server):
    import socket

    with socket.socket() as closed:  # a port that was free a moment ago: nothing listens there
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    proc = run_cli("generate", docs, "-o", tmp_path / "out", "--base-url", fake_server.base_url,
                   "--ray-address", f"127.0.0.1:{port}", env=cli_env(OPENAI_API_KEY="sk-test"))
    assert proc.returncode == 3, proc.stderr
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in proc.stderr and "Traceback" not in proc.stderr
    assert fake_server.requests == 0
