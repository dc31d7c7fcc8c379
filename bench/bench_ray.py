"""What Ray costs and gives on one machine: a local instance's start and memory, then `synthqa generate` with
and without `--ray` over the corpora against a fake server with fixed latency (the same dataset, checked).

    .venv/bin/python bench/bench_ray.py [--latency 0.5] [--concurrency 16] [--limit 200] [--ray-tasks 2]

Prints the start-up figures of ``ray.init(num_cpus=2)`` (seconds, the proportional memory of the driver and
the processes Ray starts), then one row per run: wall time, the asking stage's seconds against the physical
limit ceil(N / requests in flight) × latency, the CLI's peak RSS (the driver only: Ray's processes are not
its children's) and whether both runs wrote the same data files.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fakeserver import FakeOpenAI


def _pss_mb(root: int) -> tuple[float, int]:
    """Proportional set size of ``root`` and every process below it, and how many there are (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    total, count, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            rollup = (Path("/proc") / str(pid) / "smaps_rollup").read_text()
        except OSError:
            continue
        total += next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
        count += 1
    return total / 1024, count


def startup() -> None:
    import ray
    import ray.data

    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    started = time.perf_counter() - t0
    ray.data.DataContext.get_current().enable_progress_bars = False
    t0 = time.perf_counter()
    assert sum(row["x"] for row in ray.data.range(100).map(lambda row: {"x": row["id"]}).iter_rows()) == 4950
    first = time.perf_counter() - t0
    pss, processes = _pss_mb(os.getpid())
    t0 = time.perf_counter()
    ray.shutdown()
    print(f"ray {ray.__version__}: ray.init(num_cpus=2) {started:.1f} s, first 100-row dataset {first:.1f} s, "
          f"shutdown {time.perf_counter() - t0:.1f} s; driver + {processes - 1} Ray processes: PSS {pss:.0f} MB")


def run(args, out: Path, fake: FakeOpenAI, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "synthqa", "generate", str(ROOT / "corpora"), "-o", str(out), "--base-url",
           fake.base_url, "--concurrency", str(args.concurrency), "--limit", str(args.limit), "--no-progress",
           "--no-embed-roundtrip", *extra]
    before = fake.requests
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=dict(os.environ, OPENAI_API_KEY="sk-bench"), stdout=subprocess.DEVNULL,
                                stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            sys.exit(f"generate failed ({status}): {err.read()[-2000:]}")
    manifest = json.loads((out / "synthqa.json").read_text())
    return {"wall": wall, "ask": manifest["timings"]["ask"], "requests": fake.requests - before,
            "rss": usage.ru_maxrss / 1024, "files": manifest["data_files"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds the fake model takes per request")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--ray-tasks", type=int, default=2)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    startup()
    rows = []
    with FakeOpenAI(latency=args.latency) as fake, tempfile.TemporaryDirectory() as tmp:
        plain = run(args, Path(tmp) / "plain", fake, [])
        rows.append(("generate", args.concurrency, plain))
        on_ray = run(args, Path(tmp) / "ray", fake, ["--ray", "--ray-tasks", str(args.ray_tasks)])
        rows.append((f"generate --ray --ray-tasks {args.ray_tasks}", args.concurrency * args.ray_tasks, on_ray))
    print(f"\n{args.limit} chunks, fake latency {args.latency} s\n")
    print("| run | in flight | requests | wall s | ask s | limit s | peak RSS of the CLI MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, flight, row in rows:
        limit = math.ceil(row["requests"] / flight) * args.latency if row["requests"] else 0.0
        print(f"| {name} | {flight} | {row['requests']} | {row['wall']:.1f} | {row['ask']:.1f} | {limit:.1f} | "
              f"{row['rss']:.0f} |")
    print(f"\nsame data files: {plain['files'] == on_ray['files']}")


if __name__ == "__main__":
    main()
