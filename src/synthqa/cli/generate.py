"""`synthqa generate INPUT... -o OUT`: the main job."""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

from tqdm.auto import tqdm

from .. import coverage, spares, styles
from ..config import DEFAULT_MODEL, RESPONSE_FORMATS, GenerateConfig
from ..curate import describe as describe_curation
from ..errors import ConfigError
from ..manifest import Manifest
from ..text import describe as describe_cleaning
from ._options import nonneg_int, positive_float, positive_int

EXIT_PARTIAL = 4  # the dataset was written, but some chunks failed: rerun with --retry-failed


def _default(name: str):
    """GenerateConfig's default for a field: the one source of defaults, shown in --help."""
    return GenerateConfig.__dataclass_fields__[name].default


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="PDFs → (question, chunk) dataset",
        description="Turn PDFs (and .txt, .md, .docx, .html files) into a train/eval dataset of (question, chunk) "
        "pairs. With no OPENAI_API_KEY and no --base-url, the embedded local model is used (synthqa[local]).",
        # Options not given stay absent (no `default=` below): GenerateConfig holds the defaults, and
        # --retry-failed takes the recorded run's options except those the user gives anew.
        argument_default=argparse.SUPPRESS,
    )
    add_options(p)
    p.add_argument("--retry-failed", metavar="OUT", type=Path, help="ask again for the failed chunks of the run in OUT")
    b = p.add_argument_group("batch API (half price on OpenAI; see the README)")
    b.add_argument("--batch", action="store_const", const="api", help="send the requests as batches "
                   "(files.create + batches.create, 24h window) and return; rerun the same command to poll, "
                   "and the dataset is written once every batch has ended")
    b.add_argument("--wait", action="store_true", help="with --batch: poll until every batch has ended, with a bar")
    b.add_argument("--poll-interval", type=positive_float, metavar="SECONDS",
                   help=f"with --wait: seconds between polls (default {_default('poll_interval'):g})")
    p.set_defaults(func=run)


def add_options(p: argparse.ArgumentParser) -> None:
    """INPUT..., -o OUT and every option of a run (``generate``, ``batch export``)."""
    d = _default
    p.add_argument("inputs", nargs="*", metavar="INPUT", type=Path, help="PDF/.txt/.md/.docx/.html files or folders (searched recursively)")
    p.add_argument("-o", "--output", dest="out", type=Path, help="output folder (a Hugging Face dataset repo)")
    g = p.add_argument_group("chunking and splitting")
    g.add_argument("--questions-per-chunk", type=positive_int, help=f"questions asked per chunk (default {d('questions_per_chunk')})")
    g.add_argument("--query-styles", metavar="MIX", help="queries per chunk by style, e.g. question:1,keyword:1 "
                   f"(styles: {', '.join(f'{k}: {v}' for k, v in styles.DESCRIPTIONS.items())}); one request per "
                   "chunk and style; replaces --questions-per-chunk (default: question:N of --questions-per-chunk)")
    g.add_argument("--spare-questions", type=nonneg_int, metavar="M",
                   help="ask each request for M queries more than it keeps: spares stand in for queries the filters "
                   "drop, and are chosen so that no opener (\"What are\") tends to hold over a fifth of the kept "
                   "queries "
                   f"(default {d('spare_questions')}; 2 suits a small model)")
    g.add_argument("--chunk-size", type=positive_int, help=f"characters (default {d('chunk_size')})")
    g.add_argument("--chunk-overlap", type=nonneg_int, help=f"characters (default {d('chunk_overlap')})")
    g.add_argument("--eval-fraction", type=float, help=f"share of chunks in the eval split (default {d('eval_fraction')})")
    g.add_argument("--seed", type=int, help=f"seed of the train/eval split (default {d('seed')})")
    g.add_argument("--limit", type=positive_int, help="only the first N chunks worth asking, for trying things "
                   "(reading stops there: counts cover what was read)")
    g.add_argument("--no-clean", dest="clean", action="store_false",
                   help="keep the extracted text as it is (whitespace tidied only): no NFKC, no mending of line-break "
                   "hyphens, running heads and page numbers kept")
    g.add_argument("--keep-all-chunks", action="store_true", help="also ask about reference lists, URL lists, tables of contents")
    g.add_argument("--max-questions-per-document", type=positive_int, metavar="N",
                   help="keep at most N questions per document, chosen by --seed spreading over its chunks, so a "
                   "long document cannot swamp a short one (default: no cap)")
    g.add_argument("--min-questions-per-document", type=positive_int, metavar="N",
                   help="flag documents keeping fewer than N questions in the summary, inspect, report and card "
                   "(drops nothing)")
    g.add_argument("--min-roundtrip-rank", type=positive_int, metavar="K", help="drop pairs whose chunk is not in the top K for its question")
    g.add_argument("--no-embed-roundtrip", dest="embed_roundtrip", action="store_false",
                   help="rank questions' chunks with BM25 only, not also with the bundled MiniLM (faster)")
    g.add_argument("--answers", action="store_true", help="also ask for a short reference answer to each question "
                   "(same request; stored in the queries' answer column; needed by `synthqa export --format ragas`)")
    g.add_argument("--pdf-password", help="password for encrypted PDFs")
    g.add_argument("--workers", type=positive_int, help="processes reading the inputs, then filtering and ranking "
                   "the questions (default: the cores); the dataset does not depend on it")
    m = p.add_argument_group("LLM endpoint")
    m.add_argument("--model", help=f"model name (default {DEFAULT_MODEL}, or the local preset's)")
    m.add_argument("--base-url", help="OpenAI-compatible endpoint (default: OPENAI_BASE_URL, else api.openai.com)")
    m.add_argument("--temperature", type=float, help=f"sampling temperature (default {d('temperature')})")
    m.add_argument("--prompt", type=Path, dest="prompt_path", help="your own prompt template file (see prompts/README.md)")
    m.add_argument("--response-format", choices=RESPONSE_FORMATS, help=f"structured output (default {d('response_format')})")
    m.add_argument("--concurrency", type=positive_int, help=f"requests in flight (default {d('concurrency')})")
    m.add_argument("--rpm", type=positive_int, help="at most this many requests per minute")
    m.add_argument("--tpm", type=positive_int, help="at most this many tokens per minute")
    m.add_argument("--timeout", type=positive_float, help=f"seconds per request (default {d('timeout'):g})")
    m.add_argument("--max-retries", type=nonneg_int, help=f"transport retries per request, 429/5xx (default {d('max_retries')})")
    m.add_argument("--max-attempts", type=positive_int, help=f"asks per chunk when the answer does not parse (default {d('max_attempts')})")
    lo = p.add_argument_group("embedded local model")
    lo.add_argument("--local", action="store_true", help="use the embedded llama.cpp model even if a key is set")
    lo.add_argument("--local-model", metavar="PRESET_OR_GGUF", help="preset name (qwen0.5b, qwen1.5b) or a .gguf file")
    lo.add_argument("--local-threads", type=positive_int, help="llama.cpp threads (default 1: safe on a busy machine)")
    r = p.add_argument_group("on a Ray cluster (pip install 'synthqa[ray]')")
    r.add_argument("--ray", action="store_true", help="read, chunk and ask on Ray (a new local instance, or the "
                   "cluster RAY_ADDRESS names); the dataset is the one a run without --ray writes")
    r.add_argument("--ray-address", metavar="ADDRESS", help="join this Ray cluster (implies --ray): auto, or "
                   "ray://HEAD:10001")
    r.add_argument("--ray-tasks", type=positive_int, metavar="N", help="ask tasks at once, each with --concurrency "
                   "requests in flight (default: the cluster's CPUs)")
    o = p.add_argument_group("run")
    o.add_argument("--dry-run", action="store_true", help="count chunks and estimate tokens and cost; send nothing")
    o.add_argument("--overwrite", action="store_true", help="replace a dataset in OUT made with other settings")
    o.add_argument("--push-to-hub", metavar="REPO_ID", help="push the dataset to this Hub dataset repo when done")
    o.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from .. import pipeline

    given = given_options(args)
    retry = getattr(args, "retry_failed", None)
    config = pipeline.config_for_retry(retry, given) if retry else new_config(given, "generate")
    progress = not getattr(args, "no_progress", False)
    address = getattr(args, "ray_address", None)
    on_ray = getattr(args, "ray", False) or address
    if getattr(args, "ray_tasks", None) and not on_ray:
        raise ConfigError("--ray-tasks is for runs on Ray: add --ray (or --ray-address ADDRESS)")
    if on_ray and config.batch:
        raise ConfigError("--ray and --batch are two ways of asking the model: choose one")
    if on_ray:
        from ..ray import generate_on_ray

        result = generate_on_ray(config, address=address, ask_tasks=getattr(args, "ray_tasks", None), log=log,
                                 progress=progress)
    else:
        result = pipeline.run_generate(config, log=log, progress=progress)
    return show(result, config)


def given_options(args: argparse.Namespace) -> dict:
    """The GenerateConfig fields given on the command line (the others keep their defaults)."""
    given = {name: value for name, value in vars(args).items() if name in CONFIG_FIELDS}
    if "inputs" in given:
        given["inputs"] = tuple(given["inputs"]) or None
    return {name: value for name, value in given.items() if value is not None}


def new_config(given: dict, command: str) -> GenerateConfig:
    if not given.get("inputs"):
        raise ConfigError(f"no INPUT given: name PDF/.txt/.md/.docx/.html files or folders, e.g. `synthqa {command} "
                          "corpora -o out`")
    if "out" not in given:
        raise ConfigError("no output folder: add -o OUT")
    return GenerateConfig(**given)


def log(line: str) -> None:
    # through tqdm, so a line printed while progress bars are drawn does not break them
    tqdm.write(f"synthqa: {line}", file=sys.stderr)


def show(result, config: GenerateConfig) -> int:
    """Print what a run gave (a dry run, batches still open, or the summary); the exit code."""
    from .. import pipeline
    from ..pipeline.batching import describe

    if isinstance(result, pipeline.DryRun):
        print(format_dry_run(result))
        return 0
    if isinstance(result, pipeline.BatchPending):
        print(describe(result))
        return 0
    print(format_summary(result.manifest))
    if result.pushed is not None:
        print(f"pushed to {result.pushed.url}")
    if result.failed:
        again = f"synthqa generate --retry-failed {shlex.quote(str(config.out))}"
        if config.batch == "files":  # no Batch API to send them to: a live vLLM server takes them
            again += " --base-url URL_OF_YOUR_VLLM_SERVER --model " + shlex.quote(result.manifest.model)
        elif config.batch:
            again += " --batch"
        log(f"{result.failed} chunk(s) failed (listed in {config.out / 'synthqa.json'}); ask again with: {again}")
        return EXIT_PARTIAL
    return 0


CONFIG_FIELDS = frozenset(GenerateConfig.__dataclass_fields__)


def format_summary(manifest: Manifest) -> str:
    """The run summary table printed at the end of a run."""
    from ..inspect import languages_text

    c, t = manifest.counts, manifest.timings
    rows = [
        ("documents", c.documents),
        ("pages", c.pages),
        ("chunks", f"{c.chunks} ({c.chunks_asked} asked, {sum(manifest.skipped_chunks.values())} skipped)"),
        ("questions kept", f"{c.questions} of {c.questions_generated} generated"),
        *((f"  style {s.style}", styles.describe(s)) for s in manifest.styles),
        ("train / eval pairs", f"{c.train_pairs} / {c.eval_pairs} ({c.train_chunks} / {c.eval_chunks} chunks)"),
        ("per document", coverage.describe(manifest)),
        ("languages", languages_text(manifest)),
        ("failed chunks", len(manifest.failed_chunks)),
    ]
    if manifest.options.answers:
        rows.append(("reference answers", f"{c.questions} ({c.ungrounded_answers} ungrounded: most of their words "
                                          "are not in the chunk; `synthqa review` flags them)"))
    if manifest.curation is not None:
        rows.append(("curated", describe_curation(manifest.curation)))
    rows += [
        ("requests", f"{c.requests} ({c.requests_this_run} this run)"),
        ("tokens", f"{c.prompt_tokens} prompt + {c.completion_tokens} completion"),
    ]
    rows.append(("text cleaning", describe_cleaning(manifest.cleaning)))
    if manifest.ocr_pages:
        seconds = sum(d.ocr_seconds for d in manifest.documents)
        rows.append(("OCR", f"{manifest.ocr_pages} page(s) without a text layer read in {seconds:.1f} s"))
    if t is not None:
        rows.append(("time (s)", " · ".join(f"{k} {v:.1f}" for k, v in asdict(t).items())))
    if c.train_pairs and not c.eval_pairs:
        why = (f"no question about its {c.eval_chunks} chunk(s) passed the filters below" if c.eval_chunks else
               "its few chunks all share overlap text, which cannot be split without leaking; add text or documents")
        rows.append(("  warning", f"the eval split is empty, so the dataset has none (load_dataset gives train "
                                  f"only): {why}"))
    if not c.questions:
        rows.append(("  warning", "no question was kept: the dataset has only its corpus config"))
    if (low := coverage.warning(manifest)) is not None:
        rows.append(("  warning", low))
    if len(manifest.documents) > 1:  # the figures behind "one long document swamps a short one"
        for d in sorted(manifest.documents, key=lambda d: -d.questions)[:10]:
            rows.append((f"  {d.source}", f"{d.questions} questions ({coverage.share(d, c.questions):.0f} %) from "
                                          f"{d.chunks_asked} chunks asked" + (f", {d.questions_capped} capped"
                                                                              if d.questions_capped else "")))
    for reason, n in sorted(manifest.skipped_chunks.items()):
        if n:
            rows.append((f"  skipped: {reason}", n))
    dropped, left_out = spares.apart(manifest.question_filters)
    for reason, n in sorted(dropped.items()):
        if n:
            rows.append((f"  dropped: {reason}", n))
    if manifest.options.spare_questions:
        rows.append(("  spares", spares.left_out_text(manifest.options.spare_questions, left_out)))
    for page in manifest.skipped_pages[:10]:
        rows.append((f"  page left out: {page.source} p{page.page}", page.reason))
    for f in manifest.failed_chunks[:10]:
        rows.append((f"  failed: {f.source} p{f.page}", f.reason))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def format_dry_run(d) -> str:
    from ..pricing import estimate_cost

    cost = estimate_cost(d.model, d.prompt_tokens, d.completion_tokens)
    lines = [
        f"documents          {d.documents}",
        f"pages              {d.pages}",
        f"chunks             {d.chunks} ({sum(d.skipped_chunks.values())} skipped by filters)",
        f"to ask             {d.chunks_to_ask} ({d.cached} already cached)" if d.styles == 1 else
        f"to ask             {d.chunks_to_ask} requests, one per chunk and style ({d.cached} already cached)",
        f"prompt tokens      ~{d.prompt_tokens}",
        f"completion tokens  ~{d.completion_tokens}",
        f"estimated cost     {'~$%.4f' % cost if cost is not None else f'unknown for {d.model}'}",
    ]
    lines += [f"  skipped: {r}  {n}" for r, n in sorted(d.skipped_chunks.items())]
    return "\n".join(lines)
