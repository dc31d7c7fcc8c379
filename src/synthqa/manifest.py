"""The run manifest (``OUT/synthqa.json``): one typed definition, read by every renderer.

The summary, ``inspect``, the HTML report and the dataset card all read a ``Manifest``, never the raw JSON,
so none of them guesses a missing field. ``SCHEMA_VERSION`` changes whenever a field is added, removed or
changes meaning; a manifest of another version is refused with the command that rewrites it (every answer
is cached by chunk text, so rewriting asks again only where the text changed).

Nothing here may identify the user's machine: paths are relative to the input folders, URLs carry no
credentials. What a rerun needs beyond that (absolute input paths, the prompt file) lives in
``RunSettings``, stored in ``OUT/.synthqa/``, which is never uploaded.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields

from .errors import DatasetError
from .text import Cleaning

# 1: synthqa 0.1.0 (no schema_version field); 2: typed manifest, public paths, skipped pages, extra counts;
# 3: text cleaning and OCR per document, options.clean; languages (per-language counts, whether questions were
#    checked against their chunk's language); reference answers (options.answers, counts.ungrounded_answers)
#    and a person's curation; censored round-trip ranks (roundtrip.top_k), --workers, a timing per stage.
# 4: coverage per document (chunks asked and skipped, questions kept and capped), --max/--min-questions-per-
#    document; the corpus config holds every chunk, skipped ones with their skip_reason.
# 5: query styles (options.query_styles; per-style counts in ``styles``; a style column in queries).
# 6: --spare-questions (options.spare_questions; the queries not kept counted as the "spare" filter).
SCHEMA_VERSION = 6


@dataclass(frozen=True)
class Options:
    """The generate options that made the dataset; no secrets, no local paths."""

    inputs: tuple[str, ...]  # the INPUT names (a folder's or file's own name), not where they are
    questions_per_chunk: int
    query_styles: str | None  # "question:1,keyword:1" (--query-styles); None: questions only, as before styles
    spare_questions: int  # asked per chunk and style beyond those kept (spares.py)
    chunk_size: int
    chunk_overlap: int
    eval_fraction: float
    seed: int
    concurrency: int
    model: str | None
    base_url: str | None  # without user:password, query or fragment
    temperature: float
    prompt_path: str | None  # the template's file name only
    response_format: str
    limit: int | None
    max_attempts: int
    max_retries: int
    timeout: float
    rpm: int | None
    tpm: int | None
    pdf_password_given: bool
    clean: bool  # False: --no-clean, the text only had its whitespace tidied
    keep_all_chunks: bool
    min_roundtrip_rank: int | None
    embed_roundtrip: bool | None
    answers: bool
    local: bool
    local_model: str | None
    local_threads: int | None
    workers: int | None  # processes reading the inputs and judging and ranking questions; None: the cores of the
    # machine that ran it
    max_questions_per_document: int | None  # cap on the questions kept per document (seeded choice)
    min_questions_per_document: int | None  # documents keeping fewer are flagged as under-covered


@dataclass(frozen=True)
class PromptInfo:
    """The prompt template as sent: its name, both parts, and the sha256 of the file."""

    name: str
    system: str
    user: str
    sha256: str


@dataclass(frozen=True)
class Counts:
    """How much of everything; each count is exact, never estimated."""

    documents: int
    pages: int
    chunks: int  # every chunk made from the pages
    chunks_asked: int  # worth asking and within --limit
    questions: int  # kept in the dataset
    questions_generated: int  # before the question filters
    train_pairs: int
    eval_pairs: int
    train_chunks: int
    eval_chunks: int
    short_chunks: int  # answered with fewer questions than asked
    questions_with_extra_relevant: int  # questions whose extra_relevant_ids is not empty
    ungrounded_answers: int  # reference answers whose content words mostly do not occur in their chunk
    avg_question_chars: float
    avg_chunk_chars: float
    requests: int  # every request ever made for these answers, cached ones included
    requests_this_run: int
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Document:
    source: str  # relative to its input folder
    pages: int  # pages with text (after cleaning)
    cleaning: Cleaning | None  # what text cleaning changed; None with --no-clean
    ocr_pages: int  # pages whose text was read by OCR
    ocr_seconds: float
    chunks_asked: int  # chunks sent to the LLM (within --limit)
    chunks_skipped: int  # chunks the chunk filters skipped (in the corpus, never asked)
    questions: int  # questions kept in the dataset (after a person's decisions)
    questions_capped: int  # questions --max-questions-per-document dropped


@dataclass(frozen=True)
class StyleCount:
    """One query style of a --query-styles run: its prompt, and what was asked, kept and dropped."""

    style: str  # question | keyword | situation
    per_chunk: int  # queries kept per chunk (asked for: this and options.spare_questions)
    prompt: str  # the template's name
    prompt_sha256: str
    chunks_answered: int  # chunks whose request in this style was answered
    generated: int  # queries before the filters
    kept: int  # in the dataset
    train_pairs: int
    eval_pairs: int
    dropped: dict[str, int]  # question filter → queries of this style it dropped (only filters that dropped any)


@dataclass(frozen=True)
class SkippedFile:
    path: str  # relative to its input folder (a file INPUT: its name)
    reason: str


@dataclass(frozen=True)
class SkippedPage:
    source: str
    page: int
    reason: str


@dataclass(frozen=True)
class FailedChunk:
    chunk_id: str
    source: str
    page: int
    reason: str
    transient: bool  # a transport failure (timeout, 5xx, 429 …): a plain rerun asks it again


@dataclass(frozen=True)
class RoundTrip:
    bm25: bool
    embedder: str | None
    min_rank: int | None
    top_k: int  # ranks beyond are censored: recorded as top_k + 1, read "> top_k"


@dataclass(frozen=True)
class SplitInfo:
    method: str
    seed: int
    eval_fraction: float


@dataclass(frozen=True)
class LanguageCount:
    """What the dataset holds in one language."""

    chunks: int  # chunks asked about whose text is in this language
    questions: int  # questions kept for them


@dataclass(frozen=True)
class RefusedEdit:
    id: str  # query id
    reason: str  # the question filter the edited text failed; the generated question was kept


@dataclass(frozen=True)
class Curation:
    """What a person decided (``synthqa review`` → ``OUT/curation.jsonl``) and what of it was applied."""

    decisions: int  # lines of curation.jsonl read; lines added later are decisions not applied yet
    pairs_before: int  # pairs the filters kept, before the person's decisions
    accepted: int  # kept as generated
    rejected: int  # left out of the dataset
    edited: int  # question replaced by the person's text
    missing: tuple[str, ...]  # query ids decided on that this dataset no longer has (kept in the file)
    outdated: tuple[str, ...]  # query ids whose question was regenerated after the decision: not applied
    refused_edits: tuple[RefusedEdit, ...]


@dataclass(frozen=True)
class Timings:
    """Seconds per stage. Pages are counted first; reading streams into asking, so the two overlap; the
    stages after asking run one after another."""

    count: float  # counting pages (the progress bars' totals)
    read: float  # parsing, splitting and chunk filters
    ask: float
    filter: float  # question filters and exact duplicates
    near_duplicates: float
    roundtrip: float
    split: float  # train/eval assignment
    write: float  # parquet files, card


@dataclass(frozen=True)
class Manifest:
    """Everything a reader needs to know about a dataset folder and the run that made it."""

    synthqa_version: str
    created_at: str
    options: Options
    model: str
    endpoint_host: str
    local: bool
    prompt: PromptInfo
    counts: Counts
    documents: tuple[Document, ...]
    skipped_files: tuple[SkippedFile, ...]
    skipped_pages: tuple[SkippedPage, ...]
    skipped_chunks: dict[str, int]  # chunk filter → chunks skipped before any request
    question_filters: dict[str, int]  # question filter → questions dropped
    failed_chunks: tuple[FailedChunk, ...]
    roundtrip: RoundTrip
    split: SplitInfo
    # ISO 639-1 code of the chunks' language ("und": undetermined) → counts, most chunks first
    languages: dict[str, LanguageCount]
    language_check: bool  # questions were checked against their chunk's language (the prompt names $language)
    styles: tuple[StyleCount, ...] = ()  # per query style, in the mix's order; empty without --query-styles
    data_files: dict[str, dict[str, str]] = field(default_factory=dict)  # config → split → parquet path
    timings: Timings | None = None  # None until the run has finished writing
    repo_id: str | None = None  # the Hub dataset it was last pushed to
    curation: Curation | None = None  # None until a person's decisions exist (OUT/curation.jsonl)
    schema_version: int = SCHEMA_VERSION

    @property
    def pairs(self) -> int:
        return self.counts.train_pairs + self.counts.eval_pairs

    @property
    def cleaning(self) -> Cleaning | None:
        """What text cleaning changed over all documents; None when the run used --no-clean."""
        if not self.options.clean:
            return None
        return sum((d.cleaning for d in self.documents if d.cleaning is not None), Cleaning())

    @property
    def ocr_pages(self) -> int:
        return sum(d.ocr_pages for d in self.documents)

    def to_dict(self) -> dict:
        """JSON-ready dict, the form written to ``synthqa.json``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "synthqa.json") -> Manifest:
        """Read a manifest dict; ``DatasetError`` naming ``where`` and the fix when it is not this version."""
        if not isinstance(data, dict):
            raise DatasetError(f"{where} is not a JSON object: rerun `synthqa generate` to rewrite it")
        version = data.get("schema_version", 1)
        if version != SCHEMA_VERSION:
            newer = isinstance(version, int) and version > SCHEMA_VERSION
            fix = ("upgrade synthqa to read it" if newer else
                   "rerun the same `synthqa generate` command with --overwrite to rewrite it (the cached answers "
                   "of chunks whose text is unchanged are reused)")
            raise DatasetError(f"{where} has manifest schema {version}, this synthqa reads schema {SCHEMA_VERSION}: {fix}")
        return _build(cls, data, where)


@dataclass(frozen=True)
class RunSettings:
    """What a rerun or ``--retry-failed`` needs and the public manifest must not hold (``OUT/.synthqa/run.json``)."""

    inputs: tuple[str, ...]  # absolute paths of the INPUTs
    prompt_path: str | None  # absolute path of a --prompt file
    base_url_had_credentials: bool  # the given --base-url carried a user, password or query

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "run.json") -> RunSettings:
        return _build(cls, data, where)


def _build(cls, data, where: str):
    """Instantiate dataclass ``cls`` from ``data``, converting nested dataclasses, tuples and optionals."""
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: expected an object for {cls.__name__}: rerun `synthqa generate` to rewrite it")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise DatasetError(f"{where}: unknown field {unknown[0]!r} in {cls.__name__}: it was written by another "
                           "synthqa version; rerun `synthqa generate` to rewrite it")
    kwargs = {}
    for f in fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise DatasetError(f"{where}: {cls.__name__} lacks {f.name!r}: rerun `synthqa generate` to rewrite it")
            continue
        kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{where}: {cls.__name__}.{f.name}")
    return cls(**kwargs)


def _convert(hint, value, where: str):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, where)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is tuple:
        _expect(value, list, where)
        return tuple(_convert(args[0], v, where) for v in value)
    if origin is dict:
        _expect(value, dict, where)
        return {k: _convert(args[1], v, where) for k, v in value.items()}
    if hint is float:
        _expect(value, (int, float), where)
        return float(value)
    _expect(value, hint, where)
    return value


def _expect(value, kind, where: str) -> None:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int, float))):
        raise DatasetError(f"{where} has a value of the wrong type ({value!r}): rerun `synthqa generate` to rewrite it")
