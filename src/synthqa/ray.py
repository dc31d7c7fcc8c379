"""``synthqa generate`` on a Ray cluster: reading, chunking and asking fan out as Ray Data transforms.

Ray Data runs the per-chunk stages where the cores are: every file is read and chunked on a worker with
synthqa's own reader (``pipeline.reading.read_file``: cleaning, OCR, the chunk filters, the language), each
chunk's cache key is computed there (``pipeline.cache_key``), and batches of chunks are asked through the
same live transport as a single-machine run (``pipeline.asking.ask_all``: the same prompt, parser, re-asks
and language check) at an OpenAI-compatible endpoint every node can reach (vLLM in production). Answers
stream back to the driver, which commits each one to ``OUT/.synthqa/cache.sqlite`` as it arrives (a killed
run loses nothing), then runs the normal pipeline (``run_generate``): it re-reads the inputs, finds every
chunk answered, asks only what failed in transport again, and runs the global steps (duplicates, round
trip, split, card) on the driver. The dataset is thus the one ``synthqa generate`` writes, by construction.

    from synthqa.config import GenerateConfig
    from synthqa.ray import generate_on_ray
    generate_on_ray(GenerateConfig(inputs=("pdfs",), out="out", base_url="http://vllm:8000/v1", model=M),
                    address="auto")
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from . import pdfs, prompts, styles
from .cache import Cache, cache_path
from .config import GenerateConfig
from .errors import ConfigError, EndpointError, SynthQAError
from .pipeline import DryRun, RunResult, cache_key, run_generate
from .pipeline.asking import Endpoint, ask_all, resolve_endpoint
from .pipeline.progress import Log, Progress
from .pipeline.reading import FileTask, read_file
from .pipeline.rerun import check_out
from .records import Answer, Chunk, Usage
from .styles import StylePlan

__all__ = ["ClusterAsking", "ask_on_ray", "generate_on_ray"]
ASK_BATCH = 64  # chunks per ask task: big enough to keep --concurrency requests in flight, small enough to stream
CONNECT_TIMEOUT = 10.0  # seconds to reach a cluster's head before saying it is not there


@dataclass(frozen=True)
class ClusterAsking:
    """What the cluster did: chunks it asked, answers committed, transport failures left for the driver."""

    asked: int
    committed: int
    transient: int
    usage: Usage
    seconds: float


def generate_on_ray(config: GenerateConfig, *, address: str | None = None, ask_tasks: int | None = None,
                    log: Log = print, progress: bool = True) -> RunResult | DryRun:
    """``run_generate`` with reading, chunking and asking fanned out on Ray; the same output folder.

    ``address`` is ``ray.init``'s: None starts a local instance (or joins ``RAY_ADDRESS``), ``"auto"`` joins
    the cluster this machine belongs to, ``"ray://HEAD:10001"`` a remote one; when Ray is already initialised
    it is used as it is. ``ask_tasks`` ask tasks run at once (default: the cluster's CPUs), each with
    ``config.concurrency`` requests in flight; ``--rpm``/``--tpm`` are shared out between them.
    """
    if config.dry_run:  # counting needs no cluster
        return run_generate(config, log, progress)
    plans = styles.load_plans(config.style_mix, config.prompt_path, config.spare_questions)
    template = styles.main_template(plans)
    endpoint = resolve_endpoint(config, lambda line: None)  # its "using the embedded model" line is not so here
    if endpoint.local:
        raise ConfigError("--ray asks a served model, not the embedded one: pass --base-url (e.g. vLLM's "
                          "http://HOST:8000/v1, reachable from every node) and --model")
    check_out(config, template, endpoint)  # a folder holding another run's dataset is refused before any work
    if config.push_to_hub:
        from . import hub

        hub.check_can_push(config.push_to_hub)
    ray = _ray()
    started = _connect(ray, address, log)
    since = time.time()
    try:
        asked = ask_on_ray(config, plans, endpoint, ask_tasks=ask_tasks, log=log, progress=progress)
    finally:
        if started:
            ray.shutdown()
    # every chunk is answered now: the single-machine run writes (and pushes) the dataset, counting the cluster's
    # requests and time as its own
    return run_generate(config, log, progress, asked_before=asked.usage, ask_seconds_before=asked.seconds,
                        answered_since=since)


def ask_on_ray(config: GenerateConfig, plans: tuple[StylePlan, ...], endpoint: Endpoint, *,
               ask_tasks: int | None = None, log: Log = print, progress: bool = True) -> ClusterAsking:
    """Read, chunk and ask every input on the connected Ray cluster; commit each answer to OUT's cache.

    One request per chunk and query style of ``plans`` (``styles.load_plans``). Requests
    the cache answers already are not asked (its failed ones are with ``--retry-failed``); transport
    failures are not committed, so the pipeline that follows asks them again."""
    template = styles.main_template(plans)
    import ray.data

    started = time.perf_counter()
    tasks = ask_tasks or max(1, int(ray.cluster_resources().get("CPU", 1)))
    with Cache(cache_path(config.out)) as cache, _data_context(ordered=config.limit is not None):
        known = np.array(sorted(cache.keys(answered_only=config.retry_failed)), dtype="S64")
        chunks = _chunk_dataset(config, plans, endpoint)
        if chunks is None:  # no input file: the driver's run says so, in the words of a single-machine run
            return ClusterAsking(0, 0, 0, Usage(), 0.0)
        asking = replace(config, rpm=_share(config.rpm, tasks), tpm=_share(config.tpm, tasks))
        env = {"OPENAI_API_KEY": os.environ["OPENAI_API_KEY"]} if os.environ.get("OPENAI_API_KEY") else {}
        answers = chunks.map_batches(
            partial(ask_batch, config=asking, template=template, endpoint=endpoint, known=known, plans=plans),
            batch_size=ASK_BATCH, batch_format="pyarrow", compute=ray.data.TaskPoolStrategy(size=tasks),
            # the workers ask with the driver's key; Ray keeps it in the job's runtime environment
            runtime_env={"env_vars": env} if env else None,
        )
        shown = Progress(progress, log)
        bar = shown.bar("questions (on Ray)", None, "chunk" if len(plans) == 1 else "request")
        asked = committed = transient = 0
        usage = Usage()
        try:
            for key, answer in _streamed(ray, answers):
                asked += 1
                usage += answer.usage
                if answer.transient:
                    transient += 1  # not cached: the driver's run asks it again
                else:
                    cache.put(key, answer)
                    committed += 1
                bar.update(1)
        finally:
            bar.close()
    seconds = time.perf_counter() - started
    log(f"asked on Ray: {asked:,} {'chunks' if len(plans) == 1 else 'requests (a chunk in a style)'} ({committed:,} committed to the cache, {transient:,} left to the driver "
        f"after transport failures), {usage.requests:,} requests ({seconds:.1f} s)")
    return ClusterAsking(asked, committed, transient, usage, seconds)


@contextlib.contextmanager
def _data_context(ordered: bool) -> Iterator[None]:
    """Ray Data's settings for this run, put back as they were after it (a library caller keeps its own)."""
    import ray.data

    context = ray.data.DataContext.get_current()
    saved = (context.enable_progress_bars, context.raise_original_map_exception,
             context.execution_options.preserve_order)
    context.enable_progress_bars = False  # synthqa shows its own bar of answers committed
    # a task's EndpointError (key refused, nothing listening) reaches the driver as itself, not as Ray Data's
    # UserCodeException, whose pickled form has lost its cause
    context.raise_original_map_exception = True
    # --limit means the first N chunks: Ray must keep the input order for it
    context.execution_options.preserve_order = ordered or saved[2]
    try:
        yield
    finally:
        (context.enable_progress_bars, context.raise_original_map_exception,
         context.execution_options.preserve_order) = saved


def _chunk_dataset(config: GenerateConfig, plans: tuple[StylePlan, ...], endpoint: Endpoint):
    """The Ray dataset of every (chunk worth asking about, style), with its cache key (in input order when
    --limit cuts it); None without input files."""
    import ray.data

    files = [{"path": str(path), "source": source} for path, source in pdfs.find_input_files(config.inputs)]
    if not files:
        return None
    chunks = ray.data.from_items(files, override_num_blocks=len(files)).flat_map(
        partial(chunk_rows, config=config, plans=plans, endpoint=endpoint))
    # a chunk's rows (one per style) come one after another: the first N chunks are the first N × styles rows
    return chunks.limit(config.limit * len(plans)) if config.limit is not None else chunks


def chunk_rows(row: dict, *, config: GenerateConfig, plans: tuple[StylePlan, ...], endpoint: Endpoint) -> list[dict]:
    """One file read, chunked and filtered exactly as ``synthqa generate`` does: its chunks worth asking about,
    each once per query style with that style's cache key (a Ray Data ``flat_map``)."""
    result = read_file(FileTask(row["path"], row["source"], config.pdf_password, config.chunk_size,
                                config.chunk_overlap, config.keep_all_chunks, config.clean))
    return [{"key": cache_key(config, plan.template, endpoint, chunk, plan.style), "style": plan.style,
             "chunk": json.dumps(dataclasses.asdict(chunk))}
            for chunk, reason in zip(result.chunks, result.chunk_skip_reasons) if reason is None for plan in plans]


def ask_batch(batch, *, config: GenerateConfig, template: prompts.PromptTemplate, endpoint: Endpoint,
              known: np.ndarray, plans: tuple[StylePlan, ...]):
    """Ask for the (chunk, style) requests of ``batch`` that ``known`` (sorted cache keys) lacks, each text
    once, through the live transport; a table of (key, answer as JSON) (a Ray Data ``map_batches``)."""
    import pyarrow as pa

    plan_of = {plan.style: plan for plan in plans}
    todo: dict[str, tuple[Chunk, StylePlan]] = {}
    for key, style, text in zip(batch.column("key").to_pylist(), batch.column("style").to_pylist(),
                                batch.column("chunk").to_pylist()):
        if key not in todo and not _contains(known, key):
            todo[key] = (Chunk(**json.loads(text)), plan_of[style])
    key_of = {(chunk.id, plan.style): key for key, (chunk, plan) in todo.items()}
    answered: dict[str, Answer] = {}

    def on_answer(item: tuple[Chunk, StylePlan], answer: Answer) -> None:
        answered[key_of[item[0].id, item[1].style]] = answer

    if todo:
        asyncio.run(ask_all(config, template, endpoint, list(todo.values()), on_answer))
    return pa.table({"key": pa.array(list(answered), pa.string()),
                     "answer": pa.array([answer_json(a) for a in answered.values()], pa.string())})


def answer_json(answer: Answer) -> str:
    """An ``Answer`` as one JSON string, to cross from a Ray worker to the driver."""
    return json.dumps(dataclasses.asdict(answer), ensure_ascii=False)


def answer_from_json(text: str) -> Answer:
    """The ``Answer`` that ``answer_json`` wrote."""
    data = json.loads(text)
    return Answer(**{**data, "questions": tuple(data["questions"]), "answers": tuple(data["answers"]),
                     "usage": Usage(**data["usage"])})


def _contains(sorted_keys: np.ndarray, key: str) -> bool:
    encoded = key.encode()
    i = int(np.searchsorted(sorted_keys, encoded))
    return i < len(sorted_keys) and sorted_keys[i] == encoded


def _share(limit: int | None, tasks: int) -> int | None:
    """A task's share of a per-minute limit, so the tasks together keep to it."""
    return None if limit is None else max(1, math.floor(limit / tasks))


def _streamed(ray, answers) -> Iterator[tuple[str, Answer]]:
    """(key, Answer) as Ray hands the ask tasks' results over; a synthqa error in a task is raised as itself."""
    try:
        for batch in answers.iter_batches(batch_size=None, batch_format="pyarrow"):
            for key, text in zip(batch.column("key").to_pylist(), batch.column("answer").to_pylist()):
                yield key, answer_from_json(text)
    except ray.exceptions.RayTaskError as err:
        cause = err.cause  # the exception the task raised (``err`` itself is a copy of its class, traceback and all)
        if isinstance(cause, SynthQAError):  # one line: Ray Data appends its retry advice to the message
            raise type(cause)(str(cause).splitlines()[0]) from None
        raise


def _ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError("--ray needs Ray Data: pip install 'synthqa[ray]'") from None
    # Ray Data logs each execution's plan, warns that the bars synthqa replaces are off, and logs a failed task's
    # traceback twice before raising it: every failure reaches the driver as an exception, which synthqa
    # reports in one line (or, for a bug, in its crash log)
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    return ray


def _connect(ray, address: str | None, log: Log) -> bool:
    """Join (or start) the Ray cluster; True when this call connected, so the caller disconnects (and a local
    instance it started stops)."""
    if ray.is_initialized():
        return False
    local = address is None and not os.environ.get("RAY_ADDRESS")
    _check_reachable(address or os.environ.get("RAY_ADDRESS"))
    try:
        # a new local instance needs no dashboard; a cluster's own settings are left alone
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False,
                 **({"include_dashboard": False} if local else {}))
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = address or os.environ.get("RAY_ADDRESS") or "a new local instance"
        raise EndpointError(f"cannot start or join the Ray cluster at {where}: {' '.join(str(err).split())[:200]} "
                            "(check --ray-address / RAY_ADDRESS, e.g. ray://HEAD:10001 or auto)") from None
    where = "a local Ray instance" if local else "the Ray cluster"
    log(f"asking on {where}: {int(ray.cluster_resources().get('CPU', 0))} CPUs")
    return True


def _check_reachable(address: str | None) -> None:
    """Fail in seconds when nothing listens at a HOST:PORT cluster address: ``ray.init`` would retry for minutes."""
    if not address or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not port.isdigit():
        return  # Ray names what it cannot parse itself
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as err:
        raise EndpointError(f"no Ray cluster answers at {address} ({err.strerror or err}): check --ray-address or "
                            "RAY_ADDRESS (the head's HOST:6379, ray://HOST:10001, or auto on a node of the cluster)"
                            ) from None
