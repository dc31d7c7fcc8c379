"""The chunks and questions of one run, spilled to SQLite beside the answer cache, so memory stays flat in N.

``OUT/.synthqa/work.sqlite`` is scratch space: made fresh by every run and removed when the dataset is
written. Chunks go in as they are read, in input order (``seq`` 0, 1, …), and the chunks the chunk filters
skipped beside them (each with the number of asked chunks before it, to place it in the corpus); the answers stay in the cache
and are joined by cache key; failures that are not cached (timeouts, 5xx …) are kept here for this run.
Questions that survive the question filters and exact deduplication go in order (``pos`` 0, 1, …).
One lock serialises the reading thread and the event loop, which both write.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from .errors import CacheError
from .cache import answer_from_row
from .records import Answer, Chunk, SkippedChunk, Usage

WORK_FILENAME = "work.sqlite"

_SCHEMA = """
CREATE TABLE chunks (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, source TEXT NOT NULL, page INTEGER NOT NULL,
                     idx INTEGER NOT NULL, text TEXT NOT NULL, key TEXT NOT NULL, section INTEGER NOT NULL,
                     language TEXT);
CREATE TABLE skipped (asked_before INTEGER NOT NULL, id TEXT NOT NULL, source TEXT NOT NULL, page INTEGER NOT NULL,
                      idx INTEGER NOT NULL, text TEXT NOT NULL, section INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE failures (key TEXT PRIMARY KEY, error TEXT NOT NULL, attempts INTEGER, requests INTEGER,
                       prompt_tokens INTEGER, completion_tokens INTEGER);
CREATE TABLE asks (seq INTEGER NOT NULL, slot INTEGER NOT NULL, style TEXT NOT NULL, key TEXT NOT NULL,
                   PRIMARY KEY (seq, slot));
CREATE TABLE questions (pos INTEGER PRIMARY KEY, chunk_seq INTEGER NOT NULL, n INTEGER NOT NULL,
                        text TEXT NOT NULL, norm TEXT NOT NULL, answer TEXT, style TEXT NOT NULL,
                        UNIQUE (style, norm));
"""
_CHUNK_COLUMNS = "c.seq, c.id, c.source, c.page, c.idx, c.text, c.section, c.language"  # seq, then a Chunk's fields
_CHUNK_FIELDS = len(_CHUNK_COLUMNS.split(", "))
_ANSWER_COLUMNS = "questions, error, short, attempts, requests, prompt_tokens, completion_tokens"


class RunStore:
    """The spill file of one run; ``attach_cache`` lets chunks be read with their answers."""

    def __init__(self, path: Path, fresh: bool = True) -> None:
        """A new, empty store at ``path`` (or, with ``fresh=False``, the one already there: benches)."""
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if fresh:
                self.path.unlink(missing_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            # scratch data: a crash loses nothing that the next run would not rebuild from the cache
            self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-32768;"
                                   "PRAGMA temp_store=FILE;" + (_SCHEMA if fresh else ""))
            self.chunks = self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]
            self.questions = self._db.execute("SELECT count(*) FROM questions").fetchone()[0]
        except (sqlite3.Error, OSError) as err:
            raise CacheError(f"cannot create {self.path}: {err} (free disk space, then rerun)") from None

    # ---------------------------------------------------------------- chunks and answers
    def add_chunks(self, rows: Sequence[tuple[Chunk, str | Sequence[str]]], styles: Sequence[str] = ("question",)
                   ) -> None:
        """Append (chunk, cache key) rows in input order: one key, or one per query style of ``styles``."""
        rows = [(c, (keys,) if isinstance(keys, str) else tuple(keys)) for c, keys in rows]
        with self._lock, self._write():
            start = self.chunks
            self._db.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?)", (
                (start + i, c.id, c.source, c.page, c.index, c.text, keys[0], c.section, c.language)
                for i, (c, keys) in enumerate(rows)))
            self._db.executemany("INSERT INTO asks VALUES (?,?,?,?)", (
                (start + i, slot, style, key) for i, (_, keys) in enumerate(rows)
                for slot, (style, key) in enumerate(zip(styles, keys, strict=True))))
            self.chunks += len(rows)

    def add_skipped(self, rows: Sequence[SkippedChunk]) -> None:
        """Append chunks the chunk filters skipped, in input order: never asked, but kept for the corpus."""
        with self._lock, self._write():
            self._db.executemany("INSERT INTO skipped VALUES (?,?,?,?,?,?,?,?)", (
                (s.asked_before, s.chunk.id, s.chunk.source, s.chunk.page, s.chunk.index, s.chunk.text,
                 s.chunk.section, s.reason) for s in rows))

    def skipped_rows(self) -> Iterator[SkippedChunk]:
        """The skipped chunks in input order."""
        for before, cid, source, page, idx, text, section, reason in self._db.execute(
                "SELECT * FROM skipped ORDER BY rowid"):
            yield SkippedChunk(Chunk(cid, source, page, idx, text, section), reason, before)

    def add_failure(self, key: str, answer: Answer) -> None:
        """Remember for this run a failure the cache does not keep (so a plain rerun asks again)."""
        u = answer.usage
        with self._lock, self._write():
            self._db.execute("INSERT OR REPLACE INTO failures VALUES (?,?,?,?,?,?)",
                             (key, answer.error, answer.attempts, u.requests, u.prompt_tokens, u.completion_tokens))

    def remove_failure(self, key: str) -> None:
        with self._lock, self._write():
            self._db.execute("DELETE FROM failures WHERE key = ?", (key,))

    def attach_cache(self, cache_path: Path) -> None:
        """Make the answer cache readable beside the chunks (``answered_chunks``)."""
        with self._lock:
            self._db.execute("ATTACH DATABASE ? AS cache", (str(cache_path),))

    def answered_chunks(self) -> Iterator[tuple[int, Chunk, str, Answer | None]]:
        """(seq, chunk, query style, the answer in that style or None when never answered) in input order, each
        chunk's styles in the run's order; needs ``attach_cache``."""
        rows = self._db.execute(
            f"SELECT {_CHUNK_COLUMNS}, k.style, f.error, f.attempts, f.requests, f.prompt_tokens, "
            f"f.completion_tokens, a.{', a.'.join(_ANSWER_COLUMNS.split(', '))} FROM chunks c "
            "JOIN asks k ON k.seq = c.seq LEFT JOIN failures f ON f.key = k.key "
            "LEFT JOIN cache.answers a ON a.key = k.key ORDER BY c.seq, k.slot")
        for row in rows:
            seq, chunk = row[0], Chunk(*row[1:_CHUNK_FIELDS])
            style, f_error, f_att, f_req, f_pt, f_ct, questions, *cached = row[_CHUNK_FIELDS:]
            if f_error is not None:
                answer = Answer(chunk.id, error=f_error, usage=Usage(f_req, f_pt, f_ct), attempts=f_att,
                                transient=True)
            elif questions is not None:
                answer = answer_from_row((chunk.id, questions, *cached))
            else:
                answer = None
            yield seq, chunk, style, answer

    def chunk_rows(self) -> Iterator[tuple[int, Chunk]]:
        """(seq, chunk) of every chunk, in input order."""
        for seq, *fields in self._db.execute(f"SELECT {_CHUNK_COLUMNS} FROM chunks c ORDER BY c.seq"):
            yield seq, Chunk(*fields)

    def request_by_key(self, key: str) -> tuple[Chunk, str] | None:
        """(the first chunk, the query style) of the request whose cache key is ``key``: the batch transport's
        way back from a result line."""
        with self._lock:
            self._db.execute("CREATE INDEX IF NOT EXISTS asks_key ON asks(key)")
            row = self._db.execute(f"SELECT {_CHUNK_COLUMNS}, k.style FROM asks k JOIN chunks c ON c.seq = k.seq "
                                   "WHERE k.key = ? ORDER BY c.seq LIMIT 1", (key,)).fetchone()
        return (Chunk(*row[1:-1]), row[-1]) if row else None

    def chunk_texts(self) -> Iterator[str]:
        return (row[0] for row in self._db.execute("SELECT text FROM chunks ORDER BY seq"))

    def chunk_text(self, seq: int) -> str:
        return self._db.execute("SELECT text FROM chunks WHERE seq = ?", (seq,)).fetchone()[0]

    # ---------------------------------------------------------------- questions
    def add_question(self, chunk_seq: int, n: int, text: str, norm: str, answer: str | None = None,
                     style: str = "question") -> bool:
        """Keep a question (and its reference answer) unless its normalised text is already kept in its query
        style; True when it was kept."""
        try:
            self._db.execute("INSERT INTO questions VALUES (?,?,?,?,?,?,?)",
                             (self.questions, chunk_seq, n, text, norm, answer, style))
        except sqlite3.IntegrityError:
            return False
        self.questions += 1
        return True

    def has_question(self, norm: str, style: str = "question") -> bool:
        """Whether a question of ``style`` with this normalised text is kept already."""
        return self._db.execute("SELECT 1 FROM questions WHERE style = ? AND norm = ?", (style, norm)).fetchone() \
            is not None

    def question_norms(self, style: str | None = None) -> Iterator[str]:
        """The normalised texts in order (of one query style's questions only, when given)."""
        if style is None:
            return (row[0] for row in self._db.execute("SELECT norm FROM questions ORDER BY pos"))
        return (row[0] for row in self._db.execute("SELECT norm FROM questions WHERE style = ? ORDER BY pos",
                                                   (style,)))

    def question_styles(self) -> Iterator[str]:
        """The query style of each kept question, in order."""
        return (row[0] for row in self._db.execute("SELECT style FROM questions ORDER BY pos"))

    def question_rows(self) -> Iterator[tuple[int, int, int, str, str | None, str]]:
        """(pos, chunk seq, n, text, reference answer or None, query style) of the kept questions, in order."""
        return self._db.execute("SELECT pos, chunk_seq, n, text, answer, style FROM questions ORDER BY pos")

    # ---------------------------------------------------------------- lifetime
    def begin(self) -> None:
        self._db.execute("BEGIN")

    def commit(self) -> None:
        self._db.execute("COMMIT")

    def _write(self):
        return _Writing(self)

    def close(self, remove: bool = False) -> None:
        self._db.close()
        if remove:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Writing:
    """One transaction around a write; a full disk becomes one line naming the file."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def __enter__(self) -> None:
        self.store._db.execute("BEGIN")

    def __exit__(self, kind, err, tb) -> None:
        if kind is None:
            self.store._db.execute("COMMIT")
            return
        self.store._db.execute("ROLLBACK")
        if isinstance(err, sqlite3.OperationalError):
            raise CacheError(f"cannot write {self.store.path}: {err} (free disk space, then rerun)") from None
