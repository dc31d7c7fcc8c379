"""The CLI's last line of defence: every failure is one line on stderr, a bug also leaves a crash log."""

from __future__ import annotations

import errno
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from synthqa.cli._errors import handle, redacted
from synthqa.cli import _signals
from synthqa.errors import OutputError


def raising(err: BaseException):
    def command(args):
        raise err

    return command


def test_a_bug_is_one_line_naming_the_crash_log_which_holds_the_traceback(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    (out / ".synthqa").mkdir(parents=True)
    monkeypatch.setattr(sys, "argv", ["synthqa", "generate", "docs", "-o", str(out), "--pdf-password", "hunter2",
                                      "--base-url", "https://u:pw@gw.example/v1?key=K"])
    code = handle(raising(RuntimeError("index out of whack")), SimpleNamespace(out=out))
    err = capsys.readouterr().err
    assert code == 70 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    log = out / ".synthqa" / "crash.log"
    assert str(log) in err and "RuntimeError: index out of whack" in err
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: index out of whack" in text
    assert "hunter2" not in text and "pw@" not in text and "key=K" not in text
    assert "--pdf-password ***" in text and "https://gw.example/v1" in text


def test_a_bug_outside_an_output_folder_writes_the_log_to_a_temp_file(capsys):
    assert handle(raising(KeyError("x")), SimpleNamespace()) == 70
    err = capsys.readouterr().err
    path = Path(err.split("the full traceback is in ")[1].split(" (")[0])
    assert path.exists() and "KeyError" in path.read_text()
    path.unlink()


@pytest.mark.parametrize(
    ("err", "needle", "code"),
    [
        (ImportError("Using RepoCard.from_template requires Jinja2"), "reinstall synthqa", 1),
        (ModuleNotFoundError("No module named 'pyarrow'", name="pyarrow"), "(pyarrow)", 1),
        (OSError(errno.ENOSPC, "No space left on device", "/data/out/x.parquet"), "free disk space", 1),
        (MemoryError(), "out of memory", 1),
        (OutputError("OUT is a file: choose a folder"), "OUT is a file", 1),
    ],
)
def test_known_failures_are_one_line_without_a_crash_log(err, needle, code, capsys):
    assert handle(raising(err), SimpleNamespace()) == code
    out = capsys.readouterr().err
    assert needle in out and len(out.strip().splitlines()) == 1 and "crash" not in out


@pytest.mark.parametrize(("received", "code"), [([], 130), ([signal.SIGTERM], 143)])
def test_interruptions_exit_with_the_signals_status(received, code, capsys, monkeypatch):
    monkeypatch.setattr(_signals, "_received", received)
    assert handle(raising(KeyboardInterrupt()), SimpleNamespace()) == code
    assert capsys.readouterr().err.strip() == "synthqa: interrupted"


def test_redacted_hides_secret_options_in_both_spellings():
    argv = ["synthqa", "push", "--token", "hf_abc", "--token=hf_def", "--pdf-password=pw", "x"]
    assert redacted(argv) == ["synthqa", "push", "--token", "***", "--token=***", "--pdf-password=***", "x"]
