"""Shared fixtures. ``fake_server`` is a real OpenAI-compatible server on 127.0.0.1 (see fakeserver.py)."""

from __future__ import annotations

import pytest

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


@pytest.fixture(autouse=True)
def _isolated_hf_cache(tmp_path_factory, monkeypatch):
    """A fresh `datasets` cache per test: its cache key for a local folder ignores where the folder is
    (two folders both named ``out`` share an entry), so one test would read another's stale dataset."""
    import datasets

    cache = tmp_path_factory.mktemp("hf-datasets-cache")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
