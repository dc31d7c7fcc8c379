"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests: deterministic answers, injectable faults.

    with FakeOpenAI(latency=0.05, faults={"429": 0.1, "prose": 0.1}) as fake:
        client = AsyncOpenAI(base_url=fake.base_url, api_key="x")

Answers are built from the words of the chunk the prompt carries between the lines ``<chunk>`` and
``</chunk>``, so a test can check which chunk each question came from. When the response schema (or the
prompt) asks for ``{"question", "answer"}`` objects, each question comes with an answer taken from the
chunk's words, or made of words the chunk lacks for chunks holding ``ungrounded_substring``. Faults are
drawn per request by a seeded RNG at the given rates: 429 500 503 drop hang malformed prose fenced numbered
few many length empty. ``/v1/files`` and ``/v1/batches`` are a Batch API whose batches the test steps
(``fake.batches``, see fakebatch.py).

A prompt asking for "keyword queries" or "situation questions" (prompts/keyword.txt, situation.txt) gets
queries of that style, built from the chunk's words the same way; each request's style is in ``log``.

Questions are written in the language the last user message names ("… in French …"; English when it names
none), or in ``language`` when given. On request the model drifts: ``wrong_language=k`` writes the last k
questions of each first answer in another language (English; French when English was asked), and
``wrong_on_reask`` keeps doing so when asked again after its answer (the conversation holds it).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fakebatch import FakeBatches

FAULTS = ("429", "500", "503", "drop", "hang", "malformed", "prose", "fenced", "numbered", "few", "many",
          "length", "empty")
PROSE = "The policy describes several arrangements in general terms and I have summarised them for you here."
_CHUNK = re.compile(r"^<chunk>\n(.*?)\n</chunk>$", re.S | re.M)
_N_IN_PROMPT = re.compile(r"\b(\d+)\s+(?:[\w-]+\s+){0,3}questions?\b", re.I)
# How the fake model writes a question in each language it knows; a, b, c are words of the chunk.
TEMPLATES = {
    "en": "What does the policy say about {a} {b} and {c} (point {i})?",
    "fr": "Que dit la politique au sujet de {a}, de {b} et de {c} (point {i}) ?",
    "de": "Was sagt die Richtlinie über {a}, {b} und {c} (Punkt {i})?",
    "es": "¿Qué dice la política sobre {a}, {b} y {c} (punto {i})?",
}
# A question in the wrong language: one chunk word among many of the other language.
DRIFT = {"en": "What exactly does the policy require regarding {a} (point {i})?",
         "fr": "Que prévoit exactement la politique au sujet de {a} (point {i}) ?"}
NAMES = {"English": "en", "French": "fr", "German": "de", "Spanish": "es"}
# How the fake model writes the other query styles (prompts/keyword.txt, prompts/situation.txt), in English.
STYLE_TEMPLATES = {
    "keyword": "{a} {b} {c}",
    "situation": "Our office handles {a} and {b} daily: what does the policy say about {c} (point {i})?",
}
_STYLE_IN_PROMPT = re.compile(r"\b(keyword queries|situation questions)\b")
_LANGUAGE_IN_PROMPT = re.compile(r"\bin (" + "|".join(NAMES) + r")\b")


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # the default backlog of 5 drops connections under bursts
    daemon_threads = True
    allow_reuse_address = True


INVENTED = "Zeppelins juggle marmalade beneath seventeen purple lighthouses."


def answer_for(chunk: str, i: int, grounded: bool = True) -> str:
    """The answer the fake server gives to question ``i`` about ``chunk``: the chunk's own words, or not."""
    if not grounded:
        return INVENTED
    words = chunk.split()
    start = (5 * i) % max(1, len(words))
    return " ".join(words[start:start + 10]) or "Nothing."


def questions_for(chunk: str, n: int, language: str = "en", wrong: int = 0, style: str = "question",
                  openers: tuple[str, ...] = ()) -> list[str]:
    """The questions the fake server writes for ``chunk``: deterministic, distinct, built from its words, in
    ``language`` (English for one it does not know), the last ``wrong`` of them in another language; a
    keyword or situation query when the prompt asks for that ``style``. ``openers``: English questions
    begin with these words in turn (the i-th question with ``openers[i % len]``), as a model's habits do."""
    template = STYLE_TEMPLATES.get(style) or TEMPLATES.get(language, TEMPLATES["en"])
    pattern = r"[A-Za-z]{4,}" if template in (TEMPLATES["en"], *STYLE_TEMPLATES.values()) else r"[^\W\d_]{4,}"
    words = re.findall(pattern, chunk) or ["coverage", "terms", "conditions"]
    salt = "" if style == "question" else style  # questions stay the ones tests saw before styles existed
    seed = int.from_bytes(hashlib.sha256((chunk + salt).encode()).digest()[:8], "big")
    out = []
    for i in range(n):
        rng = random.Random(seed + i)
        a, b, c = (rng.choice(words).lower() for _ in range(3))
        drift = i >= n - wrong
        form = DRIFT["fr" if language == "en" else "en"] if drift else template
        if openers and form == TEMPLATES["en"]:
            form = openers[i % len(openers)] + " {a} {b} and {c} (point {i})?"
        out.append(form.format(a=a, b=b, c=c, i=i + 1))
    return out


class FakeOpenAI:
    """A fake ``/v1/chat/completions`` endpoint; see the module docstring."""

    def __init__(self, latency: float = 0.0, faults: dict[str, float] | None = None, seed: int = 0,
                 api_key: str | None = None, questions_per_chunk: int | None = None, *,
                 model: str = "fake-model", known_models: tuple[str, ...] | None = None,
                 always_fail_substring: str | None = None, reject_formats: tuple[str, ...] = (),
                 hang_seconds: float = 3.0, retry_after: float = 0.05, language: str | None = None,
                 wrong_language: int = 0, wrong_on_reask: bool = False, ungrounded_substring: str | None = None,
                 keywords_as_questions: bool = False, reject_max_tokens: bool = False,
                 openers: tuple[str, ...] = ()):
        unknown = set(faults or {}) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault modes {sorted(unknown)}; known: {FAULTS}")
        self.latency, self.faults, self.api_key = latency, dict(faults or {}), api_key
        self.questions_per_chunk, self.model, self.known_models = questions_per_chunk, model, known_models
        self.always_fail_substring, self.reject_formats = always_fail_substring, tuple(reject_formats)
        self.hang_seconds, self.retry_after = hang_seconds, retry_after
        self.language, self.wrong_language, self.wrong_on_reask = language, wrong_language, wrong_on_reask
        self.ungrounded_substring = ungrounded_substring
        self.keywords_as_questions = keywords_as_questions  # keyword queries come back as questions ("…?")
        self.openers = tuple(openers)  # English questions open with these in turn (questions_for)
        self.reject_max_tokens = reject_max_tokens  # as OpenAI's reasoning models: 400 to a request with max_tokens
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests = 0  # chat-completion requests received
        self.chunks_seen: Counter[str] = Counter()
        self.fault_counts: Counter[str] = Counter()
        self.formats_seen: Counter[str] = Counter()
        # one entry per chat request: t (monotonic), chunk, fault, format, temperature, language (the one the
        # prompt asked for), reask (the conversation holds an earlier answer)
        self.log: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # the Batch API (/v1/files, /v1/batches): see fakebatch.py; tests set its lines_per_poll, expire_after
        self.batches = FakeBatches(self)
        self.batch_api = True  # False: /v1/files and /v1/batches answer 404, as on a server without them

    # ---- lifecycle
    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the FakeOpenAI first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes hanging handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stats(self) -> dict:
        with self._lock:
            return {"requests": self.requests, "max_in_flight": self.max_in_flight,
                    "faults": dict(self.fault_counts), "chunks": len(self.chunks_seen),
                    "formats": dict(self.formats_seen)}

    def record(self, body: dict) -> tuple[str | None, str]:
        """Count and log one chat request; its fault (drawn) and response format type."""
        chunk, user, asked, reask = _read_prompt(body)
        fmt_type = (body.get("response_format") or {}).get("type", "none")
        with self._lock:
            self.requests += 1
            fault = self._draw_fault(chunk)
            self.chunks_seen[chunk] += 1
            self.formats_seen[fmt_type] += 1
            if fault:
                self.fault_counts[fault] += 1
            self.log.append({"t": time.monotonic(), "chunk": chunk, "fault": fault, "format": fmt_type,
                             "temperature": body.get("temperature"), "language": asked, "reask": reask,
                             "style": style_asked(user), "max_tokens": body.get("max_tokens")})
        return fault, fmt_type

    def completion(self, body: dict, fault: str | None = None) -> dict:
        """The chat completion the fake model answers ``body`` with (given a content fault, or none)."""
        chunk, user, asked, reask = _read_prompt(body)
        fmt = body.get("response_format") or {}
        n = self.questions_per_chunk or _wanted(fmt, user.replace(chunk, ""))
        wrong = self.wrong_language if (not reask or self.wrong_on_reask) else 0
        grounded = not (self.ungrounded_substring and self.ungrounded_substring in chunk)
        answers = grounded if _answers_wanted(fmt, user.replace(chunk, "")) else None
        style = style_asked(user)
        if style == "keyword" and self.keywords_as_questions:
            style = "question"
        content, finish = _content(fault, chunk, n, self.language or asked, wrong, answers, style, self.openers)
        prompt_chars = sum(len(m.get("content") or "") for m in body.get("messages") or [])
        return {
            "id": f"chatcmpl-{self.requests}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model") or self.model,
            "choices": [{"index": 0, "finish_reason": finish, "logprobs": None,
                         "message": {"role": "assistant", "content": content, "refusal": None}}],
            "usage": {"prompt_tokens": prompt_chars // 4, "completion_tokens": len(content) // 4,
                      "total_tokens": prompt_chars // 4 + len(content) // 4},
        }

    def _draw_fault(self, chunk: str) -> str | None:
        if self.always_fail_substring and self.always_fail_substring in chunk:
            return "prose"
        r = self._rng.random()
        for name in FAULTS:
            r -= self.faults.get(name, 0.0)
            if r < 0:
                return name
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real API
    fake: FakeOpenAI

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes; without NODELAY, Nagle adds ~40 ms per response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes | dict, headers: dict | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, type_: str, code: str | None = None, headers=None) -> None:
        self._send(status, {"error": {"message": message, "type": type_, "param": None, "code": code}}, headers)

    def do_GET(self) -> None:
        fake = self.fake
        if self.path.rstrip("/") == "/stats":
            return self._send(200, fake.stats())
        if not self._authorised():
            return None
        path = self.path.split("?")[0].rstrip("/")
        if path.startswith(("/v1/files", "/v1/batches")) and not fake.batch_api:
            return self._error(404, f"no route {self.path}", "invalid_request_error")
        if path.startswith("/v1/files/") and path.endswith("/content"):
            data = fake.batches.files.get(path.split("/")[3])
            if data is None:
                return self._error(404, f"No such File object: {path.split('/')[3]}", "invalid_request_error")
            return self._send(200, data)
        if path == "/v1/batches":
            return self._send(200, {"object": "list", "data": [], "has_more": False})
        if path.startswith("/v1/batches/"):
            batch = fake.batches.retrieve(path.split("/")[3])
            if batch is None:
                return self._error(404, f"No batch found with id '{path.split('/')[3]}'.", "invalid_request_error")
            return self._send(200, batch)
        if self.path.rstrip("/") == "/v1/models":
            models = fake.known_models or (fake.model,)
            return self._send(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in models]})
        return self._error(404, f"no route {self.path}", "invalid_request_error")

    def _authorised(self) -> bool:
        key = self.fake.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        given = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        # like OpenAI, the message echoes part of the given key: callers must not pass it on to users
        self._error(401, f"Incorrect API key provided: {given[:3]}***{given[-4:]}. You can find your API key "
                         "at https://platform.openai.com/account/api-keys.", "invalid_request_error",
                    "invalid_api_key")
        return False

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        if len(raw) < length:  # the client died mid-request (a SIGKILL test): nothing was asked
            self.close_connection = True
            return None
        path = self.path.rstrip("/")
        if path in ("/v1/files", "/v1/batches") and self.fake.batch_api:
            if not self._authorised():
                return None
            if path == "/v1/files":
                return self._send(200, self.fake.batches.upload(self.headers.get("Content-Type", ""), raw))
            return self._send(200, self.fake.batches.create(json.loads(raw)))
        if path != "/v1/chat/completions":
            return self._error(404, f"no route {self.path}", "invalid_request_error")
        body = json.loads(raw or b"{}")
        if not self._authorised():
            return None
        fake = self.fake
        with fake._lock:
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            self._complete(body)
        finally:
            with fake._lock:
                fake.in_flight -= 1

    def _complete(self, body: dict) -> None:
        fake = self.fake
        model = body.get("model", "")
        if fake.known_models is not None and model not in fake.known_models:
            return self._error(404, f"The model `{model}` does not exist or you do not have access to it.",
                               "invalid_request_error", "model_not_found")
        fault, fmt_type = fake.record(body)
        if fake.reject_max_tokens and "max_tokens" in body:  # OpenAI's words to a reasoning model's request
            return self._error(400, "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                               "'max_completion_tokens' instead.", "invalid_request_error", "unsupported_parameter")
        if fmt_type in fake.reject_formats:  # llama.cpp's server answers 500 to a json_schema it cannot use
            return self._error(500, f"Unsupported response_format type: {fmt_type}", "server_error")
        if fake.latency:
            fake._stopping.wait(fake.latency)
        if fault == "hang":
            fake._stopping.wait(fake.hang_seconds)
            self.close_connection = True
            return None
        if fault == "429":
            return self._error(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded",
                               {"Retry-After": str(fake.retry_after)})
        if fault in ("500", "503"):
            return self._error(int(fault), "The server had an error while processing your request.", "server_error")
        if fault == "drop":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "4096")
            self.end_headers()
            self.wfile.write(b'{"id": "chatcmpl-')
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return None
        if fault == "malformed":
            return self._send(200, b'{"id": "chatcmpl-broken", "choices": [{"message": ')
        self._send(200, fake.completion(body, fault))

def _read_prompt(body: dict) -> tuple[str, str, str, bool]:
    """(chunk, last user message, language asked for, whether the conversation holds an earlier answer)."""
    messages = body.get("messages") or []
    users = [m.get("content") or "" for m in messages if m.get("role") == "user"]
    user = users[-1] if users else ""
    found = next((f for f in map(_CHUNK.search, users) if f), None)
    named = _LANGUAGE_IN_PROMPT.search(user)
    reask = any(m.get("role") == "assistant" for m in messages)
    return (found.group(1) if found else user), user, (NAMES[named.group(1)] if named else "en"), reask


def _wanted(fmt: dict, prompt: str) -> int:
    schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema") or {}
    items = (schema.get("properties") or {}).get("questions") or {}
    if "maxItems" in items:
        return int(items["maxItems"])
    found = _N_IN_PROMPT.search(prompt)
    return int(found.group(1)) if found else 2


def _answers_wanted(fmt: dict, prompt: str) -> bool:
    schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema") or {}
    items = ((schema.get("properties") or {}).get("questions") or {}).get("items") or {}
    return "answer" in (items.get("properties") or {}) or '"answer"' in prompt


def style_asked(prompt: str) -> str:
    """The query style a prompt asks for: "keyword", "situation", else "question"."""
    found = _STYLE_IN_PROMPT.search(prompt)
    return found.group(1).split()[0] if found else "question"


def _content(fault: str | None, chunk: str, n: int, language: str, wrong: int,
             answers: bool | None = None, style: str = "question", openers: tuple[str, ...] = ()) -> tuple[str, str]:
    """The reply's text; ``answers`` None: questions only, else each with an answer (grounded or not)."""
    if fault == "prose":
        return PROSE, "stop"
    if fault == "empty":
        return "", "stop"
    count = {"few": n - 1, "many": n + 2}.get(fault or "", n)
    qs = questions_for(chunk, max(count, 0), language, min(wrong, max(count, 0)), style, openers)
    if answers is not None and fault != "numbered":
        qs = [{"question": q, "answer": answer_for(chunk, i, answers)} for i, q in enumerate(qs)]
    if fault == "fenced":
        return "Here you go:\n```json\n" + json.dumps(qs, indent=2) + "\n```", "stop"
    if fault == "numbered":
        return "\n".join(f"{i}. {q}" for i, q in enumerate(qs, 1)), "stop"
    text = json.dumps({"questions": qs})
    if fault == "length":
        return text[: len(text) // 3], "length"
    return text, "stop"
