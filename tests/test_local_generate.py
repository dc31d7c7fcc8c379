"""`synthqa generate` on the real embedded model (Qwen2.5-Coder-0.5B via llama.cpp), no key, no network."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest

from e2e import cli_env, read_out, run_cli
from e2e import stored as answers_in_cache
from pdfmaker import make_pdf
from test_local import _wait_gone, needs_model

PAGES = [
    "Employees must report a data breach to the security office within 24 hours of discovering it. The report "
    "names the systems affected, the kinds of records exposed, and the containment steps already taken. "
    "The security office informs affected customers within 72 hours when their personal data was exposed.",
    "Automated hiring tools are audited every year by an independent reviewer. The audit compares selection "
    "rates across protected groups and the reviewer publishes a plain-language summary of the findings. "
    "A tool that fails the audit is withdrawn until the vendor fixes the disparity.",
    "Financial records are kept for seven years and personnel files for five years after an employee leaves. "
    "Records past their retention period are destroyed, and a certificate of destruction is filed with the "
    "records office. Legal holds suspend destruction until the hold is lifted by counsel.",
    "Facial recognition may not be used in public housing without a written impact assessment, a public "
    "comment period of sixty days, and approval by the oversight board. The board reviews each approval "
    "every two years and may revoke it when complaints show misuse.",
]


@pytest.fixture
def docs(tmp_path) -> Path:
    return make_pdf(tmp_path / "docs" / "handbook.pdf", PAGES).parent


def llama_children(pid: int) -> list[int]:
    """PIDs of llama.cpp server processes whose parent is ``pid``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"llama_cpp.server" in cmdline:
            found.append(int(proc.name))
    return found


@pytest.mark.timeout(600)
@needs_model
def test_offline_generation_with_the_embedded_model(docs, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "synthqa", "generate", str(docs), "-o", str(out), "--limit", "3", "--no-progress",
         "--no-embed-roundtrip"],
        env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    servers: set[int] = set()
    while proc.poll() is None:  # note the server's pid while it runs, to check it is gone afterwards
        servers.update(llama_children(proc.pid))
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    assert "embedded local model" in stderr  # said on one line, since no key and no base URL were given
    assert servers and all(_wait_gone(pid) for pid in servers)

    manifest = json.loads((out / "synthqa.json").read_text())
    assert manifest["local"] is True and manifest["model"] == "qwen0.5b"
    assert manifest["counts"]["chunks_asked"] == 3 and manifest["failed_chunks"] == []
    pairs = datasets.load_dataset(str(out))
    questions = [row["sentence_0"] for split in ("train", "eval") for row in pairs[split]]
    assert len(questions) >= 3 and all(q.strip().endswith("?") for q in questions)
    assert pairs["train"].column_names == ["sentence_0", "sentence_1"]


@pytest.mark.timeout(900)
@needs_model
def test_server_killed_mid_run_is_reported_and_the_next_run_resumes(docs, tmp_path):
    out = tmp_path / "out"
    args = ["generate", str(docs), "-o", str(out), "--local", "--limit", "4", "--no-progress",
            "--no-embed-roundtrip", "--max-retries", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "synthqa", *args], env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    db = out / ".synthqa" / "cache.sqlite"
    import sqlite3

    # read as 0 until the answers table exists: the file appears a moment before its schema does
    while answers_in_cache(out) < 1:
        assert proc.poll() is None, "run ended before the server could be killed"
        time.sleep(0.05)
    # Freeze the server first: from here it writes no answer, however slowly this test gets scheduled.
    servers = llama_children(proc.pid)
    for pid in servers:
        os.kill(pid, signal.SIGSTOP)
    for pid in servers:
        os.kill(pid, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 3, stderr
    assert "stopped mid-run: it was killed" in stderr and "rerun the same command" in stderr
    assert "Traceback" not in stderr
    with sqlite3.connect(db) as con:
        stored = con.execute("select count(*) from answers where error is null").fetchone()[0]
        assert con.execute("select count(*) from answers where error is not null").fetchone()[0] == 0
    assert stored >= 1  # and, since the run ended with 3, not all of its 4 chunks

    again = run_cli(*args, env=cli_env(), timeout=600)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr
    manifest = json.loads((out / "synthqa.json").read_text())
    assert manifest["counts"]["requests_this_run"] >= 4 - stored  # a re-asked chunk counts twice
    assert len(read_out(out)["corpus/train"] + read_out(out)["corpus/eval"]) == 4
