"""Input files → pages of normalised text, streamed one page at a time.

A bad file never stops a run: it is reported once through ``on_skip`` as a ``SkippedFile`` whose reason
tells the user what to do, and the next file is read. Nothing here holds a whole document in memory.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path

from .records import Page, SkippedFile, SkippedPage

SUPPORTED_SUFFIXES = frozenset({".pdf", ".txt", ".md"})

OnSkip = Callable[[SkippedFile], None]
OnSkipPage = Callable[[SkippedPage], None]


# Unicode space separators other than the plain space (NBSP, en/em spaces, thin spaces, ideographic …).
_UNICODE_SPACES = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_SPACE_RUNS = re.compile(r"[ \t]+")
_TRAILING_SPACE = re.compile(r" +$", re.MULTILINE)
_MANY_NEWLINES = re.compile(r"\n{3,}")
_TEXT_READ_SIZE = 1 << 16
_OUTPUT_MARKERS = frozenset({"synthqa.json", ".synthqa"})
_FOLDER_METADATA = frozenset({"README", "SOURCES", "LICENSE", "LICENCE", "CHANGELOG", "NOTICE", "CONTRIBUTING"})
_PDF_HEADER_WINDOW = 1024  # PDF readers accept the %PDF- header anywhere in the first 1 KiB


def normalize_text(text: str) -> str:
    """Tidy whitespace of one page's text so chunks and questions do not depend on layout quirks.

    Soft hyphens go, every unicode space becomes a space, runs of spaces/tabs collapse, lines lose trailing
    spaces, 3+ newlines become 2, and the ends are stripped. Words hyphenated at a line end stay split:
    rejoining them cannot tell "policy-\\nmakers" from "long-\\nterm".
    """
    text = text.replace("\u00ad", "").replace("\r\n", "\n").replace("\r", "\n")
    text = _UNICODE_SPACES.sub(" ", text)
    text = _SPACE_RUNS.sub(" ", text)
    text = _TRAILING_SPACE.sub("", text)
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


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
            report(root, "not a regular file or folder: give a PDF/.txt/.md file or a folder")
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
) -> Iterator[Page]:
    """Stream the non-empty pages of every input file, in ``find_input_files`` order.

    PDFs are read with pypdf page by page (decrypted with ``password`` when encrypted); ``.txt``/``.md``
    files are UTF-8 with form feeds separating pages. Page numbers are 1-based and count empty pages too.
    Each file that yields no page gets exactly one ``SkippedFile`` through ``on_skip``.
    """
    report = on_skip or _ignore
    for path, source in find_input_files(inputs, report):
        reason = yield from file_pages(path, source, password, on_skip_page)
        if reason is not None:
            report(SkippedFile(str(path), reason, source))


def file_pages(path: Path, source: str, password: str | None = None,
               on_skip_page: OnSkipPage | None = None) -> Generator[Page, None, str | None]:
    """The non-empty pages of one input file; returns why the file yielded none (else None)."""
    _quiet_pypdf()
    if path.suffix.lower() == ".pdf":
        return (yield from _pdf_pages(path, source, password, on_skip_page or _ignore))
    return (yield from _text_pages(path, source))


def count_pages(path: Path) -> int:
    """How many pages ``path`` has, cheaply (for a progress bar's total): 0 when it cannot tell."""
    _quiet_pypdf()
    try:
        if path.suffix.lower() == ".pdf":
            from pypdf import PdfReader

            return len(PdfReader(path).pages)
        with open(path, "rb") as f:
            return 1 + sum(block.count(b"\f") for block in iter(lambda: f.read(_TEXT_READ_SIZE), b""))
    except Exception:  # damaged, encrypted, unreadable …: reading it reports why, the bar only loses its pages
        return 0


def _quiet_pypdf() -> None:
    # pypdf logs every recoverable oddity of real-world PDFs as a warning; users cannot act on them.
    pypdf_logger = logging.getLogger("pypdf")
    if pypdf_logger.level < logging.ERROR:
        pypdf_logger.setLevel(logging.ERROR)


def _pdf_pages(path: Path, source: str, password: str | None, on_skip_page: OnSkipPage) -> Iterator[Page]:
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
            for number in range(1, n_pages + 1):
                try:
                    text = reader.pages[number - 1].extract_text()
                except Exception as err:  # one broken page must not cost the rest of the document
                    failed += 1
                    on_skip_page(SkippedPage(source, number, f"its text could not be extracted ({_short(err)})"))
                    continue
                text = normalize_text(text or "")
                if text:
                    yielded += 1
                    yield Page(source, number, text)
    except OSError as err:
        return _os_reason(err)

    if yielded:
        return None
    if n_pages == 0:
        return "the PDF has no pages: replace it with the real document or remove it"
    if failed:
        return f"text could not be extracted from any of its {n_pages} pages: the file is damaged; re-export it"
    return f"no text layer on any of its {n_pages} pages (scanned?): run OCR first, e.g. ocrmypdf"


def _text_pages(path: Path, source: str) -> Iterator[Page]:
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
                text = normalize_text(raw)
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
        return "no file extension: only .pdf, .txt and .md files are read; rename or convert it"
    return f"unsupported file type {suffix}: convert it to PDF or text"


def _os_reason(err: OSError) -> str:
    if isinstance(err, PermissionError):
        return "cannot be read: permission denied; fix its permissions (chmod +r)"
    return f"cannot be read: {err.strerror or err}"


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _ignore(_: object) -> None:
    pass
