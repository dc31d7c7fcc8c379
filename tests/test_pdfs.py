"""Input stage: real PDFs and text files on disk → pages, and one clear SkippedFile per bad file."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from pdfmaker import (
    make_corrupt_pdf,
    make_fake_pdf,
    make_image_only_pdf,
    make_pdf,
    make_pdf_with_broken_page,
    make_truncated_pdf,
    make_zero_byte,
)

from synthqa import ocr
from synthqa.pdfs import find_input_files, load_pages, normalize_text
from synthqa.records import Page, SkippedFile, SkippedPage

CORPORA = Path(__file__).resolve().parent.parent / "corpora"


def load(inputs, password=None):
    skipped: list[SkippedFile] = []
    pages = list(load_pages([Path(p) for p in inputs], password=password, on_skip=skipped.append))
    return pages, skipped


# --- pages, numbering, sources -------------------------------------------------------------------


def test_pdf_pages_are_numbered_from_one_and_empty_pages_are_left_out_but_counted(tmp_path):
    make_pdf(tmp_path / "doc.pdf", ["First page text.", "", "Third page text."])
    pages, skipped = load([tmp_path / "doc.pdf"])
    assert pages == [Page("doc.pdf", 1, "First page text."), Page("doc.pdf", 3, "Third page text.")]
    assert skipped == []


def test_folder_is_searched_recursively_in_sorted_order_with_relative_sources(tmp_path):
    docs = tmp_path / "docs"
    make_pdf(docs / "b.pdf", ["bee"])
    make_pdf(docs / "a" / "z.PDF", ["zed"])
    (docs / "a" / "notes.md").write_text("# Notes\nmark down", encoding="utf-8")
    (docs / "c.TXT").write_text("see", encoding="utf-8")
    found = [source for _, source in find_input_files([docs])]
    assert found == ["a/notes.md", "a/z.PDF", "b.pdf", "c.TXT"]
    pages, skipped = load([docs])
    assert [(p.source, p.text) for p in pages] == [
        ("a/notes.md", "# Notes\nmark down"),
        ("a/z.PDF", "zed"),
        ("b.pdf", "bee"),
        ("c.TXT", "see"),
    ]
    assert skipped == []


def test_mixed_file_and_folder_inputs_keep_argument_order_and_unique_sources(tmp_path):
    make_pdf(tmp_path / "one" / "policy.pdf", ["from folder one"])
    make_pdf(tmp_path / "two" / "policy.pdf", ["from folder two"])
    single = make_pdf(tmp_path / "three" / "policy.pdf", ["single file"])
    pages, skipped = load([single, tmp_path / "one", tmp_path / "two"])
    assert [(p.source, p.text) for p in pages] == [
        ("policy.pdf", "single file"),
        ("one/policy.pdf", "from folder one"),
        ("two/policy.pdf", "from folder two"),
    ]
    assert skipped == []
    # Same inputs, same sources: ids derived from them stay stable between runs.
    assert [s for _, s in find_input_files([single, tmp_path / "one", tmp_path / "two"])] == [
        p.source for p in pages
    ]


def test_a_file_reached_twice_is_read_once_and_reported(tmp_path):
    make_pdf(tmp_path / "docs" / "a.pdf", ["only once"])
    os.symlink(tmp_path / "docs" / "a.pdf", tmp_path / "docs" / "latest.pdf")
    pages, skipped = load([tmp_path / "docs", tmp_path / "docs" / "a.pdf"])
    assert [(p.source, p.text) for p in pages] == [("a.pdf", "only once")]
    assert len(skipped) == 2
    assert all("already read" in s.reason for s in skipped)


def test_hidden_entries_are_ignored_silently_and_unsupported_files_are_reported(tmp_path):
    make_pdf(tmp_path / "keep.pdf", ["kept"])
    make_pdf(tmp_path / ".synthqa" / "cached.pdf", ["hidden dir"])
    make_pdf(tmp_path / ".git" / "x.pdf", ["hidden dir"])
    make_pdf(tmp_path / ".hidden.pdf", ["hidden file"])
    (tmp_path / "memo.doc").write_bytes(b"\xd0\xcf\x11\xe0")
    (tmp_path / "scan.png").write_bytes(b"\x89PNG\r\n")
    (tmp_path / "LICENSE").write_text("MIT")
    pages, skipped = load([tmp_path])
    assert [p.text for p in pages] == ["kept"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons == {
        "LICENSE": "no file extension: only .pdf, .txt, .md, .docx and .html files are read; rename or convert it",
        "memo.doc": "unsupported file type .doc: save it as .docx or PDF",
        "scan.png": "unsupported file type .png: convert it to PDF, .docx, HTML or text",
    }


def test_a_synthqa_output_folder_inside_the_input_is_not_read(tmp_path):
    make_pdf(tmp_path / "policy.pdf", ["policy"])
    out = tmp_path / "out"
    (out / ".synthqa").mkdir(parents=True)
    (out / "README.md").write_text("---\nconfigs: []\n---\n# Dataset card", encoding="utf-8")
    (out / "synthqa.json").write_text("{}", encoding="utf-8")
    pages, skipped = load([tmp_path])
    assert [p.source for p in pages] == ["policy.pdf"]
    assert len(skipped) == 1 and skipped[0].path == str(out) and "synthqa output folder" in skipped[0].reason


def test_missing_input_is_reported_and_the_others_still_load(tmp_path):
    make_pdf(tmp_path / "ok.pdf", ["fine"])
    pages, skipped = load([tmp_path / "nope.pdf", tmp_path / "ok.pdf"])
    assert [p.text for p in pages] == ["fine"]
    assert skipped == [SkippedFile(str(tmp_path / "nope.pdf"), "no such file or folder: check the path", "nope.pdf")]


# --- normalisation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("soft\u00adhyphen", "softhyphen"),
        ("policy-\nmakers", "policy-\nmakers"),  # line-end hyphenation is not rejoined
        ("a\u00a0b\u2009c\u3000d\u202fe", "a b c d e"),
        ("many   spaces\t\tand tabs", "many spaces and tabs"),
        ("trailing   \nspaces \t\nhere", "trailing\nspaces\nhere"),
        ("one\n\n\n\n\ntwo\n \n \n three", "one\n\ntwo\n\n three"),
        ("  \n\n padded page \n\n ", "padded page"),
        ("crlf\r\nline\rend", "crlf\nline\nend"),
        (" \u00a0\t\n\n", ""),
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def test_normalisation_applies_to_pdf_text(tmp_path):
    make_pdf(tmp_path / "n.pdf", ["non\u00a0breaking and soft\u00adhyphen   end"])
    pages, _ = load([tmp_path / "n.pdf"])
    assert [p.text for p in pages] == ["non breaking and softhyphen end"]


def test_text_file_form_feeds_split_pages(tmp_path):
    (tmp_path / "t.txt").write_text("page one\fpage two\n\f \f\npage four\r\n", encoding="utf-8")
    pages, skipped = load([tmp_path / "t.txt"])
    assert pages == [Page("t.txt", 1, "page one"), Page("t.txt", 2, "page two"), Page("t.txt", 4, "page four")]
    assert skipped == []


def test_text_file_with_bom_and_invalid_utf8_is_read_with_replacement(tmp_path):
    (tmp_path / "t.md").write_bytes(b"\xef\xbb\xbfcaf\xc3\xa9 \xff ok")
    pages, _ = load([tmp_path / "t.md"])
    assert [p.text for p in pages] == ["caf\u00e9 \ufffd ok"]


# --- bad files ------------------------------------------------------------------------------------

BAD_FILES = {
    "corrupt.pdf": (make_corrupt_pdf, "cannot be read as a PDF"),
    "truncated.pdf": (lambda p: make_truncated_pdf(p, ["some text"] * 3), "damaged or truncated"),
    "zero.pdf": (make_zero_byte, "empty file (0 bytes)"),
    "zero.txt": (make_zero_byte, "empty file (0 bytes)"),
    "blank.txt": (lambda p: p.write_text(" \n\f\t\n"), "only whitespace"),
    "binary.txt": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "binary data"),
    # Shapes only: OCR (when installed) finds no text either; without it, the skip names the extra.
    "scanned.pdf": (
        lambda p: make_image_only_pdf(p, 3),
        "no text on any of its 3 pages, not even by OCR" if ocr.available() else
        "no text layer on any of its 3 pages (scanned?): pip install 'synthqa[ocr]' reads them by OCR",
    ),
    "renamed.pdf": (make_fake_pdf, "not a PDF"),
    "locked.pdf": (lambda p: make_pdf(p, ["secret"], encrypt_password="s3cret"), "pass --pdf-password"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_each_bad_file_gives_one_skip_naming_it_and_good_files_still_load(tmp_path, name, caplog):
    make, expected = BAD_FILES[name]
    make(tmp_path / name)
    make_pdf(tmp_path / "good.pdf", ["good text"])
    (tmp_path / "zgood.txt").write_text("more good text", encoding="utf-8")
    pages, skipped = load([tmp_path])
    assert [(p.source, p.text) for p in pages] == [("good.pdf", "good text"), ("zgood.txt", "more good text")]
    assert len(skipped) == 1
    assert skipped[0].path == str(tmp_path / name)
    assert expected in skipped[0].reason
    assert "\n" not in skipped[0].reason
    # pypdf's own warnings ("EOF marker not found" …) are noise to users and must not reach the terminal.
    assert not [r for r in caplog.records if r.name.startswith("pypdf") and r.levelno < logging.ERROR]


def test_encrypted_pdf_opens_with_the_right_password(tmp_path):
    make_pdf(tmp_path / "locked.pdf", ["secret one", "secret two"], encrypt_password="s3cret")
    pages, skipped = load([tmp_path / "locked.pdf"], password="s3cret")
    assert [p.text for p in pages] == ["secret one", "secret two"]
    assert skipped == []


def test_encrypted_pdf_with_wrong_password_names_the_option(tmp_path):
    make_pdf(tmp_path / "locked.pdf", ["secret"], encrypt_password="s3cret")
    make_pdf(tmp_path / "open.pdf", ["public"])
    pages, skipped = load([tmp_path], password="wrong")
    assert [p.text for p in pages] == ["public"]  # the password does no harm to unencrypted files
    assert skipped == [
        SkippedFile(str(tmp_path / "locked.pdf"), "encrypted, and --pdf-password does not open it: check the password",
                    "locked.pdf")
    ]


def test_a_page_that_fails_to_extract_is_skipped_and_the_rest_kept(tmp_path):
    make_pdf_with_broken_page(tmp_path / "b.pdf", ["page one", "page two", "page three"], broken=1)
    left_out: list[SkippedPage] = []
    pages = list(load_pages([tmp_path / "b.pdf"], on_skip=pytest.fail, on_skip_page=left_out.append))
    assert pages == [Page("b.pdf", 1, "page one"), Page("b.pdf", 3, "page three")]
    assert [(p.source, p.page) for p in left_out] == [("b.pdf", 2)]
    assert "could not be extracted" in left_out[0].reason


def test_skipped_files_name_their_path_relative_to_the_input_folder(tmp_path):
    docs = tmp_path / "home" / "alice" / "policies"
    make_pdf(docs / "ok.pdf", ["fine"])
    (docs / "sub").mkdir()
    (docs / "sub" / "empty.pdf").write_bytes(b"")
    skipped: list[SkippedFile] = []
    list(load_pages([docs, tmp_path / "home" / "alice" / "gone.pdf"], on_skip=skipped.append))
    assert [s.source for s in skipped] == ["sub/empty.pdf", "gone.pdf"]
    assert skipped[0].path == str(docs / "sub" / "empty.pdf")  # the terminal line names the real file


def test_a_pdf_whose_every_page_fails_is_skipped_once(tmp_path):
    make_pdf_with_broken_page(tmp_path / "b.pdf", ["only page"], broken=0)
    pages, skipped = load([tmp_path / "b.pdf"])
    assert pages == []
    assert len(skipped) == 1 and "could not be extracted from any of its 1 pages" in skipped[0].reason


@pytest.mark.timeout(30)
def test_symlink_loops_finish_and_list_each_file_once(tmp_path):
    docs = tmp_path / "docs"
    make_pdf(docs / "sub" / "a.pdf", ["in sub"])
    os.symlink(docs, docs / "sub" / "back_to_top")
    os.symlink(docs / "sub", docs / "sub" / "self")
    os.symlink(tmp_path / "nowhere", docs / "dangling.pdf")
    pages, skipped = load([docs])
    assert [(p.source, p.text) for p in pages] == [("sub/a.pdf", "in sub")]
    assert skipped == [SkippedFile(str(docs / "dangling.pdf"), "broken symbolic link: point it at a file or remove it",
                                   "dangling.pdf")]


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux /proc")
@pytest.mark.parametrize("name", ["ioerror.pdf", "ioerror.txt"])
def test_a_file_that_fails_to_read_is_reported(tmp_path, name):
    # Reading /proc/self/mem at offset 0 fails with EIO even for root: a real OS read error.
    os.symlink("/proc/self/mem", tmp_path / name)
    make_pdf(tmp_path / "ok.pdf", ["fine"])
    pages, skipped = load([tmp_path])
    assert [p.text for p in pages] == ["fine"]
    assert skipped == [SkippedFile(str(tmp_path / name), "cannot be read: Input/output error", name)]


_SRC = Path(__file__).resolve().parent.parent / "src"
_LOAD_AS_USER = (
    "import json, sys; from pathlib import Path; from synthqa.pdfs import load_pages; skipped = []; "
    "texts = [p.text for p in load_pages([Path(sys.argv[1])], on_skip=skipped.append)]; "
    "print(json.dumps([texts, [[s.path, s.reason] for s in skipped]]))"
)


@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="root ignores permissions")
def test_unreadable_file_and_folder_are_reported():
    # Root reads anything, so as root the loader runs in a child process as user "nobody".
    folder = Path(tempfile.mkdtemp(prefix="synthqa-perm-"))
    try:
        folder.chmod(0o755)
        make_pdf(folder / "locked.pdf", ["x"])
        make_pdf(folder / "closed" / "inner.pdf", ["y"])
        make_pdf(folder / "ok.pdf", ["fine"])
        (folder / "locked.pdf").chmod(0)
        (folder / "closed").chmod(0)
        command = [sys.executable, "-c", _LOAD_AS_USER, str(folder)]
        if os.geteuid() == 0:
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        env = {**os.environ, "PYTHONPATH": str(_SRC)}
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=True, cwd="/")
        texts, skipped = json.loads(out.stdout)
    finally:
        (folder / "closed").chmod(0o755)
        shutil.rmtree(folder)
    assert texts == ["fine"]
    assert [Path(p).name for p, _ in skipped] == ["closed", "locked.pdf"]
    assert all("permission denied" in reason for _, reason in skipped)


# --- streaming ------------------------------------------------------------------------------------


@pytest.mark.parametrize("clean", [True, False])
def test_large_text_file_is_streamed_page_by_page(tmp_path, clean):
    page_text = "Policy clause number {0} says the same long thing again and again. " * 30
    big = tmp_path / "big.txt"
    with open(big, "w", encoding="utf-8") as f:
        for i in range(2000):
            f.write(page_text.format(i) + "\f")
    size = big.stat().st_size
    assert size > 4_000_000

    pages = load_pages([big], clean=clean)
    assert iter(pages) is pages  # an iterator, not a list built up front
    tracemalloc.start()
    try:
        count = 0
        for page in pages:
            count += 1
            assert page.page == count
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 2000
    # All pages held at once would take more than the file's size; streaming keeps a block and a page, and
    # cleaning's two passes keep word counts and 32 KiB of spooled pages (the rest is in a temporary file).
    assert peak < size / 10, f"peak {peak} bytes for a {size}-byte file"


def test_pages_come_out_before_later_files_are_opened(tmp_path):
    make_pdf(tmp_path / "a.pdf", ["first"])
    make_pdf(tmp_path / "b.pdf", ["second"])
    skipped: list[SkippedFile] = []
    pages = load_pages([tmp_path], on_skip=skipped.append)
    assert next(pages).text == "first"
    # b.pdf has not been read yet: breaking it now shows up when the stream reaches it.
    (tmp_path / "b.pdf").write_bytes(b"")
    assert list(pages) == []
    assert [Path(s.path).name for s in skipped] == ["b.pdf"]


def test_reference_corpora_load_every_page():
    pdfs = sorted(CORPORA.glob("*.pdf"))
    pages, skipped = load(pdfs)
    assert skipped == []
    by_source = {}
    for p in pages:
        by_source.setdefault(p.source, []).append(p.page)
    assert set(by_source) == {"NIST.AI.600-1.pdf", "Blueprint-for-an-AI-Bill-of-Rights.pdf"}
    assert max(by_source["NIST.AI.600-1.pdf"]) == 64
    assert max(by_source["Blueprint-for-an-AI-Bill-of-Rights.pdf"]) == 73
    assert all(p.text == p.text.strip() and "\u00ad" not in p.text and "\n\n\n" not in p.text for p in pages)


def test_folder_notes_are_skipped_unless_named(tmp_path):
    from synthqa.pdfs import find_input_files

    (tmp_path / "SOURCES.md").write_text("Where these documents come from.")
    (tmp_path / "readme.txt").write_text("Notes.")
    (tmp_path / "policy.md").write_text("A policy about records.")
    skipped = []
    found = [source for _, source in find_input_files([tmp_path], skipped.append)]
    assert found == ["policy.md"]
    assert sorted(Path(s.path).name for s in skipped) == ["SOURCES.md", "readme.txt"]
    assert all("name the file itself" in s.reason for s in skipped)
    assert [source for _, source in find_input_files([tmp_path / "SOURCES.md"])] == ["SOURCES.md"]
