"""Questions in the chunk's language: named in the prompt, checked, re-asked once (a real server on loopback)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from synthqa import language
from synthqa.chunks import split_pages
from synthqa.pdfs import load_pages
from synthqa.prompts import load_template, render
from synthqa.questions import build_messages, generate, make_client
from synthqa.records import Chunk

TEXTS = Path(__file__).resolve().parents[1] / "bench" / "texts"
TEMPLATE = load_template()


def french_chunks() -> list[Chunk]:
    chunks = split_pages(load_pages([TEXTS / "policy-fr.md"]))
    return [Chunk(c.id, c.source, c.page, c.index, c.text, c.section, language.detect(c.text)) for c in chunks]


def ask(chunk_list, fake, template=TEMPLATE, **kwargs) -> dict:
    answers = {}

    async def main():
        client = make_client(fake.base_url, "k", timeout=5, max_retries=0, concurrency=4)
        try:
            await generate(chunk_list, client=client, template=template, n=2, model="m", concurrency=4,
                           mode="json_schema", on_answer=lambda c, a: answers.__setitem__(c.id, a), progress=False,
                           **kwargs)
        finally:
            await client.close()

    asyncio.run(main())
    return answers


def test_the_default_prompt_names_the_language_and_an_unknown_one_reads_well():
    system, user = render(TEMPLATE, chunk="Les données sont conservées.", n_questions=2, language="French")
    assert "write every question in French" in system and "Write 2 questions in French about this chunk" in user
    messages = build_messages(TEMPLATE, "texte", 2)
    assert "in the language of the chunk about this chunk" in messages[-1]["content"]
    assert TEMPLATE.uses_language


def test_questions_come_in_the_language_the_prompt_names(make_fake_server):
    fake = make_fake_server()
    chunks = french_chunks()
    answers = ask(chunks, fake)
    assert [e["language"] for e in fake.log] == ["fr"] * len(chunks) and fake.requests == len(chunks)
    for answer in answers.values():
        assert answer.ok and len(answer.questions) == 2 and answer.attempts == 1
        assert all(language.in_language(q, "fr") for q in answer.questions)


def test_a_question_in_another_language_is_reasked_once_and_replaced(make_fake_server):
    fake = make_fake_server(wrong_language=1)
    chunks = french_chunks()
    answers = ask(chunks, fake)
    assert fake.requests == 2 * len(chunks)
    for chunk in chunks:
        log = [e for e in fake.log if e["chunk"] == chunk.text]
        # The second ask carries the first answer and names the language again.
        assert [(e["reask"], e["language"]) for e in log] == [(False, "fr"), (True, "fr")]
        answer = answers[chunk.id]
        assert answer.usage.requests == 2 and answer.attempts == 2 and len(answer.questions) == 2
        assert all(language.in_language(q, "fr") for q in answer.questions)


def test_a_model_that_stays_in_the_wrong_language_is_asked_only_once_more(make_fake_server):
    fake = make_fake_server(wrong_language=1, wrong_on_reask=True)
    chunks = french_chunks()
    answers = ask(chunks, fake)
    assert fake.requests == 2 * len(chunks)
    for answer in answers.values():
        # The wrong question stays in the answer: the wrong_language filter drops it and counts it.
        assert [language.in_language(q, "fr") for q in answer.questions] == [True, False]


@pytest.mark.parametrize("how", ["check off", "undetermined chunk", "template without $language"])
def test_no_reask_when_the_language_is_not_checked(make_fake_server, tmp_path, how):
    fake = make_fake_server(wrong_language=1)
    chunks, template, kwargs = french_chunks()[:2], TEMPLATE, {}
    if how == "check off":
        kwargs["check_language"] = False
    elif how == "undetermined chunk":
        chunks = [Chunk(c.id, c.source, c.page, c.index, c.text, c.section, language.UNDETERMINED) for c in chunks]
    else:
        (tmp_path / "mine.txt").write_text("Write $n_questions questions in English.\n<chunk>\n$chunk\n</chunk>\n")
        template = load_template(tmp_path / "mine.txt")
        assert not template.uses_language
    ask(chunks, fake, template, **kwargs)
    assert fake.requests == len(chunks) and not any(e["reask"] for e in fake.log)
