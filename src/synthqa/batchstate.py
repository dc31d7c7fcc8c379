"""What the batches of an output folder stand at: ``OUT/.synthqa/batches.sqlite``, kept across commands.

A run that asks through batch files spans several commands (submit, poll, import), so its state lives on
disk: the batches sent and whether they ended; each request waiting for an answer (its cache key, the batch
it is in or none yet, its attempt, usage so far and the questions of a cut-off reply); the keys settled in
this cycle (answered, or failed without an answer: expired, HTTP errors) and the run's settings for
``synthqa batch import``. Answers themselves go to the answer cache the moment they are read. The cycle is
cleared once the dataset is written, so a later run asks again what failed, as a live run would.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .cache import CACHE_DIRNAME
from .errors import CacheError
from .records import Usage

STATE_FILENAME = "batches.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (id TEXT PRIMARY KEY, file TEXT NOT NULL, lines INTEGER NOT NULL,
                                    status TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, created_at REAL);
CREATE TABLE IF NOT EXISTS requests (key TEXT PRIMARY KEY, batch TEXT, attempt INTEGER NOT NULL,
                                     requests INTEGER NOT NULL DEFAULT 0, prompt_tokens INTEGER NOT NULL DEFAULT 0,
                                     completion_tokens INTEGER NOT NULL DEFAULT 0, partial TEXT);
CREATE INDEX IF NOT EXISTS requests_batch ON requests(batch);
CREATE TABLE IF NOT EXISTS settled (key TEXT PRIMARY KEY, error TEXT, attempts INTEGER, requests INTEGER,
                                    prompt_tokens INTEGER, completion_tokens INTEGER);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Batch:
    """One batch sent (or one requests file written for ``vllm run-batch``)."""

    id: str
    file: str
    lines: int
    status: str


@dataclass(frozen=True)
class Waiting:
    """A request waiting for its answer: attempt ``attempt``, the usage of the attempts before it."""

    key: str
    batch: str | None
    attempt: int
    usage: Usage
    partial: tuple


def state_path(out: Path) -> Path:
    return Path(out) / CACHE_DIRNAME / STATE_FILENAME


class BatchState:
    """The batch state of one output folder (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.executescript("PRAGMA journal_mode=WAL;" + _SCHEMA)
        except (sqlite3.Error, OSError) as err:
            raise CacheError(f"cannot use the batch state {self.path}: {err} (free disk space, or move it aside "
                             "to forget the batches it records)") from None

    # ---------------------------------------------------------------- requests
    def known(self, key: str) -> bool:
        """Whether ``key`` is waiting in a batch or was settled in this cycle (so it is not asked again)."""
        return self._db.execute("SELECT 1 FROM requests WHERE key = ? UNION ALL SELECT 1 FROM settled WHERE key = ?",
                                (key, key)).fetchone() is not None

    def add(self, keys: Iterable[str]) -> None:
        """New requests (first attempt), not in a batch yet."""
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO requests (key, batch, attempt) VALUES (?, NULL, 1)",
                                 ((k,) for k in keys))

    def unsent(self) -> Iterator[Waiting]:
        """The requests in no batch yet: new ones and re-asks."""
        rows = self._db.execute("SELECT key, batch, attempt, requests, prompt_tokens, completion_tokens, partial "
                                "FROM requests WHERE batch IS NULL ORDER BY rowid").fetchall()
        return map(_waiting, rows)

    def waiting(self, key: str) -> Waiting | None:
        row = self._db.execute("SELECT key, batch, attempt, requests, prompt_tokens, completion_tokens, partial "
                               "FROM requests WHERE key = ?", (key,)).fetchone()
        return _waiting(row) if row else None

    def in_batch(self, batch_id: str) -> list[str]:
        """Keys still waiting in batch ``batch_id``."""
        return [k for (k,) in self._db.execute("SELECT key FROM requests WHERE batch = ?", (batch_id,))]

    def count_waiting(self) -> int:
        return self._db.execute("SELECT count(*) FROM requests").fetchone()[0]

    def ask_again(self, key: str, usage: Usage, partial: tuple) -> None:
        """The reply was unusable: the next attempt goes into a follow-up batch."""
        with self._db:
            self._db.execute("UPDATE requests SET batch = NULL, attempt = attempt + 1, requests = ?, "
                             "prompt_tokens = ?, completion_tokens = ?, partial = ? WHERE key = ?",
                             (usage.requests, usage.prompt_tokens, usage.completion_tokens,
                              json.dumps(partial, ensure_ascii=False) if partial else None, key))

    def settle(self, key: str, error: str | None = None, attempts: int = 0, usage: Usage = Usage()) -> None:
        """``key`` is done for this cycle: answered (its answer is in the cache), or failed with ``error``."""
        with self._db:
            self._db.execute("DELETE FROM requests WHERE key = ?", (key,))
            self._db.execute("INSERT OR REPLACE INTO settled VALUES (?,?,?,?,?,?)",
                             (key, error, attempts, usage.requests, usage.prompt_tokens, usage.completion_tokens))

    def failures(self) -> Iterator[tuple[str, str, int, Usage]]:
        """(key, reason, attempts, usage) of the requests of this cycle that got no answer."""
        for key, error, attempts, *usage in self._db.execute(
                "SELECT key, error, attempts, requests, prompt_tokens, completion_tokens FROM settled "
                "WHERE error IS NOT NULL ORDER BY rowid"):
            yield key, error, attempts, Usage(*usage)

    # ---------------------------------------------------------------- batches
    def add_batch(self, batch: Batch, keys: list[str]) -> None:
        with self._db:
            self._db.execute("INSERT INTO batches VALUES (?,?,?,?,0,?)",
                             (batch.id, batch.file, batch.lines, batch.status, time.time()))
            self._db.executemany("UPDATE requests SET batch = ? WHERE key = ?", ((batch.id, k) for k in keys))

    def open_batches(self) -> list[Batch]:
        rows = self._db.execute("SELECT id, file, lines, status FROM batches WHERE done = 0 ORDER BY rowid")
        return [Batch(*row) for row in rows]

    def end_batch(self, batch_id: str, status: str) -> None:
        with self._db:
            self._db.execute("UPDATE batches SET status = ?, done = 1 WHERE id = ?", (status, batch_id))

    def set_status(self, batch_id: str, status: str) -> None:
        with self._db:
            self._db.execute("UPDATE batches SET status = ? WHERE id = ?", (status, batch_id))

    # ---------------------------------------------------------------- the cycle
    def clear_cycle(self) -> None:
        """Forget the settled keys and ended batches once the dataset that reports them is written."""
        with self._db:
            self._db.execute("DELETE FROM settled")
            self._db.execute("DELETE FROM batches WHERE done = 1")

    def put_setting(self, name: str, value) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (name, json.dumps(value)))

    def setting(self, name: str):
        row = self._db.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> BatchState:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _waiting(row) -> Waiting:
    key, batch, attempt, requests, prompt_tokens, completion_tokens, partial = row
    found = tuple(tuple(x) if isinstance(x, list) else x for x in json.loads(partial)) if partial else ()
    return Waiting(key, batch, attempt, Usage(requests, prompt_tokens, completion_tokens), found)
