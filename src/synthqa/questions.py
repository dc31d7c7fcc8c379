"""The LLM stage: ask an OpenAI-compatible endpoint for questions about each chunk.

Three separate pieces: ``build_messages``/``response_format`` (pure), ``ask`` (one chunk, async, re-asks
when the answer does not parse), ``parse_questions`` (pure, lenient); ``ask_in_language`` asks once more
when a question is not in the chunk's language. ``generate`` runs them over many chunks under one
semaphore. Transport retries (429 with Retry-After, 5xx, dropped connections) and timeouts are the openai
client's job; this module only decides what a failure means for the run.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
from collections.abc import AsyncIterable, Callable, Iterable, Sequence, Sized
from dataclasses import replace
from urllib.parse import urlsplit

import openai
from tqdm.auto import tqdm

from . import language as lang
from .errors import EndpointError
from .prompts import PromptTemplate, render
from .ratelimit import RateLimiter, make_limiter
from .records import Answer, Chunk, Usage

MODES = ("json_schema", "json_object", "none")
COMPLETION_TOKENS_PER_QUESTION = 40  # what --tpm reserves per question: a ceiling, so the quota holds
ESTIMATED_TOKENS_PER_QUESTION = 30  # what --dry-run expects a question to cost: a typical length
COMPLETION_TOKENS_PER_ANSWER = 60  # the same two figures for a reference answer (--answers): one sentence
ESTIMATED_TOKENS_PER_ANSWER = 35
# With --answers, added to the user message whatever the template says: the schema asks for this shape too.
ANSWERS_INSTRUCTION = (
    "With each question, give its answer: one short sentence that uses only facts stated in the chunk. "
    'Answer with a JSON object {"questions": [{"question": "...", "answer": "..."}, ...]} instead of a list '
    "of strings."
)
REASK_TEMPERATURE = 0.7  # temperature of re-asks after an unusable answer (when --temperature is lower)


class ParseError(ValueError):
    """An answer holds no usable questions. Internal: it leads to a re-ask, never to the user."""


# ---------------------------------------------------------------- pure pieces
def estimate_tokens(text: str) -> int:
    """Rough token count (4 characters a token), for --dry-run costs and the --tpm limiter."""
    return (len(text) + 3) // 4


def build_messages(template: PromptTemplate, chunk_text: str, n: int, language: str | None = None, *,
                   answers: bool = False) -> list[dict]:
    """The chat messages asking for ``n`` questions about ``chunk_text``, in ``language`` (a name) if given,
    each with its answer if ``answers``."""
    system, user = render(template, chunk=chunk_text, n_questions=n, language=language)
    if answers:
        user = f"{user}\n\n{ANSWERS_INSTRUCTION}"
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": user}]


def questions_schema(n: int, answers: bool = False) -> dict:
    """JSON schema of the answer: ``{"questions": [n strings]}``, or of n ``{"question", "answer"}`` objects."""
    item: dict = {"type": "string"}
    if answers:
        item = {
            "type": "object",
            "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
            "required": ["question", "answer"],
            "additionalProperties": False,
        }
    return {
        "type": "object",
        "properties": {"questions": {"type": "array", "items": item, "minItems": n, "maxItems": n}},
        "required": ["questions"],
        "additionalProperties": False,
    }


def response_format(n: int, mode: str, answers: bool = False) -> dict | None:
    """The ``response_format`` request field for ``mode`` (json_schema: OpenAI; json_object: llama.cpp)."""
    schema = questions_schema(n, answers)
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "questions", "schema": schema, "strict": True}}
    if mode == "json_object":
        return {"type": "json_object", "schema": schema}
    if mode == "none":
        return None
    raise ValueError(f"unknown response format mode {mode!r}: use one of {', '.join(MODES)}")


_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)(?:```|\Z)", re.S)
_LIST_ITEM = re.compile(r"^\s*(?:\(?\d{1,2}[.):]|[-*•]|Q\d{1,2}[.:)]?)\s+(.+)$")
_PREFIX = re.compile(r"^(?:question\s*\d*\s*[:.)-]\s*)", re.I)
_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"(\s*:)?')
_QUOTES = "\"'`“”‘’«» \t"


def parse_questions(content: str | None) -> list[str]:
    """Questions from an answer in any common shape; raises ``ParseError`` when there are none.

    Accepts a JSON list, an object with a ``questions`` list (or any single list), fenced JSON, numbered or
    bulleted lines, and plain lines ending in "?". Truncated JSON yields its complete strings.
    """
    text = _unfenced(content)
    start = min((i for i in (text.find("["), text.find("{")) if i >= 0), default=-1)
    if start >= 0 and (start == 0 or text[start - 1] in "\n :"):
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            if start == 0:  # it is JSON, cut short: keep each complete string that is not a key
                found = [_clean(json.loads(f'"{m.group(1)}"')) for m in _STRING.finditer(text) if not m.group(2)]
                found = [q for q in found if len(q.split()) >= 3]
                if found:
                    return found
                raise ParseError("truncated JSON without one complete question") from None
        else:
            found = [q for q in (_clean(item) for item in _json_items(value)) if q]
            if found:
                return found
            raise ParseError("the JSON answer holds no questions")
    lines = [line for line in text.splitlines() if line.strip()]
    items = [m.group(1) for m in map(_LIST_ITEM.match, lines) if m]
    if not items:
        items = [line for line in lines if line.rstrip().endswith("?")]
    found = [q for q in map(_clean, items) if q]
    if not found:
        raise ParseError("prose without a question")
    return found


def parse_answered(content: str | None) -> list[tuple[str, str]]:
    """``(question, answer)`` pairs from an answer to the ``--answers`` schema; ``ParseError`` when none.

    Reads every complete ``{"question": …, "answer": …}`` object, inside ``{"questions": [...]}``, a bare
    list or fenced JSON; a cut-off answer keeps its complete pairs. Questions without an answer are left out.
    """
    text = _unfenced(content)
    decoder, pairs = json.JSONDecoder(), []
    pos = text.find("{")
    while pos >= 0:
        try:
            value, end = decoder.raw_decode(text, pos)
        except ValueError:
            value, end = None, pos + 1
        if isinstance(value, dict) and isinstance(value.get("question"), str) and isinstance(value.get("answer"), str):
            question, answer = _clean(value["question"]), " ".join(value["answer"].split())
            if question and answer:
                pairs.append((question, answer))
        else:
            end = pos + 1  # an enclosing object: look inside it
        pos = text.find("{", end)
    if not pairs:
        raise ParseError("no question with an answer")
    return pairs


def _unfenced(content: str | None) -> str:
    """The answer's text, or what a code fence in it holds; ``ParseError`` when it is empty."""
    text = (content or "").strip()
    if not text:
        raise ParseError("empty answer")
    fenced = _FENCE.search(text)
    return fenced.group(1).strip() if fenced and fenced.group(1).strip() else text


def _json_items(value) -> list:
    if isinstance(value, dict):
        lists = {k: v for k, v in value.items() if isinstance(v, list)}
        named = [v for k, v in lists.items() if "question" in k.lower()]
        if named:
            return _json_items(named[0])
        if len(lists) == 1:
            return _json_items(next(iter(lists.values())))
        text = value.get("question") or value.get("text")
        return [text] if isinstance(text, str) else []
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict):
                item = item.get("question") or item.get("text")
            if isinstance(item, str):
                out.append(item)
        return out
    return [value] if isinstance(value, str) else []


def _clean(question: str) -> str:
    question = _PREFIX.sub("", question.strip().rstrip(",").strip(_QUOTES))
    return " ".join(question.split()).strip(_QUOTES)


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
                       answers: bool = False):
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
            client = self.client if self.mode_confirmed else self._probe
            try:
                resp = await create(client)
            except (openai.BadRequestError, openai.InternalServerError, openai.UnprocessableEntityError) as err:
                self.reached = True
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


async def ask(session: Session, chunk: Chunk, *, template: PromptTemplate, n: int, model: str,
              temperature: float = 0.0, max_attempts: int = 3, language: str | None = None,
              follow_up: Sequence[dict] = (), answers: bool = False) -> Answer:
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
            # At temperature 0 a re-ask would get the very same unusable answer back: warm it up.
            heat = temperature if attempt == 1 else max(temperature, REASK_TEMPERATURE)
            resp = await session.complete(messages, model=model, temperature=heat, n=n, budget=budget,
                                          answers=answers)
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
            return _answered(chunk.id, partial, error=_transport_reason(err), usage=usage, attempts=attempt,
                             transient=True)
        choice = resp.choices[0] if resp.choices else None
        content = choice.message.content if choice and choice.message else None
        usage += _usage(resp, messages, content)
        transient = False  # the model answered: what it said is worth remembering, even if unusable
        try:
            questions = parse_answered(content) if answers else parse_questions(content)
        except ParseError as err:
            reason = _unusable_reason(choice, err)
            continue
        if choice.finish_reason == "length" and len(questions) < n:
            partial = max(partial, tuple(questions[:n]), key=len)
            reason = _CUT_OFF
            continue
        return _answered(chunk.id, questions[:n], usage=usage, attempts=attempt, short=len(questions) < n)
    if partial:
        return _answered(chunk.id, partial, usage=usage, attempts=max_attempts, short=True)
    return Answer(chunk.id, error=f"{reason} (after {max_attempts} attempts)", usage=usage, attempts=max_attempts,
                  transient=transient)


def _answered(chunk_id: str, found, **kwargs) -> Answer:
    """The Answer of parsed questions: strings, or (question, answer) pairs with --answers."""
    if found and isinstance(found[0], tuple):
        return Answer(chunk_id, tuple(q for q, _ in found), answers=tuple(a for _, a in found), **kwargs)
    return Answer(chunk_id, tuple(found), **kwargs)


def _unusable_reason(choice, err: ParseError) -> str:
    refusal = getattr(choice.message, "refusal", None) if choice and choice.message else None
    if refusal:
        return f"the model refused: {refusal[:200]}"
    if choice and choice.finish_reason == "length":
        return _CUT_OFF
    return f"unusable answer: {err}"


_CUT_OFF = "the answer was cut off at the token limit (finish_reason=length)"


def _usage(resp, messages: list[dict], content: str | None) -> Usage:
    if resp.usage is None:  # some servers send none: estimate rather than report a free run
        prompt = estimate_tokens("".join(m["content"] for m in messages))
        return Usage(1, prompt, estimate_tokens(content or ""))
    return Usage(1, resp.usage.prompt_tokens or 0, resp.usage.completion_tokens or 0)


def _transport_reason(err: openai.APIError) -> str:
    if isinstance(err, openai.APITimeoutError):
        return "the request timed out (raise --timeout if the model is slow)"
    if isinstance(err, openai.APIConnectionError):
        return "the connection to the endpoint failed"
    if isinstance(err, openai.APIStatusError):
        return f"the endpoint answered HTTP {err.status_code}: {' '.join(str(err.message).split())[:200]}"
    return f"the request failed: {type(err).__name__}"


# ---------------------------------------------------------------- the chunk's language
def language_follow_up(questions: Sequence[str], language: str, n: int,
                       answers: Sequence[str] = ()) -> list[dict]:
    """The turn after an answer with questions not in ``language``: its own answer, and the request again."""
    said: list = list(questions)
    if answers:  # --answers: the model sees its answer as it wrote it, each question with its answer
        said = [{"question": q, "answer": a} for q, a in zip(questions, answers)]
    return [
        {"role": "assistant", "content": json.dumps({"questions": said}, ensure_ascii=False)},
        {"role": "user", "content": f"Not all of these questions are in {language}. Write the {n} questions "
                                    f"again, every one of them in {language} only, as the same JSON object."},
    ]


async def ask_in_language(session: Session, chunk: Chunk, *, n: int, language: str, **kwargs) -> Answer:
    """``ask``, then once more (one request) when a question is not in the chunk's language.

    Each question in another language is replaced by a new in-language question of the second answer; any
    left over stays, for the ``wrong_language`` filter to drop and count. Both asks' usage is counted.
    """
    first = await ask(session, chunk, n=n, language=language, **kwargs)
    code = chunk.language
    wrong = [i for i, q in enumerate(first.questions) if not lang.in_language(q, code)]
    if not wrong:
        return first
    follow_up = language_follow_up(first.questions, language, n, first.answers)
    second = await ask(session, chunk, n=n, language=language, follow_up=follow_up, **{**kwargs, "max_attempts": 1})
    # With --answers a replaced question takes its own answer along.
    second_answers = second.answers or ("",) * len(second.questions)
    spare = iter([(q, a) for q, a in zip(second.questions, second_answers)
                  if q not in first.questions and lang.in_language(q, code)])
    questions, answers = list(first.questions), list(first.answers)
    for i in wrong:
        new = next(spare, None)
        if new is not None:
            questions[i] = new[0]
            if answers:
                answers[i] = new[1]
    return replace(first, questions=tuple(questions), answers=tuple(answers), usage=first.usage + second.usage,
                   attempts=first.attempts + second.attempts)


# ---------------------------------------------------------------- many chunks
async def generate(chunks: Iterable[Chunk] | AsyncIterable[Chunk], *, client: openai.AsyncOpenAI,
                   template: PromptTemplate, n: int, model: str, temperature: float = 0.0, concurrency: int = 16,
                   max_attempts: int = 3, mode: str = "json_schema", rpm: int | None = None, tpm: int | None = None,
                   on_answer: Callable[[Chunk, Answer], None], progress: bool = True,
                   total: Callable[[], int | None] | None = None, check_language: bool | None = None,
                   answers: bool = False) -> None:
    """Ask for every chunk, at most ``concurrency`` at a time; ``on_answer`` runs as each one finishes.

    ``chunks`` may be an async iterable that is still being produced (pages still being parsed); then
    ``total`` tells the progress bar the count once it is known. A run-wide ``EndpointError`` (or an error
    raised by ``on_answer`` or by the iterable) cancels the rest and is re-raised. ``check_language``
    (default: when the template names ``$language``) asks once more for questions not in the chunk's language.
    """
    if check_language is None:
        check_language = template.uses_language
    ask_one = ask_in_language if check_language else ask
    session = Session(client, mode, make_limiter(rpm, tpm))
    await session.check_reachable()
    semaphore = asyncio.Semaphore(concurrency)
    known = len(chunks) if isinstance(chunks, Sized) else None
    bar = tqdm(total=known, unit="chunk", disable=not progress, desc="questions")

    async def one(chunk: Chunk, held: bool = False) -> None:
        if not held:
            await semaphore.acquire()
        try:
            answer = await ask_one(session, chunk, template=template, n=n, model=model, temperature=temperature,
                                   max_attempts=max_attempts, language=lang.name(chunk.language), answers=answers)
        finally:
            semaphore.release()
        on_answer(chunk, answer)
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
