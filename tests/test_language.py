"""Language detection of chunks and the check of questions (py3langid, offline, its model in the wheel)."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from synthqa import language
from synthqa.chunks import split_pages
from synthqa.pdfs import load_pages

TEXTS = Path(__file__).resolve().parents[1] / "bench" / "texts"
CORPORA = Path(__file__).resolve().parents[1] / "corpora"


@pytest.mark.parametrize("code", ["fr", "de", "es"])
def test_every_chunk_of_the_policy_texts_gets_its_language(code):
    chunks = list(split_pages(load_pages([TEXTS / f"policy-{code}.md"])))
    assert len(chunks) >= 3
    assert {language.detect(c.text) for c in chunks} == {code}


def test_english_policy_chunks_are_english():
    pages = [p for p in itertools.islice(load_pages([CORPORA / "NIST.AI.600-1.pdf"]), 14) if p.page >= 10]
    assert {language.detect(c.text) for c in split_pages(pages)} == {"en"}


@pytest.mark.parametrize("text", ["12 34 56 78", "", "§ 4.2 — 17/03"])
def test_text_without_a_language_is_undetermined(text):
    assert language.detect(text) == language.UNDETERMINED


@pytest.mark.parametrize(
    ("question", "code", "expected"),
    [
        ("Combien de temps les dossiers du personnel sont-ils conservés ?", "fr", True),
        ("Quel est le rôle du Data Protection Officer selon la politique ?", "fr", True),  # a borrowed term
        ("How long are personnel files kept after an employee leaves?", "fr", False),
        ("Who must be told after having taken connaissance of a data breach?", "fr", False),  # the mix
        ("¿Cuántos días a la semana se puede teletrabajar como máximo?", "es", True),
        ("¿Cuántos días a la semana se puede teletrabajar como máximo?", "fr", False),
        ("Wie viele Zeichen muss ein Passwort mindestens enthalten?", "de", True),
        ("Wie viele Zeichen muss ein Passwort mindestens enthalten?", "nl", False),
        ("How long are personnel files kept after an employee leaves?", "en", True),
        ("How long are personnel files kept after an employee leaves?", language.UNDETERMINED, True),
    ],
)
def test_a_question_is_checked_against_its_chunks_language(question, code, expected):
    assert language.in_language(question, code) is expected


def test_every_language_it_can_return_has_a_name_and_an_iso_639_1_code():
    codes = language.codes()
    assert len(codes) > 100 and all(len(c) == 2 for c in codes)
    assert set(codes) <= set(language.NAMES)
    assert language.name("fr") == "French" and language.label("de") == "German (de)"
    assert language.name(language.UNDETERMINED) == "the language of the chunk"
    assert language.label(language.UNDETERMINED) == "undetermined (und)"


def test_threads_share_the_model_and_agree():
    texts = [c.text for c in split_pages(load_pages(sorted(TEXTS.glob("policy-*.md"))))]
    expected = [language.detect(t) for t in texts]
    results: list[list[str]] = []

    def work() -> None:
        results.append([language.detect(t) for t in texts])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4


def _bench_questions() -> list[str]:
    rows = (TEXTS.parent / "langid_questions.tsv").read_text(encoding="utf-8").splitlines()
    return [row.split("\t", 1)[1] for row in rows if row and not row.startswith("#")]


def test_checking_many_questions_at_once_decides_as_py3langids_rank():
    """The batched check (one automaton walk for all texts, one sparse product) against py3langid's own
    ``rank`` per question: the same decision for every question of the language bench in every language,
    script aliases (Serbian), featureless and upper-case texts, and a code the model does not have."""
    questions = [*_bench_questions(), "", "   ", "12 34 56", "ÉTÉ : QUI PAIE LES HEURES ?", "Кој плаќа?"]
    codes = ["en", "fr", "de", "es", "nl", "pt", "it", "sr", "ru", "ja", "xx"]
    pairs = [(q, c) for q in questions for c in codes]
    model = language._model()
    expected = [dict(model.rank(q)).get(c, 0.0) >= language.MIN_QUESTION_PROBABILITY for q, c in pairs]
    got = language.in_languages([q for q, _ in pairs], [c for _, c in pairs])
    assert got.tolist() == expected
    assert sum(expected) > len(questions) * 0.9  # the set holds questions in and out of each language
    assert [language.in_language(q, c) for q, c in pairs[:40]] == expected[:40]


def test_undetermined_or_unchecked_questions_pass_the_batched_check():
    got = language.in_languages(["How long are files kept?", "Wie lange?"], [language.UNDETERMINED, None])
    assert got.tolist() == [True, True]
    assert language.in_languages([], []).tolist() == []
