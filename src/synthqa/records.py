"""Small frozen records that flow between the stages.

Each stage takes records of the previous one and returns new ones; nothing is mutated in place, so a
stage can be tested on hand-made records and the pipeline can be re-run from any point.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Page:
    """One page of text. ``source`` is the path relative to the input root, ``page`` is 1-based."""

    source: str
    page: int
    text: str


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """An input file that yielded no pages, and why (one line a user can act on).

    ``path`` is the file as the user can find it (for messages on their terminal); ``source`` is the same
    file relative to its input folder, the only form that goes into the dataset's public records.
    """

    path: str
    reason: str
    source: str


@dataclass(frozen=True, slots=True)
class SkippedPage:
    """A page of a readable document whose text could not be extracted."""

    source: str
    page: int
    reason: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of one page. ``id`` is stable: derived from source, page, position and text."""

    id: str
    source: str
    page: int
    index: int  # position of the chunk within its page, 0-based
    text: str
    # The section of its page the chunk lies in (0-based): sections share no text, so they are the units
    # of the train/eval split (see chunks.py).
    section: int = 0
    language: str | None = None  # ISO 639-1 code, "und" when undetermined; None until detected


@dataclass(frozen=True, slots=True)
class SkippedChunk:
    """A chunk not sent to the LLM (reference list, URLs, table of contents, too short …); it stays in the
    corpus, so retrieval is measured against every chunk."""

    chunk: Chunk
    reason: str
    asked_before: int  # chunks worth asking that came before it in the input (where it sits among them)


@dataclass(frozen=True, slots=True)
class Usage:
    """What one or more requests cost."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.requests + other.requests,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """The outcome for one chunk: its questions, or the reason it failed. Never silently empty."""

    chunk_id: str
    questions: tuple[str, ...] = ()
    error: str | None = None  # set iff the chunk failed after every attempt
    usage: Usage = field(default_factory=Usage)
    attempts: int = 0
    short: bool = False  # fewer questions than asked for came back (kept, and counted)
    # The request never got an answer from the model (timeout, 5xx, 429, dropped connection): worth asking
    # again on a plain rerun, so it is not stored in the cache. False for answers the model gave.
    transient: bool = False
    answers: tuple[str, ...] = ()  # with --answers: the reference answer of each question, in order

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class Query:
    """One question in the final dataset, with its split and provenance."""

    id: str
    text: str
    chunk_id: str
    split: str  # "train" | "eval"
