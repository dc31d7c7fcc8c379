"""Any document, any language, end to end: `synthqa generate` on French, German, Spanish, mixed and Word/HTML
input against the fake server, which answers in the language the prompt names, or drifts on request."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import docx
import yaml
from e2e import POLICY_PARAGRAPHS, generate, read_out, run_cli
from pdfmaker import make_pdf

from synthqa import language
from synthqa.manifest import SCHEMA_VERSION
from synthqa.report import build_report

TEXTS = Path(__file__).resolve().parents[1] / "bench" / "texts"


def card_meta(out: Path) -> dict:
    return yaml.safe_load((out / "README.md").read_text().split("---\n")[1])


def corpus_and_queries(out: Path) -> tuple[list[dict], list[dict]]:
    tables = read_out(out)
    return ([r for k, rows in tables.items() if k.startswith("corpus/") for r in rows],
            [r for k, rows in tables.items() if k.startswith("queries/") for r in rows])


def test_french_german_and_spanish_documents_get_questions_in_their_language(tmp_path, make_fake_server):
    docs = tmp_path / "docs"
    shutil.copytree(TEXTS, docs)
    fake = make_fake_server()
    out = tmp_path / "out"
    proc = generate(docs, out, fake)
    assert proc.returncode == 0, proc.stderr
    corpus, queries = corpus_and_queries(out)
    expected = {"policy-fr.md": "fr", "policy-de.md": "de", "policy-es.md": "es"}
    assert {c["source"]: c["language"] for c in corpus} == expected
    # Every request named its chunk's language; every question is in it.
    language_of_text = {c["text"]: c["language"] for c in corpus}
    assert all(entry["language"] == language_of_text[entry["chunk"]] for entry in fake.log)
    language_of = {c["id"]: c["language"] for c in corpus}
    assert queries and all(language.in_language(q["text"], language_of[q["chunk_id"]]) for q in queries)

    manifest = json.loads((out / "synthqa.json").read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION and manifest["language_check"] is True
    per_language = {code: sum(language_of[q["chunk_id"]] == code for q in queries) for code in expected.values()}
    assert manifest["languages"] == {
        code: {"chunks": sum(c["language"] == code for c in corpus), "questions": per_language[code]}
        for code in sorted(expected.values())
    }
    assert manifest["question_filters"]["wrong_language"] == 0
    meta = card_meta(out)
    assert meta["language"] == ["de", "es", "fr"] and meta["multilinguality"] == "multilingual"
    assert "French (fr): 3 chunk(s)" in (out / "README.md").read_text()
    assert "languages" in proc.stdout and "fr 3 chunk(s)" in proc.stdout
    html = build_report(out)
    assert "Questions per language" in html and "Spanish (es)" in html


def test_a_mixed_english_and_french_document_asks_each_chunk_in_its_own_language(tmp_path, make_fake_server):
    english = "\n\n".join(POLICY_PARAGRAPHS[:4])
    french = (TEXTS / "policy-fr.md").read_text(encoding="utf-8").split("## Article 3")[0]
    doc = tmp_path / "docs" / "bilingual.md"
    doc.parent.mkdir()
    doc.write_text(f"# Data policy / Politique des données\n\n## English\n\n{english}\n\n## Français\n\n{french}",
                   encoding="utf-8")
    fake = make_fake_server()
    out = tmp_path / "out"
    proc = generate(doc.parent, out, fake, "--chunk-size", "600", "--chunk-overlap", "100")
    assert proc.returncode == 0, proc.stderr
    corpus, queries = corpus_and_queries(out)
    assert {c["language"] for c in corpus} == {"en", "fr"}
    assert {e["language"] for e in fake.log} == {"en", "fr"}
    language_of = {c["id"]: c["language"] for c in corpus}
    assert all(language.in_language(q["text"], language_of[q["chunk_id"]]) for q in queries)
    assert set(card_meta(out)["language"]) == {"en", "fr"}


def test_questions_in_the_wrong_language_are_reasked_once_then_dropped_and_counted(tmp_path, make_fake_server):
    docs = tmp_path / "docs"
    shutil.copytree(TEXTS, docs)
    fake = make_fake_server(wrong_language=1, wrong_on_reask=True)
    out = tmp_path / "out"
    proc = generate(docs, out, fake)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "synthqa.json").read_text())
    chunks = manifest["counts"]["chunks_asked"]
    assert fake.requests == 2 * chunks and sum(e["reask"] for e in fake.log) == chunks
    assert manifest["question_filters"]["wrong_language"] == chunks
    assert manifest["counts"]["questions_generated"] == 2 * chunks and manifest["counts"]["questions"] == chunks
    assert "dropped: wrong_language" in proc.stdout
    assert f"asked again once, then dropped ({chunks} dropped)" in (out / "README.md").read_text()
    # A model that gets it right when asked again loses nothing.
    fake = make_fake_server(wrong_language=1)
    proc = generate(docs, tmp_path / "out2", fake)
    manifest = json.loads((tmp_path / "out2" / "synthqa.json").read_text())
    assert manifest["question_filters"]["wrong_language"] == 0 and manifest["counts"]["questions"] == 2 * chunks


def test_a_prompt_without_language_is_sent_as_written_and_not_checked(tmp_path, make_fake_server):
    docs = tmp_path / "docs"
    shutil.copytree(TEXTS, docs)
    prompt = tmp_path / "english.txt"
    prompt.write_text("Write $n_questions questions in English about:\n<chunk>\n$chunk\n</chunk>\n", encoding="utf-8")
    fake = make_fake_server()
    out = tmp_path / "out"
    proc = generate(docs, out, fake, "--prompt", prompt)
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stderr.splitlines() if "$language" in line] == [
        "synthqa: prompt 'english' has no $language: questions are not checked against their chunk's language "
        "(see prompts/README.md)"]
    manifest = json.loads((out / "synthqa.json").read_text())
    assert manifest["language_check"] is False and manifest["question_filters"]["wrong_language"] == 0
    assert manifest["counts"]["questions"] == manifest["counts"]["questions_generated"]  # English ones kept
    assert "questions were not checked" in (out / "README.md").read_text()
    assert "questions not checked: the prompt has no $language" in proc.stdout


def test_word_html_and_pdf_files_are_read_together(tmp_path, fake_server):
    docs = tmp_path / "docs"
    make_pdf(docs / "retention.pdf", [POLICY_PARAGRAPHS[2] + "\n\n" + POLICY_PARAGRAPHS[3]])
    document = docx.Document()
    document.add_heading("Breach reporting", level=1)
    document.add_paragraph(POLICY_PARAGRAPHS[0])
    document.save(docs / "breaches.docx")
    (docs / "hiring.html").write_text(f"<nav>Home</nav><main><h1>Hiring audits</h1><p>{POLICY_PARAGRAPHS[1]}</p>"
                                      "</main><footer>Imprint</footer>", encoding="utf-8")
    (docs / "old-memo.doc").write_bytes(b"\xd0\xcf\x11\xe0")
    out = tmp_path / "out"
    proc = generate(docs, out, fake_server)
    assert proc.returncode == 0, proc.stderr
    assert "old-memo.doc: unsupported file type .doc: save it as .docx or PDF" in proc.stderr
    corpus, _ = corpus_and_queries(out)
    texts = {c["source"]: c["text"] for c in corpus}
    assert set(texts) == {"retention.pdf", "breaches.docx", "hiring.html"}
    assert texts["breaches.docx"].startswith("# Breach reporting\n\nEmployees must report data breaches")
    assert texts["hiring.html"].startswith("# Hiring audits") and "Home" not in texts["hiring.html"]
    assert "Imprint" not in texts["hiring.html"]
    assert run_cli("inspect", out).stdout.count("en 3 chunk(s)") == 1
