"""`synthqa generate INPUT... -o OUT`: the main job."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import DEFAULT_MODEL, RESPONSE_FORMATS, GenerateConfig
from ..errors import ConfigError
from ._options import nonneg_int, positive_float, positive_int

EXIT_PARTIAL = 4  # the dataset was written, but some chunks failed: rerun with --retry-failed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="PDFs → (question, chunk) dataset",
        description="Turn PDFs (and .txt/.md files) into a train/eval dataset of (question, chunk) pairs. "
        "With no OPENAI_API_KEY and no --base-url, the embedded local model is used (synthqa[local]).",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", type=Path, help="PDF/.txt/.md files or folders (searched recursively)")
    p.add_argument("-o", "--output", dest="out", type=Path, help="output folder (a Hugging Face dataset repo)")
    p.add_argument("--retry-failed", metavar="OUT", type=Path, help="ask again for the failed chunks of the run in OUT")
    g = p.add_argument_group("chunking and splitting")
    g.add_argument("--questions-per-chunk", type=positive_int, default=2)
    g.add_argument("--chunk-size", type=positive_int, default=1000, help="characters (default 1000)")
    g.add_argument("--chunk-overlap", type=nonneg_int, default=200, help="characters (default 200)")
    g.add_argument("--eval-fraction", type=float, default=0.15, help="share of chunks in the eval split (default 0.15)")
    g.add_argument("--seed", type=int, default=42, help="seed of the train/eval split (default 42)")
    g.add_argument("--limit", type=positive_int, help="only the first N chunks, for trying things")
    g.add_argument("--keep-all-chunks", action="store_true", help="also ask about reference lists, URL lists, tables of contents")
    g.add_argument("--min-roundtrip-rank", type=positive_int, metavar="K", help="drop pairs whose chunk is not in the top K for its question")
    g.add_argument("--no-embed-roundtrip", dest="embed_roundtrip", action="store_false", default=None,
                   help="rank questions' chunks with BM25 only, not also with the bundled MiniLM (faster)")
    g.add_argument("--pdf-password", help="password for encrypted PDFs")
    m = p.add_argument_group("LLM endpoint")
    m.add_argument("--model", default=None, help=f"model name (default {DEFAULT_MODEL}, or the local preset's)")
    m.add_argument("--base-url", help="OpenAI-compatible endpoint (default: OPENAI_BASE_URL, else api.openai.com)")
    m.add_argument("--temperature", type=float, default=0.0)
    m.add_argument("--prompt", type=Path, dest="prompt_path", help="your own prompt template file (see prompts/README.md)")
    m.add_argument("--response-format", choices=RESPONSE_FORMATS, default="auto")
    m.add_argument("--concurrency", type=positive_int, default=16, help="requests in flight (default 16)")
    m.add_argument("--rpm", type=positive_int, help="at most this many requests per minute")
    m.add_argument("--tpm", type=positive_int, help="at most this many tokens per minute")
    m.add_argument("--timeout", type=positive_float, default=120.0, help="seconds per request (default 120)")
    m.add_argument("--max-retries", type=nonneg_int, default=6, help="transport retries per request (429/5xx)")
    m.add_argument("--max-attempts", type=positive_int, default=3, help="asks per chunk when the answer does not parse")
    lo = p.add_argument_group("embedded local model")
    lo.add_argument("--local", action="store_true", help="use the embedded llama.cpp model even if a key is set")
    lo.add_argument("--local-model", metavar="PRESET_OR_GGUF", help="preset name (qwen0.5b, qwen1.5b) or a .gguf file")
    lo.add_argument("--local-threads", type=positive_int, help="llama.cpp threads (default 1: safe on a busy machine)")
    o = p.add_argument_group("run")
    o.add_argument("--dry-run", action="store_true", help="count chunks and estimate tokens and cost; send nothing")
    o.add_argument("--overwrite", action="store_true", help="replace a dataset in OUT made with other settings")
    o.add_argument("--push-to-hub", metavar="REPO_ID", help="push the dataset to this Hub dataset repo when done")
    o.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import pipeline
    from ..dataset import read_manifest

    if args.retry_failed:
        config = _config_from_manifest(args, read_manifest(args.retry_failed))
    else:
        if not args.inputs:
            raise ConfigError("no INPUT given: name PDF/.txt/.md files or folders, e.g. `synthqa generate corpora -o out`")
        if args.out is None:
            raise ConfigError("no output folder: add -o OUT")
        config = GenerateConfig(**_config_kwargs(args))

    def log(line: str) -> None:
        print(f"synthqa: {line}", file=sys.stderr)

    result = pipeline.run_generate(config, log=log, progress=not args.no_progress)
    if isinstance(result, pipeline.DryRun):
        print(format_dry_run(result))
        return 0
    print(format_summary(result.manifest))
    if result.pushed is not None:
        print(f"pushed to {result.pushed}")
    if result.failed:
        log(f"{result.failed} chunk(s) failed (listed in {config.out / 'synthqa.json'}); "
            f"ask again with: synthqa generate --retry-failed {config.out}")
        return EXIT_PARTIAL
    return 0


def _config_kwargs(args: argparse.Namespace) -> dict:
    names = (
        "inputs out questions_per_chunk chunk_size chunk_overlap eval_fraction seed concurrency base_url "
        "temperature prompt_path response_format limit dry_run max_attempts max_retries timeout rpm tpm "
        "pdf_password overwrite keep_all_chunks min_roundtrip_rank embed_roundtrip local local_model local_threads push_to_hub private"
    ).split()
    kwargs = {name: getattr(args, name) for name in names}
    kwargs["inputs"] = tuple(args.inputs)
    if args.model:
        kwargs["model"] = args.model
    return kwargs


def _config_from_manifest(args: argparse.Namespace, manifest: dict) -> GenerateConfig:
    """The config of a finished run, to ask again for its failed chunks (endpoint options may be given anew)."""
    opts = dict(manifest["options"])
    opts.pop("pdf_password_given", None)
    fields = set(GenerateConfig.__dataclass_fields__)
    kwargs = {k: v for k, v in opts.items() if k in fields}
    kwargs["out"] = args.retry_failed
    # Ask the same model as before, or the cache keys (and so the answers kept) would not match.
    if manifest.get("local"):
        kwargs["local"] = True
    else:
        kwargs["model"] = manifest.get("model")
    kwargs["retry_failed"] = True
    for name in ("base_url", "pdf_password", "local_threads"):
        if getattr(args, name):
            kwargs[name] = getattr(args, name)
    return GenerateConfig(**kwargs)


def format_summary(manifest: dict) -> str:
    """The run summary table printed at the end of a run."""
    c, t = manifest["counts"], manifest.get("timings", {})
    rows = [
        ("documents", c["documents"]),
        ("pages", c["pages"]),
        ("chunks", f"{c['chunks']} ({c['chunks_asked']} asked, {sum(manifest['skipped_chunks'].values())} skipped)"),
        ("questions kept", f"{c['questions']} of {c.get('questions_generated', c['questions'])} generated"),
        ("train / eval pairs", f"{c['train_pairs']} / {c['eval_pairs']} ({c['train_chunks']} / {c['eval_chunks']} chunks)"),
        ("failed chunks", len(manifest["failed_chunks"])),
        ("requests", f"{c['requests']} ({c.get('requests_this_run', 0)} this run)"),
        ("tokens", f"{c['prompt_tokens']} prompt + {c['completion_tokens']} completion"),
        ("time (s)", " · ".join(f"{k} {v:.1f}" for k, v in t.items())),
    ]
    for reason, n in sorted(manifest["skipped_chunks"].items()):
        if n:
            rows.append((f"  skipped: {reason}", n))
    for reason, n in sorted(manifest["question_filters"].items()):
        if n:
            rows.append((f"  dropped: {reason}", n))
    for f in manifest["failed_chunks"][:10]:
        rows.append((f"  failed: {f['source']} p{f['page']}", f["reason"]))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def format_dry_run(d) -> str:
    from ..pricing import estimate_cost

    cost = estimate_cost(d.model, d.prompt_tokens, d.completion_tokens)
    lines = [
        f"documents          {d.documents}",
        f"pages              {d.pages}",
        f"chunks             {d.chunks} ({sum(d.skipped_chunks.values())} skipped by filters)",
        f"to ask             {d.chunks_to_ask} ({d.cached} already cached)",
        f"prompt tokens      ~{d.prompt_tokens}",
        f"completion tokens  ~{d.completion_tokens}",
        f"estimated cost     {'~$%.4f' % cost if cost is not None else f'unknown for {d.model}'}",
    ]
    lines += [f"  skipped: {r}  {n}" for r, n in sorted(d.skipped_chunks.items())]
    return "\n".join(lines)
