"""--spare-questions: each request asks for more queries than are kept; spares stand in for dropped queries
and are chosen so no opener swamps the dataset (spares.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from e2e import generate, policy_pages, read_out, run_cli
from fakeserver import FakeOpenAI
from pdfmaker import make_pdf

from synthqa import spares
from synthqa.config import GenerateConfig
from synthqa.errors import ConfigError


# ------------------------------------------------------------------------------------------ choosing, pure
def test_an_opener_is_the_first_two_words_lower_cased_without_punctuation():
    assert spares.opener("What are the limits of data retention?") == "what are"
    assert spares.opener("  Why, then, is consent needed?") == "why then"
    assert spares.opener("Retention?") == "retention"
    assert spares.opener("") == ""


def test_without_an_overused_opener_the_first_queries_in_the_models_order_are_kept():
    chooser = spares.OpenerChooser()
    assert chooser.choose("question", ["What is consent?", "How is data kept?", "Why is it kept?"], 2) == [
        True, True, False]
    assert chooser.choose("question", ["When is data deleted?", "Who keeps records?"], 2) == [True, True]


def test_an_opener_over_the_share_yields_to_a_later_query_whose_opener_is_not():
    chooser = spares.OpenerChooser(max_share=0.2)
    chooser.choose("question", ["What are the fees?", "How are fees paid?"], 2)  # what are 1 of 2: 50 %
    # "what are" holds more than 20 % of the kept queries: the third query takes the first one's place
    chosen = chooser.choose("question", ["What are the limits?", "How long is data kept?", "Why is consent asked?"], 2)
    assert chosen == [False, True, True]


def test_with_every_spare_overused_the_places_go_to_the_least_used_openers():
    chooser = spares.OpenerChooser(max_share=0.2)
    chooser.choose("question", ["What are the fees?", "How are fees paid?", "How are fees set?"], 3)
    assert chooser.choose("question", ["How are the limits set?", "What are the limits?", "What are appeals?"],
                          2) == [True, True, False]  # "what are" 1, "how are" 2: "what are" first, then "how are"
    # now "what are" 2, "how are" 3 of 5, both over 20 %: the one kept least takes the place
    assert chooser.choose("question", ["How are appeals heard?", "What are appeals?"], 1) == [False, True]


def test_a_chunk_with_fewer_survivors_than_its_count_keeps_them_all():
    chooser = spares.OpenerChooser()
    assert chooser.choose("question", ["What is consent?"], 2) == [True]
    assert chooser.choose("question", [], 2) == []


def test_styles_are_counted_apart():
    chooser = spares.OpenerChooser(max_share=0.2)
    chooser.choose("question", ["What are the fees?"], 1)
    # "what are" holds every kept question, but no keyword query yet: the keyword style keeps its first
    assert chooser.choose("keyword", ["what are fees", "consent forms"], 1) == [True, False]
    assert chooser.choose("question", ["What are the limits?", "Why is consent asked?"], 1) == [False, True]


def test_the_same_answers_keep_the_same_queries_and_the_share_holds_over_a_run():
    answers = [[f"{w} does the policy say about item {i}?" for w in ("What", "What", "How", "Why", "When")]
               for i in range(200)]
    first = [spares.OpenerChooser().choose("question", a, 2) for a in [answers[0]]]
    runs = []
    for _ in range(2):
        chooser = spares.OpenerChooser()
        runs.append([chooser.choose("question", a, 2) for a in answers])
    assert runs[0] == runs[1] and runs[0][0] == first[0]
    kept = Counter(spares.opener(q) for a, chosen in zip(answers, runs[0]) for q, c in zip(a, chosen) if c)
    assert sum(kept.values()) == 400
    # four openers among five queries a chunk: each ends near a quarter, none far over its fair share
    assert max(kept.values()) / 400 <= 0.26 and set(kept) == {"what does", "how does", "why does", "when does"}


def test_bad_spare_counts_are_refused_with_the_option_named(tmp_path):
    for bad in (-1, 19, 1.5):  # 2 kept + 19 spares would ask for 21 queries in one request
        with pytest.raises(ConfigError, match=f"--spare-questions {bad}: use a whole number from 0 to 18, so a "
                                              "request asks for at most 20 queries"):
            GenerateConfig(inputs=(tmp_path,), out=tmp_path / "out", spare_questions=bad)
    assert GenerateConfig(inputs=(tmp_path,), out=tmp_path / "out", spare_questions=18).asked_count() == 20


def test_an_exact_duplicate_makes_room_for_a_spare_and_a_left_out_spare_is_never_stored(tmp_path):
    from synthqa.dedupe import normalize_question
    from synthqa.pipeline.assemble import _spare_reasons
    from synthqa.store import RunStore

    with RunStore(tmp_path / "work.sqlite") as store:
        store.add_question(0, 0, "What are the fees?", normalize_question("What are the fees?"))
        questions = ["What are the fees?", "How are fees paid?", "How are fees paid ?", "Why is consent asked?",
                     "When is data deleted?", "Who keeps the records?"]
        reasons = _spare_reasons(store, spares.OpenerChooser(), "question", questions,
                                 [None, None, None, "copied_sentence", None, None], 2)
        # the stored copy and the repeat within the answer are duplicates; of the three left, two are kept
        assert reasons == ["duplicate", None, "duplicate", "copied_sentence", None, spares.SPARE_FILTER]
        assert not store.has_question(normalize_question("Who keeps the records?"))


def test_the_cli_refuses_a_negative_spare_count_in_one_line(tmp_path):
    proc = run_cli("generate", tmp_path, "-o", tmp_path / "out", "--spare-questions", "-2")
    assert proc.returncode == 2 and "--spare-questions" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------------ a real run
# The fake model's habits: the first question leans on "this principle" (the filters drop it), the second
# opens like most, the rest open otherwise.
HABITS = ("What does this principle say about", "What does the policy say about", "How does the policy treat",
          "Why does the policy mention", "When does the policy require")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("spares")
    make_pdf(folder / "docs" / "policy.pdf", policy_pages(6))
    outs = {}
    with FakeOpenAI(openers=HABITS) as fake:
        for name, extra in (("plain", ()), ("spares", ("--spare-questions", "3"))):
            proc = generate(folder / "docs", folder / name, fake, *extra)
            assert proc.returncode == 0, proc.stderr
            outs[name] = folder / name
        outs["requests"] = fake.requests
        again = generate(folder / "docs", folder / "spares", fake, "--spare-questions", "3", "--overwrite")
        assert again.returncode == 0, again.stderr
        outs["asked_again"] = fake.requests - outs["requests"]
        outs["summary"] = again.stdout + again.stderr
    return outs


def manifest(out: Path) -> dict:
    return json.loads((out / "synthqa.json").read_text())


def queries(out: Path) -> list[dict]:
    return [row for key, rows in read_out(out).items() if key.startswith("queries/") for row in rows]


def test_spares_stand_in_for_dropped_questions_and_vary_the_openers(runs):
    plain, spared = manifest(runs["plain"]), manifest(runs["spares"])
    chunks = plain["counts"]["chunks_asked"]
    assert spared["options"]["spare_questions"] == 3 and plain["options"]["spare_questions"] == 0
    assert plain["counts"]["questions_generated"] == 2 * chunks
    assert spared["counts"]["questions_generated"] == 5 * chunks  # each request asked for 2 + 3
    # without spares every chunk loses its first question; with them every chunk keeps two
    per_chunk = Counter(q["chunk_id"] for q in queries(runs["plain"]))
    assert set(per_chunk.values()) == {1} and len(per_chunk) == chunks
    kept = queries(runs["spares"])
    per_chunk = Counter(q["chunk_id"] for q in kept)
    assert set(per_chunk.values()) == {2} and len(per_chunk) == chunks
    filters = spared["question_filters"]
    assert filters["implicit_reference"] == chunks
    others = sum(n for reason, n in filters.items() if reason != spares.SPARE_FILTER)
    assert filters[spares.SPARE_FILTER] == 5 * chunks - others - 2 * chunks > 0  # every other query is a spare
    # the model's second question opens like most; spares keep it from holding over a fifth-or-so of them
    plain_share = Counter(spares.opener(q["text"]) for q in queries(runs["plain"])).most_common(1)[0][1]
    assert plain_share == chunks  # all of them "what does"
    openers = Counter(spares.opener(q["text"]) for q in kept)
    assert set(openers) == {"what does", "how does", "why does", "when does"}
    assert max(openers.values()) <= 0.3 * len(kept)
    # a kept query's id is its place in the model's answer: spares (places 2-4) were kept
    assert {int(q["id"].rsplit("-", 1)[1]) for q in kept} >= {2, 3, 4}


def test_spares_are_chosen_before_the_split_and_again_the_same_on_a_rerun(runs):
    def splits(out):
        return {r["id"]: key.split("/")[1] for key, rows in read_out(out).items() if key.startswith("corpus/")
                for r in rows}
    assert splits(runs["spares"]) == splits(runs["plain"])
    assert runs["asked_again"] == 0  # the rerun's requests, 2 + 3 a chunk, all came from the cache
    card = (runs["spares"] / "README.md").read_text()
    assert "Each request asked for 3 spare queries" in card and "`--spare-questions 3`" in card


def test_spares_are_shown_apart_from_the_filters_drops(runs):
    """A spare left out is no bad query: summary, inspect, card and report count it on its own line."""
    data = manifest(runs["spares"])
    filters = {k: v for k, v in data["question_filters"].items() if v}
    left_out = filters.pop(spares.SPARE_FILTER)
    assert left_out > 0 and filters["implicit_reference"] == data["counts"]["chunks_asked"]
    shown = run_cli("inspect", runs["spares"], "-n", "0").stdout
    dropped_line = next(line for line in shown.splitlines() if line.lstrip().startswith("questions dropped"))
    assert f"{sum(filters.values())}: implicit_reference" in dropped_line and "spare" not in dropped_line
    assert f"{left_out} left out (asked 3 more a request)" in shown
    assert "dropped: spare" not in runs["summary"]
    assert f"{left_out} left out (asked 3 more a request)" in runs["summary"]
    card = (runs["spares"] / "README.md").read_text()
    filters_line = next(line for line in card.splitlines() if "**Question filters**" in line)
    assert f"{sum(filters.values())} in all — implicit_reference" in filters_line and "spare" not in filters_line
    assert f"{left_out} queries were left out as spares" in card
    page = runs["spares"] / "report-test.html"
    assert run_cli("report", runs["spares"], "-o", page).returncode == 0
    html = page.read_text()
    assert f"(+3 spare asked, {left_out} left out)" in html
    chart = html[html.index("Questions dropped by filter"):][:3000]
    assert "implicit_reference" in chart and ">spare<" not in chart
    plain = run_cli("inspect", runs["plain"], "-n", "0").stdout
    assert "spares" not in plain  # without the option there is no such line


def test_each_style_keeps_its_own_count_and_counts_its_own_spares(tmp_path):
    make_pdf(tmp_path / "docs" / "policy.pdf", policy_pages(3))
    with FakeOpenAI(openers=HABITS) as fake:
        proc = generate(tmp_path / "docs", tmp_path / "out", fake, "--query-styles", "question:1,keyword:1",
                        "--spare-questions", "1")
    assert proc.returncode == 0, proc.stderr
    data = manifest(tmp_path / "out")
    chunks = data["counts"]["chunks_asked"]
    by_style = {s["style"]: s for s in data["styles"]}
    for style in ("question", "keyword"):
        assert by_style[style]["per_chunk"] == 1 and by_style[style]["generated"] == 2 * chunks
    # a chunk's first question leans on "this principle": its spare takes the place; keyword queries all pass
    assert by_style["question"]["dropped"] == {"implicit_reference": chunks}
    assert by_style["keyword"]["dropped"] == {spares.SPARE_FILTER: chunks}
    card = (tmp_path / "out" / "README.md").read_text()
    assert f"none (+ {chunks} spares left out)" in card  # the keyword row of the styles table
    kept = Counter((q["chunk_id"], q["style"]) for q in queries(tmp_path / "out"))
    assert set(kept.values()) == {1} and len(kept) == 2 * chunks
