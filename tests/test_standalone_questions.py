"""Questions that stand alone and rest on their chunk; chunks that are lists of names.

The questions are the embedded 0.5B model's own, written for chunks of corpora/ (bench/bench_filters.py
prints the whole run), and questions a person would type that must pass."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from synthqa.chunks import split_pages
from synthqa.filters import chunk_skip_reason, filter_questions, question_drop_reason
from synthqa.standalone import implicit_reference
from synthqa.grounding import question_grounded, question_grounding
from synthqa.pdfs import load_pages

CORPORA = Path(__file__).resolve().parent.parent / "corpora"

# Blueprint p. 22, as cleaned text: the chunk the model asked "Why is this principle important?" about.
SAFE = (
    "SAFE AND EFFECTIVE SYSTEMS\n"
    "You should be protected from unsafe or ineffective automated systems. Automated systems should be\n"
    "developed with consultation from diverse communities, stakeholders, and domain experts to identify\n"
    "concerns, risks, and potential impacts of the system. Systems should undergo pre-deployment testing, risk\n"
    "identification and mitigation, and ongoing monitoring that demonstrate they are safe and effective based on\n"
    "their intended use. Independent evaluation and reporting that confirms that the system is safe and\n"
    "effective, including reporting of steps taken to mitigate potential harms, should be performed and the\n"
    "results made public whenever possible. Algorithmic discrimination protections apply to studies of\n"
    "pretrial risk assessment tools used in courts.\n"
)


@pytest.mark.parametrize(
    ("question", "pointer"),
    [
        ("Why is this principle important?", "this principle"),
        ("How can these governance procedures be implemented in an organisation?", "these governance"),
        ("How do these approaches differ in practice?", "these approaches"),
        ("What is the purpose of the system?", "the system"),
        ("How does the system protect against unsafe outcomes?", "the system protect"),
        ("What are the main problems that the principle seeks to address?", "the principle seeks"),
        ("What are the examples provided?", "the examples provided"),
        ("Which safeguards are described and why?", None),  # no "the": passes this check
        ("How does it relate to automated systems in policy and practice?", "How does it"),
        ("How do they ensure reliability and validity?", "How do they"),
        ("What are the main topics discussed in this panel discussion?", "this panel"),
        # Borderline, decided: a searcher names the policy; "the travel policy's section 3" passes.
        ("What does this policy's section 3 require of employees?", "this policy"),
        # an adjective pointing back at what the chunk named before it (the sample's "the old decision")
        ("What are the main points of the old decision?", "the old decision"),
        ("How do safeguards help ensure future decisions do not result in the same errors?", "the same errors"),
        ("Why was the previous version withdrawn?", "the previous version"),
        ("Which of the latter approaches costs less?", "the latter approaches"),
        ("What are the following steps an agency must take?", "the following steps"),
        ("Who reviews the original decision?", "the original decision"),
        # "new" before a generic noun that ends the phrase (the spare-questions sample's one clear case)
        ("How should the new decision be entered into the automated system throughout its components?",
         "the new decision"),
        ("Does the new rule apply to contractors?", "the new rule"),
        ("What is the latest version?", "the latest version"),
    ],
)
def test_implicit_references_are_found(question: str, pointer: str | None) -> None:
    assert implicit_reference(question) == pointer
    if pointer:
        assert question_drop_reason(question, SAFE) == "implicit_reference"


@pytest.mark.parametrize(
    "question",
    [
        "What does the travel policy's section 3 require of employees?",
        "Does the policy cover flood damage caused by a burst pipe?",  # a person's own policy: topic words carry it
        "How long does it take to get a refund for a cancelled flight?",
        "What does it mean for an AI system to be explainable?",
        "What is a pretrial risk assessment and who must publish this assessment?",  # named before "this"
        "What did federal agencies change about AI procurement this year?",
        "What does the system of records notice require agencies to publish?",  # "of …" names the system
        "How does the framework for AI risk management define confabulation?",
        "What is the algorithm designed to identify high-need patients accused of?",
        "What are the services provided by Medicare to people over 65?",
        "Which pretrial risk assessment tools are used in courts?",
        # qualified, or named earlier: they say which one
        "Do contractors get the same protections as employees under the Blueprint for an AI Bill of Rights?",
        "How can the original source of a synthetic image be traced with content provenance?",
        "Does a reassessed decision replace the old decision made by the automated system?",
        "What replaced the former Office of Science and Technology Policy guidance on AI?",
        "What did the 2023 executive order keep from the previous executive order on AI?",
        # "new" naming what it modifies, or the noun qualified: they say which one
        "What does the new privacy law require of data brokers?",
        "Which agencies adopted the new AI framework in 2023?",
        "What is the new rule for remote work by federal contractors?",
        "Who made the new decision about parole in the pretrial risk case?",
    ],
)
def test_questions_that_name_what_they_ask_about_pass(question: str) -> None:
    assert implicit_reference(question) is None


def test_mentioned_in_the_text_anywhere_refers_to_the_context() -> None:
    assert question_drop_reason("Which risks are mentioned in the text about pretrial tools?", SAFE) == \
        "refers_to_context"
    assert question_drop_reason("Which harms are described in this passage for tenants?", SAFE) == \
        "refers_to_context"
    # "Article 5" names a part of a law, not the reading material
    assert question_drop_reason("Which duties are described in the Article 5 of the pretrial risk code?",
                                SAFE + " Article 5 lists duties.") is None


def test_a_question_about_the_prompts_own_domain_is_ungrounded() -> None:
    # Asked by the 0.5B model about a chunk on technology oversight that never mentions insurance.
    chunk = ("Surveillance and monitoring systems should be subject to heightened oversight that includes at\n"
             "least pre-deployment assessment of their potential harms and scope limits to protect privacy\n"
             "and civil liberties. Continuous surveillance should not be used in education or work.")
    question = "What are the main concerns surrounding surveillance oversight in insurance policies?"
    assert question_grounding(question, chunk) < 0.5
    assert question_drop_reason(question, chunk) == "ungrounded_question"
    grounded = "Where should continuous surveillance not be used according to civil liberties protections?"
    assert question_drop_reason(grounded, chunk) is None


def test_grounding_matches_by_stem_and_ignores_the_questions_frame() -> None:
    # "studies/study", "assessments/assessment", "discriminatory/discrimination"; "main", "purpose" are frame
    question = "What is the main purpose of a study of discriminatory pretrial assessments?"
    assert question_grounding(question, SAFE) == 1.0
    assert question_grounded("What is the name of the policy?", SAFE) is False
    # exactly half of the topic words in the chunk is not "mostly absent": kept
    assert question_grounded("How are pretrial tools priced by vendors?", SAFE)  # pretrial tools | priced vendors


def test_grounding_judges_english_only() -> None:
    chunk = "Les dossiers du personnel sont conservés cinq ans."
    assert question_grounded("Combien coûte une assurance habitation à Lyon ?", chunk, "fr")  # not judged
    assert not question_grounded("How much does home insurance in Lyon cost?", chunk, "en")
    assert not question_grounded("How much does home insurance in Lyon cost?", chunk, "und")


def test_new_filters_are_counted_like_the_others() -> None:
    items = [("q0", "Why is this principle important?", SAFE),
             ("q1", "Which risks of insurance pricing apply to life cover?", SAFE),
             ("q2", "Who should evaluate automated systems and report that they are safe?", SAFE)]
    result = filter_questions(items, ["en"] * 3)
    assert result.kept == (2,)
    assert result.dropped == {0: "implicit_reference", 1: "ungrounded_question"}
    assert result.counts["implicit_reference"] == 1 and result.counts["ungrounded_question"] == 1


# --- chunks that are lists of names ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpora_chunks():
    return list(split_pages(load_pages(sorted(CORPORA.glob("*.pdf"))), 1000, 200))


def test_lists_of_names_in_the_corpora_are_skipped_and_nothing_else(corpora_chunks) -> None:
    names = [c for c in corpora_chunks if chunk_skip_reason(c.text) == "names"]
    where = Counter((c.source.split("-")[0].split(".")[0], c.page) for c in names)
    # Blueprint: the listening-session panels (pp. 55-59) and the RFI respondents (pp. 60-62);
    # NIST AI 600-1: its title pages and the acknowledgements page. Nowhere else.
    assert {p for s, p in where if s == "Blueprint"} <= set(range(55, 63))
    assert {p for s, p in where if s == "NIST"} <= {1, 2, 3}
    assert sum(n for (s, p), n in where.items() if s == "Blueprint" and p >= 60) >= 6
    assert any("Panelists:" in c.text for c in names)
    assert any(c.page == 3 and "Acknowledgments" in c.text for c in names)


def test_panel_pages_keep_their_prose_chunks(corpora_chunks) -> None:
    appendix = [c for c in corpora_chunks if c.source.startswith("Blueprint") and 55 <= c.page <= 59]
    prose = [c for c in appendix if "Panelists discussed the benefits of AI-enabled systems" in c.text]
    assert prose and all(chunk_skip_reason(c.text) is None for c in prose)
    # a chunk with both a short list of panelists and the summary of their discussion is asked about
    mixed = [c for c in appendix if "Each panelist individually emphasized" in c.text]
    assert mixed and chunk_skip_reason(mixed[0].text) is None


def test_category_lists_of_nist_action_tables_are_not_names(corpora_chunks) -> None:
    table = [c for c in corpora_chunks if "Utilize a purpose-built testing environment such as NIST Dioptra" in c.text]
    assert table and chunk_skip_reason(table[0].text) is None
