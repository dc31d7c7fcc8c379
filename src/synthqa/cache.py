"""SQLite store of finished chunks, so a rerun asks nothing twice and a killed run loses nothing.

One row per (model, prompt, chunk text, questions per chunk, temperature, whether answers were asked, query
style). The
``questions`` column holds a JSON list of strings, or of ``{"question", "answer"}`` objects when reference
answers were asked (``--answers``), so caches written before answers existed stay readable. Each answer is committed the
moment it arrives; WAL mode lets ``synthqa inspect`` read while a generation writes, and SQLite's journal
makes a SIGKILL at any instant leave either the whole row or none of it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import CacheError
from .records import Answer, Usage

CACHE_DIRNAME = ".synthqa"
CACHE_FILENAME = "cache.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    chunk_id TEXT NOT NULL,
    questions TEXT NOT NULL,          -- JSON list of strings, or of {"question", "answer"} objects
    error TEXT,                       -- NULL when the chunk was answered
    short INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_chunk ON answers(chunk_id);
"""


def cache_path(out: Path) -> Path:
    """Where the cache of an output folder lives."""
    return Path(out) / CACHE_DIRNAME / CACHE_FILENAME


def answer_key(*, model: str, prompt_sha256: str, chunk_text: str, n_questions: int, temperature: float,
               language: str | None = None, answers: bool = False, style: str | None = None,
               openers: str | None = None) -> str:
    """Content key of an answer: anything that changes what the LLM would write changes the key.

    ``language`` is the chunk's language as the prompt names it (None when the prompt does not); ``style`` the
    query style (None or "question": the key of a run before styles existed, whose requests are the same);
    ``openers`` the opener hint a ``$openers`` template put into the request (None when it has none): it comes
    from code, not from the template file, so the template's hash alone would not cover it."""
    fields = [model, prompt_sha256, chunk_text, n_questions, float(temperature)]
    if language is not None:
        fields.append(language)
    if answers:  # appended only when asked, so the keys of runs without answers stay what they were
        fields.append("answers")
    if style not in (None, "question"):  # besides its own prompt's hash: answers of two styles never mix
        fields.append(f"style:{style}")
    if openers is not None:
        fields.append(f"openers:{openers}")
    payload = json.dumps(fields, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class Cache:
    """The answers store of one output folder. ``readonly`` opens it for inspection during a run."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        try:
            if readonly:
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, timeout=30)
                self._db.execute("PRAGMA journal_mode=WAL")
                # NORMAL is durable against a killed process (not against power loss), and keeps one commit per
                # answer cheap enough for hundreds of answers a second.
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
            self._db.execute("SELECT count(*) FROM answers").fetchone()
        except sqlite3.DatabaseError as err:
            raise CacheError(
                f"cache {self.path} cannot be used ({err}): move it aside to start over, or free disk space"
            ) from None
        except OSError as err:
            raise CacheError(f"cannot create the cache in {self.path.parent}: {err.strerror or err}") from None

    def get(self, key: str) -> Answer | None:
        """The stored answer for ``key``, or None."""
        found = self.get_dated(key)
        return found[0] if found else None

    def get_dated(self, key: str) -> tuple[Answer, float] | None:
        """The stored answer for ``key`` and when it was stored (``time.time()``), or None."""
        row = self._db.execute(
            "SELECT chunk_id, questions, error, short, attempts, requests, prompt_tokens, completion_tokens, "
            "created_at FROM answers WHERE key = ?",
            (key,),
        ).fetchone()
        return (answer_from_row(row[:-1]), row[-1]) if row else None

    def get_many(self, keys: list[str]) -> dict[str, Answer]:
        """Stored answers for many keys at once (one query per 500 keys)."""
        found: dict[str, Answer] = {}
        for start in range(0, len(keys), 500):
            batch = keys[start : start + 500]
            marks = ",".join("?" * len(batch))
            for key, *row in self._db.execute(
                "SELECT key, chunk_id, questions, error, short, attempts, requests, prompt_tokens, "
                f"completion_tokens FROM answers WHERE key IN ({marks})",
                batch,
            ):
                found[key] = answer_from_row(row)
        return found

    def put(self, key: str, answer: Answer) -> None:
        """Store one answer and commit at once; a later answer for the same key replaces it."""
        try:
            with self._db:
                self._db.execute(
                    "INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        key,
                        answer.chunk_id,
                        json.dumps(_stored_questions(answer), ensure_ascii=False),
                        answer.error,
                        int(answer.short),
                        answer.attempts,
                        answer.usage.requests,
                        answer.usage.prompt_tokens,
                        answer.usage.completion_tokens,
                        time.time(),
                    ),
                )
        except sqlite3.OperationalError as err:
            # A full disk rolls the transaction back: the cache stays consistent, this answer is lost only.
            raise CacheError(f"cannot write the cache {self.path}: {err} (free disk space, then rerun)") from None

    def answers(self) -> Iterator[Answer]:
        """Every stored answer, oldest first (for ``inspect`` while a run is going)."""
        rows = self._db.execute(
            "SELECT chunk_id, questions, error, short, attempts, requests, prompt_tokens, completion_tokens "
            "FROM answers ORDER BY created_at"
        )
        for row in rows:
            yield answer_from_row(row)

    def keys(self, *, answered_only: bool = False) -> Iterator[str]:
        """Every stored key (only those of answered chunks with ``answered_only``), for a cluster to skip them."""
        where = " WHERE error IS NULL" if answered_only else ""
        for (key,) in self._db.execute(f"SELECT key FROM answers{where}"):
            yield key

    def __len__(self) -> int:
        return self._db.execute("SELECT count(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _stored_questions(answer: Answer) -> list:
    if answer.answers:
        return [{"question": q, "answer": a} for q, a in zip(answer.questions, answer.answers, strict=True)]
    return list(answer.questions)


def answer_from_row(row) -> Answer:
    """An ``Answer`` from (chunk_id, questions, error, short, attempts, requests, prompt_tokens, completion_tokens)."""
    chunk_id, questions, error, short, attempts, requests, prompt_tokens, completion_tokens = row
    items = json.loads(questions)
    pairs = [item for item in items if isinstance(item, dict)]
    return Answer(
        chunk_id=chunk_id,
        questions=tuple(p["question"] for p in pairs) if pairs else tuple(items),
        answers=tuple(p["answer"] for p in pairs),
        error=error,
        usage=Usage(requests, prompt_tokens, completion_tokens),
        attempts=attempts,
        short=bool(short),
    )
