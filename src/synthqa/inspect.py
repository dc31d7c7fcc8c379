"""Look at a dataset in the terminal: run summary, random pairs, search, one chunk, failures.

Plain text wrapped to the terminal width (no rich dependency). Every function returns a string; the CLI
prints. A folder whose run is still going (no manifest yet) is summarised from its cache, read-only.
"""

from __future__ import annotations

import random
import shutil
import textwrap
from pathlib import Path

from . import coverage, spares, styles
from .cache import Cache, cache_path
from .curate import describe as describe_curation
from .curate import pending
from .dataset import MANIFEST, SPLIT_NAMES, load_tables, read_manifest, resolve_dataset
from .errors import DatasetError
from .manifest import Manifest
from .pricing import PRICES_AS_OF, estimate_cost
from .text import describe as describe_cleaning


def terminal_width() -> int:
    """Usable width: the terminal's, kept between 40 and 120 columns so text stays readable."""
    return max(40, min(120, shutil.get_terminal_size((100, 24)).columns))


def inspect_dataset(target: str | Path, *, n: int = 5, seed: int = 0, split: str | None = None,
                    search: str | None = None, chunk: str | None = None, failed: bool = False,
                    width: int | None = None) -> str:
    """The whole `synthqa inspect` view of a folder or Hub id, as one string."""
    width = width or terminal_width()
    if split is not None and split not in SPLIT_NAMES:
        raise DatasetError(f"--split {split!r} does not exist: use one of {', '.join(SPLIT_NAMES)}")
    if n < 0:
        raise DatasetError(f"-n {n} is negative: use 0 or more")
    path = resolve_dataset(target)
    if not (path / MANIFEST).exists() and cache_path(path).exists():
        return progress_view(path, width)
    manifest = read_manifest(path)
    if failed:
        return failed_view(manifest, width)
    rows = pair_rows(load_tables(path))
    top_k = manifest.roundtrip.top_k
    if chunk:
        return chunk_view(rows, chunk, width, top_k)
    if search:
        hits = search_rows(rows, search, split)
        head = f"{len(hits)} pair(s) match {search!r}" + (f" in {split}" if split else "")
        return "\n".join([head, "", *(format_pair(r, width, top_k=top_k) for r in hits[: max(n, 1) * 4])])
    picked = sample_rows(rows, n, seed, split)
    parts = [summary_view(manifest, width, pending(path, manifest.curation))]
    if picked:
        parts += [_rule(f"{len(picked)} random pair(s)" + (f" from {split}" if split else ""), width),
                  *(format_pair(r, width, top_k=top_k) for r in picked)]
    return "\n".join(parts)


def pair_rows(tables: dict) -> list[dict]:
    """One dict per question: split, id, question, chunk id/text/language, source, page, ranks."""
    text_of: dict[str, str] = {}
    language_of: dict[str, str] = {}
    for df in tables["corpus"].values():
        text_of.update(zip(df["id"], df["text"]))
        language_of.update(zip(df["id"], df["language"]))
    rows = []
    for split in SPLIT_NAMES:
        for rec in tables["queries"][split].to_dict("records"):
            rows.append({"split": split, "id": rec["id"], "question": rec["text"], "chunk_id": rec["chunk_id"],
                         "chunk": text_of[rec["chunk_id"]], "language": language_of[rec["chunk_id"]],
                         "source": rec["source"], "page": rec["page"],
                         "bm25_rank": _int(rec["bm25_rank"]), "embed_rank": _int(rec["embed_rank"])})
    return rows


def sample_rows(rows: list[dict], n: int, seed: int, split: str | None = None) -> list[dict]:
    """``n`` rows drawn reproducibly for ``seed``."""
    pool = [r for r in rows if split is None or r["split"] == split]
    return random.Random(seed).sample(pool, min(n, len(pool)))


def search_rows(rows: list[dict], word: str, split: str | None = None) -> list[dict]:
    """Rows whose question or chunk contains ``word`` (case-insensitive)."""
    needle = word.casefold()
    return [r for r in rows if (split is None or r["split"] == split)
            and (needle in r["question"].casefold() or needle in r["chunk"].casefold())]


def summary_view(manifest: Manifest, width: int, decisions_pending: int = 0) -> str:
    """Run summary: documents, pages, chunks, questions per split, skips, filters, failures, tokens, cost."""
    c, opts = manifest.counts, manifest.options
    lines = [_rule("synthqa dataset", width)]
    facts = [
        ("model", manifest.model + (" (local)" if manifest.local else f" @ {manifest.endpoint_host}")),
        ("created", manifest.created_at),
        ("documents", f"{c.documents} ({c.pages} pages)"),
        ("chunks", f"{c.chunks} made, {c.chunks_asked} sent to the LLM"
                   f" (size {opts.chunk_size}, overlap {opts.chunk_overlap})"),
        ("questions", f"{c.train_pairs} train / {c.eval_pairs} eval ({c.train_chunks} / {c.eval_chunks} chunks)"),
        *((f"style {s.style}", styles.describe(s)) for s in manifest.styles),
        ("per document", coverage.describe(manifest)),
        ("languages", languages_text(manifest)),
    ]
    if (low := coverage.warning(manifest)) is not None:
        facts.append(("under-covered", low))
    rt = manifest.roundtrip
    facts.append(("round trip", f"own chunk ranked by BM25{' and ' + rt.embedder if rt.embedder else ''} among all "
                                f"chunks; ranks beyond {rt.top_k} show as >{rt.top_k}"
                                + (f"; pairs ranked below {rt.min_rank} dropped" if rt.min_rank else "")))
    facts.append(("text cleaning", describe_cleaning(manifest.cleaning)))
    if manifest.ocr_pages:
        facts.append(("OCR", f"{manifest.ocr_pages} page(s) without a text layer"))
    if c.short_chunks:
        facts.append(("short answers", f"{c.short_chunks} chunk(s) got fewer questions than asked"))
    if opts.answers:
        facts.append(("reference answers", f"with every question; {c.ungrounded_answers} ungrounded"))
    if manifest.curation is not None:
        facts.append(("curated", describe_curation(manifest.curation)))
    if decisions_pending:
        facts.append(("not curated yet", f"{decisions_pending} decision(s) in curation.jsonl: apply them with "
                                          "`synthqa curate`"))
    facts.append(("chunks skipped", _counts(manifest.skipped_chunks)))
    dropped, left_out = spares.apart(manifest.question_filters)
    facts.append(("questions dropped", _counts(dropped)))
    if manifest.options.spare_questions:
        facts.append(("spares", spares.left_out_text(manifest.options.spare_questions, left_out)))
    failed = manifest.failed_chunks
    facts.append(("failed chunks", f"{len(failed)}" + (" (see --failed)" if failed else "")))
    if manifest.skipped_files:
        facts.append(("skipped files", str(len(manifest.skipped_files))))
    if manifest.skipped_pages:
        facts.append(("pages left out", f"{len(manifest.skipped_pages)} (see --failed)"))
    facts.append(("tokens", _tokens(manifest.model, c.prompt_tokens, c.completion_tokens, c.requests)))
    label_w = max(len(k) for k, _ in facts) + 2
    for key, value in facts:
        lines.append(_field(key, value, label_w, width))
    if len(manifest.documents) > 1:
        lines += [_rule("per document: chunks asked, skipped; questions kept", width),
                  *coverage_table(manifest, width)]
    return "\n".join(lines)


def coverage_table(manifest: Manifest, width: int) -> list[str]:
    """The per-document figures as aligned columns, the document name cut to fit ``width``."""
    rows = [("document", "pages", "asked", "skipped", "kept", "share"), *coverage.table_rows(manifest)]
    widths = [max(len(r[i]) for r in rows) for i in range(1, len(rows[0]))]
    name_w = max(8, min(max(len(r[0]) for r in rows), width - sum(widths) - 2 * len(widths)))
    return ["  ".join([_cut(r[0], name_w).ljust(name_w), *(v.rjust(w) for v, w in zip(r[1:], widths))]).rstrip()
            for r in rows]


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def languages_text(manifest: Manifest) -> str:
    """Chunks and questions per language, and whether questions were checked against their chunk's."""
    text = ", ".join(f"{code} {n.chunks} chunk(s) / {n.questions} question(s)"
                     for code, n in manifest.languages.items())
    if not manifest.language_check:
        return f"{text or 'none'} (questions not checked: the prompt has no $language)"
    return text or "none"


def failed_view(manifest: Manifest, width: int) -> str:
    """Failed chunks, skipped files and pages left out, with their reasons."""
    failed = manifest.failed_chunks
    lines = [_rule(f"{len(failed)} failed chunk(s)", width)]
    for f in failed:
        lines.append(_wrap(f"{f.source} p.{f.page} [{f.chunk_id}]: {f.reason}", width, "  "))
    if failed:
        lines.append(_wrap("Rerun `synthqa generate` with --retry-failed to ask for these again.", width))
    if manifest.skipped_files:
        lines.append(_rule(f"{len(manifest.skipped_files)} skipped file(s)", width))
        lines += [_wrap(f"{s.path}: {s.reason}", width, "  ") for s in manifest.skipped_files]
    if manifest.skipped_pages:
        lines.append(_rule(f"{len(manifest.skipped_pages)} page(s) left out", width))
        lines += [_wrap(f"{s.source} p.{s.page}: {s.reason}", width, "  ") for s in manifest.skipped_pages]
    return "\n".join(lines)


def chunk_view(rows: list[dict], chunk_id: str, width: int, top_k: int | None = None) -> str:
    """One chunk's text and every question written about it."""
    mine = [r for r in rows if r["chunk_id"] == chunk_id]
    if not mine:
        raise DatasetError(f"chunk {chunk_id!r} has no questions in this dataset: copy an id from `synthqa inspect`")
    first = mine[0]
    lines = [_rule(f"chunk {chunk_id} · {first['source']} p.{first['page']} · {first['split']}", width),
             _wrap(first["chunk"], width, "  "), _rule(f"{len(mine)} question(s)", width)]
    lines += [_wrap(f"- {r['question']}{_ranks(r, top_k)}", width, "  ", "    ") for r in mine]
    return "\n".join(lines)


def format_pair(row: dict, width: int, max_chunk_chars: int = 600, top_k: int | None = None) -> str:
    """One pair as a block: question, source line, the chunk (shortened); ranks beyond ``top_k`` read ">k"."""
    chunk = row["chunk"] if len(row["chunk"]) <= max_chunk_chars else row["chunk"][:max_chunk_chars] + " …"
    return "\n".join([
        _wrap(f"Q: {row['question']}", width, "", "   "),
        _wrap(f"[{row['split']}] {row['source']} p.{row['page']} · chunk {row['chunk_id']}{_ranks(row, top_k)}",
              width, "   ", "   "),
        _wrap(" ".join(chunk.split()), width, "   │ ", "   │ "),
        "",
    ])


def progress_view(out: Path, width: int) -> str:
    """Progress of a run still going, from its cache opened read-only (never blocks the writer). A run with
    query styles asks each chunk once per style: chunks are counted once, requests beside them."""
    answered: set[str] = set()
    failed: set[str] = set()
    requests = questions = short = prompt_t = completion_t = 0
    reasons: dict[str, int] = {}
    with Cache(cache_path(out), readonly=True) as cache:
        for a in cache.answers():
            prompt_t += a.usage.prompt_tokens
            completion_t += a.usage.completion_tokens
            if a.ok:
                requests += 1
                answered.add(a.chunk_id)
                questions += len(a.questions)
                short += a.short
            else:
                failed.add(a.chunk_id)
                key = (a.error or "?").split(":")[0][:60]
                reasons[key] = reasons.get(key, 0) + 1
    chunks = str(len(answered))
    if requests > len(answered):
        chunks += f" ({requests} requests: one per chunk and query style)"
    lines = [_rule(f"run in progress in {out} (no {MANIFEST} yet)", width),
             _field("chunks answered", chunks, 19, width),
             _field("queries so far", str(questions), 19, width),
             _field("short answers", str(short), 19, width),
             _field("failed chunks", f"{len(failed)} " + _counts(reasons) if failed else "0", 19, width),
             _field("tokens", _tokens(None, prompt_t, completion_t), 19, width)]
    return "\n".join(lines)


def _tokens(model: str | None, prompt_tokens: int, completion_tokens: int, requests: int = 0) -> str:
    text = f"{prompt_tokens:,} prompt + {completion_tokens:,} completion"
    if requests:
        text += f" in {requests:,} requests"
    cost = estimate_cost(model, prompt_tokens, completion_tokens)
    if cost is not None:
        text += f" ≈ ${cost:,.4f} (approximate, list prices of {PRICES_AS_OF})"
    return text


def _counts(counts: dict[str, int]) -> str:
    counts = {k: v for k, v in counts.items() if v}  # filters that dropped nothing are noise here
    if not counts:
        return "none"
    return f"{sum(counts.values())}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def rank_text(rank: int, top_k: int | None) -> str:
    """A round-trip rank as a reader should see it: a censored one (top_k + 1) is ">top_k"."""
    return f">{top_k}" if top_k is not None and rank > top_k else str(rank)


def _ranks(row: dict, top_k: int | None = None) -> str:
    parts = [f"{name} rank {rank_text(row[key], top_k)}" for key, name in (("bm25_rank", "bm25"), ("embed_rank", "embed"))
             if row.get(key) is not None]
    return f" ({', '.join(parts)})" if parts else ""


def _int(value) -> int | None:
    try:
        return None if value is None or value != value else int(value)  # NaN != NaN
    except (TypeError, ValueError):
        return None


def _rule(title: str, width: int) -> str:
    title = f"── {title} "
    return title + "─" * max(0, width - len(title))


def _field(key: str, value: str, label_w: int, width: int) -> str:
    return _wrap(f"{key + ':':<{label_w}}{value}", width, "", " " * label_w)


def _wrap(text: str, width: int, first: str = "", rest: str | None = None) -> str:
    return textwrap.fill(text, width=width, initial_indent=first, subsequent_indent=first if rest is None else rest,
                         break_long_words=True, break_on_hyphens=False) or first.rstrip()
