"""The ``synthqa`` command: argparse front-end, one module per subcommand.

Each subcommand module exposes ``register(subparsers)`` which adds its parser and sets ``func`` to a
function ``(args) -> int``. Commands parse, call one library function, and print; errors go through
``_errors.handle`` so a user sees one line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ._errors import handle, interrupted
from ._signals import install_handlers

# Order is the order of the data flow, which is also the order of `synthqa --help`.
COMMANDS = ("generate", "batch", "inspect", "report", "review", "curate", "export", "push", "evaluate", "finetune")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthqa",
        description="Turn policy PDFs into a synthetic retrieval-training dataset (question, chunk pairs).",
    )
    parser.add_argument("--version", action="version", version=f"synthqa {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:  # a command still being written must not break the others
            if err.name != f"{__name__}.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    install_handlers()
    try:
        parser = build_parser()  # imports every command (about a second): a Ctrl-C here is one line too
        args = parser.parse_args(argv)
    except KeyboardInterrupt as interrupt:
        return interrupted(interrupt)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return handle(args.func, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
