"""``synthqa export OUT --format beir|ragas|jsonl -o DIR``: the dataset for retrieval and RAG evaluation tools."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._options import add_out

HOW_TO_LOAD = {
    "beir": 'from beir.datasets.data_loader import GenericDataLoader\n'
            'corpus, queries, qrels = GenericDataLoader("{dest}").load(split="test")',
    "ragas": 'from ragas import EvaluationDataset\n'
             'dataset = EvaluationDataset.from_jsonl("{dest}/eval.jsonl")',
    "jsonl": 'from datasets import load_dataset\n'
             'pairs = load_dataset("json", data_files={{"eval": "{dest}/eval.jsonl"}})',
}


def register(subparsers) -> None:
    from ..export import FORMATS

    p = subparsers.add_parser(
        "export",
        help="write the dataset for BEIR, RAGAS or as plain JSONL",
        description="Write the dataset in a format evaluation tools load: BEIR (corpus, queries, qrels; eval is "
        "BEIR's test split), RAGAS (user_input, reference, reference_contexts; needs --answers) or plain JSONL.",
    )
    add_out(p, hub=True)
    p.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    p.add_argument("-o", "--output", dest="dest", type=Path, required=True,
                   help="folder to write into (new, empty, or an earlier export)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export import export_dataset

    done = export_dataset(args.out, args.format, args.dest)
    if done.pending:
        print(f"synthqa: {done.pending} decision(s) in curation.jsonl are not applied yet, so the export holds the "
              f"dataset without them: run `synthqa curate {args.out}`, then export again", file=sys.stderr)
    if done.without_answer:
        print(f"synthqa: {done.without_answer} question(s) without a reference answer were left out", file=sys.stderr)
    per_split = ", ".join(f"{n} {split}" for split, n in done.queries.items())
    print(f"exported {per_split} question(s) and {done.chunks} chunks to {done.dest} ({done.format}): "
          f"{', '.join(done.files)}")
    print("load it with:\n" + HOW_TO_LOAD[done.format].format(dest=done.dest))
    return 0
