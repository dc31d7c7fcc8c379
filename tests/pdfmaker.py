"""Build small real PDFs (and broken ones) for tests, with reportlab.

Import from any test as ``from pdfmaker import make_pdf`` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import random
import textwrap
import zipfile
from collections.abc import Sequence
from pathlib import Path

from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

_MARGIN = 72
_LEADING = 14


def make_pdf(path: Path, pages: Sequence[str], encrypt_password: str | None = None, *, header: str | None = None,
             footer: str | None = None, unicode_font: bool = False) -> Path:
    """Write a text PDF with one page per string; lines wrap at 90 characters.

    With ``encrypt_password`` the file is encrypted (RC4-128) and needs that password to open. ``header`` and
    ``footer`` (``{page}`` is the page number) are drawn at the top and bottom edge of every page, as running
    heads are. ``unicode_font`` sets the text in Bitstream Vera (shipped with reportlab), which has the ﬁ and
    ﬂ ligature glyphs, so they reach the text layer as U+FB01/U+FB02 the way typeset PDFs carry them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    c = canvas.Canvas(str(path), pagesize=A4, encrypt=encrypt_password, invariant=1)
    width, height = A4
    font = _vera() if unicode_font else "Helvetica"
    for number, text in enumerate(pages, 1):
        c.setFont(font, 8)
        if header:  # drawn first, as typesetters do, so it is extracted first
            c.drawString(_MARGIN, height - 36, header.format(page=number))
        obj = c.beginText(_MARGIN, height - _MARGIN)
        obj.setFont(font, 10)
        obj.setLeading(_LEADING)
        for line in text.split("\n"):
            # Wrap ourselves so long paragraphs stay on the page instead of running off its right edge.
            for part in textwrap.wrap(line, 90, break_long_words=False, break_on_hyphens=False) or [""]:
                obj.textLine(part)
        c.drawText(obj)
        if footer:
            c.setFont(font, 8)
            c.drawCentredString(width / 2, 30, footer.format(page=number))
        c.showPage()
    c.save()
    return path


def _vera() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if "Vera" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("Vera", "Vera.ttf"))  # found in reportlab's own fonts folder
    return "Vera"


def make_scanned_pdf(path: Path, pages: Sequence[str], scanned: Sequence[int] | None = None, dpi: int = 200) -> Path:
    """Write a PDF whose pages (those in ``scanned``, 0-based; default all) are images of typeset text with no
    text layer, as a scanner makes them: each is typeset by ``make_pdf``, rasterised at ``dpi`` with
    pypdfium2 and placed as a grey-scale image filling the page. The other pages keep their text layer."""
    import pypdfium2 as pdfium
    from pypdf import PdfReader
    from reportlab.lib.utils import ImageReader

    path = Path(path)
    typeset = make_pdf(path.with_suffix(".typeset.pdf"), pages)
    images = path.with_suffix(".images.pdf")
    source = pdfium.PdfDocument(str(typeset))
    c = canvas.Canvas(str(images), pagesize=A4, invariant=1)
    for i in range(len(pages)):
        c.drawImage(ImageReader(source[i].render(scale=dpi / 72, grayscale=True).to_pil()), 0, 0, *A4)
        c.showPage()
    c.save()
    source.close()
    scanned = set(range(len(pages)) if scanned is None else scanned)
    writer = PdfWriter()
    for i, (text_page, image_page) in enumerate(zip(PdfReader(typeset).pages, PdfReader(images).pages, strict=True)):
        writer.add_page(image_page if i in scanned else text_page)
    writer.write(path)
    typeset.unlink()
    images.unlink()
    return path


def make_image_only_pdf(path: Path, n_pages: int) -> Path:
    """Write a PDF whose pages hold only shapes and no text layer, like a scan."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for i in range(n_pages):
        c.rect(100, 100 + 10 * i, 300, 200, fill=1)
        c.circle(300, 600, 50 + i, stroke=1, fill=0)
        c.line(50, 50, 500, 700)
        c.showPage()
    c.save()
    return path


def make_corrupt_pdf(path: Path, size: int = 4096, seed: int = 0) -> Path:
    """Write a PDF header followed by random bytes: looks like a PDF, parses as nothing."""
    rng = random.Random(seed)
    Path(path).write_bytes(b"%PDF-1.7\n" + bytes(rng.getrandbits(8) for _ in range(size)))
    return Path(path)


def make_truncated_pdf(path: Path, pages: Sequence[str], keep_bytes: int = 300) -> Path:
    """Write a real PDF, then cut it after ``keep_bytes`` bytes (an interrupted download)."""
    make_pdf(path, pages)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:keep_bytes])
    return Path(path)


def make_pdf_with_broken_page(path: Path, pages: Sequence[str], broken: int) -> Path:
    """Write a text PDF whose page ``broken`` (0-based) has a content stream that ends mid-array.

    pypdf opens the file fine but raises when extracting text from that one page.
    """
    make_pdf(path, pages)
    writer = PdfWriter(clone_from=path)
    stream = DecodedStreamObject()
    stream.set_data(b"BT /F1 10 Tf 72 700 Td (lost) Tj ET [ [ [ (")
    writer.pages[broken].replace_contents(stream)
    writer.write(path)
    return Path(path)


def make_zero_byte(path: Path) -> Path:
    """Write an empty file."""
    Path(path).write_bytes(b"")
    return Path(path)


def make_fake_pdf(path: Path) -> Path:
    """Write a zip archive (as a .docx is) under a .pdf name."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("word/document.xml", "<w:document>not a pdf</w:document>")
    return Path(path)
