"""llama.cpp's OpenAI-compatible server as a child process that never outlives us."""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import LocalModelError
from .weights import INSTALL_HINT, model_name, resolve_model

REBUILD_HINT = ("rebuild it portably: CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" pip install --force-reinstall --no-cache-dir "
                "--no-deps llama-cpp-python")
_SERVER_MODULES = ("uvicorn", "fastapi", "sse_starlette", "pydantic_settings", "starlette_context")

_CHILD = """\
import os, runpy, sys, threading
def _watch():
    try:  # os.read, not sys.stdin: a buffered read would hold a lock that breaks interpreter shutdown
        while os.read(0, 4096):
            pass
    finally:
        os._exit(0)
threading.Thread(target=_watch, daemon=True).start()
from llama_cpp.server.settings import Settings
for key in list(os.environ):  # its settings also read env vars (API_KEY, PORT …): only our flags count
    if key.lower() in Settings.model_fields or key in ("CONFIG_FILE", "HOST", "PORT"):
        del os.environ[key]
sys.argv = ["llama_cpp.server", *sys.argv[1:]]
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""

_LIVE: set[LocalServer] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop()


class LocalServer:
    """llama.cpp's OpenAI-compatible server as a child process on a free 127.0.0.1 port.

    Use as a context manager; ``base_url`` ends in ``/v1``. The child runs in its own process group (a
    terminal's Ctrl-C reaches only us, and we stop it in order) and is stopped on exit, error, Ctrl-C and
    interpreter exit. Requests are served one at a time: use concurrency 1.
    """

    def __init__(
        self,
        model_path: Path | str,
        threads: int = 1,
        n_ctx: int = 4096,
        log_path: Path | str | None = None,
        model_name: str | None = None,
        startup_timeout: float = 180.0,
    ) -> None:
        self.model_path = Path(model_path)
        self.threads = threads
        self.n_ctx = n_ctx
        self.model_name = model_name or self.model_path.stem
        self.startup_timeout = startup_timeout
        self._log_given = log_path is not None
        self.log_path = Path(log_path) if log_path is not None else None
        self.port: int | None = None
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        """True while the server process runs (it can die mid-run: out of memory, killed)."""
        return self.process is not None and self.process.poll() is None

    def death(self) -> str:
        """Why the server process ended, as a phrase a user can act on ("" while it runs)."""
        code = self.process.poll() if self.process is not None else None
        if code is None:
            return ""
        if code == -signal.SIGILL:
            return ("it died of an illegal CPU instruction (SIGILL): llama-cpp-python was compiled for CPU "
                    f"features this machine does not really have (some VMs report AMX or AVX-512); {REBUILD_HINT}")
        if code == -signal.SIGKILL:
            return "it was killed (SIGKILL; out of memory?)"
        if code < 0:
            return f"it was ended by signal {signal.Signals(-code).name}"
        return f"it exited with status {code}"

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        """Start the child and wait until ``/v1/models`` answers; ``LocalModelError`` if it cannot."""
        _require_llama_cpp()
        if not self.model_path.is_file():
            raise LocalModelError(f"model file {self.model_path} does not exist")
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="synthqa-llama-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):  # the free port can be taken between our probe and the child's bind
            self._spawn()
            try:
                self._wait_ready()
                return
            except LocalModelError:
                clash = "address already in use" in self._log_tail().lower()
                self.stop(keep_log=True)
                if not clash or attempt == 2:
                    raise

    def stop(self, keep_log: bool = False) -> None:
        """Stop the child: close its stdin (it exits), then SIGTERM its group, then SIGKILL. Idempotent."""
        _LIVE.discard(self)
        proc, self.process = self.process, None
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            for sig, wait in ((None, 2.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                if sig is not None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, sig)
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if not (keep_log or self._log_given) and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def _spawn(self) -> None:
        self.port = _free_port()
        args = [
            sys.executable, "-c", _CHILD,
            "--model", str(self.model_path), "--model_alias", self.model_name,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", str(self.n_ctx), "--n_threads", str(self.threads),
            "--n_threads_batch", str(self.threads),
            # per-token logits for the whole prompt cost ~2.5 GB at n_ctx 4096 and slow prompt reading;
            # synthqa never asks for logprobs.
            "--logits_all", "false",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                args, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        _LIVE.add(self)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise LocalModelError(
                    f"the local model server stopped while starting ({self.model_path.name}):"
                    f" {self._log_tail()} (full log: {self.log_path}); check that the file is a complete GGUF"
                    " model that llama.cpp supports"
                )
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise LocalModelError(
            f"the local model server did not answer within {self.startup_timeout:.0f} s"
            f" (log: {self.log_path}); the machine may be overloaded — try again or use --base-url"
        )

    def _log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, AttributeError):
            return "(no log)"
        found = [line.strip() for line in text.splitlines() if line.strip()]
        # llama.cpp is verbose; the lines that say what went wrong mention an error or a failure.
        errors = [line for line in found if "error" in line.lower() or "fail" in line.lower()]
        return " | ".join((errors or found)[-lines:]) or "(empty log)"


@dataclass(frozen=True)
class LocalEndpoint:
    """What the openai code path needs to talk to the embedded server."""

    base_url: str
    model: str
    model_path: Path
    server: LocalServer
    api_key: str = "local"

    def __iter__(self):
        """Unpacks as ``base_url, model``."""
        return iter((self.base_url, self.model))


@contextlib.contextmanager
def local_endpoint(
    spec: str | None = None, threads: int | None = None, log_path: Path | None = None
) -> Iterator[LocalEndpoint]:
    """Resolve ``--local-model``, start the server, and yield its endpoint; the server stops on leaving."""
    path = resolve_model(spec)
    name = model_name(spec)
    with LocalServer(path, threads=threads or 1, log_path=log_path, model_name=name) as server:
        yield LocalEndpoint(server.base_url, name, path, server)


def _require_llama_cpp() -> None:
    # find_spec looks without importing: llama_cpp loads a large shared library we only need in the child.
    missing = [m for m in ("llama_cpp", *_SERVER_MODULES) if importlib.util.find_spec(m) is None]
    if missing:
        raise LocalModelError(
            f"the embedded model needs llama-cpp-python[server] ({missing[0]} is missing): {INSTALL_HINT}"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
