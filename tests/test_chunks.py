"""Chunk stage: pages → chunks that keep their provenance and get stable ids."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pdfmaker import make_pdf

from synthqa.chunks import chunk_id, split_pages
from synthqa.errors import ConfigError
from synthqa.pdfs import load_pages
from synthqa.records import Page

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
SRC = Path(__file__).resolve().parent.parent / "src"

SENTENCES = " ".join(f"Sentence {i} of the retention policy explains rule {i * 7}." for i in range(60))


def test_chunk_id_is_16_hex_and_pinned():
    # Pinned: ids written into datasets and caches must not change between releases or machines.
    assert chunk_id("policy.pdf", 3, 0, "Data minimisation limits what is collected.") == "669448d91bbfe828"


def test_chunk_id_is_the_same_in_a_fresh_process_with_another_hash_seed():
    code = "from synthqa.chunks import chunk_id; print(chunk_id('a/b.pdf', 12, 4, 'caf\u00e9 text'))"
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == chunk_id("a/b.pdf", 12, 4, "caf\u00e9 text")


@pytest.mark.parametrize(
    "changed",
    [
        ("policy2.pdf", 3, 0, "same text"),
        ("policy.pdf", 4, 0, "same text"),
        ("policy.pdf", 3, 1, "same text"),
        ("policy.pdf", 3, 0, "same text."),
        ("policy.pdf", 0, 3, "same text"),  # page and index are not interchangeable
    ],
)
def test_chunk_id_changes_with_any_field(changed):
    base = chunk_id("policy.pdf", 3, 0, "same text")
    assert re.fullmatch(r"[0-9a-f]{16}", base)
    assert chunk_id(*changed) != base


def test_split_keeps_source_page_and_numbers_chunks_within_each_page():
    pages = [Page("a.pdf", 1, SENTENCES), Page("a.pdf", 2, "short page"), Page("b.txt", 5, SENTENCES)]
    chunks = list(split_pages(pages, chunk_size=500, chunk_overlap=100))
    by_page: dict[tuple[str, int], list] = {}
    for c in chunks:
        by_page.setdefault((c.source, c.page), []).append(c)
    assert list(by_page) == [("a.pdf", 1), ("a.pdf", 2), ("b.txt", 5)]
    assert [c.text for c in by_page[("a.pdf", 2)]] == ["short page"]
    for (source, page), group in by_page.items():
        assert [c.index for c in group] == list(range(len(group)))
        for c in group:
            assert len(c.text) <= 500
            assert c.id == chunk_id(source, page, c.index, c.text)
    long = by_page[("a.pdf", 1)]
    assert len(long) >= len(SENTENCES) // 500
    # The long page is cut into sections of about four chunks (section_size(500, 100) = 1700 characters).
    assert [c.section for c in long] == sorted(c.section for c in long) and long[-1].section >= 1
    # Consecutive chunks of a section overlap: the next one starts with words the previous one ended with;
    # across a section boundary they share nothing.
    for prev, nxt in itertools.pairwise(long):
        head = nxt.text.split(". ")[0]
        assert (head in prev.text) == (prev.section == nxt.section), (prev, nxt)
    # Same text on another page or in another file is a different chunk.
    assert {c.id for c in long}.isdisjoint(c.id for c in by_page[("b.txt", 5)])


def test_split_is_lazy():
    def endless():
        for n in itertools.count(1):
            yield Page("endless.txt", n, f"page {n} text")

    first = list(itertools.islice(split_pages(endless()), 3))
    assert [(c.page, c.text) for c in first] == [(1, "page 1 text"), (2, "page 2 text"), (3, "page 3 text")]


@pytest.mark.parametrize(("size", "overlap"), [(100, 100), (100, 150), (0, 0), (100, -1)])
def test_invalid_sizes_raise_config_error_at_call_time(size, overlap):
    with pytest.raises(ConfigError, match="chunk"):
        split_pages([], chunk_size=size, chunk_overlap=overlap)


def test_ids_are_stable_across_two_runs_over_a_real_pdf(tmp_path):
    make_pdf(tmp_path / "p.pdf", [SENTENCES[:1500], SENTENCES[1500:]])
    runs = [[(c.id, c.text) for c in split_pages(load_pages([tmp_path / "p.pdf"]), 400, 80)] for _ in range(2)]
    assert runs[0] == runs[1]
    assert len(runs[0]) >= 4
    assert len({i for i, _ in runs[0]}) == len(runs[0])


def test_reference_corpora_give_about_510_chunks():
    pages = load_pages(sorted(CORPORA.glob("*.pdf")))
    chunks = list(split_pages(pages, chunk_size=1000, chunk_overlap=200))
    assert 480 <= len(chunks) <= 540
    assert len({c.id for c in chunks}) == len(chunks)
    assert all(0 < len(c.text) <= 1000 for c in chunks)
