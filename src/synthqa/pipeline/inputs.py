"""Count pages → read (clean, OCR) → split → chunk filters → language → --limit, as one stream of chunks worth asking about.

Pages are counted first (cheap: pypdf reads a PDF's page tree, not its text), so the progress bars have
totals from the start. The stream runs in a thread so that questions are asked while later files are still
being read, and it hands chunks over through a bounded queue: when asking falls behind, reading waits
(back-pressure), so memory holds a few batches whatever the size of the input.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import Counter
from queue import Empty, Full, Queue
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

from .. import pdfs
from .._compat import batched
from ..config import GenerateConfig
from ..errors import InputError
from ..pdfs import DocumentReport
from ..pool import default_workers
from ..records import Chunk, SkippedChunk, SkippedFile, SkippedPage
from .progress import Log, Progress
from .reading import COUNT_BATCH, POOL_MIN_PAGES, FileTask, count_pages, ordered_map, read_file

# While the reading thread runs, hand the GIL over every 1 ms instead of Python's 5 ms, so the event loop
# dispatches requests and reads answers on time: measured 1.29 → 1.10 × the latency limit (bench_pipeline).
SWITCH_INTERVAL = 0.001
BATCH = 256  # chunks handed to the asking stage at once
STOP_WAIT_S = 5.0  # how long Ctrl-C waits for reading to stop: its processes die at once, a file read here may not
QUEUE_BATCHES = 8  # batches waiting at most: reading pauses beyond 2,048 chunks ahead of the asking


@dataclass
class Inputs:
    """What reading found: counts, skips and documents; complete once the stream has ended."""

    files: int = 0
    pages_counted: int = 0  # pages of every file, counted before reading (the bars' total)
    pages_done: int = 0  # counted pages of the files read so far
    chunks: int = 0  # every chunk made, asked or not
    asked: int = 0  # worth asking, within --limit
    asked_chars: int = 0
    skipped_chunks: Counter = field(default_factory=Counter)  # reason → chunks
    asked_per_doc: Counter = field(default_factory=Counter)  # source → chunks worth asking (within --limit)
    skipped_per_doc: Counter = field(default_factory=Counter)  # source → chunks the chunk filters skipped
    skipped_files: list[SkippedFile] = field(default_factory=list)
    skipped_pages: list[SkippedPage] = field(default_factory=list)
    pages_per_doc: Counter = field(default_factory=Counter)  # non-empty pages read, per source
    documents: dict[str, DocumentReport] = field(default_factory=dict)  # source → how it was read
    done: bool = False

    def expected_asked(self) -> tuple[int | None, bool]:
        """(chunks worth asking in the whole input, whether that is exact): estimated from the pages read."""
        if self.done:
            return self.asked, True
        if not self.pages_done:
            return None, False
        return max(self.asked, round(self.asked * self.pages_counted / self.pages_done)), False


def stream_inputs(config: GenerateConfig, log: Log, found: Inputs, progress: Progress,
                  on_skipped_chunks: Callable[[list[SkippedChunk]], None] | None = None,
                  stop: threading.Event | None = None) -> Iterator[list[Chunk]]:
    """Yield batches of the chunks worth asking about as files are read, filling ``found`` along the way.

    Each skipped file and page is reported at once; ``InputError`` at the end when nothing usable was found.
    ``on_skipped_chunks`` gets each file's chunks that the chunk filters skipped, before its batches. ``stop``
    (set by another thread) ends the reading processes at once (``pool.Stopped``).
    """

    def on_skip(skipped: SkippedFile) -> None:
        found.skipped_files.append(skipped)
        log(f"skipped {skipped.path}: {skipped.reason}")

    def on_document(report: DocumentReport) -> None:
        found.documents[report.source] = report
        if report.ocr_tried:
            log(f"{report.source}: OCR read {report.ocr_tried} page(s) without a text layer in "
                f"{report.ocr_seconds:.1f} s ({len(report.ocr_pages)} with text)")

    files = list(pdfs.find_input_files(config.inputs, on_skip))
    found.files = len(files)
    workers = (config.workers or default_workers()) if len(files) > 1 else 1
    with progress.stage("counting pages", "count") as stage:
        batches = list(batched([str(path) for path, _ in files], COUNT_BATCH))
        pages = [n for counts in ordered_map(count_pages, batches, min(workers, len(batches)),
                                             describe=lambda paths: f"{paths[0]} (counting pages)", stop=stop)
                 for n in counts]
        found.pages_counted = sum(pages)
        stage.detail = f"{found.pages_counted:,} pages in {len(files):,} file(s)"
    if found.pages_counted < POOL_MIN_PAGES:
        workers = 1
    tasks = (FileTask(str(path), source, config.pdf_password, config.chunk_size, config.chunk_overlap,
                      config.keep_all_chunks, config.clean) for path, source in files)
    results = ordered_map(read_file, tasks, workers, describe=lambda task: task.path, stop=stop)
    bar = progress.bar("pages read", total=found.pages_counted, unit="page")
    try:
        for (path, source), n_pages, result in zip(files, pages, results):
            found.pages_done += n_pages
            bar.update(n_pages)
            before = found.chunks
            batch, skipped = _worth_asking(config, found, result)
            if skipped and on_skipped_chunks is not None:
                on_skipped_chunks(skipped)
            limited = config.limit is not None and found.asked >= config.limit
            # counts cover what was used: with --limit, the pages up to its last chunk
            last = result.chunks[found.chunks - before - 1].page if limited else None
            for page in result.skipped_pages:
                if last is None or page.page < last:
                    found.skipped_pages.append(page)
                    log(f"{page.source}: page {page.page} skipped, {page.reason}")
            if result.skip_reason is not None:
                on_skip(SkippedFile(str(path), result.skip_reason, source))
            if result.document is not None:
                on_document(result.document)
            read = sum(1 for page in result.pages if last is None or page <= last)
            if read:
                found.pages_per_doc[source] += read
            yield from batched(batch, BATCH)
            if limited:
                break  # --limit is for trying things: the rest of the input is not even read
    finally:
        results.close()  # stops the workers at once when reading ends early
        bar.close()
    _finish(config, found)


def _worth_asking(config: GenerateConfig, found: Inputs, result) -> tuple[list[Chunk], list[SkippedChunk]]:
    """The chunks of one file worth asking about, up to --limit, and those skipped before that; counts both
    in ``found``."""
    batch: list[Chunk] = []
    skipped: list[SkippedChunk] = []
    for chunk, reason in zip(result.chunks, result.chunk_skip_reasons):
        found.chunks += 1
        if reason:
            found.skipped_chunks[reason] += 1
            found.skipped_per_doc[chunk.source] += 1
            skipped.append(SkippedChunk(chunk, reason, found.asked))
            continue
        batch.append(chunk)
        found.asked += 1
        found.asked_per_doc[chunk.source] += 1
        found.asked_chars += len(chunk.text)
        if config.limit is not None and found.asked >= config.limit:
            break
    return batch, skipped


def _finish(config: GenerateConfig, found: Inputs) -> None:
    where = ", ".join(map(str, config.inputs))
    if not found.chunks:
        what = (f"{len(found.skipped_files)} file(s) skipped" if found.skipped_files
                else "no PDF, .txt, .md, .docx or .html file found")
        raise InputError(f"nothing usable in {where} ({what}): nothing to do")
    if not found.asked:
        listed = ", ".join(f"{reason} {n}" for reason, n in found.skipped_chunks.most_common())
        raise InputError(
            f"no chunk of {where} is worth asking about (skipped: {listed}): pass --keep-all-chunks to ask anyway"
        )
    found.done = True


class ThreadedFeed:
    """Runs ``stream_inputs`` in a thread and hands its chunks to the event loop as an async iterator of
    (chunk, key) pairs, through a queue of at most ``QUEUE_BATCHES`` batches.

    ``keep(batch)`` runs in the thread for every batch and returns the batch's keys (the pipeline stores the
    chunks there). Errors of the stream (``InputError``) are raised in the consumer; closing the feed stops
    the thread at its next batch.
    """

    _END = object()

    def __init__(self, config: GenerateConfig, log: Log, progress: Progress,
                 keep: Callable[[list[Chunk]], list[str]],
                 keep_skipped: Callable[[list[SkippedChunk]], None] | None = None) -> None:
        self.config, self.log, self.progress, self.keep = config, log, progress, keep
        self.keep_skipped = keep_skipped
        self.found = Inputs()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def __aiter__(self) -> AsyncIterator[tuple[Chunk, str]]:
        # The thread never schedules work on the loop but a wake-up: a task of its own could be cut off by the
        # loop's end (Ctrl-C closes it while the thread waits for room) and print tracebacks as the run stops.
        loop = asyncio.get_running_loop()
        queue: Queue = Queue(maxsize=QUEUE_BATCHES)
        arrived = asyncio.Event()

        def put(item) -> bool:
            """Wait for room in the queue, then wake the consumer; False once the consumer has gone."""
            while not self._stop.is_set():
                try:
                    queue.put(item, timeout=0.2)
                    break
                except Full:
                    continue
            else:
                return False
            try:
                loop.call_soon_threadsafe(arrived.set)
            except RuntimeError:  # the loop has closed: the run is over
                return False
            return True

        def produce() -> None:
            try:
                started = time.perf_counter()
                for batch in stream_inputs(self.config, self.log, self.found, self.progress, self.keep_skipped,
                                           self._stop):
                    if not put(list(zip(batch, self.keep(batch)))):
                        return
                if self._stop.is_set():  # the run has ended (an error, Ctrl-C): no "reading" line after its last
                    return
                found = self.found
                self.progress.done("reading", "read", started, f"{found.chunks:,} chunks from "
                                   f"{sum(found.pages_per_doc.values()):,} pages, {found.asked:,} worth asking")
                put(self._END)
            except BaseException as err:  # handed to the consumer, which raises it
                if not self._stop.is_set():
                    put(err)

        self._thread = threading.Thread(target=produce, name="synthqa-inputs", daemon=True)
        interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._thread.start()
        try:
            while (item := await _get(queue, arrived)) is not self._END:
                if isinstance(item, BaseException):
                    raise item
                for pair in item:
                    yield pair
        finally:
            self._stop.set()
            sys.setswitchinterval(interval)

    def stop(self) -> None:
        """End reading now (Ctrl-C): its processes are killed before this returns, or within ``STOP_WAIT_S`` (a
        file read in this process's thread cannot be cut short, and the exit need not wait for it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_S)

    def join(self) -> Inputs:
        """Wait for the thread (after the consumer has finished) and return what it found."""
        if self._thread is not None:
            self._thread.join()
        return self.found


async def _get(queue: Queue, arrived: asyncio.Event):
    """The next item the thread put (cleared before looking, so no wake-up is lost)."""
    while True:
        arrived.clear()
        try:
            return queue.get_nowait()
        except Empty:
            await arrived.wait()
