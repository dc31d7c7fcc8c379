"""Scale on one machine: per-stage seconds and peak memory from 10k to 1M chunks.

    .venv/bin/python bench/bench_scale.py [--points corpora,10k,100k,1m] [--dir DIR]

(``postNk`` among the points, e.g. ``post20k``, adds a stages-after-asking point of that size.)

- 10k and 100k chunks of synthetic text (``synthcorpus.py``) end to end through `synthqa generate`
  against the loopback fake server at zero latency (embedding round trip on at 10k, off above);
- 100k and 1M chunks through the stages after asking only, driven directly with synthetic answers (a
  million loopback requests take an hour on 2 cores): the answers the fake server would give, put straight
  into the cache, then the pipeline's ``assemble_and_write`` in a fresh process;
- the near-duplicate decisions of the blocking dedupe beside the all-pairs comparison synthqa used before
  (corpora questions, and the 10k point), and the 10k point's BM25 ranks beside bm25s's dense scores.

Targets (issue 10): at 100k chunks everything after asking takes ≤ 10 % of what asking takes at latency
0.5 s and concurrency 32 (≤ 156 s); peak RSS ≤ 1.5 GB at 1M chunks and within 20 % between 100k and 1M.
Peak RSS is the synthqa process's (sampled every 0.2 s, and its high-water mark in each stage); "+workers"
adds the reading processes' RSS at the same instants.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

from fakeserver import FakeOpenAI, questions_for  # noqa: E402
from synthcorpus import TextMaker, write_text_corpus  # noqa: E402

from synthqa import chunks, dedupe, filters, language, prompts, roundtrip, styles  # noqa: E402
from synthqa.cache import Cache, cache_path  # noqa: E402
from synthqa.config import GenerateConfig  # noqa: E402
from synthqa.pdfs import DocumentReport  # noqa: E402
from synthqa.pipeline import Endpoint, cache_key  # noqa: E402
from synthqa.pool import default_workers  # noqa: E402
from synthqa.records import Page  # noqa: E402
from synthqa.text import Cleaning  # noqa: E402
from synthqa.store import WORK_FILENAME, RunStore  # noqa: E402

LATENCY, CONCURRENCY = 0.5, 32  # the reference endpoint of the 10 % target
MODEL = "fake-model"
POST_STAGES = ("filter", "near_duplicates", "roundtrip", "split", "write")


# ------------------------------------------------------------------------- measuring a process
class RssSampler:
    """Peak RSS of a process alone and with its children, sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = self.peak_tree = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                own = self.proc.memory_info().rss
                tree = own + sum(c.memory_info().rss for c in self.proc.children(recursive=True))
            except psutil.Error:
                continue
            self.peak, self.peak_tree = max(self.peak, own), max(self.peak_tree, tree)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def end_to_end(n_chunks: int, embed: bool, work: Path, workers: int | None = None) -> dict:
    """`synthqa generate` over a synthetic corpus against the fake server; timings, counts, peak RSS."""
    corpus, out = work / f"corpus-{n_chunks}", work / f"out-{n_chunks}"
    if not corpus.exists():
        write_text_corpus(corpus, n_chunks)
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "synthqa", "generate", str(corpus), "-o", str(out), "--concurrency",
           str(CONCURRENCY), "--no-progress", *([] if embed else ["--no-embed-roundtrip"]),
           *(["--workers", str(workers)] if workers else [])]
    with FakeOpenAI() as fake:
        env = dict(os.environ, OPENAI_API_KEY="sk-bench")
        started = time.perf_counter()
        proc = subprocess.Popen([*cmd, "--base-url", fake.base_url], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        sampler = RssSampler(proc.pid)
        stdout, stderr = proc.communicate()
        sampler.stop()
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"generate failed ({proc.returncode}): {stderr[-2000:]}")
    manifest = json.loads((out / "synthqa.json").read_text())
    return {"name": f"{n_chunks // 1000}k end to end", "out": out, "corpus": corpus, "manifest": manifest,
            "timings": manifest["timings"], "chunks": manifest["counts"]["chunks_asked"], "wall": wall,
            "rss": sampler.peak, "rss_tree": sampler.peak_tree, "embed": embed,
            "load": os.getloadavg()[0], "workers": workers or default_workers()}


# ------------------------------------------------------------------------- stages after asking, directly
def prepare_answers(n_chunks: int, folder: Path) -> None:
    """A run's store and cache as asking would leave them: synthetic chunks, the fake server's answers."""
    shutil.rmtree(folder, ignore_errors=True)
    config = GenerateConfig(inputs=(folder,), out=folder, base_url="http://127.0.0.1:9/v1", model=MODEL)
    template = prompts.load_template(None)
    endpoint = Endpoint(False, MODEL, config.base_url, "json_schema", CONCURRENCY)
    store = RunStore(folder / ".synthqa" / "work" / WORK_FILENAME)
    Cache(cache_path(folder)).close()  # the schema
    db = sqlite3.connect(cache_path(folder))
    maker, counts = TextMaker(seed=1), Counter()
    while counts["asked"] < n_chunks:
        source = f"doc-{counts['pages'] // 40:06d}.txt"
        pages = [Page(source, counts["pages"] % 40 + 1 + i, maker.page()) for i in range(40)]
        counts["pages"] += 40
        rows, answers = [], []
        for chunk in chunks.split_pages(pages, config.chunk_size, config.chunk_overlap):
            counts["chunks"] += 1
            if filters.chunk_skip_reason(chunk.text) or counts["asked"] >= n_chunks:
                continue
            counts["asked"] += 1
            counts["asked_chars"] += len(chunk.text)
            chunk = replace(chunk, language=language.detect(chunk.text))  # as reading does
            key = cache_key(config, template, endpoint, chunk)
            rows.append((chunk, key))
            answers.append((key, chunk.id, json.dumps(questions_for(chunk.text, 2)), None, 0, 1, 1, 300, 30, 0.0))
        store.add_chunks(rows)
        with db:
            db.executemany("INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?,?,?,?,?)", answers)
    store.close()
    db.close()
    (folder / "inputs.json").write_text(json.dumps({**counts, "documents": counts["pages"] // 40}))


def clear_after_ask(folder: Path) -> None:
    """A prepared folder as ``prepare_answers`` left it, from one an interrupted point left: the questions an
    earlier run stored would otherwise all be exact duplicates of themselves, and its scratch files stale."""
    workdir = folder / ".synthqa" / "work"
    db = sqlite3.connect(workdir / WORK_FILENAME)
    with db:
        db.execute("DELETE FROM questions")
        db.execute("DELETE FROM failures")
    db.close()
    for path in workdir.iterdir():
        if path.name != WORK_FILENAME and not path.name.startswith(WORK_FILENAME + "-"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def post_ask(folder: Path, workers: int | None = None) -> dict:
    """The stages after asking over a prepared folder, in a fresh process: timings and its peak RSS."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--post-ask", str(folder),
                             *(["--workers", str(workers)] if workers else [])], stdout=subprocess.PIPE, text=True)
    sampler = RssSampler(proc.pid)
    stdout, _ = proc.communicate()
    sampler.stop()
    if proc.returncode != 0:
        sys.exit(f"post-ask run failed ({proc.returncode})")
    result = json.loads(stdout.strip().splitlines()[-1])
    # ru_maxrss is reset with VmHWM at each stage's start: the stages' own peaks together give the process's
    own_peak = max(result["maxrss"], max(result["stage_peaks"].values()) << 20)
    chunks_asked = json.loads((folder / "inputs.json").read_text())["asked"]
    return {"name": f"{chunks_asked // 1000}k after asking", "timings": result["timings"], "chunks": chunks_asked,
            "wall": time.perf_counter() - started, "rss": max(sampler.peak, own_peak),
            "rss_tree": max(sampler.peak_tree, own_peak), "rss_start": result["rss_start"], "embed": False,
            "load": os.getloadavg()[0], "cpu": result["cpu"], "workers": result["workers"],
            "stage_peaks": result["stage_peaks"]}


def _resident_peak_mb() -> int:
    """This process's peak RSS since it began or since the last ``_reset_peak``, in MB (Linux only)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) >> 10
    return 0


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS (Linux ≥ 4.0)


def run_post_ask(folder: Path, workers: int | None = None) -> None:
    """(In the fresh process.) Open the prepared store and cache, run ``assemble_and_write``; with each stage's
    own peak RSS, which tells the stage that sets the run's peak."""
    import contextlib

    from synthqa.pipeline.assemble import assemble_and_write
    from synthqa.pipeline.inputs import Inputs
    from synthqa.pipeline.progress import Progress

    peaks = {"start": 0}

    class PeakProgress(Progress):
        @contextlib.contextmanager
        def stage(self, name, key=None):
            _reset_peak()
            with super().stage(name, key) as stage:
                yield stage
            peaks[key or name] = max(peaks.get(key or name, 0), _resident_peak_mb())

    rss_start = psutil.Process().memory_info().rss
    counts = json.loads((folder / "inputs.json").read_text())
    sources = [f"doc-{d:06d}.txt" for d in range(counts["documents"])]
    inputs = Inputs(chunks=counts["chunks"], asked=counts["asked"], asked_chars=counts["asked_chars"], done=True,
                    pages_per_doc=Counter(dict.fromkeys(sources, 40)),
                    documents={s: DocumentReport(s, Cleaning()) for s in sources})
    config = GenerateConfig(inputs=(folder,), out=folder, base_url="http://127.0.0.1:9/v1", model=MODEL,
                            embed_roundtrip=False, workers=workers)
    endpoint = Endpoint(False, MODEL, config.base_url, "json_schema", CONCURRENCY)
    progress = PeakProgress(False, print)
    peaks["start"] = _resident_peak_mb()
    workdir = folder / ".synthqa" / "work"
    with RunStore(workdir / WORK_FILENAME, fresh=False) as store:
        store.attach_cache(cache_path(folder))
        plans = styles.load_plans(config.style_mix, config.prompt_path, config.spare_questions)
        assemble_and_write(config, inputs, store, endpoint, progress, workdir, plans)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"timings": progress.seconds, "maxrss": usage.ru_maxrss * 1024, "rss_start": rss_start,
                      "stage_peaks": peaks,
                      "cpu": usage.ru_utime + usage.ru_stime, "workers": config.workers or default_workers()}))


# ------------------------------------------------------------------------- decisions compared
def all_pairs_near_duplicates(texts: list[str], block: int = 1024) -> np.ndarray:
    """synthqa's earlier near-duplicate check: every question against every earlier one (O(n²))."""
    from rapidfuzz import fuzz, process

    kept = np.ones(len(texts), dtype=bool)
    for start in range(0, len(texts), block):
        stop = min(start + block, len(texts))
        scores = process.cdist(texts[start:stop], texts[:stop], scorer=fuzz.token_sort_ratio, processor=None,
                               score_cutoff=dedupe.NEAR_DUPLICATE_RATIO, dtype=np.uint8, workers=-1)
        for row, j in enumerate(range(start, stop)):
            earlier = np.flatnonzero(scores[row, :j] >= dedupe.NEAR_DUPLICATE_RATIO)
            if kept[earlier].any():
                kept[j] = False
    return ~kept


def survivors(inputs: Path, out: Path, model: str, n: int = 2) -> tuple[list[str], list]:
    """(normalised texts of the questions left for the near-duplicate check, the asked chunks in order) of a
    finished run, rebuilt from its cache in input order."""
    from synthqa.pipeline.inputs import Inputs, stream_inputs
    from synthqa.pipeline.progress import Progress

    config = GenerateConfig(inputs=(inputs,), out=out, workers=1, questions_per_chunk=n)
    template = prompts.load_template(None)
    endpoint = Endpoint(False, model, "http://127.0.0.1:9/v1", "json_schema", CONCURRENCY)
    asked = [c for batch in stream_inputs(config, lambda line: None, Inputs(), Progress(False, print)) for c in batch]
    keys = [cache_key(config, template, endpoint, c) for c in asked]
    with Cache(cache_path(out), readonly=True) as cache:
        answers = cache.get_many(keys)
    seen: dict[str, None] = {}
    for chunk, key in zip(asked, keys):
        answer = answers.get(key)
        for question in (answer.questions if answer is not None and answer.ok else ()):
            checked = chunk.language if template.uses_language else None
            if filters.question_drop_reason(question, chunk.text, checked) is None:
                seen.setdefault(dedupe.normalize_question(question), None)
    return list(seen), asked


def compare_near_duplicates(label: str, texts: list[str]) -> str:
    t0 = time.perf_counter()
    old = all_pairs_near_duplicates(texts)
    t_old = time.perf_counter() - t0
    t0 = time.perf_counter()
    new = dedupe.near_duplicates(lambda: texts)
    t_new = time.perf_counter() - t0
    same = "same decisions" if np.array_equal(old, new) else f"{int((old != new).sum())} decisions differ"
    return (f"{label:<34} {len(texts):>8,} {int(old.sum()):>10,} {int(new.sum()):>10,}  {same}"
            f"  (all pairs {t_old:.1f} s, blocking {t_new:.1f} s)")


def compare_bm25(run: dict) -> str:
    """The written BM25 ranks of the 10k point against bm25s's dense scores of every chunk."""
    import pyarrow.parquet as pq

    _, asked = survivors(run["corpus"], run["out"], run["manifest"]["model"])
    index = {c.id: i for i, c in enumerate(asked)}
    files = run["manifest"]["data_files"]["queries"]
    rows = [r for path in files.values() for r in pq.read_table(run["out"] / path).to_pylist()]
    dense = roundtrip.bm25_ranks([r["text"] for r in rows], [index[r["chunk_id"]] for r in rows],
                                 [c.text for c in asked])
    top = run["manifest"]["roundtrip"]["top_k"]
    equal = sum(r["bm25_rank"] == min(d, top + 1) for r, d in zip(rows, dense))
    return f"BM25 ranks equal to bm25s's dense scores (censored at {top}): {equal:,} of {len(rows):,}"


# ------------------------------------------------------------------------- report
def table(rows: list[dict]) -> str:
    head = (f"{'point':<20} {'chunks':>9} {'count':>6} {'read':>7} {'ask':>7} {'filter':>7} {'near-dup':>8} "
            f"{'round trip':>10} {'split':>6} {'write':>7} {'after ask':>9} {'peak RSS':>9} {'+workers':>9} {'load':>5} {'CPU s':>6} {'workers':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        t = r["timings"]
        after = sum(t.get(k, 0.0) for k in POST_STAGES)
        cpu = f"{r['cpu']:.0f}" if "cpu" in r else "—"
        cell = lambda k: f"{t[k]:.1f}" if k in t else "—"  # noqa: E731
        lines.append(f"{r['name'] + (' +emb' if r['embed'] else ''):<20} {r['chunks']:>9,} {cell('count'):>6} "
                     f"{cell('read'):>7} {cell('ask'):>7} {cell('filter'):>7} {cell('near_duplicates'):>8} "
                     f"{cell('roundtrip'):>10} {cell('split'):>6} {cell('write'):>7} {after:>9.1f} "
                     f"{r['rss'] / 2**20:>7,.0f}MB {r['rss_tree'] / 2**20:>7,.0f}MB {r['load']:>5.1f} {cpu:>6} "
                     f"{r['workers']:>7}")
    return "\n".join(lines)


def stage_peaks(row: dict) -> str:
    """One line: the after-asking process's peak RSS in each stage (its own high-water mark, reset as the stage
    began), so the stage that sets the point's peak is named."""
    cells = ", ".join(f"{key} {mb:,}" for key, mb in row["stage_peaks"].items())
    return f"{row['name']}: peak RSS by stage (MB, the stage's own high-water mark): {cells}"


def verdicts(rows: list[dict]) -> list[str]:
    out = []
    by = {r["name"]: r for r in rows}
    e2e = by.get("100k end to end") or by.get("100k after asking")
    if e2e:
        after = sum(e2e["timings"].get(k, 0.0) for k in POST_STAGES)
        limit = 0.10 * math.ceil(e2e["chunks"] / CONCURRENCY) * LATENCY
        out.append(f"target 1: after asking at {e2e['chunks']:,} chunks {after:.0f} s ≤ 10 % of asking at "
                   f"{LATENCY} s × ceil(N/{CONCURRENCY}) = {limit:.0f} s: {'met' if after <= limit else 'NOT met'}")
    small, big = by.get("100k after asking"), by.get("1000k after asking")
    if big:
        out.append(f"target 2: peak RSS at 1M {big['rss'] / 2**30:.2f} GB ≤ 1.5 GB: "
                   f"{'met' if big['rss'] <= 1.5 * 2**30 else 'NOT met'}")
    if small and big:
        growth = big["rss"] / small["rss"] - 1
        out.append(f"target 3: peak RSS 100k → 1M {small['rss'] / 2**20:.0f} → {big['rss'] / 2**20:.0f} MB "
                   f"({growth:+.0%}) within 20 %: {'met' if abs(growth) <= 0.20 else 'NOT met'}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", default="corpora,10k,100k,1m")
    parser.add_argument("--dir", type=Path, help="work folder (kept, so corpora are generated once)")
    parser.add_argument("--reference", type=Path, help="a finished `synthqa generate corpora` folder whose "
                        "questions (a real model's) the near-duplicate comparison also runs on")
    parser.add_argument("--keep", action="store_true", help="keep each after-asking point's folder (its dataset, to "
                        "compare two versions' data files) and reuse a folder prepared earlier instead of preparing "
                        "its answers again")
    parser.add_argument("--workers", type=int, help="synthqa's --workers (default: the cores)")
    parser.add_argument("--post-ask", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.post_ask:
        return run_post_ask(args.post_ask, args.workers)
    points = args.points.split(",")
    work = args.dir or Path(tempfile.mkdtemp(prefix="synthqa-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"(at start), {psutil.virtual_memory().total / 2**30:.0f} GB memory; work folder {work}")
    rows, notes, dedupe_lines = [], [], []
    if "corpora" in points:
        dedupe_lines += corpora_dedupe(work, args.reference)
    for point, n in (("10k", 10_000), ("100k", 100_000)):
        if point in points:
            rows.append(end_to_end(n, embed=point == "10k", work=work, workers=args.workers))
            print(table(rows[-1:]), flush=True)
            if point == "10k":
                texts, _ = survivors(rows[-1]["corpus"], rows[-1]["out"], rows[-1]["manifest"]["model"])
                dedupe_lines.append(compare_near_duplicates("10k synthetic (fake server)", texts))
                notes.append(compare_bm25(rows[-1]))
    post = [(p, n) for p, n in (("100k", 100_000), ("1m", 1_000_000)) if p in points]
    post += [(p, _size(p[len("post"):])) for p in points if p.startswith("post")]  # e.g. post20k: any size
    for _, n in post:
        folder = work / f"post-{n}"
        if not (args.keep and (folder / "inputs.json").exists() and not (folder / "synthqa.json").exists()):
            prepare_answers(n, folder)
        else:
            clear_after_ask(folder)
        rows.append(post_ask(folder, args.workers))
        print(table(rows[-1:]), flush=True)
        notes.append(stage_peaks(rows[-1]))
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("\nseconds per stage (count and read overlap ask; 'after ask' = filter … write; load = the 1-minute load "
          "average as the point ended; CPU s = the after-asking process's CPU seconds, steadier than wall time "
          "on a shared machine, its worker processes' not counted)\n" + table(rows))
    if dedupe_lines:
        print(f"\n{'near duplicates':<34} {'questions':>8} {'all pairs':>10} {'blocking':>10}")
        print("\n".join(dedupe_lines))
    print("\n".join(["", *notes, *verdicts(rows)]))


def _size(text: str) -> int:
    """"20k" → 20,000; "1m" → 1,000,000."""
    return int(float(text[:-1]) * {"k": 1_000, "m": 1_000_000}[text[-1].lower()])


def corpora_dedupe(work: Path, reference: Path | None) -> list[str]:
    """Near-duplicate decisions on the corpora: the fake server's questions, and a real model's (``reference``)."""
    lines = []
    if reference is not None and (reference / "synthqa.json").exists():
        model = json.loads((reference / "synthqa.json").read_text())["model"]
        texts, _ = survivors(ROOT / "corpora", reference, model)
        lines.append(compare_near_duplicates(f"corpora, {model}", texts))
    out = work / "out-corpora"
    if not (out / "synthqa.json").exists():
        with FakeOpenAI() as fake:
            env = dict(os.environ, OPENAI_API_KEY="sk-bench")
            subprocess.run([sys.executable, "-m", "synthqa", "generate", str(ROOT / "corpora"), "-o", str(out),
                            "--base-url", fake.base_url, "--no-progress", "--no-embed-roundtrip"], env=env,
                           check=True, capture_output=True)
    texts, _ = survivors(ROOT / "corpora", out, MODEL)
    lines.append(compare_near_duplicates("corpora, fake server", texts))
    return lines


if __name__ == "__main__":
    main()
