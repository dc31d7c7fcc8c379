"""``synthqa report OUT -o report.html``: one self-contained HTML file about a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._options import add_out


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report (plots, searchable pairs, failures)",
        description="Write one HTML file that opens offline: summary, plots, a searchable table of pairs, failures.",
    )
    add_out(p, hub=True)
    p.add_argument("-o", "--output", type=Path, default=Path("report.html"), help="HTML file (default: report.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import OutputError
    from ..report import write_report

    if args.output.is_dir():
        raise OutputError(f"-o {args.output} is a folder: name an .html file, e.g. {args.output / 'report.html'}")
    if not args.output.parent.exists():
        raise OutputError(f"-o {args.output}: folder {args.output.parent} does not exist; create it first")
    path = write_report(args.out, args.output)
    print(f"report written to {path}")
    return 0
