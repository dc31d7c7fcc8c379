"""Which embedded model preset makes the better dataset: qwen0.5b or qwen1.5b, on the same inputs?

For each preset this generates a dataset with ``synthqa generate --local --local-model P --local-threads 1``
and prints: time per chunk through generate, the parse rate (answers usable on the first ask), each
filter's drop rate, the opener distribution, round-trip ranks, and — after fine-tuning the bundled MiniLM
on each dataset's train split — ndcg@10, accuracy@1 and recall@10 on ONE common eval split (every preset's
eval questions, none about a chunk any preset trains on, searched among all chunks). Then it measures the
presets' speed at 1 and 2 threads with ``bench_local.py`` on a few chunks.

    python bench/bench_presets.py --sample-pages 10            # every 10th page of corpora/ (~38 chunks)
    python bench/bench_presets.py                              # all of corpora/: ~25 min per preset, idle
    python bench/bench_presets.py --base-url http://127.0.0.1:8000/v1 --sample-pages 10 --max-steps 5

``--work DIR`` keeps the datasets and models; a rerun into the same DIR asks nothing again (cached
answers). With ``--base-url`` (an OpenAI-compatible server such as the tests' fake one) each preset name is
sent as the model name and the speed part is skipped: that run only proves the script works end to end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import querystats as qs  # noqa: E402

METRICS = ("ndcg@10", "accuracy@1", "recall@10")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["qwen0.5b", "qwen1.5b"])
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint instead of the embedded model")
    parser.add_argument("--speed-chunks", type=int, default=6, help="chunks per preset and thread count for speed")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts for the speed part")
    qs.add_run_options(parser)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    work, inputs = qs.prepare(args, "synthqa-presets-")
    outs, seconds = {}, {}
    for preset in args.presets:
        extra = ["--eval-fraction", str(args.eval_fraction)]
        extra += ["--model", preset] if args.base_url else ["--local", "--local-model", preset]
        out = work / f"data-{preset}"
        seconds[preset] = qs.generate(out, inputs, extra, base_url=args.base_url, limit=args.limit, local_threads=1)
        outs[preset] = out

    print("\n## Datasets\n")
    print(qs.markdown_table(
        ["preset", "chunks", "ask s/chunk (1 thread)", "generate s", "usable on 1st ask", "failed", "short",
         "questions kept", "top opener", "bm25 round-trip rank", "MiniLM round-trip rank"],
        [dataset_row(p, out, seconds[p]) for p, out in outs.items()]))
    print(f"\ngenerate timings include reading, filters and round-trip ranking; {qs.load_average()}")
    print("\n## Drop rates\n")
    print(qs.drop_table(outs))
    for preset, out in outs.items():
        _, top = qs.openers([r["text"] for r in qs.query_rows(out)])
        print(f"\n{preset} openers: " + ", ".join(f"{o!r} {n}" for o, n in top))

    print("\n## Fine-tuned MiniLM on one common eval split\n")
    print(model_table(outs, work, args))
    if not args.base_url:
        print("\n## Speed (bench_local.py)\n")
        speed(args, inputs)
    print(f"\ndatasets and models kept in {work}")
    return 0


def dataset_row(preset: str, out: Path, seconds: float) -> list:
    """One preset's line of the datasets table."""
    from synthqa.dataset import read_manifest

    m = read_manifest(out)
    c = m.counts
    rows = qs.query_rows(out)
    share, top = qs.openers([r["text"] for r in rows])
    k = m.roundtrip.top_k
    # Cached answers cost nothing: time per chunk only means something for the chunks asked this run.
    asked = c.requests_this_run
    per_chunk = f"{m.timings.ask / asked:.1f} ({asked} requests)" if asked and m.timings else "cached"
    return [preset, c.chunks_asked, per_chunk, f"{seconds:.0f}",
            f"{c.chunks_asked / max(c.requests, 1):.0%}", len(m.failed_chunks), c.short_chunks,
            f"{c.questions} of {c.questions_generated}", f"{share:.0%} {top[0][0]!r}" if top else "-",
            qs.rank_summary([r["bm25_rank"] for r in rows], k), qs.rank_summary([r["embed_rank"] for r in rows], k)]


def model_table(outs: dict[str, Path], work: Path, args) -> str:
    """BM25, the base MiniLM and each preset's fine-tuned MiniLM on the common eval split."""
    common = qs.common_eval(outs)
    print(common.describe() + "\n")
    rows = []
    for name, model in qs.scorers(outs, work, args).items():
        metrics = qs.score(model, common, list(common.queries))
        rows.append([name, *(metrics[m] for m in METRICS)])
    return qs.markdown_table(["model", *METRICS], rows)


def speed(args, inputs: Path) -> None:
    """s/chunk at each thread count per preset, with bench_local's own run (server started per row)."""
    import bench_local
    from synthqa.local import resolve_model
    from synthqa.prompts import load_template

    chunks = bench_local.corpus_chunks(args.speed_chunks, inputs)
    print(f"{len(chunks)} chunks after one warm-up request, 2 questions each; {qs.load_average()}\n")
    print("| preset | " + " | ".join(bench_local.HEADER) + " |\n|" + " --- |" * (len(bench_local.HEADER) + 1))
    for preset in args.presets:
        path = resolve_model(preset)
        for threads in args.threads:
            row = bench_local.run(path, threads, load_template(), chunks, 2, preset)
            print(f"| {preset} | {bench_local.format_row(row)} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
