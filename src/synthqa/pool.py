"""Worker processes for the stages that use the machine's cores (``--workers``): reading the inputs, and
after asking judging the questions (filters) and ranking them (round trip).

``ordered_map`` is ``map`` over a process pool with results in input order, so what a stage decides never
depends on the number of workers. A window of ``WINDOW_PER_WORKER`` tasks per worker bounds what waits in
memory; the workers are killed as soon as the caller stops (an early end, an error, Ctrl-C), and a worker
that dies is one clear error, not a hang. Workers start from a fork server (never forked from the threaded
main process), so callers keep small inputs in their own thread, where starting workers costs more than it
saves.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import select
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .errors import WorkerError

WINDOW_PER_WORKER = 2
SIGNAL_CHECK_S = 0.2  # how often a wait for a worker looks for a Ctrl-C delivered to another thread


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


class Stopped(Exception):
    """``ordered_map``'s ``stop`` event was set: the map ended early, its workers killed."""


def ordered_map(fn: Callable, tasks: Iterable, workers: int, died: Callable[[Any], Exception],
                preload: Sequence[str] = (), stop: threading.Event | None = None) -> Iterator:
    """``map(fn, tasks)`` over ``workers`` processes (in this thread when 1), results in order.

    A worker that dies (killed for memory, a crash in a C library) raises ``died(task)``, the error naming the
    oldest task still waited for. ``preload``: modules the fork server imports once for every worker. ``stop``:
    set by another thread, it ends the map with ``Stopped`` within ``SIGNAL_CHECK_S`` (Ctrl-C reaches only
    the main thread; a map running elsewhere is stopped this way, so no worker outlives the run).
    """
    if workers <= 1:
        yield from map(fn, tasks)
        return
    pool = ProcessPoolExecutor(workers, mp_context=_context(preload), initializer=_worker_started,
                               initargs=(os.getpid(),))
    window: deque = deque()
    finished = False
    try:
        for task in tasks:
            try:
                with _ctrl_c_deferred():  # a worker being started must be on the list of those killed on Ctrl-C
                    future = pool.submit(fn, task)
                window.append((task, future))
            except BrokenProcessPool:  # a worker died while the window's tasks were all done
                raise died(task) from None
            if len(window) >= WINDOW_PER_WORKER * workers:
                yield _result(*window.popleft(), died, stop, pool)
        while window:
            yield _result(*window.popleft(), died, stop, pool)
        finished = True
    finally:
        if not finished:  # the caller stopped early (--limit, an error, Ctrl-C): running tasks are dropped at once
            _kill(pool)
        pool.shutdown(wait=True, cancel_futures=True)


def worker_died(doing: str) -> Callable[[Any], WorkerError]:
    """``ordered_map``'s ``died`` for a stage after asking: one line naming what the process was doing."""
    return lambda task: WorkerError(f"a process {doing} died (out of memory, or a crash in a C library): rerun "
                                    f"with fewer --workers (1 does it in this process)")


def _result(task, future, died: Callable[[Any], Exception], stop: threading.Event | None,
            pool: ProcessPoolExecutor):
    # Waited for in short slices: the pool's own threads leave the kernel free to deliver a Ctrl-C to one of
    # them, and then a main thread blocked on the future for good would never run Python's handler.
    while True:
        if stop is not None and stop.is_set():
            raise Stopped
        try:
            return future.result(timeout=SIGNAL_CHECK_S)
        except FutureTimeout:
            if _a_worker_died(pool):
                # The pool notices a dead worker itself, unless it died writing its result: then the pool's
                # thread waits for the rest of that message for ever, and every other worker for the pipe's
                # lock the dead one held. The map has failed either way; end it so the pool says so.
                _kill(pool)
        except BrokenProcessPool:
            raise died(task) from None


def _workers(pool: ProcessPoolExecutor) -> list:
    return list((getattr(pool, "_processes", None) or {}).values())


def _a_worker_died(pool: ProcessPoolExecutor) -> bool:
    processes = _workers(pool)
    try:  # a sentinel is ready once its process has ended; reading none of them leaves the pool's view as it is
        return bool(processes) and bool(multiprocessing.connection.wait([p.sentinel for p in processes], 0))
    except (OSError, ValueError):  # the pool closed them: it is shutting down, and knows
        return False


def _kill(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's workers and close this process's copy of the result pipe's write end.

    A worker killed while writing its result leaves half a message in that pipe, and the pool's thread reading
    it would wait for the rest for ever (and shutdown, and the interpreter's exit, with it). With every write
    end closed, the read ends at end of file and the thread gives the pool up as broken."""
    for process in _workers(pool):
        process.kill()
    writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)
    if writer is not None:
        writer.close()


def _worker_started(run: int) -> None:
    """In each worker: tqdm's lock a thread lock, and an end with the run's process ``run``.

    tqdm's default lock also makes a multiprocessing lock, a named semaphore that a worker killed on an early
    stop never releases: the resource tracker's "leaked semaphore" warning after the run (libraries such as
    bm25s create a tqdm bar even when it is hidden)."""
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    threading.Thread(target=_end_with, args=(run,), name="synthqa-run-watch", daemon=True).start()


def _end_with(run: int) -> None:
    """Exit this worker once process ``run`` has ended, however it ended. A run killed outright (SIGKILL, the
    OOM killer) cannot stop its workers, and they would wait for its tasks, or to write a result nobody reads,
    for ever (a worker's parent is the fork server, so the kernel's parent-death signal would not do)."""
    try:
        handle = os.pidfd_open(run)
    except ProcessLookupError:  # already gone
        os._exit(1)
    except (AttributeError, OSError):  # no pidfd (macOS, a kernel before 5.3): look once a second (not at the
        while _alive(run):              # parent: the fork server lives as long as any worker holds its pipe)
            time.sleep(1.0)
        os._exit(1)
    watch = select.poll()
    watch.register(handle, select.POLLIN)
    watch.poll()  # readable once the process has ended
    os._exit(1)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a pid reused within the second between looks would pass for it)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or reused by another user's process
        return False
    return True


@contextlib.contextmanager
def _ctrl_c_deferred() -> Iterator[None]:
    """Ctrl-C (or SIGTERM, which the CLI turns into one) during the block takes effect as the block ends.

    Starting a worker is not atomic: interrupted half-way, a worker runs on that the pool does not know (and
    so never kills), and it fails with a traceback once the pool's semaphores are gone. Only the main thread
    runs signal handlers; elsewhere, or with SIGINT ignored, the block just runs."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return
    received: list = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            previous(signal.SIGINT, received[-1])


def _context(preload: Sequence[str]):
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        if preload:  # takes effect when the fork server starts (the first pool of the process)
            context.set_forkserver_preload(list(preload))
        return context
    return multiprocessing.get_context("spawn")
