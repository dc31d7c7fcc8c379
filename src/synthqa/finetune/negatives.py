"""Hard negatives for the ranking loss: mined by the base model, never a chunk that answers the question too.

``mine_hard_negatives`` (sentence-transformers) ranks the train chunks for each question, encoding with the
model's own query and document prompts, and skips candidates scoring above ``positive × (1 − margin)``
(NV-Retriever's TopK-PercPos: 0.05 keeps a negative only below 95 % of the positive's score). It cannot
know which chunks answer a question as well as its own: overlap neighbours on the same page share up to
200 characters with it, PDFs repeat passages, and round-trip scoring recorded ``extra_relevant_ids``.
Those are false negatives by construction, so more candidates are asked for than needed and they are
refused here. A pair left with fewer than N negatives is not dropped: it gets random train chunks (also
never false negatives), so every pair trains and every row has the same columns.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import DatasetError
from ..roundtrip import EXTRA_MIN_SHARED_CHARS, SharedPassages

# Candidates asked for beyond N, to replace those refused as false negatives (a chunk has at most two
# overlap neighbours and three extra relevant chunks; repeats of boilerplate are rarer).
SLACK = 10
# How far down each question's ranking the miner looks. The margin removes the best-scoring candidates, so
# a window of only N + SLACK (the miner's ranks before the margin) left many questions with none at all.
WINDOW = 100


@dataclass(frozen=True)
class NegativeStats:
    """How a training set's negatives were found: from the model's ranking, or random where none was left."""

    per_pair: int
    pairs: int
    mined: int  # negatives taken from the model's ranking
    random: int  # negatives filled with a random train chunk
    pairs_with_random: int
    refused: int  # ranked candidates refused as sharing text with the positive (or recorded relevant)
    margin: float
    range_min: int

    def summary(self) -> str:
        """One line for the terminal and the model card."""
        skip = f", best {self.range_min} skipped" if self.range_min else ""
        line = (f"{self.per_pair} per pair for all {self.pairs} pairs: {self.mined} mined by the base model "
                f"(margin {self.margin:g}{skip})")
        if self.random:
            line += f", {self.random} random for the {self.pairs_with_random} pair(s) with too few candidates left"
        return line + f"; {self.refused} candidate(s) refused as sharing text with the positive"


class FalseNegatives:
    """Which train chunks must never be a question's negative: its own chunk, its recorded extra relevant
    chunks, its overlap neighbours (same source and page, next chunk index), and any chunk sharing a
    verbatim passage of ``EXTRA_MIN_SHARED_CHARS`` characters with its own."""

    def __init__(self, ids: Sequence[str], texts: Sequence[str], sources: Sequence[str], pages: Sequence[int],
                 chunk_indices: Sequence[int]) -> None:
        self.position = {cid: i for i, cid in enumerate(ids)}
        self.place = [(src, int(page), int(idx)) for src, page, idx in zip(sources, pages, chunk_indices, strict=True)]
        self.passages = SharedPassages(list(texts))

    @classmethod
    def of_corpus(cls, corpus) -> FalseNegatives:
        """From a corpus table (columns id, text, source, page, chunk_index)."""
        return cls(list(corpus["id"]), list(corpus["text"]), list(corpus["source"]), list(corpus["page"]),
                   list(corpus["chunk_index"]))

    def refuses(self, own: str, extras: Sequence[str], candidate: str) -> bool:
        if candidate == own or candidate in extras:
            return True
        i, j = self.position.get(own), self.position.get(candidate)
        if i is None or j is None:
            return False
        (src_i, page_i, idx_i), (src_j, page_j, idx_j) = self.place[i], self.place[j]
        if src_i == src_j and page_i == page_j and abs(idx_i - idx_j) == 1:
            return True
        return self.passages.shares_passage(i, j, EXTRA_MIN_SHARED_CHARS)


def add_hard_negatives(queries, corpus, model, n: int, margin: float, range_min: int, batch_size: int,
                       seed: int):
    """``(Dataset, NegativeStats)``: every train pair (sentence_0, sentence_1) with ``n`` negatives
    (negative_1..n), mined by ``model`` among the ``corpus`` chunks, false negatives refused, random fill."""
    from datasets import Dataset

    texts = dict(zip(corpus["id"], corpus["text"]))
    anchors = list(queries["text"])
    owns = list(queries["chunk_id"])
    extras = [list(e) if e is not None else [] for e in queries["extra_relevant_ids"]]
    ranked = _ranked_candidates(anchors, [texts[c] for c in owns], list(texts.values()), model, n, margin,
                                range_min, batch_size)
    ids_of = defaultdict(list)
    for cid, text in texts.items():
        ids_of[text].append(cid)
    false = FalseNegatives.of_corpus(corpus)
    rng = random.Random(seed)
    columns: dict[str, list[str]] = {"sentence_0": anchors, "sentence_1": [texts[c] for c in owns]}
    columns.update({f"negative_{k + 1}": [] for k in range(n)})
    mined = refused = filled = pairs_filled = 0
    for anchor, own, extra in zip(anchors, owns, extras, strict=True):
        chosen: list[str] = []
        for text in ranked.get(anchor, ()):
            if any(false.refuses(own, extra, cid) for cid in ids_of[text]):
                refused += 1
            elif text not in chosen:
                chosen.append(text)
            if len(chosen) == n:
                break
        mined += len(chosen)
        missing = n - len(chosen)
        if missing:
            pool = [t for cid, t in texts.items() if t not in chosen and not false.refuses(own, extra, cid)]
            if not pool and not chosen:
                raise DatasetError(f"--hard-negatives {n}: the question {anchor!r} has no train chunk that does not "
                                   "share text with its own; generate from more pages, or use --hard-negatives 0")
            # a train split too small for n distinct negatives repeats some (harmless to the loss)
            chosen += [rng.choice(pool or chosen) for _ in range(missing)] if len(pool) < missing else rng.sample(pool, missing)
            filled += missing
            pairs_filled += 1
        for k, text in enumerate(chosen):
            columns[f"negative_{k + 1}"].append(text)
    stats = NegativeStats(n, len(anchors), mined, filled, pairs_filled, refused, margin, range_min)
    return Dataset.from_dict(columns), stats


def _ranked_candidates(anchors, positives, corpus_texts, model, n, margin, range_min, batch_size) -> dict[str, list[str]]:
    """Each question's best-scoring chunks below the margin, best first, looking ``WINDOW`` ranks down:
    ``n + SLACK`` after skipping the ``range_min`` best of them. Questions with none are absent."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    others = len(set(corpus_texts)) - 1
    want = min(n + SLACK, others - range_min)
    if want < 1:
        return {}
    mined = mine_hard_negatives(
        Dataset.from_dict({"sentence_0": anchors, "sentence_1": positives}), model,
        anchor_column_name="sentence_0", positive_column_name="sentence_1", corpus=corpus_texts,
        range_min=range_min, range_max=max(min(range_min + WINDOW, others), range_min + want),
        num_negatives=want, relative_margin=margin,
        sampling_strategy="top", output_format="labeled-list", batch_size=batch_size, verbose=False,
    )
    # labeled-list: the positive first, then the candidates that passed, in score order
    return {row["sentence_0"]: list(row["sentence_1"][1:]) for row in mined}
