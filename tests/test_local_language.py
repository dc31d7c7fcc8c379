"""A French document through the real embedded model (qwen0.5b via llama.cpp), offline, end to end.

Kept short (two chunks): the model takes about ten seconds a chunk on a busy 2-core machine. The share of
questions in the chunk's language is measured in bench/bench_languages.py, not here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from e2e import cli_env, read_out, run_cli
from test_local import needs_model

from synthqa import language

FRENCH = (Path(__file__).resolve().parents[1] / "bench" / "texts" / "policy-fr.md").read_text(encoding="utf-8")


@pytest.mark.timeout(900)
@needs_model
def test_a_french_file_gets_french_questions_from_the_embedded_model(tmp_path):
    doc = tmp_path / "docs" / "protection-des-donnees.md"
    doc.parent.mkdir()
    doc.write_text(FRENCH.split("## Article 4")[0], encoding="utf-8")
    out = tmp_path / "out"
    proc = run_cli("generate", doc.parent, "-o", out, "--local", "--limit", "2", "--no-progress",
                   "--no-embed-roundtrip", env=cli_env(), timeout=900)
    assert proc.returncode == 0, proc.stderr

    manifest = json.loads((out / "synthqa.json").read_text())
    assert manifest["local"] is True and manifest["language_check"] is True
    assert list(manifest["languages"]) == ["fr"] and manifest["languages"]["fr"]["chunks"] == 2
    counts = manifest["counts"]
    assert counts["questions_generated"] == counts["questions"] + sum(manifest["question_filters"].values())
    assert counts["requests"] >= 2  # one a chunk, and one more for each answer with a non-French question
    tables = read_out(out)
    corpus = [r for k, rows in tables.items() if k.startswith("corpus/") for r in rows]
    queries = [r for k, rows in tables.items() if k.startswith("queries/") for r in rows]
    assert [c["language"] for c in corpus] == ["fr", "fr"]
    assert queries, "the model kept no question at all"
    assert all(language.in_language(q["text"], "fr") for q in queries), [q["text"] for q in queries]
    assert manifest["languages"]["fr"]["questions"] == len(queries)
    meta = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])
    assert meta["language"] == ["fr"] and meta["multilinguality"] == "monolingual"
