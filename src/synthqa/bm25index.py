"""BM25 for corpora larger than memory: bm25s's scores, built from a stream of texts into files, and the rank
of a question's own chunk found without scoring every chunk.

The scores are ``bm25s.BM25()``'s (method "lucene", k1 1.5, b 0.75), bit for bit: the same tokens
(``bm25s.tokenize``, English stopwords), the same float32 weight per (word, chunk), summed in float32 in the
question's word order. bm25s itself holds the tokenised corpus as Python lists and its index in memory (GBs
at a million chunks) and scores every chunk for every question (O(questions × chunks)); here

- the index is built in blocks: forward (chunk → words) files, then postings (word → chunks, weights)
  written in slices of ``SLICE_ENTRIES``, read back through memory maps opened per block of questions;
- a question is scored only on the chunks that hold one of its *essential* words. Every word has an upper
  bound (its largest weight in any chunk); the words whose bounds add up to less than the threshold that
  matters (``ratio`` × the own chunk's score) cannot lift a chunk to that threshold on their own, so a chunk
  without an essential word can neither outrank the own chunk nor be an extra relevant one (MaxScore).
  The common words of a question are rarely essential, so each question reads a few short postings lists;
- questions whose essential postings are short are scored a block at a time (``bm25blocks``: the same
  decisions in a few numpy calls per block); the others one by one in chunk ranges, stopping once the rank
  is known to be beyond ``stop``, and raising the threshold to the own chunk's score once more than
  ``stop[1]`` candidates are found (the list is then never used; only the rank still needs counting).

Ranks and candidate lists are exact: the same as scoring every chunk.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import bm25blocks
from ._compat import batched

K1, B = 1.5, 0.75
BLOCK_DOCS = 4096  # chunks tokenised at once
FORWARD_ENTRIES = 1_000_000  # (chunk, word) entries weighted at once: ~40 MB
SLICE_ENTRIES = 2_000_000  # (word, chunk) postings sorted in memory at once: ~60 MB
_ENTRY = np.dtype([("term", "<i4"), ("doc", "<i4"), ("weight", "<f4")])
RANGE_ENTRIES = 4096  # postings scored at once for one question, before checking whether it can stop
_SAFETY = 1 - 1e-5  # float32 sums of up to ~100 words stay below a bound this much under the threshold


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """bm25s's tokens: lowercase words of 2+ characters, English stopwords removed."""
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", return_ids=False, show_progress=False)


@dataclass(frozen=True)
class OwnRank:
    """One question against the corpus: its own chunk's rank, score, and the chunks scoring ≥ the threshold."""

    rank: int  # 1-based; ties go to the lower chunk index
    score: float
    candidates: np.ndarray  # chunk indices (ascending, own excluded) scoring ≥ ratio × own score
    scores: np.ndarray  # their scores


class DiskBM25:
    """A BM25 index in ``folder``: build it with ``build(texts)``, then ask ``own_ranks``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._vocab: dict[str, int] | None = {}  # None: in the index's file, read on first use (``vocab``)
        self.n_docs = 0
        self.indptr = np.zeros(1, dtype=np.int64)
        self.max_weight = np.zeros(0, dtype=np.float32)
        self.entry_start = np.zeros(1, dtype=np.int64)  # where each chunk's words start in the forward files

    @property
    def vocab(self) -> dict[str, int]:
        """Word → id. ``build`` writes it out and drops it before the postings, its largest step (the words are
        30 MB at a million chunks, and a parent whose workers rank never needs them); read back here."""
        if self._vocab is None:
            words = json.loads(self._path("vocab").read_text(encoding="utf-8"))
            self._vocab = {w: i for i, w in enumerate(words)}
        return self._vocab

    # ------------------------------------------------------------------ build
    def build(self, texts: Iterable[str], on_docs=None) -> DiskBM25:
        """Index ``texts`` (streamed once); ``on_docs(n)`` reports progress."""
        self.folder.mkdir(parents=True, exist_ok=True)
        doc_lens, counts, df = self._forward(texts, on_docs)
        self._path("vocab").write_text(json.dumps(list(self.vocab)), encoding="utf-8")
        self._vocab = None
        self.n_docs = len(doc_lens)
        self.indptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
        idf = np.array([math.log(1 + (self.n_docs - d + 0.5) / (d + 0.5)) for d in df.tolist()], dtype=np.float32)
        del df
        self._write_postings(doc_lens, counts, idf)
        np.savez(self.folder / "header.npz", indptr=self.indptr, max_weight=self.max_weight,
                 entry_start=self.entry_start)
        return self

    def _forward(self, texts: Iterable[str], on_docs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Write the forward files (chunk → word ids, counts); returns each chunk's token count and number of
        distinct words (int32: the postings step holds both for every chunk) and each word's number of chunks."""
        doc_lens: list[np.ndarray] = []  # per block: numpy arrays, not a Python int per chunk (72 MB at 1M)
        counts: list[np.ndarray] = []
        df = np.zeros(0, dtype=np.int64)
        with open(self._path("fwd_terms"), "wb") as terms_f, open(self._path("fwd_tf"), "wb") as tf_f:
            for block in batched(texts, BLOCK_DOCS):
                block_ids, tfs, lens, distinct = self._counted(block)
                doc_lens.append(lens)
                counts.append(distinct)
                block_ids.tofile(terms_f)
                tfs.tofile(tf_f)
                df = np.concatenate([df, np.zeros(len(self.vocab) - len(df), np.int64)])
                df += np.bincount(block_ids, minlength=len(df))
                if on_docs:
                    on_docs(len(block))
        return _joined(doc_lens, np.int32), _joined(counts, np.int32), df

    @classmethod
    def open(cls, folder: Path) -> DiskBM25:
        """The index ``build`` left in ``folder`` (a worker process maps the same files as the parent)."""
        index = cls(folder)
        index._vocab = None
        with np.load(index.folder / "header.npz") as header:
            index.indptr, index.max_weight = header["indptr"], header["max_weight"]
            index.entry_start = header["entry_start"]
        index.n_docs = len(index.entry_start) - 1
        return index

    def _counted(self, block: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A block of chunks as (word id, count) entries, chunk by chunk, with each chunk's token count and
        number of distinct words. bm25s numbers the block's words; they are mapped to the index's ids at once
        and counted with numpy (a Counter per chunk was most of the indexing time)."""
        import bm25s

        tokenized = bm25s.tokenize(list(block), stopwords="en", return_ids=True, show_progress=False)
        vocab = self.vocab
        to_index = np.array([vocab.setdefault(t, len(vocab)) for t in tokenized.vocab], dtype=np.int64)
        lens = np.array([len(ids) for ids in tokenized.ids], dtype=np.int64)
        flat = np.fromiter(itertools.chain.from_iterable(tokenized.ids), dtype=np.int64, count=int(lens.sum()))
        keys = np.repeat(np.arange(len(block), dtype=np.int64), lens) * len(vocab) + to_index[flat]
        entries, tf = np.unique(keys, return_counts=True)
        doc, term = np.divmod(entries, len(vocab))
        return term.astype(np.int32), tf.astype(np.float32), lens, np.bincount(doc, minlength=len(block))

    def _write_postings(self, doc_lens: np.ndarray, counts: np.ndarray, idf: np.ndarray) -> None:
        """Forward (chunk → word, tf) files → postings (word → chunk, weight), one slice of words at a time."""
        avgdl = doc_lens.mean() if len(doc_lens) else np.float64(1.0)  # np.float64, as bm25s has it
        entry_start = self.entry_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        n_entries = int(entry_start[-1])
        bounds = _slice_bounds(self.indptr, SLICE_ENTRIES)
        self.max_weight = np.zeros(len(idf), dtype=np.float32)
        with tempfile.TemporaryDirectory(dir=self.folder) as tmp:
            slices = [Path(tmp) / f"slice-{i}" for i in range(len(bounds) - 1)]
            with contextlib.ExitStack() as stack:
                outs = [stack.enter_context(open(path, "wb")) for path in slices]
                forward = stack.enter_context(open(self._path("fwd_weights"), "wb"))
                for start in range(0, n_entries, FORWARD_ENTRIES):
                    rows = self._weighted(start, min(start + FORWARD_ENTRIES, n_entries), entry_start, doc_lens,
                                          avgdl, idf)
                    rows["weight"].tofile(forward)  # chunk by chunk: a question's own chunk score is read here
                    rows = rows[np.argsort(rows["term"], kind="stable")]
                    cuts = np.searchsorted(rows["term"], bounds)  # rows are sorted by word, so by slice
                    for i, out in enumerate(outs):
                        rows[cuts[i]:cuts[i + 1]].tofile(out)
            with open(self._path("docs"), "wb") as docs_f, open(self._path("weights"), "wb") as weights_f:
                for path in slices:
                    rows = np.fromfile(path, dtype=_ENTRY)
                    order = np.argsort(rows["term"], kind="stable")  # by word; chunks stay ascending
                    # one column at a time: a slice holds a common word's every chunk beside its 2M entries
                    rows["doc"][order].tofile(docs_f)
                    weights = rows["weight"][order]
                    weights.tofile(weights_f)
                    terms = rows["term"][order]
                    del rows, order
                    if len(terms):
                        starts = np.flatnonzero(np.r_[True, terms[1:] != terms[:-1]])
                        self.max_weight[terms[starts]] = np.maximum.reduceat(weights, starts)
        self._path("fwd_tf").unlink()

    def _weighted(self, start: int, stop: int, entry_start: np.ndarray, doc_lens: np.ndarray, avgdl, idf):
        """Forward entries ``start:stop`` with their chunk and BM25 weight, in chunk order."""
        rows = np.empty(stop - start, dtype=_ENTRY)
        rows["term"] = np.fromfile(self._path("fwd_terms"), dtype=np.int32, count=stop - start, offset=4 * start)
        tf = np.fromfile(self._path("fwd_tf"), dtype=np.float32, count=stop - start, offset=4 * start)
        rows["doc"] = np.searchsorted(entry_start, np.arange(start, stop), side="right") - 1
        dl = doc_lens[rows["doc"]]
        # the very expression bm25s evaluates per chunk (float64 throughout, stored as float32)
        rows["weight"] = idf[rows["term"]] * (tf / (K1 * ((1 - B) + B * dl / avgdl) + tf))
        return rows

    def _path(self, name: str) -> Path:
        return self.folder / f"{name}.bin"

    # ------------------------------------------------------------------ query
    def own_ranks(self, questions: Sequence[str], own: Sequence[int], ratio: float,
                  stop: tuple[int, int] | None = None) -> Iterator[OwnRank]:
        """For each question: its own chunk's rank and score, and the other chunks scoring ≥ ratio × that score.

        With ``stop=(k, m)`` a question stops being scored once more than ``k`` chunks outrank its own and more
        than ``m`` reach the ratio: its rank is then reported as k + 1 and its candidates are a partial list.
        """
        postings = _Postings(self)
        try:
            vocab = self.vocab
            ids = [[vocab[t] for t in tokens if t in vocab] for tokens in tokenize(questions)]
            own = np.asarray(own, dtype=np.int64)
            scores = bm25blocks.own_scores(postings.forward_terms, postings.forward_weights, self.entry_start, ids,
                                           own)
            plans = [bm25blocks.plan(q, self.max_weight, self.indptr, _threshold(ratio, s))
                     for q, s in zip(ids, scores.tolist())]
            light = [i for i, p in enumerate(plans) if p.ids and p.entries <= bm25blocks.LIGHT_ENTRIES]
            done: dict[int, OwnRank] = {}
            for block in bm25blocks.blocks(light, plans):
                done.update(postings.block_ranks(block, plans, own, scores, ratio, stop))
            for i, p in enumerate(plans):
                yield done.pop(i) if i in done else postings.own_rank(p, int(own[i]), float(scores[i]), ratio, stop)
        finally:
            postings.close()


@dataclass(frozen=True)
class RankTask:
    """A block of questions to rank against the index in ``folder`` (``own_ranks``'s arguments)."""

    folder: str
    questions: list[str]
    own: list[int]
    ratio: float
    stop: tuple[int, int] | None


_opened: dict[str, DiskBM25] = {}  # a worker process's index, opened at its first task


def rank_block(task: RankTask) -> list[OwnRank]:
    """``own_ranks`` of one block of questions, in a worker process (``roundtrip.Scorer`` with workers)."""
    index = _opened.get(task.folder)
    if index is None:
        _opened.clear()
        index = _opened[task.folder] = DiskBM25.open(Path(task.folder))
    return list(index.own_ranks(task.questions, task.own, task.ratio, task.stop))


def _threshold(ratio: float, own_score: float) -> float:
    """The score a chunk must reach to matter for a question: ratio × its own chunk's score, a hair under."""
    return float(np.float32(ratio * own_score)) * _SAFETY if own_score > 0 else 0.0


class _Postings:
    """The postings files mapped for one block of questions (unmapped after it, so memory stays flat)."""

    def __init__(self, index: DiskBM25) -> None:
        self.index = index
        n = int(index.indptr[-1])
        # plain ndarray views of the maps: slicing a np.memmap costs a Python-level wrapper per slice
        self.docs = np.asarray(np.memmap(index._path("docs"), dtype=np.int32, mode="r")) if n else np.zeros(0, np.int32)
        self.weights = (np.asarray(np.memmap(index._path("weights"), dtype=np.float32, mode="r")) if n
                        else np.zeros(0, np.float32))
        self.forward_terms = (np.asarray(np.memmap(index._path("fwd_terms"), dtype=np.int32, mode="r")) if n
                              else np.zeros(0, np.int32))
        self.forward_weights = (np.asarray(np.memmap(index._path("fwd_weights"), dtype=np.float32, mode="r")) if n
                                else np.zeros(0, np.float32))

    def close(self) -> None:
        del self.docs, self.weights, self.forward_terms, self.forward_weights

    def weights_of(self, term: int, docs: np.ndarray) -> np.ndarray:
        """Weight of ``term`` in each of ``docs`` (ascending), 0 where it does not occur."""
        lo, hi = int(self.index.indptr[term]), int(self.index.indptr[term + 1])
        posting = self.docs[lo:hi]
        at = np.minimum(np.searchsorted(posting, docs), hi - lo - 1)
        return np.where(posting[at] == docs, self.weights[lo + at], np.float32(0))

    def block_ranks(self, block: list[int], plans: list[bm25blocks.Plan], own: np.ndarray, own_scores: np.ndarray,
                    ratio: float, stop: tuple[int, int] | None) -> dict[int, OwnRank]:
        """``own_rank`` for the questions ``block`` (indices into ``plans``, ``own``, ``own_scores``) at once,
        each scored in full (no early stop), its rank censored at the end as ``own_rank`` censors."""
        found = bm25blocks.score_block(self, [plans[i] for i in block])
        q, s, o = found.question, own_scores[block], own[block]
        better = (found.score > s[q]) | ((found.score == s[q]) & (found.doc < o[q]))
        n_better = np.bincount(q, weights=better, minlength=len(block)).astype(np.int64)
        n_before = np.bincount(q, weights=found.doc < o[q], minlength=len(block)).astype(np.int64)
        # compared in float32 (ratio × score rounded to float32), as _own_rank's array-against-float compares
        threshold = (ratio * s.astype(np.float64)).astype(np.float32)
        candidate = (found.score >= threshold[q]) & (found.doc != o[q])
        bounds = np.searchsorted(q, np.arange(len(block) + 1))
        out = {}
        for k, i in enumerate(block):
            if s[k] > 0:
                rank = 1 + int(n_better[k])
                keep = np.flatnonzero(candidate[bounds[k]:bounds[k + 1]]) + bounds[k]
                docs, scores = found.doc[keep], found.score[keep]
            else:  # chunks holding none of the words score 0 too: those before the own one rank higher
                rank = 1 + int(n_better[k]) + int(o[k]) - int(n_before[k])
                docs, scores = np.zeros(0, dtype=np.int64), np.zeros(0, np.float32)
            if stop and rank > stop[0]:
                rank = stop[0] + 1
            out[i] = OwnRank(rank, float(s[k]), docs.astype(np.int64), scores)
        return out

    def own_rank(self, plan: bm25blocks.Plan, own: int, own_score: float, ratio: float,
                 stop: tuple[int, int] | None) -> OwnRank:
        """One question's rank, scored chunk range by chunk range; ``own_score`` and ``plan.threshold`` as
        ``own_ranks`` computed them for every question at once."""
        rank, score, docs, scores = self._own_rank(plan, own, own_score, ratio, stop)
        if stop and rank > stop[0]:
            rank = stop[0] + 1
        return OwnRank(rank, score, docs, scores)

    def _own_rank(self, plan: bm25blocks.Plan, own: int, own_score: float, ratio: float,
                  stop: tuple[int, int] | None):
        none = (np.zeros(0, dtype=np.int64), np.zeros(0, np.float32))
        if not plan.ids:  # every chunk scores 0: ties go to the lower index
            return own + 1, 0.0, *none
        query = _Query(self.index, plan.ids, plan.threshold)
        better = before = 0  # chunks ranking above the own one; (own score 0) scoring chunks before it
        collecting = True  # candidates at ``ratio`` are gathered until there are more than ``stop[1]``
        found: list[np.ndarray] = []
        found_scores: list[np.ndarray] = []
        for lo, hi in _ranges(query.essential_entries, self.index.n_docs):
            docs, scores = self._range(query, lo, hi)
            better += int(np.count_nonzero((scores > own_score) | ((scores == own_score) & (docs < own))))
            if own_score > 0 and collecting:
                keep = (scores >= ratio * own_score) & (docs != own)  # compared in float32, as a dense row is
                found.append(docs[keep])
                found_scores.append(scores[keep])
                if stop and sum(map(len, found)) > stop[1]:
                    # too many candidates to be used: only the chunks outranking the own one still count, and
                    # the higher threshold leaves fewer essential words and prunes more chunks
                    collecting = False
                    query = _Query(self.index, plan.ids, _threshold(1.0, own_score))
            elif own_score <= 0:
                before += int(np.count_nonzero(docs < own))
            if stop and better >= stop[0] and (own_score <= 0 or sum(map(len, found)) > stop[1]):
                break  # the rank is censored and the candidates are too many to be used: no need to go on
        else:
            if own_score <= 0:  # chunks holding none of the words score 0 too: those before the own one rank higher
                return 1 + better + own - before, 0.0, *none
        if own_score <= 0:
            return 1 + better, 0.0, *none
        return 1 + better, own_score, _joined(found, np.int64), _joined(found_scores, np.float32)

    def _range(self, query: _Query, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """The chunks in ``lo:hi`` that can reach the query's threshold, with their exact scores.

        Weights of the essential words come from their postings; chunks whose weights plus the bound of the
        remaining words stay under the threshold are dropped, and the remaining words are looked up (largest
        bound first) for the chunks still in the running.
        """
        indptr = self.index.indptr
        docs, weights, cols = [], [], []
        for col in query.essential:
            start, stop = int(indptr[query.terms[col]]), int(indptr[query.terms[col] + 1])
            posting = self.docs[start:stop]
            a, b = (0, stop - start) if hi - lo == self.index.n_docs else (np.searchsorted(posting, lo),
                                                                           np.searchsorted(posting, hi))
            docs.append(posting[a:b])
            weights.append(self.weights[start + a:start + b])
            cols.append(np.full(b - a, col, dtype=np.int64))
        if not docs or not sum(map(len, docs)):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        candidates, table, reach = self._essential_table(query, docs, weights, cols)
        rest = query.rest
        for col in query.others:  # largest bound first: the threshold bites soonest
            table[:, col] = self.weights_of(int(query.terms[col]), candidates)
            reach += table[:, col] * query.times[col]
            rest -= query.bounds[col]
            keep = reach >= query.threshold - rest
            candidates, table, reach = candidates[keep], table[keep], reach[keep]
        scores = np.zeros(len(candidates), dtype=np.float32)
        for col in query.columns:  # float32, in the question's word order, as bm25s sums
            scores += table[:, col]
        return candidates.astype(np.int64), scores

    @staticmethod
    def _essential_table(query: _Query, docs: list[np.ndarray], weights: list[np.ndarray], cols: list[np.ndarray]):
        """The chunks holding an essential word whose weights plus the other words' bound can reach the
        threshold: (chunks ascending, their essential words' weights as a table, that sum in float64).

        Each word's postings are sorted, so a stable sort of them all is a merge of sorted runs (timsort);
        the bound prunes before the table is made (most chunks hold one essential word and fall)."""
        all_docs, all_cols, all_weights = np.concatenate(docs), np.concatenate(cols), np.concatenate(weights)
        if len(docs) > 1:  # one word's postings are already distinct and in order
            order = np.argsort(all_docs, kind="stable")
            all_docs, all_cols, all_weights = all_docs[order], all_cols[order], all_weights[order]
        new_doc = np.r_[True, all_docs[1:] != all_docs[:-1]]
        first = np.flatnonzero(new_doc)
        reach = np.add.reduceat(all_weights.astype(np.float64) * query.times[all_cols], first)
        keep = reach >= query.threshold - query.rest
        group = np.cumsum(new_doc) - 1  # each posting's chunk
        row = np.cumsum(keep) - 1
        held = keep[group]
        table = np.zeros((int(keep.sum()), len(query.terms)), dtype=np.float32)
        table[row[group[held]], all_cols[held]] = all_weights[held]
        return all_docs[first[keep]], table, reach[keep]


class _Query:
    """A question's words, their bounds, and which of them are essential for a threshold."""

    def __init__(self, index: DiskBM25, ids: list[int], threshold: float) -> None:
        self.terms, self.columns, counts = np.unique(ids, return_inverse=True, return_counts=True)
        self.times = counts.astype(np.float64)
        self.bounds = index.max_weight[self.terms].astype(np.float64) * self.times
        self.threshold = threshold
        # the words whose bounds add up to less than the threshold cannot lift a chunk to it on their own
        order = np.argsort(self.bounds, kind="stable")
        cut = int(np.searchsorted(np.cumsum(self.bounds[order]), threshold, side="left")) if threshold > 0 else 0
        self.essential = order[cut:].tolist()
        self.others = order[:cut][::-1].tolist()
        self.rest = float(self.bounds[order[:cut]].sum())
        sizes = index.indptr[self.terms + 1] - index.indptr[self.terms]
        self.essential_entries = int(sizes[order[cut:]].sum())


def _joined(arrays: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype=dtype)


def _ranges(entries: int, n_docs: int) -> list[tuple[int, int]]:
    """Chunk-index ranges holding about ``RANGE_ENTRIES``, then twice as many postings each time: scoring a vague
    question part by part lets it stop once its rank is known to be censored, and the doubling keeps the
    parts of a question whose words are common to a few (equal parts grew with the corpus, and the numpy calls
    of each part with them)."""
    if entries <= RANGE_ENTRIES:
        return [(0, n_docs)]
    cuts, covered, size = [0], 0, RANGE_ENTRIES
    while covered + size < entries:
        covered += size
        cuts.append(round(n_docs * covered / entries))
        size *= 2
    cuts.append(n_docs)
    return list(zip(cuts[:-1], cuts[1:]))


def _slice_bounds(indptr: np.ndarray, size: int) -> np.ndarray:
    """Word indices where postings slices start, each slice holding about ``size`` entries (≥ one word)."""
    bounds = [0]
    n_terms = len(indptr) - 1
    while bounds[-1] < n_terms:
        target = indptr[bounds[-1]] + size
        nxt = int(np.searchsorted(indptr, target, side="right")) - 1
        bounds.append(min(max(nxt, bounds[-1] + 1), n_terms))
    return np.array(bounds, dtype=np.int64)
