"""The fine-tuned model's card says where the model came from.

sentence-transformers writes the model card (README.md) on save: architecture, loss, hyperparameters,
training logs. This module adds a "Training data" section before its "Model Details": the synthqa dataset
(linked when it is on the Hub) and the LLM that wrote its questions, the base model, the prompts used, the
hard negatives, and the before/after table, so a model pushed to the Hub documents its own recipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..dataset import read_manifest
from ..evaluate import BM25_ROW, METRICS, EvalReport

ANCHOR = "## Model Details"
SECTION_TITLE = "## Training data (synthqa)"


@dataclass(frozen=True)
class DatasetSource:
    """The synthqa dataset a model was trained on, as its card names it."""

    name: str  # the Hub id when the dataset is on the Hub, else the folder's name
    hub_id: str | None
    generator: str  # the LLM that wrote the questions
    documents: int
    train_pairs: int
    eval_pairs: int

    @property
    def link(self) -> str:
        return f"[{self.name}](https://huggingface.co/datasets/{self.hub_id})" if self.hub_id else f"`{self.name}`"


def dataset_source(given: str, folder: Path) -> DatasetSource:
    """Name the dataset by its Hub id when it has one: the id it was fetched by, or the repo the local
    folder was last pushed to (``repo_id`` in its manifest); else by the folder's name."""
    manifest = read_manifest(folder)
    hub_id = manifest.repo_id if Path(given).exists() else given
    c = manifest.counts
    return DatasetSource(hub_id or Path(given).resolve().name, hub_id, manifest.model, c.documents, c.train_pairs,
                         c.eval_pairs)


def comparison_table(before: EvalReport, after: EvalReport, dims: tuple[int, ...]) -> str:
    """Markdown: every metric at full width for base and fine-tuned, then nDCG@10 at each Matryoshka width
    and BM25's for scale."""
    base, tuned = before.rows, after.rows
    rule = f"|{'-' * 14}|{'-' * 9}:|{'-' * 10}:|{'-' * 9}:|"
    lines = [f"| {'metric':<12} | {'base':>8} | {'finetuned':>9} | {'change':>8} |", rule]
    for m in METRICS:
        b, t = base["base"][m], tuned["finetuned"][m]
        lines.append(f"| {m:<12} | {b:>8.4f} | {t:>9.4f} | {t - b:>+8.4f} |")
    lines += ["", f"| {'ndcg@10 at':<12} | {'base':>8} | {'finetuned':>9} | {'change':>8} |", rule]
    for i, dim in enumerate(dims):
        b = base["base" if i == 0 else f"base@{dim}"]["ndcg@10"]
        t = tuned["finetuned" if i == 0 else f"finetuned@{dim}"]["ndcg@10"]
        lines.append(f"| {f'dim {dim}':<12} | {b:>8.4f} | {t:>9.4f} | {t - b:>+8.4f} |")
    if BM25_ROW in base:
        lines.append(f"| {'bm25':<12} | {base[BM25_ROW]['ndcg@10']:>8.4f} | {'':>9} | {'':>8} |")
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _prompts(query: str, document: str) -> str:
    if not (query or document):
        return "none"
    shown = ", ".join(f"{kind} `{text!r}`" if text else f"{kind} none"
                      for kind, text in (("query", query), ("document", document)))
    return f"{shown}: used in training and evaluation, and saved with the model (`encode_query` / `encode_document` apply them)"


def recipe_section(result, source: DatasetSource) -> str:
    """The card section for a ``FinetuneResult``."""
    r = result
    negatives = r.negatives.summary() if r.negatives else "none (in-batch negatives only)"
    intro = (f"Fine-tuned from **{r.base_model}** with synthqa on the synthetic retrieval dataset {source.link}: "
             f"questions written by `{source.generator}` about chunks of {_count(source.documents, 'document')}, "
             f"{source.train_pairs} train and {source.eval_pairs} eval (question, chunk) pairs, split by page so "
             "no page is on both sides.")
    loss = (f"MatryoshkaLoss(MultipleNegativesRankingLoss), dims {', '.join(map(str, r.matryoshka_dims))}; batches "
            "never hold two questions of one chunk (`no_duplicates`)")
    scope = (f"Retrieval on the dataset's eval split ({r.after.queries} questions searching {r.after.scope}), "
             "before and after fine-tuning, with the same prompts:")
    return "\n".join([
        SECTION_TITLE,
        "",
        intro,
        "",
        f"- **Prompts:** {_prompts(r.query_prompt, r.document_prompt)}",
        f"- **Loss:** {loss}",
        f"- **Hard negatives:** {negatives}",
        f"- **Training:** {_count(r.steps, 'step')}, {_count(r.train_rows, 'row')}, final loss {r.training_loss:.4f}",
        "",
        scope,
        "",
        comparison_table(r.before, r.after, r.matryoshka_dims),
        "",
    ])


def add_recipe(card_path: Path, section: str) -> None:
    """Insert ``section`` before the card's "Model Details" (at the end if it has none)."""
    text = card_path.read_text(encoding="utf-8")
    at = text.find(ANCHOR)
    text = text[:at] + section + "\n" + text[at:] if at >= 0 else text.rstrip("\n") + "\n\n" + section
    card_path.write_text(text, encoding="utf-8")
