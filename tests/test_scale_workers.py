"""The stages after asking over worker processes (``--workers``): the same question filters' decisions and the
same round-trip ranks and extra chunks for any number of workers, a worker that dies is one clear error, and
Ctrl-C while the run waits for a worker stops every worker at once."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import psutil
import pytest

from e2e import CORPORA, policy_pages
from fakeserver import FakeOpenAI, questions_for
from synthqa import bm25index, filters, language, pool, roundtrip
from synthqa.errors import WorkerError
from synthqa.pipeline import assemble
from synthqa.records import Answer, Chunk

BLOCK = 48  # questions per task: many blocks from a small set of questions


def _corpus() -> list[str]:
    """About 5,000 chunks of policy prose overlapping by half: words like "clause" are in most of them, so
    questions of such words have long essential postings and take the per-question path; every eighth word is
    followed by a rare made-up one, so a question can be specific and two neighbours can both answer it."""
    rng = random.Random(7)
    pages = []
    for page in policy_pages(1300):
        words = page.split(" ")
        pages.append(" ".join(w + (" " + "".join(rng.choices("bcdfgklmnprstvz", k=7)) if n % 8 == 7 else "")
                              for n, w in enumerate(words)))
    return [page[i:i + 600] for page in pages for i in range(0, 1200, 300)]


def _questions(corpus: list[str]) -> list[tuple[str, int]]:
    specific = [(" ".join(corpus[j].split()[-30:-20]) + "?", j) for j in range(0, len(corpus), 23)]
    vague = [("Which clause of the policy section applies?", j) for j in range(7, len(corpus), 97)]
    mixed = [q for pair in zip(specific, vague) for q in pair] + specific[len(vague):]
    return mixed + [("zyzzyva quux?", 3), ("the and of?", 11)]  # no known word; stopwords only


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return _corpus()


def _scorer(corpus: list[str], tmp: Path, workers: int) -> roundtrip.Scorer:
    return roundtrip.Scorer(lambda: iter(corpus), corpus.__getitem__, tmp, use_embeddings=False,
                            top_k=roundtrip.TOP_K, workers=workers)


def _worker_pids() -> list[int]:
    """The pool's processes: children of the fork server, this process's child."""
    return [g.pid for child in psutil.Process().children() for g in child.children()]


def test_ranks_and_extras_are_the_same_for_any_number_of_workers(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(roundtrip, "QUESTION_BLOCK", BLOCK)
    questions = _questions(corpus)
    heavy_blocks: set[int] = set()
    own_rank = bm25index._Postings.own_rank

    def spy(self, plan, own, *args):
        heavy_blocks.add(questions.index(next(q for q in questions if q[1] == own)) // BLOCK)
        return own_rank(self, plan, own, *args)

    monkeypatch.setattr(bm25index._Postings, "own_rank", spy)
    alone = list(_scorer(corpus, tmp_path / "one", 1).score(questions))
    monkeypatch.setattr(bm25index._Postings, "own_rank", own_rank)
    assert len(heavy_blocks) >= 3  # vague questions (the costly ones) sit in many blocks, so every worker gets some
    assert len(alone) == len(questions) and any(extras for _, _, extras in alone)
    assert {rank for rank, _, _ in alone} >= {1, roundtrip.TOP_K + 1}
    for workers in (2, 3):
        assert list(_scorer(corpus, tmp_path / f"w{workers}", workers).score(questions)) == alone


def _answered(corpus: list[str]) -> list[tuple[int, Chunk, str, Answer | None]]:
    """Rows as ``RunStore.answered_chunks`` gives them: two styles per chunk, English and French chunks, queries
    of every kind (good ones, in the wrong language, copied, too short), failed and never-asked chunks."""
    rows = []
    for seq, text in enumerate(corpus[:400]):
        code = "fr" if seq % 5 == 0 else "en"
        chunk = Chunk(f"{seq:016x}", f"doc-{seq // 40}.txt", seq % 40 + 1, 0, text, language=code)
        questions = questions_for(text, 3, code, wrong=seq % 3 == 0)
        questions += [text.split(".")[0], "Why?", questions[0]][: seq % 4]  # a copied sentence, too short, a repeat
        answer = (None if seq % 97 == 5 else Answer(chunk.id, error="HTTP 500") if seq % 89 == 3
                  else Answer(chunk.id, tuple(questions)))
        rows += [(seq, chunk, "question", answer), (seq, chunk, "keyword",
                                                      Answer(chunk.id, tuple(questions_for(text, 2, style="keyword"))))]
    return rows


def test_filter_decisions_are_the_same_for_any_number_of_workers(corpus, monkeypatch):
    monkeypatch.setattr(assemble, "FILTER_BLOCK", 64)
    rows = _answered(corpus)
    # as the pipeline judged them before: question by question, the language check made apart (it is per row)
    asked = [(chunk, style, answer.questions if answer is not None and answer.ok else ()) for _, chunk, style, answer
             in rows]
    ok = iter(language.in_languages([filters.question_text(q) for _, _, queries in asked for q in queries],
                                    [chunk.language if style == "question" else None
                                     for chunk, style, queries in asked for _ in queries]).tolist())
    one_by_one = [[filters.question_drop_reason(q, chunk.text, chunk.language if style == "question" else None,
                                                chunk_language=chunk.language, style=style, language_ok=next(ok))
                   for q in queries] for chunk, style, queries in asked]
    reasons = {r for per_answer in one_by_one for r in per_answer}
    assert {None, "wrong_language", "copied_sentence"} <= reasons and len(reasons) >= 4, reasons
    for workers in (1, 2):
        judged = list(assemble._judged(iter(rows), {"question"}, workers))
        assert [row[:4] for row in judged] == rows
        assert [row[4] for row in judged] == one_by_one


def test_the_index_opened_from_its_files_is_the_built_one(corpus, tmp_path):
    built = bm25index.DiskBM25(tmp_path / "bm25").build(corpus[:300])
    opened = bm25index.DiskBM25.open(tmp_path / "bm25")
    assert opened.vocab == built.vocab and opened.n_docs == built.n_docs == 300
    for name in ("indptr", "max_weight", "entry_start"):
        assert (getattr(opened, name) == getattr(built, name)).all()


def test_a_ranking_process_that_dies_is_one_error_not_a_hang(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(roundtrip, "QUESTION_BLOCK", 8)
    rows = _scorer(corpus, tmp_path, 2).score(_questions(corpus))
    next(rows)  # the pool is up
    for pid in _worker_pids():
        os.kill(pid, signal.SIGKILL)
    with pytest.raises(WorkerError, match=r"^a process ranking questions for the round trip died \(out of memory, "
                                          r"or a crash in a C library\): rerun with fewer --workers \(1 does it "
                                          r"in this process\)$"):
        list(rows)
    assert not [p for p in _worker_pids() if psutil.Process(p).status() != psutil.STATUS_ZOMBIE]



def _dies_writing_its_result(task: int) -> int:
    """In a worker: for task 3, start writing the result and die half-way, as a worker the kernel kills for
    memory while it sends a large result does (the pipe's lock held, a length prefix and part of the message
    written); every other task is answered."""
    if task != 3:
        return task * task
    import gc
    import multiprocessing.queues
    import struct

    results = next(o for o in gc.get_objects() if isinstance(o, multiprocessing.queues.SimpleQueue))
    results._wlock.acquire()
    os.write(results._writer.fileno(), struct.pack("!i", 1 << 20) + b"\x80" * 1000)
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_that_dies_writing_its_result_is_one_error_not_a_hang():
    died = []
    with pytest.raises(RuntimeError, match=r"^died at [0-3]$"):
        for value in pool.ordered_map(_dies_writing_its_result, range(40), 2,
                                      lambda task: died.append(task) or RuntimeError(f"died at {task}")):
            assert value < 9
    assert len(died) == 1
    assert not [p for p in _worker_pids() if psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


SCRIPT = textwrap.dedent("""
    import contextlib, os, signal, sys
    from pathlib import Path
    import psutil
    from synthqa import roundtrip
    from test_scale_workers import _corpus, _questions, _scorer, _worker_pids

    signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever the parent left, as the CLI installs it
    roundtrip.QUESTION_BLOCK = 8
    corpus = _corpus()
    workers = []
    try:
        with contextlib.closing(_scorer(corpus, Path(sys.argv[1]), 2).score(_questions(corpus))) as rows:
            for row in rows:  # as the pipeline reads them
                if not workers:  # the workers freeze: the run now waits for them, as for a slow block
                    workers = _worker_pids()
                    for pid in workers:
                        os.kill(pid, signal.SIGSTOP)
                    print(*workers, flush=True)
        print("finished", flush=True)
    except KeyboardInterrupt:
        alive = [p for p in workers if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        print("alive", *alive, flush=True)
        sys.exit(130)
""")


@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["foreground", "from-a-background-job"])
def test_ctrl_c_while_waiting_for_ranking_processes_stops_them_at_once(tmp_path, sigint_ignored):
    # The pool's threads let the kernel hand SIGINT to any of them; a wait for a frozen worker must still see it.
    with _script(SCRIPT, tmp_path, sigint_ignored) as (proc, stderr):
        workers = [int(p) for p in proc.stdout.readline().split()]
        proc.kill_too = workers  # a frozen worker must not outlive a failing test
        assert len(workers) == 2, stderr.text()
        proc.send_signal(signal.SIGINT)
        status = proc.wait(timeout=300)  # a guard against a hang, not a measure
        said = proc.stdout.readline().split()
        assert status == 130, stderr.text()
        assert said == ["alive"], said  # every worker stopped before the run ended
        # after every process of the run is gone (the resource tracker last): no traceback, no warning
        assert stderr.text(until_closed=True) == ""


START_SCRIPT = textwrap.dedent("""
    import multiprocessing.process, signal, sys
    import psutil
    from synthqa import pool

    signal.signal(signal.SIGINT, signal.default_int_handler)
    started, real_start = [], multiprocessing.process.BaseProcess.start

    def start(self):
        real_start(self)
        started.append(self.pid)
        signal.raise_signal(signal.SIGINT)  # Ctrl-C the moment a worker runs, before the pool lists it

    multiprocessing.process.BaseProcess.start = start
    try:
        for _ in pool.ordered_map(abs, range(10), 2, RuntimeError):
            pass
        print("finished", flush=True)
    except KeyboardInterrupt:
        alive = [p for p in started if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        print(len(started), "started, alive:", *alive, flush=True)
        sys.exit(130)
""")


def test_ctrl_c_while_a_worker_starts_stops_that_worker_too(tmp_path):
    with _script(START_SCRIPT, tmp_path, sigint_ignored=False) as (proc, stderr):
        status = proc.wait(timeout=300)  # a guard against a hang, not a measure
        said = proc.stdout.readline().split()
        proc.kill_too = [int(p) for p in said[3:] if p.isdigit()]
        assert status == 130, stderr.text()
        assert said == ["1", "started,", "alive:"], said
        assert stderr.text(until_closed=True) == ""  # the worker did not go on to fail on the pool's semaphores


READING_SCRIPT = textwrap.dedent("""
    import multiprocessing.process, signal, sys
    import psutil
    from synthqa.cli import main

    started, real_start = [], multiprocessing.process.BaseProcess.start

    def start(self):
        real_start(self)
        started.append(self.pid)
        if len(started) == 1:  # Ctrl-C as the first reading process starts (the pool runs in the reading thread)
            signal.raise_signal(signal.SIGINT)

    multiprocessing.process.BaseProcess.start = start
    code = main(["generate", sys.argv[2], "-o", sys.argv[1] + "/out", "--base-url", sys.argv[3], "--workers", "2",
                 "--no-progress", "--no-embed-roundtrip"])
    alive = [p for p in started if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    print(code, len(started) > 0, "alive:", *alive, flush=True)
    sys.exit(code)
""")


def test_ctrl_c_while_reading_in_worker_processes_stops_them_before_the_run_ends(tmp_path):
    with FakeOpenAI() as fake, _script(READING_SCRIPT, tmp_path, False, str(CORPORA), fake.base_url) as (proc,
                                                                                                        stderr):
        status = proc.wait(timeout=300)  # a guard against a hang, not a measure
        said = proc.stdout.readline().split()
        proc.kill_too = [int(p) for p in said[3:] if p.isdigit()]
        assert status == 130, stderr.text()
        assert said == ["130", "True", "alive:"], said
        text = stderr.text(until_closed=True)
        assert "Traceback" not in text and text.endswith("; rerun the same command to resume\n"), text
        assert text.count("synthqa: interrupted") == 1, text


KILLED_SCRIPT = textwrap.dedent("""
    import sys
    from synthqa import pool
    from test_scale_workers import _waits_for_ever

    preload = sys.argv[2:]  # no_pidfd: the workers watch the run as they do without pidfds
    for value in pool.ordered_map(_waits_for_ever, range(10), 2, RuntimeError, preload=preload):
        pass
""")


def _waits_for_ever(task: int) -> int:
    """In a worker: say its pid and whether it has pidfds, then wait as for a task that never ends (or a result
    pipe nobody reads)."""
    print(os.getpid(), hasattr(os, "pidfd_open"), flush=True)
    threading.Event().wait()
    return task


@pytest.mark.parametrize("preload", [(), ("no_pidfd",)], ids=["pidfd", "without-pidfd"])
def test_workers_end_with_a_run_killed_outright(tmp_path, preload):
    # SIGKILL or the OOM killer gives the run no chance to stop its workers: they must notice on their own
    with _script(KILLED_SCRIPT, tmp_path, False, *preload) as (proc, stderr):
        said = [proc.stdout.readline().split() for _ in range(2)]
        assert [has for _, has in said] == [str(not preload)] * 2  # the way each worker watches, as the test says
        workers = [int(pid) for pid, _ in said]
        watched = psutil.Process(proc.pid).children(recursive=True)  # before the kill: a worker may end at once
        assert set(workers) < {p.pid for p in watched}  # and the fork server and the resource tracker
        proc.kill_too = [p.pid for p in watched]  # none may outlive a failing test
        proc.kill()
        proc.wait(timeout=300)
        gone, alive = psutil.wait_procs(watched, timeout=300)  # a guard against a hang, not a measure
        # the fork server ends once no worker holds its pipe, the resource tracker once neither holds its own
        assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], stderr.text()


class _Stderr:
    """A child's stderr, read to its end in a thread: the end comes once every process holding it has exited
    (the fork server, the workers and the resource tracker inherit it)."""

    def __init__(self, pipe) -> None:
        self.chunks: list[str] = []
        self.reader = threading.Thread(target=lambda: self.chunks.extend(iter(pipe.readline, "")), daemon=True)
        self.reader.start()

    def text(self, until_closed: bool = False) -> str:
        if until_closed:
            self.reader.join(timeout=300)  # a guard against a hang, not a measure
            assert not self.reader.is_alive(), "a process of the run is still running"
        return "".join(self.chunks)


@contextlib.contextmanager
def _script(script: str, tmp_path: Path, sigint_ignored: bool, *args: str):
    """Run ``script`` (the test folder importable; ``tmp_path`` and ``args`` its arguments) with SIGINT at its
    default or ignored, as a background job leaves it; on the way out, kill it and the pids in ``proc.kill_too``."""
    tests = Path(__file__).parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")]),
               OPENAI_API_KEY="sk-test")
    preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, preexec_fn=preexec)
    proc.kill_too = []
    with contextlib.ExitStack() as stack:
        stack.callback(proc.kill)
        stack.callback(proc.stdout.close)
        stack.callback(lambda: _kill_all(proc.kill_too))
        yield proc, _Stderr(proc.stderr)


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
