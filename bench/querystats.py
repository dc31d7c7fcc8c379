"""Shared pieces of the dataset-quality benches (bench_quality, bench_presets, bench_queries).

Generate a dataset with the CLI, fine-tune the bundled MiniLM on it and score it on one common eval split,
and summarise what a dataset's queries look like: each filter's drop rate (from the manifest), the opener
distribution, round-trip ranks (from the queries table), prompt-domain words a query has but its chunk
lacks, and a seeded sample of queries with their chunks for a person to read.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from synthqa import spares

REPO = Path(__file__).resolve().parents[1]


def sample_pdfs(corpora: Path, every: int, dest: Path) -> Path:
    """Write every ``every``-th page (the every-th, 2·every-th, …) of each PDF under ``corpora`` to ``dest``.

    A real PDF sample, so the bench runs the whole pipeline (reading, cleaning, chunking) on fewer pages;
    every input document is represented (a document shorter than ``every`` pages gives its last page).
    """
    from pypdf import PdfReader, PdfWriter

    dest.mkdir(parents=True, exist_ok=True)
    pdfs = sorted(corpora.rglob("*.pdf")) if corpora.is_dir() else [corpora] if corpora.is_file() else []
    if not pdfs:
        raise SystemExit(f"--corpora {corpora}: no PDF file there; point it at a PDF or a folder of PDFs")
    for pdf in pdfs:
        reader = PdfReader(pdf)
        pages = list(range(every - 1, len(reader.pages), every)) or [len(reader.pages) - 1]
        writer = PdfWriter()
        for index in pages:
            writer.add_page(reader.pages[index])
        with open(dest / pdf.name, "wb") as fh:
            writer.write(fh)
        print(f"sample: {pdf.name}: pages {', '.join(str(i + 1) for i in pages)} of {len(reader.pages)}")
    return dest


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, printed beside every timing."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


# ------------------------------------------------------------------------------------ generate, fine-tune
def generate(out: Path, inputs: Path, extra: list[str], *, base_url: str | None = None, model: str | None = None,
             limit: int | None = None, local_threads: int | None = None, seed_from: Path | None = None) -> float:
    """Run ``synthqa generate`` as a user would, into ``out``; return its wall time in seconds.

    A rerun into the same ``out`` reuses every cached answer (``--overwrite`` keeps the cache), so a bench
    that stopped half way, or one rerun with other split settings, asks nothing again."""
    if seed_from is not None and (seed_from / ".synthqa" / "cache.sqlite").exists() and not (out / ".synthqa").exists():
        # Answers are keyed by content: a variant reuses every answer an earlier variant already paid for.
        (out / ".synthqa").mkdir(parents=True, exist_ok=True)
        shutil.copy2(seed_from / ".synthqa" / "cache.sqlite", out / ".synthqa" / "cache.sqlite")
    cmd = [sys.executable, "-m", "synthqa", "generate", str(inputs), "-o", str(out), "--no-progress",
           "--overwrite", *extra]
    if base_url:
        cmd += ["--base-url", base_url]
    if model:
        cmd += ["--model", model]
    if limit:
        cmd += ["--limit", str(limit)]
    if local_threads:
        cmd += ["--local-threads", str(local_threads)]
    print("$", " ".join(cmd), f"  ({load_average()})", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd)
    # exit 4: the dataset is written and some chunks failed (a small model's answer cut off at every attempt);
    # it is what a user gets, so it is measured, and the failed chunks are counted in its manifest
    if proc.returncode not in (0, 4) or not (out / "synthqa.json").is_file():
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    seconds = time.perf_counter() - start
    print(f"generated {out.name} in {seconds:.0f} s ({load_average()})", flush=True)
    return seconds


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Inputs, split and work folder options shared by bench_presets and bench_queries (and fine-tuning's)."""
    parser.add_argument("--corpora", type=Path, default=REPO / "corpora", help="folder of input PDFs")
    parser.add_argument("--sample-pages", type=int, metavar="K", help="run on every K-th page of each PDF")
    parser.add_argument("--limit", type=int, help="ask at most N chunks per variant")
    parser.add_argument("--eval-fraction", type=float, default=0.15, help="share of chunks in the eval split")
    parser.add_argument("--work", type=Path, help="folder for sample, datasets and models (default: a temp folder)")
    add_finetune_options(parser)


def prepare(args: argparse.Namespace, prefix: str) -> tuple[Path, Path]:
    """The work folder and the inputs: ``--corpora``, or the page sample written into the work folder."""
    work = args.work or Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    inputs = sample_pdfs(args.corpora, args.sample_pages, work / "sample") if args.sample_pages else args.corpora
    return work, inputs


def add_finetune_options(parser: argparse.ArgumentParser) -> None:
    """The fine-tuning options every quality bench shares."""
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--max-seq-length", type=int, default=256)


def finetune_on(out: Path, model_dir: Path, args: argparse.Namespace):
    """Fine-tune the bundled MiniLM on ``out``'s train split (the library's recipe); the FinetuneResult.

    A model left in ``model_dir`` by an earlier run of the bench is replaced: its dataset may have changed."""
    from synthqa.finetune import finetune

    shutil.rmtree(model_dir, ignore_errors=True)
    return finetune(out, model_dir, epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
                    max_seq_length=args.max_seq_length)


def scorers(outs: dict[str, Path], work: Path, args: argparse.Namespace) -> dict[str, object]:
    """BM25, the base MiniLM and a MiniLM fine-tuned on each variant's train split, by row label."""
    from synthqa.models import load_model

    found: dict[str, object] = {"bm25": BM25, "MiniLM (base)": load_model(None)}
    for name, out in outs.items():
        result = finetune_on(out, work / f"model-{name}", args)
        found[f"MiniLM fine-tuned on {name} ({result.train_rows} pairs)"] = load_model(str(result.output_dir))
    return found


def filter_counts(out: Path) -> str:
    """Counts, skipped chunks and dropped questions from the manifest, in two lines."""
    from synthqa.dataset import read_manifest

    m = read_manifest(out)
    c = m.counts
    parts = [f"chunks {c.chunks} (asked {c.chunks_asked})", f"questions {c.questions} of {c.questions_generated}",
             f"train/eval pairs {c.train_pairs}/{c.eval_pairs}"]
    skipped = {k: v for k, v in m.skipped_chunks.items() if v}
    dropped = {k: v for k, v in m.question_filters.items() if v}
    return "; ".join(parts) + f"\n  chunks skipped: {skipped or 'none'}\n  questions dropped: {dropped or 'none'}"


# ------------------------------------------------------------------------------------------ query stats
STYLE_DEFAULT = "question"  # what every query is before --query-styles (a dataset without a style column)


def query_rows(out: Path) -> list[dict]:
    """Every query of both splits with its split, style and chunk text."""
    from synthqa.dataset import load_tables

    tables = load_tables(out)
    chunks = {}
    for df in tables["corpus"].values():
        chunks.update(zip(df["id"], df["text"], strict=True))
    rows = []
    for split, df in tables["queries"].items():
        for row in df.to_dict("records"):
            row["split"] = split
            row["style"] = row.get("style") or STYLE_DEFAULT
            row["chunk"] = chunks.get(row["chunk_id"], "")
            rows.append(row)
    return rows


def by_style(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows per style, plus "all" when there are several styles."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["style"], []).append(row)
    return {"all": rows, **groups} if len(groups) > 1 else groups


@dataclass(frozen=True)
class DropRate:
    stage: str  # "chunk" (skipped before asking) or "question" (dropped after)
    name: str
    count: int
    of: int


def drop_rates(out: Path) -> list[DropRate]:
    """Each chunk filter's share of the chunks and each question filter's share of the generated questions."""
    from synthqa.dataset import read_manifest

    m = read_manifest(out)
    chunk_rows = [DropRate("chunk", k, v, m.counts.chunks) for k, v in sorted(m.skipped_chunks.items())]
    question_rows = [DropRate("question", k, v, m.counts.questions_generated)
                     for k, v in sorted(m.question_filters.items())]
    return chunk_rows + question_rows


def drop_table(outs: dict[str, Path]) -> str:
    """Each filter's drop count and rate per variant, side by side, as a Markdown table."""
    rates = {name: {(d.stage, d.name): d for d in drop_rates(out)} for name, out in outs.items()}
    keys = sorted({key for r in rates.values() for key in r})
    rows = [[stage, name, *(_rate(rates[v].get((stage, name))) for v in outs)] for stage, name in keys]
    return markdown_table(["stage", "filter", *outs], rows)


def _rate(d: DropRate | None) -> str:
    return "-" if d is None else f"{d.count} ({d.count / max(d.of, 1):.1%})"


opener = spares.opener  # the first two words, lower-cased: what --spare-questions varies


def openers(texts: list[str], words: int = 2, top: int = 5) -> tuple[float, list[tuple[str, int]]]:
    """The top opener's share of ``texts`` and the ``top`` most common openers with their counts."""
    counts = Counter(opener(t, words) for t in texts)
    common = counts.most_common(top)
    return (common[0][1] / len(texts) if common else 0.0), common


def rank_summary(ranks: list, top_k: int) -> str:
    """Median, share at rank 1, share in the top 5 and share beyond ``top_k`` (censored) of round-trip ranks."""
    ranks = [int(r) for r in ranks if r is not None and not math.isnan(r)]  # NaN: no embedder ranked it
    if not ranks:
        return "n/a"
    n = len(ranks)
    median = statistics.median(ranks)
    shown = f">{top_k}" if median > top_k else f"{median:g}"
    return (f"median {shown}, @1 {sum(r == 1 for r in ranks) / n:.0%}, top-5 {sum(r <= 5 for r in ranks) / n:.0%},"
            f" >{top_k} {sum(r > top_k for r in ranks) / n:.0%}")


# Words of the prompts' example domains: the seed prompt's ("insurance policies, company and government
# policies, terms and conditions") and the kinds of subject today's default prompt names. A query using one
# that its chunk lacks took it from the prompt, not from the chunk.
PROMPT_DOMAIN_WORDS = ("insurance", "company", "government", "terms", "conditions",
                       "subject", "rule", "party", "amount", "principle", "measures")


def domain_word_leaks(rows: list[dict], words: tuple[str, ...] = PROMPT_DOMAIN_WORDS) -> list[tuple[str, dict]]:
    """(word, row) for each prompt-domain word a query holds but its chunk lacks (stem or 5-letter prefix)."""
    from synthqa.grounding import content_words, share_in_chunk

    leaks = []
    for row in rows:
        held = set(content_words(row["text"]))
        for word in words:
            if word in held and share_in_chunk([word], row["chunk"]) == 0.0:
                leaks.append((word, row))
    return leaks


def write_sample(rows: list[dict], path: Path, n: int = 50, seed: int = 0) -> Path:
    """A seeded random sample of ``n`` queries with their chunks, as Markdown for a person to read."""
    sample = random.Random(seed).sample(rows, min(n, len(rows)))
    lines = [f"# {len(sample)} queries drawn at random (seed {seed}) of {len(rows)}", "",
             "Mark each: S specific and answerable from its chunk alone, V vague, N not answerable from it,",
             "C leaning on unstated context (\"this principle\", \"the system\").", ""]
    for i, row in enumerate(sample, 1):
        chunk = row["chunk"].replace("\n", "\n> ")
        where = (f"{row['source']} p.{row['page']}, {row['split']}; round-trip rank bm25 {row['bm25_rank']},"
                 f" embed {row['embed_rank']}")
        lines += [f"## {i}. [{row['style']}] {row['text']}", "", where, "", f"> {chunk}", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------- common eval split
BM25 = "bm25"  # scorer name for BM25 instead of an embedding model


@dataclass(frozen=True)
class CommonEval:
    """One eval split shared by every variant, so their fine-tuned models compare fairly."""

    queries: dict[str, str]  # "variant/query id" → text
    styles: dict[str, str]  # same keys → style
    relevant: dict[str, set[str]]  # same keys → relevant chunk ids in ``corpus``
    corpus: dict[str, str]  # chunk id → text: every chunk of every variant (asked or skipped)
    left_out: int  # eval questions whose chunk some variant trains on

    def describe(self) -> str:
        """How many questions from which variant, among how many chunks, and how many were left out."""
        per_variant = Counter(key.split("/", 1)[0] for key in self.queries)
        return (f"{len(self.queries)} eval questions ({', '.join(f'{v} {n}' for v, n in per_variant.items())})"
                f" among {len(self.corpus)} chunks; {self.left_out} left out (their chunk is in a train split)")


def common_eval(outs: dict[str, Path]) -> CommonEval:
    """The union of the variants' eval questions, searched among all their chunks (``--corpus all``).

    Variants made from the same inputs and seed split their chunks alike; a question whose chunk is in any
    variant's train split is left out (and counted), so no fine-tuned model is scored on a chunk it saw."""
    from synthqa.dataset import load_tables
    from synthqa.retrieval import ir_evaluator_inputs

    tables = {name: load_tables(out) for name, out in outs.items()}
    trained = {cid for t in tables.values() for cid in t["corpus"]["train"]["id"]}
    queries, styles, relevant, corpus, left_out = {}, {}, {}, {}, 0
    for name, out in outs.items():
        texts, chunks, rel = ir_evaluator_inputs(out, split="eval", corpus="all")
        corpus.update(chunks)
        df = tables[name]["queries"]["eval"]
        style_col = df["style"] if "style" in df.columns else [STYLE_DEFAULT] * len(df)
        for qid, chunk_id, style in zip(df["id"], df["chunk_id"], style_col, strict=True):
            if chunk_id in trained:
                left_out += 1
                continue
            if rel.get(qid):
                key = f"{name}/{qid}"
                queries[key], styles[key], relevant[key] = texts[qid], style or STYLE_DEFAULT, rel[qid]
    return CommonEval(queries, styles, relevant, corpus, left_out)


def score(model, common: CommonEval, keys: list[str]) -> dict[str, float]:
    """ndcg@10, accuracy@1, recall@10 … of ``model`` (a SentenceTransformer, or BM25) on ``keys`` of
    ``common``, with the library's evaluator functions (same ranking and metrics as ``synthqa evaluate``)."""
    from synthqa.evaluate import ranking_metrics

    return ranking_metrics(rankings(model, common, keys), [common.relevant[k] for k in keys])


def rankings(model, common: CommonEval, keys: list[str]) -> list[list[str]]:
    """Each of ``keys``' questions' ranked chunk ids among all of ``common``'s chunks."""
    from synthqa.evaluate import bm25_scores, embed, rank_by_scores

    corpus_ids = list(common.corpus)
    texts, documents = [common.queries[k] for k in keys], [common.corpus[c] for c in corpus_ids]
    if model == BM25:
        scores = bm25_scores(texts, documents)
    else:
        q_emb, c_emb = embed(model, texts, documents)
        scores = model.similarity(q_emb, c_emb).float().cpu().numpy()
    return rank_by_scores(scores, corpus_ids)


def score_by_style(model, common: CommonEval) -> dict[str, dict[str, float]]:
    """``score`` on all of ``common`` and on each style's questions alone: one ranking, cut per style by
    ``synthqa evaluate``'s own ``style_rows``."""
    from synthqa.evaluate import ranking_metrics, style_rows

    keys = list(common.queries)
    ranked, relevant = rankings(model, common, keys), [common.relevant[k] for k in keys]
    per_style = style_rows({"model": ranked}, relevant, [common.styles[k] for k in keys])
    return {"all": ranking_metrics(ranked, relevant)} | {s: rows["model"] for s, rows in per_style.items()}


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; floats with three decimals."""
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    return "\n".join(["| " + " | ".join(header) + " |", "|" + " --- |" * len(header),
                      *("| " + " | ".join(row) + " |" for row in cells)])
