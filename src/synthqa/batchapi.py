"""Where batch files go: an OpenAI-compatible Batch API (through the openai client), or a folder for
``vllm run-batch``. Both take a written requests file and give back result lines; what the lines mean is
``batchfiles.read_result``'s business."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import openai

from .errors import EndpointError
from .live import endpoint_host

TERMINAL = ("completed", "failed", "expired", "cancelled")
EXPORTED = "exported"  # a requests file written for vllm run-batch, waiting for `synthqa batch import`


@dataclass(frozen=True)
class Status:
    """Where one batch stands; ``output``/``errors`` are file ids once it has ended."""

    status: str
    completed: int = 0
    failed: int = 0
    total: int = 0
    output: str | None = None
    errors: str | None = None
    why: str = ""  # the provider's own errors of a failed batch

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL


class OpenAIBatches:
    """Upload with ``files.create(purpose="batch")``, run with ``batches.create(completion_window="24h")``."""

    def __init__(self, client: openai.AsyncOpenAI) -> None:
        self.client, self.host = client, endpoint_host(client)

    async def check(self) -> None:
        """Fail before any input is read when the endpoint has no Batch API, rejects the key, or is down."""
        try:
            await self.client.with_options(max_retries=0).batches.list(limit=1)
        except openai.APIError as err:
            raise self._fatal(err) from None

    async def submit(self, path: Path) -> str:
        """Upload ``path`` and start a batch of it; returns the batch id."""
        try:
            uploaded = await self.client.files.create(file=path, purpose="batch")
            batch = await self.client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                                     completion_window="24h", metadata={"synthqa": path.name})
        except openai.APIError as err:
            raise self._fatal(err) from None
        return batch.id

    async def status(self, batch_id: str) -> Status:
        try:
            batch = await self.client.batches.retrieve(batch_id)
        except openai.APIError as err:
            raise self._fatal(err, batch_id) from None
        counts = batch.request_counts
        errors = "; ".join(e.message or e.code or "" for e in (batch.errors.data or [])) if batch.errors else ""
        return Status(batch.status, counts.completed if counts else 0, counts.failed if counts else 0,
                      counts.total if counts else 0, batch.output_file_id, batch.error_file_id, errors)

    async def lines(self, status: Status) -> list[str]:
        """The lines of an ended batch's output and error files."""
        found: list[str] = []
        for file_id in (status.output, status.errors):
            if file_id:
                try:
                    content = await self.client.files.content(file_id)
                except openai.APIError as err:
                    raise self._fatal(err) from None
                found += [line for line in content.text.splitlines() if line.strip()]
        return found

    def _fatal(self, err: openai.APIError, batch_id: str | None = None) -> EndpointError:
        if isinstance(err, openai.AuthenticationError | openai.PermissionDeniedError):
            return EndpointError(f"the endpoint at {self.host} rejected the API key ({err.status_code}): "
                                 "check OPENAI_API_KEY")
        if isinstance(err, openai.NotFoundError):
            if batch_id:
                return EndpointError(f"the endpoint at {self.host} knows no batch {batch_id} (404): was it made "
                                     "with another key or --base-url?")
            return EndpointError(f"the endpoint at {self.host} has no batch API (404): drop --batch, or write "
                                 "files for vllm run-batch with `synthqa batch export`")
        if isinstance(err, openai.APIConnectionError):
            return EndpointError(f"cannot reach {self.host}: is the server running? (submitted batches are "
                                 "recorded: rerun the same command to poll them)")
        detail = " ".join(str(getattr(err, "message", err)).split())[:200]
        return EndpointError(f"the batch API at {self.host} failed: {detail}; rerun the same command to go on")

    async def close(self) -> None:
        await self.client.close()


class FolderBatches:
    """Requests files for ``vllm run-batch``: nothing is sent, results come back by ``synthqa batch import``."""

    async def check(self) -> None:
        pass

    async def submit(self, path: Path) -> str:
        return path.name

    async def status(self, batch_id: str) -> Status:
        return Status(EXPORTED)

    async def lines(self, status: Status) -> list[str]:
        return []

    async def close(self) -> None:
        pass
