"""Shared fixtures. ``fake_server`` is a real OpenAI-compatible server on 127.0.0.1 (see fakeserver.py)."""

from __future__ import annotations

import os

import pytest

from browser import browser  # noqa: F401 — the headless Chromium fixture of the HTML tests
from e2e import COMMON, CORPORA, read_out, run_cli
from fakeserver import FakeOpenAI


@pytest.fixture
def fake_server():
    """A started ``FakeOpenAI`` with no latency and no faults; tweak its attributes or build your own."""
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def make_fake_server():
    """Factory: ``make_fake_server(latency=0.1, faults={"429": 0.2}, api_key="k")``; all are stopped after."""
    started: list[FakeOpenAI] = []

    def make(**kwargs) -> FakeOpenAI:
        fake = FakeOpenAI(**kwargs).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> dict:
    """The tables of an uninterrupted run of the interruptible job (e2e.COMMON), to compare reruns with."""
    out = tmp_path_factory.mktemp("clean") / "out"
    with FakeOpenAI(latency=0.05) as fake:
        proc = run_cli("generate", CORPORA, "-o", out, "--base-url", fake.base_url, *COMMON)
    assert proc.returncode == 0, proc.stderr
    return read_out(out)


@pytest.fixture(autouse=True)
def _isolated_hf_cache(tmp_path_factory, monkeypatch):
    """A fresh `datasets` cache per test: its cache key for a local folder ignores where the folder is
    (two folders both named ``out`` share an entry), so one test would read another's stale dataset."""
    import datasets

    cache = tmp_path_factory.mktemp("hf-datasets-cache")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# In CI (SYNTHQA_REQUIRE_ALL=1) every optional piece — the embedded model, torch, chromium — is installed,
# so a test that skips there hides a broken install step: count any skip as a failure.
_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_terminal_summary(terminalreporter):
    if os.environ.get("SYNTHQA_REQUIRE_ALL") and _skipped:
        terminalreporter.write_line(
            f"SYNTHQA_REQUIRE_ALL: {len(_skipped)} test(s) skipped, which fails this run: {', '.join(_skipped[:5])}",
            red=True,
        )


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("SYNTHQA_REQUIRE_ALL") and _skipped and exitstatus == 0:
        session.exitstatus = 1
