"""Pages → sections → chunks, one page at a time, so every chunk keeps the source and page it came from.

A page longer than a few chunks (a long PDF page, a whole Markdown handbook, a Word file) is first cut into
sections with no overlap between them: at Markdown headings (Word and HTML headings arrive as Markdown),
then blank lines, then line ends. Each section is chunked on its own, so neighbouring chunks share overlap
text only inside a section, and a section can go to train or eval without leaking text into the other split.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator

from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from .errors import ConfigError
from .records import Chunk, Page

# About this many chunks make a section, the unit of the train/eval split: small enough that a single
# document yields both splits near the requested fraction, large enough that few sections end in a stub.
SECTION_CHUNKS = 4


def chunk_id(source: str, page: int, index: int, text: str) -> str:
    """Return 16 hex characters of sha256 over the chunk's fields: the same chunk gets the same id anywhere."""
    # JSON encoding keeps field boundaries unambiguous ("a|b" + "c" never collides with "a" + "b|c").
    payload = json.dumps([source, page, index, text], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def section_size(chunk_size: int, chunk_overlap: int) -> int:
    """Characters of a section: the text ``SECTION_CHUNKS`` chunks of ``chunk_size`` cover with their overlap."""
    return chunk_overlap + SECTION_CHUNKS * (chunk_size - chunk_overlap)


def split_pages(pages: Iterable[Page], chunk_size: int = 1000, chunk_overlap: int = 200) -> Iterator[Chunk]:
    """Split each page into sections, and each section with langchain's RecursiveCharacterTextSplitter.

    ``index`` is the chunk's position within its page, ``section`` the section's. Chunks never span pages
    or sections; a page no longer than ``section_size`` is one section, chunked exactly as a whole page.
    A generator: pages are consumed only as chunks are asked for.
    """
    if chunk_size <= 0:
        raise ConfigError(f"chunk size {chunk_size} must be a positive number of characters (e.g. 1000)")
    if not 0 <= chunk_overlap < chunk_size:
        raise ConfigError(
            f"chunk overlap {chunk_overlap} must be at least 0 and smaller than chunk size {chunk_size}"
            f" (try {chunk_size // 5})"
        )
    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    sectioner = RecursiveCharacterTextSplitter.from_language(
        Language.MARKDOWN, chunk_size=section_size(chunk_size, chunk_overlap), chunk_overlap=0, add_start_index=True
    )
    return _split(pages, splitter, sectioner, min_section=chunk_size // 4)


def sections(text: str, sectioner: RecursiveCharacterTextSplitter, min_size: int) -> list[str]:
    """``text`` cut where ``sectioner`` cuts it, except that a piece shorter than ``min_size`` (a page's last
    line or two) joins the section before it rather than becoming a stub chunk too short to ask about."""
    starts = [doc.metadata["start_index"] for doc in sectioner.create_documents([text])] or [0]
    ends = [*starts[1:], len(text)]
    kept = [starts[0]] + [start for start, end in zip(starts[1:], ends[1:]) if end - start >= min_size]
    return [text[start:end].strip() for start, end in zip(kept, [*kept[1:], len(text)])]


def _split(pages: Iterable[Page], splitter: RecursiveCharacterTextSplitter,
           sectioner: RecursiveCharacterTextSplitter, min_section: int) -> Iterator[Chunk]:
    for page in pages:
        index = 0
        for section, part in enumerate(sections(page.text, sectioner, min_section)):
            for text in splitter.split_text(part):
                yield Chunk(chunk_id(page.source, page.page, index, text), page.source, page.page, index, text,
                            section)
                index += 1
