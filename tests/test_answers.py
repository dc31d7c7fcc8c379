"""Reference answers (`--answers`): asked in the same request, parsed, cached, stored, flagged when ungrounded."""

from __future__ import annotations

import json
import re

import datasets
import pytest

from e2e import generate, make_policy_folder, read_out
from fakeserver import INVENTED, answer_for
from synthqa.cache import Cache
from synthqa.filters import answer_grounded, answer_grounding
from synthqa.prompts import load_template
from synthqa.questions import ANSWERS_INSTRUCTION, ParseError, build_messages, parse_answered, response_format
from synthqa.records import Answer

Q1, Q2 = "What is the flood deductible?", "Who may cancel the policy?"
A1, A2 = "The deductible is 500 euros.", "Either party, with 30 days' notice."
PAIRS = [{"question": Q1, "answer": A1}, {"question": Q2, "answer": A2}]


@pytest.mark.parametrize("content", [
    json.dumps({"questions": PAIRS}),
    json.dumps(PAIRS),
    "Here:\n```json\n" + json.dumps({"questions": PAIRS}, indent=2) + "\n```",
    json.dumps({"questions": PAIRS + [{"question": "Is there a third one?"}]}),  # no answer: left out
    json.dumps({"questions": PAIRS})[:-30] + ', {"question": "Cut', ],  # cut off: complete pairs kept
    ids=["object", "list", "fenced", "one-without-answer", "cut-off"])
def test_parse_answered_reads_question_answer_objects(content):
    expected = [(Q1, A1), (Q2, A2)] if "Cut" not in content else [(Q1, A1)]
    assert parse_answered(content) == expected


@pytest.mark.parametrize("content", [json.dumps({"questions": [Q1, Q2]}), f"1. {Q1}\n2. {Q2}", "", "No idea."])
def test_questions_without_answers_do_not_parse_when_answers_were_asked(content):
    with pytest.raises(ParseError):
        parse_answered(content)


def test_the_request_asks_for_answers_only_with_answers():
    template = load_template()
    plain, answered = (build_messages(template, "Some chunk text.", 2, answers=answers) for answers in (False, True))
    assert ANSWERS_INSTRUCTION not in plain[-1]["content"] and answered[-1]["content"].endswith(ANSWERS_INSTRUCTION)
    schema = response_format(2, "json_schema", answers=True)["json_schema"]["schema"]
    item = schema["properties"]["questions"]["items"]
    assert item["required"] == ["question", "answer"] and item["additionalProperties"] is False
    assert response_format(2, "json_object", answers=True)["schema"] == schema
    assert response_format(2, "json_schema")["json_schema"]["schema"]["properties"]["questions"]["items"] == {
        "type": "string"}


def test_answers_survive_the_cache_and_old_rows_still_read(tmp_path):
    with Cache(tmp_path / "c.sqlite") as cache:
        answered = Answer("c1", (Q1, Q2), answers=(A1, A2))
        cache.put("k1", answered)
        assert cache.get("k1") == answered
        cache._db.execute("INSERT INTO answers VALUES ('k0', 'c0', ?, NULL, 0, 1, 1, 1, 1, 0)",
                          (json.dumps([Q1]),))  # a row written before answers existed
        assert cache.get("k0") == Answer("c0", (Q1,), attempts=1, usage=cache.get("k0").usage)


def test_grounding_counts_content_words_found_in_the_chunk():
    chunk = "Employees must report data breaches to the security office within 24 hours of discovery."
    assert answer_grounding("They report breaches within 24 hours.", chunk) == 1.0  # "report", "breach", "24"
    assert answer_grounded("The security office, within 24 hours.", chunk)
    assert not answer_grounded(INVENTED, chunk)
    assert answer_grounding("Yes.", chunk) == 1.0  # nothing to check


def test_answers_end_to_end_against_the_fake_server(tmp_path, make_fake_server):
    docs = make_policy_folder(tmp_path / "docs", docs=2, pages=3)
    fake = make_fake_server(ungrounded_substring="Facial recognition")
    out = tmp_path / "out"
    proc = generate(docs, out, fake, "--answers")
    assert proc.returncode == 0, proc.stderr
    tables = read_out(out)
    corpus = {c["id"]: c["text"] for key, rows in tables.items() if key.startswith("corpus/") for c in rows}
    queries = [q for key, rows in tables.items() if key.startswith("queries/") for q in rows]
    assert queries and all(q["answer"] for q in queries)
    for q in queries:  # each answer is the one the server wrote for that question of that chunk
        n = int(q["id"].rsplit("-", 1)[1])
        chunk = corpus[q["chunk_id"]]
        assert q["answer"] == answer_for(chunk, n, grounded="Facial recognition" not in chunk)
    ungrounded = sum(1 for q in queries if "Facial recognition" in corpus[q["chunk_id"]])
    manifest = json.loads((out / "synthqa.json").read_text())
    assert 0 < ungrounded < len(queries) and manifest["counts"]["ungrounded_answers"] == ungrounded
    assert manifest["options"]["answers"] is True
    assert re.search(rf"reference answers +{len(queries)} \({ungrounded} ungrounded", proc.stdout), proc.stdout
    card = (out / "README.md").read_text()
    assert "`answer`" in card and f"{ungrounded} answer" in card
    assert datasets.load_dataset(str(out), "queries")["train"].column_names[-1] == "answer"

    asked = fake.requests
    assert generate(docs, out, fake, "--answers").returncode == 0 and fake.requests == asked  # all cached
    plain = generate(docs, out, fake)
    assert plain.returncode == 1 and "answers True → False" in plain.stderr  # another dataset setting


def test_dry_run_counts_the_answer_tokens(tmp_path, fake_server):
    docs = make_policy_folder(tmp_path / "docs", docs=1, pages=2)

    def tokens(*extra):
        proc = generate(docs, tmp_path / "out", fake_server, "--dry-run", *extra)
        assert proc.returncode == 0, proc.stderr
        return [int(re.search(rf"{kind} tokens\s+~(\d+)", proc.stdout).group(1)) for kind in ("prompt", "completion")]

    (p0, c0), (p1, c1) = tokens(), tokens("--answers")
    assert fake_server.requests == 0
    assert p1 > p0 and c1 > c0 * 2  # the instruction in every prompt, an answer beside every question
