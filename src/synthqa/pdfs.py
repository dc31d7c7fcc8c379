"""Input files → pages of clean text, streamed one document at a time.

A bad file never stops a run: it is reported once through ``on_skip`` as a ``SkippedFile`` whose reason
tells the user what to do, and the next file is read. Cleaning (``text.py``) reads a document whole before
its first page comes out, spooling its pages to a temporary file beyond 32 KiB, so memory stays bounded;
pages without a text layer are read by OCR (``ocr.py``) when the ``ocr`` extra is installed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import ocr as ocr_
from .records import Page, SkippedFile, SkippedPage
from .text import Cleaning, DocumentCleaner, normalize_text

_DOCUMENT_SUFFIXES = frozenset({".docx", ".html", ".htm"})  # read by documents.py
SUPPORTED_SUFFIXES = frozenset({".pdf", ".txt", ".md"}) | _DOCUMENT_SUFFIXES

OnSkip = Callable[[SkippedFile], None]
OnSkipPage = Callable[[SkippedPage], None]
Prepare = Callable[[str], str]  # a page's raw text → its text (cleaned, or only tidied with --no-clean)


_TEXT_READ_SIZE = 1 << 15  # text files are read in 32 KiB blocks, so memory stays small beside the spool
_OUTPUT_MARKERS = frozenset({"synthqa.json", ".synthqa"})
_FOLDER_METADATA = frozenset({"README", "SOURCES", "LICENSE", "LICENCE", "CHANGELOG", "NOTICE", "CONTRIBUTING"})
_PDF_HEADER_WINDOW = 1024  # PDF readers accept the %PDF- header anywhere in the first 1 KiB


@dataclass(frozen=True)
class DocumentReport:
    """How one document that yielded pages was read: what cleaning changed (None with ``clean=False``)
    and the pages whose text came from OCR."""

    source: str
    cleaning: Cleaning | None
    ocr_pages: tuple[int, ...] = ()  # pages read by OCR that had text
    ocr_tried: int = 0  # pages without a text layer given to OCR (blank pages are not)
    ocr_seconds: float = 0.0


OnDocument = Callable[[DocumentReport], None]


def find_input_files(inputs: Sequence[Path], on_skip: OnSkip | None = None) -> Iterator[tuple[Path, str]]:
    """Yield ``(path, source)`` for every supported file under the INPUTs, in a stable sorted order.

    A file INPUT's source is its name; a folder's files get their path relative to that folder (posix
    separators). Sources are made unique, and a file reached twice (symlinks, overlapping INPUTs) is read
    once. Missing INPUTs, unreadable folders and unsupported files are reported through ``on_skip``; hidden
    entries (``.git``, ``.synthqa`` …) inside folders are ignored silently.
    """
    used_sources: set[str] = set()
    seen_files: dict[str, str] = {}  # resolved path → source it was read as
    seen_dirs: set[str] = set()

    for raw in inputs:
        root = Path(raw)
        report = _reporter(root, on_skip or _ignore)
        if root.is_dir():
            found = _walk(root, Path(), report, seen_dirs)
            prefix = root.resolve().name
        elif root.is_file():
            found = iter([(root, Path(root.name))])
            prefix = root.resolve().parent.name
        elif root.is_symlink():
            report(root, "broken symbolic link: point it at a file or remove it")
            continue
        elif root.exists():
            report(root, "not a regular file or folder: give a PDF/.txt/.md/.docx/.html file or a folder")
            continue
        else:
            report(root, "no such file or folder: check the path")
            continue

        for path, rel in found:
            suffix = path.suffix.lower()
            if suffix not in SUPPORTED_SUFFIXES:
                report(path, _unsupported_reason(suffix))
                continue
            if root.is_dir() and suffix != ".pdf" and path.stem.upper() in _FOLDER_METADATA:
                # A corpus folder's README or SOURCES.md describes the documents; it is not one of them.
                report(path, "looks like the folder's own notes: name the file itself to include it")
                continue
            real = os.path.realpath(path)
            if real in seen_files:
                report(path, f"same file as {seen_files[real]!r}, which is already read")
                continue
            source = _unique_source(rel.as_posix(), prefix, used_sources)
            used_sources.add(source)
            seen_files[real] = source
            yield path, source


def _reporter(root: Path, on_skip: OnSkip) -> Callable[[Path, str], None]:
    """``report(path, reason)`` for files under ``root``: the public source is the path relative to ``root``
    (a file or missing INPUT: its own name), so no record shows the folders above the input."""

    def report(path: Path, reason: str) -> None:
        try:
            rel = Path(path).relative_to(root).as_posix()
        except ValueError:
            rel = ""
        source = Path(path).name if rel in ("", ".") else rel
        on_skip(SkippedFile(str(path), reason, source or str(path)))

    return report


def load_pages(
    inputs: Sequence[Path],
    password: str | None = None,
    on_skip: OnSkip | None = None,
    on_skip_page: OnSkipPage | None = None,
    *,
    clean: bool = True,
    on_document: OnDocument | None = None,
) -> Iterator[Page]:
    """Stream the non-empty pages of every input file, in ``find_input_files`` order.

    PDFs are read with pypdf page by page (decrypted with ``password`` when encrypted); pages without a text
    layer are read by OCR when the ``ocr`` extra is installed. ``.txt``/``.md`` files are UTF-8 with form
    feeds separating pages; a ``.docx`` or ``.html``/``.htm`` file is one page (``documents.py``). Page
    numbers are 1-based and count empty pages too. With ``clean`` the text is cleaned
    (``text.DocumentCleaner``: each document is read whole before its first page comes out), else only its
    whitespace is tidied. Each file that yields no page gets exactly one ``SkippedFile`` through ``on_skip``;
    each that does, one ``DocumentReport`` through ``on_document``.
    """
    report = on_skip or _ignore
    for path, source in find_input_files(inputs, report):
        reason = yield from file_pages(path, source, password, on_skip_page, clean=clean, on_document=on_document)
        if reason is not None:
            report(SkippedFile(str(path), reason, source))


def file_pages(path: Path, source: str, password: str | None = None, on_skip_page: OnSkipPage | None = None, *,
               clean: bool = True, on_document: OnDocument | None = None) -> Generator[Page, None, str | None]:
    """The non-empty pages of one input file (as ``load_pages`` reads them); returns why the file yielded
    none (else None). A file that yields pages gets one ``DocumentReport`` through ``on_document``."""
    _quiet_pypdf()
    cleaner = DocumentCleaner() if clean else None
    prepare = cleaner.page_text if cleaner else normalize_text
    suffix = path.suffix.lower()
    is_pdf = suffix == ".pdf"
    ocr = ocr_.PdfOcr(path, password) if is_pdf and ocr_.available() else None
    if is_pdf:
        pages = _pdf_pages(path, source, password, on_skip_page or _ignore, prepare, ocr)
    elif suffix in _DOCUMENT_SUFFIXES:
        from . import documents  # imported here: it reads pdfs' helpers

        pages = documents.read_pages(path, source, prepare)
    else:
        pages = _text_pages(path, source, prepare)
    reason: str | None = None
    try:
        reason = yield from (cleaner.clean(pages) if cleaner else pages)
    finally:
        if ocr is not None:
            ocr.close()
        if reason is None and on_document is not None:  # also when the consumer stops early (--limit)
            on_document(_document_report(source, cleaner, ocr))
    return reason


def count_pages(path: Path) -> int:
    """How many pages ``path`` has, cheaply (for a progress bar's total): 0 when it cannot tell.

    A PDF's page tree gives its count; a text file has one page more than it has form feeds; a .docx or
    HTML file is one page."""
    _quiet_pypdf()
    suffix = path.suffix.lower()
    try:
        if suffix == ".pdf":
            from pypdf import PdfReader

            return len(PdfReader(path).pages)
        if suffix in _DOCUMENT_SUFFIXES:
            return 1 if path.stat().st_size else 0
        with open(path, "rb") as f:
            return 1 + sum(block.count(b"\f") for block in iter(lambda: f.read(_TEXT_READ_SIZE), b""))
    except Exception:  # damaged, encrypted, unreadable …: reading it reports why, the bar only loses its pages
        return 0


def _quiet_pypdf() -> None:
    # pypdf logs every recoverable oddity of real-world PDFs as a warning; users cannot act on them.
    pypdf_logger = logging.getLogger("pypdf")
    if pypdf_logger.level < logging.ERROR:
        pypdf_logger.setLevel(logging.ERROR)


def _document_report(source: str, cleaner: DocumentCleaner | None, ocr: ocr_.PdfOcr | None) -> DocumentReport:
    cleaning = cleaner.counts if cleaner else None
    if ocr is None:
        return DocumentReport(source, cleaning)
    return DocumentReport(source, cleaning, tuple(ocr.pages), ocr.tried, round(ocr.seconds, 3))


def _pdf_pages(path: Path, source: str, password: str | None, on_skip_page: OnSkipPage, prepare: Prepare,
               ocr: ocr_.PdfOcr | None) -> Iterator[Page]:
    """Yield a PDF's pages; return a skip reason when none came out, else None."""
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError

    try:
        with open(path, "rb") as stream:
            head = stream.read(_PDF_HEADER_WINDOW)
            if not head:
                return "empty file (0 bytes): replace it with the real document or remove it"
            if b"%PDF-" not in head:
                return "not a PDF (no %PDF- header): it may be another format renamed to .pdf; convert it to PDF"
            stream.seek(0)
            try:
                reader = PdfReader(stream)
                if reader.is_encrypted:
                    try:
                        opened = reader.decrypt(password or "")
                    except DependencyError:
                        return "encrypted with AES, which needs the 'cryptography' package: pip install cryptography"
                    if opened == PasswordType.NOT_DECRYPTED:
                        if password:
                            return "encrypted, and --pdf-password does not open it: check the password"
                        return "encrypted (password-protected): pass --pdf-password to read it"
                n_pages = len(reader.pages)
            except Exception as err:  # pypdf raises many types on damaged files; any of them means "unreadable"
                return f"cannot be read as a PDF ({_short(err)}): the file is damaged or truncated; re-download it"

            yielded = failed = 0
            scanned: list[int] = []  # pages holding only an image, with no OCR installed to read them
            for number in range(1, n_pages + 1):
                try:
                    page = reader.pages[number - 1]
                    text = prepare(page.extract_text() or "") or _without_text_layer(page, number, prepare, ocr,
                                                                                     scanned)
                except ocr_.OcrError as err:
                    failed += 1
                    on_skip_page(SkippedPage(source, number, f"it has no text layer and OCR failed ({err})"))
                    continue
                except Exception as err:  # one broken page must not cost the rest of the document
                    failed += 1
                    on_skip_page(SkippedPage(source, number, f"its text could not be extracted ({_short(err)})"))
                    continue
                if text:
                    yielded += 1
                    yield Page(source, number, text)
    except OSError as err:
        return _os_reason(err)

    if yielded:
        for number in scanned:
            on_skip_page(SkippedPage(source, number, f"it has no text layer, only an image (scanned?): "
                                                     f"{ocr_.INSTALL_HINT} reads it by OCR"))
        return None
    return _no_page_reason(n_pages, failed, ocr)


def _no_page_reason(n_pages: int, failed: int, ocr: ocr_.PdfOcr | None) -> str:
    """Why a readable PDF gave no page, and what to do."""
    if n_pages == 0:
        return "the PDF has no pages: replace it with the real document or remove it"
    if failed:
        return f"text could not be extracted from any of its {n_pages} pages: the file is damaged; re-export it"
    if ocr is None:
        return f"no text layer on any of its {n_pages} pages (scanned?): {ocr_.INSTALL_HINT} reads them by OCR"
    if not ocr.tried:
        return f"all of its {n_pages} pages are blank: replace it with the real document or remove it"
    return f"no text on any of its {n_pages} pages, not even by OCR: it holds only drawings or blank pages"


def _without_text_layer(page, number: int, prepare: Prepare, ocr: ocr_.PdfOcr | None, scanned: list[int]) -> str:
    """The text of a page whose text layer is empty: read by OCR, else noted in ``scanned`` if it has an image."""
    if ocr is not None:
        return prepare(ocr.read(number))
    try:
        has_image = bool(page.images)  # lists the page's images without decoding them
    except Exception:  # an image pypdf cannot parse is still an image nobody can read here
        has_image = True
    if has_image:
        scanned.append(number)
    return ""


def _text_pages(path: Path, source: str, prepare: Prepare) -> Iterator[Page]:
    """Yield a text file's form-feed separated pages; return a skip reason when none came out."""
    yielded = 0
    try:
        with open(path, "rb") as probe:
            head = probe.read(8192)
        if not head:
            return "empty file (0 bytes): replace it with the real document or remove it"
        if b"\x00" in head:
            return f"binary data, not text: only UTF-8 text is read from {path.suffix} files"
        # utf-8-sig drops a byte-order mark; newline=None turns \r\n into \n.
        with open(path, encoding="utf-8-sig", errors="replace", newline=None) as f:
            number = 0
            for raw in _split_form_feeds(f):
                number += 1
                text = prepare(raw)
                if text:
                    yielded += 1
                    yield Page(source, number, text)
    except OSError as err:
        return _os_reason(err)
    return None if yielded else "no text in it (only whitespace): remove it or fill it"


def _split_form_feeds(f) -> Iterator[str]:
    """Yield the form-feed separated parts of an open text file, reading it in fixed-size blocks."""
    buffer = ""
    while block := f.read(_TEXT_READ_SIZE):
        buffer += block
        *complete, buffer = buffer.split("\f")
        yield from complete
    yield buffer


def _walk(folder: Path, rel: Path, report: Callable[[Path, str], None],
          seen_dirs: set[str]) -> Iterator[tuple[Path, Path]]:
    """Yield ``(path, path relative to the INPUT folder)`` of non-hidden files, depth first, sorted by name."""
    real = os.path.realpath(folder)
    if real in seen_dirs:  # a symlink loop or a folder reached twice: its files are already listed
        return
    seen_dirs.add(real)
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as err:
        report(folder, f"folder {_os_reason(err)}")
        return
    if rel.parts and any(e.name in _OUTPUT_MARKERS for e in entries):
        # An -o folder inside the input folder: its README.md card and data must not become input.
        report(folder, "a synthqa output folder (has synthqa.json or .synthqa): not read as input")
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path, entry_rel = folder / entry.name, rel / entry.name
        try:
            is_dir, is_file = entry.is_dir(), entry.is_file()
        except OSError as err:
            report(path, _os_reason(err))
            continue
        if is_dir:
            yield from _walk(path, entry_rel, report, seen_dirs)
        elif is_file:
            yield path, entry_rel
        elif entry.is_symlink():
            report(path, "broken symbolic link: point it at a file or remove it")
        # sockets, fifos and devices inside a document folder are not documents; say nothing


def _unique_source(source: str, prefix: str, used: set[str]) -> str:
    """Keep sources unique across INPUTs: prefix the INPUT's folder name, then number as a last resort."""
    if source not in used:
        return source
    candidate = f"{prefix}/{source}" if prefix else source
    n = 2
    unique = candidate
    while unique in used:
        unique = f"{candidate} ({n})"
        n += 1
    return unique


def _unsupported_reason(suffix: str) -> str:
    if not suffix:
        return "no file extension: only .pdf, .txt, .md, .docx and .html files are read; rename or convert it"
    if suffix in (".doc", ".rtf", ".odt"):
        return f"unsupported file type {suffix}: save it as .docx or PDF"
    return f"unsupported file type {suffix}: convert it to PDF, .docx, HTML or text"


def _os_reason(err: OSError) -> str:
    if isinstance(err, PermissionError):
        return "cannot be read: permission denied; fix its permissions (chmod +r)"
    return f"cannot be read: {err.strerror or err}"


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _ignore(_: object) -> None:
    pass
