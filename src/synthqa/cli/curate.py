"""``synthqa curate OUT``: apply a person's decisions (``OUT/curation.jsonl``, from ``synthqa review``)."""

from __future__ import annotations

import argparse
import sys

from ._options import add_out


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "curate",
        help="apply the decisions of `synthqa review`: rejected pairs leave, edited questions go in",
        description="Rewrite the dataset in OUT with the decisions in OUT/curation.jsonl: rejected pairs are left "
        "out, edited questions replace theirs (checked by the question filters), no chunk changes split. Asks "
        "nothing and needs no inputs; `synthqa generate` reruns apply the same decisions.",
    )
    add_out(p, hub=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..curate import CURATION_FILE, describe
    from ..pipeline.curation import curate

    def log(line: str) -> None:
        print(f"synthqa: {line}", file=sys.stderr)

    manifest = curate(args.out, log)
    if manifest.curation is None:
        print(f"no decisions in {args.out / CURATION_FILE}: make them with `synthqa review {args.out}`")
        return 0
    c = manifest.counts
    print(f"curated {args.out}: {describe(manifest.curation)}")
    print(f"train / eval pairs now {c.train_pairs} / {c.eval_pairs}")
    if not c.questions:
        log("no pair is left: the dataset has only its corpus config (`load_dataset(OUT)` fails until a pair "
            "comes back)")
    elif not c.eval_pairs and c.eval_chunks:
        log("no eval pair is left: `load_dataset(OUT)` gives the train split only (the eval chunks stay in corpus)")
    return 0
