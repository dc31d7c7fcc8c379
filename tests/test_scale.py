"""Scale (issue 10): parallel reading in order, back-pressure, what a real run shows on stderr, the on-disk
steps equal to the all-in-memory ones they replace, and the run's scratch files."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import multiprocessing
import os
import random
import re
import shutil
import threading
import warnings
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
from rapidfuzz import fuzz, process

from e2e import generate, make_policy_folder, policy_pages, run_cli
from pdfmaker import make_pdf
from synthqa import bm25index, dataset, dedupe, splits
from synthqa.config import GenerateConfig
from synthqa.errors import InputError
from synthqa.pipeline import inputs as inputs_module
from synthqa.pipeline import reading
from synthqa.pipeline.inputs import Inputs, ThreadedFeed, stream_inputs
from synthqa.pipeline import assemble
from synthqa.pipeline.progress import Progress, count_done_before, start_clock
from synthqa.store import RunStore
from test_bm25_blocks import assert_equal_to_dense
from test_documents import make_docx
from test_splits import markdown_with_five_headings, text_of_forty_chunks

HTML = ("<html><head><title>Remote work</title></head><body><nav>Home | Policies</nav><main><h1>Remote work</h1>"
        "<p>Staff may work from home two days a week when their manager agrees in writing beforehand.</p>"
        "<p>Equipment bought for home working is paid back against receipts within thirty days.</p></main></body></html>")
FRENCH = ("# Politique de conservation des données\n\nLes dossiers du personnel sont conservés pendant cinq ans après "
          "le départ du salarié, puis détruits de manière sécurisée. Toute demande d'accès est traitée par le délégué "
          "à la protection des données dans un délai d'un mois, et le demandeur reçoit une copie de ses données.\n")


def _read(folder, tmp_path, workers: int) -> tuple[list, Inputs, bool]:
    found = Inputs()
    config = GenerateConfig(inputs=(folder,), out=tmp_path / f"out-{workers}", workers=workers)
    batches = stream_inputs(config, lambda line: None, found, Progress(False, print))
    first = next(batches)
    pool_running = bool(multiprocessing.active_children())
    made = [*first, *(c for batch in batches for c in batch)]
    return [(c.id, c.source, c.page, c.index, c.section, c.language, c.text) for c in made], found, pool_running


def test_parallel_reading_keeps_order_and_chunk_ids(tmp_path, monkeypatch):
    folder = tmp_path / "docs"
    for d in range(7):  # files of different lengths finish out of order in the pool
        make_pdf(folder / f"{d}-policy.pdf", policy_pages(1 + (d * 5) % 7, seed=d))
    (folder / "notes.txt").write_text("\f".join(policy_pages(3, seed=9)), encoding="utf-8")
    make_docx(folder / "travel.docx")
    (folder / "intranet.html").write_text(HTML, encoding="utf-8")
    markdown_with_five_headings(folder / "handbook.md")  # one long page: sections
    (folder / "politique.md").write_text(FRENCH, encoding="utf-8")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7 not really")
    monkeypatch.setattr(inputs_module, "POOL_MIN_PAGES", 0)  # small files: use the pool anyway

    one, found_one, pool_one = _read(folder, tmp_path, workers=1)
    three, found_three, pool_three = _read(folder, tmp_path, workers=3)
    assert not pool_one and pool_three  # the second read really ran in worker processes
    assert len(one) > 25 and one == three
    assert [s.source for s in found_one.skipped_files] == [s.source for s in found_three.skipped_files] == ["broken.pdf"]
    assert found_one.pages_per_doc == found_three.pages_per_doc
    assert (found_one.chunks, found_one.asked) == (found_three.chunks, found_three.asked)
    # what the workers found about each document (cleaning) and each chunk (section, language) came back
    assert found_one.documents == found_three.documents and set(found_three.documents) == set(found_three.pages_per_doc)
    assert all(d.cleaning is not None for d in found_three.documents.values())
    assert {c[0] for c in three if c[4] > 0} and {c[1] for c in three if c[4] > 0} <= {"handbook.md", "notes.txt"}
    languages = {source: {c[5] for c in three if c[1] == source} for source in found_three.pages_per_doc}
    assert languages["politique.md"] == {"fr"} and languages["0-policy.pdf"] == {"en"}
    assert {"travel.docx", "intranet.html"} <= set(found_three.pages_per_doc)


def test_pages_are_counted_for_every_kind_of_input(tmp_path):
    counted = {
        make_pdf(tmp_path / "a.pdf", policy_pages(3)): 3,
        make_docx(tmp_path / "b.docx"): 1,  # Word and HTML files are one page each
        tmp_path / "c.html": 1,
        tmp_path / "d.txt": 4,  # one more than its form feeds
        tmp_path / "empty.html": 0,
        tmp_path / "broken.pdf": 0,  # reading it says why; the bar only loses its pages
    }
    (tmp_path / "c.html").write_text(HTML, encoding="utf-8")
    (tmp_path / "d.txt").write_text("\f".join(policy_pages(4)), encoding="utf-8")
    (tmp_path / "empty.html").write_bytes(b"")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7 not really")
    assert reading.count_pages([str(p) for p in counted]) == list(counted.values())


def test_the_streamed_split_equals_the_split_of_the_chunk_list(tmp_path):
    folder = tmp_path / "docs"
    make_pdf(folder / "leaflet.pdf", policy_pages(6))
    markdown_with_five_headings(folder / "handbook.md")
    text_of_forty_chunks(folder / "manual.txt")
    made = [c for batch in stream_inputs(GenerateConfig(inputs=(folder,), out=tmp_path / "out", workers=1),
                                         lambda line: None, Inputs(), Progress(False, print)) for c in batch]
    store = RunStore(tmp_path / "work.sqlite")
    store.add_chunks([(c, "key") for c in made])
    for seed, fraction in ((42, 0.15), (7, 0.3)):
        config = GenerateConfig(inputs=(folder,), out=tmp_path / "out", seed=seed, eval_fraction=fraction)
        is_eval, ids = assemble.assign_splits(config, store)
        expected = splits.assign_splits(made, fraction, seed)
        assert is_eval.tolist() == [expected[c.id] == splits.EVAL for c in made]
        assert [f"{i:016x}" for i in ids.tolist()] == [c.id for c in made]
        assert 0 < is_eval.sum() < len(made)
    store.close()


def _dies_on_two(task: int) -> int:  # run in a worker process, which imports it from here
    if task == 2:
        os._exit(3)
    return task * 10


def test_a_reading_process_that_dies_is_one_error_not_a_hang():
    results = reading.ordered_map(_dies_on_two, range(6), workers=2, describe=lambda task: f"file-{task}.pdf")
    with pytest.raises(InputError, match=r"a process reading the inputs died .* while reading file-[0-2]\.pdf or a "
                                         r"file after it: rerun with fewer --workers"):
        list(results)


def test_a_run_that_ends_on_an_error_while_reading_leaves_no_warning_and_no_reading_line(tmp_path):
    """The endpoint fails on the first chunk while the reading thread is still at work: once the run has
    ended, the thread hands nothing more to the closed event loop (that left an un-awaited ``Queue.put`` and
    Python's RuntimeWarning after the error line) and prints no "reading: …" line after it."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "long.txt").write_text("\f".join(policy_pages(400)), encoding="utf-8")
    config = GenerateConfig(inputs=(folder,), out=tmp_path / "out", workers=1, clean=False)
    second, ended, batches, logged = threading.Event(), threading.Event(), [], []

    def keep(batch):
        if batches:  # from the second batch on, the reading thread waits until the run has ended
            second.set()
            ended.wait()
        batches.append(len(batch))
        return ["key"] * len(batch)

    async def ask(feed):
        async for _ in feed:
            await asyncio.to_thread(second.wait)  # the thread is inside its second batch, still at work
            raise RuntimeError("the endpoint is down")

    feed = ThreadedFeed(config, logged.append, Progress(True, logged.append), keep)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match="the endpoint is down"):
            asyncio.run(ask(feed))
        ended.set()
        feed.join()
        gc.collect()
    assert len(batches) == 2
    assert not [w for w in caught if "never awaited" in str(w.message)]
    assert not [line for line in logged if line.startswith("reading")]


def test_reading_waits_when_asking_falls_behind(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "long.txt").write_text("\f".join(policy_pages(4000)), encoding="utf-8")  # 15 batches of chunks
    # without cleaning: it would strip the synthetic pages' cycling paragraphs as running heads, leaving too few
    config = GenerateConfig(inputs=(folder,), out=tmp_path / "out", workers=1, clean=False)
    kept: list[int] = []

    async def consume() -> int:
        feed = ThreadedFeed(config, lambda line: None, Progress(False, print),
                            lambda batch: kept.append(len(batch)) or ["key"] * len(batch))
        stream = feed.__aiter__()
        await anext(stream)  # take one chunk, then stop consuming while the reader keeps going
        while len(kept) < inputs_module.QUEUE_BATCHES + 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # room for a reader that does not wait to run ahead
        held = len(kept)
        await stream.aclose()
        feed.join()
        return held

    held = asyncio.run(consume())
    # the batch being consumed, a full queue, and the one the reader waits to put: nothing more was read
    assert held == inputs_module.QUEUE_BATCHES + 2
    assert sum(kept) <= held * inputs_module.BATCH


def test_ctrl_c_while_reading_waits_for_room_ends_quietly(tmp_path, monkeypatch, caplog):
    # Ctrl-C ends asyncio.run while the reading thread waits to put a batch: the loop's end cancelled that
    # wait, and the thread's next put then printed "exception calling callback", "Task was destroyed but it
    # is pending" and "Exception ignored in: <coroutine Queue.put>" under the run's "interrupted" line
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "long.txt").write_text("\f".join(policy_pages(4000)), encoding="utf-8")  # 15 batches of chunks
    config = GenerateConfig(inputs=(folder,), out=tmp_path / "out", workers=1, clean=False)
    kept: list[int] = []
    unraisable: list = []
    monkeypatch.setattr("sys.unraisablehook", unraisable.append)
    feed = ThreadedFeed(config, lambda line: None, Progress(False, print),
                        lambda batch: kept.append(len(batch)) or ["key"] * len(batch))

    def interrupt() -> None:
        raise KeyboardInterrupt  # as the signal handler raises it: in the loop, between callbacks

    async def consume() -> None:
        stream = feed.__aiter__()
        await anext(stream)
        while len(kept) < inputs_module.QUEUE_BATCHES + 2:  # the reader now waits to put a batch
            await asyncio.sleep(0.01)
        asyncio.get_running_loop().call_soon(interrupt)
        try:
            await asyncio.sleep(3600)  # a request in flight, the stream left open
        except asyncio.CancelledError:
            await asyncio.sleep(0.3)  # the run's own clean-up (its HTTP client closing) takes a moment
            raise

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(consume())
    feed.stop()
    assert not feed._thread.is_alive()
    gc.collect()
    assert not unraisable and not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_real_run_shows_totals_from_the_start_and_a_line_per_stage(tmp_path, fake_server):
    docs = make_policy_folder(tmp_path / "docs", docs=3, pages=4)
    out = tmp_path / "out"
    proc = run_cli("generate", docs, "-o", out, "--base-url", fake_server.base_url, "--no-embed-roundtrip")
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    manifest = json.loads((out / "synthqa.json").read_text())
    pages, asked = manifest["counts"]["pages"], manifest["counts"]["chunks_asked"]
    assert f"counting pages: {pages} pages in 3 file(s)" in err
    assert re.search(rf"pages read: +100%\|.*\| {pages}/{pages} \[", err)
    updates = re.findall(r"questions[^:]*: +\d+%\|[^|]*\| (\d+)/(\d+) \[[^]]*<", err)  # n/total [elapsed<eta
    assert updates and all(int(total) >= 1 for _, total in updates)
    assert ("%d" % asked, "%d" % asked) in updates  # the bar ends at the exact total
    assert not re.search(r"questions[^:]*: \d+chunk", err)  # never a count without a total
    assert re.search(r"near duplicates: comparing questions: +100%\|[^|]*\| (\d+)/\1 \[", err)
    for stage in ("asking", "question filters", "near duplicates", "round trip", "train/eval split", "writing"):
        assert re.search(rf"synthqa: {stage}: .* \(\d+\.\d s\)", err), stage
    assert set(manifest["timings"]) == {"count", "read", "ask", "filter", "near_duplicates", "roundtrip", "split",
                                        "write"}
    assert not (out / ".synthqa" / "work").exists()  # the run's scratch files are gone


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _clocked_bar(total: int):
    """The questions bar as a run makes it, on a test clock; returns (bar, clock)."""
    clock = _Clock()
    bar = Progress(True, print).bar("questions", total, "chunk")
    bar._time = clock
    bar.start_t = bar.last_print_t = clock.now
    return bar, clock


def _resumed_bar(cached_in_rate: bool):
    """The questions bar resuming at 80 of 429 (the cached answers found over 12 s of reading), then 7 chunks
    asked live at 5 s each: the README's main job stopped and rerun."""
    bar, clock = _clocked_bar(429)
    for _ in range(80):
        clock.now += 0.15
        bar.update(1) if cached_in_rate else count_done_before(bar, 1, restart_clock=True)
    for _ in range(7):
        clock.now += 5.0
        bar.update(1)
    return bar


def test_a_resumed_runs_eta_counts_only_the_chunks_asked_now(capsys):
    bar = _resumed_bar(cached_in_rate=False)
    left = (bar.total - bar.n) / bar.format_dict["rate"]
    assert bar.n == 87 and abs(left - 342 * 5.0) < 0.05 * 342 * 5.0  # 28.5 min left, as the live rate says
    bar.close()
    shown = capsys.readouterr().err
    found = [int(n) for n in re.findall(r" (\d+)/429 \[00:00<", shown)]
    assert max(found) >= 77 and len(found) <= 30  # the cached count is shown as it is found, twice a second
    assert " 87/429 [00:35<28:30" in shown  # its clock runs from the first live chunk
    naive = _resumed_bar(cached_in_rate=True)
    assert (naive.total - naive.n) / naive.format_dict["rate"] < left / 3  # what tqdm alone would say
    naive.close()


def test_a_resumed_runs_clock_starts_when_the_embedded_models_server_is_up():
    # the README's main job resumed at 80 of 429: its server takes 15 s to start before the first request
    bar, clock = _clocked_bar(429)
    for _ in range(80):
        clock.now += 0.15
        count_done_before(bar, 1, restart_clock=True)
    clock.now += 15.0
    start_clock(bar)
    for _ in range(3):
        clock.now += 5.0
        bar.update(1)
    assert abs(1 / bar.format_dict["rate"] - 5.0) < 0.25  # 5 s a chunk from the first live one (not ~10)
    started = bar.start_t
    clock.now += 1.0
    start_clock(bar)  # live work counted: the clock stays
    assert bar.start_t == started
    bar.close()


def test_cached_answers_between_live_ones_keep_the_live_rate_and_redraw_twice_a_second(capsys):
    # a resume whose answered chunks have gaps: cached answers come while requests are in flight
    bar, clock = _clocked_bar(30_000)
    for _ in range(5):
        clock.now += 5.0
        bar.update(1)
    capsys.readouterr()
    clock.now += 0.6
    for _ in range(8_000):  # 4 s of cached answers while the next request is in flight
        clock.now += 0.0005
        count_done_before(bar, 1, restart_clock=False)
    assert capsys.readouterr().err.count("\r") <= 10  # every half second, not every answer
    clock.now += 0.4
    bar.update(1)  # that request's answer, 5 s after the last
    assert bar.n == 8_006 and abs(1 / bar.format_dict["rate"] - 5.0) < 0.25  # 5 s a chunk, as before
    bar.close()


def test_a_first_run_over_repeated_texts_does_not_say_it_resumes(tmp_path, fake_server):
    # three copies of one document, one request at a time: a copy's chunk is looked up while at most one
    # request is in flight, so all but that one are answered from the cache, by this very run
    docs = make_policy_folder(tmp_path / "docs", docs=1, pages=3)
    for copy in ("policy-2.pdf", "policy-3.pdf"):
        shutil.copy(docs / "policy-1.pdf", docs / copy)
    proc = run_cli("generate", docs, "-o", tmp_path / "out", "--base-url", fake_server.base_url,
                   "--no-embed-roundtrip", "--concurrency", "1")
    assert proc.returncode == 0, proc.stderr
    assert "resuming" not in proc.stderr
    asked = json.loads((tmp_path / "out" / "synthqa.json").read_text())["counts"]["chunks_asked"]
    line = re.search(r"asking: (\d+) chunks asked, 0 answered from the cache(?:, (\d+) answered earlier in this "
                     r"run)?, (\d+) requests", proc.stderr)
    assert line, proc.stderr
    live, earlier, requests = int(line[1]), int(line[2] or 0), int(line[3])
    assert live == requests == asked // 3 >= 2 and asked - live - 2 <= earlier <= asked - live


def test_an_interrupted_runs_scratch_files_are_cleared_by_the_rerun(tmp_path, fake_server):
    docs = make_policy_folder(tmp_path / "docs", docs=2, pages=2)
    out = tmp_path / "out"
    leftover = out / ".synthqa" / "work" / "work.sqlite"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half-written by a killed run")
    proc = generate(docs, out, fake_server)
    assert proc.returncode == 0, proc.stderr
    assert not leftover.parent.exists()


# ---------------------------------------------------------------------------- the on-disk steps


def _bm25_case(seed: int) -> tuple[list[str], list[str], list[int]]:
    rng = random.Random(seed)
    corpus = [p[i:i + 700] for p in policy_pages(30, seed=seed) for i in range(0, 1400, 350)]
    corpus += [corpus[5], corpus[5].upper(), "", "the and of"]  # duplicates, empty, stopwords only
    questions, own = [], []
    for _ in range(300):
        j = rng.randrange(len(corpus))
        words = re.findall(r"\w+", corpus[j]) or ["nothing"]
        picked = [rng.choice(words) for _ in range(rng.randint(1, 9))]
        picked += rng.sample(["zyzzyva", "the", picked[0], "policy"], 2)  # unknown, stopword, repeated words
        questions.append(" ".join(picked) + "?")
        own.append(j)
    return corpus, questions, own


@pytest.mark.parametrize("seed", [0, 1])
def test_disk_bm25_ranks_and_candidates_equal_bm25s_dense_scores(tmp_path, monkeypatch, seed):
    monkeypatch.setattr(bm25index, "SLICE_ENTRIES", 500)  # many postings slices and forward blocks
    monkeypatch.setattr(bm25index, "FORWARD_ENTRIES", 300)
    monkeypatch.setattr(bm25index, "RANGE_ENTRIES", 8)  # questions scored in many chunk ranges
    monkeypatch.setattr(bm25index, "BLOCK_DOCS", 7)  # chunks tokenised in many blocks, their words numbered anew
    corpus, questions, own = _bm25_case(seed)
    index = bm25index.DiskBM25(tmp_path / "bm25").build(iter(corpus))
    ranks = assert_equal_to_dense(index, questions, own, corpus, stop=(3, 2))
    assert len(set(ranks)) > 5 and max(ranks) > 4  # the case has first, middling and censored ranks


def _near_duplicate_set(seed: int, n: int = 1500) -> list[str]:
    """Questions with the near duplicates a model writes: plurals, a word changed, words reordered."""
    rng = random.Random(seed)
    vocab = sorted({w.lower() for page in policy_pages(12, seed=seed) for w in re.findall(r"[A-Za-z]{3,}", page)})
    base = [" ".join(rng.choice(vocab) for _ in range(rng.randint(5, 14))) for _ in range(n // 4)]
    texts = []
    for _ in range(n):
        words = rng.choice(base).split()
        for _ in range(rng.randint(0, 2)):
            i, kind = rng.randrange(len(words)), rng.random()
            if kind < 0.4:
                words[i] += "s"
            elif kind < 0.7:
                words[i] = rng.choice(vocab)
            else:
                rng.shuffle(words)
        texts.append(dedupe.normalize_question(" ".join(words) + "?"))
    return list(dict.fromkeys(texts))


def _all_pairs(texts: list[str]) -> np.ndarray:
    # synthqa's earlier check, all pairs at once (its cutoff applies before the scores are rounded to integers)
    scores = process.cdist(texts, texts, scorer=fuzz.token_sort_ratio, processor=None,
                           score_cutoff=dedupe.NEAR_DUPLICATE_RATIO, dtype=np.uint8)
    dropped = np.zeros(len(texts), dtype=bool)
    for j in range(len(texts)):
        dropped[j] = bool(((scores[j, :j] >= dedupe.NEAR_DUPLICATE_RATIO) & ~dropped[:j]).any())
    return dropped


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("columns", [dedupe.COLUMNS_AT_ONCE, 5])  # 5: a block scored against slices of a group
def test_near_duplicates_by_blocking_equal_the_all_pairs_comparison(monkeypatch, tmp_path, seed, columns):
    texts = _near_duplicate_set(seed)
    want = _all_pairs(texts)
    monkeypatch.setattr(dedupe, "KEYS_IN_MEMORY", 500)  # keys spill to files, in many blocks
    monkeypatch.setattr(dedupe, "PAIRS_AT_ONCE", 7)  # the decisions made over many slices of pairs
    monkeypatch.setattr(dedupe, "PAIRS_IN_MEMORY", 50)  # pairs found spill to files many times,
    monkeypatch.setattr(dedupe, "PAIR_BUCKET_QUESTIONS", 97)  # one file per 97 later questions
    got = dedupe.near_duplicates(lambda: texts, tmp_path, block=7, columns=columns)
    assert want.sum() > 100 and np.array_equal(got, want)



def test_pairs_found_wait_on_disk_by_the_later_questions_range(monkeypatch, tmp_path):
    """The decisions load one range of later questions' pairs at a time, each range sorted and without repeats."""
    monkeypatch.setattr(dedupe, "PAIRS_IN_MEMORY", 10)
    monkeypatch.setattr(dedupe, "PAIR_BUCKET_QUESTIONS", 100)
    n, rng = 1000, np.random.default_rng(0)
    later = rng.integers(1, n, 5000)
    codes = later * n + rng.integers(0, later)  # each pair: later × n + earlier
    pairs = dedupe._PairBuckets(n, tmp_path)
    for part in np.array_split(np.r_[codes, codes[:500]], 37):  # some pairs found twice, under two keys
        pairs.add(part)
    assert len(list(tmp_path.glob("pairs-*.bin"))) == 10  # spilled, a file per range
    ranges = list(pairs.in_order())
    assert [set((r // n // 100).tolist()) for r in ranges] == [{b} for b in range(10)]
    assert np.array_equal(np.concatenate(ranges), np.unique(codes))


def test_near_duplicates_count_their_pairs_before_comparing_them(monkeypatch, tmp_path):
    texts = _near_duplicate_set(1)
    df = Counter(w for text in texts for w in dedupe.key_words(text))
    filed = Counter(key for text in texts for key in set(dedupe.blocking_keys(dedupe.key_words(text), df)))
    pairs = sum(k * (k - 1) // 2 for k in filed.values())
    for keys_in_memory in (dedupe.KEYS_IN_MEMORY, 500):  # one block of keys; many, spilled to files
        monkeypatch.setattr(dedupe, "KEYS_IN_MEMORY", keys_in_memory)
        heard: list[tuple[str, int]] = []
        found = dedupe.near_duplicates(lambda: texts, tmp_path, block=7, progress=lambda *step: heard.append(step))
        assert heard[0] == ("total", pairs) and pairs > 1000
        assert {step for step, _ in heard[1:]} == {"compared"} and len(heard) > 50
        assert sum(n for _, n in heard[1:]) == pairs
        assert np.array_equal(found, _all_pairs(texts))


def test_the_table_buffers_together_stay_within_their_byte_budget(tmp_path, monkeypatch):
    # a million chunks filled six buffers of whole chunk texts side by side (the eval ones slowly): over 100 MB
    corpus = [{"id": f"{i:016x}", "text": f"chunk {i} " + "policy text " * 25, "source": "a.pdf", "page": i,
               "chunk_index": 0, "split": "eval" if i % 7 == 0 else "train"} for i in range(400)]
    queries = [{"id": f"q-{c['id']}-{n}", "text": f"question {n} on {c['id']}?", "chunk_id": c["id"],
                "source": "a.pdf", "page": c["page"], "bm25_rank": 1, "embed_rank": None,
                "extra_relevant_ids": [], "split": c["split"]} for c in corpus for n in range(2)]
    plain = dataset.write_tables(tmp_path / "plain", corpus=corpus, queries=queries)
    monkeypatch.setattr(dataset.TableWriter, "BUFFERED_BYTES", 20_000)
    held: list[int] = []
    flush = dataset.TableWriter._flush
    monkeypatch.setattr(dataset.TableWriter, "_flush",
                        lambda self, *key: held.append(sum(self._bytes.values())) or flush(self, *key))
    budgeted = dataset.write_tables(tmp_path / "budget", corpus=corpus, queries=queries)
    biggest = max(len(c["text"]) + len(q["text"]) for c, q in zip(corpus, queries[::2])) + 200
    assert held and max(held) <= 20_000 + biggest  # what all buffers held when one was written
    for config, split_files in plain.items():
        for split, path in split_files.items():
            early = pq.ParquetFile(tmp_path / "budget" / budgeted[config][split])
            assert early.read().equals(pq.read_table(tmp_path / "plain" / path))  # the same rows, in order
    assert pq.ParquetFile(tmp_path / "budget" / budgeted["corpus"]["train"]).metadata.num_row_groups > 5


def test_tables_are_written_in_row_groups_as_they_stream(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset.TableWriter, "ROWS_PER_GROUP", 3)
    corpus = [{"id": f"{i:016x}", "text": f"chunk {i}", "source": "a.pdf", "page": i, "chunk_index": 0,
               "split": "eval" if i % 4 == 0 else "train"} for i in range(10)]
    queries = [{"id": f"q-{c['id']}-0", "text": f"question {i}?", "chunk_id": c["id"], "source": "a.pdf",
                "page": c["page"], "bm25_rank": 1, "embed_rank": None, "extra_relevant_ids": [], "split": c["split"]}
               for i, c in enumerate(corpus)]
    files = dataset.write_tables(tmp_path, corpus=corpus, queries=queries)
    assert list(files) == ["default", "queries", "corpus"] and list(files["corpus"]) == ["train", "eval"]
    train = pq.ParquetFile(tmp_path / files["corpus"]["train"])
    assert train.metadata.num_row_groups == 3  # 7 rows, 3 at a time
    assert [r["id"] for r in train.read().to_pylist()] == [c["id"] for c in corpus if c["split"] == "train"]
    pairs = pq.read_table(tmp_path / files["default"]["eval"]).to_pylist()
    assert pairs == [{"sentence_0": f"question {i}?", "sentence_1": f"chunk {i}"} for i in (0, 4, 8)]
