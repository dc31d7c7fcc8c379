"""Where questions are asked: resolve the endpoint before any work, then ask through one async client."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlparse

from .. import live
from ..config import DEFAULT_MODEL, GenerateConfig
from ..errors import ConfigError, LocalModelError
from ..records import Answer
from .progress import Log


@dataclass(frozen=True)
class Endpoint:
    """Where questions are asked: a remote OpenAI-compatible URL, or the embedded model (started later)."""

    local: bool
    model: str
    base_url: str | None
    mode: str
    concurrency: int
    files: bool = False  # requests files for vllm run-batch: no endpoint is asked by synthqa

    @property
    def host(self) -> str:
        if self.files:
            return "vllm run-batch (batch files)"
        if self.local:
            return "127.0.0.1 (embedded llama.cpp)"
        return urlparse(self.base_url).hostname if self.base_url else "api.openai.com"


def resolve_endpoint(config: GenerateConfig, log: Log) -> Endpoint:
    """Decide remote or local before any work, so the cache key names the model really used."""
    base_url = config.base_url or os.environ.get("OPENAI_BASE_URL") or None
    if config.batch:
        return _batch_endpoint(config, base_url)
    use_local = config.local or config.local_model is not None or not (os.environ.get("OPENAI_API_KEY") or base_url)
    if use_local and config.remote_only:
        raise ConfigError(
            f"this run asked {config.model or DEFAULT_MODEL} at api.openai.com: set OPENAI_API_KEY to ask it "
            "again (or pass --base-url)"
        )
    if not use_local:
        mode = "json_schema" if config.response_format == "auto" else config.response_format
        return Endpoint(False, config.model or DEFAULT_MODEL, base_url, mode, config.concurrency)
    from .. import local

    if not (config.local or config.local_model) and not config.dry_run:
        log("no OPENAI_API_KEY or --base-url given: using the embedded local model (offline); see --local-model")
    mode = "json_object" if config.response_format == "auto" else config.response_format
    # llama.cpp's server answers one request at a time: more in flight would only queue there.
    return Endpoint(True, local.model_name(config.local_model), None, mode, 1)


def _batch_endpoint(config: GenerateConfig, base_url: str | None) -> Endpoint:
    """The endpoint of a batch run: never the embedded model; vllm run-batch needs the model it serves."""
    mode = "json_schema" if config.response_format == "auto" else config.response_format
    if config.batch == "files":
        if not config.model:
            raise ConfigError("batch export needs --model: the name vllm run-batch serves, e.g. "
                              "--model Qwen/Qwen2.5-7B-Instruct")
        return Endpoint(False, config.model, None, mode, config.concurrency, files=True)
    if not (os.environ.get("OPENAI_API_KEY") or base_url):
        raise ConfigError("--batch needs a Batch API: set OPENAI_API_KEY (or pass --base-url); for your own GPUs "
                          "write files for vllm run-batch with `synthqa batch export`")
    return Endpoint(False, config.model or DEFAULT_MODEL, base_url, mode, config.concurrency)


async def ask_all(config: GenerateConfig, template, endpoint: Endpoint, todo: AsyncIterator | Iterable,
                  on_answer: Callable, on_ready: Callable[[], None] = lambda: None) -> None:
    """Ask the endpoint (remote, or the embedded model started here) for every chunk ``todo`` yields (or
    every (chunk, style plan) pair: see ``live.generate``).

    Progress is the caller's to show (``on_answer`` runs as each answer arrives; ``on_ready`` once, when the
    endpoint can be asked: after the embedded model's server has started)."""
    with contextlib.ExitStack() as stack:
        base_url, api_key = endpoint.base_url, os.environ.get("OPENAI_API_KEY") or "not-needed"
        checked = on_answer
        if endpoint.local:
            from .. import local

            log_path = config.out / ".synthqa" / "llama-server.log"
            server = stack.enter_context(
                local.local_endpoint(config.local_model, threads=config.local_threads, log_path=log_path)
            )
            base_url, api_key = server.base_url, server.api_key

            def checked(chunk, answer: Answer) -> None:
                # A dead server fails every chunk after it: stop, without storing this non-answer.
                if not answer.ok and not server.server.alive():
                    raise LocalModelError(
                        f"the embedded model server stopped mid-run: {server.server.death()} (log: {log_path}); "
                        "answers so far are cached: rerun the same command to resume"
                    )
                on_answer(chunk, answer)

        on_ready()
        client = live.make_client(
            base_url=base_url,
            api_key=api_key,
            timeout=config.timeout,
            max_retries=config.max_retries,
            concurrency=endpoint.concurrency,
        )
        try:
            await live.generate(
                todo,
                client=client,
                template=template,
                n=config.asked_count(),
                model=endpoint.model,
                temperature=config.temperature,
                concurrency=endpoint.concurrency,
                max_attempts=config.max_attempts,
                mode=endpoint.mode,
                rpm=config.rpm,
                tpm=config.tpm,
                on_answer=checked,
                progress=False,
                answers=config.answers,
            )
        finally:
            await client.close()
