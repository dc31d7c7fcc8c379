import sqlite3
import threading

import pytest

from synthqa.cache import Cache, answer_key
from synthqa.errors import CacheError
from synthqa.records import Answer, Usage


def key(text="chunk", **kw):
    args = dict(model="m", prompt_sha256="p", chunk_text=text, n_questions=2, temperature=0.0) | kw
    return answer_key(**args)


def test_key_changes_with_everything_that_changes_the_answer():
    base = key()
    assert base == key()
    for change in (dict(model="m2"), dict(prompt_sha256="q"), dict(chunk_text="other"), dict(n_questions=3),
                   dict(temperature=0.5), dict(answers=True), dict(openers="Start with \"Why\".")):
        assert key(**change) != base


def test_put_get_roundtrip_and_replace(tmp_path):
    with Cache(tmp_path / "c.sqlite") as cache:
        a = Answer("c1", ("Q1?", "Q2?"), usage=Usage(2, 100, 20), attempts=2)
        cache.put("k1", a)
        assert cache.get("k1") == a
        assert cache.get("missing") is None
        failed = Answer("c2", error="no questions in answer", usage=Usage(3, 90, 10), attempts=3)
        cache.put("k2", failed)
        assert cache.get_many(["k1", "k2", "k3"]) == {"k1": a, "k2": failed}
        fixed = Answer("c2", ("Q?",), short=True)
        cache.put("k2", fixed)
        assert cache.get("k2") == fixed and len(cache) == 2
    with Cache(tmp_path / "c.sqlite", readonly=True) as ro:
        assert [x.chunk_id for x in ro.answers()] == ["c1", "c2"]


def test_reader_sees_answers_while_a_writer_is_writing(tmp_path):
    path = tmp_path / "c.sqlite"
    writer = Cache(path)
    errors = []

    def read():
        try:
            for _ in range(200):
                with Cache(path, readonly=True) as ro:
                    list(ro.answers())
        except Exception as err:  # pragma: no cover - the assertion below shows it
            errors.append(err)

    t = threading.Thread(target=read)
    t.start()
    for i in range(300):
        writer.put(f"k{i}", Answer(f"c{i}", ("Q?",)))
    t.join()
    writer.close()
    assert errors == []
    with Cache(path, readonly=True) as ro:
        assert len(ro) == 300


def test_corrupt_cache_gives_a_clear_error(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheError, match="c.sqlite"):
        Cache(path)


def test_full_disk_raises_cache_error_and_keeps_earlier_rows(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = Cache(path)
    cache.put("k0", Answer("c0", ("Q?",)))
    # Simulate a full disk with SQLite's own page cap: the write fails with SQLITE_FULL.
    pages = cache._db.execute("PRAGMA page_count").fetchone()[0]
    cache._db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(CacheError, match="disk"):
        for i in range(1, 200):
            cache.put(f"k{i}", Answer(f"c{i}", ("A long question about policy? " * 40,)))
    cache.close()
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Cache(path) as again:
        assert again.get("k0") == Answer("c0", ("Q?",))


def test_keys_lists_every_answer_or_only_the_answered_ones(tmp_path):
    with Cache(tmp_path / "c.sqlite") as cache:
        assert list(cache.keys()) == []
        cache.put("k-ok", Answer("c1", ("What is kept?",)))
        cache.put("k-failed", Answer("c2", error="prose without a question"))
        assert sorted(cache.keys()) == ["k-failed", "k-ok"]
        assert list(cache.keys(answered_only=True)) == ["k-ok"]
