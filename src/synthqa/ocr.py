"""OCR for PDF pages without a text layer: the optional extra ``synthqa[ocr]``.

A page is rendered with pypdfium2 and read with RapidOCR (``rapidocr-onnxruntime``), whose wheel carries its
ONNX models, so nothing is downloaded at run time and no system tesseract or ghostscript is needed. The
text boxes it finds are put back into lines (by vertical overlap, left to right) and paragraphs (a gap
taller than a line), so OCR'd text goes through the same cleaning and chunking as a text layer.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

INSTALL_HINT = "pip install 'synthqa[ocr]'"
DPI = 200  # measured on rasterised pages: 150 dpi loses lines and spaces, 300 dpi reads no better (bench_clean)
MAX_SIDE = 4000  # pixels; a poster-sized page is rendered smaller rather than into a 100-megapixel bitmap
# Text boxes are found on a copy scaled down to this many pixels on its longer side (detection is the slow
# part and needs no more); the text itself is read from the full-resolution crops.
DETECTION_SIDE = 1280
Box = tuple[Sequence[Sequence[float]], str]  # the four corner points of a text box, and its text


class OcrError(Exception):
    """A page could not be rendered or read; the page is left out and the run goes on."""


@functools.cache
def available() -> bool:
    """True when the ``ocr`` extra (pypdfium2 and rapidocr-onnxruntime) is installed; imports nothing."""
    return all(importlib.util.find_spec(name) is not None for name in ("pypdfium2", "rapidocr_onnxruntime"))


@functools.cache
def _engine():
    """The RapidOCR engine, loaded once per process (about a second)."""
    from rapidocr_onnxruntime import RapidOCR

    # Half the cores: OCR runs while the rest of the pipeline (the embedded model, too) keeps working.
    threads = max(1, (os.cpu_count() or 2) // 2)
    return RapidOCR(
        use_cls=False,  # the 180° classifier turned whole upright English lines upside down and lost them
        max_side_len=MAX_SIDE,
        det_limit_type="max",
        det_limit_side_len=DETECTION_SIDE,
        intra_op_num_threads=threads,
        inter_op_num_threads=1,
    )


class PdfOcr:
    """Reads pages of one PDF by OCR; the file is opened at the first page asked for.

    ``tried`` counts the pages given to OCR (blank pages, with nothing drawn on them, are not), ``pages``
    lists those it found text on, and ``seconds`` is the time spent, rendering included.
    """

    def __init__(self, path: Path, password: str | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.path, self.password, self.clock = Path(path), password, clock
        self.pages: list[int] = []
        self.tried = 0
        self.seconds = 0.0
        self._pdf = None

    def read(self, number: int) -> str:
        """The text of page ``number`` (1-based) as lines and paragraphs; ``""`` when there is none.

        Raises ``OcrError`` when the page cannot be rendered or read."""
        started = self.clock()
        try:
            text = self._read(number)
        except OcrError:
            raise
        except FileNotFoundError as err:
            raise OcrError("the file was moved or deleted while it was being read") from err
        except OSError as err:  # unreadable since pypdf opened it
            raise OcrError(f"the file cannot be opened again: {err.strerror or type(err).__name__}") from err
        except Exception as err:  # pdfium and onnxruntime raise their own types; any of them loses one page
            # The message may name the file: the manifest keeps reasons, and never the user's folders.
            message = " ".join(str(err).replace(str(self.path), self.path.name).split())
            raise OcrError(message[:120] or type(err).__name__) from err
        finally:
            self.seconds += self.clock() - started
        if text:
            self.pages.append(number)
        return text

    def _read(self, number: int) -> str:
        import pypdfium2 as pdfium

        if self._pdf is None:
            try:
                self._pdf = pdfium.PdfDocument(str(self.path), password=self.password)
            except pdfium.PdfiumError as err:  # says what is wrong ("Incorrect password error"), not where
                raise OcrError(f"pdfium cannot open the file: {err}") from err
        page = self._pdf[number - 1]
        try:
            if next(page.get_objects(max_depth=1), None) is None:
                return ""  # nothing drawn on it: a blank page
            self.tried += 1
            width, height = page.get_size()
            scale = min(DPI / 72, MAX_SIDE / max(width, height, 1))
            image = page.render(scale=scale, grayscale=True).to_numpy()
        finally:
            page.close()
        boxes, _ = _engine()(image)
        return lines_from_boxes([(box, text) for box, text, _score in boxes or []])

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None


def lines_from_boxes(boxes: Sequence[Box]) -> str:
    """Text boxes → text: boxes that overlap vertically form a line (left to right); a gap taller than
    most lines starts a paragraph (a blank line), so the splitter sees the page's structure."""
    spans = []
    for points, text in boxes:
        text = text.strip()
        if text:
            ys, xs = [p[1] for p in points], [p[0] for p in points]
            spans.append((min(ys), max(ys), min(xs), text))
    if not spans:
        return ""
    spans.sort(key=lambda s: ((s[0] + s[1]) / 2, s[2]))
    lines: list[list] = []  # [top, bottom, [(left, text), ...]]
    for top, bottom, left, text in spans:
        if lines and (top + bottom) / 2 < lines[-1][1]:  # its middle lies within the current line
            line = lines[-1]
            line[0], line[1] = min(line[0], top), max(line[1], bottom)
            line[2].append((left, text))
        else:
            lines.append([top, bottom, [(left, text)]])
    height = statistics.median(bottom - top for top, bottom, _ in lines)
    out: list[str] = []
    for i, (top, _bottom, words) in enumerate(lines):
        if i and top - lines[i - 1][1] > height:
            out.append("")
        out.append(" ".join(text for _, text in sorted(words)))
    return "\n".join(out)
