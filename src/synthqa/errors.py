"""The exception tree. Every error synthqa raises on purpose is a ``SynthQAError``.

    SynthQAError                 base; ``str(err)`` is one line a user can act on
    ├── ConfigError              an option value is invalid (raised before any work)
    ├── InputError               nothing usable in the inputs (each bad file is only a warning)
    ├── PromptError              a prompt template is missing, unreadable or lacks a variable
    ├── OutputError              OUT is unusable: a file, holds another run's data, disk full …
    ├── EndpointError            the LLM endpoint cannot be used at all (down, 401, 404 model)
    │   └── LocalModelError      the embedded llama.cpp backend could not start or died
    ├── CacheError               the SQLite cache is corrupt or cannot be written
    ├── DatasetError             a folder does not follow the output contract
    ├── WorkerError              a worker process of a stage after asking died (--workers)
    └── HubError                 pushing to the Hub failed (bad repo id, no token …)

The CLI maps each class to an exit code and prints ``str(err)`` alone — never a traceback — so messages
must name the file, value or setting and what to do. Messages never contain secrets.
"""

from __future__ import annotations


class SynthQAError(Exception):
    """Base of every deliberate synthqa error."""

    exit_code = 1


class ConfigError(SynthQAError):
    """An option value is invalid; raised before any work starts."""

    exit_code = 2


class InputError(SynthQAError):
    """The inputs hold nothing usable (empty, or every file was skipped)."""


class PromptError(SynthQAError):
    """A prompt template is missing, unreadable, or lacks a required variable."""

    exit_code = 2


class OutputError(SynthQAError):
    """The output folder cannot be used as asked."""


class EndpointError(SynthQAError):
    """The LLM endpoint is unusable as a whole (unreachable, unauthorised, unknown model)."""

    exit_code = 3


class LocalModelError(EndpointError):
    """The embedded llama.cpp server could not be started, or died."""


class CacheError(SynthQAError):
    """The SQLite cache cannot be read or written."""


class DatasetError(SynthQAError):
    """A folder or Hub id does not follow synthqa's output contract."""


class WorkerError(SynthQAError):
    """A worker process of a stage after asking died (out of memory, a crash in a C library)."""


class HubError(SynthQAError):
    """Talking to the Hugging Face Hub failed."""
