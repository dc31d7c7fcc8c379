"""Text cleaning and OCR: what cleaning changes in the chunks, what it costs, and how well OCR reads.

    .venv/bin/python bench/bench_clean.py [--repeat 3] [--ocr-pages 10] [--ocr-dpi 200] [--no-ocr]

For `corpora/` (the README's main job) and `bench/data/NIST.AI.100-1.pdf`, with the default options (chunks of
1,000 characters, overlap 200), before (`--no-clean`) and after cleaning: chunks made, chunks worth asking,
chunks holding a ligature, words broken by a line-break hyphen, chunks holding a running-head or page-number
line; what cleaning changed per document; load time per page with and without cleaning (best of --repeat;
wall time, and CPU time, which a busy machine does not inflate). Then OCR: ten prose pages of NIST.AI.100-1
(no figures, whose text a text layer lacks) rasterised at 300 dpi (a scanner's resolution) into an
image-only PDF and read back by synthqa's OCR: seconds per page (wall and CPU) and the character error rate
against the pages' own text layer (both NFKC'd, whitespace runs counted as one space; the figure without
spaces shows how much of it is words run together). ``--ocr-dpi 150,200,300`` compares render resolutions,
``--detection-side 960,1280`` the size text boxes are looked for at; ``--only-ocr`` skips the cleaning part.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from synthqa import chunks, filters, ocr, text  # noqa: E402
from synthqa.pdfs import DocumentReport, load_pages  # noqa: E402
from synthqa.records import Page  # noqa: E402

CORPORA = {"corpora/": [ROOT / "corpora"], "NIST.AI.100-1": [ROOT / "bench" / "data" / "NIST.AI.100-1.pdf"]}
OCR_SOURCE = ROOT / "bench" / "data" / "NIST.AI.100-1.pdf"
OCR_PAGES = (11, 12, 13, 14, 18, 19, 20, 21, 22, 23)  # prose and headings, a running head and a footer
SCAN_DPI = 300
LIGATURES = re.compile("[\ufb00-\ufb06]")
BROKEN = re.compile(r"(?<![\w-])[^\W\d_]+-\n[^\W\d_]+")


def load(paths: list[Path], clean: bool) -> tuple[list, list[DocumentReport], tuple[float, float]]:
    """The pages, the document reports, and (wall, CPU) seconds."""
    reports: list[DocumentReport] = []
    t0, c0 = time.perf_counter(), time.process_time()
    pages = list(load_pages(paths, clean=clean, on_document=reports.append))
    return pages, reports, (time.perf_counter() - t0, time.process_time() - c0)


def running_line_keys(pages) -> set[str]:
    """The line keys (sides dropped) that cleaning treats as running heads/page numbers, per the first pass."""
    keys: set[str] = set()
    for source in {p.source for p in pages}:
        doc = [p for p in pages if p.source == source]
        edges = Counter(key for p in doc for key in {k for _, k in text.edge_keys(p.text)})
        keys |= {key.split(":", 1)[-1] for key in text.running_keys(edges, len(doc))}
    return keys


def chunk_figures(pages, running: set[str]) -> dict[str, int]:
    made = list(chunks.split_pages(pages, 1000, 200))
    return {
        "chunks made": len(made),
        "chunks worth asking": sum(1 for c in made if filters.chunk_skip_reason(c.text) is None),
        "chunks holding a ligature": sum(1 for c in made if LIGATURES.search(c.text)),
        "words broken by a line-break hyphen": sum(len(BROKEN.findall(c.text)) for c in made),
        "chunks holding a running-head/page-number line": sum(
            1 for c in made if any(text.line_key(line) in running for line in c.text.split("\n"))),
    }


def bench_corpus(name: str, paths: list[Path], repeat: int) -> None:
    raw, _, _ = load(paths, clean=False)
    cleaned, reports, _ = load(paths, clean=True)
    running = running_line_keys([Page(p.source, p.page, text.nfkc(p.text)[0]) for p in raw])
    before, after = chunk_figures(raw, running), chunk_figures(cleaned, running)
    print(f"\n### {name}: {len({p.source for p in raw})} document(s), {len(raw)} pages with text\n")
    print("| | before (--no-clean) | after (cleaned) |\n| --- | ---: | ---: |")
    for key in before:
        print(f"| {key} | {before[key]} | {after[key]} |")
    print("\n| document | characters normalised | hyphens joined | hyphens kept | running-head/footer lines "
          "removed | page numbers removed |\n| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in reports:
        c = r.cleaning
        print(f"| {r.source} | {c.characters_normalised} | {c.hyphens_joined} | {c.hyphens_kept} | "
              f"{c.running_lines_removed} | {c.page_numbers_removed} |")
    best: dict[bool, tuple[float, float]] = {}
    for _ in range(repeat):  # interleaved, so a busy spell of the machine hits both modes alike
        for clean in (False, True):
            wall, cpu = load(paths, clean)[2]
            old = best.get(clean, (float("inf"), float("inf")))
            best[clean] = (min(old[0], wall), min(old[1], cpu))
    n = len(raw)
    print(f"\nload time per page (best of {repeat}), wall / CPU: {1000 * best[False][0] / n:.1f} / "
          f"{1000 * best[False][1] / n:.1f} ms without cleaning, {1000 * best[True][0] / n:.1f} / "
          f"{1000 * best[True][1] / n:.1f} ms with it")
    documents = [[p.text for p in raw if p.source == source] for source in dict.fromkeys(p.source for p in raw)]
    cpu = float("inf")
    for _ in range(repeat):  # cleaning alone, on text already extracted: what it adds to a page's load
        c0 = time.process_time()
        for pages in documents:
            text.clean_texts(pages)
        cpu = min(cpu, time.process_time() - c0)
    print(f"cleaning alone (both passes, spool included): {1000 * cpu / n:.2f} ms CPU per page")


def rasterise(source: Path, numbers: tuple[int, ...], dest: Path) -> list[str]:
    """Write pages ``numbers`` of ``source`` as an image-only PDF; return their text layers."""
    import pypdfium2 as pdfium
    from pypdf import PdfReader
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    pdf = pdfium.PdfDocument(str(source))
    c = canvas.Canvas(str(dest))
    for index in (n - 1 for n in numbers):
        width, height = pdf[index].get_size()
        c.setPageSize((width, height))
        c.drawImage(ImageReader(pdf[index].render(scale=SCAN_DPI / 72, grayscale=True).to_pil()), 0, 0, width, height)
        c.showPage()
    c.save()
    pdf.close()
    reader = PdfReader(str(source))
    return [reader.pages[n - 1].extract_text() or "" for n in numbers]


def cer(got: str, expected: str, spaces: bool = True) -> float:
    from rapidfuzz.distance import Levenshtein

    def norm(s: str) -> str:
        s = " ".join(unicodedata.normalize("NFKC", s).split())
        return s if spaces else s.replace(" ", "")

    return Levenshtein.distance(norm(got), norm(expected)) / max(1, len(norm(expected)))


def bench_ocr(numbers: tuple[int, ...], dpis: list[int], sides: list[int]) -> None:
    if not ocr.available():
        print(f"\nOCR: not installed ({ocr.INSTALL_HINT})")
        return
    t0 = time.perf_counter()
    ocr._engine()
    print(f"\n### OCR: pages {', '.join(map(str, numbers))} of {OCR_SOURCE.name}, scanned at {SCAN_DPI} dpi"
          f"\n\nengine load: {time.perf_counter() - t0:.1f} s (once per run)\n")
    print("| render dpi | detection side | seconds per page, wall | CPU | CER | CER without spaces "
          "| worst page (CER) |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        scan = Path(tmp) / "scan.pdf"
        truth = rasterise(OCR_SOURCE, numbers, scan)
        for dpi, side in ((d, s) for d in dpis for s in sides):
            ocr.DPI = dpi
            ocr._engine().text_det.limit_side_len = side
            reader = ocr.PdfOcr(scan)
            c0 = time.process_time()
            read = [reader.read(n) for n in range(1, len(numbers) + 1)]
            cpu = time.process_time() - c0
            reader.close()
            rates = [cer(g, e) for g, e in zip(read, truth, strict=True)]
            worst = max(range(len(rates)), key=rates.__getitem__)
            total = cer("\n".join(read), "\n".join(truth))
            nospace = cer("\n".join(read), "\n".join(truth), spaces=False)
            print(f"| {dpi} | {side} | {reader.seconds / len(numbers):.2f} | {cpu / len(numbers):.2f} | "
                  f"{100 * total:.2f} % | {100 * nospace:.2f} % | p.{numbers[worst]} ({100 * rates[worst]:.2f} %) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="load-time runs per mode (the best counts)")
    parser.add_argument("--ocr-pages", type=int, default=len(OCR_PAGES), help="how many of the ten pages")
    parser.add_argument("--ocr-dpi", default=str(ocr.DPI), help="render resolutions to compare, e.g. 150,200,300")
    parser.add_argument("--detection-side", default=str(ocr.DETECTION_SIDE), help="e.g. 960,1280")
    parser.add_argument("--no-ocr", action="store_true", help="skip the OCR part")
    parser.add_argument("--only-ocr", action="store_true", help="skip the cleaning part")
    args = parser.parse_args()
    if not args.only_ocr:
        for name, paths in CORPORA.items():
            bench_corpus(name, paths, args.repeat)
    if not args.no_ocr:
        bench_ocr(OCR_PAGES[:args.ocr_pages], [int(d) for d in args.ocr_dpi.split(",")],
                  [int(s) for s in args.detection_side.split(",")])


if __name__ == "__main__":
    main()
