"""Load → split → chunk filters → language → --limit, as one stream of chunks worth asking about.

The stream runs in a thread so that questions are asked while later PDFs are still being parsed: with
thousands of pages, parsing takes minutes that would otherwise come before the first request.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace

from .. import chunks, filters, language, pdfs
from ..config import GenerateConfig
from ..errors import InputError
from ..pdfs import DocumentReport
from ..records import Chunk, SkippedChunk, SkippedFile, SkippedPage

Log = Callable[[str], None]
# While the parsing thread runs, hand the GIL over every 1 ms instead of Python's 5 ms, so the event loop
# dispatches requests and reads answers on time: measured 1.29 → 1.10 × the latency limit (bench_pipeline).
SWITCH_INTERVAL = 0.001


@dataclass
class Inputs:
    """What loading found; complete once the stream has ended."""

    chunks: list[Chunk] = field(default_factory=list)  # every chunk, asked or not
    asked: list[Chunk] = field(default_factory=list)  # worth asking, within --limit, in input order
    skipped_chunks: list[SkippedChunk] = field(default_factory=list)
    skipped_files: list[SkippedFile] = field(default_factory=list)
    skipped_pages: list[SkippedPage] = field(default_factory=list)
    pages_per_doc: Counter = field(default_factory=Counter)
    documents: dict[str, DocumentReport] = field(default_factory=dict)  # source → how it was read
    load_seconds: float = 0.0
    split_seconds: float = 0.0
    done: bool = False


def stream_inputs(config: GenerateConfig, log: Log, found: Inputs) -> Iterator[Chunk]:
    """Yield the chunks worth asking about as pages are read, filling ``found`` along the way.

    Each skipped file is reported at once; ``InputError`` at the end when nothing usable was found.
    """

    def on_skip(skipped: SkippedFile) -> None:
        found.skipped_files.append(skipped)
        log(f"skipped {skipped.path}: {skipped.reason}")

    def on_skip_page(skipped: SkippedPage) -> None:
        found.skipped_pages.append(skipped)
        log(f"{skipped.source}: page {skipped.page} skipped, {skipped.reason}")

    def on_document(report: DocumentReport) -> None:
        found.documents[report.source] = report
        if report.ocr_tried:
            log(f"{report.source}: OCR read {report.ocr_tried} page(s) without a text layer in "
                f"{report.ocr_seconds:.1f} s ({len(report.ocr_pages)} with text)")

    def timed_pages() -> Iterator:
        with closing(pdfs.load_pages(config.inputs, password=config.pdf_password, on_skip=on_skip,
                                     on_skip_page=on_skip_page, clean=config.clean,
                                     on_document=on_document)) as pages:
            while True:
                t0 = time.perf_counter()
                page = next(pages, None)
                found.load_seconds += time.perf_counter() - t0
                if page is None:
                    return
                found.pages_per_doc[page.source] += 1
                yield page

    t0 = time.perf_counter()
    paused = 0.0  # time spent by the consumer between our yields is not splitting time
    pages = timed_pages()
    with closing(pages):  # at --limit: the loader's last document is reported (and its files closed) now
        for chunk in chunks.split_pages(pages, config.chunk_size, config.chunk_overlap):
            found.chunks.append(chunk)
            reason = None if config.keep_all_chunks else filters.chunk_skip_reason(chunk.text)
            if reason:
                found.skipped_chunks.append(SkippedChunk(chunk.id, chunk.source, chunk.page, reason))
            else:
                chunk = replace(chunk, language=language.detect(chunk.text))
                found.asked.append(chunk)
                t1 = time.perf_counter()
                yield chunk
                paused += time.perf_counter() - t1
                if config.limit is not None and len(found.asked) >= config.limit:
                    break  # --limit is for trying things: the rest of the input is not even read
    found.split_seconds = time.perf_counter() - t0 - found.load_seconds - paused
    where = ", ".join(map(str, config.inputs))
    if not found.chunks:
        what = (f"{len(found.skipped_files)} file(s) skipped" if found.skipped_files
                else "no PDF, .txt, .md, .docx or .html file found")
        raise InputError(f"nothing usable in {where} ({what}): nothing to do")
    if not found.asked:
        reasons = Counter(s.reason for s in found.skipped_chunks)
        listed = ", ".join(f"{reason} {n}" for reason, n in reasons.most_common())
        raise InputError(
            f"no chunk of {where} is worth asking about (skipped: {listed}): pass --keep-all-chunks to ask anyway"
        )
    found.done = True


def load_inputs(config: GenerateConfig, log: Log) -> Inputs:
    """The whole stream at once (for --dry-run)."""
    found = Inputs()
    for _ in stream_inputs(config, log, found):
        pass
    return found


class ThreadedFeed:
    """Runs ``stream_inputs`` in a thread and hands its chunks to the event loop as an async iterator.

    ``total`` becomes the number of chunks once the stream has ended (for the progress bar). Errors of the
    stream (``InputError``) are raised in the consumer; closing the feed stops the thread at its next chunk.
    """

    _END = object()

    def __init__(self, config: GenerateConfig, log: Log) -> None:
        self.config, self.log = config, log
        self.found = Inputs()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def __aiter__(self) -> AsyncIterator[Chunk]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def produce() -> None:
            try:
                for chunk in stream_inputs(self.config, self.log, self.found):
                    if self._stop.is_set():
                        return
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
                loop.call_soon_threadsafe(queue.put_nowait, self._END)
            except BaseException as err:  # handed to the consumer, which raises it
                if not self._stop.is_set():
                    loop.call_soon_threadsafe(queue.put_nowait, err)

        self._thread = threading.Thread(target=produce, name="synthqa-inputs", daemon=True)
        interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._thread.start()
        try:
            while (item := await queue.get()) is not self._END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stop.set()
            sys.setswitchinterval(interval)

    def join(self) -> Inputs:
        """Wait for the thread (after the consumer has finished) and return what it found."""
        if self._thread is not None:
            self._thread.join()
        return self.found
