"""The asking stage through batch files (``generate --batch``, ``synthqa batch export`` / ``import``).

The live stage's twin: the same chunks the cache cannot answer, the same request bodies, every result line
judged by ``questions.judge`` and committed to the same cache by key. Unusable replies go into a follow-up
batch until ``--max-attempts``; requests that got no reply (expired, HTTP errors) are failed chunks with
their reason, asked again by a later run or ``--retry-failed`` like a live run's timeouts. A run spans
several commands, so where the batches stand is kept in ``batchstate.BatchState``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .. import batchfiles, language, live
from ..batchapi import EXPORTED, FolderBatches, OpenAIBatches, Status
from ..batchstate import Batch, BatchState
from ..cache import CACHE_DIRNAME
from ..config import GenerateConfig
from ..errors import ConfigError, InputError
from ..questions import answered, give_up
from ..records import Answer, Chunk

EXPORT_DIRNAME = "batch"  # OUT/batch/: requests files for vllm run-batch (never uploaded)
SECRETS = ("pdf_password",)


@dataclass(frozen=True)
class BatchPending:
    """A batch run that is not done yet: what stands where, and what the user does next."""

    out: Path
    batches: list[tuple[Batch, Status]]
    waiting: int  # requests without an answer yet
    files: bool  # requests files for vllm run-batch, rather than a Batch API
    model: str
    unknown: int = 0  # result lines naming no request of this run (not used)


class BatchStep:
    """Sort the streamed chunks into batches, read what ended, send follow-ups; see the module docstring."""

    def __init__(self, step, state: BatchState, results: tuple[Path, ...] = (), sleep=asyncio.sleep) -> None:
        self.step, self.state, self.results, self.sleep = step, state, tuple(results), sleep
        self.config: GenerateConfig = step.config
        self.files = self.config.batch == "files"
        self.folder = self.config.out / (EXPORT_DIRNAME if self.files else f"{CACHE_DIRNAME}/{EXPORT_DIRNAME}")
        self.plans = {plan.style: plan for plan in step.plans}
        self.unknown = 0
        self.answered = 0  # chunks whose answer came in a result line this run

    async def run(self) -> BatchPending | None:
        """Ask for every chunk the cache cannot answer; ``None`` once every request is settled."""
        with self.step.progress.stage("asking", "ask") as stage:
            transport = self._transport()
            try:
                await transport.check()
                await self._sort_in()
                if self.results:
                    self._read(self.results)
                pending = await self._advance(transport)
                if pending and self.config.wait and not self.files:
                    pending = await self._wait(transport, pending)
            finally:
                await transport.close()
                if self.step.bar is not None:
                    self.step.bar.close()
            what = "chunks" if len(self.plans) == 1 else "requests (a chunk in a style)"
            stage.detail = (f"{self.step.asked:,} new {what} to ask, {self.answered:,} answered from batch results, "
                            f"{self.step.cached + self.step.earlier:,} from the cache, "
                            f"{self.state.count_waiting():,} requests waiting")
        if self.unknown:
            self.step.log(f"{self.unknown} result line(s) name no request of this run (unknown custom_id): not used")
        if not pending and not self.state.count_waiting():
            return None
        return BatchPending(self.config.out, pending, self.state.count_waiting(), self.files, self.step.endpoint.model,
                            self.unknown)

    async def _sort_in(self) -> None:
        """New requests for the chunks that no batch holds and the cache cannot answer."""
        if self.files:
            self.state.put_setting("config", config_record(self.config))
        new: list[str] = []
        async for _chunk, _plan, key in self.step.unanswered():
            self.step._advance(1)
            if not self.state.known(key):
                new.append(key)
                self.step.asked += 1
                if len(new) >= 1000:
                    self.state.add(new)
                    new.clear()
        self.state.add(new)

    def _transport(self):
        if self.files:
            return FolderBatches()
        endpoint = self.step.endpoint
        client = live.make_client(endpoint.base_url, os.environ.get("OPENAI_API_KEY"), self.config.timeout,
                                  self.config.max_retries)
        return OpenAIBatches(client)

    async def _advance(self, transport) -> list[tuple[Batch, Status]]:
        """Read the batches that ended, send what waits for a batch; the batches still open, with their status."""
        still = []
        for batch in self.state.open_batches():
            status = await transport.status(batch.id)
            if status.ended:
                self._settle_batch(batch, status, await transport.lines(status))
            else:
                if status.status != batch.status:
                    self.state.set_status(batch.id, status.status)
                still.append((batch, status))
        if self.files:  # a requests file is done once every request in it has its result
            for batch, status in list(still):
                if not self.state.in_batch(batch.id):
                    self.state.end_batch(batch.id, "imported")
                    still.remove((batch, status))
        return still + await self._send(transport)

    async def _wait(self, transport, pending: list[tuple[Batch, Status]]) -> list[tuple[Batch, Status]]:
        """Poll until every batch has ended (follow-ups included), with a bar of the batches' request counts."""
        bar = None
        try:
            while pending:
                total = sum(s.total or b.lines for b, s in pending)
                done = sum(s.completed + s.failed for _, s in pending)
                if bar is None:
                    bar = self.step.progress.bar("batch requests", total, "request")
                bar.total = total
                bar.n = done
                bar.set_postfix_str(", ".join(sorted({s.status for _, s in pending})), refresh=True)
                await self.sleep(self.config.poll_interval)
                pending = await self._advance(transport)
        finally:
            if bar is not None:
                if not pending:  # every batch ended: the bar shows it whole
                    bar.n = bar.total
                bar.close()
        return pending

    # ---------------------------------------------------------------- results
    def _settle_batch(self, batch: Batch, status: Status, lines: list[str]) -> None:
        self._commit_lines(lines, batch.file, batch.id)
        why = {"expired": "the batch expired before this request ran (completion window 24h)",
               "cancelled": "the batch was cancelled before this request ran",
               "failed": f"the batch failed{': ' + status.why if status.why else ''}"}
        reason = why.get(status.status, f"the batch ended ({status.status}) without a result for this request")
        for key in self.state.in_batch(batch.id):  # no line came back for these
            waiting = self.state.waiting(key)
            self.state.settle(key, reason, waiting.attempt, waiting.usage)
        self.state.end_batch(batch.id, status.status)

    def _read(self, paths: tuple[Path, ...]) -> None:
        for path in paths:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                raise InputError(f"cannot read results file {path}: {getattr(err, 'strerror', None) or err}") from None
            self._commit_lines(text.splitlines(), Path(path).name)

    def _commit_lines(self, lines: list[str], source: str, batch_id: str | None = None) -> None:
        bad = 0
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = batchfiles.parse_result(line)
            except ValueError:
                bad += 1
                if bad == 1:
                    self.step.log(f"{source} line {number} is not a batch result line: skipped")
                continue
            # its chunk and style: the count the reply is judged by (None: a chunk that has left the inputs)
            request = self.step.store.request_by_key(record["custom_id"])
            n = self.plans[request[1]].n if request else self.config.asked_count()
            self._commit(batchfiles.judge_result(record, n, self.config.answers), batch_id, request, n)
        if bad > 1:
            self.step.log(f"{source}: {bad} lines in all were not batch result lines, skipped")

    def _commit(self, result: batchfiles.Result, batch_id: str | None, request: tuple[Chunk, str] | None,
                n: int) -> None:
        """One result (of ``request``, its chunk and style, asking for ``n`` queries): answer to the cache, failure
        to the state, or the request into a follow-up batch."""
        waiting = self.state.waiting(result.key)
        if waiting is None or waiting.batch is None or (batch_id and waiting.batch != batch_id):
            # a results file imported before (`results-*.jsonl` names it again) is no stranger: skipped quietly
            if not (self.state.known(result.key) or self.step.cache.get(result.key)):
                self.unknown += 1
            return
        self.step.usage_this_run += result.usage
        # A chunk whose text has left the inputs since it was sent: its answer is still cached (by content), and
        # it is not asked again.
        chunk = request[0] if request else None
        chunk_id = chunk.id if chunk else ""
        usage, verdict = waiting.usage + result.usage, result.verdict
        if verdict is None:
            self.state.settle(result.key, result.error, waiting.attempt, usage)
            return
        if verdict.usable:
            answer = answered(chunk_id, verdict.found, n, usage=usage, attempts=waiting.attempt)
        else:
            partial = max(waiting.partial, verdict.partial, key=len)
            if waiting.attempt < self.config.max_attempts and chunk is not None:
                self.state.ask_again(result.key, usage, partial)
                return
            answer = give_up(chunk_id, verdict.reason, partial, n=n, max_attempts=waiting.attempt, usage=usage)
        self.step.cache.put(result.key, answer)
        self.state.settle(result.key, attempts=answer.attempts, usage=usage)
        self.answered += 1

    # ---------------------------------------------------------------- requests out
    async def _send(self, transport) -> list[tuple[Batch, Status]]:
        """Write what waits for a batch into files within the limits, and send each; the batches made."""
        made = []
        for group in batchfiles.pack(self._request_lines()):
            self.folder.mkdir(parents=True, exist_ok=True)
            # numbered on from the files already there: a file of an earlier cycle (and the results a user put
            # beside it) is never overwritten
            number = max((int(p.stem.split("-")[-1]) for p in self.folder.glob("requests-[0-9]*.jsonl")
                          if p.stem.split("-")[-1].isdigit()), default=0) + 1
            path = self.folder / f"requests-{number:03d}.jsonl"
            path.write_text("".join(line + "\n" for _, line in group), encoding="utf-8")
            batch = Batch(await transport.submit(path), path.name, len(group), EXPORTED if self.files else "submitted")
            self.state.add_batch(batch, [key for key, _ in group])
            made.append((batch, Status(batch.status, total=len(group))))
            self.step.log(f"{path.name}: {len(group):,} requests" + (
                "" if self.files else f" sent as batch {batch.id}"))
        return made

    def _request_lines(self) -> Iterator[tuple[str, str]]:
        """(key, request line) of each request waiting for a batch, through its query style's prompt. No
        ``max_tokens``: a batch has no timeout for a runaway reply to hit, and OpenAI's reasoning models refuse
        it with no way to ask the line again without it."""
        endpoint, c = self.step.endpoint, self.config
        for waiting in self.state.unsent():
            request = self.step.store.request_by_key(waiting.key)
            if request is None:  # its text left the inputs since it was asked: nothing to ask any more
                self.state.settle(waiting.key)
                continue
            chunk, plan = request[0], self.plans[request[1]]
            name = language.name(chunk.language) if plan.template.uses_language else None
            yield waiting.key, batchfiles.request_line(
                waiting.key, plan.template, chunk.text, n=plan.n, language=name, model=endpoint.model,
                temperature=c.temperature, attempt=waiting.attempt, mode=endpoint.mode, answers=c.answers)


def add_failures(state: BatchState, store) -> None:
    """The requests of this cycle that got no reply, as the run's failed chunks (asked again by a later run)."""
    for key, reason, attempts, usage in state.failures():
        store.add_failure(key, Answer("", error=reason, usage=usage, attempts=attempts, transient=True))


# ---------------------------------------------------------------- the settings of an export
def config_record(config: GenerateConfig) -> dict:
    """``config`` as JSON for ``synthqa batch import``: paths made absolute, secrets left out."""
    record = {k: v for k, v in asdict(config).items() if k not in SECRETS}
    record["inputs"] = [str(Path(p).resolve()) for p in config.inputs]
    record["out"] = str(Path(config.out).resolve())
    record["prompt_path"] = str(config.prompt_path.resolve()) if config.prompt_path else None
    record["pdf_password_given"] = config.pdf_password is not None
    return record


def config_for_import(out: Path, given: dict) -> GenerateConfig:
    """The config ``synthqa batch export`` recorded in ``out``; ``given`` options (a password) added."""
    from ..batchstate import state_path

    if not state_path(out).exists():
        raise ConfigError(f"{out} holds no batch export: run `synthqa batch export INPUT... -o {out}` first")
    with BatchState(state_path(out)) as state:
        record = state.setting("config")
    if record is None:
        raise ConfigError(f"{out} holds batches sent with `generate --batch`, not an export: rerun that command")
    if record.pop("pdf_password_given") and not given.get("pdf_password"):
        raise ConfigError(f"the export in {out} opened encrypted PDFs: pass --pdf-password again")
    known = {f.name for f in fields(GenerateConfig)}
    kwargs = {k: v for k, v in record.items() if k in known}
    kwargs.update(given, out=Path(out), inputs=tuple(map(Path, record["inputs"])), batch="files")
    missing = [p for p in kwargs["inputs"] if not p.exists()]
    if missing:
        raise ConfigError(f"the export in {out} read {', '.join(map(str, missing))}, which is not here: "
                          "import where the inputs are")
    return GenerateConfig(**kwargs)


def describe(pending: BatchPending) -> str:
    """What a pending batch run tells the user: where each batch stands, and the command that goes on."""
    lines = []
    for batch, status in pending.batches:
        counts = f"{status.completed + status.failed:,} of {status.total or batch.lines:,} requests done"
        name = batch.file if pending.files else f"{batch.file} (batch {batch.id})"
        lines.append(f"  {name}: {status.status}, {counts}")
    out = str(pending.out)
    if pending.files:
        folder = Path(out) / EXPORT_DIRNAME
        first = pending.batches[0][0].file if pending.batches else "requests-001.jsonl"
        lines.append(f"{pending.waiting:,} request(s) wait for results. For each requests file above, run e.g.\n"
                     f"  vllm run-batch -i {folder / first} -o {folder / first.replace('requests', 'results')} "
                     f"--model {pending.model}\nthen: synthqa batch import {out} {folder}/results-*.jsonl")
    else:
        lines.append(f"{pending.waiting:,} request(s) in batches that have not ended: rerun the same command to "
                     "poll (add --wait to wait here)")
    return "\n".join(lines)

