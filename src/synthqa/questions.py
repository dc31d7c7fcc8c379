"""The asking stage's pure core: what to ask, what an answer says, and whether to ask again.

``build_messages``/``response_format`` build a request, ``parse_questions``/``parse_answered`` read an
answer (lenient), ``judge`` decides what one reply means (usable, cut off, or worth asking again) and
``give_up`` what a chunk's outcome is when the attempts run out. No network here: the transports are thin
shells around these functions, so no parse or filter logic exists twice: ``live.py`` asks an endpoint
request by request (async), ``batchfiles.py`` writes the same requests into batch files and reads their
results (OpenAI Batch, vLLM ``run-batch``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from . import language as lang
from .prompts import PromptTemplate, render
from .records import Answer, Usage

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




# ---------------------------------------------------------------- what a reply means
CUT_OFF = "the answer was cut off at the token limit (finish_reason=length)"


@dataclass(frozen=True)
class Verdict:
    """What one reply means: the questions to keep (``found``), or why to ask again (``reason``).

    A reply cut off at the token limit keeps what it held in ``partial``, used when no better reply comes."""

    found: tuple = ()
    reason: str | None = None
    partial: tuple = ()

    @property
    def usable(self) -> bool:
        return self.reason is None


def judge(content: str | None, finish_reason: str | None, refusal: str | None, n: int,
          answers: bool = False) -> Verdict:
    """The verdict on one reply of the model (asked for ``n`` questions, each with its answer if ``answers``)."""
    try:
        found = parse_answered(content) if answers else parse_questions(content)
    except ParseError as err:
        if refusal:
            return Verdict(reason=f"the model refused: {refusal[:200]}")
        return Verdict(reason=CUT_OFF if finish_reason == "length" else f"unusable answer: {err}")
    if finish_reason == "length" and len(found) < n:
        return Verdict(reason=CUT_OFF, partial=tuple(found[:n]))
    return Verdict(found=tuple(found[:n]))


def answered(chunk_id: str, found: Sequence, n: int, **kwargs) -> Answer:
    """The Answer of parsed questions: strings, or (question, answer) pairs with --answers."""
    found = tuple(found)
    kwargs.setdefault("short", len(found) < n)
    if found and isinstance(found[0], tuple):
        return Answer(chunk_id, tuple(q for q, _ in found), answers=tuple(a for _, a in found), **kwargs)
    return Answer(chunk_id, found, **kwargs)


def give_up(chunk_id: str, reason: str, partial: Sequence, *, n: int, max_attempts: int, usage: Usage,
            transient: bool = False) -> Answer:
    """A chunk's outcome when its attempts ran out: the questions of a cut-off reply, else the last reason."""
    if partial:
        return answered(chunk_id, partial, n, usage=usage, attempts=max_attempts, short=True)
    return Answer(chunk_id, error=f"{reason} (after {max_attempts} attempts)", usage=usage, attempts=max_attempts,
                  transient=transient)


def attempt_temperature(temperature: float, attempt: int) -> float:
    """At temperature 0 a re-ask would get the very same unusable answer back: re-asks are warmed up."""
    return temperature if attempt == 1 else max(temperature, REASK_TEMPERATURE)


def reply_usage(prompt_tokens: int | None, completion_tokens: int | None, messages: list[dict],
                content: str | None) -> Usage:
    """One request's usage; estimated when the server reported none, rather than a free run."""
    if prompt_tokens is None and completion_tokens is None:
        return Usage(1, estimate_tokens("".join(m["content"] for m in messages)), estimate_tokens(content or ""))
    return Usage(1, prompt_tokens or 0, completion_tokens or 0)


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


def wrong_language(answer: Answer, code: str | None) -> list[int]:
    """Positions of the questions of ``answer`` not in the language ``code``."""
    return [i for i, q in enumerate(answer.questions) if not lang.in_language(q, code)]


def merge_language(first: Answer, second: Answer, code: str | None) -> Answer:
    """``first`` with each question not in ``code`` replaced by a new in-language one of ``second``.

    Any left over stays, for the ``wrong_language`` filter to drop and count; both asks' usage is counted.
    With --answers a replaced question takes its own answer along."""
    second_answers = second.answers or ("",) * len(second.questions)
    spare = iter([(q, a) for q, a in zip(second.questions, second_answers)
                  if q not in first.questions and lang.in_language(q, code)])
    questions, answers = list(first.questions), list(first.answers)
    for i in wrong_language(first, code):
        new = next(spare, None)
        if new is not None:
            questions[i] = new[0]
            if answers:
                answers[i] = new[1]
    return replace(first, questions=tuple(questions), answers=tuple(answers), usage=first.usage + second.usage,
                   attempts=first.attempts + second.attempts)


# The live transport's names, importable from here as before the split (``from synthqa.questions import
# generate``): loaded on first use, since live.py imports this module.
_LIVE = frozenset({"Session", "ask", "ask_in_language", "endpoint_host", "generate", "make_client"})


def __getattr__(name: str):
    if name in _LIVE:
        from . import live

        return getattr(live, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
