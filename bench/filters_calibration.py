"""Print which chunks of the bundled corpora the chunk filters skip, with their text, and the counts.

    PYTHONPATH=src .venv/bin/python bench/filters_calibration.py [--quiet] [PDF ...]

Read the printed chunks: every one should be junk (references, TOC, title pages). Uses synthqa.pdfs /
synthqa.chunks when present, else the same pypdf + RecursiveCharacterTextSplitter(1000, 200) directly.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from synthqa.filters import CHUNK_SKIP_REASONS, chunk_skip_reason

ROOT = Path(__file__).resolve().parents[1]


def corpus_chunks(pdfs: list[Path]) -> list[tuple[str, int, str]]:
    """(source, page, text) for every chunk, split like the pipeline does."""
    try:
        from synthqa.chunks import split_pages
        from synthqa.pdfs import load_pages

        return [(c.source, c.page, c.text) for c in split_pages(load_pages(pdfs), 1000, 200)]
    except ImportError:
        from langchain_text_splitters import RecursiveCharacterTextSplitter
        from pypdf import PdfReader

        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
        out = []
        for pdf in pdfs:
            for number, page in enumerate(PdfReader(pdf).pages, 1):
                out += [(pdf.name, number, text) for text in splitter.split_text(page.extract_text() or "")]
        return out


def main(argv: list[str]) -> None:
    quiet = "--quiet" in argv
    pdfs = [Path(a) for a in argv if a != "--quiet"] or sorted((ROOT / "corpora").glob("*.pdf"))
    chunks = corpus_chunks(pdfs)
    counts: Counter[str] = Counter()
    per_source: Counter[tuple[str, str]] = Counter()
    for i, (source, page, text) in enumerate(chunks):
        reason = chunk_skip_reason(text)
        if reason is None:
            continue
        counts[reason] += 1
        per_source[(source, reason)] += 1
        if not quiet:
            print(f"===== #{i} {source} p.{page} → {reason}\n{text}\n")
    print(f"chunks: {len(chunks)}  skipped: {sum(counts.values())}  kept: {len(chunks) - sum(counts.values())}")
    for reason in CHUNK_SKIP_REASONS:
        print(f"  {reason:18} {counts[reason]:4}   " + ", ".join(
            f"{s}: {n}" for (s, r), n in sorted(per_source.items()) if r == reason))


if __name__ == "__main__":
    main(sys.argv[1:])
