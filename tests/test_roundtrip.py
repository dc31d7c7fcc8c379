"""Round-trip ranks (BM25 and the bundled MiniLM) and extra relevant chunks on a small known corpus."""

from __future__ import annotations

import numpy as np
import pytest

from synthqa import roundtrip
from synthqa.errors import ConfigError
from synthqa.roundtrip import (
    bm25_ranks,
    bm25_scores,
    embeddings_available,
    extra_relevant,
    ranks_from_scores,
    score_roundtrip,
)

CORPUS = [
    "Automated systems should be tested before deployment to show they are safe and effective for their use.",
    "People should know when an automated system is used and receive a plain language explanation of outcomes.",
    "Data privacy protections limit the collection of personal data to what is strictly necessary for a task.",
    "Biometric surveillance in schools, such as facial recognition of pupils, deserves heightened oversight.",
    "Generative models can confabulate: they produce confident but false statements presented as facts.",
    "A human alternative and fallback process should be available when an automated system fails somebody.",
]


def test_question_quoting_a_rare_word_finds_its_chunk_first() -> None:
    questions = ["Why does biometric surveillance of pupils need oversight?", "Why do models confabulate?"]
    assert bm25_ranks(questions, [3, 4], CORPUS) == [1, 1]


def test_question_about_another_chunk_ranks_its_own_chunk_lower() -> None:
    # written from chunk 0, but its words all belong to chunk 3
    assert bm25_ranks(["Why does biometric surveillance of pupils need oversight?"], [0], CORPUS) == [2]


def test_scores_have_one_row_per_question_and_one_column_per_chunk() -> None:
    scores = bm25_scores(["facial recognition", "plain language explanation"], CORPUS)
    assert scores.shape == (2, len(CORPUS)) and scores.dtype == np.float32
    assert scores[0].argmax() == 3 and scores[1].argmax() == 1
    assert scores[0, 4] == 0  # chunk 4 shares no word with the question


def test_ties_go_to_the_lower_index() -> None:
    corpus = ["alpha beta gamma", "delta epsilon", "alpha beta gamma"]
    assert bm25_ranks(["alpha gamma", "alpha gamma"], [0, 2], corpus) == [1, 2]
    # a question of stopwords and unknown words scores 0 everywhere: rank = own index + 1
    assert bm25_ranks(["what is the zyzzyva?"], [1], corpus) == [2]


def test_ranks_from_scores() -> None:
    scores = np.array([[0.1, 0.9, 0.5], [0.3, 0.3, 0.3]], dtype=np.float32)
    assert ranks_from_scores(scores, [2, 1]) == [2, 2]
    with pytest.raises(ValueError, match="2 score rows but 1"):
        ranks_from_scores(scores, [0])


def test_extra_relevant_finds_a_repeated_chunk_but_not_a_mere_word_match() -> None:
    shared = (
        "Independent evaluators should be given access to the automated system and its training data, "
        "so that they can verify the claims made about it."
    )
    corpus = CORPUS + [
        # chunk 6 repeats chunk 0's passage word for word (overlap / boilerplate): it answers the question too
        "Summary of the principle. " + shared + " Results should be published in plain language.",
        # chunk 7 has the question's words but no passage in common with chunk 8
        "Evaluators of training data access: independent system evaluators are given access and data.",
        "Before deployment. " + shared + " Reporting should follow.",
    ]
    question = "Should independent evaluators be given access to the automated system and its training data?"
    lexical = bm25_scores([question, question], corpus)
    assert lexical[0, 7] >= roundtrip.EXTRA_BM25_RATIO * lexical[0, 8]  # chunk 7 passes the score test alone
    assert extra_relevant(lexical, [8, 6], corpus) == [[6], [8]]


def test_extra_relevant_is_empty_for_a_question_that_matches_nothing() -> None:
    lexical = bm25_scores(["zyzzyva?"], CORPUS)
    assert extra_relevant(lexical, [0], CORPUS) == [[]]


def test_score_roundtrip_without_embeddings() -> None:
    corpus = CORPUS + [CORPUS[2]]  # chunk 6 duplicates chunk 2
    questions = ["What data may be collected under data privacy protections?", "Why do models confabulate?"]
    result = score_roundtrip(questions, [6, 4], corpus, use_embeddings=False)
    assert result.bm25_rank == [2, 1]  # the identical chunk 2 wins the tie
    assert result.extra_relevant == [[2], []]
    assert result.embed_rank is None and result.embedder is None


def test_score_roundtrip_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="outside the corpus"):
        score_roundtrip(["What?"], [9], CORPUS, use_embeddings=False)
    with pytest.raises(ValueError, match="1 questions but 2"):
        score_roundtrip(["What?"], [0, 1], CORPUS, use_embeddings=False)


def test_requiring_embeddings_without_the_eval_extra_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(roundtrip, "embeddings_available", lambda: False)
    with pytest.raises(ConfigError, match=r"synthqa\[eval\]"):
        score_roundtrip(["What does it mean that models confabulate?"], [4], CORPUS, use_embeddings=True)
    result = score_roundtrip(["What does it mean that models confabulate?"], [4], CORPUS)  # None: quietly without
    assert result.embed_rank is None and result.embedder is None


@pytest.mark.eval
@pytest.mark.skipif(not embeddings_available(), reason="needs synthqa[eval] (sentence-transformers, MiniLM)")
def test_embedding_ranks_find_paraphrased_questions() -> None:
    # paraphrases with little word overlap: the embedder still finds the right chunk
    questions = [
        "Must an AI tool be checked for safety prior to launch?",
        "Can language models make up facts that are untrue?",
        "Is there a way to reach a real person when the computer gets my case wrong?",
    ]
    result = score_roundtrip(questions, [0, 4, 5], CORPUS)
    assert result.embedder == roundtrip.EMBEDDER
    assert result.embed_rank == [1, 1, 1]
    # the same question written from the wrong chunk ranks that chunk lower
    assert roundtrip.embedding_ranks(questions[:1], [3], CORPUS)[0] > 1
    # ranking more questions later reuses the corpus vectors and gets the same answer
    again = score_roundtrip(questions[1:], [4, 5], CORPUS, corpus_vectors=result.corpus_vectors)
    assert again.embed_rank == result.embed_rank[1:] and again.extra_relevant == result.extra_relevant[1:]
    assert result.corpus_vectors.shape == (len(CORPUS), 384)


def test_shared_passage_check_agrees_with_difflib():
    import random
    from difflib import SequenceMatcher

    from synthqa.roundtrip import SharedPassages

    rng = random.Random(0)
    words = ["policy", "data", "risk", "system", "notice", "rights", "audit", "model", "privacy", "review"]
    base = " ".join(rng.choice(words) for _ in range(300))
    texts = []
    for k in range(40):  # chunks sharing passages of many lengths with their neighbours, like overlaps do
        start = rng.randrange(0, len(base) - 400)
        texts.append(base[start : start + rng.randrange(60, 400)] + " " + " ".join(rng.choice(words) for _ in range(30)))
    flat = SharedPassages(texts)
    for i in range(len(texts)):
        for j in range(len(texts)):
            a, b = flat.text(i), flat.text(j)
            longest = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b)).size
            for length in (60, 100, 150):
                assert flat.shares_passage(i, j, length) == (longest >= length), (i, j, length, longest)
