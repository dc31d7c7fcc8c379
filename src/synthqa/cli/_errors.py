"""One table from library errors to the line a user sees and the exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable

from ..errors import SynthQAError

EXIT_INTERRUPTED = 130


def handle(func: Callable, args) -> int:
    """Run a command; turn synthqa errors and Ctrl-C into one line on stderr and an exit code."""
    try:
        return int(func(args) or 0)
    except SynthQAError as err:
        print(f"synthqa: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("synthqa: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `synthqa inspect | head` is normal use
        return 0
