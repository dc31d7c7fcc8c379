"""What a person sees while a model trains, and the full record kept beside the model.

The trainer's own output (a dict per log step, evaluation dicts of 15 keys, bars for widget examples and
the miner's encodes) is replaced by one bar with the loss and the ETA, and one line per evaluation with
nDCG@10 and accuracy@1. Every trainer log entry goes, whole, to ``training_log.jsonl`` in the model folder.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from transformers import TrainerCallback

LOG_NAME = "training_log.jsonl"
Log = Callable[[str], None]


class TrainingProgress(TrainerCallback):
    """A trainer callback: the bar (when ``bar``), the per-evaluation lines (through ``log``), the log file."""

    def __init__(self, log_path: Path, log: Log, bar: bool = True, header: dict | None = None) -> None:
        self.log_path = Path(log_path)
        self.log = log
        self.show_bar = bar
        self.header = header or {}
        self.bar = None
        self.file = None
        self.loss: float | None = None
        self.lines: list[str] = []  # the per-evaluation lines, also kept for the caller

    def on_train_begin(self, args, state, control, **kwargs):
        self.file = self.log_path.open("a", encoding="utf-8")
        self._write({"event": "start", **self.header})
        if self.show_bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, desc="training", unit="step", file=sys.stderr, dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        self._write({"step": state.global_step, **logs})
        if "loss" in logs:
            self.loss = float(logs["loss"])
            if self.bar is not None:
                self.bar.set_postfix(loss=f"{self.loss:.4f}", refresh=False)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        line = epoch_line(args, state, metrics or {}, self.loss)
        self.lines.append(line)
        if self.bar is not None:
            self.bar.refresh()
        self.log(line)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.file is not None:
            self.file.close()
            self.file = None

    def _write(self, entry: dict) -> None:
        if self.file is not None:
            self.file.write(json.dumps(entry, default=str) + "\n")
            self.file.flush()


def epoch_line(args, state, metrics: dict, loss: float | None) -> str:
    """``epoch 2/5  ndcg@10 0.8412  accuracy@1 0.7500  loss 0.4211`` from the evaluator's metrics (``step
    4/4 …`` when evaluating every N steps); ``loss`` is the last logged training loss."""
    ndcg = next((v for k, v in metrics.items() if k.endswith("ndcg@10")), math.nan)
    acc1 = next((v for k, v in metrics.items() if k.endswith("accuracy@1")), math.nan)
    if getattr(args.eval_strategy, "value", args.eval_strategy) == "epoch":
        where = f"epoch {round(state.epoch or 0)}/{math.ceil(args.num_train_epochs)}"
    else:
        where = f"step {state.global_step}/{state.max_steps}"
    text = f"{where}  ndcg@10 {ndcg:.4f}  accuracy@1 {acc1:.4f}"
    return text + (f"  loss {loss:.4f}" if loss is not None else "")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Keep library chatter off the terminal: the bars sentence-transformers draws while mining and while
    computing the card's widget examples, and transformers' info/warning logging. Wrap only code that
    prints nothing of ours."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stderr(sink):
            yield
    finally:
        hf_logging.set_verbosity(level)
