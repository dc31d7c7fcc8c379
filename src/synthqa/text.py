"""Clean extracted text before it is chunked: one pure function per rule, and two passes over a document.

Retrieval indexes what the chunks hold and the questions copy it, so text nobody types ("speciﬁc",
"Inno-\\nvators", a running head on every chunk of a page) is fixed here, once, before chunking:

- ``nfkc``: Unicode NFKC: ligatures (ﬁ → fi), full-width forms, compatibility spaces; the letters of every
  script stay as they are.
- ``join_hyphenated``: ``xxx-\\nyyy`` becomes ``xxxyyy`` unless the document spells ``xxx-yyy`` elsewhere
  more often than ``xxxyyy`` (a real compound keeps its hyphen and loses the line break).
- ``strip_running_lines``: lines among the first or last four of a page that repeat (digits masked) at the
  same edge of at least half of the document's pages — running heads, footers, page numbers — and a
  page-number-only first or last line that is the page's own number.

The last two need the whole document, so ``DocumentCleaner`` reads it twice: a first pass collects the
word and edge-line counts and spools the pages to a temporary file (kept in memory up to ``SPOOL_BYTES``,
then on disk), a second pass yields the cleaned pages. Memory stays bounded by the vocabulary, not the
document, and no page is extracted (or OCR'd) twice. The price: a document's first page comes out only
once the whole document has been read.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields

from .records import Page

# Unicode space separators other than the plain space (NBSP, en/em spaces, thin spaces, ideographic …).
_UNICODE_SPACES = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_SPACE_RUNS = re.compile(r"[ \t]+")
_TRAILING_SPACE = re.compile(r" +$", re.MULTILINE)
_MANY_NEWLINES = re.compile(r"\n{3,}")
# A soft hyphen at a line end marks where the typesetter broke a word: the halves belong together.
_SOFT_HYPHEN_BREAK = re.compile("\u00ad[ \t]*\r?\n[ \t]*")
# A word (or a hyphenated chain: "state-of-the-") ending a line with a hyphen, and the word that starts the
# next line. U+2010 is the typographic hyphen, which NFKC leaves alone.
_LINE_BREAK_HYPHEN = re.compile(r"(?<![\w\-\u2010])((?:\w+[\-\u2010])*\w+)[\-\u2010][ \t]*\n[ \t]*(\w+)")
_URL_CHARS = frozenset("/.=_~%#?&:")  # before a broken word, these make it part of a URL or file name
# Words as the document spells them, hyphenated compounds whole; a hyphen at a line end splits them.
_WORD = re.compile(r"[^\W\d_]+(?:[\-\u2010][^\W\d_]+)*")
_DIGITS = re.compile(r"\d+")
# After a hyphen at a line end, these start the rest of a coordination ("energy- and carbon-intensive").
_CONJUNCTIONS = frozenset({"and", "or", "nor", "und", "oder", "et", "ou"})
_ROMAN = r"(?=[ivxlcdm]+\b)m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})"
# A line that is only a page number: "12", "- 12 -", "Page 12", "12 of 40", "12/40", "iv", "Page iv".
_PAGE_NUMBER = re.compile(
    rf"(?:page|p\.|pg\.?)?\s*(?:\d{{1,5}}|{_ROMAN})(?:\s*(?:of|/)\s*\d{{1,5}})?|[-–—]\s*\d{{1,5}}\s*[-–—]",
    re.IGNORECASE,
)

EDGE_LINES = 4  # running heads and footers are looked for among a page's first and last 4 non-empty lines
MIN_PAGES_FOR_RUNNING_LINES = 3  # on 1–2 pages a repeated line is no evidence of a running head
# Below this many pages a running head must be on every page but one (a title page): on 4 pages, "half" is
# 2, and two pages that happen to open with the same sentence are far likelier than alternating heads.
HALF_PAGES_FROM = 8
MAX_RUNNING_LINE = 200  # characters: a running head is one printed line; a longer repeated line is content
SPOOL_BYTES = 32 << 10  # a document's pages are held in memory up to 32 KiB of text, beyond that on disk


def normalize_text(text: str) -> str:
    """Tidy whitespace of one page's text so chunks and questions do not depend on layout quirks.

    Soft hyphens go, every unicode space becomes a space, runs of spaces/tabs collapse, lines lose trailing
    spaces, 3+ newlines become 2, and the ends are stripped. This is all ``--no-clean`` does.
    """
    text = text.replace("\u00ad", "").replace("\r\n", "\n").replace("\r", "\n")
    text = _UNICODE_SPACES.sub(" ", text)
    text = _SPACE_RUNS.sub(" ", text)
    text = _TRAILING_SPACE.sub("", text)
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


def join_soft_hyphens(text: str) -> str:
    """Join the halves of a word broken at a line end after a soft hyphen (U+00AD): ``compli\\u00ad\\nance``."""
    return _SOFT_HYPHEN_BREAK.sub("", text)


def nfkc(text: str) -> tuple[str, int]:
    """Unicode NFKC of ``text`` and how many characters it replaced (ligatures, full-width forms, …).

    NFKC only folds compatibility variants: the letters of every script (é, ß, Greek, CJK …) are kept.
    """
    if unicodedata.is_normalized("NFKC", text):
        return text, 0
    changed = sum(1 for ch in text if not unicodedata.is_normalized("NFKC", ch))
    return unicodedata.normalize("NFKC", text), changed


def count_words(text: str, into: Counter) -> None:
    """Add the words of ``text`` to ``into``: lower-cased, compounds whole, words broken at a line end left
    out (so that a count says how often a spelling occurs *elsewhere*)."""
    into.update(word.lower() for word in _WORD.findall(_LINE_BREAK_HYPHEN.sub(" ", text)))


def join_hyphenated(text: str, words: Mapping[str, int]) -> tuple[str, int, int]:
    """Mend words hyphenated at a line end; returns the text, how many were joined and how many kept.

    ``words`` counts the document's words (``count_words``). ``xxx-\\nyyy`` becomes ``xxxyyy`` when the
    document spells it so elsewhere at least as often as ``xxx-yyy``, or spells neither and ``xxx`` and
    ``yyy`` are not both words of it ("Inno-\\nvators"); otherwise the compound keeps its hyphen and loses
    the line break ("risk-\\nbased", "privacy-\\nenhancing"). Digits ("COVID-\\n19"), chains
    ("state-of-the-\\nart"), URLs (".../presidential-\\nactions/"), capitalised second parts
    ("End-\\nUsers") and all-capital halves never joined elsewhere ("TITLE-\\nFOREWORD") keep the hyphen
    too; before "and"/"or" the hyphen is a suspended one ("energy-\\nand carbon-intensive" → "energy- and
    carbon-intensive").
    """
    joined = kept = 0

    def mend(match: re.Match) -> str:
        nonlocal joined, kept
        first, second = match.groups()
        in_url = match.start() > 0 and match.string[match.start() - 1] in _URL_CHARS
        if not in_url and _should_join(first, second, words):
            joined += 1
            return first + second
        kept += 1
        hyphen = "- " if second.lower() in _CONJUNCTIONS and not in_url else "-"
        return f"{first}{hyphen}{second}"

    return _LINE_BREAK_HYPHEN.sub(mend, text), joined, kept


def _should_join(first: str, second: str, words: Mapping[str, int]) -> bool:
    if not (first.isalpha() and second.isalpha()) or second.lower() in _CONJUNCTIONS:
        return False
    together = words.get((first + second).lower(), 0)
    if second[0].isupper():
        return first.isupper() and second.isupper() and together > 0
    hyphenated = words.get(f"{first}-{second}".lower(), 0)
    if together or hyphenated:
        return together >= hyphenated
    return not (words.get(first.lower(), 0) and words.get(second.lower(), 0))


def line_key(line: str) -> str:
    """A line as running-head detection compares it: spaces collapsed, numbers masked as ``#`` (so
    "75192 Federal Register / Vol. 88" matches "75193 Federal Register / Vol. 88"), any page number "#"."""
    return "#" if is_page_number(line) else _DIGITS.sub("#", " ".join(line.split()))


def edge_keys(text: str) -> list[tuple[int, str]]:
    """The lines of a page that may be running heads or footers: (index into ``text.split("\\n")``, key).

    Those are the first and the last ``EDGE_LINES`` non-empty lines, keyed by side ("top:…", "bottom:…"),
    since a running head keeps its place where a sentence repeated in the text does not; page numbers, which
    some documents print at the top of one page and the bottom of the next, are "#" on either side. On a
    short page a line can be both among the first and the last: it has both keys.
    """
    lines = text.split("\n")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    keys = []
    for side, indexes in (("top", filled[:EDGE_LINES]), ("bottom", filled[-EDGE_LINES:])):
        for i in indexes:
            key = line_key(lines[i])
            keys.append((i, key if key == "#" else f"{side}:{key}"))
    return keys


def is_page_number(line: str) -> bool:
    """True for a line that holds only a page number ("7", "- 7 -", "Page 7", "7 of 40", "iv")."""
    return _PAGE_NUMBER.fullmatch(" ".join(line.split())) is not None


def strip_running_lines(text: str, running: frozenset[str], page: int) -> tuple[str, int, int]:
    """Remove running heads/footers and page numbers from one page; returns the text and both counts.

    A line whose ``edge_keys`` key is in ``running`` goes, and so does a page-number-only first or last line
    that equals ``page`` (the page's own number, which catches page numbers of documents too short for
    ``running`` to know them).
    """
    lines = text.split("\n")
    drop = {i for i, key in edge_keys(text) if key in running}
    kept = [i for i in range(len(lines)) if i not in drop and lines[i].strip()]
    for i in (kept[:1] + kept[-1:]) if kept else []:
        numbers = _DIGITS.findall(lines[i])
        if is_page_number(lines[i]) and numbers and int(numbers[0]) == page:
            drop.add(i)
    numbers_removed = sum(1 for i in drop if is_page_number(lines[i]))
    cleaned = "\n".join(line for i, line in enumerate(lines) if i not in drop)
    return _MANY_NEWLINES.sub("\n\n", cleaned).strip(), len(drop) - numbers_removed, numbers_removed


def running_keys(edge_counts: Mapping[str, int], pages: int) -> frozenset[str]:
    """The edge-line keys no longer than one printed line found on enough of ``pages`` pages: the running
    heads, footers and page numbers of a document of ``pages`` pages.

    Enough is half the pages from ``HALF_PAGES_FROM`` pages on (books alternate heads on odd and even
    pages), and all pages but one below that.
    """
    if pages < MIN_PAGES_FOR_RUNNING_LINES:
        return frozenset()
    needed = math.ceil(pages / 2) if pages >= HALF_PAGES_FROM else pages - 1
    return frozenset(key for key, n in edge_counts.items() if n >= needed and len(key) <= MAX_RUNNING_LINE)


@dataclass(frozen=True)
class Cleaning:
    """What cleaning changed in one document. Part of the manifest: a new field needs a schema bump."""

    characters_normalised: int = 0  # characters NFKC replaced: ligatures, full-width forms, odd spaces
    hyphens_joined: int = 0  # words hyphenated at a line end, joined
    hyphens_kept: int = 0  # compounds broken at a line end, kept with their hyphen
    running_lines_removed: int = 0  # running heads and footers
    page_numbers_removed: int = 0

    def __add__(self, other: Cleaning) -> Cleaning:
        return Cleaning(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


def describe(cleaning: Cleaning | None) -> str:
    """What cleaning changed, in one line for summaries and the card; ``None`` means it was off."""
    if cleaning is None:
        return "off (--no-clean)"
    c = cleaning
    return (f"{c.characters_normalised} characters normalised (ligatures, full-width forms), "
            f"{c.hyphens_joined} line-break hyphens joined ({c.hyphens_kept} compounds kept), "
            f"{c.running_lines_removed} running-head/footer lines and {c.page_numbers_removed} page numbers removed")


class DocumentCleaner:
    """Cleans one document: ``page_text`` for each page's raw text, then ``clean`` over its pages.

    ``counts`` says what was changed once ``clean`` has yielded every page.
    """

    def __init__(self) -> None:
        self._counts = Counter()  # Cleaning's fields, added up page by page
        self._words: Counter = Counter()
        self._edges: Counter = Counter()
        self._pages = 0

    def page_text(self, raw: str) -> str:
        """One page's raw extracted text, with the rules that need only the page: soft hyphens, NFKC, spaces."""
        text, changed = nfkc(join_soft_hyphens(raw))
        self._counts["characters_normalised"] += changed
        return normalize_text(text)

    @property
    def counts(self) -> Cleaning:
        return Cleaning(**self._counts)

    def clean(self, pages: Iterator[Page]):
        """Yield the cleaned pages of ``pages`` (one document); return what the ``pages`` generator returned
        (a skip reason or None), or a reason of its own when cleaning left no page with text."""
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+", encoding="utf-8") as spool:
            result = self._collect(pages, spool)
            spool.seek(0)
            running = running_keys(self._edges, self._pages)
            yielded = 0
            for line in spool:
                source, number, text = json.loads(line)
                text, heads, numbers = strip_running_lines(text, running, number)
                text, joined, kept = join_hyphenated(text, self._words)
                self._counts.update(hyphens_joined=joined, hyphens_kept=kept, running_lines_removed=heads,
                                    page_numbers_removed=numbers)
                if text:
                    yielded += 1
                    yield Page(source, number, text)
        if result is None and self._pages and not yielded:
            return "its pages hold only running heads and page numbers: nothing to ask about (--no-clean keeps them)"
        return result

    def _collect(self, pages: Iterator[Page], spool) -> object:
        """First pass: count words and edge lines, spool the pages; return the generator's return value."""
        while True:
            try:
                page = next(pages)
            except StopIteration as end:
                return end.value
            self._pages += 1
            count_words(page.text, self._words)
            self._edges.update({key for _, key in edge_keys(page.text)})
            spool.write(json.dumps([page.source, page.page, page.text], ensure_ascii=False) + "\n")


def clean_texts(texts: Iterable[str]) -> tuple[list[str], Cleaning]:
    """Clean one document given as its pages' raw texts (pages 1, 2, …): the cleaned texts (empty pages
    left out) and what changed. Text from elsewhere gets the same treatment as ``synthqa generate`` gives."""
    cleaner = DocumentCleaner()
    pages = [Page("", n, cleaner.page_text(raw)) for n, raw in enumerate(texts, 1)]
    cleaned = [p.text for p in cleaner.clean(p for p in pages if p.text)]
    return cleaned, cleaner.counts
