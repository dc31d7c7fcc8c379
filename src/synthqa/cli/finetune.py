"""``synthqa finetune OUT -o MODEL_DIR``: train an embedding model on the dataset, print before/after."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import NEGATIVE_MARGIN, NEGATIVE_RANGE_MIN
from ..retrieval import CORPUS_CHOICES, DEFAULT_CORPUS
from ._options import add_out, nonneg_int, positive_int


def register(sub) -> None:
    parser = sub.add_parser(
        "finetune",
        help="fine-tune an embedding model on the train pairs and compare it with its base",
        description="Fine-tune a sentence-transformers model (default: the bundled all-MiniLM-L6-v2) with "
        "MatryoshkaLoss(MultipleNegativesRankingLoss) on OUT's train split; evaluate before and after on the "
        "eval split. Needs synthqa[eval]; downloads nothing when the base model is a folder.",
    )
    add_out(parser, hub=True, dest="dataset")
    parser.add_argument("-o", "--output", dest="output_dir", type=Path, required=True,
                        help="new folder for the fine-tuned model")
    parser.add_argument("--base-model", default=None, help="model folder or Hub name (default: bundled MiniLM)")
    parser.add_argument("--epochs", type=positive_int, default=5, help="training epochs (default: 5)")
    parser.add_argument("--batch-size", type=positive_int, default=20,
                        help="pairs per batch = in-batch negatives (default: 20)")
    parser.add_argument("--lr", type=float, default=2e-5, help="learning rate (default: 2e-5)")
    parser.add_argument("--max-seq-length", type=positive_int, default=None, help="truncate texts to N tokens")
    parser.add_argument("--max-steps", type=positive_int, default=None, help="stop after N steps (overrides --epochs)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    parser.add_argument("--corpus", default=DEFAULT_CORPUS, choices=CORPUS_CHOICES,
                        help="what the eval questions search before, during and after training: all (default: every "
                        "chunk, those never asked about included, as the model will be used) or split (the eval "
                        "split's asked chunks, as synthqa 0.1.0 measured)")
    p = parser.add_argument_group("prompts (default: those the base model declares, as encode_query uses them)")
    p.add_argument("--query-prompt", metavar="TEXT", default=None,
                   help="prepended to every question in training and evaluation, and saved with the model ('' for none)")
    p.add_argument("--document-prompt", metavar="TEXT", default=None,
                   help="prepended to every chunk likewise ('' for none)")
    n = parser.add_argument_group("hard negatives")
    n.add_argument("--hard-negatives", type=nonneg_int, default=0, metavar="N",
                   help="mine N hard negatives per pair with the base model (default: 0)")
    n.add_argument("--negative-margin", type=float, default=NEGATIVE_MARGIN, metavar="F",
                   help=f"keep a negative only below (1 - F) x the positive's score (default: {NEGATIVE_MARGIN})")
    n.add_argument("--negative-range-min", type=nonneg_int, default=NEGATIVE_RANGE_MIN, metavar="K",
                   help=f"skip the K best-scoring candidates (default: {NEGATIVE_RANGE_MIN})")
    h = parser.add_argument_group("sharing")
    h.add_argument("--push-to-hub", metavar="REPO_ID", help="push the model to this Hub model repo when done")
    h.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    h.add_argument("--token", default=None, help="Hugging Face token (default: HF_TOKEN or the saved login)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..finetune import finetune, format_comparison

    def log(line: str) -> None:
        tqdm.write(f"synthqa: {line}", file=sys.stderr)  # above the bar, never through it

    options = {k: v for k, v in vars(args).items() if k not in ("dataset", "output_dir", "func", "command", "no_progress")}
    result = finetune(args.dataset, args.output_dir, log=log, progress=not args.no_progress, **options)
    print(format_comparison(result))
    print(f"model saved to {result.output_dir} (model card: {result.output_dir}/README.md, "
          f"training log: {result.log_path})")
    if result.url:
        print(f"pushed to {result.url}")
    return 0
