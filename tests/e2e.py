"""Helpers for end-to-end tests: run the real `synthqa` CLI in a subprocess, read what it wrote."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from pdfmaker import make_pdf

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO / "corpora"

POLICY_PARAGRAPHS = [
    "Employees must report data breaches to the security office within 24 hours of discovery. "
    "The report names the systems affected, the records exposed, and the steps already taken.",
    "Automated hiring systems are audited every year by an independent reviewer who checks selection "
    "rates across protected groups and publishes a summary of the findings.",
    "Retention schedules keep financial records for seven years and personnel files for five years after "
    "separation; anything older is destroyed with a certificate of destruction.",
    "Vendors processing personal data sign a data protection agreement that limits use to the contracted "
    "purpose and requires notice of any sub-processor changes thirty days in advance.",
    "Facial recognition may not be used in public housing without a written impact assessment, a public "
    "comment period of sixty days, and approval by the oversight board.",
    "Model cards describe intended uses, evaluation data, known limitations and the contact for reporting "
    "harms, and are updated with every major release of the system.",
]


def policy_pages(n_pages: int, seed: int = 0) -> list[str]:
    """Pages of varied policy-like prose (each about 1,500 characters, so several chunks a page)."""
    pages = []
    for p in range(n_pages):
        paras = [POLICY_PARAGRAPHS[(p * 3 + i + seed) % len(POLICY_PARAGRAPHS)] for i in range(4)]
        pages.append(f"Section {p + 1}. Policy area {p + 1}.\n\n" + "\n\n".join(f"{para} (Clause {p + 1}.{i + 1}.)" for i, para in enumerate(paras)))
    return pages


def make_policy_folder(folder: Path, docs: int = 2, pages: int = 4) -> Path:
    """A folder of small real PDFs with distinct policy text."""
    for d in range(docs):
        make_pdf(folder / f"policy-{d + 1}.pdf", policy_pages(pages, seed=d))
    return folder


def spans(text: str, width: int = 50) -> set[str]:
    """Every ``width``-character span of ``text`` (whitespace collapsed): text two chunks share shows up here."""
    flat = " ".join(text.split())
    return {flat[i:i + width] for i in range(max(1, len(flat) - width + 1))}


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "HF_TOKEN"))}
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``synthqa ARGS`` as a user would; returns the finished process (text stdout/stderr)."""
    return subprocess.run(
        [sys.executable, "-m", "synthqa", *map(str, args)],
        env=env if env is not None else cli_env(OPENAI_API_KEY="sk-test"),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def generate(inputs, out, fake, *extra, env=None, embed=False) -> subprocess.CompletedProcess:
    """Run `synthqa generate` against ``fake``. BM25-only round-trip unless ``embed``: loading the MiniLM
    embedder costs seconds a run, and only the tests of the embedding ranks need to see it at work."""
    flags = () if embed else ("--no-embed-roundtrip",)
    return run_cli("generate", inputs, "-o", out, "--base-url", fake.base_url, "--no-progress", *flags, *extra,
                   env=env)


def read_out(out: Path) -> dict[str, list[dict]]:
    """Every table of an output folder as rows, keyed "config/split" (e.g. "corpus/eval"), found through
    the manifest; also checks that data/ holds exactly the files the manifest names."""
    files = json.loads((Path(out) / "synthqa.json").read_text())["data_files"]
    named = {path for split_files in files.values() for path in split_files.values()}
    on_disk = {str(p.relative_to(out)) for p in (Path(out) / "data").rglob("*.parquet")}
    assert on_disk == named, (on_disk, named)
    return {
        f"{config}/{split}": pq.read_table(Path(out) / path).to_pylist()
        for config, split_files in files.items()
        for split, path in split_files.items()
    }


# An interruptible run: the corpora's first 48 chunks, 4 in flight, so a test can stop it part-way.
LIMIT = "48"
COMMON = ("--no-progress", "--no-embed-roundtrip", "--limit", LIMIT, "--concurrency", "4")


def start_generate(out: Path, fake, *, sigint_ignored: bool = False) -> subprocess.Popen:
    """`synthqa generate` on the corpora in a child. SIGINT starts at its default, or with
    ``sigint_ignored`` ignored as a background job or a script starts it (SIG_IGN survives exec)."""
    disposition = signal.SIG_IGN if sigint_ignored else signal.SIG_DFL
    cmd = [sys.executable, "-m", "synthqa", "generate", str(CORPORA), "-o", str(out), "--base-url", fake.base_url,
           *COMMON]
    return subprocess.Popen(cmd, env=cli_env(OPENAI_API_KEY="sk-test"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, disposition))


def stored(out: Path) -> int:
    """Answers committed to the cache of ``out`` so far (read-only, beside the writer)."""
    db = out / ".synthqa" / "cache.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            return con.execute("select count(*) from answers").fetchone()[0]
    except sqlite3.Error:
        return 0


def wait_for(out: Path, n: int, proc: subprocess.Popen) -> None:
    """Until ``n`` answers are stored; the run must still be going (pytest-timeout guards a hang)."""
    while stored(out) < n:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.02)
