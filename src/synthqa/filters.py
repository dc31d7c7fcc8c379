"""Quality filters: chunks not worth asking about, and generated questions not worth keeping.

Pure functions over strings; no I/O. The reason keys are stable (they land in the manifest and the dataset
card), and every key has a one-line description in ``CHUNK_SKIP_REASONS`` / ``QUESTION_DROP_REASONS``.

Chunk thresholds were calibrated on the two bundled corpora (NIST AI 600-1 and the Blueprint for an AI Bill
of Rights, 511 chunks at 1000/200): see ``bench/filters_calibration.py``, which prints every skipped chunk.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from rapidfuzz import fuzz, process

# Deduplication lives in dedupe.py (it spills to disk at scale); these names stay importable from here.
from .dedupe import NEAR_DUPLICATE_RATIO, dedupe_questions, normalize_question, sort_tokens  # noqa: F401
from .grounding import (GROUNDED_LANGUAGES, MIN_GROUNDED_SHARE, content_words,
                        question_grounding, share_in_chunk)
from .language import detect, in_language, in_languages
from .standalone import implicit_reference, refers_to_context

CHUNK_SKIP_REASONS: dict[str, str] = {
    "table_of_contents": "table of contents (dotted leaders or lines ending in page numbers)",
    "references": "bibliography / endnotes (citations with authors, years, URLs, DOIs)",
    "urls": "mostly URLs",
    "numbers": "mostly numbers and punctuation",
    "too_short": "too little text to ask about",
    "names": "mostly lines of capitalised names: panelists, contributors, acknowledgements, title pages",
}

QUESTION_DROP_REASONS: dict[str, str] = {
    "empty": "empty question",
    "wrong_language": "not in its chunk's language (after one re-ask)",
    "not_a_question": "not phrased as a question (a situation query must end in one)",
    "not_keywords": "a keyword query phrased as a question (a question mark, or a what/how … opener)",
    "too_short": "fewer words than its style allows (question 4, keyword 2, situation 8)",
    "too_long": "longer than its style allows (question 60 words or 400 characters, keyword 6 words, situation "
                "80 words or 600 characters)",
    "refers_to_context": "refers to 'the context' / 'the text' instead of standing alone",
    "implicit_reference": "leans on something it never names ('these X', 'this principle', 'the system')",
    "copied_sentence": "copies a sentence of its chunk nearly verbatim",
    "ungrounded_question": "its topic words mostly do not occur in its chunk (after stemming)",
    "duplicate": "same question as an earlier one",
    "near_duplicate": "almost the same question as an earlier one",
}

# --- chunks ------------------------------------------------------------------------------------------------

MIN_LETTERS = 120  # title pages and page-tail fragments sit below this; the shortest real paragraph is ~140
MIN_LETTER_SHARE = 0.5  # of non-space characters; prose is ~0.8, numeric tables and TOCs fall far below
MIN_URL_SHARE = 0.5  # of non-space characters inside URLs
# A reference list needs both: enough citation-looking lines, and a large share of the chunk's lines.
MIN_CITATION_LINES = 2
MIN_CITATION_LINE_SHARE = 0.3

_URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w.-]+\.(?:gov|org|com|edu|net|int|io)/\S*", re.I)
_DOTTED_LEADER = re.compile(r"(?:\.\s?){5,}\s*\d+\s*$|…{2,}\s*\d+\s*$")
_PAGE_NUMBER_LINE = re.compile(r"^\s*\d{1,3}\s*$|\s\d{1,3}\s*$")
_TOC_HEADING = re.compile(r"^\s*(?:table of )?contents\s*$", re.I | re.M)
_URL_CUE = re.compile(r"https?://|www\.", re.I)
_MONTHS = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_CITATION_CUES = re.compile(
    "|".join(
        (
            r"\bet al\b",
            r"\bdoi\b|\b10\.\d{4,}/",
            r"\baccessed\b",
            r"\barxiv\b",
            r"\((?:" + _MONTHS + r"\s)?(?:19|20)\d{2}[a-z]?\)",  # (2023) or (March 2024)
            _MONTHS + r"\s\d{1,2},?\s(?:19|20)\d{2}",  # Jun. 24, 2022
            r"^\s*\[\d{1,3}\]",  # [12] Author …
            r"^\s*\d{1,3}\.\s?[A-Z][^\n]*\.\s",  # 12. Author. Title. …  (endnote numbering + sentence)
            r"^[A-Z][\w'’-]+,\s(?:[A-Z]\.\s?)+",  # Surname, A. B.
        )
    ),
    re.I | re.M,
)


def chunk_skip_reason(text: str) -> str | None:
    """Why a chunk is not worth asking questions about, as a key of ``CHUNK_SKIP_REASONS``; None to keep it."""
    lines = [line for line in text.splitlines() if line.strip()]
    compact = re.sub(r"\s+", "", text)
    letters = sum(ch.isalpha() for ch in compact)
    if _is_table_of_contents(text, lines):
        return "table_of_contents"
    if _is_reference_list(lines):
        return "references"
    if compact and sum(len(re.sub(r"\s+", "", m)) for m in _URL.findall(text)) / len(compact) >= MIN_URL_SHARE:
        return "urls"
    if len(compact) >= MIN_LETTERS and letters / len(compact) < MIN_LETTER_SHARE:
        return "numbers"
    if letters < MIN_LETTERS:
        return "too_short"
    if _is_names_list(lines, letters):
        return "names"
    return None


def _is_table_of_contents(text: str, lines: list[str]) -> bool:
    if sum(bool(_DOTTED_LEADER.search(line)) for line in lines) >= 2:
        return True
    # A "Contents" heading whose entries' page numbers were extracted on their own lines or line ends.
    if _TOC_HEADING.search(text) and lines:
        return sum(bool(_PAGE_NUMBER_LINE.search(line)) for line in lines) / len(lines) >= 0.3
    return False


def _is_reference_list(lines: list[str]) -> bool:
    # URLs count as citation lines, but a bare list of links (no author, year, DOI …) is "urls".
    proper = sum(bool(_CITATION_CUES.search(line)) for line in lines)
    cited = sum(bool(_CITATION_CUES.search(line) or _URL_CUE.search(line)) for line in lines)
    return proper > 0 and cited >= MIN_CITATION_LINES and cited / max(len(lines), 1) >= MIN_CITATION_LINE_SHARE


# A line of a names list: "Karen Kornbluh, Senior Fellow, German Marshall Fund", "Access Now", "Cisco Systems".
# Nearly every word is capitalised, except the joining words of organisation names and titles.
_JOINERS = frozenset("of and for the at on in to de du la von van der & | - – —".split())
MIN_NAME_LINES = 5
MIN_NAME_LETTER_SHARE = 0.6  # of the chunk's letters; the panel pages of corpora/ mixing names and prose keep


def _is_names_list(lines: list[str], letters: int) -> bool:
    """Mostly short Title Case lines: lists of panelists, respondents, contributors, acknowledgements."""
    named = [line for line in lines if _is_name_line(line)]
    named_letters = sum(ch.isalpha() for line in named for ch in line)
    return len(named) >= MIN_NAME_LINES and named_letters >= MIN_NAME_LETTER_SHARE * max(letters, 1)


def _is_name_line(line: str) -> bool:
    words = [w for w in line.replace("•", " ").split() if any(c.isalpha() for c in w)]
    if not words or len(words) > 16 or line.rstrip().endswith(":") or ";" in line:
        # nor a label like "Panelists:" (labels count for neither side), nor a list of categories
        # ("Data Privacy; Confabulation;" in NIST's action tables: content, not names)
        return False
    words = [w for w in words if w.casefold() not in _JOINERS]
    if not words:
        return False
    capitalised = sum(w.lstrip("(\"“‘'").strip()[:1].isupper() for w in words)
    # a sentence has lower-case verbs and articles; "Dr. A. Jones" and "Inc." are not sentence ends
    return capitalised / len(words) >= 0.75 and not re.search(r"[a-z]{3,}\.\s+[a-z]", line)


# --- questions -----------------------------------------------------------------------------------------------

MIN_WORDS = 4
MAX_WORDS = 60
MAX_CHARS = 400
COPY_RATIO = 90  # rapidfuzz ratio against one chunk sentence

_INTERROGATIVES = frozenset(
    "what which who whom whose when where why how is are was were do does did can could should would will "
    "shall may might must has have had".split()
)
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n\s*\n|•")
_WH_WORDS = frozenset({"what", "which", "who", "whom", "whose", "when", "where", "why", "how"})
_QUESTION_MARK = re.compile(r"[?\uff1f\u061f\u037e]|;\s*$")  # also full-width, Arabic, Greek (";" at the end)
_STATEMENT_BREAK = re.compile(r"[;.]\s+\S")  # a sentence or clause ends and another begins


@dataclass(frozen=True)
class StyleRules:
    """The bounds of one query style (``styles.py``): its length, its form, and which checks apply."""

    min_words: int
    max_words: int
    max_chars: int
    form: str  # "question": phrased as a question; "keywords": not a question; "ends_in_question": ends in "?"
    copy_check: bool = True  # a 2-6 word query may well repeat a short heading: not a copied sentence
    # Language identification is unreliable on a few words ("validation" is French too): a keyword query's
    # words must come from its chunk (grounding), which keeps it in the chunk's language instead.
    language_check: bool = True
    grounded_share: float = MIN_GROUNDED_SHARE  # of its content words that must occur in its chunk


# A keyword query names only the chunk's topic, so all its words must rest on it mostly; a situation adds who
# asks and why ("Our county uses …"), words its chunk need not hold.
STYLE_RULES = {
    "question": StyleRules(MIN_WORDS, MAX_WORDS, MAX_CHARS, "question"),
    "keyword": StyleRules(2, 6, 80, "keywords", copy_check=False, language_check=False),
    "situation": StyleRules(8, 80, 600, "ends_in_question", grounded_share=0.4),
}


def question_drop_reason(question: str, chunk_text: str, language: str | None = None, *,
                         chunk_language: str | None = None, style: str = "question",
                         language_ok: bool | None = None) -> str | None:
    """Why one generated query should be dropped, as a key of ``QUESTION_DROP_REASONS``; None to keep it.

    ``language`` is the chunk's language code when questions are checked against it (else None);
    ``chunk_language`` is the chunk's language for the grounding check even when they are not (default:
    ``language``, else detected: a person's edit in ``curate``), so English questions a prompt asks for
    about a French chunk are not judged by it. ``style`` picks the bounds of ``STYLE_RULES``. ``language_ok``:
    the language check of ``question_text(question)`` already made for many questions at once
    (``language.in_languages``); None makes it here."""
    rules = STYLE_RULES[style]
    q = question_text(question)
    if not q:
        return "empty"
    if (language is not None and rules.language_check
            and not (in_language(q, language) if language_ok is None else language_ok)):
        return "wrong_language"
    words = q.split()
    if form_reason := _form_reason(q, words, rules.form):
        return form_reason
    if len(words) < rules.min_words:
        return "too_short"
    if len(words) > rules.max_words or len(q) > rules.max_chars:
        return "too_long"
    if refers_to_context(q):
        return "refers_to_context"
    if implicit_reference(q):
        return "implicit_reference"
    if rules.copy_check and _copies_a_sentence(q, chunk_text):
        return "copied_sentence"
    code = chunk_language or language or detect(chunk_text)
    if (code is None or code in GROUNDED_LANGUAGES) and question_grounding(q, chunk_text) < rules.grounded_share:
        return "ungrounded_question"  # as grounding.question_grounded judges, at the style's share
    return None


def _form_reason(q: str, words: list[str], form: str) -> str | None:
    """"not_a_question" / "not_keywords" when the query has not the form of its style, else None."""
    first = words[0].casefold().strip(string.punctuation)
    if form == "keywords":
        return "not_keywords" if "?" in q or first in _WH_WORDS else None
    if form == "ends_in_question":
        return None if q.rstrip(" \"'”’»)").endswith(("?", "？")) else "not_a_question"
    if "?" not in q and first not in _INTERROGATIVES:
        # "In which year …" / "Under what conditions …": a preposition before the question word
        if not {w.casefold().strip(string.punctuation) for w in words[:3]} & _WH_WORDS:
            return "not_a_question"
    if not _QUESTION_MARK.search(q) and _STATEMENT_BREAK.search(q):
        # a question word put in front of the chunk's statements: "Which communities include …; … . This …"
        return "not_a_question"
    return None


@dataclass(frozen=True, slots=True)
class ChunkQueries:
    """One answer's queries and what judging them needs (``drop_reasons``); ``check_language``: its style's
    prompt names ``$language``, so a query not in the chunk's language is dropped."""

    chunk_text: str
    chunk_language: str | None
    style: str
    queries: tuple[str, ...]
    check_language: bool


def drop_reasons(block: Sequence[ChunkQueries]) -> list[list[str | None]]:
    """``question_drop_reason`` of every query of a block of answers, the language check made for the whole
    block at once (``language.in_languages``). Pure, so the pipeline can judge blocks in worker processes."""
    texts = [question_text(q) for item in block for q in item.queries]
    codes = [item.chunk_language if item.check_language else None for item in block for _ in item.queries]
    verdicts = iter(in_languages(texts, codes).tolist())
    return [[question_drop_reason(q, item.chunk_text, item.chunk_language if item.check_language else None,
                                  chunk_language=item.chunk_language, style=item.style, language_ok=next(verdicts))
             for q in item.queries] for item in block]


def question_text(question: str) -> str:
    """The question as the checks read it: single spaces, no leading or trailing whitespace."""
    return " ".join(question.split())


def _copies_a_sentence(question: str, chunk_text: str) -> bool:
    sentences = _sentences(chunk_text)
    if not sentences:
        return False
    needle = normalize_question(question)
    return process.extractOne(needle, sentences, scorer=fuzz.ratio, score_cutoff=COPY_RATIO) is not None


@lru_cache(maxsize=512)  # every question of a chunk is checked against the same sentences
def _sentences(chunk_text: str) -> tuple[str, ...]:
    flat = re.sub(r"[ \t]*\n[ \t]*(?!\s*\n)", " ", chunk_text)  # PDF line wraps are not sentence ends
    parts = (normalize_question(s) for s in _SENTENCE_END.split(flat))
    return tuple(p for p in parts if p)


def duplicate_reason(question: str, others: Sequence[str]) -> str | None:
    """"duplicate" or "near_duplicate" when ``question`` repeats one of ``others`` as ``dedupe_questions``
    judges it, else None. Linear in ``others``: for checking one new question (a person's edit)."""
    key = normalize_question(question)
    normalized = [normalize_question(o) for o in others]
    if key in normalized:
        return "duplicate"
    near = process.extractOne(key, normalized, scorer=fuzz.token_sort_ratio, processor=None,
                              score_cutoff=NEAR_DUPLICATE_RATIO)
    return "near_duplicate" if near is not None else None


@dataclass(frozen=True, slots=True)
class FilterResult:
    """Which questions survive: ``kept`` indices in order, ``dropped`` index → reason, ``counts`` per reason."""

    kept: tuple[int, ...]
    dropped: dict[int, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # every key of QUESTION_DROP_REASONS, zeros included


def filter_questions(items: Sequence[tuple[str, str, str]],
                     languages: Sequence[str | None] | None = None,
                     chunk_languages: Sequence[str | None] | None = None) -> FilterResult:
    """Apply the per-question checks, then dedupe the survivors; ``items`` are (query_id, question, chunk_text).

    ``languages`` gives each item's chunk language to check the question against (None: not checked);
    ``chunk_languages`` each chunk's language for the grounding check (default: ``languages``)."""
    dropped: dict[int, str] = {}
    for i, (_, question, chunk_text) in enumerate(items):
        reason = question_drop_reason(question, chunk_text, languages[i] if languages is not None else None,
                                      chunk_language=chunk_languages[i] if chunk_languages is not None else None)
        if reason is not None:
            dropped[i] = reason
    # Dedupe only among survivors, so a dropped question never shadows a good later copy.
    survivors = [i for i in range(len(items)) if i not in dropped]
    for pos, reason in dedupe_questions([(items[i][0], items[i][1]) for i in survivors]):
        dropped[survivors[pos]] = reason
    counts = dict.fromkeys(QUESTION_DROP_REASONS, 0)
    for reason in dropped.values():
        counts[reason] += 1
    kept = tuple(i for i in range(len(items)) if i not in dropped)
    return FilterResult(kept=kept, dropped=dict(sorted(dropped.items())), counts=counts)


# --- reference answers and neighbours (flags for a person to look at; nothing is dropped) ---------------------

def answer_grounding(answer: str, chunk_text: str) -> float:
    """Share of the answer's content words found in its chunk (by stem or prefix); 1.0 when it has none."""
    return share_in_chunk(content_words(answer), chunk_text)


def answer_grounded(answer: str, chunk_text: str) -> bool:
    """False for an answer whose content words mostly do not occur in its chunk (a likely invention)."""
    return answer_grounding(answer, chunk_text) >= MIN_GROUNDED_SHARE


def nearest_questions(questions: Sequence[str], block: int = 1024) -> list[tuple[int, int]]:
    """For each question, ``(index, score)`` of the most similar other question (token_sort_ratio, 0-100);
    ``(-1, 0)`` when it is alone. Memory stays at ``block × n`` scores."""
    texts = [sort_tokens(normalize_question(q)) for q in questions]  # fuzz.ratio of these is token_sort_ratio
    nearest: list[tuple[int, int]] = []
    for start in range(0, len(texts), block):
        scores = process.cdist(texts[start:start + block], texts, scorer=fuzz.ratio, processor=None,
                               dtype=np.uint8, workers=1)
        for row in range(scores.shape[0]):
            scores[row, start + row] = 0
            j = int(scores[row].argmax()) if len(texts) > 1 else -1
            nearest.append((j, int(scores[row, j])) if j >= 0 else (-1, 0))
    return nearest
