"""Fine-tune an embedding model on a synthqa dataset's train pairs, then compare it with its base.

The recipe is the reference one (MultipleNegativesRankingLoss inside MatryoshkaLoss, trained with
sentence-transformers' trainer) with these corrections:

* ``BatchSamplers.NO_DUPLICATES``: the sampler refuses a row whose value in *any* column already appears in
  the batch. A chunk asked N questions is ``sentence_1`` of N rows, so those rows never share a batch, and
  no question meets its own chunk as an in-batch "negative".
* Training sees what evaluation sees: questions get the query prompt and chunks the document prompt that
  ``encode_query`` / ``encode_document`` use (the model's own, or ``query_prompt``/``document_prompt``,
  which are then saved with the model).
* Hard negatives never drop a pair and are never a chunk sharing text with the positive (``negatives.py``).
* No best-checkpoint selection on the eval split: the same split measures the result, and picking the
  checkpoint on it would inflate the after-score. The last model is kept.
* Matryoshka widths are fitted to the base model (``matryoshka_dims``) instead of a fixed 768-wide list.

Nothing is downloaded: the base model is a folder or the bundled MiniLM, and the model card is written
with ``local_files_only``. The terminal gets one bar and a line per epoch (``progress.py``); the full
trainer log goes to ``training_log.jsonl`` beside the model; the card names the dataset (``card.py``).
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import FinetuneConfig
from ..dataset import load_tables, resolve_dataset
from ..errors import ConfigError, DatasetError, HubError, OutputError
from ..evaluate import EvalReport, evaluate, model_label
from ..hub import check_can_push, push_model
from ..models import (
    BUNDLED_ALIASES,
    DEFAULT_MODEL_NAME,
    encoding_prompts,
    load_model,
    require_eval_extra,
    set_prompts,
)
from ..retrieval import CORPUS_MEANING, ir_evaluator_inputs
from .card import add_recipe, comparison_table, dataset_source, recipe_section
from .negatives import NegativeStats, add_hard_negatives
from .progress import LOG_NAME, Log, TrainingProgress, quiet

__all__ = ["FinetuneResult", "finetune", "format_comparison", "matryoshka_dims"]

# The reference trained 768 → 512, 256, 128, 64; the same ladder is cut at the base model's width.
_LADDER = (1024, 768, 512, 256, 128, 64)


@dataclass(frozen=True)
class FinetuneResult:
    """What a fine-tuning run produced: where the model is, how training went, and before/after metrics."""

    output_dir: str
    base_model: str
    dataset: str  # its Hub id when it has one, else its folder's name
    train_rows: int
    steps: int
    training_loss: float
    matryoshka_dims: tuple[int, ...]
    seconds: float
    before: EvalReport
    after: EvalReport
    query_prompt: str  # "" when none
    document_prompt: str
    negatives: NegativeStats | None
    epoch_lines: tuple[str, ...]  # one per evaluation during training
    log_path: str
    url: str | None = None  # the model's Hub page, after --push-to-hub


def matryoshka_dims(width: int) -> list[int]:
    """``[width, …]`` followed by the reference widths below it, e.g. 384 → [384, 256, 128, 64]."""
    return [width, *(d for d in _LADDER if d < width)]


def finetune(dataset, output_dir, *, log: Log | None = None, progress: bool = False, **options) -> FinetuneResult:
    """Train a base model (``base_model``: folder, Hub name, or None for the bundled MiniLM) on the train
    pairs of ``dataset`` (folder or Hub id), save it with its card and training log to ``output_dir``,
    evaluate base and result on the eval split, and push it when ``push_to_hub`` names a repo.
    ``options`` are ``FinetuneConfig`` fields; ``log`` gets the progress lines, ``progress`` draws the bar."""
    config = FinetuneConfig(dataset, output_dir, **options)
    log = log or (lambda line: None)
    _check_output_dir(config.output_dir)
    if config.push_to_hub:
        check_can_push(config.push_to_hub, config.token)  # before training, not after it
    st = require_eval_extra()
    folder, tables = _read_dataset(config.dataset)
    source = dataset_source(config.dataset, folder)
    label = model_label(config.base_model)
    model = load_model(config.base_model, max_seq_length=config.max_seq_length, option="--base-model")
    set_prompts(model, config.query_prompt, config.document_prompt)
    query_prompt, document_prompt = encoding_prompts(model)
    dims = matryoshka_dims(model.get_embedding_dimension())
    log(f"fine-tuning {label} on {source.name}: {len(tables['pairs']['train'])} train pairs, query prompt "
        f"{query_prompt or 'none'!r}, document prompt {document_prompt or 'none'!r}; eval questions search "
        f"{CORPUS_MEANING[config.corpus]} (--corpus {config.corpus})")

    started = time.perf_counter()
    train, negatives = _training_rows(config, tables, model)
    if negatives is not None:
        log(f"hard negatives: {negatives.summary()}")
    before = evaluate(folder, model=model, dims=dims[1:], label="base", corpus=config.corpus)
    _describe(model, config, label, source)
    config.output_dir.mkdir(parents=True, exist_ok=True)
    log_path = config.output_dir / LOG_NAME
    header = {"dataset": source.name, "base_model": label, "query_prompt": query_prompt,
              "document_prompt": document_prompt, "negatives": negatives.summary() if negatives else None}
    tracker = TrainingProgress(log_path, log, bar=progress, header=header)
    output = _train(st, config, model, folder, train, dims, (query_prompt, document_prompt), tracker)
    with quiet():  # a bar for writing the weights
        model.save(str(config.output_dir))  # writes README.md, the model card sentence-transformers filled in
    after = evaluate(folder, model=model, dims=dims[1:], bm25=False, label="finetuned", corpus=config.corpus)
    result = FinetuneResult(
        str(config.output_dir), label, source.name, len(train), int(output.global_step),
        float(output.training_loss), tuple(dims), time.perf_counter() - started, before, after, query_prompt,
        document_prompt, negatives, tuple(tracker.lines), str(log_path),
    )
    add_recipe(config.output_dir / "README.md", recipe_section(result, source))
    return _push(config, result) if config.push_to_hub else result


def _read_dataset(given: str):
    """The dataset's folder and tables, refused when it cannot train and measure a model."""
    folder = resolve_dataset(given)
    tables = load_tables(folder)
    if len(tables["pairs"]["train"]) < 2:
        raise DatasetError(f"{folder} has {len(tables['pairs']['train'])} train pairs: fine-tuning needs at least 2 "
                           "(generate more)")
    if tables["queries"]["eval"].empty:
        raise DatasetError(f"{folder} has no eval split (all its chunks come from one page, or pages sharing text): "
                           "finetune measures the model on it before and after; generate from more pages")
    return folder, tables


def _push(config: FinetuneConfig, result: FinetuneResult) -> FinetuneResult:
    """Upload the saved model; a failure says where the model is and the command that pushes it."""
    try:
        url = push_model(config.output_dir, config.push_to_hub, private=config.private, token=config.token)
    except HubError as err:
        raise HubError(f"{err} — the model is saved in {config.output_dir}; push it again with: "
                       f"hf upload {config.push_to_hub} {config.output_dir}") from None
    return replace(result, url=url)


def _check_output_dir(output_dir: Path) -> None:
    # A folder holding only the training log of an earlier run that failed is ours to reuse.
    if not output_dir.exists():
        return
    if not output_dir.is_dir() or any(p.name != LOG_NAME for p in output_dir.iterdir()):
        raise OutputError(f"-o {output_dir} exists and is not an empty folder: choose a new folder for the model")
    (output_dir / LOG_NAME).unlink(missing_ok=True)


def _training_rows(config: FinetuneConfig, tables, model):
    """The train pairs as a Dataset (sentence_0, sentence_1), with negative_1..N when asked for."""
    from datasets import Dataset

    if not config.hard_negatives:
        pairs = tables["pairs"]["train"][["sentence_0", "sentence_1"]]
        return Dataset.from_pandas(pairs, preserve_index=False), None
    with quiet():  # the miner draws encode bars whatever it is told
        corpus = tables["corpus"]["train"]
        # mined among the chunks asked about, as before the corpus kept skipped ones (docs/finetune.md's bench)
        return add_hard_negatives(tables["queries"]["train"], corpus[corpus["skip_reason"] == ""], model,
                                  config.hard_negatives, config.negative_margin, config.negative_range_min,
                                  config.batch_size, config.seed)


def _describe(model, config: FinetuneConfig, label: str, source) -> None:
    """What sentence-transformers writes into the card by itself: names, ids, nothing looked up online."""
    data = model.model_card_data
    data.local_files_only = True  # the card must not look up the base model or dataset on the Hub
    data.model_name = f"{label} fine-tuned on {source.name} (synthqa)"
    data.train_datasets = [{"name": source.name, **({"id": source.hub_id} if source.hub_id else {})}]
    if config.push_to_hub:
        data.model_id = config.push_to_hub  # the card's usage snippet loads the model by its Hub id
    base = config.base_model
    if base is None or base.lower() in BUNDLED_ALIASES:
        data.base_model = f"sentence-transformers/{DEFAULT_MODEL_NAME}"
    elif not Path(base).exists() and base.count("/") == 1:
        data.base_model = base


def _train(st, config: FinetuneConfig, model, folder: Path, train, dims: list[int], prompts: tuple[str, str],
           tracker: TrainingProgress):
    """Run the trainer with ``tracker`` as its only output; returns its TrainOutput."""
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
    )
    from sentence_transformers.sentence_transformer.losses import (
        MatryoshkaLoss,
        MultipleNegativesRankingLoss,
    )
    from transformers import PrinterCallback, ProgressCallback

    queries, corpus, relevant = ir_evaluator_inputs(folder, split="eval", corpus=config.corpus)
    evaluator = InformationRetrievalEvaluator(queries, corpus, relevant, name="eval", batch_size=config.batch_size)
    loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), matryoshka_dims=dims)
    query_prompt, document_prompt = prompts
    # every column but the question is a chunk (the positive and each negative)
    column_prompts = {col: query_prompt if col == "sentence_0" else document_prompt for col in train.column_names}
    column_prompts = {col: p for col, p in column_prompts.items() if p}
    steps = config.max_steps
    scratch = tempfile.TemporaryDirectory(prefix="synthqa-finetune-")  # trainer files; nothing is checkpointed
    args = st.SentenceTransformerTrainingArguments(
        output_dir=scratch.name, num_train_epochs=config.epochs, max_steps=steps if steps is not None else -1,
        per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=config.batch_size,
        learning_rate=config.lr,
        warmup_steps=0.1,  # a float is a ratio of all steps (transformers 5)
        lr_scheduler_type="cosine", batch_sampler=BatchSamplers.NO_DUPLICATES, prompts=column_prompts or None,
        eval_strategy="steps" if steps is not None else "epoch", eval_steps=steps, save_strategy="no",
        # every 10 steps, or more often when an epoch (or the whole run) is shorter, so each epoch logs a loss
        logging_steps=min(10, steps or 10, max(1, len(train) // config.batch_size)), seed=config.seed,
        data_seed=config.seed, report_to="none",
        disable_tqdm=True, dataloader_pin_memory=_cuda(),
    )
    with quiet():  # the card's widget examples are computed here, with a bar
        trainer = st.SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss,
                                                evaluator=evaluator, callbacks=[tracker])
    for printer in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(printer)
    with scratch:
        output = trainer.train()
    if not math.isfinite(output.training_loss):
        raise ConfigError(f"training diverged (loss {output.training_loss}): lower --lr (now {config.lr})")
    return output


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def format_comparison(result: FinetuneResult) -> str:
    """The run in one line, then the before/after tables."""
    head = (f"{result.base_model} → {result.output_dir}: {result.steps} steps, {result.train_rows} train rows, "
            f"loss {result.training_loss:.4f}, {result.seconds:.0f} s")
    return head + "\n" + comparison_table(result.before, result.after, result.matryoshka_dims)
