"""The batch transport's file formats: requests in, results out, both the OpenAI Batch JSONL format.

A request line is ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}`` with the body a
live request would send (``questions.build_messages`` and ``questions.response_format``); ``custom_id`` is
the chunk's cache key. A result line (OpenAI's output and error files, vLLM's ``run-batch`` output) is
``{"custom_id", "response": {"status_code", "body"}, "error"}``; ``read_result`` turns it into the verdict of
``questions.judge``, the same one a live reply gets. Pure functions: no network, no state.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .prompts import PromptTemplate
from .questions import Verdict, attempt_temperature, build_messages, judge, reply_usage, response_format
from .records import Usage

URL = "/v1/chat/completions"
# OpenAI's limits per batch input file (vLLM has none): https://platform.openai.com/docs/guides/batch
MAX_LINES = 50_000
MAX_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class Result:
    """One result line: the verdict on the model's reply, or why the request got none (``error``)."""

    key: str
    verdict: Verdict | None
    usage: Usage
    error: str | None = None


def request_line(key: str, template: PromptTemplate, chunk_text: str, *, n: int, language: str | None, model: str,
                 temperature: float, attempt: int, mode: str, answers: bool) -> str:
    """The JSONL line asking for ``n`` questions about ``chunk_text`` (attempt ``attempt``), ``custom_id`` = ``key``."""
    body = {"model": model, "messages": build_messages(template, chunk_text, n, language, answers=answers),
            "temperature": attempt_temperature(temperature, attempt)}
    fmt = response_format(n, mode, answers)
    if fmt:
        body["response_format"] = fmt
    return json.dumps({"custom_id": key, "method": "POST", "url": URL, "body": body}, ensure_ascii=False)


def pack(lines: Iterable[tuple[str, str]], max_lines: int = MAX_LINES,
         max_bytes: int = MAX_BYTES) -> Iterator[list[tuple[str, str]]]:
    """(key, line) pairs in groups that each fit one batch file (at most ``max_lines`` lines, ``max_bytes``
    bytes); streamed, so only one file's lines are in memory."""
    group: list[tuple[str, str]] = []
    size = 0
    for key, line in lines:
        length = len(line.encode("utf-8")) + 1
        if group and (len(group) >= max_lines or size + length > max_bytes):
            yield group
            group, size = [], 0
        group.append((key, line))
        size += length
    if group:
        yield group


def read_result(line: str, n: int, answers: bool = False) -> Result:
    """The ``Result`` of one line of an output or error file, its request having asked for ``n`` queries;
    ``ValueError`` when it is not a result line."""
    return judge_result(parse_result(line), n, answers)


def parse_result(line: str) -> dict:
    """One line of an output or error file as its record (``custom_id`` names the request); ``ValueError`` when
    it is not a result line. Apart from ``judge_result`` so the caller can look the request up first (query
    styles ask each their own number of queries)."""
    record = json.loads(line)
    if not isinstance(record, dict) or not isinstance(record.get("custom_id"), str):
        raise ValueError("not a batch result line (no custom_id)")
    return record


def judge_result(record: dict, n: int, answers: bool = False) -> Result:
    """The ``Result`` of a parsed result line whose request asked for ``n`` queries."""
    key, response, error = record["custom_id"], record.get("response") or {}, record.get("error")
    status, body = response.get("status_code"), response.get("body")
    if status == 200 and isinstance(body, dict) and body.get("choices"):
        choice = body["choices"][0] or {}
        message = choice.get("message") or {}
        content = message.get("content")
        reported = body.get("usage") or {}
        usage = reply_usage(reported.get("prompt_tokens"), reported.get("completion_tokens"), [], content)
        verdict = judge(content, choice.get("finish_reason"), message.get("refusal"), n, answers)
        return Result(key, verdict, usage)
    return Result(key, None, Usage(requests=1), failure_reason(status, body, error))


def failure_reason(status: int | None, body, error) -> str:
    """One line on why a batch request got no reply (the provider's code and message when it gave them)."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
    if isinstance(error, dict):
        code, message = error.get("code"), " ".join(str(error.get("message") or "").split())[:200]
        if code == "batch_expired":
            return "the batch expired before this request ran (batch_expired)"
        error = f"{message} ({code})" if code else message
    prefix = f"the batch endpoint answered HTTP {status}" if status and status != 200 else "the batch request failed"
    return f"{prefix}: {error}" if error else prefix
