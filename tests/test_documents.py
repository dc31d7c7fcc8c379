"""Word and HTML input: real .docx files written with python-docx, real HTML pages, and broken ones."""

from __future__ import annotations

import zipfile
from pathlib import Path

import docx
import pytest

from synthqa.chunks import split_pages
from synthqa.pdfs import load_pages
from synthqa.records import Page, SkippedFile


def load(*paths: Path) -> tuple[list[Page], list[SkippedFile]]:
    skipped: list[SkippedFile] = []
    return list(load_pages(list(paths), on_skip=skipped.append)), skipped


def make_docx(path: Path) -> Path:
    document = docx.Document()
    document.add_heading("Travel policy", 0)
    document.add_heading("1. Scope", level=1)
    document.add_paragraph("This policy applies to every employee who travels for work.")
    document.add_paragraph("Book trains for journeys under four hours.", style="List Bullet")
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate([("Expense", "Limit", "Approval"), ("Hotel", "150 EUR a night", ""),
                             ("Meals", "45 EUR a day", "manager")]):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    table.cell(1, 1).merge(table.cell(1, 2))  # python-docx repeats a merged cell in each grid column
    document.add_heading("2. Claims", level=2)
    document.add_paragraph("Claims are filed within thirty days with the receipts attached.")
    document.sections[0].header.paragraphs[0].text = "ACME Corp — internal"  # page furniture, not text
    document.save(path)
    return path


def test_docx_paragraphs_and_tables_come_in_reading_order_with_markdown_headings(tmp_path):
    pages, skipped = load(make_docx(tmp_path / "travel.docx"))
    assert skipped == []
    assert pages == [Page("travel.docx", 1, (
        "# Travel policy\n\n# 1. Scope\n\nThis policy applies to every employee who travels for work.\n\n"
        "- Book trains for journeys under four hours.\n\n"
        "Expense | Limit | Approval\nHotel | 150 EUR a night\nMeals | 45 EUR a day | manager\n\n"
        "## 2. Claims\n\nClaims are filed within thirty days with the receipts attached."
    ))]


def test_a_long_docx_is_cut_into_sections_at_its_headings(tmp_path):
    document = docx.Document()
    for h in range(6):
        document.add_heading(f"Article {h + 1}", level=2)
        for p in range(6):
            document.add_paragraph(f"Article {h + 1}, paragraph {p + 1}: the employer keeps the records of "
                                   f"rule {h * 10 + p} for {p + 2} years and reviews them every spring.")
    document.save(tmp_path / "long.docx")
    chunks = list(split_pages(load(tmp_path / "long.docx")[0]))
    starts = [c for i, c in enumerate(chunks) if i == 0 or c.section != chunks[i - 1].section]
    assert len(starts) >= 2 and all(c.text.startswith("## Article") for c in starts)


PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Leave policy — ACME intranet</title>
<style>body { font: 14px sans-serif }</style><script>track("visit")</script></head>
<body>
<header><a href="/">ACME</a> <nav><a href="/hr">HR</a> · <a href="/it">IT</a></nav></header>
<div role="navigation">Breadcrumbs: Home › HR › Leave</div>
<main>
  <h1>Leave policy</h1>
  <p>Employees take <b>25 days</b> of paid leave a year, booked through <a href="/hr/leave">the HR portal</a>.</p>
  <h2>Sick leave</h2>
  <ul><li>Call your manager before 10:00.</li><li>Send a doctor's note after three days.</li></ul>
  <table><tr><th>Years of service</th><th>Extra days</th></tr><tr><td>5</td><td>2</td></tr></table>
  <form><input name="q"><button>Search</button></form>
  <div hidden>Draft: do not publish</div>
</main>
<aside>Related: Travel policy</aside>
<footer>© 2024 ACME · Privacy · Cookies</footer>
<noscript>Enable JavaScript</noscript>
</body></html>
"""


def test_html_keeps_the_main_text_and_drops_navigation_scripts_styles_and_forms(tmp_path):
    (tmp_path / "leave.html").write_text(PAGE, encoding="utf-8")
    (pages, skipped) = load(tmp_path / "leave.html")
    assert skipped == []
    text = pages[0].text
    assert text == ("# Leave policy\n\nEmployees take 25 days of paid leave a year, booked through the HR portal.\n\n"
                    "## Sick leave\n\n- Call your manager before 10:00.\n- Send a doctor's note after three days.\n\n"
                    "| Years of service | Extra days |\n| --- | --- |\n| 5 | 2 |")


def test_html_without_main_drops_the_sites_header_and_footer_and_uses_the_title(tmp_path):
    page = ("<html><head><title>Refund rules</title></head><body><header>Shop banner</header>"
            "<div><p>Refunds are paid within 14 days of the return.</p></div><footer>Imprint</footer></body></html>")
    (tmp_path / "refunds.htm").write_bytes(page.encode("latin-1"))
    pages, _ = load(tmp_path / "refunds.htm")
    assert pages[0].text == "# Refund rules\n\nRefunds are paid within 14 days of the return."


def test_html_encoding_is_read_from_its_meta_tag(tmp_path):
    page = ('<html><head><meta charset="windows-1252"></head>'
            "<body><p>Frais de déplacement remboursés</p></body></html>")
    (tmp_path / "frais.html").write_bytes(page.encode("cp1252"))
    assert load(tmp_path / "frais.html")[0][0].text == "Frais de déplacement remboursés"


def _damaged_docx(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document>broken")
    return path


@pytest.mark.parametrize(
    ("name", "write", "reason"),
    [
        ("empty.docx", lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
        ("locked.docx", lambda p: p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512),
         "a Word 97-2003 file or a password-protected .docx: open it in Word and save it as an unprotected .docx"),
        ("renamed.docx", lambda p: p.write_text("just some text"), "not a Word .docx file (not a zip package)"),
        ("damaged.docx", _damaged_docx, "cannot be read as a Word document"),
        ("blank.docx", lambda p: docx.Document().save(p), "no text in it"),
        ("empty.html", lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
        ("image.html", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "binary data, not HTML"),
        ("shell.html", lambda p: p.write_text("<html><body><nav>Menu</nav><script>x()</script></body></html>"),
         "no text in it"),
    ],
)
def test_a_bad_word_or_html_file_is_one_skip_naming_it_and_the_rest_loads(tmp_path, name, write, reason):
    write(tmp_path / name)
    (tmp_path / "good.html").write_text("<p>Overtime is paid at 150 percent.</p>", encoding="utf-8")
    pages, skipped = load(tmp_path)
    assert [p.source for p in pages] == ["good.html"]
    assert len(skipped) == 1 and Path(skipped[0].path).name == name
    assert skipped[0].reason.startswith(reason) and "\n" not in skipped[0].reason
