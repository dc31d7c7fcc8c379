"""A person's decisions: the append-only file, applying it (`synthqa curate`), and `generate` reruns keeping it."""

from __future__ import annotations

import json
import shutil

import datasets
import pytest

from e2e import generate, make_policy_folder, read_out, run_cli
from fakeserver import FakeOpenAI
from synthqa.curate import Decision, append_decision, apply_decisions, curation_path, read_decisions
from synthqa.pipeline.curation import rerank_edits


def rows(*texts_by_chunk):
    """Query rows: ``rows(["q a0", "q a1"], ["q b0"])`` → chunks c0, c1 with their questions."""
    return [{"id": f"q-c{c}-{n}", "text": text, "chunk_id": f"c{c}", "split": "train"}
            for c, texts in enumerate(texts_by_chunk) for n, text in enumerate(texts)]


CHUNKS = {"c0": "The flood deductible is 500 euros for homes near rivers and 250 euros elsewhere.",
          "c1": "Either party may cancel the policy in writing with thirty days of notice."}
GENERATED = rows(["What is the flood deductible for homes near rivers?", "How much is the deductible elsewhere?"],
                 ["How can the policy be cancelled by either party?"])


def decide(qid, decision, text=None, rows=GENERATED):
    question = next(r["text"] for r in rows if r["id"] == qid) if any(r["id"] == qid for r in rows) else "gone?"
    return Decision.now(qid, decision, question, text)


# ---------------------------------------------------------------- the file
def test_decisions_are_appended_and_the_last_one_wins(tmp_path):
    append_decision(tmp_path, decide("q-c0-0", "reject"))
    append_decision(tmp_path, decide("q-c0-1", "edit", "  How   much is the deductible away from rivers? "))
    append_decision(tmp_path, decide("q-c0-0", "accept"))
    append_decision(tmp_path, decide("q-c1-0", "reject"))
    append_decision(tmp_path, decide("q-c1-0", "clear"))
    found = read_decisions(tmp_path)
    assert found.lines == 5 and found.unreadable == ()
    assert {qid: d.decision for qid, d in found.latest.items()} == {"q-c0-0": "accept", "q-c0-1": "edit"}
    assert found.latest["q-c0-1"].text == "How much is the deductible away from rivers?"


def test_a_torn_last_line_is_skipped_and_does_not_swallow_the_next_decision(tmp_path):
    append_decision(tmp_path, decide("q-c0-0", "reject"))
    with open(curation_path(tmp_path), "a", encoding="utf-8") as f:
        f.write('{"id": "q-c0-1", "decis')  # a write cut short by a power cut
    append_decision(tmp_path, decide("q-c1-0", "reject"))
    found = read_decisions(tmp_path)
    assert found.unreadable == (2,) and set(found.latest) == {"q-c0-0", "q-c1-0"}


# ---------------------------------------------------------------- applying
def test_apply_rejects_edits_and_reports_what_it_could_not_apply():
    latest = {d.id: d for d in [
        decide("q-c0-0", "reject"),
        decide("q-c0-1", "edit", "How much is the flood deductible away from rivers?"),
        decide("q-c1-0", "accept"),
        decide("q-c9-0", "reject"),  # a pair this dataset no longer has
    ]}
    applied = apply_decisions(GENERATED, latest, CHUNKS)
    assert [r["text"] for r in applied.rows] == ["How much is the flood deductible away from rivers?",
                                                 "How can the policy be cancelled by either party?"]
    assert (applied.rejected, applied.edited, applied.accepted) == (("q-c0-0",), ("q-c0-1",), ("q-c1-0",))
    assert applied.missing == ("q-c9-0",) and applied.outdated == () and applied.refused == {}


def test_an_edit_the_filters_refuse_keeps_the_generated_question():
    latest = {d.id: d for d in [
        decide("q-c1-0", "edit", "What does the text say?"),  # leans on "the text"
        decide("q-c0-1", "edit", "What is the flood deductible for the homes near rivers?"),  # ≈ q-c0-0
    ]}
    applied = apply_decisions(GENERATED, latest, CHUNKS)
    assert applied.refused == {"q-c1-0": "refers_to_context", "q-c0-1": "near_duplicate"}
    elsewhere = {"q-c0-1": decide("q-c0-1", "edit", "How can the policy be canceled by either party?")}  # c1's
    assert apply_decisions(GENERATED, elsewhere, CHUNKS).refused == {"q-c0-1": "ungrounded_question"}
    assert [r["text"] for r in applied.rows] == [r["text"] for r in GENERATED] and applied.edited == ()


def test_an_edit_is_judged_by_the_filters_of_its_querys_style():
    styled = [dict(row, style="question") for row in GENERATED] + [
        {"id": "q-c0-keyword-0", "text": "flood deductible river homes", "chunk_id": "c0", "split": "train",
         "style": "keyword"}]
    good = {"q-c0-keyword-0": decide("q-c0-keyword-0", "edit", "flood deductible homes near rivers", styled)}
    applied = apply_decisions(styled, good, CHUNKS)
    assert applied.refused == {} and applied.edited == ("q-c0-keyword-0",)
    assert applied.rows[-1]["text"] == "flood deductible homes near rivers"
    question = {"q-c0-keyword-0": decide("q-c0-keyword-0", "edit", "What is the flood deductible near rivers?", styled)}
    assert apply_decisions(styled, question, CHUNKS).refused == {"q-c0-keyword-0": "not_keywords"}
    # and a question's edit into keywords is no question
    words = {"q-c1-0": decide("q-c1-0", "edit", "cancel policy thirty days notice", styled)}
    assert apply_decisions(styled, words, CHUNKS).refused == {"q-c1-0": "not_a_question"}


def test_a_decision_about_a_regenerated_question_is_outdated_not_applied():
    regenerated = [dict(GENERATED[0], text="What deductible applies to riverside homes?"), *GENERATED[1:]]
    applied = apply_decisions(regenerated, {"q-c0-0": decide("q-c0-0", "reject")}, CHUNKS)
    assert applied.outdated == ("q-c0-0",) and applied.rejected == () and len(applied.rows) == 3


def test_edited_questions_are_ranked_again_and_min_roundtrip_rank_holds_for_them():
    corpus = [{"id": cid, "text": text, "split": "train"} for cid, text in CHUNKS.items()]
    ranked = [dict(r, bm25_rank=1, embed_rank=None, extra_relevant_ids=[]) for r in GENERATED]
    near = dict(ranked[1], text="What notice in writing lets either party cancel?")  # c1's words, c0's pair
    kept = dict(ranked[0], text="Which deductible applies to homes near rivers?")
    rows, refused = rerank_edits([kept, near, ranked[2]], {near["id"], kept["id"]}, ranked, corpus, 1, False)
    assert refused == {near["id"]: "roundtrip_rank"} and rows[1] == ranked[1]  # the generated question is back
    assert rows[0]["text"] == kept["text"] and rows[0]["bm25_rank"] == 1
    rows, refused = rerank_edits([kept, near], {near["id"]}, ranked, corpus, None, False)
    assert refused == {} and rows[1]["bm25_rank"] == 2


# ---------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A small generated dataset (both splits), the fake server that made it, and the docs."""
    base = tmp_path_factory.mktemp("curate")
    docs = make_policy_folder(base / "docs", docs=2, pages=4)
    with FakeOpenAI() as fake:
        out = base / "out"
        proc = generate(docs, out, fake)
        assert proc.returncode == 0, proc.stderr
        yield out, docs, fake


@pytest.fixture
def out(generated, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(generated[0], copy)
    return copy


def queries(out) -> list[dict]:
    """Every query row of ``out`` with its split."""
    return [dict(q, split=key.split("/")[1]) for key, rows in read_out(out).items() if key.startswith("queries/")
            for q in rows]


def test_curate_applies_decisions_and_generate_reruns_keep_them(out, generated, tmp_path):
    _, docs, fake = generated
    before = queries(out)
    split_of_chunk = {q["chunk_id"]: q["split"] for q in before}
    evals = [q for q in before if q["split"] == "eval"]
    rejected = [evals[0]["id"], before[0]["id"], before[1]["id"]]
    target = before[2]
    edit = target["text"].replace("What does the policy say about", "What is said about")
    for qid in rejected:
        append_decision(out, Decision.now(qid, "reject", next(q["text"] for q in before if q["id"] == qid)))
    append_decision(out, Decision.now(target["id"], "edit", target["text"], edit))
    append_decision(out, Decision.now("q-0123456789abcdef-0", "reject", "A pair that is not there?"))

    proc = run_cli("curate", out)
    assert proc.returncode == 0, proc.stderr
    assert f"3 rejected, 1 edited of {len(before)} pairs, by a person" in proc.stdout
    assert "q-0123456789abcdef-0" in proc.stderr and "no longer has" in proc.stderr  # reported, not dropped

    after = {q["id"]: q for q in queries(out)}
    assert set(after) == {q["id"] for q in before} - set(rejected)
    assert after[target["id"]]["text"] == edit and after[target["id"]]["bm25_rank"] >= 1
    assert all(split_of_chunk[q["chunk_id"]] == q["split"] for q in after.values())  # nobody changed split
    pairs = datasets.load_dataset(str(out))
    assert len(pairs["train"]) + len(pairs["eval"]) == len(before) - 3
    assert edit in list(pairs["train"]["sentence_0"]) + list(pairs["eval"]["sentence_0"])
    manifest = json.loads((out / "synthqa.json").read_text())
    assert manifest["curation"]["rejected"] == 3 and manifest["curation"]["missing"] == ["q-0123456789abcdef-0"]
    assert manifest["counts"]["questions"] == len(before) - 3
    assert "Curated: 3 rejected, 1 edited" in (out / "README.md").read_text()

    # The same generate command again: nothing asked, the decisions still applied.
    asked = fake.requests
    rerun = generate(docs, out, fake)
    assert rerun.returncode == 0, rerun.stderr
    assert fake.requests == asked and "curated" in rerun.stdout
    assert {q["id"]: q["text"] for q in queries(out)} == {qid: q["text"] for qid, q in after.items()}


def test_taking_a_decision_back_restores_the_pair(out):
    before = queries(out)
    first = before[0]
    append_decision(out, Decision.now(first["id"], "reject", first["text"]))
    assert run_cli("curate", out).returncode == 0
    assert first["id"] not in {q["id"] for q in queries(out)}
    append_decision(out, Decision.now(first["id"], "clear", first["text"]))
    assert run_cli("curate", out).returncode == 0
    assert queries(out) == before


def test_rejecting_every_eval_pair_leaves_a_folder_that_loads(out):
    for q in queries(out):
        if q["split"] == "eval":
            append_decision(out, Decision.now(q["id"], "reject", q["text"]))
    proc = run_cli("curate", out)
    assert proc.returncode == 0, proc.stderr
    assert "train / eval pairs now" in proc.stdout and "no eval pair is left" in proc.stderr
    assert set(datasets.load_dataset(str(out))) == {"train"}
    assert set(datasets.load_dataset(str(out), "corpus")) == {"train", "eval"}  # the eval chunks stay searchable
    manifest = json.loads((out / "synthqa.json").read_text())
    assert manifest["counts"]["eval_pairs"] == 0 and "eval" not in manifest["data_files"]["default"]


def test_curate_without_decisions_changes_nothing_and_says_how(out):
    before = read_out(out)
    proc = run_cli("curate", out)
    assert proc.returncode == 0 and "synthqa review" in proc.stdout
    assert read_out(out) == before


def test_curate_of_a_folder_that_is_not_a_dataset_is_one_line(tmp_path):
    proc = run_cli("curate", tmp_path)
    assert proc.returncode == 1 and "synthqa.json" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_inspect_and_report_say_what_was_curated_and_what_is_not_yet(out, tmp_path):
    first = queries(out)[0]
    append_decision(out, Decision.now(first["id"], "reject", first["text"]))
    assert "1 decision(s) in curation.jsonl: apply them" in run_cli("inspect", out, "-n", "0").stdout
    assert run_cli("curate", out).returncode == 0
    shown = run_cli("inspect", out, "-n", "0").stdout
    assert "curated:" in shown and "1 rejected, 0 edited of" in shown and "not curated yet" not in shown
    assert run_cli("report", out, "-o", tmp_path / "r.html").returncode == 0
    assert "curated: 1 rejected, 0 edited of" in (tmp_path / "r.html").read_text()


def test_curate_ranks_an_edit_with_the_runs_embedder_and_its_kept_corpus_vectors(tmp_path, fake_server,
                                                                                  monkeypatch):
    from synthqa import roundtrip, vectors
    from synthqa.dataset import read_corpus_vectors, read_rows
    from synthqa.pipeline.curation import curate
    from synthqa.roundtrip import EMBEDDER, score_roundtrip

    docs = make_policy_folder(tmp_path / "docs", docs=1, pages=3)
    out = tmp_path / "out"
    assert generate(docs, out, fake_server, embed=True).returncode == 0
    corpus = read_rows(out, "corpus")
    texts = [c["text"] for c in corpus]
    kept = read_corpus_vectors(out, [c["id"] for c in corpus[::-1]], EMBEDDER)
    fresh = score_roundtrip(["What?"], [0], texts, use_embeddings=True).corpus_vectors
    assert kept is not None and abs(kept - fresh[::-1]).max() < 1e-5  # kept per chunk id, any order
    assert read_corpus_vectors(out, [c["id"] for c in corpus], "another/model") is None

    target = queries(out)[0]
    edit = "Which office must hear about data breaches, and how soon after they are discovered?"
    append_decision(out, Decision.now(target["id"], "edit", target["text"], edit))
    encoded, encode = [], vectors.encode
    recorded = lambda model, batch: encoded.append(list(batch)) or encode(model, batch)  # noqa: E731
    monkeypatch.setattr(roundtrip, "encode", recorded)  # questions
    monkeypatch.setattr(vectors, "encode", recorded)  # the corpus
    curate(out, log=lambda line: None)
    assert encoded == [[edit]]  # the corpus was not encoded again
    row = next(q for q in queries(out) if q["id"] == target["id"])
    expected = score_roundtrip([edit], [[c["id"] for c in corpus].index(target["chunk_id"])], texts,
                               use_embeddings=True)
    assert row["text"] == edit and (row["bm25_rank"], row["embed_rank"]) == (expected.bm25_rank[0],
                                                                             expected.embed_rank[0])
