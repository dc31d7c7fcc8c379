"""Coverage per document (--max/--min-questions-per-document) and a corpus that keeps every chunk.

End to end on two real PDFs of very different length (13 pages against 1, the long one ending in a reference
list the chunk filters skip), generated against the fake OpenAI server on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from e2e import generate, policy_pages, read_out, run_cli
from fakeserver import FakeOpenAI
from pdfmaker import make_pdf

from synthqa import coverage
from synthqa.config import FinetuneConfig, GenerateConfig
from synthqa.errors import ConfigError
from synthqa.manifest import SCHEMA_VERSION
from synthqa.pipeline.assemble import skipped_split

REFERENCES = "References\n\n" + "\n".join(
    f"[{i}] Smith, J. ({2000 + i}). A study of governance. Journal of Policy, {i}(2), 1-20. "
    f"https://doi.org/10.1000/{i}" for i in range(1, 12))
CAP, FLOOR = 20, 10


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    make_pdf(folder / "long.pdf", policy_pages(12) + [REFERENCES])
    make_pdf(folder / "short.pdf", policy_pages(1, seed=3))
    return folder


@pytest.fixture(scope="module")
def runs(docs, tmp_path_factory) -> dict[str, Path]:
    """The same inputs generated without and with the cap and floor."""
    base = tmp_path_factory.mktemp("runs")
    with FakeOpenAI() as fake:
        for name, extra in (("plain", ()), ("capped", ("--max-questions-per-document", str(CAP),
                                                        "--min-questions-per-document", str(FLOOR)))):
            proc = generate(docs, base / name, fake, *extra)
            assert proc.returncode == 0, proc.stderr
            (base / f"{name}.stdout").write_text(proc.stdout)
    return {"plain": base / "plain", "capped": base / "capped"}


def manifest(out: Path) -> dict:
    return json.loads((out / "synthqa.json").read_text())


def by_source(out: Path) -> dict[str, dict]:
    return {d["source"]: d for d in manifest(out)["documents"]}


def questions(out: Path) -> list[dict]:
    tables = read_out(out)
    return [row for key, rows in tables.items() if key.startswith("queries/") for row in rows]


# ------------------------------------------------------------------------------------------ the cap, pure
def test_the_cap_keeps_each_chunks_first_question_before_any_second():
    docs = [0] * 6 + [1] * 2
    nth = [0, 1, 0, 1, 0, 1, 0, 1]
    keys = [coverage.question_key(42, f"q-{i}") for i in range(8)]
    dropped = coverage.cap_per_document(docs, nth, keys, 3)
    kept = [i for i in range(8) if not dropped[i]]
    assert [i for i in kept if i < 6] == [0, 2, 4]  # three chunks of document 0, one question each
    assert not dropped[6:].any()  # document 1 is under the cap: untouched


def test_the_cap_is_seeded_and_repeatable():
    docs, nth = [0] * 40, [0] * 40
    pick = {seed: coverage.cap_per_document(docs, nth, [coverage.question_key(seed, f"q-{i}") for i in range(40)], 10)
            for seed in (1, 2)}
    assert pick[1].sum() == pick[2].sum() == 30
    assert not np.array_equal(pick[1], pick[2])  # another seed keeps other questions
    again = coverage.cap_per_document(docs, nth, [coverage.question_key(1, f"q-{i}") for i in range(40)], 10)
    assert np.array_equal(pick[1], again)
    assert not coverage.cap_per_document(docs, nth, list(range(40)), None).any()  # no cap: nothing dropped


@pytest.mark.parametrize("options, message", [
    ({"max_questions_per_document": 0}, "--max-questions-per-document 0"),
    ({"min_questions_per_document": -3}, "--min-questions-per-document -3"),
    ({"max_questions_per_document": 5, "min_questions_per_document": 6}, "is above --max-questions-per-document 5"),
])
def test_bad_caps_are_refused_once_with_the_option_named(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        GenerateConfig(inputs=(tmp_path,), out=tmp_path / "out", **options)
    assert GenerateConfig(inputs=(tmp_path,), out=tmp_path / "out", max_questions_per_document=5,
                          min_questions_per_document=5).max_questions_per_document == 5


def test_cli_refuses_a_floor_above_the_cap_in_one_line(docs, tmp_path, capsys):
    from synthqa.cli import main

    assert main(["generate", str(docs), "-o", str(tmp_path / "out"), "--max-questions-per-document", "3",
                 "--min-questions-per-document", "4"]) == 2
    err = capsys.readouterr().err
    assert "--min-questions-per-document 4 is above --max-questions-per-document 3" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_a_skipped_chunk_stays_with_its_document():
    assert skipped_split("a.pdf", ("a.pdf", "eval"), ("a.pdf", "train")) == "eval"  # the chunk before it
    assert skipped_split("b.pdf", ("a.pdf", "eval"), ("b.pdf", "train")) == "train"  # b.pdf's first chunks
    assert skipped_split("a.pdf", ("a.pdf", "eval"), ("b.pdf", "train")) == "eval"  # a.pdf's last chunks
    assert skipped_split("a.pdf", None, ("a.pdf", "eval")) == "eval"  # the input's first chunk
    assert skipped_split("z.pdf", ("a.pdf", "eval"), None) == "eval"  # after the last asked chunk


def test_finetune_refuses_an_unknown_corpus(tmp_path):
    with pytest.raises(ConfigError, match="--corpus 'everything'"):
        FinetuneConfig("out", tmp_path / "model", corpus="everything")
    assert FinetuneConfig("out", tmp_path / "model").corpus == "all"


# ------------------------------------------------------------------------------------------ end to end
def test_without_a_cap_the_long_document_swamps_the_short_one(runs):
    docs = by_source(runs["plain"])
    assert docs["long.pdf"]["questions"] > CAP and docs["long.pdf"]["questions_capped"] == 0
    assert docs["short.pdf"]["questions"] < FLOOR
    kept = questions(runs["plain"])
    assert sum(q["source"] == "long.pdf" for q in kept) == docs["long.pdf"]["questions"]
    assert sum(q["source"] == "short.pdf" for q in kept) == docs["short.pdf"]["questions"]


def test_the_cap_keeps_n_questions_of_the_long_document_and_counts_the_rest(runs):
    plain, capped = by_source(runs["plain"]), by_source(runs["capped"])
    long = capped["long.pdf"]
    assert long["questions"] == CAP
    assert long["questions_capped"] == plain["long.pdf"]["questions"] - CAP
    assert capped["short.pdf"] == plain["short.pdf"]  # under the cap: untouched
    assert manifest(runs["capped"])["question_filters"][coverage.CAP_FILTER] == long["questions_capped"]
    kept = questions(runs["capped"])
    assert sum(q["source"] == "long.pdf" for q in kept) == CAP
    # spread over the chunks: with fewer questions than twice the chunks, no chunk keeps two while one has none
    per_chunk = {}
    for q in kept:
        per_chunk[q["chunk_id"]] = per_chunk.get(q["chunk_id"], 0) + 1
    long_chunks = {q["chunk_id"] for q in questions(runs["plain"]) if q["source"] == "long.pdf"}
    assert long_chunks <= set(per_chunk)
    # the capped questions are gone everywhere, also from the rows a person's review starts from
    generated = pq.read_table(runs["capped"] / ".synthqa" / "generated-queries.parquet").to_pylist()
    assert sorted(r["id"] for r in generated) == sorted(q["id"] for q in kept)
    # decided before the split: the split of every chunk is the same with and without the cap
    def splits(out):
        return {r["id"]: key.split("/")[1] for key, rows in read_out(out).items() if key.startswith("corpus/")
                for r in rows}
    assert splits(runs["capped"]) == splits(runs["plain"])


def test_the_floor_flags_the_short_document_everywhere_a_user_looks(runs, tmp_path):
    stdout = (runs["capped"].parent / "capped.stdout").read_text()
    assert f"1 document(s) keep fewer than {FLOOR} questions: short.pdf (2)" in stdout
    assert "--max-questions-per-document" in stdout and "long.pdf" in stdout
    assert "flag" not in (runs["plain"].parent / "plain.stdout").read_text()
    shown = run_cli("inspect", runs["capped"], "-n", "0").stdout
    assert f"keep fewer than {FLOOR} questions" in " ".join(shown.split())
    assert f"2 (below {FLOOR})" in shown and f"{CAP} (" in shown
    card = (runs["capped"] / "README.md").read_text()
    assert f"| `long.pdf` | 13 | 12 | 2 | {CAP} (" in card and "Warning: 1 document(s)" in card
    assert run_cli("report", runs["capped"], "-o", tmp_path / "r.html").returncode == 0
    html = (tmp_path / "r.html").read_text()
    assert 'id="coverage"' in html and "short.pdf" in html


def test_every_chunk_is_in_the_corpus_skipped_ones_with_their_reason(runs):
    for out in runs.values():
        m = manifest(out)
        corpus = [r for key, rows in read_out(out).items() if key.startswith("corpus/") for r in rows]
        assert len(corpus) == m["counts"]["chunks"] > m["counts"]["chunks_asked"]
        skipped = [r for r in corpus if r["skip_reason"]]
        assert len(skipped) == sum(m["skipped_chunks"].values()) == by_source(out)["long.pdf"]["chunks_skipped"]
        assert {r["skip_reason"] for r in skipped} == {"references"} and all(r["page"] == 13 for r in skipped)
        assert sum(1 for r in corpus if r["skip_reason"] == "") == m["counts"]["chunks_asked"]
        asked_ids = {q["chunk_id"] for q in questions(out)}
        assert not asked_ids & {r["id"] for r in skipped}  # no question points at a skipped chunk


def test_retry_and_rerun_keep_the_cap(runs, docs):
    out = runs["capped"]
    before = sorted(q["id"] for q in questions(out))
    with FakeOpenAI() as fake:
        retry = run_cli("generate", "--retry-failed", out, "--base-url", fake.base_url, "--no-progress",
                        "--no-embed-roundtrip")
        assert retry.returncode == 0, retry.stderr
        opts = manifest(out)["options"]
        assert (opts["max_questions_per_document"], opts["min_questions_per_document"]) == (CAP, FLOOR)
        assert sorted(q["id"] for q in questions(out)) == before  # the same seed keeps the same questions
        other = generate(docs, out, fake, "--max-questions-per-document", "5")
        assert other.returncode != 0 and "max_questions_per_document 20 → 5" in other.stderr


def test_an_older_manifest_is_refused_with_the_command_that_rewrites_it(runs, docs, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(runs["plain"], out)
    data = manifest(out)
    data["schema_version"] = 3
    for d in data["documents"]:
        for key in ("chunks_asked", "chunks_skipped", "questions", "questions_capped"):
            del d[key]
    (out / "synthqa.json").write_text(json.dumps(data))
    shown = run_cli("inspect", out)
    assert shown.returncode != 0 and "Traceback" not in shown.stderr
    assert f"manifest schema 3, this synthqa reads schema {SCHEMA_VERSION}" in shown.stderr
    assert "--overwrite" in shown.stderr
    with FakeOpenAI() as fake:
        again = generate(docs, out, fake, "--overwrite")
    assert again.returncode == 0, again.stderr
    assert manifest(out)["schema_version"] == SCHEMA_VERSION and manifest(out)["counts"]["requests_this_run"] == 0


# ------------------------------------------------------------------------------------------ evaluate
@pytest.mark.eval
def test_evaluate_searches_every_chunk_by_default_and_the_split_when_asked(runs, tmp_path, capsys):
    pytest.importorskip("sentence_transformers", reason="needs synthqa[eval]")
    from synthqa.cli import main
    from synthqa.evaluate import evaluate

    out = runs["plain"]
    m = manifest(out)
    tables = read_out(out)
    eval_asked = sum(1 for r in tables["corpus/eval"] if not r["skip_reason"])
    every = evaluate(out, bm25=True)
    assert every.searched == "all" and every.corpus == m["counts"]["chunks"]  # skipped chunks included
    assert main(["evaluate", str(out), "--corpus", "split", "--output", str(tmp_path / "r.json")]) == 0
    printed = capsys.readouterr().out
    assert f"searching {eval_asked} chunks: the split's own chunks that were asked about (--corpus split)" in printed
    split = json.loads((tmp_path / "r.json").read_text())
    assert split["searched"] == "split" and split["corpus"] == eval_asked < every.corpus
    assert every.queries == split["queries"] == len(tables["queries/eval"])
    # more distractors can only push the own chunk down: BM25's recall@1 never rises
    assert every.rows["bm25"]["recall@1"] <= split["rows"]["bm25"]["recall@1"]
