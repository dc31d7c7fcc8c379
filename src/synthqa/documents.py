"""Word (.docx) and HTML files → one page of text each, headings kept as Markdown headings.

Neither format has pages that survive extraction, so each file is one page (page 1); its headings
(``# Title``, ``## Section``) let ``chunks.py`` cut it into sections at the document's own structure.
Like the other readers, each function is a generator that yields its pages and returns ``None``, or the
reason (one line a user can act on) why the file yielded nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from .pdfs import _os_reason, _short
from .records import Page
from .text import normalize_text

_EMPTY = "empty file (0 bytes): replace it with the real document or remove it"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the container of Word 97-2003 files and of password-protected .docx files
_HEADING_STYLE = re.compile(r"^heading (\d)$", re.I)

# Elements that are never the document's own text: code, forms, and the site around the page.
_NOT_TEXT = ["script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "embed", "form",
             "button", "select", "textarea", "nav", "aside", "menu", "dialog"]
_NOT_TEXT_ROLES = re.compile(r"^(?:navigation|banner|contentinfo|complementary|search|menu|menubar|dialog)$")


def read_pages(path: Path, source: str, prepare: Callable[[str], str] = normalize_text) -> Iterator[Page]:
    """The pages of a .docx or .html/.htm file, each text through ``prepare``; returns a skip reason when none
    came out, else None."""
    try:
        with open(path, "rb") as f:
            head = f.read(8192)
        if not head:
            return _EMPTY
        if path.suffix.lower() == ".docx":
            text, reason = _docx_text(path, head)
        elif b"\x00" in head and not head.startswith(_UTF16_BOMS):
            return f"binary data, not HTML: only HTML text is read from {path.suffix} files"
        else:
            text, reason = _html_text(path.read_bytes()), None
    except OSError as err:
        return _os_reason(err)
    if reason is not None:
        return reason
    text = prepare(text)
    if not text:
        return "no text in it: remove it, or export the document with its text"
    yield Page(source, 1, text)
    return None


def _docx_text(path: Path, head: bytes) -> tuple[str, str | None]:
    """Paragraphs and tables of the body in reading order, headings as Markdown; or a skip reason."""
    if head.startswith(_OLE_MAGIC):
        return "", ("a Word 97-2003 file or a password-protected .docx: open it in Word and save it as an "
                    "unprotected .docx")
    if not head.startswith(b"PK"):
        return "", "not a Word .docx file (not a zip package): it may be another format renamed to .docx; convert it"
    import docx
    from docx.table import Table

    try:
        # A file object, not the path: python-docx's errors would name the path, which would reach the card.
        with open(path, "rb") as stream:
            document = docx.Document(stream)
        blocks = [_table_text(block) if isinstance(block, Table) else _paragraph_text(block)
                  for block in document.iter_inner_content()]
    except Exception as err:  # python-docx and lxml raise many types on damaged packages
        return "", f"cannot be read as a Word document ({_short(err)}): the file is damaged; re-save it from Word"
    return "\n\n".join(b for b in blocks if b), None


def _paragraph_text(paragraph) -> str:
    text = paragraph.text.strip()
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    level = _HEADING_STYLE.match(style)
    if text and (level or style.lower() == "title"):
        return "#" * (int(level.group(1)) if level else 1) + " " + " ".join(text.split())
    if text and style.lower().startswith("list"):
        return "- " + text
    return text


def _table_text(table) -> str:
    """One line per row, cells joined by " | "; a merged cell (repeated by python-docx) counts once."""
    lines = []
    for row in table.rows:
        seen, cells = set(), []
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def _html_text(data: bytes) -> str:
    """The page's main text as Markdown: navigation, scripts, styles and forms dropped, headings kept."""
    from bs4 import BeautifulSoup
    from markdownify import ATX, MarkdownConverter

    # Bytes, so BeautifulSoup reads the encoding from the BOM or <meta charset> and guesses otherwise.
    soup = BeautifulSoup(data, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for element in soup(_NOT_TEXT):
        element.decompose()
    for element in soup.find_all(attrs={"role": _NOT_TEXT_ROLES}):
        element.decompose()
    for element in soup.find_all(lambda tag: tag.has_attr("hidden") or tag.get("aria-hidden") == "true"):
        element.decompose()
    articles = soup.find_all("article")
    root = soup.find("main") or soup.find(attrs={"role": "main"}) or (articles[0] if len(articles) == 1 else None)
    if root is None:
        root = soup.body or soup
        # Outside <main>/<article>, a page's header and footer are the site's banner and small print.
        for element in root.find_all(["header", "footer"]):
            if element.find_parent(["article", "main"]) is None:
                element.decompose()
    converter = MarkdownConverter(heading_style=ATX, bullets="-", strip=["a", "img", "b", "strong", "i", "em", "u"],
                                  escape_asterisks=False, escape_underscores=False, escape_misc=False)
    text = converter.convert_soup(root)
    if title and not root.find("h1"):
        text = f"# {title}\n\n{text}"
    return text
