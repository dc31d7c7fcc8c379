"""Helpers for end-to-end tests: run the real `synthqa` CLI in a subprocess, read what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
