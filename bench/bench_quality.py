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
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import querystats as qs  # noqa: E402
from synthqa.dataset import load_tables  # noqa: E402
from synthqa.evaluate import evaluate, format_table  # noqa: E402
from synthqa.finetune import format_comparison  # noqa: E402


def generate(out: Path, args, extra: list[str], seed_from: Path | None = None) -> Path:
    qs.generate(out, args.corpora, extra, base_url=args.base_url, model=args.model, limit=args.limit,
                local_threads=args.local_threads, seed_from=seed_from)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", type=Path, default=qs.REPO / "corpora")
    parser.add_argument("--dataset", type=Path, help="reuse this OUT as the default variant instead of generating")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint (default: the embedded local model)")
    parser.add_argument("--model", help="model name at the endpoint")
    parser.add_argument("--limit", type=int, help="ask at most N chunks per variant")
    parser.add_argument("--local-threads", type=int, help="llama.cpp threads for the embedded model")
    parser.add_argument("--roundtrip-rank", type=int, default=5, help="K for the --min-roundtrip-rank variant")
    parser.add_argument("--only", nargs="*", choices=("default", "keep-all", "roundtrip"),
                        default=["default", "keep-all", "roundtrip"])
    qs.add_finetune_options(parser)
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
        print(f"\n=== variant {name}: {out}\n  {qs.filter_counts(out)}")
        result = qs.finetune_on(out, work / f"model-{name}", args)
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
