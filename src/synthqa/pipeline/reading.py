"""Reading in parallel: each input file is parsed, split and filtered in a worker process, and the results
come back in input order, so chunk ids and their order do not depend on the number of workers.

pypdf spends about 0.1 s a page on one core, so a document store takes minutes to read on one core; with
``--workers`` (default: the cores) the files are read side by side. A window of ``WINDOW_PER_WORKER`` files
per worker bounds what waits in memory, the workers are killed as soon as the reader stops (``--limit``), and
a worker that dies is one clear error, not a hang. A single big PDF is still read by one worker.
Workers start from a fork server (never forked from the threaded main process), so small inputs, where
starting them costs more than it saves, are read in the calling thread.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from .. import chunks, filters, language, pdfs
from ..errors import InputError
from ..pdfs import DocumentReport
from ..records import Chunk, SkippedPage

WINDOW_PER_WORKER = 2
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


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def ordered_map(fn: Callable, tasks: Iterable, workers: int, describe: Callable = str) -> Iterator:
    """``map(fn, tasks)`` over ``workers`` processes (in this thread when 1), results in order.

    A worker that dies (killed for memory, a crash in a C library) is one ``InputError`` naming the task
    (``describe(task)``), never a hang.
    """
    if workers <= 1:
        yield from map(fn, tasks)
        return
    pool = ProcessPoolExecutor(workers, mp_context=_context())
    window: deque = deque()
    try:
        for task in tasks:
            window.append((task, pool.submit(fn, task)))
            if len(window) >= WINDOW_PER_WORKER * workers:
                yield _result(*window.popleft(), describe)
        while window:
            yield _result(*window.popleft(), describe)
    finally:
        # the reader may stop early (--limit, an error): files still being read are dropped at once
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=True, cancel_futures=True)


def _result(task, future, describe: Callable):
    try:
        return future.result()
    except BrokenProcessPool:
        raise InputError(f"a process reading the inputs died (out of memory, or a crash in a parser) while reading "
                         f"{describe(task)} or a file after it: rerun with fewer --workers (1 reads in this process)"
                         ) from None


def _context():
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # the fork server imports the readers once; every worker is forked from it ready to go
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")
