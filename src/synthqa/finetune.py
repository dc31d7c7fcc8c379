"""Fine-tune an embedding model on a synthqa dataset's train pairs, then compare it with its base.

The recipe is the reference one (MultipleNegativesRankingLoss inside MatryoshkaLoss, trained with
sentence-transformers' trainer) with three corrections:

* ``BatchSamplers.NO_DUPLICATES``: the sampler refuses a row whose value in *any* column already appears in
  the batch. A chunk asked N questions is ``sentence_1`` of N rows, so those rows never share a batch, and
  no question meets its own chunk as an in-batch "negative".
* No best-checkpoint selection on the eval split: the same split measures the result, and picking the
  checkpoint on it would inflate the after-score. The last model is kept.
* Matryoshka widths are fitted to the base model (``matryoshka_dims``) instead of a fixed 768-wide list.

Nothing is downloaded: the base model is a folder or the bundled MiniLM, and the model card is written
with ``local_files_only``.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .dataset import ir_evaluator_inputs, load_tables, resolve_dataset
from .errors import ConfigError, DatasetError, OutputError
from .evaluate import METRICS, EvalReport, evaluate, model_label
from .models import load_model, require_eval_extra

# The reference trained 768 → 512, 256, 128, 64; the same ladder is cut at the base model's width.
_LADDER = (1024, 768, 512, 256, 128, 64)


@dataclass(frozen=True)
class FinetuneResult:
    """What a fine-tuning run produced: where the model is, how training went, and before/after metrics."""

    output_dir: str
    base_model: str
    train_rows: int
    steps: int
    training_loss: float
    matryoshka_dims: tuple[int, ...]
    seconds: float
    before: EvalReport
    after: EvalReport


def matryoshka_dims(width: int) -> list[int]:
    """``[width, …]`` followed by the reference widths below it, e.g. 384 → [384, 256, 128, 64]."""
    return [width, *(d for d in _LADDER if d < width)]


def finetune(
    out,
    output_dir,
    base_model=None,
    epochs: int = 5,
    batch_size: int = 20,
    lr: float = 2e-5,
    max_seq_length: int | None = None,
    hard_negatives: int = 0,
    max_steps: int | None = None,
    seed: int = 42,
) -> FinetuneResult:
    """Train ``base_model`` (folder, Hub name, or None for the bundled MiniLM) on OUT's train pairs, save it
    with its model card to ``output_dir``, and evaluate base and result on OUT's eval split."""
    _check_options(epochs, batch_size, lr, max_seq_length, hard_negatives, max_steps)
    output_dir = Path(output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise OutputError(f"-o {output_dir} exists and is not an empty folder: choose a new folder for the model")
    st = require_eval_extra()
    from datasets import Dataset
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
    )
    from sentence_transformers.sentence_transformer.losses import (
        MatryoshkaLoss,
        MultipleNegativesRankingLoss,
    )

    folder = resolve_dataset(out)
    tables = load_tables(folder)
    pairs = tables["pairs"]["train"][["sentence_0", "sentence_1"]]
    if len(pairs) < 2:
        raise DatasetError(f"{folder} has {len(pairs)} train pairs: fine-tuning needs at least 2 (generate more)")
    label = model_label(base_model)
    model = load_model(base_model, max_seq_length=max_seq_length)
    width = model.get_embedding_dimension()
    dims = matryoshka_dims(width)

    started = time.perf_counter()
    before = evaluate(folder, model=model, dims=dims[1:], label="base")
    train = Dataset.from_pandas(pairs, preserve_index=False)
    if hard_negatives:
        train = _mine(st, train, model, tables, hard_negatives, batch_size)

    queries, corpus, relevant = ir_evaluator_inputs(folder, split="eval")
    evaluator = InformationRetrievalEvaluator(queries, corpus, relevant, name="eval", batch_size=batch_size)
    loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), matryoshka_dims=dims)
    model.model_card_data.local_files_only = True  # the card must not look up the base model on the Hub
    model.model_card_data.model_name = f"{label} fine-tuned on {folder.name} (synthqa)"
    model.model_card_data.train_datasets = [{"name": folder.name}]

    scratch = tempfile.TemporaryDirectory(prefix="synthqa-finetune-")  # trainer logs; nothing is checkpointed
    args = st.SentenceTransformerTrainingArguments(
        output_dir=scratch.name,
        num_train_epochs=epochs,
        max_steps=max_steps if max_steps is not None else -1,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        learning_rate=lr,
        warmup_steps=0.1,  # a float is a ratio of all steps (transformers 5)
        lr_scheduler_type="cosine",
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        eval_strategy="steps" if max_steps is not None else "epoch",
        eval_steps=max_steps,
        save_strategy="no",
        logging_steps=max(1, min(10, max_steps or 10)),
        seed=seed,
        data_seed=seed,
        report_to="none",
        dataloader_pin_memory=_cuda(),
    )
    trainer = st.SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss, evaluator=evaluator)
    with scratch:
        output = trainer.train()
    if not math.isfinite(output.training_loss):
        raise ConfigError(f"training diverged (loss {output.training_loss}): lower --lr (now {lr})")
    model.save(str(output_dir))  # writes README.md, the model card sentence-transformers filled in
    after = evaluate(folder, model=model, dims=dims[1:], bm25=False, label="finetuned")
    return FinetuneResult(
        str(output_dir), label, len(train), int(output.global_step), float(output.training_loss), tuple(dims),
        time.perf_counter() - started, before, after,
    )


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _mine(st, train, model, tables, n: int, batch_size: int):
    """Add ``n`` hard negatives per pair from the train chunks (columns anchor, positive, negative_1..n).

    Candidates within 5% of the positive's score are skipped, the margin the NV-Retriever paper found
    best: they are more likely unlabelled positives than true negatives."""
    corpus = list(tables["corpus"]["train"]["text"])
    mined = st.util.mine_hard_negatives(
        train, model, anchor_column_name="sentence_0", positive_column_name="sentence_1", corpus=corpus,
        num_negatives=n, relative_margin=0.05, sampling_strategy="top", output_format="n-tuple",
        batch_size=batch_size, verbose=False,
    )
    if len(mined) == 0:
        raise DatasetError(f"--hard-negatives {n}: no pair has {n} usable negatives; use a smaller number or 0")
    return mined


def _check_options(epochs, batch_size, lr, max_seq_length, hard_negatives, max_steps) -> None:
    for name, value in (("--epochs", epochs), ("--batch-size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} {value!r} must be a whole number of at least 1")
    if batch_size < 2:
        raise ConfigError("--batch-size 1 gives the ranking loss no in-batch negatives: use 2 or more (20 is usual)")
    if not (0 < lr < 1):
        raise ConfigError(f"--lr {lr} must lie between 0 and 1 (2e-5 is usual)")
    if max_seq_length is not None and max_seq_length < 8:
        raise ConfigError(f"--max-seq-length {max_seq_length} is too small: use 128 or more")
    if hard_negatives < 0 or hard_negatives > 20:
        raise ConfigError(f"--hard-negatives {hard_negatives} must lie between 0 and 20")
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"--max-steps {max_steps} must be at least 1")


def format_comparison(result: FinetuneResult) -> str:
    """Before/after table at full width, then nDCG@10 at each Matryoshka width."""
    base, tuned = result.before.rows, result.after.rows
    lines = [
        (f"{result.base_model} → {result.output_dir}: {result.steps} steps, {result.train_rows} train rows, "
         f"loss {result.training_loss:.4f}, {result.seconds:.0f} s"),
        f"| {'metric':<12} | {'base':>8} | {'finetuned':>9} | {'change':>8} |",
        f"|{'-' * 14}|{'-' * 9}:|{'-' * 10}:|{'-' * 9}:|",
    ]
    for m in METRICS:
        lines.append(f"| {m:<12} | {base['base'][m]:>8.4f} | {tuned['finetuned'][m]:>9.4f} | "
                     f"{tuned['finetuned'][m] - base['base'][m]:>+8.4f} |")
    lines.append("")
    lines.append(f"| {'ndcg@10 at':<12} | {'base':>8} | {'finetuned':>9} | {'change':>8} |")
    lines.append(f"|{'-' * 14}|{'-' * 9}:|{'-' * 10}:|{'-' * 9}:|")
    for i, dim in enumerate(result.matryoshka_dims):
        b = base["base" if i == 0 else f"base@{dim}"]["ndcg@10"]
        t = tuned["finetuned" if i == 0 else f"finetuned@{dim}"]["ndcg@10"]
        lines.append(f"| {f'dim {dim}':<12} | {b:>8.4f} | {t:>9.4f} | {t - b:>+8.4f} |")
    lines.append(f"| {'bm25':<12} | {base['bm25']['ndcg@10']:>8.4f} | {'':>9} | {'':>8} |")
    return "\n".join(lines)
