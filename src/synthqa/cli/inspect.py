"""``synthqa inspect OUT``: a terminal view of a dataset (or of a run still going)."""

from __future__ import annotations

import argparse

from ._options import add_out


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="show a run summary and sample pairs of a dataset folder or Hub id",
        description="Summarise a synthqa dataset and show random pairs; works while a generation is running.",
    )
    add_out(p, hub=True)
    p.add_argument("-n", type=int, default=5, help="how many random pairs to show (default: 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random sample (default: 0)")
    p.add_argument("--split", choices=("train", "eval"), default=None, help="only this split")
    p.add_argument("--search", metavar="WORD", default=None, help="pairs whose question or chunk contains WORD")
    p.add_argument("--chunk", metavar="ID", default=None, help="one chunk with all its questions")
    p.add_argument("--failed", action="store_true", help="list failed chunks and skipped files with reasons")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..inspect import inspect_dataset

    print(inspect_dataset(args.out, n=args.n, seed=args.seed, split=args.split, search=args.search,
                          chunk=args.chunk, failed=args.failed))
    return 0
