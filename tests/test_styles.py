"""Query styles (generate --query-styles question:1,keyword:1): the mix, the per-style filters, the cache key,
and end to end on real PDFs against the fake OpenAI server on 127.0.0.1 — requests per style, the style
column, per-style counts where a user looks, evaluate per style, reruns and --retry-failed; and the default
run, which must stay exactly what it was before styles existed."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from e2e import generate, make_policy_folder, read_out, run_cli
from fakeserver import FakeOpenAI

from synthqa import styles
from synthqa.cache import answer_key
from synthqa.config import GenerateConfig
from synthqa.errors import ConfigError
from synthqa.filters import question_drop_reason

MIX = "question:1,keyword:1"
CHUNK = ("Pretrial risk assessment tools used by a county court must be validated on local data before use. "
         "The validation study, including its measures of bias across racial groups, must be published on the "
         "court's website, and the tool must be revalidated every three years by an independent reviewer.")


# ---------------------------------------------------------------- the mix
@pytest.mark.parametrize(("text", "mix"), [
    ("question:1,keyword:1", (("question", 1), ("keyword", 1))),
    (" Keyword:2 , situation:1", (("keyword", 2), ("situation", 1))),
    ("question:3", (("question", 3),)),
])
def test_a_mix_is_read_in_its_order(text, mix):
    assert styles.parse_mix(text) == mix
    assert styles.parse_mix(styles.format_mix(mix)) == mix


@pytest.mark.parametrize(("text", "says"), [
    ("question", "style:count"),
    ("question:1,,keyword:1", "style:count"),
    ("keywords:1", "unknown style 'keywords'"),
    ("question:1,question:2", "twice"),
    ("keyword:0", "from 1 to 20"),
    ("keyword:x", "from 1 to 20"),
    ("keyword:21", "from 1 to 20"),
])
def test_a_bad_mix_is_refused_naming_the_fix(text, says):
    with pytest.raises(ConfigError, match="--query-styles") as err:
        styles.parse_mix(text)
    assert says in str(err.value)


def test_the_config_records_the_canonical_mix_and_refuses_what_makes_no_sense(tmp_path):
    config = GenerateConfig(inputs=(tmp_path,), out=tmp_path / "o", query_styles="Keyword:1, question:2")
    assert config.query_styles == "keyword:1,question:2" and config.style_mix == (("keyword", 1), ("question", 2))
    assert GenerateConfig(inputs=(tmp_path,), out=tmp_path / "o").style_mix == (("question", 2),)
    assert GenerateConfig(inputs=(tmp_path,), out=tmp_path / "o", questions_per_chunk=3).style_mix == (("question", 3),)
    with pytest.raises(ConfigError, match="write question:3 in --query-styles"):
        GenerateConfig(inputs=(tmp_path,), out=tmp_path / "o", query_styles=MIX, questions_per_chunk=3)
    with pytest.raises(ConfigError, match="--prompt replaces the prompt of the question style"):
        GenerateConfig(inputs=(tmp_path,), out=tmp_path / "o", query_styles="keyword:2", prompt_path=tmp_path / "p")
    GenerateConfig(inputs=(tmp_path,), out=tmp_path / "o", query_styles=MIX, prompt_path=tmp_path / "p")  # fine


def test_each_style_has_its_bundled_prompt_and_the_question_style_takes_a_users_prompt(tmp_path):
    plans = styles.load_plans((("question", 1), ("keyword", 2), ("situation", 1)))
    assert [(p.style, p.template.name, p.n) for p in plans] == [
        ("question", "default", 1), ("keyword", "keyword", 2), ("situation", "situation", 1)]
    assert all(p.template.uses_language for p in plans)
    assert len({p.template.sha256 for p in plans}) == 3
    mine = tmp_path / "mine.txt"
    mine.write_text("Ask $n_questions things.\n---\n<chunk>\n$chunk\n</chunk>")
    plans = styles.load_plans((("question", 1), ("keyword", 1)), mine)
    assert [p.template.name for p in plans] == ["mine", "keyword"]


def test_the_embedded_model_gets_a_ceiling_for_questions_too_a_served_model_only_for_other_styles():
    plans = styles.load_plans((("question", 2), ("keyword", 1), ("situation", 3)))
    served = {p.style: p.max_tokens() for p in styles.for_endpoint(plans, local=False)}
    assert served == {"question": None, "keyword": styles.JSON_TOKENS + 32, "situation": styles.JSON_TOKENS + 3 * 160}
    embedded = {p.style: p.max_tokens() for p in styles.for_endpoint(plans, local=True)}
    assert embedded == {**served, "question": styles.JSON_TOKENS + 2 * styles.TOKENS_PER_QUERY["question"]}
    # reference answers need room of their own
    with_answers = styles.for_endpoint(plans, local=True)[0].max_tokens(answers=True)
    assert with_answers > embedded["question"]
    # the longest question the filters keep fits under the ceiling with room to spare
    assert styles.TOKENS_PER_QUERY["question"] * 4 > 400


# ---------------------------------------------------------------- the filters of each style
@pytest.mark.parametrize(("query", "reason"), [
    ("pretrial risk assessment bias validation", None),
    ("risk tool revalidation", None),
    ("How is a pretrial risk tool validated?", "not_keywords"),
    ("what pretrial risk tool validation", "not_keywords"),
    ("pretrial risk tool validation?", "not_keywords"),
    ("validation", "too_short"),
    ("pretrial risk assessment tool validation study bias", "too_long"),
    ("bias in this framework", "implicit_reference"),
    ("validation in the text", "refers_to_context"),
    ("home insurance premium discounts", "ungrounded_question"),
])
def test_keyword_queries_are_two_to_six_grounded_words_never_a_question(query, reason):
    assert question_drop_reason(query, CHUNK, "en", style="keyword") == reason


@pytest.mark.parametrize(("query", "reason"), [
    ("Our county uses a pretrial risk tool: do we have to publish how it was validated?", None),
    ("I review tools for a county court. How often must a pretrial risk tool be revalidated?", None),
    ("Our county uses a pretrial risk tool and we want to publish how it was validated.", "not_a_question"),
    ("Must we publish validation?", "too_short"),
    ("Our county uses this tool: do we have to publish how this framework was validated?", "implicit_reference"),
    ("Our family is moving house next spring: which home insurance covers flood damage to furniture?",
     "ungrounded_question"),
])
def test_situation_queries_end_in_a_grounded_question(query, reason):
    assert question_drop_reason(query, CHUNK, "en", style="situation") == reason


def test_the_question_style_is_judged_as_before():
    assert question_drop_reason("pretrial risk assessment bias validation", CHUNK, "en") == "not_a_question"
    assert question_drop_reason("How often must a pretrial risk tool be revalidated?", CHUNK, "en") is None
    assert question_drop_reason("Must we publish validation?", CHUNK, "en", style="question") is None


def test_the_cache_key_of_the_question_style_is_the_one_before_styles_and_other_styles_never_share_it():
    common = {"model": "m", "prompt_sha256": "p", "chunk_text": "t", "n_questions": 1, "temperature": 0.0,
              "language": "English"}
    before = hashlib.sha256(json.dumps(["m", "p", "t", 1, 0.0, "English"]).encode()).hexdigest()
    assert answer_key(**common) == answer_key(**common, style="question") == before
    assert answer_key(**common, style="keyword") not in (before, answer_key(**common, style="situation"))


# ---------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    return make_policy_folder(tmp_path_factory.mktemp("docs"), docs=2, pages=3)


@pytest.fixture(scope="module")
def runs(docs, tmp_path_factory) -> dict:
    """A run without styles and one with question:1,keyword:1, each rerun once; the fake's request logs."""
    base = tmp_path_factory.mktemp("runs")
    found: dict = {}
    for name, extra in (("plain", ()), ("styled", ("--query-styles", MIX))):
        with FakeOpenAI() as fake:
            first = generate(docs, base / name, fake, *extra)
            assert first.returncode == 0, first.stderr
            asked = list(fake.log)
            again = generate(docs, base / name, fake, *extra)
            assert again.returncode == 0, again.stderr
        found[name] = {"out": base / name, "log": asked, "stdout": first.stdout, "rerun_requests": len(fake.log) -
                       len(asked), "rerun_stderr": again.stderr}
    return found


def manifest(out: Path) -> dict:
    return json.loads((out / "synthqa.json").read_text())


def test_without_styles_requests_keys_and_files_are_those_before_styles(runs):
    plain = runs["plain"]
    out, data = plain["out"], manifest(plain["out"])
    assert data["options"]["query_styles"] is None and data["styles"] == []
    assert {e["style"] for e in plain["log"]} == {"question"} and len(plain["log"]) == data["counts"]["chunks_asked"]
    queries = pq.read_table(next((out / "data" / "queries").glob("train*.parquet")))
    assert "style" not in queries.column_names and all(i.count("-") == 2 for i in queries["id"].to_pylist())
    assert "style" not in (out / "README.md").read_text().split("## How it was made")[0]
    assert "style" not in plain["stdout"]
    # the cache holds exactly the keys of synthqa before styles: the chunk's text, 2 questions, its language
    corpus = [row for rows in read_out(out).values() for row in rows if "skip_reason" in row and not row["skip_reason"]]
    expected = {hashlib.sha256(json.dumps([data["model"], data["prompt"]["sha256"], c["text"], 2, 0.0,
                                           c["language"]], ensure_ascii=False).encode()).hexdigest() for c in corpus}
    with sqlite3.connect(out / ".synthqa" / "cache.sqlite") as db:
        assert {k for (k,) in db.execute("SELECT key FROM answers")} == expected
    assert plain["rerun_requests"] == 0 and "resuming: " in plain["rerun_stderr"]


def test_one_request_per_chunk_and_style_through_its_own_prompt(runs):
    styled, data = runs["styled"], manifest(runs["styled"]["out"])
    asked = data["counts"]["chunks_asked"]
    assert Counter(e["style"] for e in styled["log"]) == {"question": asked, "keyword": asked}
    assert all(Counter(e["style"] for e in styled["log"] if e["chunk"] == chunk) == {"question": 1, "keyword": 1}
               for chunk in {e["chunk"] for e in styled["log"]})
    # a keyword request may not run on (a small model can write one endless string); questions ask as before
    assert {(e["style"], e["max_tokens"]) for e in styled["log"]} == {
        ("question", None), ("keyword", styles.JSON_TOKENS + styles.TOKENS_PER_QUERY["keyword"])}
    assert {e["max_tokens"] for e in runs["plain"]["log"]} == {None}
    assert styled["rerun_requests"] == 0 and f"0 of {2 * asked} requests" not in styled["rerun_stderr"]
    assert f"{2 * asked} of {2 * asked} requests" in styled["rerun_stderr"]


def test_the_style_column_and_the_pairs_format_and_no_chunk_straddles_the_split(runs):
    tables = read_out(runs["styled"]["out"])
    queries = tables["queries/train"] + tables["queries/eval"]
    assert Counter(q["style"] for q in queries).keys() == {"question", "keyword"}
    assert all(q["id"].endswith("-0") and ("-keyword-" in q["id"]) == (q["style"] == "keyword") for q in queries)
    assert all(set(row) == {"sentence_0", "sentence_1"} for row in tables["default/train"] + tables["default/eval"])
    splits = defaultdict(set)
    for split in ("train", "eval"):
        for q in tables[f"queries/{split}"]:
            splits[q["chunk_id"]].add(split)
    assert splits and all(len(s) == 1 for s in splits.values())
    assert {q["chunk_id"] for q in tables["queries/eval"]}  # both splits really hold queries


def test_per_style_counts_in_the_manifest_summary_inspect_and_card(runs):
    out = runs["styled"]["out"]
    data, tables = manifest(out), read_out(out)
    assert data["schema_version"] == 6 and data["options"]["query_styles"] == MIX
    kept = Counter((q["style"], split) for split in ("train", "eval") for q in tables[f"queries/{split}"])
    for count in data["styles"]:
        assert count["chunks_answered"] == data["counts"]["chunks_asked"]
        assert (count["train_pairs"], count["eval_pairs"]) == (kept[count["style"], "train"],
                                                               kept[count["style"], "eval"])
        assert count["generated"] == count["kept"] + sum(count["dropped"].values())
    assert [c["style"] for c in data["styles"]] == ["question", "keyword"]
    assert [c["prompt"] for c in data["styles"]] == ["default", "keyword"]
    assert "style keyword" in runs["styled"]["stdout"]
    shown = run_cli("inspect", out)
    assert shown.returncode == 0 and "style keyword" in shown.stdout
    card = (out / "README.md").read_text()
    assert "query styles `question:1,keyword:1`" in card and "| `keyword` | 1 |" in card and "`style`" in card


def test_a_keyword_query_that_is_a_question_is_dropped_and_counted_for_its_style(docs, tmp_path):
    with FakeOpenAI(keywords_as_questions=True) as fake:
        proc = generate(docs, tmp_path / "out", fake, "--query-styles", MIX)
    assert proc.returncode == 0, proc.stderr
    data = manifest(tmp_path / "out")
    by_style = {c["style"]: c for c in data["styles"]}
    asked = data["counts"]["chunks_asked"]
    assert by_style["keyword"]["dropped"] == {"not_keywords": asked} and by_style["keyword"]["kept"] == 0
    assert by_style["question"]["kept"] == asked and by_style["question"]["dropped"] == {}
    assert data["question_filters"]["not_keywords"] == asked
    assert "not_keywords" in proc.stdout


def test_evaluate_reports_each_style_beside_the_overall_metrics(runs, tmp_path):
    out = runs["styled"]["out"]
    shown = run_cli("evaluate", out, "--split", "train", "--output", tmp_path / "eval.json")
    assert shown.returncode == 0, shown.stderr
    assert "by query style" in shown.stdout and "| keyword (" in shown.stdout and "| question (" in shown.stdout
    report = json.loads((tmp_path / "eval.json").read_text())
    assert set(report["styles"]) == {"question", "keyword"}
    assert sum(report["style_queries"].values()) == report["queries"]
    assert set(report["styles"]["keyword"]) == set(report["rows"])  # the model's row and bm25, per style
    plain = run_cli("evaluate", runs["plain"]["out"], "--split", "train", "--output", tmp_path / "plain.json")
    assert plain.returncode == 0 and "by query style" not in plain.stdout
    assert json.loads((tmp_path / "plain.json").read_text())["styles"] == {}


def test_one_chunks_queries_of_every_style_never_share_a_training_batch(runs):
    from datasets import load_dataset
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

    train = load_dataset(str(runs["styled"]["out"]), split="train")  # the pairs finetune trains on
    assert len(set(train["sentence_1"])) < len(train)  # each chunk is the positive of two queries
    for batch in NoDuplicatesBatchSampler(train, batch_size=4, drop_last=False):
        chunks = [train[i]["sentence_1"] for i in batch]
        assert len(chunks) == len(set(chunks))


def test_retry_failed_asks_again_in_the_styles_of_the_run(docs, tmp_path):
    out = tmp_path / "out"
    with FakeOpenAI(always_fail_substring="(Clause 2.1.)") as broken:
        first = generate(docs, out, broken, "--query-styles", "question:1,situation:1", "--max-attempts", "1")
    assert first.returncode == 4, first.stderr
    failed = manifest(out)["failed_chunks"]
    assert failed and len({f["chunk_id"] for f in failed}) == len(failed)  # a chunk is listed once
    with FakeOpenAI() as fake:
        again = run_cli("generate", "--retry-failed", out, "--base-url", fake.base_url, "--no-progress",
                        "--no-embed-roundtrip")
    assert again.returncode == 0, again.stderr
    assert Counter(e["style"] for e in fake.log) == {"question": len(failed), "situation": len(failed)}
    data = manifest(out)
    assert data["options"]["query_styles"] == "question:1,situation:1" and not data["failed_chunks"]
    assert {c["style"]: c["chunks_answered"] for c in data["styles"]} == {
        "question": data["counts"]["chunks_asked"], "situation": data["counts"]["chunks_asked"]}


@pytest.mark.parametrize(("extra", "says"), [
    (("--query-styles", "question:1", "--questions-per-chunk", "3"), "drop --questions-per-chunk"),
    (("--query-styles", "keyword:1", "--prompt", "mine.txt"), "--prompt replaces the prompt of the question style"),
    (("--query-styles", "keywords:1"), "unknown style 'keywords'"),
])
def test_refusals_are_one_line_before_any_request(docs, tmp_path, extra, says):
    with FakeOpenAI() as fake:
        proc = generate(docs, tmp_path / "out", fake, *extra)
    assert proc.returncode == 2 and fake.requests == 0
    assert says in proc.stderr and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_changed_mix_is_refused_without_overwrite_and_the_question_answers_are_reused(runs, docs, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(runs["plain"]["out"], out)
    with FakeOpenAI() as fake:
        refused = generate(docs, out, fake, "--query-styles", "question:2")
        assert refused.returncode != 0 and "query_styles None → 'question:2'" in refused.stderr
        again = generate(docs, out, fake, "--query-styles", "question:2", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert fake.requests == 0  # question:2 asks exactly what the run without styles asked
    assert {c["style"] for c in manifest(out)["styles"]} == {"question"}


def test_the_report_has_a_query_styles_table_only_for_a_styled_run(runs, browser, tmp_path):
    from synthqa.report import build_report

    assert "Query styles" not in build_report(runs["plain"]["out"])
    page = tmp_path / "report.html"
    page.write_text(build_report(runs["styled"]["out"]), encoding="utf-8")
    browser.open(page.as_uri())
    assert browser.errors() == []
    rows = browser.eval("[...document.querySelectorAll('#styles tbody tr')].map(tr => [...tr.cells].map(td => "
                        "td.textContent))")
    counts = {c["style"]: c for c in manifest(runs["styled"]["out"])["styles"]}
    assert [r[0] for r in rows] == ["question", "keyword"]
    assert all(r[3] == str(counts[r[0]]["kept"]) for r in rows)


def test_a_dry_run_counts_requests_per_chunk_and_style_and_what_the_cache_answers(runs, docs):
    out, asked = runs["styled"]["out"], manifest(runs["styled"]["out"])["counts"]["chunks_asked"]
    with FakeOpenAI() as fake:
        same = generate(docs, out, fake, "--query-styles", MIX, "--dry-run")
        other = generate(docs, out, fake, "--query-styles", "question:1,situation:1", "--dry-run")
    assert fake.requests == 0 and same.returncode == 0 and other.returncode == 0
    assert f"to ask             0 requests, one per chunk and style ({2 * asked} already cached)" in same.stdout
    assert f"to ask             {asked} requests, one per chunk and style ({asked} already cached)" in other.stdout


def test_the_per_document_cap_and_the_short_count_treat_every_style_alike(docs, tmp_path):
    """Each (chunk, style) request gets one query of two asked: a chunk short in both styles is one short chunk,
    and the cap takes each chunk's first keyword in the same round as its first question."""
    with FakeOpenAI(questions_per_chunk=1) as fake:
        proc = generate(docs, tmp_path / "out", fake, "--query-styles", "question:2,keyword:2",
                        "--max-questions-per-document", "3")
    assert proc.returncode == 0, proc.stderr
    data = manifest(tmp_path / "out")
    asked = data["counts"]["chunks_asked"]
    assert all(d["chunks_asked"] >= 3 for d in data["documents"])  # so each document is capped to 3 of 2 × chunks
    assert data["counts"]["short_chunks"] == asked
    kept = Counter(q["style"] for key, rows in read_out(tmp_path / "out").items() if key.startswith("queries/")
                   for q in rows)
    assert sum(kept.values()) == 3 * len(data["documents"])
    assert kept["question"] and kept["keyword"], kept


def test_a_model_that_refuses_max_tokens_gets_its_keyword_requests_without_the_ceiling(docs, tmp_path):
    """OpenAI's reasoning models answer 400 to max_tokens; the keyword style's ceiling must not cost the run."""
    with FakeOpenAI(reject_max_tokens=True) as fake:
        proc = generate(docs, tmp_path / "out", fake, "--query-styles", MIX, "--concurrency", "1")
        log = list(fake.log)
    assert proc.returncode == 0, proc.stderr
    data = manifest(tmp_path / "out")
    by_style = {c["style"]: c for c in data["styles"]}
    assert by_style["keyword"]["kept"] == by_style["keyword"]["chunks_answered"] == data["counts"]["chunks_asked"]
    capped = [entry for entry in log if entry["max_tokens"] is not None]
    assert len(capped) == 1 and capped[0]["style"] == "keyword"  # refused once, then asked without it


def test_the_asking_line_counts_requests_of_a_styled_run_and_chunks_of_a_plain_one(runs, docs):
    """The stage lines (shown with progress on) say what was asked: a styled run asks requests, not chunks."""
    with FakeOpenAI() as fake:
        for name, extra, says in (("styled", ("--query-styles", MIX), "requests (a chunk in a style) asked"),
                                  ("plain", (), "chunks asked")):
            proc = run_cli("generate", docs, "-o", runs[name]["out"], "--base-url", fake.base_url,
                           "--no-embed-roundtrip", *extra)
            assert proc.returncode == 0, proc.stderr
            assert f"asking: 0 {says}, {len(runs[name]['log'])} answered from the cache" in proc.stderr
