"""Reading in parallel: each input file is parsed, split and filtered in a worker process, and the results
come back in input order, so chunk ids and their order do not depend on the number of workers.

pypdf spends about 0.1 s a page on one core, so a document store takes minutes to read on one core; with
``--workers`` (default: the cores) the files are read side by side (``pool.ordered_map``: a bounded window,
workers killed as soon as the reader stops (``--limit``), a worker that dies one clear error). A single big PDF
is still read by one worker. Small inputs, where starting workers costs more than it saves, are read in the
calling thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from .. import chunks, filters, language, pdfs, pool
from ..errors import InputError
from ..pdfs import DocumentReport
from ..records import Chunk, SkippedPage

POOL_MIN_PAGES = 40  # below this many pages (about 4 s of pypdf), starting worker processes does not pay
COUNT_BATCH = 64  # files counted per task


@dataclass(frozen=True)
class FileTask:
    path: str
    source: str
    password: str | None
    chunk_size: int
    chunk_overlap: int
    keep_all_chunks: bool
    clean: bool = True


@dataclass(frozen=True)
class FileResult:
    """One file read: its non-empty pages' numbers, why it yielded none, and its chunks with their skip reasons
    (the chunks worth asking about carry their language); ``document`` says how it was read (cleaning, OCR)."""

    pages: tuple[int, ...]
    skip_reason: str | None
    skipped_pages: tuple[SkippedPage, ...]
    chunks: tuple[Chunk, ...]
    chunk_skip_reasons: tuple[str | None, ...]
    document: DocumentReport | None = None


def read_file(task: FileTask) -> FileResult:
    """Parse (cleaning, OCR), split, filter one file and detect the language of each chunk worth asking
    about (runs in a worker)."""
    skipped: list[SkippedPage] = []
    documents: list[DocumentReport] = []
    pages = pdfs.file_pages(Path(task.path), task.source, task.password, skipped.append, clean=task.clean,
                            on_document=documents.append)
    read = []
    while True:
        try:
            read.append(next(pages))
        except StopIteration as end:
            reason = end.value
            break
    made = list(chunks.split_pages(read, task.chunk_size, task.chunk_overlap))
    reasons = tuple(None if task.keep_all_chunks else filters.chunk_skip_reason(c.text) for c in made)
    for i, (chunk, skip) in enumerate(zip(made, reasons)):
        if skip is None:
            made[i] = replace(chunk, language=language.detect(chunk.text))
    return FileResult(tuple(page.page for page in read), reason, tuple(skipped), tuple(made), reasons,
                      documents[0] if documents else None)


def count_pages(paths: list[str]) -> list[int]:
    """Pages of each file, cheaply (runs in a worker)."""
    return [pdfs.count_pages(Path(p)) for p in paths]


def ordered_map(fn: Callable, tasks: Iterable, workers: int, describe: Callable = str,
                stop: threading.Event | None = None) -> Iterator:
    """``pool.ordered_map`` for reading: a worker that dies is one ``InputError`` naming the file
    (``describe(task)``); ``stop`` ends it early (``pool.Stopped``)."""
    def died(task) -> InputError:
        return InputError(f"a process reading the inputs died (out of memory, or a crash in a parser) while reading "
                          f"{describe(task)} or a file after it: rerun with fewer --workers (1 reads in this process)")

    return pool.ordered_map(fn, tasks, workers, died, preload=[__name__], stop=stop)
