"""``synthqa finetune OUT -o MODEL_DIR``: train an embedding model on the dataset, print before/after."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    parser = sub.add_parser(
        "finetune",
        help="fine-tune an embedding model on the train pairs and compare it with its base",
        description="Fine-tune a sentence-transformers model (default: the bundled all-MiniLM-L6-v2) with "
        "MatryoshkaLoss(MultipleNegativesRankingLoss) on OUT's train split; evaluate before and after on the "
        "eval split. Needs synthqa[eval]; downloads nothing when the base model is a folder.",
    )
    parser.add_argument("dataset", metavar="OUT", help="a synthqa output folder or a Hub dataset id")
    parser.add_argument("-o", "--output", dest="output_dir", type=Path, required=True,
                        help="new folder for the fine-tuned model")
    parser.add_argument("--base-model", default=None, help="model folder or Hub name (default: bundled MiniLM)")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (default: 5)")
    parser.add_argument("--batch-size", type=int, default=20, help="pairs per batch = in-batch negatives (default: 20)")
    parser.add_argument("--lr", type=float, default=2e-5, help="learning rate (default: 2e-5)")
    parser.add_argument("--max-seq-length", type=int, default=None, help="truncate texts to N tokens")
    parser.add_argument("--hard-negatives", type=int, default=0, help="mine N hard negatives per pair (default: 0)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after N steps (overrides --epochs)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..finetune import finetune, format_comparison

    result = finetune(args.dataset, args.output_dir, base_model=args.base_model, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, max_seq_length=args.max_seq_length,
                      hard_negatives=args.hard_negatives, max_steps=args.max_steps, seed=args.seed)
    print(format_comparison(result))
    print(f"model saved to {result.output_dir} (model card: {result.output_dir}/README.md)")
    return 0
