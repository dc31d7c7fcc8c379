"""What a run shows while it goes: bars that know their total from the start (so tqdm gives an ETA as soon
as it has a rate), and after each stage one line saying what it did and how long it took."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator

from tqdm.auto import tqdm

Log = Callable[[str], None]


class Stage:
    """A stage being timed; set ``detail`` to what it did, for its closing line."""

    def __init__(self, name: str) -> None:
        self.name, self.detail = name, ""


class Progress:
    """Bars and stage lines on stderr (none of either when disabled); ``seconds`` holds every stage's time."""

    def __init__(self, enabled: bool, log: Log) -> None:
        self.enabled, self.log = enabled, log
        self.seconds: dict[str, float] = {}

    def bar(self, desc: str, total: int | None = None, unit: str = "it", unit_scale: bool = False) -> tqdm:
        """A bar on stderr; ``total`` may be set (or corrected) later. ``unit_scale``: counts as 1.2M, 3.4G."""
        return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, disable=not self.enabled,
                    file=sys.stderr, dynamic_ncols=True, mininterval=0.5, smoothing=0.05)

    @contextlib.contextmanager
    def stage(self, name: str, key: str | None = None) -> Iterator[Stage]:
        """Time the block as stage ``key`` (default ``name``); then log "name: detail (N.N s)" unless it failed."""
        stage = Stage(name)
        started = time.perf_counter()
        try:
            yield stage
        except BaseException:
            self.seconds[key or name] = self.seconds.get(key or name, 0.0) + time.perf_counter() - started
            raise
        self.done(name, key, started, stage.detail)

    def done(self, name: str, key: str | None, started: float, detail: str = "") -> None:
        """Record a stage that began at ``started`` (``time.perf_counter()``) and log its line."""
        seconds = time.perf_counter() - started
        self.seconds[key or name] = self.seconds.get(key or name, 0.0) + seconds
        if self.enabled:
            self.log(f"{name}: {detail or 'done'} ({seconds:.1f} s)")


def count_done_before(bar: tqdm, n: int, restart_clock: bool) -> None:
    """Advance ``bar`` by ``n`` items done before this run (answers from the cache): counted in its position,
    not in its rate, so a resumed run's ETA comes from the work it does now. ``restart_clock`` while no live
    work has started: the time spent finding cached items is not work to extrapolate from."""
    if bar.disable:
        bar.n += n
        return
    now = bar._time()  # the bar's own clock (a test's, in tests)
    bar.n += n
    bar.initial += n  # tqdm's average rate is (n - initial) / elapsed
    bar.last_print_n += n  # and its smoothed rate is fed (n - last_print_n) / (time since the last print)
    if restart_clock:
        start_clock(bar)
    # shown twice a second at most, on a mark of its own: last_print_t is the live prints' (the rate's) mark
    if now - getattr(bar, "_cached_shown_t", -math.inf) >= bar.mininterval:
        bar._cached_shown_t = now
        bar.refresh()


def start_clock(bar: tqdm) -> None:
    """Start ``bar``'s clock now if it has counted no live work yet (only items done before this run): the
    time until now, an embedded model's server starting, is not work to extrapolate from."""
    if not bar.disable and bar.n == bar.initial:
        bar.start_t = bar.last_print_t = bar._time()


class TotalFirstBar:
    """A bar for a library's ``progress(step, n)`` callback that counts its work before doing it: opened on
    ``("total", n)`` (none for no work), advanced by any other step's ``n``; closed as the ``with`` block ends."""

    def __init__(self, progress: Progress, desc: str, unit: str) -> None:
        self.progress, self.desc, self.unit = progress, desc, unit
        self.bar: tqdm | None = None

    def __call__(self, step: str, n: int) -> None:
        if step == "total":
            self.close()
            self.bar = self.progress.bar(self.desc, n, self.unit, unit_scale=n >= 100_000) if n else None
        elif self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> TotalFirstBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

