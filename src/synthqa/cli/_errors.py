"""One table from failures to the line a user sees and the exit code.

synthqa's own errors (``errors.py``) carry their message and exit code. Failures of the environment that
are not bugs (a missing package, no memory, a file the OS refused) get one line saying what to do. Any
other exception is a bug: one line, plus the file where the full traceback was written for a report.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from ..config import public_url
from ..errors import SynthQAError
from ._signals import exit_code

CRASH_LOG = "crash.log"


def _missing_package(err: ImportError) -> str:
    what = err.name or str(err).splitlines()[0]
    return (f"a package synthqa needs is missing or broken ({what}): reinstall synthqa with the extras you use, "
            "e.g. pip install --force-reinstall 'synthqa[local]'")


def _os_error(err: OSError) -> str:
    where = f"{err.filename}: " if err.filename else ""
    return f"{where}{err.strerror or err}: check the path, its permissions and the free disk space"


# (exception type, message, exit code); the first match wins, so subclasses come first.
KNOWN: tuple[tuple[type[BaseException], Callable[[BaseException], str], int], ...] = (
    (ImportError, _missing_package, 1),
    (MemoryError, lambda err: "out of memory: use --limit, fewer inputs at a time, or a machine with more RAM", 1),
    (OSError, _os_error, 1),
)


def handle(func: Callable, args) -> int:
    """Run a command; every failure becomes one line on stderr and an exit code, never a traceback."""
    try:
        return int(func(args) or 0)
    except SynthQAError as err:
        return _say(str(err), err.exit_code)
    except KeyboardInterrupt as interrupt:  # Ctrl-C or SIGTERM (see _signals)
        return interrupted(interrupt)
    except BrokenPipeError:  # `synthqa inspect | head` is normal use
        return 0
    except Exception as err:  # noqa: BLE001 — the last line of defence
        for kind, message, code in KNOWN:
            if isinstance(err, kind):
                return _say(message(err), code)
        path = write_crash_log(err, _crash_folder(args))
        return _say(f"unexpected error {type(err).__name__}: {_first_line(err)} — this is a bug in synthqa "
                    f"{__version__}; the full traceback is in {path} (please attach it when you report it)",
                    70)


def interrupted(interrupt: KeyboardInterrupt) -> int:
    """Ctrl-C or SIGTERM: one line (with what the command said of its work, when it did), and the exit code
    that says which."""
    print("synthqa: interrupted" + (f": {interrupt.args[0]}" if interrupt.args else ""), file=sys.stderr)
    return exit_code(interrupt)


def _say(message: str, code: int) -> int:
    print(f"synthqa: error: {message}", file=sys.stderr)
    return code


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else "(no message)"


def _crash_folder(args) -> Path | None:
    """OUT/.synthqa when the command names an output folder synthqa wrote, else None (a temp file)."""
    for name in ("out", "dataset", "retry_failed"):
        value = getattr(args, name, None)
        if value and (Path(value) / ".synthqa").is_dir():
            return Path(value) / ".synthqa"
    return None


SECRET_OPTIONS = ("--pdf-password", "--token")


def redacted(argv: list[str]) -> list[str]:
    """``argv`` with the values of secret options hidden and credentials cut from URLs."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        name, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        if hide_next:
            out.append("***")
        elif eq and name in SECRET_OPTIONS:
            out.append(f"{name}=***")
        elif "://" in value:
            out.append(f"{name}{eq}{public_url(value)}")
        else:
            out.append(arg)
        hide_next = arg in SECRET_OPTIONS
    return out


def write_crash_log(err: BaseException, folder: Path | None) -> Path:
    """Write the traceback of ``err`` with the command line and versions; returns the file's path."""
    text = (f"synthqa {__version__} on Python {sys.version.split()[0]}, {dt.datetime.now().isoformat()}\n"
            f"command: {' '.join(redacted(sys.argv))}\n\n" + "".join(traceback.format_exception(err)))
    if folder is not None:
        try:
            path = folder / CRASH_LOG
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            pass
    fd, name = tempfile.mkstemp(prefix="synthqa-crash-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(name)
