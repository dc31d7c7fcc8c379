"""`synthqa inspect`: summary, sampling, search, one chunk, failures, a run in progress, a real run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import synthqa
from fakeserver import FakeOpenAI
from pdfmaker import make_pdf
from synthqa.cache import Cache, answer_key, cache_path
from synthqa.errors import DatasetError
from synthqa.inspect import inspect_dataset
from synthqa.records import Answer, Usage
from manifests import write_contract_folder

SRC = str(Path(synthqa.__file__).resolve().parents[1])


def run_cli(*args, cwd=None, env=None):
    full = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1", "COLUMNS": "72", **(env or {})}
    return subprocess.run([sys.executable, "-m", "synthqa", *args], capture_output=True, text=True, env=full,
                          cwd=cwd, timeout=300)


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "out"
    write_contract_folder(folder)
    return folder


def test_summary_and_sample_fit_the_width(out):
    text = inspect_dataset(out, n=3, seed=1, width=60)
    assert all(len(line) <= 60 for line in text.splitlines()), text
    for needle in ("gpt-4o-mini @ api.openai.com", "2 (3 pages)", "6 train / 2 eval", "duplicate 2",
                   "reference list 1", "failed chunks:", "4,000 prompt + 300 completion", "approximate",
                   "text cleaning: 12 characters normalised", "2 page numbers removed",
                   "OCR: 1 page(s) without a text layer"):
        assert needle in " ".join(text.split()), needle
    assert text.count("Q: ") == 3
    assert inspect_dataset(out, n=3, seed=1, width=60) == text  # same seed, same sample
    assert inspect_dataset(out, n=8, seed=2, width=60) != inspect_dataset(out, n=8, seed=3, width=60)


def test_split_and_search(out):
    assert inspect_dataset(out, n=5, split="eval", width=100).count("[eval]") == 2
    text = inspect_dataset(out, search="TRAVEL", width=100)
    assert text.startswith("2 pair(s) match 'TRAVEL'")
    assert "Who approves travel expenses?" in text and "budget/fy24.pdf p.2" in text
    # A word that only occurs in the chunk text also matches.
    assert "1 pair(s)" not in inspect_dataset(out, search="inventories", width=100)
    assert inspect_dataset(out, search="inventories", split="eval", width=100).startswith("0 pair(s)")


def test_chunk_and_failed(out):
    text = inspect_dataset(out, chunk="d" * 16, width=100)
    assert "omb-memo.pdf p.1 · eval" in text and "Zero trust architecture" in text
    assert "When is zero trust adoption due?" in text and "2 question(s)" in text
    failed = inspect_dataset(out, failed=True, width=100)
    assert "unparseable answer after 3 attempts" in failed and "scan.pdf" in failed


def test_bad_values_are_one_line(out, tmp_path):
    with pytest.raises(DatasetError, match="has no questions"):
        inspect_dataset(out, chunk="0123456789abcdef")
    proc = run_cli("inspect", str(tmp_path / "nowhere" / "x"))
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    (tmp_path / "empty").mkdir()
    proc = run_cli("inspect", str(tmp_path / "empty"))
    assert "synthqa.json" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_run_in_progress_reads_the_cache_while_it_is_written(tmp_path):
    out = tmp_path / "running"
    with Cache(cache_path(out)) as writer:  # the generating process keeps it open
        for i in range(3):
            key = answer_key(model="m", prompt_sha256="p", chunk_text=f"c{i}", n_questions=2, temperature=0.0)
            writer.put(key, Answer(f"{i:016x}", ("Q1?", "Q2?"), usage=Usage(1, 100, 20), attempts=1))
        writer.put("bad", Answer("f" * 16, error="unparseable answer: no JSON list", usage=Usage(3, 300, 9)))
        text = inspect_dataset(out, width=100)
        assert "run in progress" in text
        flat = " ".join(text.split())
        assert "chunks answered: 3" in flat and "queries so far: 6" in flat and "requests" not in flat
        assert "failed chunks: 1" in flat and "unparseable answer" in flat
        assert "600 prompt + 69 completion" in flat
        writer.put("late", Answer("e" * 16, ("Q?",), usage=Usage(1, 1, 1)))  # still writable meanwhile
        assert "chunks answered: 4" in " ".join(inspect_dataset(out, width=100).split())
        # a styled run asks the same chunk once per style: one chunk, two requests
        key = answer_key(model="m", prompt_sha256="p", chunk_text="c0", n_questions=1, temperature=0.0,
                         style="keyword")
        writer.put(key, Answer(f"{0:016x}", ("zero trust deadline",), usage=Usage(1, 1, 1)))
        flat = " ".join(inspect_dataset(out, width=100).split())
        assert "chunks answered: 4 (5 requests: one per chunk and query style)" in flat


def test_cli_on_a_real_generated_folder(tmp_path):
    pages = ["Travel expenses need prior written approval by the office director before booking. " * 6,
             "Agencies must publish an open data inventory every year and keep it current. " * 6]
    make_pdf(tmp_path / "pdfs" / "memo.pdf", pages)
    out = tmp_path / "out"
    with FakeOpenAI() as fake:
        gen = run_cli("generate", str(tmp_path / "pdfs"), "-o", str(out), "--base-url", fake.base_url,
                      "--no-progress", "--eval-fraction", "0.5", env={"OPENAI_API_KEY": "test-key"})
    assert gen.returncode == 0, gen.stderr
    proc = run_cli("inspect", str(out), "-n", "2")
    assert proc.returncode == 0, proc.stderr
    assert "memo.pdf p." in proc.stdout and "1 (2 pages)" in proc.stdout and proc.stdout.count("Q: ") == 2
    assert all(len(line) <= 72 for line in proc.stdout.splitlines())
    chunk_id = proc.stdout.split("· chunk ")[1].split()[0]
    one = run_cli("inspect", str(out), "--chunk", chunk_id)
    assert one.returncode == 0 and f"chunk {chunk_id}" in one.stdout
