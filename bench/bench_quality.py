"""Does fine-tuning on a synthqa dataset help retrieval, and do the quality filters matter?

For each variant — filters on (the default), ``--keep-all-chunks``, and ``--min-roundtrip-rank K`` — this
generates a dataset from the corpora (or reuses ``--dataset OUT`` for the default variant), evaluates the
bundled all-MiniLM-L6-v2 and BM25 on its eval split, fine-tunes MiniLM on its train split, evaluates again,
and prints the card-style tables plus the filter counts from each manifest. Every fine-tuned model is also
scored on one common eval split (the keep-all-chunks variant's, the largest) so variants compare fairly;
a train/eval chunk overlap with that common split is reported, never hidden.

    python bench/bench_quality.py                          # embedded local model (no key needed; slow)
    python bench/bench_quality.py --base-url http://127.0.0.1:8000/v1 --limit 60 --max-steps 20
    python bench/bench_quality.py --dataset OUT --only default

Numbers from a dataset made with the tests' fake server are meaningless (its questions are word salad);
that run only proves the script works end to end.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from synthqa.dataset import load_tables, read_manifest
from synthqa.evaluate import evaluate, format_table
from synthqa.finetune import finetune, format_comparison

REPO = Path(__file__).resolve().parents[1]


def generate(out: Path, args, extra: list[str], seed_from: Path | None = None) -> Path:
    if seed_from is not None and (seed_from / ".synthqa" / "cache.sqlite").exists():
        # Answers are keyed by content: a variant reuses every answer an earlier variant already paid for.
        (out / ".synthqa").mkdir(parents=True, exist_ok=True)
        shutil.copy2(seed_from / ".synthqa" / "cache.sqlite", out / ".synthqa" / "cache.sqlite")
    cmd = [sys.executable, "-m", "synthqa", "generate", str(args.corpora), "-o", str(out), "--no-progress",
           "--overwrite", *extra]
    if args.base_url:
        cmd += ["--base-url", args.base_url]
    if args.model:
        cmd += ["--model", args.model]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    if args.local_threads:
        cmd += ["--local-threads", str(args.local_threads)]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return out


def filter_counts(out: Path) -> str:
    m = read_manifest(out)
    c = m.counts
    parts = [f"chunks {c.chunks} (asked {c.chunks_asked})", f"questions {c.questions} of {c.questions_generated}",
             f"train/eval pairs {c.train_pairs}/{c.eval_pairs}"]
    skipped = {k: v for k, v in m.skipped_chunks.items() if v}
    dropped = {k: v for k, v in m.question_filters.items() if v}
    return "; ".join(parts) + f"\n  chunks skipped: {skipped or 'none'}\n  questions dropped: {dropped or 'none'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", type=Path, default=REPO / "corpora")
    parser.add_argument("--dataset", type=Path, help="reuse this OUT as the default variant instead of generating")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint (default: the embedded local model)")
    parser.add_argument("--model", help="model name at the endpoint")
    parser.add_argument("--limit", type=int, help="ask at most N chunks per variant")
    parser.add_argument("--local-threads", type=int, help="llama.cpp threads for the embedded model")
    parser.add_argument("--roundtrip-rank", type=int, default=5, help="K for the --min-roundtrip-rank variant")
    parser.add_argument("--only", nargs="*", choices=("default", "keep-all", "roundtrip"),
                        default=["default", "keep-all", "roundtrip"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--work", type=Path, help="folder for datasets and models (default: a temp folder)")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="synthqa-bench-"))
    variants = {"default": [], "keep-all": ["--keep-all-chunks"],
                "roundtrip": ["--min-roundtrip-rank", str(args.roundtrip_rank)]}
    outs: dict[str, Path] = {}
    for name in args.only:
        if name == "default" and args.dataset:
            outs[name] = args.dataset
        else:
            outs[name] = generate(work / f"data-{name}", args, variants[name], seed_from=next(iter(outs.values()), None))
    common = outs.get("keep-all") or next(iter(outs.values()))
    common_eval = set(load_tables(common)["corpus"]["eval"]["id"])

    for name, out in outs.items():
        print(f"\n=== variant {name}: {out}\n  {filter_counts(out)}")
        result = finetune(out, work / f"model-{name}", epochs=args.epochs, max_steps=args.max_steps,
                          batch_size=args.batch_size, max_seq_length=args.max_seq_length)
        print(format_comparison(result))
        if out != common:
            overlap = common_eval & set(load_tables(out)["corpus"]["train"]["id"])
            report = evaluate(common, model=result.output_dir, label=f"finetuned-{name}")
            note = f" — WARNING: {len(overlap)} of its train chunks are in this eval split" if overlap else ""
            print(f"\non the common eval split ({common.name}){note}:\n{format_table(report)}")
    print(f"\ndatasets and models kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
