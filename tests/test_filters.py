"""Chunk skip rules, per-question drop rules, and whole-dataset dedupe."""

from __future__ import annotations

import pytest

from synthqa.filters import (
    CHUNK_SKIP_REASONS,
    QUESTION_DROP_REASONS,
    chunk_skip_reason,
    dedupe_questions,
    duplicate_reason,
    filter_questions,
    question_drop_reason,
)
from synthqa.standalone import implicit_reference

PROSE = (
    "Automated systems should be developed with consultation from diverse communities, stakeholders, and\n"
    "domain experts to identify concerns, risks, and potential impacts of the system. Systems should undergo\n"
    "pre-deployment testing, risk identification and mitigation, and ongoing monitoring that demonstrate they\n"
    "are safe and effective based on their intended use, mitigation of unsafe outcomes including those beyond\n"
    "the intended use, and adherence to domain-specific standards.\n"
)

COPIED = (
    "Should systems undergo pre-deployment testing, risk identification and mitigation, and ongoing monitoring "
    "that demonstrate they are safe and effective based on their intended use, mitigation of unsafe outcomes "
    "including those beyond the intended use, and adherence to domain-specific standards?"
)

# The topics the kept questions below ask about, so that each one is grounded in its chunk.
TOPICS = (
    "Under the document retention policy and the document management standard, records are kept seven years.\n"
    "Generative AI systems raise text-to-image risks that the NIST profile lists. The Blueprint for an AI Bill\n"
    "of Rights was published in 2022; its documentation requirements and its section on data privacy apply to\n"
    "automated systems. Its authors cite the executive order on racial equity. A human alternative should be\n"
    "offered under some conditions.\n"
)

# --- chunks ----------------------------------------------------------------------------------------------------


def test_policy_prose_is_kept() -> None:
    assert chunk_skip_reason(PROSE) is None


def test_prose_with_a_footnote_url_and_a_numbered_list_is_kept() -> None:
    text = (
        "1. CBRN Information or Capabilities: Eased access to or synthesis of materially nefarious information\n"
        "or design capabilities related to chemical, biological, radiological, or nuclear (CBRN) weapons.\n"
        "2. Confabulation: The production of confidently stated but erroneous or false content by which users\n"
        "may be misled or deceived, as discussed by Smith et al. in their review of the literature.\n"
        "3. Data Privacy: Impacts due to leakage and unauthorized use, disclosure, or de-anonymization of\n"
        "biometric, health, location, or other personally identifiable information or sensitive data.\n"
        "4. Environmental Impacts: Impacts due to high compute resource utilization in training or operating\n"
        "GAI models, and related outcomes that may adversely impact ecosystems. See https://www.nist.gov/ai\n"
    )
    assert chunk_skip_reason(text) is None


def test_bracketed_reference_list_is_skipped() -> None:
    text = "\n".join(
        f"[{n}] Author{n}, A. and Other, B. Some Title About Systems Number {n}. Journal of Things. {2000 + n}."
        for n in range(1, 9)
    )
    assert chunk_skip_reason(text) == "references"


def test_author_year_bibliography_with_dois_is_skipped() -> None:
    text = (
        "Appendix B. References\n"
        "Acemoglu, D. (2024) The Simple Macroeconomics of AI https://www.nber.org/papers/w32487\n"
        "Badyal, N. et al. (2023) Intentional Biases in LLM Responses. arXiv.\n"
        "Bommasani, R. et al. (2022) Picking on the Same Person: Does Algorithmic Monoculture lead to Outcome\n"
        "Homogenization? arXiv. https://arxiv.org/pdf/2211.13972\n"
        "Carlini, N., et al. (2021) Extracting Training Data from Large Language Models. Usenix.\n"
        "Dahl, M. et al. (2024) Large Legal Fictions. doi:10.1000/182\n"
    )
    assert chunk_skip_reason(text) == "references"


def test_numbered_endnotes_with_access_dates_are_skipped() -> None:
    text = (
        "ENDNOTES\n"
        "23. National Science Foundation. National Artificial Intelligence Research Institutes. Accessed Sept. 12,\n"
        "2022. https://beta.nsf.gov/funding/opportunities/national-artificial-intelligence-research-institutes\n"
        "24. National Science Foundation. Cyber-Physical Systems. Accessed Sept. 12, 2022. https://beta.nsf.gov/\n"
        "funding/opportunities/cyber-physical-systems-cps\n"
        "25. Idaho Legislature. House Bill 118. Jul. 1, 2019. https://legislature.idaho.gov/sessioninfo/2019/\n"
    )
    assert chunk_skip_reason(text) == "references"


def test_url_list_is_skipped() -> None:
    text = "\n".join(
        f"https://www.example.gov/guidance/resources/automated-systems/part-{n}/index-of-materials.html"
        for n in range(6)
    )
    assert chunk_skip_reason(text) == "urls"


def test_numeric_table_is_skipped() -> None:
    rows = "\n".join(f"{n:3d}  {n * 3.17:8.2f}  {n * 11 % 97:4d}  {n / 7:6.3f}  -- | --" for n in range(1, 30))
    assert chunk_skip_reason("Table 4\n" + rows) == "numbers"


def test_dotted_leader_table_of_contents_is_skipped() -> None:
    text = (
        "Table of Contents\n"
        "1. Introduction ......................................................................... 1\n"
        "2. Overview of Risks Unique to or Exacerbated by GAI ......................................... 2\n"
        "3. Suggested Actions to Manage GAI Risks ...................................................... 12\n"
        "Appendix A. Primary GAI Considerations ........................................................ 47\n"
    )
    assert chunk_skip_reason(text) == "table_of_contents"


def test_contents_heading_with_page_numbers_on_their_own_lines_is_skipped() -> None:
    sections = ["USING THIS TECHNICAL COMPANION", "SAFE AND EFFECTIVE SYSTEMS", "DATA PRIVACY",
                "NOTICE AND EXPLANATION", "HUMAN ALTERNATIVES, CONSIDERATION, AND FALLBACK", "APPENDIX"]
    text = "TABLE OF CONTENTS\n" + "\n".join(sections) + "\n" + "\n".join(["12", "14", "15", "23", "30", "40"])
    assert chunk_skip_reason(text) == "table_of_contents"


def test_title_page_is_too_short() -> None:
    assert chunk_skip_reason("BLUEPRINT FOR AN\nAI BILL OF\nRIGHTS\nOCTOBER 2022") == "too_short"
    assert chunk_skip_reason("") == "too_short"


def test_every_skip_reason_has_a_description() -> None:
    assert set(CHUNK_SKIP_REASONS) == {"references", "urls", "numbers", "table_of_contents", "too_short", "names"}
    assert all(CHUNK_SKIP_REASONS.values())


# --- questions -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        "What does the document retention policy require?",
        "How long must records be kept under the document management standard?",
        "What risks arise in the context of generative AI systems?",
        "Which text-to-image risks does the NIST profile list?",
        "In which year was the Blueprint for an AI Bill of Rights published",  # no '?', still a question
        "What is the purpose of the documentation requirements for automated systems?",
        "What does the section on data privacy require of automated systems?",
        "Who are the authors of the NIST generative AI profile?",
        "What is the text of the executive order on racial equity?",
        "Under what conditions should a human alternative to an automated system be offered?",
    ],
)
def test_good_questions_are_kept(question: str) -> None:
    assert question_drop_reason(question, TOPICS) is None


@pytest.mark.parametrize(
    "question",
    [
        "Which automated systems should undergo pre-deployment testing.",  # no "?", one sentence: a question
        # other scripts' question marks: Greek ";" at the end, full-width, Arabic
        "Which automated systems should undergo testing; which need ongoing monitoring;",
        "Which automated systems should undergo testing. And which need ongoing monitoring？",
        "Which automated systems should undergo testing. And which need ongoing monitoring؟",
    ],
)
def test_a_question_without_an_ascii_question_mark_is_still_a_question(question: str) -> None:
    assert question_drop_reason(question, PROSE) is None


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("", "empty"),
        ("   \n ", "empty"),
        ("Automated systems must be tested before deployment.", "not_a_question"),
        ("List the five principles of the Blueprint", "not_a_question"),
        # a question word put in front of statements (an opener hint followed badly): no question mark, and
        # a sentence or clause ends inside it
        ("Which systems must be tested; testing covers pre-deployment and monitoring. This includes audits.",
         "not_a_question"),
        ("Does the testing, monitoring, or consultation; Human oversight roles", "not_a_question"),
        ("Why test?", "too_short"),
        ("What " + "very " * 60 + "long question is this?", "too_long"),
        ("What is the meaning of " + "x" * 400 + "?", "too_long"),
        ("What does the document say about data retention?", "refers_to_context"),
        ("According to the document, who must test automated systems?", "refers_to_context"),
        ("What are the main points of the text?", "refers_to_context"),
        ("What does the passage describe regarding consultation?", "refers_to_context"),
        ("Based on the provided context, what should systems undergo?", "refers_to_context"),
        ("What is the purpose of this document?", "refers_to_context"),
        ("Which risks are mentioned above?", "refers_to_context"),
        ("What does the excerpt recommend for monitoring?", "refers_to_context"),
        ("In the given text, what testing is required?", "refers_to_context"),
        ("What does this section describe?", "refers_to_context"),
        ("What does the author argue about pre-deployment testing?", "refers_to_context"),
    ],
)
def test_bad_questions_are_dropped(question: str, reason: str) -> None:
    assert question_drop_reason(question, PROSE) == reason


def test_copied_sentence_matches_across_pdf_line_breaks() -> None:
    # the chunk sentence is wrapped over four lines; the question copies it, two words swapped
    question = COPIED
    assert question_drop_reason(question, PROSE) == "copied_sentence"
    paraphrase = "What kinds of testing and monitoring show that an automated system is safe and effective?"
    assert question_drop_reason(paraphrase, PROSE) is None


def test_every_drop_reason_has_a_description() -> None:
    assert {"empty", "wrong_language", "not_a_question", "too_short", "too_long", "refers_to_context",
            "implicit_reference", "copied_sentence", "ungrounded_question", "duplicate",
            "near_duplicate", "not_keywords"} == set(QUESTION_DROP_REASONS)


# --- dedupe ----------------------------------------------------------------------------------------------------


def test_exact_duplicates_after_normalisation_keep_the_first() -> None:
    items = [
        ("q1", "What must automated systems be tested for?"),
        ("q2", "Who oversees the data privacy principle?"),
        ("q3", "  what MUST automated systems be tested for "),
        ("q4", "What must automated  systems be tested for?!"),
    ]
    assert dedupe_questions(items) == [(2, "duplicate"), (3, "duplicate")]


def test_near_duplicates_are_dropped_and_distinct_questions_kept() -> None:
    items = [
        ("a", "What testing must automated systems undergo before deployment?"),
        ("b", "Before deployment, what testing must automated systems undergo?"),  # same words, reordered
        ("c", "What testing must automated system undergo before deployment?"),  # one letter less
        ("d", "What testing must generative AI systems undergo after deployment?"),  # different question
        ("e", "Who is responsible for the ongoing monitoring of deployed systems?"),
    ]
    assert dedupe_questions(items) == [(1, "near_duplicate"), (2, "near_duplicate")]


def test_near_duplicate_chain_only_compares_with_kept_questions() -> None:
    # a≈b and b≈c but a≉c: b goes (it repeats a), c stays (what it resembles was dropped)
    a = "What must agencies publish about automated decision systems?"
    b = "What must agencies publish about automated decision-making systems?"
    c = "What must agencies publish about automated decision-making tools?"
    from rapidfuzz import fuzz

    from synthqa.filters import normalize_question as n

    assert fuzz.token_sort_ratio(n(a), n(b)) >= 92 and fuzz.token_sort_ratio(n(b), n(c)) >= 92
    assert fuzz.token_sort_ratio(n(a), n(c)) < 92
    assert dedupe_questions([("1", a), ("2", b), ("3", c)]) == [(1, "near_duplicate")]


def test_dedupe_result_does_not_depend_on_block_size() -> None:
    base = ["What testing must automated systems undergo before deployment?",
            "Who is responsible for the ongoing monitoring of deployed systems?",
            "How should notice be given to people affected by an automated decision?"]
    items = [(str(i), base[i % 3] + (" " if i % 2 else "") + ("" if i < 6 else " now")) for i in range(12)]
    assert dedupe_questions(items, block=2) == dedupe_questions(items, block=1024)
    # odd items differ by a space (exact), items 6+ by one word (near): only the first three survive
    assert {i for i, _ in dedupe_questions(items)} == set(range(3, 12))


def test_near_duplicates_decide_as_token_sort_ratio_over_all_pairs_does() -> None:
    """Blocked, pre-sorted comparison against the plain definition: every earlier kept question, scored with
    rapidfuzz's own token_sort_ratio (reordered words, one word changed, and unrelated questions)."""
    import random

    from rapidfuzz import fuzz

    from synthqa.dedupe import NEAR_DUPLICATE_RATIO, near_duplicates, normalize_question

    rng = random.Random(7)
    vocab = [f"{a}{b}" for a in ("risk", "audit", "notice", "data", "model", "board", "privacy", "bias")
             for b in ("ment", "ing", "s", "ed", "al", "ity", "ion", "er")]
    texts: list[str] = []
    for _ in range(150):
        words = rng.sample(vocab, rng.randint(6, 12))
        texts.append(" ".join(words))
        if rng.random() < 0.5:
            texts.append(" ".join(rng.sample(words, len(words))))  # reordered: token_sort_ratio 100
        if rng.random() < 0.5:
            changed = list(words)
            changed[rng.randrange(len(changed))] = rng.choice(vocab)
            texts.append(" ".join(changed))
    texts = [normalize_question(t) for t in dict.fromkeys(texts)]
    expected, kept = [], []
    for text in texts:
        near = any(fuzz.token_sort_ratio(text, k) >= NEAR_DUPLICATE_RATIO for k in kept)
        expected.append(near)
        if not near:
            kept.append(text)
    found = near_duplicates(lambda: texts, block=16)
    assert found.tolist() == expected and 20 < sum(expected) < len(texts) - 100


def test_one_new_question_is_judged_a_duplicate_as_dedupe_would_judge_it() -> None:
    kept = ["What testing must automated systems undergo before deployment?",
            "Who is responsible for the ongoing monitoring of deployed systems?"]
    for new in ("  what testing MUST automated systems undergo before deployment", "Before deployment, what testing "
                "must automated systems undergo?", "What testing must generative AI systems undergo after deployment?"):
        items = [(str(i), q) for i, q in enumerate([*kept, new])]
        by_dedupe = dict(dedupe_questions(items)).get(len(kept))
        assert duplicate_reason(new, kept) == by_dedupe
    assert [duplicate_reason(q, kept) for q in (kept[0] + "!", kept[0].replace("systems", "system"))] == [
        "duplicate", "near_duplicate"]


def test_filter_questions_combines_checks_and_dedupes_survivors_only() -> None:
    good = "What testing must automated systems undergo before deployment?"
    items = [
        ("q0", "What does the text say about testing before deployment?", PROSE),
        ("q1", good, PROSE),
        ("q2", good.upper(), PROSE),
        ("q3", "Testing.", PROSE),
        ("q4", "Who is responsible for the ongoing monitoring of deployed systems?", PROSE),
    ]
    result = filter_questions(items)
    assert result.kept == (1, 4)
    assert result.dropped == {0: "refers_to_context", 2: "duplicate", 3: "not_a_question"}
    assert set(result.counts) == set(QUESTION_DROP_REASONS)
    assert result.counts["duplicate"] == 1 and result.counts["copied_sentence"] == 0
    assert sum(result.counts.values()) == len(result.dropped)


def test_a_dropped_question_does_not_shadow_a_later_good_copy() -> None:
    # the first copy is dropped for its chunk (copied sentence); the later copy of another chunk survives
    elsewhere = ("Are automated systems safe and effective? Pre-deployment testing, risk identification and ongoing\n"
                 "monitoring show it, with mitigation of unsafe outcomes, the intended use and domain-specific\n"
                 "standards in view; outcomes beyond that use matter as well.")
    result = filter_questions([("q0", COPIED, PROSE), ("q1", COPIED, elsewhere)])
    assert result.dropped == {0: "copied_sentence"}
    assert result.kept == (1,)


def test_questions_not_in_their_chunks_language_are_dropped_and_counted() -> None:
    fr = "Combien de temps les dossiers du personnel sont-ils conservés après le départ ?"
    en = "How long are personnel files kept after an employee leaves the company?"
    items = [("q0", fr, "Les dossiers du personnel sont conservés cinq ans."), ("q1", en, "Texte."),
             ("q2", en, "Personnel files are kept for five years."), ("q3", en, "Personnel files: kept five years after an employee leaves the company.")]
    result = filter_questions(items, ["fr", "fr", "en", "und"])
    assert result.kept == (0, 2)
    # The wrong-language copy is counted as that, and does not make its later copy a duplicate.
    assert result.dropped == {1: "wrong_language", 3: "duplicate"}
    assert result.counts["wrong_language"] == 1
    # Without languages the language is not checked, but the English question's words are not in the French
    # chunk "Texte.": it is dropped as ungrounded, and its later copies are kept once, as before.
    assert filter_questions(items).dropped == {1: "ungrounded_question", 3: "duplicate"}


# --- implicit references the 0.5B model wrote on a sample of corpora/ (docs/queries.md) ------------------------

@pytest.mark.parametrize(
    ("question", "pointer"),
    [
        ("How can such data be subject to extra oversight for safety and efficacy?", "such data"),
        ("How can we prevent such behaviors from occurring?", "such behaviors"),
        # "dynamic" is named before "this", but an abstract noun names nothing either time
        ("What are the dynamic of this dynamic?", "this dynamic"),
        ("What is the main issue and why does this issue matter?", "this issue"),
        ("What are the main purposes of the training?", "the training"),
        ("How does the training ensure its accuracy and effectiveness?", "the training ensure"),
        ("Why is the data incomplete for young applicants?", "the data incomplete"),
        ("Who decides how the data is shared with insurers?", "the data is"),
        ("How accurate are the results?", "the results"),
        ("Can the model refuse to answer questions about chemical weapons?", "the model refuse"),
    ],
)
def test_pointing_words_a_question_never_names_are_implicit_references(question: str, pointer: str) -> None:
    assert implicit_reference(question) == pointer
    assert question_drop_reason(question, PROSE + TOPICS) == "implicit_reference"


@pytest.mark.parametrize(
    "question",
    [
        "Which groups, such as students and tenants, does continuous surveillance harm?",  # "such as"
        "Why are algorithms tuned such that false positives stay rare?",
        "What personal data do landlords collect and how long is the data kept?",  # "data" named before
        "What is a pretrial risk assessment and who must publish this assessment?",  # a concrete noun
        "How do you ensure that the training data for CBRN information is reviewed before fine-tuning?",
        "What are the main issues with the data release and advertisement delivery systems?",  # compounds
        "How do fine-tuning data support the training process?",
        "What does the model card of GPT-4 say about red-teaming?",
        "What are the results of the Winogender Schemas bias evaluation?",  # "of …" says which
        "How was the model used by the county validated?",
    ],
)
def test_named_subjects_and_compounds_are_not_implicit_references(question: str) -> None:
    assert implicit_reference(question) is None
