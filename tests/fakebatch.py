"""The Batch API of the fake server (``/v1/files``, ``/v1/batches``), and vLLM ``run-batch`` result lines.

Batches move only when the test asks where they stand: each ``GET /v1/batches/{id}`` steps the batch once,
validating → in_progress → ``lines_per_poll`` more lines run per retrieve (all at once by default) →
completed, with its output and error files. ``expire_after=k`` ends a batch as ``expired`` once k lines
have run: the rest come back in its error file as ``batch_expired``, as OpenAI's do. No clock anywhere.
Each line is answered by the fake model exactly as a live request would be (``FakeOpenAI.completion``).
"""

from __future__ import annotations

import json
import threading
from email.parser import BytesParser

TRANSPORT_FAULTS = ("429", "500", "503", "drop", "hang", "malformed")


class FakeBatches:
    """The files and batches one ``FakeOpenAI`` holds."""

    def __init__(self, fake, lines_per_poll: int | None = None, expire_after: int | None = None) -> None:
        self.fake, self.lines_per_poll, self.expire_after = fake, lines_per_poll, expire_after
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.retrieves = 0
        self._lock = threading.Lock()

    # ---- files
    def upload(self, content_type: str, raw: bytes) -> dict:
        message = BytesParser().parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        parts = {p.get_param("name", header="content-disposition"): p for p in message.get_payload()}
        data = parts["file"].get_payload(decode=True)
        return self._add_file(data, parts["file"].get_filename() or "upload.jsonl",
                              parts["purpose"].get_payload(decode=True).decode())

    def _add_file(self, data: bytes, name: str, purpose: str) -> dict:
        with self._lock:
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = data
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": 0, "filename": name,
                "purpose": purpose, "status": "processed"}

    # ---- batches
    def create(self, body: dict) -> dict:
        lines = [json.loads(line) for line in self.files[body["input_file_id"]].decode().splitlines() if line.strip()]
        with self._lock:
            batch_id = f"batch_{len(self.batches) + 1}"
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                "input_file_id": body["input_file_id"], "completion_window": body["completion_window"],
                "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": 0,
                "metadata": body.get("metadata"),
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "_lines": lines, "_output": [], "_errors": [],
            }
            return _public(self.batches[batch_id])

    def retrieve(self, batch_id: str) -> dict | None:
        """The batch, stepped once (see the module docstring); None for an unknown id."""
        batch = self.batches.get(batch_id)
        if batch is None:
            return None
        self.retrieves += 1
        if batch["status"] == "validating":
            batch["status"] = "in_progress"
        elif batch["status"] == "in_progress":
            self._run(batch)
        return _public(batch)

    def _run(self, batch: dict) -> None:
        counts = batch["request_counts"]
        done = counts["completed"] + counts["failed"]
        stop = len(batch["_lines"]) if self.lines_per_poll is None else done + self.lines_per_poll
        if self.expire_after is not None:
            stop = min(stop, self.expire_after)
        for line in batch["_lines"][done:stop]:
            status, record = self.answer(line)
            (batch["_output"] if status == 200 else batch["_errors"]).append(record)
            counts["completed" if status == 200 else "failed"] += 1
        done = counts["completed"] + counts["failed"]
        if self.expire_after is not None and done >= self.expire_after and done < len(batch["_lines"]):
            for line in batch["_lines"][done:]:
                batch["_errors"].append({"id": "batch_req_x", "custom_id": line["custom_id"], "response": None,
                                         "error": {"code": "batch_expired", "message": "This request could not "
                                                   "be executed before the completion window expired."}})
            batch["status"] = "expired"
        elif done >= len(batch["_lines"]):
            batch["status"] = "completed"
        if batch["status"] != "in_progress":
            for kind, field in (("_output", "output_file_id"), ("_errors", "error_file_id")):
                if batch[kind]:
                    text = "".join(json.dumps(r) + "\n" for r in batch[kind]).encode()
                    batch[field] = self._add_file(text, f"{batch['id']}{kind}.jsonl", "batch_output")["id"]

    def answer(self, line: dict) -> tuple[int, dict]:
        """(status, result record) for one request line, answered as the live endpoint would."""
        fault, _ = self.fake.record(line["body"])
        if fault in TRANSPORT_FAULTS:
            body = {"error": {"message": "The server had an error while processing your request.",
                              "type": "server_error", "code": None}}
            return 500, _result(line["custom_id"], 500, body)
        return 200, _result(line["custom_id"], 200, self.fake.completion(line["body"], fault))


def vllm_results(fake, requests_text: str) -> str:
    """What ``vllm run-batch -i requests.jsonl -o results.jsonl`` writes, the fake model answering each line."""
    batches = FakeBatches(fake)
    lines = [json.loads(line) for line in requests_text.splitlines() if line.strip()]
    return "".join(json.dumps(batches.answer(line)[1]) + "\n" for line in lines)


def _result(custom_id: str, status: int, body: dict) -> dict:
    return {"id": f"vllm-{custom_id[:12]}", "custom_id": custom_id, "error": None,
            "response": {"status_code": status, "request_id": f"vllm-batch-{custom_id[:8]}", "body": body}}


def _public(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if not k.startswith("_")}
