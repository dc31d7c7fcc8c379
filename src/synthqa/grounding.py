"""Does a text rest on its chunk: the share of its content words that the chunk holds, after stemming.

Used for generated questions (a question whose words mostly are not in its chunk asks about something
else: the prompt's own examples, the model's guesses) and for reference answers (a likely invention).
Pure functions over strings; no I/O.
"""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

MIN_GROUNDED_SHARE = 0.5  # an answer is grounded when at least half of its content words occur in its chunk
STEM_CHARS = 5  # "policies" and "policy" meet at "polic": a crude stem that also joins "discrimination/-atory"
_WORD = re.compile(r"[^\W_]+")
_STOPWORDS = frozenset(
    "the and for are but not you all any can had her was one our out has have from they will with this that "
    "what when which who whom whose where why how than then them these those their there been being into onto "
    "upon also such each may must shall should would could does did doing its only over under more most other yes "
    "some very just about after before while within without through between".split()
)
# Words that shape an English question rather than name its topic ("What are the main objectives of …"):
# they need not occur in the chunk. Measured on the embedded model's questions of corpora/ (bench_filters).
QUESTION_FRAME = frozenset(
    "main key purpose purposes example examples benefit benefits role roles important importance impact impacts "
    "ensure difference differences differ type types kind kinds way ways step steps factor factors consideration "
    "considerations component components aspect aspects goal goals objective objectives concern concerns "
    "challenge challenges issue issues potential specific common primary different describe explain mean means "
    "meaning definition define defined used use using work works help helps relate related affect affects "
    "address addressed addresses many much include includes including involved provide provided need needs "
    "significance significant major best possible current new like name names point points finding findings "
    "topic topics discuss discussed focus matter matters say says said associated consequence consequences "
    "concept concepts cover covered covers made make makes happen happens reason reasons result results "
    "overview summary idea ideas approach approaches long often soon".split()
)
# Questions are checked in English only: the frame words above are English, and a question in another
# language is left to the language check (a French question's own frame words are not in an English list).
GROUNDED_LANGUAGES = frozenset({"en", "und"})
_ENGLISH = Stemmer.Stemmer("english")


def content_words(text: str) -> list[str]:
    """Casefolded words that carry meaning: numbers, and words of 3+ letters that are not stopwords."""
    words = _WORD.findall(text.casefold())
    # isalpha first: it is true for nearly every word, and answers in C what the digit scan answers in Python
    return [w for w in words
            if (len(w) >= 3 and w not in _STOPWORDS) or (not w.isalpha() and any(c.isdigit() for c in w))]


def share_in_chunk(words: list[str], chunk_text: str) -> float:
    """Share of ``words`` found in the chunk, by Snowball stem or by 5-letter prefix; 1.0 for no words.

    Either match counts: a drop filter must not punish a paraphrase ("studies" / "study" meet by stem,
    "discriminatory" / "discrimination" by prefix)."""
    if not words:
        return 1.0
    stems, prefixes = _chunk_keys(chunk_text)
    return sum(_ENGLISH.stemWord(w) in stems or w[:STEM_CHARS] in prefixes for w in words) / len(words)


@lru_cache(maxsize=512)  # every question of a chunk is checked against the same chunk
def _chunk_keys(chunk_text: str) -> tuple[frozenset[str], frozenset[str]]:
    words = list(set(content_words(chunk_text)))  # each distinct word stemmed once
    return frozenset(_ENGLISH.stemWords(words)), frozenset(w[:STEM_CHARS] for w in words)


def question_grounding(question: str, chunk_text: str) -> float:
    """Share of the question's topic words (content words less the question's frame) found in its chunk."""
    return share_in_chunk([w for w in content_words(question) if w not in QUESTION_FRAME], chunk_text)


def question_grounded(question: str, chunk_text: str, language: str | None = None) -> bool:
    """False for a question whose topic words mostly do not occur in its chunk.

    ``language`` is the chunk's language code: questions of other languages than English (``en``, ``und`` or
    not known) are not judged. A question at exactly half is kept: only "mostly not in the chunk" drops."""
    if language is not None and language not in GROUNDED_LANGUAGES:
        return True
    return question_grounding(question, chunk_text) >= MIN_GROUNDED_SHARE
