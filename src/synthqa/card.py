"""The dataset card (OUT/README.md): Hub metadata that makes the three configs loadable, plus provenance.

Rendered with huggingface_hub's own ``DatasetCard.from_template`` so the YAML front matter is written by
the library the Hub reads it with; the template (``card_template.md``) sits beside this module.
"""

from __future__ import annotations

from importlib import resources

from huggingface_hub import DatasetCard, DatasetCardData

from . import coverage, spares, styles
from .curate import describe as describe_curation
from .language import UNDETERMINED
from .language import label as language_label
from .manifest import Document, FailedChunk, Manifest
from .questions import ANSWERS_INSTRUCTION
from .text import describe as describe_cleaning

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


def configs_metadata(manifest: Manifest) -> list[dict]:
    """The ``configs:`` YAML entries mapping each config's splits to the parquet files of the layout.

    Only files that exist are listed: an empty split has none (``datasets`` cannot load a zero-row file).
    """
    return [
        {
            "config_name": name,
            **({"default": True} if name == "default" else {}),
            "data_files": [{"split": split, "path": path} for split, path in files.items()],
        }
        for name, files in manifest.data_files.items()
        if files
    ]


def card_languages(manifest: Manifest) -> list[str]:
    """The ISO 639-1 codes of the chunks' languages, most chunks first (undetermined ones left out)."""
    return [code for code in manifest.languages if code != UNDETERMINED]


def card_data(manifest: Manifest, *, license: str | None = None, pretty_name: str | None = None) -> DatasetCardData:
    """The YAML metadata of the card."""
    languages = card_languages(manifest)
    return DatasetCardData(
        language=languages or None,
        license=license or DEFAULT_LICENSE,
        pretty_name=pretty_name or _pretty_name(manifest),
        size_categories=size_category(manifest.pairs),
        task_categories=["sentence-similarity", "feature-extraction"],
        annotations_creators="machine-generated",
        language_creators="found",
        multilinguality="multilingual" if len(languages) > 1 else "monolingual",
        source_datasets="original",
        tags=["synthetic", "rag", "retrieval", "sentence-transformers", "embeddings", "question-answering",
              "synthqa"],
        configs=configs_metadata(manifest),
    )


def render_card(manifest: Manifest, *, repo_id: str | None = None, license: str | None = None,
                pretty_name: str | None = None) -> str:
    """The full README.md text for a run's manifest; ``repo_id`` goes into the code snippets."""
    data = card_data(manifest, license=license, pretty_name=pretty_name)
    note = LICENSE_NOTE_DEFAULT if data.license == DEFAULT_LICENSE else LICENSE_NOTE_SET
    prompt = manifest.prompt
    dropped, left_out = spares.apart(manifest.question_filters)
    card = DatasetCard.from_template(
        data,
        template_path=str(resources.files("synthqa") / TEMPLATE),
        synthqa_version=manifest.synthqa_version,
        created_at=manifest.created_at,
        dataset_ref=repo_id or DATASET_REF_PLACEHOLDER,
        eval_name=_slug(repo_id or data.pretty_name),
        license_note=note.format(model=manifest.model, license=data.license),
        counts=manifest.counts,
        pairs=manifest.pairs,
        splits={name: ", ".join(files) for name, files in manifest.data_files.items()},
        has_eval="eval" in manifest.data_files.get("queries", {}),
        documents=manifest.documents[:MAX_LISTED_DOCUMENTS],
        document_texts=[_document_text(d) for d in manifest.documents[:MAX_LISTED_DOCUMENTS]],
        ocr_pages=manifest.ocr_pages,
        cleaning_text=_cleaning_text(manifest),
        more_documents=max(0, len(manifest.documents) - MAX_LISTED_DOCUMENTS),
        skipped_files=manifest.skipped_files,
        skipped_pages=manifest.skipped_pages,
        options=manifest.options,
        model=manifest.model,
        endpoint_text=_endpoint_text(manifest),
        skipped_chunks_text=_counts_text(manifest.skipped_chunks, "none"),
        question_filters_text=_counts_text(dropped, "none dropped"),
        spare_text=spares.describe(manifest.options.spare_questions, left_out),
        failed_text=_failed_text(manifest.failed_chunks),
        split_text=_split_text(manifest),
        languages_text=_languages_text(manifest),
        language_check=manifest.language_check,
        wrong_language=manifest.question_filters.get("wrong_language", 0),
        prompt=prompt,
        prompt_system_block=fenced(prompt.system or "(none)"),
        prompt_user_block=fenced(prompt.user),
        has_extras=manifest.counts.questions_with_extra_relevant > 0,
        top_k=manifest.roundtrip.top_k,
        answers_instruction=ANSWERS_INSTRUCTION if manifest.options.answers else None,
        curation_text=describe_curation(manifest.curation) if manifest.curation is not None else None,
        coverage_text=_coverage_text(manifest),
        coverage_header=coverage.TABLE_HEADER,
        coverage_rows=coverage.table_rows(manifest)[:MAX_LISTED_DOCUMENTS] if len(manifest.documents) > 1 else [],
        style_header=styles.TABLE_HEADER,
        style_rows=styles.table_rows(manifest.styles),
        style_names=", ".join(s.style for s in manifest.styles),
        other_style_prompts=[s for s in manifest.styles if s.prompt_sha256 != prompt.sha256],
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


def _pretty_name(manifest: Manifest) -> str:
    docs = manifest.documents
    if len(docs) == 1:
        return f"Synthetic retrieval pairs: {docs[0].source}"
    return f"Synthetic retrieval pairs from {len(docs)} policy documents" if docs else "Synthetic retrieval pairs"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:60] or "synthqa"


def _endpoint_text(manifest: Manifest) -> str:
    if manifest.local:
        return "synthqa's embedded llama.cpp server (offline)"
    return f"the OpenAI-compatible endpoint at `{manifest.endpoint_host}`"


def _counts_text(counts: dict[str, int], empty: str) -> str:
    counts = {k: v for k, v in counts.items() if v}
    if not counts:
        return empty + "."
    parts = [f"{reason} {n}" for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return f"{sum(counts.values())} in all — " + ", ".join(parts) + "."


def _failed_text(failed: tuple[FailedChunk, ...]) -> str:
    if not failed:
        return "none."
    shown = [f"`{f.source}` p.{f.page}: {f.reason}" for f in failed[:10]]
    more = f"; … and {len(failed) - 10} more (see `synthqa.json`)" if len(failed) > 10 else ""
    return f"{len(failed)} — " + "; ".join(shown) + more + ". Their pages have no questions in this dataset."


def _coverage_text(manifest: Manifest) -> str:
    text = coverage.describe(manifest)
    low = coverage.warning(manifest)
    return text + (f". Warning: {low}" if low else "")


def _document_text(document: Document) -> str:
    text = f"{document.pages} page(s)"
    if document.ocr_pages:
        text += f", {document.ocr_pages} read by OCR"
    c = document.cleaning
    if c is not None:
        changes = [f"{n} {what}" for n, what in (
            (c.running_lines_removed, "running-head/footer line(s) removed"),
            (c.page_numbers_removed, "page number(s) removed"),
            (c.hyphens_joined, "line-break hyphen(s) joined"),
            (c.characters_normalised, "character(s) normalised"),
        ) if n]
        text += "; cleaning: " + (", ".join(changes) if changes else "nothing to change")
    return text


def _cleaning_text(manifest: Manifest) -> str:
    cleaning = manifest.cleaning
    if cleaning is None:
        return "The text was kept as extracted (`--no-clean`): only its whitespace was tidied."
    return ("The text was cleaned: Unicode NFKC (ligatures such as ﬁ become fi), words hyphenated at a line end "
            "joined unless the document spells them with a hyphen, running heads, footers and page numbers "
            f"removed — {describe_cleaning(cleaning)}.")


def _languages_text(manifest: Manifest) -> str:
    parts = [f"{language_label(code)}: {c.chunks} chunk(s), {c.questions} question(s)"
             for code, c in manifest.languages.items()]
    return "; ".join(parts) or "none"


def _split_text(manifest: Manifest) -> str:
    split = manifest.split
    return f"{split.eval_fraction:.0%} of chunks go to eval, method `{split.method}`, seed {split.seed}."
