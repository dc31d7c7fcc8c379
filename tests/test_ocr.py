"""OCR of pages without a text layer (synthqa[ocr]): real rasterised pages read by the real RapidOCR models."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from e2e import POLICY_PARAGRAPHS, generate
from pdfmaker import make_pdf, make_scanned_pdf

from synthqa import ocr
from synthqa.ocr import lines_from_boxes
from synthqa.pdfs import DocumentReport, load_pages
from synthqa.records import SkippedFile, SkippedPage

SRC = Path(__file__).resolve().parents[1] / "src"
needs_ocr = pytest.mark.skipif(not ocr.available(), reason="needs synthqa[ocr] (pypdfium2, rapidocr-onnxruntime)")
# Measured on pages typeset in Helvetica 10 pt and rasterised at 200 dpi: 0.0 % and 0.13 % here, 0.1 % over
# bench_clean's 10 pages. A dropped line costs about 8 % of a page and a line read without its spaces about
# 1.5 %, so 2 % catches lost text and reading-order errors while leaving room for other onnxruntime builds.
MAX_CER = 0.02


def distinct_pages(n: int) -> list[str]:
    """Pages of different paragraphs (a real document does not repeat its sentences at its pages' edges)."""
    return [f"Part {p + 1}. " + "\n\n".join(POLICY_PARAGRAPHS[2 * p:2 * p + 2]) for p in range(n)]


def cer(got: str, expected: str) -> float:
    """Character error rate, whitespace runs counted as one space."""
    from rapidfuzz.distance import Levenshtein

    got, expected = " ".join(got.split()), " ".join(expected.split())
    return Levenshtein.distance(got, expected) / len(expected)


def box(x: float, y: float, w: float, h: float = 20) -> list[list[float]]:
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]


def test_boxes_become_lines_left_to_right_and_paragraphs_at_wide_gaps():
    boxes = [
        (box(300, 101, 150), "second half"),  # found before its line's start, slightly lower
        (box(50, 100, 240), "First line,"),
        (box(50, 125, 200), "next line."),
        (box(50, 190, 200), "New paragraph"),
        (box(50, 300, 100), "   "),
    ]
    assert lines_from_boxes(boxes) == "First line, second half\nnext line.\n\nNew paragraph"
    assert lines_from_boxes([]) == ""


@needs_ocr
def test_only_the_pages_without_a_text_layer_are_read_by_ocr_and_read_well(tmp_path):
    pages = distinct_pages(3)
    make_scanned_pdf(tmp_path / "mixed.pdf", pages, scanned=[1])
    reports: list[DocumentReport] = []
    loaded = list(load_pages([tmp_path / "mixed.pdf"], on_document=reports.append, on_skip_page=pytest.fail))
    assert [p.page for p in loaded] == [1, 2, 3]
    (report,) = reports
    assert (report.ocr_pages, report.ocr_tried) == ((2,), 1)
    assert report.ocr_seconds > 0
    assert cer(loaded[1].text, pages[1]) < MAX_CER, loaded[1].text
    assert "\n\n" in loaded[1].text  # the page's paragraphs survive, so the splitter can use them


@needs_ocr
def test_a_page_ocr_cannot_read_is_left_out_and_the_rest_kept(tmp_path):
    make_scanned_pdf(tmp_path / "mixed.pdf", distinct_pages(2), scanned=[1])
    skipped: list[SkippedPage] = []
    pages = load_pages([tmp_path / "mixed.pdf"], on_skip_page=skipped.append, clean=False)
    first = next(pages)
    (tmp_path / "mixed.pdf").unlink()  # pypdf holds the file open; OCR opens it anew and finds it gone
    assert [first.page, *(p.page for p in pages)] == [1]
    assert len(skipped) == 1 and skipped[0].page == 2
    assert skipped[0].reason == ("it has no text layer and OCR failed (the file was moved or deleted while it "
                                 "was being read)")


@needs_ocr
def test_generate_reads_a_scanned_page_and_marks_its_chunks(tmp_path, fake_server):
    make_scanned_pdf(tmp_path / "docs" / "scan.pdf", distinct_pages(2), scanned=[0])
    out = tmp_path / "out"
    proc = generate(tmp_path / "docs", out, fake_server)
    assert proc.returncode == 0, proc.stderr
    assert "scan.pdf: OCR read 1 page(s) without a text layer in" in proc.stderr
    assert "1 page(s) without a text layer read in" in proc.stdout and "text cleaning" in proc.stdout
    corpus = [row for path in (out / "data" / "corpus").glob("*.parquet") for row in pq.read_table(path).to_pylist()]
    assert {row["page"] for row in corpus if row["ocr"]} == {1}
    assert {row["page"] for row in corpus if not row["ocr"]} == {2}
    manifest = json.loads((out / "synthqa.json").read_text())
    (document,) = manifest["documents"]
    assert document["ocr_pages"] == 1 and document["ocr_seconds"] > 0
    card = (out / "README.md").read_text()
    assert "`scan.pdf` — 2 page(s), 1 read by OCR;" in card and "the `ocr` column of the corpus" in card


@needs_ocr  # to rasterise the scanned pages; reading them runs with the extra made unimportable
def test_without_the_extra_scanned_pages_name_the_install_line(tmp_path):
    make_scanned_pdf(tmp_path / "mixed.pdf", ["Typed page.", "Scanned page."], scanned=[1])
    make_scanned_pdf(tmp_path / "scan.pdf", ["Scanned page one.", "Scanned page two."])
    # The extra's modules made unimportable, as in an environment that never installed it.
    code = textwrap.dedent(f"""
        import sys
        sys.modules["rapidocr_onnxruntime"] = None
        sys.path.insert(0, {str(SRC)!r})
        from pathlib import Path
        from synthqa.pdfs import load_pages
        files, pages = [], []
        texts = [p.text for p in load_pages([Path({str(tmp_path)!r})], on_skip=files.append,
                                            on_skip_page=pages.append)]
        print(texts, [f.reason for f in files], [(p.page, p.reason) for p in pages], sep="\\n")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    texts, files, pages = out.stdout.strip().split("\n")
    assert texts == str(["Typed page."])
    hint = "pip install 'synthqa[ocr]'"
    assert files == str([f"no text layer on any of its 2 pages (scanned?): {hint} reads them by OCR"])
    assert pages == str([(2, f"it has no text layer, only an image (scanned?): {hint} reads it by OCR")])


@needs_ocr
def test_blank_pages_are_not_given_to_ocr(tmp_path):
    make_pdf(tmp_path / "blank.pdf", ["", ""])
    reader = ocr.PdfOcr(tmp_path / "blank.pdf")
    assert reader.read(2) == ""
    assert (reader.tried, reader.pages) == (0, [])
    reader.close()
    skipped: list[SkippedFile] = []
    assert list(load_pages([tmp_path / "blank.pdf"], on_skip=skipped.append)) == []
    assert [s.reason for s in skipped] == [
        "all of its 2 pages are blank: replace it with the real document or remove it"]
