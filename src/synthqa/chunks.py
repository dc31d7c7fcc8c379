"""Pages → chunks, one page at a time, so every chunk keeps the source and page it came from."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator

from langchain_text_splitters import RecursiveCharacterTextSplitter

from .errors import ConfigError
from .records import Chunk, Page


def chunk_id(source: str, page: int, index: int, text: str) -> str:
    """Return 16 hex characters of sha256 over the chunk's fields: the same chunk gets the same id anywhere."""
    # JSON encoding keeps field boundaries unambiguous ("a|b" + "c" never collides with "a" + "b|c").
    payload = json.dumps([source, page, index, text], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def split_pages(pages: Iterable[Page], chunk_size: int = 1000, chunk_overlap: int = 200) -> Iterator[Chunk]:
    """Split each page with langchain's RecursiveCharacterTextSplitter; ``index`` is the position within the page.

    Chunks never span pages. A generator: pages are consumed only as chunks are asked for.
    """
    if chunk_size <= 0:
        raise ConfigError(f"chunk size {chunk_size} must be a positive number of characters (e.g. 1000)")
    if not 0 <= chunk_overlap < chunk_size:
        raise ConfigError(
            f"chunk overlap {chunk_overlap} must be at least 0 and smaller than chunk size {chunk_size}"
            f" (try {chunk_size // 5})"
        )
    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    return _split(pages, splitter)


def _split(pages: Iterable[Page], splitter: RecursiveCharacterTextSplitter) -> Iterator[Chunk]:
    for page in pages:
        for index, text in enumerate(splitter.split_text(page.text)):
            yield Chunk(chunk_id(page.source, page.page, index, text), page.source, page.page, index, text)
