"""Query styles: what kinds of query a run asks for per chunk (``--query-styles question:1,keyword:1``).

A style names a prompt file under ``prompts/`` and a set of filter bounds (``filters.py``). Without
``--query-styles`` a run asks ``question:N`` (N = ``--questions-per-chunk``) through the default prompt, so
its requests, cache keys and files are those of a run before styles existed. Pure: no I/O but loading
the templates.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from . import filters, prompts, questions, spares
from .errors import ConfigError

QUESTION = "question"  # today's natural question, through prompts/default.txt (or --prompt FILE)
# style → its prompt file under prompts/, and what it asks for (shown in --help and the card)
PROMPT_FILES = {QUESTION: prompts.DEFAULT_NAME, "keyword": "keyword.txt", "situation": "situation.txt"}
DESCRIPTIONS = {
    QUESTION: "a natural, self-contained question",
    "keyword": "2-6 words as typed into a search box",
    "situation": "a user's situation ending in a question",
}
STYLES = tuple(PROMPT_FILES)
# Completion tokens a query of each style may take at most (6 words, 80 words, with room to spare), and the
# JSON object around the queries.
# A question is at most 60 words or 400 characters (filters.MAX_WORDS/MAX_CHARS), about 100 tokens.
TOKENS_PER_QUERY = {"question": 128, "keyword": 32, "situation": 160}
JSON_TOKENS = 24
MAX_PER_STYLE = 20


@dataclass(frozen=True)
class StylePlan:
    """One style of a run: its name, its loaded template and how many queries one request asks for."""

    style: str
    template: prompts.PromptTemplate
    n: int  # queries one request asks for: ``keep`` and the run's spares
    keep: int  # queries kept per chunk (--spare-questions asks more)
    capped: bool = False  # questions get a completion ceiling too (the embedded model: see ``for_endpoint``)

    def max_tokens(self, answers: bool = False) -> int | None:
        """The completion ceiling of one request: the style's longest queries plus the JSON around them;
        None for questions asked of a served model (their requests stay those of a run before styles, and
        reasoning models refuse ``max_tokens``). A small model can write one endless string (the embedded
        0.5B model: a 3,556-token "keyword", 14 minutes, then the request timed out); cut off, its complete
        queries are kept and the chunk is asked again."""
        if self.style == QUESTION and not self.capped:
            return None
        per_query = TOKENS_PER_QUERY[self.style] + (questions.COMPLETION_TOKENS_PER_ANSWER if answers else 0)
        return JSON_TOKENS + per_query * self.n

    @property
    def checks_language(self) -> bool:
        """Whether its queries are checked against the chunk's language (asked again once, then dropped)."""
        return self.template.uses_language and filters.STYLE_RULES[self.style].language_check


def parse_mix(text: str) -> tuple[tuple[str, int], ...]:
    """``"question:1,keyword:1"`` → ``(("question", 1), ("keyword", 1))``; ``ConfigError`` naming the fix."""
    example = "e.g. --query-styles question:1,keyword:1"
    mix: dict[str, int] = {}
    for part in (p.strip() for p in str(text).split(",")):
        style, sep, count = part.partition(":")
        style = style.strip().lower()
        if not part or not sep:
            raise ConfigError(f"--query-styles {text!r}: write each style as style:count ({example})")
        if style not in PROMPT_FILES:
            raise ConfigError(f"--query-styles: unknown style {style!r}: use {', '.join(STYLES)} ({example})")
        if style in mix:
            raise ConfigError(f"--query-styles names {style!r} twice: give each style once ({example})")
        try:
            n = int(count)
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_PER_STYLE:
            raise ConfigError(f"--query-styles {part!r}: the count must be a whole number from 1 to {MAX_PER_STYLE}")
        mix[style] = n
    return tuple(mix.items())


def format_mix(mix: tuple[tuple[str, int], ...]) -> str:
    """The canonical spelling of a mix, as recorded in the manifest."""
    return ",".join(f"{style}:{n}" for style, n in mix)


def load_plans(mix: tuple[tuple[str, int], ...], prompt_path: Path | None = None,
               spare: int = 0) -> tuple[StylePlan, ...]:
    """The plan of each style of ``mix``; ``prompt_path`` (``--prompt``) replaces the question style's prompt;
    each request asks ``spare`` queries more than the mix keeps (``--spare-questions``)."""
    return tuple(StylePlan(style, load_style_template(style, prompt_path), n + spare, n) for style, n in mix)


def for_endpoint(plans: tuple[StylePlan, ...], local: bool) -> tuple[StylePlan, ...]:
    """``plans`` as asked of this endpoint: the embedded model's question requests get a ceiling as well. Its
    llama.cpp server goes on generating after the client gives up on a runaway answer (asked for one
    question, the 0.5B model packed several into one string and ran for minutes), and every request behind
    it waits."""
    return tuple(replace(plan, capped=True) for plan in plans) if local else plans


def main_template(plans: tuple[StylePlan, ...]) -> prompts.PromptTemplate:
    """The run's prompt as the manifest names it: the question style's (the only one without --query-styles),
    else the first style's."""
    return next((p.template for p in plans if p.style == QUESTION), plans[0].template)


def load_style_template(style: str, prompt_path: Path | None = None) -> prompts.PromptTemplate:
    if style == QUESTION:
        return prompts.load_template(prompt_path)
    return prompts.load_template(prompts.bundled_template_path(PROMPT_FILES[style]))


def query_id(chunk_id: str, style: str, n: int) -> str:
    """A query's id: ``q-<chunk>-<n>`` for questions (as before styles existed), ``q-<chunk>-<style>-<n>``."""
    return f"q-{chunk_id}-{n}" if style == QUESTION else f"q-{chunk_id}-{style}-{n}"


# ---------------------------------------------------------------- what the renderers show
TABLE_HEADER = ("style", "per chunk", "generated", "kept", "train / eval", "dropped by")


def table_rows(styles: tuple) -> list[tuple[str, ...]]:
    """One row of strings per ``manifest.StyleCount`` (summary, inspect, report and card share them)."""
    return [(s.style, str(s.per_chunk), str(s.generated), str(s.kept), f"{s.train_pairs} / {s.eval_pairs}",
             dropped_text(s.dropped)) for s in styles]


def describe(count) -> str:
    """One line for one ``manifest.StyleCount``."""
    return (f"{count.kept} of {count.generated} kept ({count.train_pairs} train / {count.eval_pairs} eval), "
            f"{count.per_chunk} per chunk; dropped: {dropped_text(count.dropped)}")


def dropped_text(dropped: dict[str, int]) -> str:
    """ "implicit_reference 4, copied_sentence 1 (+ 3 spares left out)": spares apart, as everywhere."""
    filters, left_out = spares.apart(dropped)
    text = ", ".join(f"{reason} {n}" for reason, n in sorted(filters.items(), key=lambda kv: -kv[1])) or "none"
    return text + (f" (+ {left_out} spare{'' if left_out == 1 else 's'} left out)" if left_out else "")
