"""The live transport of the asking stage: one async client asks an endpoint request by request.

``ask`` asks for one chunk (re-asking when ``questions.judge`` finds the reply unusable), ``ask_in_language``
once more when a question is not in the chunk's language, ``generate`` runs them over many chunks under
one semaphore. What a reply means is decided in ``questions`` (the pure core shared with the batch
transport); transport retries (429 with Retry-After, 5xx, dropped connections) and timeouts are the
openai client's job; this module only decides what a failure means for the run.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import AsyncIterable, Callable, Iterable, Sequence, Sized
from urllib.parse import urlsplit

import openai
from tqdm.auto import tqdm

from . import language as lang
from .errors import EndpointError
from .prompts import PromptTemplate
from .questions import (COMPLETION_TOKENS_PER_ANSWER, COMPLETION_TOKENS_PER_QUESTION, MODES, answered,
                        attempt_temperature, build_messages, estimate_tokens, give_up, judge, language_follow_up,
                        merge_language, reply_usage, response_format, wrong_language)
from .ratelimit import RateLimiter, make_limiter
from .records import Answer, Chunk, Usage


# ---------------------------------------------------------------- one chunk
def make_client(base_url: str | None, api_key: str | None, timeout: float, max_retries: int,
                concurrency: int = 16) -> openai.AsyncOpenAI:
    """The one client of a run; its own retries and timeout handle 429/5xx/drops/hangs."""
    # openai 1.x builds on httpx, later releases on httpx2: take Limits from whichever the client uses
    httpx_module = importlib.import_module(
        next(c for c in openai.DefaultAsyncHttpxClient.__mro__ if c.__name__ == "AsyncClient").__module__.split(".")[0]
    )
    limits = httpx_module.Limits(max_connections=concurrency + 16, max_keepalive_connections=concurrency + 16)
    return openai.AsyncOpenAI(
        base_url=base_url,
        # local servers need no key, yet the client insists on one
        api_key=api_key or "sk-no-key-needed",
        timeout=timeout,
        max_retries=max_retries,
        http_client=openai.DefaultAsyncHttpxClient(limits=limits, timeout=timeout),
    )


def endpoint_host(client: openai.AsyncOpenAI) -> str:
    """``host[:port]`` of the endpoint, without credentials, for messages and the manifest."""
    parts = urlsplit(str(client.base_url))
    return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else str(client.base_url)


class Session:
    """What the requests of one run share: the response-format mode in use and whether the endpoint answered."""

    def __init__(self, client: openai.AsyncOpenAI, mode: str = "json_schema", limiter: RateLimiter | None = None):
        response_format(1, mode)  # validates the mode
        self.client, self.mode, self.limiter = client, mode, limiter
        self.host = endpoint_host(client)
        self.reached = False  # becomes True once the endpoint has answered anything at all
        self.mode_confirmed = mode == "none"
        # False once the endpoint refused max_tokens (OpenAI's reasoning models want max_completion_tokens, which
        # counts their hidden reasoning too: a ceiling sized for the answer would leave it empty). The ceiling
        # guards against a small local model's endless string; a model that refuses it goes without.
        self.ceiling = True
        # until a mode is known to work, a rejection must not sit through the client's 5xx retries
        self._probe = client.with_options(max_retries=0)

    def fallback(self, failed_mode: str) -> None:
        if self.mode == failed_mode and failed_mode != "none":
            self.mode = MODES[MODES.index(failed_mode) + 1]

    def fatal(self, err: Exception, model: str) -> EndpointError | None:
        """The run-stopping error ``err`` stands for, or ``None`` if only this chunk failed."""
        if isinstance(err, openai.AuthenticationError | openai.PermissionDeniedError):
            return EndpointError(f"the endpoint at {self.host} rejected the API key ({err.status_code}):"
                                 " check OPENAI_API_KEY")
        if isinstance(err, openai.NotFoundError):
            return EndpointError(f"the endpoint at {self.host} has no model {model!r} (404): check --model,"
                                 " and that --base-url ends in /v1")
        if isinstance(err, openai.APIConnectionError) and not isinstance(err, openai.APITimeoutError):
            if not self.reached:
                return EndpointError(f"cannot reach {self.host}: is the server running?")
        return None

    async def check_reachable(self) -> None:
        """Fail fast, before any chunk, when nothing listens at the endpoint. Any HTTP answer will do."""
        try:
            await self._probe.models.list()
        except openai.APIStatusError:
            pass  # some servers have no /models, or keys may not list them: the endpoint is still there
        except openai.APIConnectionError as err:
            raise self.fatal(err, "") or EndpointError(f"cannot reach {self.host}: is the server running?") from None
        except (openai.APIResponseValidationError, ValueError, TypeError, AttributeError):
            # A 200 that the client cannot read as JSON: a web page, a proxy, a captive portal.
            raise EndpointError(
                f"{self.host} answered, but not as an OpenAI-compatible API: check --base-url (it usually ends in /v1)"
            ) from None
        self.reached = True

    async def complete(self, messages: list[dict], *, model: str, temperature: float, n: int, budget: int = 0,
                       answers: bool = False, max_tokens: int | None = None):
        """One completion, falling back to a simpler response format when the endpoint rejects it. Every
        request sent here, the fallback and retry ones included, first takes its share of --rpm/--tpm."""

        async def create(client):
            if self.limiter:
                await self.limiter.acquire(budget)
            return await client.chat.completions.create(model=model, messages=messages, temperature=temperature,
                                                        **kwargs)

        while True:
            mode = self.mode
            fmt = response_format(n, mode, answers)
            kwargs = {"response_format": fmt} if fmt else {}
            if max_tokens is not None and self.ceiling:
                kwargs["max_tokens"] = max_tokens
            client = self.client if self.mode_confirmed else self._probe
            try:
                resp = await create(client)
            except (openai.BadRequestError, openai.InternalServerError, openai.UnprocessableEntityError) as err:
                self.reached = True
                if "max_tokens" in kwargs and _mentions_ceiling(err):
                    self.ceiling = False
                    continue
                if mode != "none" and _mentions_format(err):
                    self.fallback(mode)
                    continue
                if client is self.client:
                    raise
                resp = await create(self.client)
            except (openai.RateLimitError, openai.APIConnectionError):
                if client is self.client:
                    raise
                resp = await create(self.client)
            self.reached = True
            if mode == self.mode:
                self.mode_confirmed = True
            return resp


def _mentions_format(err: openai.APIStatusError) -> bool:
    text = f"{err.message} {json.dumps(err.body, default=str)}".lower()
    return any(word in text for word in ("response_format", "json_schema", "json_object", "schema", "grammar"))


def _mentions_ceiling(err: openai.APIStatusError) -> bool:
    text = f"{err.message} {json.dumps(err.body, default=str)}".lower()
    return "max_tokens" in text or "max_completion_tokens" in text


async def ask(session: Session, chunk: Chunk, *, template: PromptTemplate, n: int, model: str,
              temperature: float = 0.0, max_attempts: int = 3, language: str | None = None,
              follow_up: Sequence[dict] = (), answers: bool = False, max_tokens: int | None = None) -> Answer:
    """Ask for ``n`` questions about ``chunk``, re-asking up to ``max_attempts`` times when none parse.

    ``language`` names the chunk's language for the template; ``follow_up`` messages go after the prompt.
    With ``answers`` each question comes with its reference answer, in the same request.
    Per-chunk failures come back as ``Answer(error=...)``; only run-wide problems (bad key, unknown model,
    endpoint down from the start) raise ``EndpointError``.
    """
    messages = build_messages(template, chunk.text, n, language, answers=answers) + list(follow_up)
    per_question = COMPLETION_TOKENS_PER_QUESTION + (COMPLETION_TOKENS_PER_ANSWER if answers else 0)
    budget = estimate_tokens("".join(m["content"] for m in messages)) + per_question * n
    usage, partial, reason, transient = Usage(), (), "no attempt was made", False
    for attempt in range(1, max_attempts + 1):
        try:
            resp = await session.complete(messages, model=model, temperature=attempt_temperature(temperature, attempt),
                                          n=n, budget=budget, answers=answers, max_tokens=max_tokens)
            if not hasattr(resp, "choices"):  # a 200 with an HTML page (proxy, captive portal, web UI)
                raise ValueError("not a chat completion")
        except (openai.APIResponseValidationError, ValueError, TypeError, AttributeError) as err:  # a 200, unreadable
            usage += Usage(requests=1)
            reason, transient = f"the endpoint sent an unreadable response ({type(err).__name__})", True
            continue
        except openai.APIError as err:
            fatal = session.fatal(err, model)
            if fatal:
                raise fatal from None
            usage += Usage(requests=1)
            return answered(chunk.id, partial, n, error=_transport_reason(err), usage=usage, attempts=attempt,
                            transient=True, short=False)
        choice = resp.choices[0] if resp.choices else None
        message = choice.message if choice else None
        content = message.content if message else None
        reported = resp.usage
        usage += reply_usage(reported and reported.prompt_tokens, reported and reported.completion_tokens,
                             messages, content)
        transient = False  # the model answered: what it said is worth remembering, even if unusable
        verdict = judge(content, choice.finish_reason if choice else None, getattr(message, "refusal", None), n,
                        answers)
        if verdict.usable:
            return answered(chunk.id, verdict.found, n, usage=usage, attempts=attempt)
        reason, partial = verdict.reason, max(partial, verdict.partial, key=len)
    return give_up(chunk.id, reason, partial, n=n, max_attempts=max_attempts, usage=usage, transient=transient)


def _transport_reason(err: openai.APIError) -> str:
    if isinstance(err, openai.APITimeoutError):
        return "the request timed out (raise --timeout if the model is slow)"
    if isinstance(err, openai.APIConnectionError):
        return "the connection to the endpoint failed"
    if isinstance(err, openai.APIStatusError):
        return f"the endpoint answered HTTP {err.status_code}: {' '.join(str(err.message).split())[:200]}"
    return f"the request failed: {type(err).__name__}"


async def ask_in_language(session: Session, chunk: Chunk, *, n: int, language: str, **kwargs) -> Answer:
    """``ask``, then once more (one request) when a question is not in the chunk's language.

    Each question in another language is replaced by a new in-language question of the second answer; any
    left over stays, for the ``wrong_language`` filter to drop and count. Both asks' usage is counted.
    """
    first = await ask(session, chunk, n=n, language=language, **kwargs)
    if not wrong_language(first, chunk.language):
        return first
    follow_up = language_follow_up(first.questions, language, n, first.answers)
    second = await ask(session, chunk, n=n, language=language, follow_up=follow_up, **{**kwargs, "max_attempts": 1})
    return merge_language(first, second, chunk.language)


# ---------------------------------------------------------------- many chunks
async def generate(chunks: Iterable[Chunk] | AsyncIterable[Chunk], *, client: openai.AsyncOpenAI,
                   template: PromptTemplate, n: int, model: str, temperature: float = 0.0, concurrency: int = 16,
                   max_attempts: int = 3, mode: str = "json_schema", rpm: int | None = None, tpm: int | None = None,
                   on_answer: Callable[[Chunk, Answer], None], progress: bool = True,
                   total: Callable[[], int | None] | None = None, check_language: bool | None = None,
                   answers: bool = False) -> None:
    """Ask for every chunk, at most ``concurrency`` at a time; ``on_answer`` runs as each one finishes.

    An item of ``chunks`` may also be ``(chunk, plan)``: a query style's plan (``styles.StylePlan``) asks
    with its own template and count instead of ``template`` and ``n``; ``on_answer`` gets the item back.

    ``chunks`` may be an async iterable that is still being produced (pages still being parsed); then
    ``total`` tells the progress bar the count once it is known. A run-wide ``EndpointError`` (or an error
    raised by ``on_answer`` or by the iterable) cancels the rest and is re-raised. ``check_language``
    (default: when the template names ``$language``) asks once more for questions not in the chunk's language.
    """
    session = Session(client, mode, make_limiter(rpm, tpm))
    await session.check_reachable()
    semaphore = asyncio.Semaphore(concurrency)
    known = len(chunks) if isinstance(chunks, Sized) else None
    bar = tqdm(total=known, unit="chunk", disable=not progress, desc="questions")

    async def one(item, held: bool = False) -> None:
        if not held:
            await semaphore.acquire()
        # an item is a chunk, or (chunk, plan) whose plan (a ``styles.StylePlan``) has its own template and n
        chunk, plan = item if isinstance(item, tuple) else (item, None)
        asked = plan.template if plan is not None else template
        if check_language is not None:
            checked = check_language
        else:
            checked = plan.checks_language if plan is not None else asked.uses_language
        try:
            answer = await (ask_in_language if checked else ask)(
                session, chunk, template=asked, n=plan.n if plan is not None else n, model=model,
                temperature=temperature, max_attempts=max_attempts, language=lang.name(chunk.language),
                answers=answers, max_tokens=plan.max_tokens(answers) if plan is not None else None)
        finally:
            semaphore.release()
        on_answer(item, answer)
        if bar.total is None and total is not None and total() is not None:
            bar.total = total()
        bar.update(1)

    try:
        async with asyncio.TaskGroup() as group:
            if isinstance(chunks, AsyncIterable):
                async for chunk in chunks:
                    # Take the next chunk only once a slot is free, so a stream of a million chunks does
                    # not become a million waiting tasks.
                    await semaphore.acquire()
                    group.create_task(one(chunk, held=True))
            else:
                for chunk in chunks:
                    group.create_task(one(chunk))
    except BaseExceptionGroup as group_error:
        raise _first(group_error) from None
    finally:
        bar.close()


def _first(group: BaseExceptionGroup) -> BaseException:
    err = group.exceptions[0]
    return _first(err) if isinstance(err, BaseExceptionGroup) else err
