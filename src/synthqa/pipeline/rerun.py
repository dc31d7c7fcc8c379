"""Runs into an existing OUT: refuse to mix datasets or touch foreign folders, and rebuild a run's config
for ``--retry-failed`` from what it recorded."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

from .. import dataset, prompts
from ..cache import CACHE_DIRNAME
from ..config import DATASET_SETTINGS, GenerateConfig, input_name
from ..errors import ConfigError, DatasetError, OutputError
from ..manifest import Manifest
from .asking import Endpoint

CONFIG_FIELDS = frozenset(f.name for f in fields(GenerateConfig))


def check_out(config: GenerateConfig, template: prompts.PromptTemplate, endpoint: Endpoint) -> None:
    """Refuse to mix a new run into a folder holding another run's dataset, or to write into someone else's
    folder at all (``--overwrite`` replaces synthqa's own output, never foreign files)."""
    out = config.out
    if not out.exists() or config.dry_run:
        return
    if not is_synthqa_output(out):
        raise OutputError(
            f"{out} is not empty and is not a synthqa output: choose an empty or new folder for -o "
            "(--overwrite only replaces a dataset synthqa wrote)"
        )
    if not (out / dataset.MANIFEST).exists():
        return  # a run that was interrupted before writing: resuming it is the point
    try:
        old = dataset.read_manifest(out)
    except DatasetError as err:
        if config.overwrite:
            return
        raise OutputError(f"{out} holds a dataset this synthqa cannot compare with ({err})") from None
    diffs = setting_changes(old, config, template, endpoint)
    if diffs and not config.overwrite:
        raise OutputError(
            f"{out} holds a dataset made with other settings ({'; '.join(diffs)}): "
            "pass --overwrite to replace it (answers cached for the same chunk text, prompt, model and question count "
            "are reused), or choose another -o"
        )


def is_synthqa_output(out: Path) -> bool:
    """True for an empty folder, or one that synthqa wrote (its cache folder, or a manifest it wrote)."""
    if not any(out.iterdir()) or (out / CACHE_DIRNAME).is_dir():
        return True
    try:
        data = json.loads((out / dataset.MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "synthqa_version" in data


def setting_changes(old: Manifest, config: GenerateConfig, template: prompts.PromptTemplate,
                    endpoint: Endpoint) -> list[str]:
    """What differs between the dataset in OUT and the run ``config`` would make, one phrase each."""
    new = config.public_options()
    diffs = [
        f"{key} {getattr(old.options, key)!r} → {getattr(new, key)!r}"
        for key in DATASET_SETTINGS
        if getattr(old.options, key) != getattr(new, key)
    ]
    recorded = dataset.read_run_settings(config.out)
    old_inputs = recorded.inputs if recorded else old.options.inputs
    new_inputs = config.run_settings().inputs if recorded else new.inputs
    if tuple(old_inputs) != tuple(new_inputs):
        diffs.append(f"inputs {', '.join(map(input_name, map(Path, old_inputs)))} → "
                     f"{', '.join(map(input_name, config.inputs))}")
    if old.model != endpoint.model:
        diffs.append(f"model {old.model!r} → {endpoint.model!r}")
    if old.prompt.sha256 != template.sha256:
        diffs.append("prompt template changed")
    return diffs


def config_for_retry(out: Path, given: dict) -> GenerateConfig:
    """The config of the run in ``out``, to ask again for its failed chunks; options given now win.

    Secrets are never stored, so what needs one (encrypted PDFs, a --base-url carrying a key) must be given
    again; a run that asked a remote endpoint is never silently retried on the embedded model.
    """
    out = Path(out)
    manifest = dataset.read_manifest(out)
    recorded = dataset.read_run_settings(out)
    opts = asdict(manifest.options)
    kwargs = {k: v for k, v in opts.items() if k in CONFIG_FIELDS and k not in ("inputs", "prompt_path")}
    kwargs["inputs"] = tuple(recorded.inputs if recorded else opts["inputs"])
    if opts["prompt_path"] is not None:
        if recorded is None or recorded.prompt_path is None:
            _need(given, "prompt_path", f"the run in {out} used --prompt {opts['prompt_path']}: pass --prompt again")
        else:
            kwargs["prompt_path"] = Path(recorded.prompt_path)
    if manifest.options.pdf_password_given:
        _need(given, "pdf_password", f"the run in {out} opened encrypted PDFs with --pdf-password, which synthqa "
                                     "never stores: pass --pdf-password again with --retry-failed")
    if recorded is not None and recorded.base_url_had_credentials:
        _need(given, "base_url", f"the run in {out} used a --base-url carrying credentials, which synthqa never "
                                 "stores: pass --base-url again with --retry-failed")
    # Ask the same model as before, or the cache keys (and so the answers kept) would not match.
    if manifest.local:
        kwargs["local"] = True
    else:
        kwargs["model"] = manifest.model
        kwargs["remote_only"] = True
    kwargs.update(given)
    kwargs.update(out=out, retry_failed=True)
    missing = [str(p) for p in kwargs["inputs"] if not Path(p).exists()]
    if missing:
        raise ConfigError(
            f"the run in {out} read {', '.join(missing)}, which is not here: name the INPUTs again after "
            f"--retry-failed {out}"
        )
    return GenerateConfig(**kwargs)


def _need(given: dict, key: str, message: str) -> None:
    if given.get(key) is None:
        raise ConfigError(message)
