"""`synthqa batch export INPUT... -o OUT` / `synthqa batch import OUT RESULTS...`: questions asked by vllm
run-batch on your own GPUs, through files."""

from __future__ import annotations

import argparse
from pathlib import Path

from .generate import add_options, given_options, log, new_config, show


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="ask through batch files (vllm run-batch): export requests, import results",
                       description="Ask the questions offline: `batch export` writes OUT/batch/requests-NNN.jsonl "
                       "(the OpenAI Batch format) for the chunks the cache cannot answer; run `vllm run-batch` on "
                       "each; `batch import` reads the results and writes the dataset as `generate` would.")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    e = actions.add_parser("export", help="write requests files for the chunks the cache cannot answer",
                           description="Write OUT/batch/requests-NNN.jsonl for vllm run-batch. Takes generate's "
                           "options; --model is the name vllm serves.", argument_default=argparse.SUPPRESS)
    add_options(e)
    e.set_defaults(func=export)
    i = actions.add_parser("import", help="read vllm run-batch results and write the dataset",
                           description="Commit the answers of results files to the cache; unusable answers go into "
                           "a follow-up requests file (up to --max-attempts); once every request has its result, "
                           "the dataset is written.")
    i.add_argument("out", type=Path, metavar="OUT", help="the folder of `synthqa batch export`")
    i.add_argument("results", type=Path, nargs="+", metavar="RESULTS", help="results-*.jsonl of vllm run-batch")
    i.add_argument("--pdf-password", help="the password of encrypted PDFs, if the export needed one")
    i.add_argument("--no-progress", action="store_true", help="no progress bar")
    i.set_defaults(func=import_results)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def export(args: argparse.Namespace) -> int:
    from .. import pipeline

    config = new_config({**given_options(args), "batch": "files"}, "batch export")
    return show(pipeline.run_generate(config, log=log, progress=not getattr(args, "no_progress", False)), config)


def import_results(args: argparse.Namespace) -> int:
    from .. import pipeline
    from ..pipeline.batching import config_for_import

    given = {"pdf_password": args.pdf_password} if args.pdf_password else {}
    config = config_for_import(args.out, given)
    result = pipeline.run_generate(config, log=log, progress=not args.no_progress, results=tuple(args.results))
    return show(result, config)
