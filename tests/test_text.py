"""Text cleaning: each rule on its own, then whole documents (strings, real PDFs, text files) through load_pages."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from pdfmaker import make_pdf

from synthqa import text
from synthqa.pdfs import DocumentReport, load_pages
from synthqa.text import (
    Cleaning,
    clean_texts,
    count_words,
    edge_keys,
    is_page_number,
    join_hyphenated,
    line_key,
    nfkc,
    running_keys,
    strip_running_lines,
)

# --- NFKC ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected", "changed"),
    [
        ("speciﬁc eﬀective oﬃce ﬂow", "specific effective office flow", 4),
        ("ＡＩ　ｒｉｓｋ　２０２４", "AI risk 2024", 12),  # full-width letters, digits and the ideographic space
        ("a\u00a0b\u2009c", "a b c", 2),
        ("Straße, Größe, Übung und Maßnahmen", "Straße, Größe, Übung und Maßnahmen", 0),
        ("L'œuvre de l'État à Noël : « déjà » naïve", "L'œuvre de l'État à Noël : « déjà » naïve", 0),
        ("Η τεχνητή νοημοσύνη και η διακυβέρνηση", "Η τεχνητή νοημοσύνη και η διακυβέρνηση", 0),
        ("人工智能风险管理框架。リスク管理と신뢰할 수 있는 AI", "人工智能风险管理框架。リスク管理と신뢰할 수 있는 AI", 0),
        ("ｶﾀｶﾅ", "カタカナ", 4),  # half-width katakana become the usual ones
        ("e\u0301te\u0301", "été", 0),  # combining accents are composed; no compatibility character replaced
    ],
)
def test_nfkc_folds_compatibility_forms_and_keeps_every_script(raw, expected, changed):
    assert nfkc(raw) == (expected, changed)


# --- line-break hyphens --------------------------------------------------------------------------------------


def words_of(*texts: str) -> Counter:
    words: Counter = Counter()
    for t in texts:
        count_words(t, words)
    return words


@pytest.mark.parametrize(
    ("page", "elsewhere", "expected", "joined", "kept"),
    [
        ("Inno-\nvators deserve rules", "", "Innovators deserve rules", 1, 0),
        ("a risk-\nbased approach", "Use a risk-based method.", "a risk-based approach", 0, 1),
        ("the decision-\nmaking", "decisionmaking twice: decisionmaking, and decision-making once",
         "the decisionmaking", 1, 0),
        # neither spelling elsewhere, but both halves are words of the document: a compound
        ("privacy-\nenhancing tools", "privacy matters; enhancing it", "privacy-enhancing tools", 0, 1),
        ("COVID-\n19 response", "", "COVID-19 response", 0, 1),
        ("GV-\n1.1-001", "", "GV-1.1-001", 0, 1),
        ("for End-\nUsers", "", "for End-Users", 0, 1),
        ("SECTION TITLE-\nFOREWORD", "", "SECTION TITLE-FOREWORD", 0, 1),
        ("A TECH-\nNICAL COMPANION", "a technical note", "A TECHNICAL COMPANION", 1, 0),
        ("state-of-the-\nart models", "", "state-of-the-art models", 0, 1),
        ("more energy-\nand carbon-intensive", "", "more energy- and carbon-intensive", 0, 1),
        ("https://www.whitehouse.gov/briefing-room/presidential-\nactions/2023", "", "https://www.whitehouse.gov/"
         "briefing-room/presidential-actions/2023", 0, 1),
        ("die Verantwort-\nlichkeit", "", "die Verantwortlichkeit", 1, 0),
        ("η τεχνη-\nτή νοημοσύνη", "", "η τεχνητή νοημοσύνη", 1, 0),
        ("the typeset compli\u2010\nance", "", "the typeset compliance", 1, 0),  # U+2010 HYPHEN
        ("a dash -\nthen more", "", "a dash -\nthen more", 0, 0),  # a spaced dash is no hyphenation
        ("no break here", "", "no break here", 0, 0),
    ],
)
def test_line_break_hyphens_are_joined_unless_the_document_spells_a_compound(page, elsewhere, expected, joined,
                                                                            kept):
    assert join_hyphenated(page, words_of(page, elsewhere)) == (expected, joined, kept)


def test_word_counts_leave_out_the_halves_of_broken_words():
    words = words_of("Inno-\nvators and risk-based rules.\nNon-\nEnglish")
    assert words == Counter({"and": 1, "risk-based": 1, "rules": 1})


# --- running heads and page numbers --------------------------------------------------------------------------


def test_line_keys_mask_numbers_so_running_heads_of_different_pages_match():
    head = "Federal Register / Vol. 88, No."
    assert line_key(f"75192  {head} 210") == line_key(f"75193 {head} 211") == "# Federal Register / Vol. #, No. #"
    assert line_key("Page 7") == line_key("12") == line_key("- 3 -") == line_key("iv") == "#"
    assert line_key("Section 2") != line_key("Section 2: Scope")


@pytest.mark.parametrize("line", ["7", " 12 ", "- 7 -", "– 7 –", "Page 7", "page 7 of 40", "7/40", "p. 7", "iv", "XII"])
def test_page_number_lines(line):
    assert is_page_number(line)


@pytest.mark.parametrize("line", ["7 risks", "Table 3", "civil", "mix of things", "2.1 Scope", "Page seven"])
def test_lines_that_are_not_page_numbers(line):
    assert not is_page_number(line)


def test_running_keys_need_half_the_pages_and_three_pages_at_least():
    edges = Counter({"HEAD": 4, "half": 4, "rare": 3, "x" * 201: 8})
    assert running_keys(edges, 8) == frozenset({"HEAD", "half"})  # the 201-character line is content
    assert running_keys(Counter({"HEAD": 2}), 2) == frozenset()  # two pages are no evidence
    assert running_keys(Counter({"HEAD": 2}), 3) == frozenset({"HEAD"})


def test_a_short_document_needs_its_running_head_on_all_pages_but_one():
    """On 4 pages, two pages opening with the same sentence are content; a head missing from the title page
    is still a head."""
    edges = Counter({"top:the board meets monthly.": 2, "top:annual report #": 3, "bottom:#": 4})
    assert running_keys(edges, 4) == frozenset({"top:annual report #", "bottom:#"})
    assert running_keys(Counter({"top:head": 6}), 7) == frozenset({"top:head"})
    assert running_keys(Counter({"top:head": 5}), 7) == frozenset()


def test_a_sentence_opening_two_of_four_pages_stays(tmp_path):
    opener = "Members of the board review each request within ten working days."
    pages = [[opener if i in (1, 3) else f"Section {i} begins here with its own words.",
              f"Body of page {i}: the policy sets out duty {i} for every member of the board."] for i in range(4)]
    make_pdf(tmp_path / "short.pdf", ["\n".join(p) for p in pages])
    text = " ".join(page.text for page in load_pages([tmp_path / "short.pdf"]))
    assert text.count(opener) == 2


def test_running_lines_go_only_from_the_top_and_bottom_of_a_page():
    body = [f"Body line {i} of the section." for i in range(10)]
    page = "\n".join(["HEAD", *body[:5], "HEAD", *body[5:], "FOOT", "Page 4"])
    body_line = "Body line # of the section."
    keys = [key for _, key in edge_keys(page)]
    assert keys == ["top:HEAD", *[f"top:{body_line}"] * 3, *[f"bottom:{body_line}"] * 2, "bottom:FOOT", "#"]
    cleaned, heads, numbers = strip_running_lines(page, frozenset({"top:HEAD", "bottom:FOOT", "#"}), page=4)
    assert cleaned.split("\n") == [*body[:5], "HEAD", *body[5:]]  # the HEAD among the body stays
    assert (heads, numbers) == (2, 1)
    # a head found at the bottom of pages is not a running head at the top
    assert strip_running_lines(page, frozenset({"bottom:HEAD"}), page=9)[0] == page


def test_a_line_of_a_short_page_counts_as_top_and_bottom():
    assert edge_keys("Only line") == [(0, "top:Only line"), (0, "bottom:Only line")]
    assert strip_running_lines("Body\nBilling code 3395", frozenset({"bottom:Billing code #"}), page=2)[0] == "Body"


def test_a_page_number_that_is_the_pages_own_number_goes_even_without_repeats():
    assert strip_running_lines("3\nThe text of page three.", frozenset(), page=3) == ("The text of page three.", 0, 1)
    # a number that is not the page's own stays: it is content (a year closing a letter, a list item …)
    assert strip_running_lines("Signed in Washington\n2023", frozenset(), page=1)[0] == "Signed in Washington\n2023"


TOPICS = ["safety", "privacy", "equity", "security", "innovation", "workforce", "competition", "consumers",
          "health", "education", "energy", "transport", "housing", "justice", "science", "trade"]


def federal_register_pages(n: int) -> list[str]:
    """Pages as the Federal Register prints them: a running head with the page number, a footer with a
    billing code, and between them text that differs from page to page."""
    pages = []
    for p in range(1, n + 1):
        topic = TOPICS[p % len(TOPICS)]
        pages.append("\n".join([
            f"{75191 + p} Federal Register / Vol. 88, No. 210 / Wednesday, November 1, 2023 / Presidential Documents",
            f"Sec. {p}. Guidance on {topic}.",
            f"The agency shall publish guidance on {topic} and artificial intelligence.",
            f"It covers the {topic} programs of each agency.",
            "Federal Register",  # repeated on every page, but inside the text: it stays
            f"Agencies shall report on their progress in consider-\nations of {topic}.",
            f"Reports on {topic} are due within 90 days.",
            f"The {topic} council reviews them.",
            f"Billing code 3395-F4-P {p}",
        ]))
    return pages


def test_a_document_loses_its_running_heads_footers_and_hyphens_and_keeps_its_text():
    cleaned, counts = clean_texts(federal_register_pages(4))
    assert cleaned[0] == (
        "Sec. 1. Guidance on privacy.\n"
        "The agency shall publish guidance on privacy and artificial intelligence.\n"
        "It covers the privacy programs of each agency.\n"
        "Federal Register\n"
        "Agencies shall report on their progress in considerations of privacy.\n"
        "Reports on privacy are due within 90 days.\n"
        "The privacy council reviews them."
    )
    assert counts == Cleaning(characters_normalised=0, hyphens_joined=4, hyphens_kept=0, running_lines_removed=8,
                              page_numbers_removed=0)


def test_pages_with_nothing_but_running_heads_are_left_out():
    pages = [f"Annual Report 2024\nWhat {topic} programs achieved.\n{p}" for p, topic in enumerate(TOPICS[:3], 1)]
    cleaned, counts = clean_texts([*pages, "Annual Report 2024\n4"])
    assert cleaned == [f"What {topic} programs achieved." for topic in TOPICS[:3]]
    assert (counts.running_lines_removed, counts.page_numbers_removed) == (4, 4)


def test_spooling_to_disk_gives_the_same_pages(monkeypatch):
    pages = federal_register_pages(30)
    in_memory = clean_texts(pages)
    monkeypatch.setattr(text, "SPOOL_BYTES", 1)  # every page goes through the temporary file on disk
    assert clean_texts(pages) == in_memory


# --- whole files through load_pages ----------------------------------------------------------------------------


def load(paths, **kwargs) -> tuple[list, list[DocumentReport]]:
    reports: list[DocumentReport] = []
    return list(load_pages([Path(p) for p in paths], on_document=reports.append, **kwargs)), reports


BODY = [
    "The speciﬁc ﬂow of ﬁles is reviewed by the ﬁnance officers every year.",
    "Innovators and system developers shall document their proce-\ndures and risk-based controls.",
    "A risk-\nbased approach serves the public, and Inno-\nvators deserve clear rules of the road.",
    "Procedures are published; the final page says so in plain words.",
]


def test_pdf_running_heads_page_numbers_ligatures_and_hyphens_are_cleaned(tmp_path):
    make_pdf(tmp_path / "fr.pdf", BODY, header="{page} Federal Register / Vol. 88, No. 210 / Notices",
             footer="Page {page}", unicode_font=True)
    pages, reports = load([tmp_path / "fr.pdf"])
    assert [p.text for p in pages] == [
        "The specific flow of files is reviewed by the finance officers every year.",
        "Innovators and system developers shall document their procedures and risk-based controls.",
        "A risk-based approach serves the public, and Innovators deserve clear rules of the road.",
        "Procedures are published; the final page says so in plain words.",
    ]
    assert reports == [DocumentReport("fr.pdf", Cleaning(characters_normalised=4, hyphens_joined=2, hyphens_kept=1,
                                                         running_lines_removed=4, page_numbers_removed=4))]


def test_no_clean_keeps_the_text_as_extracted(tmp_path):
    make_pdf(tmp_path / "fr.pdf", BODY, header="{page} Federal Register / Vol. 88", footer="Page {page}",
             unicode_font=True)
    pages, reports = load([tmp_path / "fr.pdf"], clean=False)
    assert pages[0].text == ("1 Federal Register / Vol. 88\n"
                             "The speciﬁc ﬂow of ﬁles is reviewed by the ﬁnance officers every year.\nPage 1")
    assert pages[2].text.startswith("3 Federal Register / Vol. 88\nA risk-\nbased approach")
    assert reports[0].cleaning is None


def test_text_files_in_every_script_are_cleaned_and_keep_their_letters(tmp_path):
    pages = [
        "Übersicht\nDie Verantwort-\nlichkeit der Behörde für Maßnahmen.\n1",
        "Résumé\nL'État publie la synthèse ; les opérateurs sont concernés.\n2",
        "Σύνοψη\nΗ τεχνητή νοημοσύνη απαιτεί διακυβέρνηση.\n3",
        "概要\n人工智能风险管理框架，ＡＩ　ｒｉｓｋ。\n4",
    ]
    (tmp_path / "multi.txt").write_text("\f".join(pages), encoding="utf-8")
    loaded, _ = load([tmp_path / "multi.txt"])
    assert [p.text for p in loaded] == [
        "Übersicht\nDie Verantwortlichkeit der Behörde für Maßnahmen.",
        "Résumé\nL'État publie la synthèse ; les opérateurs sont concernés.",
        "Σύνοψη\nΗ τεχνητή νοημοσύνη απαιτεί διακυβέρνηση.",
        "概要\n人工智能风险管理框架,AI risk。",
    ]


def test_a_document_of_only_running_heads_is_skipped_with_its_reason(tmp_path):
    make_pdf(tmp_path / "blank.pdf", ["", "", ""], header="Intentionally blank section", footer="{page}")
    skipped = []
    pages, reports = load([tmp_path / "blank.pdf"], on_skip=skipped.append)
    assert pages == [] and reports == []
    assert "only running heads and page numbers" in skipped[0].reason
    assert "--no-clean" in skipped[0].reason
