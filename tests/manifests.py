"""Hand-made manifests and output folders for the renderers' tests (card, inspect, report, hub)."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from synthqa.card import render_card
from synthqa.config import GenerateConfig
from synthqa.dataset import write_dataset, write_manifest
from synthqa.manifest import (
    Counts,
    Document,
    FailedChunk,
    LanguageCount,
    Manifest,
    PromptInfo,
    RoundTrip,
    SkippedFile,
    SkippedPage,
    SplitInfo,
    Timings,
)
from synthqa.text import Cleaning

SYSTEM = "You write questions a reader of US policy would ask. Never use ``` fences."
USER = "Write {n} questions about this passage:\n{chunk}"


def make_manifest(**overrides) -> Manifest:
    """A complete manifest of a small run (4 chunks asked, 8 questions), fields replaced by ``overrides``."""
    options = replace(
        GenerateConfig(inputs=("budget",), out="out", temperature=0.3, seed=7, eval_fraction=0.25,
                       model="gpt-4o-mini").public_options(),
        **overrides.pop("options", {}),
    )
    counts = Counts(
        documents=2, pages=3, chunks=6, chunks_asked=4, questions=8, questions_generated=10, train_pairs=6,
        eval_pairs=2, train_chunks=3, eval_chunks=1, short_chunks=1, questions_with_extra_relevant=1, ungrounded_answers=0,
        avg_question_chars=38.5, avg_chunk_chars=61.0, requests=5, requests_this_run=5, prompt_tokens=4000,
        completion_tokens=300,
    )
    manifest = Manifest(
        synthqa_version="0.1.0",
        created_at="2025-01-02T03:04:05Z",
        options=options,
        model="gpt-4o-mini",
        endpoint_host="api.openai.com",
        local=False,
        prompt=PromptInfo("default", SYSTEM, USER, hashlib.sha256((SYSTEM + USER).encode()).hexdigest()),
        counts=replace(counts, **overrides.pop("counts", {})),
        documents=(Document("budget/fy24.pdf", 2, Cleaning(12, 3, 1, 2, 2), 0, 0.0, chunks_asked=2, chunks_skipped=1,
                            questions=4, questions_capped=0),
                   Document("omb-memo.pdf", 1, Cleaning(0, 0, 0, 0, 0), 1, 2.5, chunks_asked=2, chunks_skipped=1,
                            questions=4, questions_capped=0)),
        skipped_files=(SkippedFile("scan.pdf", "no extractable text (scanned image?)"),),
        skipped_pages=(SkippedPage("omb-memo.pdf", 2, "its text could not be extracted (bad stream)"),),
        skipped_chunks={"reference list": 1, "too short": 1},
        question_filters={"duplicate": 2},
        failed_chunks=(FailedChunk("ffffffffffffffff", "omb-memo.pdf", 1, "unparseable answer after 3 attempts",
                                   False),),
        roundtrip=RoundTrip(bm25=True, embedder=None, min_rank=None, top_k=100),
        split=SplitInfo(method="chunk", seed=7, eval_fraction=0.25),
        languages={"en": LanguageCount(chunks=4, questions=8)},
        language_check=True,
        data_files={name: {split: f"data/{folder}/{split}.parquet" for split in ("train", "eval")}
                    for name, folder in (("default", "pairs"), ("queries", "queries"), ("corpus", "corpus"))},
        timings=Timings(count=0.0, read=0.1, ask=2.0, filter=0.0, near_duplicates=0.0, roundtrip=0.1, split=0.0,
                        write=0.1),
    )
    return replace(manifest, **overrides)


CHUNKS = [
    ("a" * 16, "budget/fy24.pdf", 1, 0, "train", "The agency budget for fiscal year 2024 is 4 billion dollars."),
    ("b" * 16, "budget/fy24.pdf", 2, 0, "train", "Travel expenses require prior written approval by a director."),
    ("c" * 16, "omb-memo.pdf", 1, 0, "train", "Federal agencies must publish open data inventories yearly."),
    ("d" * 16, "omb-memo.pdf", 1, 1, "eval", "Zero trust architecture adoption is due by the end of 2026."),
]
# Chunks the chunk filters skipped: in the corpus, never asked about (skip reason last).
SKIPPED = [
    ("e" * 16, "budget/fy24.pdf", 2, 1, "train", "[1] Budget Act of 1974. [2] OMB Circular A-11.", "reference list"),
    ("f" * 16, "omb-memo.pdf", 1, 2, "eval", "Page 3", "too short"),
]
QUESTIONS = {
    "a" * 16: ["What is the agency budget for FY2024?", "How many dollars does the agency get in 2024?"],
    "b" * 16: ["Who approves travel expenses?", "Do travel expenses need approval?"],
    "c" * 16: ["How often must agencies publish data inventories?", "What must agencies publish yearly?"],
    "d" * 16: ["When is zero trust adoption due?", "Which architecture must be adopted by 2026?"],
}


def answer_of(question: str) -> str:
    """The reference answer a contract folder written with ``answers=True`` holds for ``question``."""
    return f"The answer to '{question}' is in the chunk."


def write_contract_folder(out, manifest: Manifest | None = None, *, extra: bool = True,
                          answers: bool = False) -> Manifest:
    """A real output folder through the writer the pipeline uses: 4 chunks, 8 questions, card rendered."""
    manifest = manifest or make_manifest()
    if not extra:
        manifest = replace(manifest, counts=replace(manifest.counts, questions_with_extra_relevant=0))
    corpus = [{"id": cid, "text": text, "source": src, "page": page, "chunk_index": idx,
               "ocr": src == "omb-memo.pdf", "language": "en", "split": split, "skip_reason": reason}
              for cid, src, page, idx, split, text, reason in [(*c, "") for c in CHUNKS] + SKIPPED]
    queries = []
    for cid, src, page, _idx, split, _text in CHUNKS:
        for n, q in enumerate(QUESTIONS[cid]):
            queries.append({"id": f"q-{cid}-{n}", "text": q, "chunk_id": cid, "source": src, "page": page,
                            "bm25_rank": n + 1, "embed_rank": None if n else 1,
                            "extra_relevant_ids": ["c" * 16] if extra and cid == "d" * 16 and n == 1 else [],
                            "answer": answer_of(q) if answers else None, "split": split})
    (out / ".synthqa").mkdir(parents=True, exist_ok=True)
    (out / ".synthqa" / "cache.sqlite").write_bytes(b"not uploaded")
    files = write_dataset(out, corpus=corpus, queries=queries,
                          render_card=lambda files: render_card(replace(manifest, data_files=files)))
    manifest = replace(manifest, data_files=files)
    write_manifest(out, manifest)
    return manifest
