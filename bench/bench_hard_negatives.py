"""Which hard negatives help? Fine-tune the bundled MiniLM on one dataset once per mining variant and score
every model on one common eval split: the dataset's eval questions searching the whole corpus (train and
eval chunks), a harder test than the split's own chunks.

Variants: no mined negatives (in-batch only); synthqa 0.1.0's mining (the miner's n-tuples, which drop
every pair without N negatives below the margin); and today's mining (no pair dropped, no negative sharing
text with the positive) at relative margins 0.05 / 0.1 and range_min 0 / 5. Each finished variant is saved
to ``--results`` at once, so a rerun skips it (delete the file, or use ``--fresh``, to measure again).

    python bench/bench_hard_negatives.py out/reference                       # all variants, 2 epochs
    python bench/bench_hard_negatives.py out/reference --epochs 5 --only none,m0.05,m0.1
    python bench/bench_hard_negatives.py OUT --max-steps 3 --max-seq-length 64 # a quick try of the script

Numbers from a dataset made with the tests' fake server are meaningless (its questions are word salad).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import synthqa.finetune as ft
from synthqa.retrieval import ir_evaluator_inputs
from synthqa.evaluate import evaluate
from synthqa.finetune.progress import quiet
from synthqa.models import load_model

# name → (hard negatives per pair, relative margin, range_min); margin None marks synthqa 0.1.0's mining.
VARIANTS = {
    "none": (0, 0.05, 0),
    "dropping": (1, None, 0),  # synthqa 0.1.0
    "m0.05": (1, 0.05, 0),
    "m0.1": (1, 0.1, 0),
    "m0.05-r5": (1, 0.05, 5),
    "m0.1-r5": (1, 0.1, 5),
}
METRICS = ("ndcg@10", "accuracy@1", "recall@10", "mrr@10")


def old_training_rows(config, tables, model):
    """synthqa 0.1.0's mining, for comparison: n-tuples from the miner's own window, pairs without N
    negatives below the margin dropped."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    pairs = Dataset.from_pandas(tables["pairs"]["train"][["sentence_0", "sentence_1"]], preserve_index=False)
    corpus = tables["corpus"]["train"]
    asked = corpus[corpus["skip_reason"] == ""]  # mined among the asked chunks, as synthqa.finetune does
    with quiet():
        mined = mine_hard_negatives(
            pairs, model, anchor_column_name="sentence_0", positive_column_name="sentence_1",
            corpus=list(asked["text"]), num_negatives=config.hard_negatives,
            relative_margin=0.05, sampling_strategy="top", output_format="n-tuple", batch_size=config.batch_size,
            verbose=False,
        )
    return mined, None


def run_variant(name: str, args, workdir: Path) -> dict:
    n, margin, range_min = VARIANTS[name]
    options = {"epochs": args.epochs, "max_steps": args.max_steps, "batch_size": args.batch_size,
               "max_seq_length": args.max_seq_length, "seed": args.seed, "hard_negatives": n,
               "negative_range_min": range_min}
    if margin is not None:
        options["negative_margin"] = margin
    original = ft._training_rows
    if margin is None:
        ft._training_rows = old_training_rows
    try:
        started = time.perf_counter()
        result = ft.finetune(args.dataset, workdir / name, log=lambda line: print(f"  {line}", flush=True), **options)
    finally:
        ft._training_rows = original
    common = evaluate(args.dataset, model=result.output_dir, corpus="all", bm25=False, label=name)
    neg = result.negatives
    return {
        "variant": name, "train_rows": result.train_rows, "steps": result.steps,
        "mined": neg.mined if neg else None, "random": neg.random if neg else None,
        "refused": neg.refused if neg else None, "seconds": round(time.perf_counter() - started),
        **{m: common.rows[name][m] for m in METRICS},
    }


def table(base: dict, rows: list[dict], pairs: int) -> str:
    lines = [f"| variant | train rows (of {pairs}) | mined / random / refused | " + " | ".join(METRICS) + " | time |",
             "|---|---:|---:|" + "---:|" * len(METRICS) + "---:|",
             "| base MiniLM (no training) | | | " + " | ".join(f"{base[m]:.4f}" for m in METRICS) + " | |"]
    for r in rows:
        negs = "—" if r["mined"] is None else f"{r['mined']} / {r['random']} / {r['refused']}"
        lines.append(f"| {r['variant']} | {r['train_rows']} | {negs} | "
                     + " | ".join(f"{r[m]:.4f}" for m in METRICS) + f" | {r['seconds']} s |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a synthqa output folder")
    parser.add_argument("--only", default=",".join(VARIANTS), help=f"comma-separated variants of {', '.join(VARIANTS)}")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--max-seq-length", type=int, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--results", type=Path, default=Path("bench_hard_negatives.json"))
    parser.add_argument("--fresh", action="store_true", help="measure every variant again")
    args = parser.parse_args()
    names = [v.strip() for v in args.only.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}: use {', '.join(VARIANTS)}")
    settings = {k: getattr(args, k) for k in ("dataset", "epochs", "max_steps", "batch_size", "max_seq_length", "seed")}
    saved = {} if args.fresh or not args.results.exists() else json.loads(args.results.read_text())
    if saved.get("settings") != settings:
        saved = {"settings": settings, "variants": {}}
    if "base" not in saved:
        base = load_model(None, max_seq_length=args.max_seq_length)  # truncated as the trained models are
        report = evaluate(args.dataset, model=base, corpus="all", bm25=False, label="base")
        saved["base"] = {m: report.rows["base"][m] for m in METRICS}
    queries, corpus, _ = ir_evaluator_inputs(args.dataset, split="eval", corpus="all")
    with tempfile.TemporaryDirectory(prefix="bench-hn-") as tmp:
        for name in names:
            if name in saved["variants"]:
                continue
            print(f"== {name}: {VARIANTS[name]}", flush=True)
            saved["variants"][name] = run_variant(name, args, Path(tmp))
            args.results.write_text(json.dumps(saved, indent=2) + "\n")
    rows = [saved["variants"][n] for n in names]
    pairs = max(r["train_rows"] for r in rows)
    print(f"\n{args.dataset}: {len(queries)} eval questions searching all {len(corpus)} chunks; "
          f"MiniLM, {f'{args.max_steps} steps' if args.max_steps else f'{args.epochs} epochs'}, batch {args.batch_size}, "
          f"max_seq_length {args.max_seq_length or 'model default'}, seed {args.seed}")
    print(table(saved["base"], rows, pairs))


if __name__ == "__main__":
    main()
