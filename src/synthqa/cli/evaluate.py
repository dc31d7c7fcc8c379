"""``synthqa evaluate OUT``: retrieval metrics of an embedding model and BM25 on the eval split."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..retrieval import CORPUS_CHOICES, DEFAULT_CORPUS
from ._options import add_out


def register(sub) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="measure retrieval (accuracy/recall/nDCG/MRR/MAP) of a model and BM25 on a dataset",
        description="Evaluate an embedding model (default: the bundled all-MiniLM-L6-v2) and BM25 on one split "
        "of a synthqa dataset. Needs synthqa[eval].",
    )
    add_out(parser, hub=True, dest="dataset")
    parser.add_argument("--model", default=None, help="sentence-transformers folder or Hub name (default: bundled MiniLM)")
    parser.add_argument("--split", default="eval", choices=("eval", "train"), help="split to evaluate (default: eval)")
    parser.add_argument("--corpus", default=DEFAULT_CORPUS, choices=CORPUS_CHOICES,
                        help="all: search every chunk of the dataset, those never asked about included (default); "
                        "split: only the split's asked chunks, as synthqa 0.1.0 measured")
    parser.add_argument("--dims", default=None, help="also report Matryoshka widths, e.g. 384,256,128,64")
    parser.add_argument("--no-bm25", dest="bm25", action="store_false", help="skip the BM25 column")
    parser.add_argument("--batch-size", type=int, default=32, help="encoding batch size (default: 32)")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON results file (default: OUT/.synthqa/eval-<model>-<split>-<corpus>.json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..evaluate import (
        default_output_path,
        evaluate,
        format_table,
        parse_dims,
        write_report,
    )

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size {args.batch_size} must be at least 1")
    report = evaluate(args.dataset, model=args.model, split=args.split, dims=parse_dims(args.dims),
                      bm25=args.bm25, batch_size=args.batch_size, corpus=args.corpus)
    path = write_report(report, args.output or default_output_path(args.dataset, report))
    print(format_table(report))
    print(f"results written to {path}")
    return 0
