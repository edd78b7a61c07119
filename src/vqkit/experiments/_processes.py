"""Independent points of a reproduction, trained in single-threaded worker processes.

On a machine with few cores, the small networks of a sweep gain little from a second intra-op
thread, but the points (one method at one size, one seed) are independent: ``W`` processes of
one thread each finish a sweep in about ``1/W`` of the time. :func:`map_in_processes` runs a
module-level function over the points that way, with what every point needs (the data) sent to
each worker once.

Rules that keep this safe and the results unchanged:

- each point must seed itself (``seed_global`` / ``generator`` from its own key), so its result
  does not depend on the process it ran in or on the number of workers;
- workers are started with ``spawn`` (no state inherited from the parent besides the shared
  arguments) and run one torch thread each;
- the first error (or ``KeyboardInterrupt``) in the parent terminates every worker at once and is
  raised; a worker whose parent dies (killed) exits within a second, so no orphan keeps training;
- workers log to stderr at the level of the parent's ``vqkit`` logger, and Python warnings go
  through logging as in the command line.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..progress import progress_bar
from ..training.threads import set_threads

log = logging.getLogger(__name__)

#: What every task of this worker process receives first (set by :func:`_start_worker`).
_SHARED: tuple[Any, ...] = ()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _start_worker(shared: tuple[Any, ...], level: int, parent: int) -> None:
    global _SHARED
    _SHARED = shared
    set_threads(1)
    logging.basicConfig(level=level, format="%(processName)s: %(message)s")
    logging.getLogger("vqkit").setLevel(level)
    logging.captureWarnings(True)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _run_task(task: tuple[int, Callable[..., Any], tuple[Any, ...]]) -> tuple[int, Any]:
    index, function, args = task
    return index, function(*_SHARED, *args)


def map_in_processes(function: Callable[..., Any], jobs: Sequence[tuple[Any, ...]], *,
                     shared: tuple[Any, ...] = (), workers: int = 1,
                     order: Sequence[int] | None = None, desc: str = "points") -> list[Any]:
    """``[function(*shared, *job) for job in jobs]``, the jobs spread over ``workers``
    single-threaded processes.

    Args:
        function: a module-level function (workers import it by name).
        jobs: each job's own arguments.
        shared: arguments every job receives first (for example the data), sent to each
            worker once.
        workers: processes; 1 runs the jobs in this process, with its own thread count. More
            workers than jobs start only one per job.
        order: the indices of ``jobs`` in the order they are started (default: as given);
            start the longest first so that the last one to finish is short.
        desc: the progress bar's label.

    Returns:
        The results, in the order of ``jobs``.

    Raises:
        ValueError: ``workers`` below 1, or ``order`` not a permutation of the jobs' indices.
        Exception: the first error of a job, after every worker is terminated.
    """
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    order = list(range(len(jobs))) if order is None else list(order)
    if sorted(order) != list(range(len(jobs))):
        raise ValueError(f"order must be a permutation of 0..{len(jobs) - 1}, got {order}")
    results: list[Any] = [None] * len(jobs)
    with progress_bar(total=len(jobs), desc=desc, unit="point") as bar:
        if min(workers, len(jobs)) <= 1:
            for i in order:
                results[i] = function(*shared, *jobs[i])
                bar.update()
            return results
        context = multiprocessing.get_context("spawn")
        level = logging.getLogger("vqkit").getEffectiveLevel()
        pool = context.Pool(min(workers, len(jobs)), initializer=_start_worker,
                            initargs=(shared, level, os.getpid()))
        try:
            tasks = [(i, function, tuple(jobs[i])) for i in order]
            for done, (i, result) in enumerate(pool.imap_unordered(_run_task, tasks), 1):
                results[i] = result
                log.info("%s: %d of %d points done", desc, done, len(jobs))
                bar.update()
        finally:
            pool.terminate()
            pool.join()
    return results
