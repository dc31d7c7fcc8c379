"""Typed options for a generation run and a fine-tuning run: one place for defaults, validated once on
construction."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from . import styles
from .errors import ConfigError
from .manifest import Options, RunSettings

DEFAULT_MODEL = "gpt-4o-mini"
RESPONSE_FORMATS = ("auto", "json_schema", "json_object", "none")
BATCH_MODES = (None, "api", "files")
# What evaluation searches (retrieval.py): every chunk of the dataset, or the split's own asked chunks.
CORPUS_CHOICES = ("all", "split")
DEFAULT_CORPUS = "all"
# Options that change the dataset itself; an OUT made with other values is not silently mixed with a new run.
DATASET_SETTINGS = (
    "questions_per_chunk", "chunk_size", "chunk_overlap", "eval_fraction", "seed", "temperature",
    "limit", "keep_all_chunks", "min_roundtrip_rank", "clean", "answers", "max_questions_per_document",
    "query_styles", "spare_questions",
)


@dataclass(frozen=True)
class GenerateConfig:
    """Everything ``synthqa generate`` needs. Invalid values raise ``ConfigError`` naming the fix."""

    inputs: tuple[Path, ...]
    out: Path
    questions_per_chunk: int = 2
    # the queries per chunk by style, "question:1,keyword:1" (styles.py); None: question:questions_per_chunk
    query_styles: str | None = None
    # queries asked per chunk and style beyond those kept; of the survivors, spares vary the openers (spares.py)
    spare_questions: int = 0
    chunk_size: int = 1000
    chunk_overlap: int = 200
    eval_fraction: float = 0.15
    seed: int = 42
    concurrency: int = 16
    model: str | None = None  # None: DEFAULT_MODEL remotely, the preset's name locally
    base_url: str | None = None
    temperature: float = 0.0
    prompt_path: Path | None = None
    response_format: str = "auto"  # auto | json_schema | json_object | none
    limit: int | None = None
    dry_run: bool = False
    # reliability
    max_attempts: int = 3  # asks per chunk when the answer does not parse (transport retries are extra)
    max_retries: int = 6  # the openai client's own retries for 429/5xx/connection errors
    timeout: float = 120.0  # seconds per request; ends hangs
    rpm: int | None = None
    tpm: int | None = None
    pdf_password: str | None = field(default=None, repr=False)
    overwrite: bool = False
    retry_failed: bool = False
    # quality
    clean: bool = True  # text.py's cleaning (NFKC, line-break hyphens, running heads); False: whitespace only
    keep_all_chunks: bool = False
    min_roundtrip_rank: int | None = None
    embed_roundtrip: bool | None = None  # None: when the eval extra (MiniLM) is installed
    answers: bool = False  # ask for a short reference answer with each question (same request)
    # coverage (coverage.py): keep at most N questions per document; flag documents keeping fewer than N
    max_questions_per_document: int | None = None
    min_questions_per_document: int | None = None
    # local backend
    local: bool = False
    local_model: str | None = None  # a preset name or a path to a GGUF file
    local_threads: int | None = None
    # reading
    workers: int | None = None  # processes reading the inputs, filtering and ranking questions; None: the cores
    # sharing
    push_to_hub: str | None = None
    private: bool = False
    # set by --retry-failed of a run that asked a remote endpoint: never fall back to the embedded model
    remote_only: bool = False
    # batch transport: "api" (generate --batch: an OpenAI-compatible Batch API), "files" (batch export/import
    # for vllm run-batch), None (live requests)
    batch: str | None = None
    wait: bool = False  # with --batch: poll until every batch has ended, instead of returning
    poll_interval: float = 30.0  # seconds between polls with --wait

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(Path(p) for p in self.inputs))
        object.__setattr__(self, "out", Path(self.out))
        if not self.inputs:
            raise ConfigError("no INPUT given: name at least one PDF/.txt/.md/.docx/.html file or a folder of them")
        _positive("--questions-per-chunk", self.questions_per_chunk, upper=20)
        self._check_styles()
        self._check_spares()
        _positive("--chunk-size", self.chunk_size)
        if self.chunk_overlap < 0:
            raise ConfigError(f"--chunk-overlap {self.chunk_overlap} is negative: use 0 or more")
        if self.chunk_overlap >= self.chunk_size:
            raise ConfigError(
                f"--chunk-overlap {self.chunk_overlap} must be smaller than --chunk-size {self.chunk_size}"
                f" (try {self.chunk_size // 5})"
            )
        if not (isinstance(self.eval_fraction, float | int) and 0 < self.eval_fraction < 1):
            raise ConfigError(f"--eval-fraction {self.eval_fraction} must lie strictly between 0 and 1 (e.g. 0.15)")
        _positive("--concurrency", self.concurrency, upper=1024)
        if not (0 <= self.temperature <= 2) or math.isnan(self.temperature):
            raise ConfigError(f"--temperature {self.temperature} must lie between 0 and 2")
        if self.limit is not None:
            _positive("--limit", self.limit)
        _positive("--max-attempts", self.max_attempts, upper=20)
        if self.max_retries < 0:
            raise ConfigError(f"--max-retries {self.max_retries} is negative: use 0 or more")
        if not self.timeout > 0:
            raise ConfigError(f"--timeout {self.timeout} must be a positive number of seconds")
        for name, value in (("--rpm", self.rpm), ("--tpm", self.tpm)):
            if value is not None:
                _positive(name, value)
        if self.min_roundtrip_rank is not None:
            _positive("--min-roundtrip-rank", self.min_roundtrip_rank)
        _check_coverage(self.max_questions_per_document, self.min_questions_per_document)
        if self.local_threads is not None:
            _positive("--local-threads", self.local_threads, upper=256)
        if self.workers is not None:
            _positive("--workers", self.workers, upper=256)
        if self.response_format not in RESPONSE_FORMATS:
            raise ConfigError(
                f"--response-format {self.response_format!r} is not known: use one of {', '.join(RESPONSE_FORMATS)}"
            )
        if self.batch not in BATCH_MODES:
            raise ConfigError(f"batch mode {self.batch!r} is not known: use one of {BATCH_MODES[1:]}")
        if self.wait and self.batch != "api":
            raise ConfigError("--wait polls the batches of --batch: add --batch, or drop --wait")
        if self.batch and (self.local or self.local_model):
            raise ConfigError("batches go to a Batch API or to files for vllm run-batch, not to the embedded model: "
                              "drop --local/--local-model")
        if not self.poll_interval > 0:
            raise ConfigError(f"--poll-interval {self.poll_interval} must be a positive number of seconds")
        if self.model is not None and not self.model.strip():
            raise ConfigError("--model is empty: name a model, e.g. gpt-4o-mini")
        if self.prompt_path is not None:
            object.__setattr__(self, "prompt_path", Path(self.prompt_path))
        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"output {self.out} is a file: choose a folder path with -o")
        blocking = next((p for p in self.out.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise ConfigError(f"output {self.out} lies under {blocking}, which is a file: choose another -o")

    def _check_styles(self) -> None:
        if self.query_styles is None:
            return
        mix = styles.parse_mix(self.query_styles)
        object.__setattr__(self, "query_styles", styles.format_mix(mix))
        if self.questions_per_chunk != GenerateConfig.questions_per_chunk:
            raise ConfigError(f"--questions-per-chunk and --query-styles both say how many queries to ask: drop "
                              f"--questions-per-chunk and write question:{self.questions_per_chunk} in --query-styles")
        if self.prompt_path is not None and styles.QUESTION not in dict(mix):
            raise ConfigError(f"--prompt replaces the prompt of the question style, which --query-styles "
                              f"{self.query_styles} does not ask for: add question:N, or drop --prompt")

    def _check_spares(self) -> None:
        most = styles.MAX_PER_STYLE - max(n for _, n in self.style_mix)
        if not (isinstance(self.spare_questions, int) and 0 <= self.spare_questions <= most):
            raise ConfigError(f"--spare-questions {self.spare_questions}: use a whole number from 0 to {most}, so a "
                              f"request asks for at most {styles.MAX_PER_STYLE} queries (2 is a good start)")

    @property
    def style_mix(self) -> tuple[tuple[str, int], ...]:
        """(style, queries per chunk) of each style this run asks for, in order."""
        if self.query_styles is None:
            return ((styles.QUESTION, self.questions_per_chunk),)
        return styles.parse_mix(self.query_styles)

    def asked_count(self, style: str = styles.QUESTION) -> int:
        """Queries one request asks for in ``style``: the style's count, plus --spare-questions."""
        return dict(self.style_mix).get(style, self.questions_per_chunk) + self.spare_questions

    def public_options(self) -> Options:
        """The options as recorded in the manifest: free of secrets and of the machine's paths."""
        opts = asdict(self)
        for key in ("pdf_password", "out", "dry_run", "overwrite", "retry_failed", "push_to_hub", "private",
                    "remote_only", "batch", "wait", "poll_interval"):
            opts.pop(key)
        opts["pdf_password_given"] = self.pdf_password is not None
        opts["inputs"] = tuple(input_name(p) for p in self.inputs)
        opts["prompt_path"] = self.prompt_path.name if self.prompt_path else None
        opts["base_url"] = public_url(self.base_url)
        return Options(**opts)

    def run_settings(self, base_url: str | None = None) -> RunSettings:
        """What a rerun needs beyond the public options; stored in OUT/.synthqa/, never uploaded.

        ``base_url`` is the endpoint really used (``--base-url`` or OPENAI_BASE_URL)."""
        return RunSettings(
            inputs=tuple(str(p.resolve()) for p in self.inputs),
            prompt_path=str(self.prompt_path.resolve()) if self.prompt_path else None,
            base_url_had_credentials=has_credentials(base_url or self.base_url),
        )


# Hard-negative mining defaults, chosen by bench/bench_hard_negatives.py (table in docs/finetune.md).
NEGATIVE_MARGIN = 0.1  # beat 0.05 (with or without skipping the 5 best) on every metric
NEGATIVE_RANGE_MIN = 0


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything ``synthqa finetune`` needs. Invalid values raise ``ConfigError`` naming the option."""

    dataset: str  # an output folder or a Hub dataset id
    output_dir: Path
    base_model: str | None = None  # a folder or Hub name; None is the bundled MiniLM
    epochs: int = 5
    batch_size: int = 20
    lr: float = 2e-5
    max_seq_length: int | None = None
    max_steps: int | None = None
    seed: int = 42
    # None: the prompt the base model declares; "" for none
    query_prompt: str | None = None
    document_prompt: str | None = None
    # what the eval questions are searched among before, during and after training (retrieval.py)
    corpus: str = DEFAULT_CORPUS
    hard_negatives: int = 0
    negative_margin: float = NEGATIVE_MARGIN
    negative_range_min: int = NEGATIVE_RANGE_MIN
    push_to_hub: str | None = None
    private: bool = False
    token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset", str(self.dataset))
        object.__setattr__(self, "output_dir", Path(self.output_dir))
        _positive("--epochs", self.epochs)
        _positive("--batch-size", self.batch_size)
        if self.batch_size < 2:
            raise ConfigError("--batch-size 1 gives the ranking loss no in-batch negatives: use 2 or more (20 is usual)")
        if not (0 < self.lr < 1):
            raise ConfigError(f"--lr {self.lr} must lie between 0 and 1 (2e-5 is usual)")
        if self.max_seq_length is not None and self.max_seq_length < 8:
            raise ConfigError(f"--max-seq-length {self.max_seq_length} is too small: use 128 or more")
        if self.max_steps is not None:
            _positive("--max-steps", self.max_steps)
        if self.corpus not in CORPUS_CHOICES:
            raise ConfigError(f"--corpus {self.corpus!r} is not known: use 'all' (every chunk) or 'split'")
        if not isinstance(self.hard_negatives, int) or not 0 <= self.hard_negatives <= 20:
            raise ConfigError(f"--hard-negatives {self.hard_negatives} must lie between 0 and 20")
        if not 0 <= self.negative_margin < 1:
            raise ConfigError(f"--negative-margin {self.negative_margin} must lie in [0, 1) (0.05 keeps negatives "
                              "scoring below 95 % of the positive)")
        if not isinstance(self.negative_range_min, int) or self.negative_range_min < 0:
            raise ConfigError(f"--negative-range-min {self.negative_range_min} must be 0 or more")


def input_name(path: Path) -> str:
    """How an INPUT is named in public records: its own name, never the folders above it."""
    return Path(path).resolve().name or str(path)


def has_credentials(url: str | None) -> bool:
    """True when ``url`` carries a user, password, query or fragment (where keys sometimes travel)."""
    if not url:
        return False
    parts = urlsplit(url)
    return bool(parts.username or parts.password or parts.query or parts.fragment)


def public_url(url: str | None) -> str | None:
    """``url`` without user:password, query or fragment, where keys sometimes travel; safe to publish."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _check_coverage(most: int | None, least: int | None) -> None:
    for name, value in (("--max-questions-per-document", most), ("--min-questions-per-document", least)):
        if value is not None:
            _positive(name, value)
    if most is not None and least is not None and least > most:
        raise ConfigError(f"--min-questions-per-document {least} is above --max-questions-per-document {most}: "
                          "every document would be flagged; lower the minimum or raise the cap")


def _positive(name: str, value: int, upper: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} {value!r} must be a whole number of at least 1")
    if upper is not None and value > upper:
        raise ConfigError(f"{name} {value} is too large: use at most {upper}")
