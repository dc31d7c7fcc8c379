"""The write stage alone, on a folder `bench_scale.py --keep` wrote: its memory at 100k and 1M chunks.

    .venv/bin/python bench/bench_write.py /tmp/scale/post-1000000 [--system-pool]

Rebuilds the near-duplicate decisions from the folder's generated queries (once, into ``.synthqa/dropped.npy``;
in a child process, so their sets never count here), assigns the splits as the pipeline does, then runs
``assemble.write_tables`` with the process's RssAnon/RssFile sampled every 0.05 s. Prints the seconds and the
anonymous memory before, at the peak and after: what the write stage adds to whatever the run holds.
``--system-pool``: Arrow's system allocator instead of its default (mimalloc), which keeps freed memory (synthqa
empties that pool after each row group, `memory.release`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np


def rss() -> tuple[int, int]:
    """(anonymous, file-backed) resident MB of this process."""
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(fields["RssAnon"].split()[0]) >> 10, int(fields["RssFile"].split()[0]) >> 10


def rebuild_dropped(folder: Path) -> None:
    """(In a child.) One bool per stored question: whether the written dataset left it out."""
    import pyarrow.parquet as pq

    from synthqa import styles
    from synthqa.store import WORK_FILENAME, RunStore

    written = set(pq.read_table(folder / ".synthqa" / "generated-queries.parquet", columns=["id"])
                  .column("id").to_pylist())
    with RunStore(folder / ".synthqa" / "work" / WORK_FILENAME, fresh=False) as store:
        ids = {seq: chunk.id for seq, chunk in store.chunk_rows()}
        dropped = [styles.query_id(ids[seq], style, n) not in written for _, seq, n, _, _, style in
                   store.question_rows()]
    np.save(folder / ".synthqa" / "dropped.npy", np.array(dropped))


def measure(folder: Path) -> str:
    from synthqa import roundtrip
    from synthqa.cache import cache_path
    from synthqa.config import GenerateConfig
    from synthqa.pdfs import DocumentReport
    from synthqa.pipeline import assemble
    from synthqa.pipeline.inputs import Inputs
    from synthqa.pipeline.tally import Tally
    from synthqa.store import WORK_FILENAME, RunStore
    from synthqa.text import Cleaning

    counts = json.loads((folder / "inputs.json").read_text())
    sources = [f"doc-{d:06d}.txt" for d in range(counts["documents"])]
    inputs = Inputs(chunks=counts["chunks"], asked=counts["asked"], asked_chars=counts["asked_chars"], done=True,
                    pages_per_doc=Counter(dict.fromkeys(sources, 40)),
                    documents={s: DocumentReport(s, Cleaning()) for s in sources})
    config = GenerateConfig(inputs=(folder,), out=folder, base_url="http://127.0.0.1:9/v1", model="fake-model",
                            embed_roundtrip=False, workers=2)
    dropped = np.load(folder / ".synthqa" / "dropped.npy")
    workdir = folder / ".synthqa" / "work"
    with RunStore(workdir / WORK_FILENAME, fresh=False) as store:
        store.attach_cache(cache_path(folder))
        is_eval, chunk_ids = assemble.assign_splits(config, store)
        before, samples, done = rss(), [], threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                samples.append(rss())

        threading.Thread(target=sample, daemon=True).start()
        started = time.perf_counter()
        assemble.write_tables(config, store, dropped, workdir / assemble.RANKS_FILE, is_eval, chunk_ids, inputs,
                              Tally(top_k=roundtrip.TOP_K))
        seconds = time.perf_counter() - started
        done.set()
    peak = max([before, *samples], key=sum)
    return (f"{folder.name}: write {seconds:.1f} s; resident MB (anonymous, file-backed) before {before}, "
            f"peak {peak} (+{peak[0] - before[0]} MB anonymous), after {rss()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--system-pool", action="store_true")
    parser.add_argument("--rebuild", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rebuild:
        return rebuild_dropped(args.folder)
    if not (args.folder / ".synthqa" / "dropped.npy").exists():
        subprocess.run([sys.executable, __file__, str(args.folder), "--rebuild"], check=True)
    if args.system_pool and os.environ.get("ARROW_DEFAULT_MEMORY_POOL") != "system":
        os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, ARROW_DEFAULT_MEMORY_POOL="system"))
    print(measure(args.folder))


if __name__ == "__main__":
    main()
