"""Option types shared by the commands: each refuses a bad value with one line naming the fix."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def _number(kind: type, name: str, ok: Callable[[float], bool], rule: str) -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {name}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{value} must be {rule}")
        return value

    parse.__name__ = name.replace(" ", "_")  # argparse names the type in its messages
    return parse


positive_int = _number(int, "a whole number", lambda v: v >= 1, "at least 1")
nonneg_int = _number(int, "a whole number", lambda v: v >= 0, "0 or more")
positive_float = _number(float, "a number", lambda v: v > 0, "more than 0")


def add_out(parser: argparse.ArgumentParser, *, hub: bool, dest: str = "out") -> None:
    """The positional OUT: a `synthqa generate` output folder, or also a Hub dataset id where ``hub``."""
    if hub:  # a string: a Hub id is not a path, and the command decides which one it was given
        parser.add_argument(dest, metavar="OUT", help="output folder of `synthqa generate`, or a Hub dataset id")
    else:
        parser.add_argument(dest, metavar="OUT", type=Path, help="output folder of `synthqa generate`")
