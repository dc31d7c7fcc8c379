"""What do the generated queries look like, per query-style mix, and which mix trains the better retriever?

For each mix (``default``: no ``--query-styles``, every query a "question"; or a ``--query-styles`` value
such as ``question:1,keyword:1``) this generates a dataset and prints: each filter's drop rate, the opener
distribution (share of the top opener, the top 5) and round-trip ranks per style, the prompt-domain words
check (a word of the prompts' example domains, e.g. "insurance", in a query whose chunk lacks it: target 0),
and — after fine-tuning the bundled MiniLM on each mix's train split — ndcg@10 per style on ONE common eval
split (every mix's eval questions, none about a chunk any mix trains on, searched among all chunks). It
writes a seeded random sample of 50 queries with their chunks per mix for a person to read
(``WORK/sample-MIX.md``).

    python bench/bench_queries.py --sample-pages 10                       # every 10th page of corpora/
    python bench/bench_queries.py --mixes default question:1,keyword:1    # all of corpora/ (slow)
    python bench/bench_queries.py --base-url http://127.0.0.1:8000/v1 --sample-pages 10 --max-steps 5
    python bench/bench_queries.py --dataset OUT --mixes default           # reuse a dataset for the default mix
    python bench/bench_queries.py --dataset before=OUT1 --dataset after=OUT2 --mixes default   # prompt variants
    python bench/bench_queries.py --sample-pages 10 --mixes default --spare-questions 2   # with and without spares

``--work DIR`` keeps datasets, models and samples; a rerun into the same DIR asks nothing again. Numbers
from the tests' fake server are meaningless (its questions are word salad): that run proves the script works.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import querystats as qs  # noqa: E402

DEFAULT_MIX = "default"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mixes", nargs="+", default=[DEFAULT_MIX, "question:1,keyword:1"],
                        help="'default' (no --query-styles) and/or --query-styles values")
    parser.add_argument("--dataset", action="append", default=[], metavar="[NAME=]OUT",
                        help="reuse this OUT as the default mix (or, as NAME=OUT, as a variant named NAME, e.g. "
                             "a dataset made with another prompt) instead of generating; repeatable")
    parser.add_argument("--spare-questions", type=int, nargs="*", default=[], metavar="M",
                        help="also generate each mix with --spare-questions M (a variant named 'MIX +M spares')")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint (default: the embedded local model)")
    parser.add_argument("--model", help="model name at the endpoint")
    parser.add_argument("--local-model", help="embedded model preset or GGUF (default: synthqa's)")
    parser.add_argument("--local-threads", type=int, default=1)
    parser.add_argument("--read", type=int, default=50, help="queries per mix in the sample for a person to read")
    parser.add_argument("--seed", type=int, default=0, help="seed of that sample")
    qs.add_run_options(parser)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    work, inputs = qs.prepare(args, "synthqa-queries-")
    outs = generate_mixes(args, work, inputs)

    print("\n## Drop rates\n")
    print(qs.drop_table(outs))
    print("\n## Openers and round-trip ranks per style\n")
    print(qs.markdown_table(["mix", "style", "queries", "top opener", "top 5 openers", "bm25 rank", "MiniLM rank"],
                            [row for mix, out in outs.items() for row in style_rows(mix, out)]))
    print("\n## Prompt-domain words in a query but not in its chunk (target 0)\n")
    for mix, out in outs.items():
        print(domain_words(mix, qs.query_rows(out)))
    print("\n## Samples to read\n")
    for mix, out in outs.items():
        path = qs.write_sample(qs.query_rows(out), work / f"sample-{slug(mix)}.md", n=args.read, seed=args.seed)
        print(f"{mix}: {path}")

    print("\n## Fine-tuned MiniLM, ndcg@10 per style on one common eval split\n")
    common = qs.common_eval(outs)
    print(common.describe() + "\n")
    styles = sorted(set(common.styles.values()))
    rows = []
    for name, model in qs.scorers(outs, work, args).items():
        by_style = qs.score_by_style(model, common)
        rows.append([name, *(by_style[s]["ndcg@10"] for s in ["all", *styles])])
    print(qs.markdown_table(["model", "all", *(f"{s} ({_count(common, s)})" for s in styles)], rows))
    print(f"\ndatasets, models and samples kept in {work}; {qs.load_average()}")
    return 0


def generate_mixes(args, work: Path, inputs: Path) -> dict[str, Path]:
    """One dataset per mix, after the ``--dataset`` ones (a mix named there is not generated); each generated
    one reuses the first's answers."""
    outs = dict(_named(value) for value in args.dataset)
    variants = [(mix, mix, []) for mix in args.mixes]
    variants += [(f"{mix} +{m} spares", mix, ["--spare-questions", str(m)]) for mix in args.mixes
                 for m in args.spare_questions]
    for name, mix, spare in variants:
        if name in outs:
            continue
        extra = ["--eval-fraction", str(args.eval_fraction), *spare]
        extra += [] if mix == DEFAULT_MIX else ["--query-styles", mix]
        if not args.base_url:
            extra += ["--local", *(["--local-model", args.local_model] if args.local_model else [])]
        out = work / f"data-{slug(name)}"
        try:
            qs.generate(out, inputs, extra, base_url=args.base_url, model=args.model, limit=args.limit,
                        local_threads=None if args.base_url else args.local_threads,
                        seed_from=next(iter(outs.values()), None))
        except subprocess.CalledProcessError as err:
            # A mix this synthqa cannot make (no --query-styles yet) must not cost the mixes it can.
            print(f"mix {name}: synthqa generate failed (exit {err.returncode}, its message above); left out")
            continue
        outs[name] = out
    if not outs:
        raise SystemExit("no mix could be generated: see the messages above")
    return outs


def _named(value: str) -> tuple[str, Path]:
    """``--dataset`` "NAME=OUT" → (NAME, OUT); a bare "OUT" is the default mix."""
    name, sep, path = value.partition("=")
    name, out = (name, Path(path)) if sep and not Path(value).exists() else (DEFAULT_MIX, Path(value))
    if not (out / "synthqa.json").is_file():
        raise SystemExit(f"--dataset {value}: {out} is not a synthqa output folder (no synthqa.json); "
                         "pass the -o folder of a finished `synthqa generate`")
    return name, out


def style_rows(mix: str, out: Path) -> list[list]:
    """Per style of one dataset: query count, openers and round-trip ranks."""
    from synthqa.dataset import read_manifest

    top_k = read_manifest(out).roundtrip.top_k
    rows = []
    for style, group in qs.by_style(qs.query_rows(out)).items():
        share, top = qs.openers([r["text"] for r in group])
        rows.append([mix, style, len(group), f"{share:.0%} {top[0][0]!r}" if top else "-",
                     ", ".join(f"{o!r} {n}" for o, n in top),
                     qs.rank_summary([r["bm25_rank"] for r in group], top_k),
                     qs.rank_summary([r["embed_rank"] for r in group], top_k)])
    return rows


def domain_words(mix: str, rows: list[dict], examples: int = 5) -> str:
    """The count of prompt-domain words absent from their chunk, per word, with a few examples."""
    leaks = qs.domain_word_leaks(rows)
    if not leaks:
        return f"{mix}: 0 of {len(rows)} queries (words checked: {', '.join(qs.PROMPT_DOMAIN_WORDS)})"
    words = sorted({w for w, _ in leaks})
    lines = [f"{mix}: {len({id(r) for _, r in leaks})} of {len(rows)} queries: "
             + ", ".join(f"{w} {sum(x == w for x, _ in leaks)}" for w in words)]
    lines += [f"  - [{w}] {r['text']}" for w, r in leaks[:examples]]
    return "\n".join(lines)


def slug(mix: str) -> str:
    """A file-name-safe form of a mix: "question:1,keyword:1" → "question1-keyword1"."""
    return re.sub(r"[^\w]+", "-", mix.replace(":", "")).strip("-")


def _count(common: qs.CommonEval, style: str) -> int:
    return sum(s == style for s in common.styles.values())


if __name__ == "__main__":
    sys.exit(main())
