"""The dataset card (OUT/README.md): Hub metadata that makes the three configs loadable, plus provenance.

Rendered with huggingface_hub's own ``DatasetCard.from_template`` so the YAML front matter is written by
the library the Hub reads it with. Every manifest key except ``counts`` is optional: cards of older runs
must still render.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import urlparse

from huggingface_hub import DatasetCard, DatasetCardData

from . import __version__
from .dataset import data_files

TEMPLATE = "card_template.md"
# Stands for the dataset's name in the code snippets until `synthqa push` knows the Hub id.
DATASET_REF_PLACEHOLDER = "path/to/this/folder-or-hub-id"

# The source PDFs are the user's (often public-domain government text, but not always) and the questions
# come from an LLM whose terms vary by provider, so synthqa cannot know the licence: "other" plus a note
# that tells the owner to set it is honest, where guessing cc-by-4.0 could be wrong.
DEFAULT_LICENSE = "other"
LICENSE_NOTE_DEFAULT = (
    "**Set the licence before sharing.** synthqa wrote `license: other` because it cannot know it: the chunk "
    "text is copied from the source documents (US-government works are usually public domain, other documents "
    "may be copyrighted), and the questions were written by `{model}`, whose provider's terms govern the use "
    "of its outputs. Edit `license:` in this card's YAML header (e.g. `cc-by-4.0`, `cc0-1.0`) once you know."
)
LICENSE_NOTE_SET = "Licence: `{license}`, as set by the dataset's owner. The questions were written by `{model}`."

_SIZE_BOUNDS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                (10_000_000, "1M<n<10M"))
MAX_LISTED_DOCUMENTS = 50  # a card listing thousands of files is unreadable; the manifest keeps them all


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` examples."""
    for bound, label in _SIZE_BOUNDS:
        if n < bound:
            return label
    return "10M<n<100M"


def configs_metadata(manifest: dict | None = None) -> list[dict]:
    """The ``configs:`` YAML entries mapping each config's splits to the parquet files of the layout."""
    return [
        {
            "config_name": name,
            **({"default": True} if name == "default" else {}),
            "data_files": [{"split": split, "path": path} for split, path in files.items()],
        }
        for name, files in data_files(manifest).items()
    ]


def card_data(manifest: dict, *, license: str | None = None, pretty_name: str | None = None) -> DatasetCardData:
    """The YAML metadata of the card."""
    counts = manifest.get("counts") or {}
    pairs = int(counts.get("train_pairs") or 0) + int(counts.get("eval_pairs") or 0)
    return DatasetCardData(
        language="en",
        license=license or manifest.get("license") or DEFAULT_LICENSE,
        pretty_name=pretty_name or _pretty_name(manifest),
        size_categories=size_category(pairs),
        task_categories=["sentence-similarity", "feature-extraction"],
        annotations_creators="machine-generated",
        language_creators="found",
        multilinguality="monolingual",
        source_datasets="original",
        tags=["synthetic", "rag", "retrieval", "sentence-transformers", "embeddings", "question-answering",
              "synthqa"],
        configs=configs_metadata(manifest),
    )


def render_card(manifest: dict, *, repo_id: str | None = None, tables: dict | None = None,
                license: str | None = None, pretty_name: str | None = None) -> str:
    """The full README.md text for a run's manifest.

    ``repo_id`` goes into the code snippets (a placeholder otherwise); ``tables`` (``dataset.load_tables``
    shape) adds average lengths when the manifest lacks ``counts.avg_question_chars``/``avg_chunk_chars``.
    """
    data = card_data(manifest, license=license, pretty_name=pretty_name)
    model = manifest.get("model") or "an unrecorded model"
    documents = list(manifest.get("documents") or [])
    prompt = {"name": "(unrecorded)", "system": "", "user": "", "sha256": "(unrecorded)"}
    prompt.update({k: v for k, v in (manifest.get("prompt") or {}).items() if v is not None})
    options = {"chunk_size": "?", "chunk_overlap": "?", "questions_per_chunk": "?", "temperature": "?",
               "seed": "?"}
    options.update({k: v for k, v in (manifest.get("options") or {}).items() if v is not None})
    note = LICENSE_NOTE_DEFAULT if data.license == DEFAULT_LICENSE else LICENSE_NOTE_SET
    card = DatasetCard.from_template(
        data,
        template_path=str(resources.files("synthqa") / TEMPLATE),
        synthqa_version=manifest.get("synthqa_version") or __version__,
        created_at=manifest.get("created_at"),
        dataset_ref=repo_id or DATASET_REF_PLACEHOLDER,
        eval_name=_slug(repo_id or data.pretty_name),
        license_note=note.format(model=model, license=data.license),
        stats=_stats(manifest, tables),
        documents=documents[:MAX_LISTED_DOCUMENTS],
        more_documents=max(0, len(documents) - MAX_LISTED_DOCUMENTS),
        skipped_files=manifest.get("skipped_files") or [],
        options=options,
        model=model,
        endpoint_text=_endpoint_text(manifest),
        skipped_chunks_text=_counts_text(manifest.get("skipped_chunks"), "none"),
        question_filters_text=_counts_text(manifest.get("question_filters"), "none dropped"),
        failed_text=_failed_text(manifest.get("failed_chunks")),
        split_text=_split_text(manifest),
        prompt=prompt,
        prompt_system_block=fenced(prompt["system"] or "(not recorded)"),
        prompt_user_block=fenced(prompt["user"] or "(not recorded)"),
        has_extras=_has_extras(tables),
    )
    return str(card)


def fenced(text: str) -> str:
    """``text`` in a Markdown code fence longer than any backtick run inside it, so it cannot break out."""
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def _pretty_name(manifest: dict) -> str:
    docs = manifest.get("documents") or []
    if len(docs) == 1:
        return f"Synthetic retrieval pairs: {docs[0].get('source', 'one document')}"
    return f"Synthetic retrieval pairs from {len(docs)} policy documents" if docs else "Synthetic retrieval pairs"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:60] or "synthqa"


def _stats(manifest: dict, tables: dict | None) -> dict:
    counts = dict(manifest.get("counts") or {})
    out = {k: counts.get(k, "?") for k in ("train_pairs", "eval_pairs", "train_chunks", "eval_chunks", "chunks",
                                             "chunks_asked", "pages")}
    out["documents"] = counts.get("documents", len(manifest.get("documents") or []) or "?")
    out["pairs"] = _sum(counts.get("train_pairs"), counts.get("eval_pairs"))
    out["chunks_with_questions"] = _sum(counts.get("train_chunks"), counts.get("eval_chunks"))
    for key in ("short_chunks", "requests", "prompt_tokens", "completion_tokens"):
        out[key] = counts.get(key) or 0
    out["avg_question_chars"] = counts.get("avg_question_chars")
    out["avg_chunk_chars"] = counts.get("avg_chunk_chars")
    if out["avg_question_chars"] is None and tables and "pairs" in tables:
        frames = [df for df in tables["pairs"].values() if len(df)]
        if frames:
            n = sum(len(df) for df in frames)
            out["avg_question_chars"] = round(sum(df["sentence_0"].str.len().sum() for df in frames) / n)
            out["avg_chunk_chars"] = round(sum(df["sentence_1"].str.len().sum() for df in frames) / n)
    return out


def _sum(a, b):
    return a + b if isinstance(a, int) and isinstance(b, int) else "?"


def _endpoint_text(manifest: dict) -> str:
    if manifest.get("local"):
        return "synthqa's embedded llama.cpp server (offline)"
    host = manifest.get("endpoint_host")
    if host and "//" in host:  # tolerate a full URL from older runs; never record paths or credentials
        host = urlparse(host).hostname
    return f"the OpenAI-compatible endpoint at `{host}`" if host else "an OpenAI-compatible endpoint"


def _counts_text(counts: dict | None, empty: str) -> str:
    counts = {k: v for k, v in (counts or {}).items() if v}
    if not counts:
        return empty + "."
    parts = [f"{reason} {n}" for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return f"{sum(counts.values())} in all — " + ", ".join(parts) + "."


def _failed_text(failed: list | None) -> str:
    if not failed:
        return "none."
    shown = [f"`{f.get('source', '?')}` p.{f.get('page', '?')}: {f.get('reason', '?')}" for f in failed[:10]]
    more = f"; … and {len(failed) - 10} more (see `synthqa.json`)" if len(failed) > 10 else ""
    return f"{len(failed)} — " + "; ".join(shown) + more + ". Their pages have no questions in this dataset."


def _split_text(manifest: dict) -> str:
    split = manifest.get("split") or {}
    opts = manifest.get("options") or {}
    method = split.get("method", "by chunk")
    fraction = split.get("eval_fraction", opts.get("eval_fraction"))
    seed = split.get("seed", opts.get("seed"))
    frac = f"{fraction:.0%} of chunks" if isinstance(fraction, float | int) else "a fraction of chunks"
    return f"{frac} go to eval, method `{method}`, seed {seed if seed is not None else '?'}."


def _has_extras(tables: dict | None) -> bool:
    if not tables or "queries" not in tables:
        return False
    for df in tables["queries"].values():
        if "extra_relevant_ids" in df and df["extra_relevant_ids"].map(lambda v: v is not None and len(v) > 0).any():
            return True
    return False
