"""What the searched corpus does to retrieval scores: ``synthqa evaluate --corpus split`` against ``all``.

``split`` searches the eval split's own chunks that were asked about (synthqa 0.1.0's setting); ``all``
searches every chunk of the dataset, the chunks the chunk filters skipped included (reference lists, tables
of contents, lists of names …), as a deployed retriever would. Both with the bundled MiniLM and BM25, on the
same eval questions; the evaluation itself is `synthqa.evaluate.evaluate`, as the CLI runs it. A third row,
every chunk that was asked about (both splits, none skipped), is what ``--corpus all`` searched before the
corpus kept the skipped chunks: it separates what the other split's chunks cost from what the skipped ones do.

    python bench/bench_corpus.py OUT                # a schema-4 dataset folder (e.g. the README's main job)
    python bench/bench_corpus.py OUT --split train  # the train questions instead

Numbers from a dataset made with the tests' fake server are meaningless (its questions are word salad).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from synthqa import evaluate as ev
from synthqa.dataset import load_tables
from synthqa.models import load_model
from synthqa.retrieval import ir_evaluator_inputs

METRICS = ("ndcg@10", "mrr@10", "recall@1", "recall@10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--split", default="eval", choices=("eval", "train"))
    args = parser.parse_args()

    corpus = load_tables(args.dataset)["corpus"]
    chunks = sum(len(df) for df in corpus.values())
    skipped = sum(int((df["skip_reason"] != "").sum()) for df in corpus.values())
    print(f"{args.dataset}: {chunks} chunks, {skipped} of them skipped by the chunk filters (never asked about)")
    model = load_model(None)
    reports = {}
    for searched in ("split", "all"):
        started = time.perf_counter()
        reports[searched] = ev.evaluate(args.dataset, model=model, split=args.split, corpus=searched, label="MiniLM")
        print(f"--corpus {searched}: {time.perf_counter() - started:.1f} s")
    reports["all asked (before)"] = asked_only(args.dataset, args.split, model, corpus)
    print()
    print("| --corpus | queries | chunks searched | model | " + " | ".join(METRICS) + " |")
    print("| --- | ---: | ---: | --- | " + " | ".join("---:" for _ in METRICS) + " |")
    for searched, report in reports.items():
        for row, values in report.rows.items():
            cells = " | ".join(f"{values[m]:.4f}" for m in METRICS)
            print(f"| {searched} | {report.queries} | {report.corpus} | {row} | {cells} |")


def asked_only(dataset: Path, split: str, model, corpus) -> ev.EvalReport:
    """``--corpus all`` without the skipped chunks, computed with evaluate's own functions."""
    queries, every, relevant_docs = ir_evaluator_inputs(dataset, split, "all")
    skipped = {cid for df in corpus.values() for cid in df.loc[df["skip_reason"] != "", "id"]}
    ids = [cid for cid in every if cid not in skipped]
    qids = [q for q in queries if relevant_docs[q]]
    texts, relevant = [queries[q] for q in qids], [relevant_docs[q] for q in qids]
    q_emb, c_emb = ev.embed(model, texts, [every[c] for c in ids])
    rows = ev.embedding_rows(model, "MiniLM", q_emb, c_emb, ids, relevant)
    rows[ev.BM25_ROW] = ev.ranking_metrics(ev.rank_by_scores(ev.bm25_scores(texts, [every[c] for c in ids]), ids),
                                           relevant)
    return ev.EvalReport(str(dataset), split, "MiniLM", len(qids), len(ids), rows, "all")


if __name__ == "__main__":
    main()
