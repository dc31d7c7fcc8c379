"""``synthqa push OUT REPO_ID``: share an output folder as a Hugging Face dataset."""

from __future__ import annotations

import argparse
import sys

from ..hub import push_dataset
from ._options import add_out


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "push",
        help="upload an output folder to the Hugging Face Hub as a dataset",
        description="Upload OUT (card, manifest, parquet files; never the .synthqa/ cache) to a Hub dataset repo.",
    )
    add_out(p, hub=False)
    p.add_argument("repo_id", metavar="REPO_ID", help="dataset repository, e.g. your-name/policy-qa")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--dry-run", action="store_true", help="list the files and print the card; upload nothing")
    p.add_argument("--token", default=None, help="Hugging Face token (default: HF_TOKEN or the saved login)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = push_dataset(args.out, args.repo_id, private=args.private, token=args.token, dry_run=args.dry_run)
    if result.dry_run:
        print(f"would upload {len(result.files)} files ({_size(result.total_bytes)}) to "
              f"datasets/{result.repo_id} ({'private' if result.private else 'public'}):")
        for f in result.files:
            print(f"  {f.size:>12,}  {f.path}")
        if not result.token_found:
            print("note: no Hugging Face token found; a real push needs --token, HF_TOKEN or `hf auth login`",
                  file=sys.stderr)
        print("\n--- README.md ---")
        print(result.card)
        return 0
    print(f"pushed {len(result.files)} files ({_size(result.total_bytes)}) to {result.url}")
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
