"""Spare queries: ask each chunk for more queries than are kept (``--spare-questions M``) and keep those that
vary the dataset's openers.

A small model opens most questions the same way whatever the prompt says: "What are …" heads a third of the
embedded 0.5B model's questions (docs/queries.md). Asked for two more per chunk it writes other openers
among them ("When is …", "Why does …"), and a spare also stands in for a query the filters dropped, so more
chunks keep their full count.

Of a chunk's queries of one style that pass the filters and are no exact duplicate, the first ``keep`` in the
model's order are kept, except that a query whose opener already holds more than ``MAX_OPENER_SHARE`` of the
style's kept queries yields its place to a later one whose opener does not; places no such query fills go to
the queries whose openers the style has kept least. The spares left out are never stored, so they cannot
shadow a later chunk's copy; near duplicates are judged afterwards among the kept queries. The choice for a
chunk depends on the chunks before it (one count per opener, in input order): the same inputs and answers
keep the same queries, while ``--limit`` or another document can change what a later chunk keeps. Pure: no
I/O.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

SPARE_FILTER = "spare"  # the queries not kept, among the manifest's question_filters
MAX_OPENER_SHARE = 0.2  # an opener over this share of a style's kept queries yields to a spare
OPENER_WORDS = 2
_WORD = re.compile(r"[\w'’-]+")


def apart(counts: dict[str, int]) -> tuple[dict[str, int], int]:
    """(the filters' counts without the spares, the spares left out): renderers show spares apart, since a
    spare left out is no bad query, only one more than the chunk keeps."""
    return {k: v for k, v in counts.items() if k != SPARE_FILTER}, counts.get(SPARE_FILTER, 0)


def left_out_text(spare: int, left_out: int) -> str:
    """ "34 left out (asked 2 more a request)", or "" without spares: the summary's and inspect's "spares"
    line."""
    if not spare:
        return ""
    return f"{left_out:,} left out (asked {spare} more a request)"


def describe(spare: int, left_out: int = 0) -> str:
    """The sentence the card adds about a run's spares ("" without them)."""
    if not spare:
        return ""
    return (f" Each request asked for {spare} spare quer{'y' if spare == 1 else 'ies'}: of a chunk's queries that "
            f"passed the filters, those kept were the first in the model's order whose opener held at most "
            f"{MAX_OPENER_SHARE:.0%} of the kept ones so far (`--spare-questions {spare}`); {left_out:,} "
            f"quer{'y was' if left_out == 1 else 'ies were'} left out as spares (the manifest's `{SPARE_FILTER}` "
            f"count, not among the filters' drops below).")


def opener(text: str, words: int = OPENER_WORDS) -> str:
    """The first ``words`` words, lower-cased, without punctuation: "what are", "how does"."""
    return " ".join(_WORD.findall(text.lower())[:words])


class OpenerChooser:
    """Which of each chunk's surviving queries to keep, chunk after chunk in input order (see the module)."""

    def __init__(self, max_share: float = MAX_OPENER_SHARE) -> None:
        self.max_share = max_share
        self._counts: dict[str, Counter] = defaultdict(Counter)  # style → opener → queries kept
        self._kept: Counter = Counter()  # style → queries kept

    def choose(self, style: str, texts: list[str], keep: int) -> list[bool]:
        """True for each of one chunk's surviving ``texts`` of ``style`` (in the model's order) that is kept:
        at most ``keep``."""
        chosen = [False] * len(texts)
        openers = [opener(t) for t in texts]
        for i in range(len(texts)):  # the model's order, skipping overused openers
            if sum(chosen) < keep and not self._overused(style, openers[i]):
                self._take(style, openers[i])
                chosen[i] = True
        while sum(chosen) < keep and not all(chosen):  # places left: the least used opener first
            counts = self._counts[style]
            i = min((i for i in range(len(texts)) if not chosen[i]), key=lambda i: (counts[openers[i]], i))
            self._take(style, openers[i])
            chosen[i] = True
        return chosen

    def _overused(self, style: str, words: str) -> bool:
        return self._counts[style][words] > self.max_share * self._kept[style]

    def _take(self, style: str, words: str) -> None:
        self._counts[style][words] += 1
        self._kept[style] += 1
