"""Run a function on N real CPU processes joined by a gloo process group, with a deadline.

:class:`Workers` spawns N processes once (``torch.multiprocessing``, spawn start method) on a
free localhost port and sends them tasks: ``workers.run(fn, *args)`` calls ``fn(rank, world,
*args)`` on every rank and returns the per-rank results. A task that raises on any rank, or
does not finish before ``timeout`` seconds (a hang in a collective), kills the processes and
fails the test with the worker's traceback; the next task starts fresh processes. Starting
processes costs a few seconds (each imports torch), so the tests share one pool.

``fn`` must be a module-level function (it is pickled by name) and its results picklable.
"""

from __future__ import annotations

import os
import queue
import socket
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

#: Seconds a task may take before it counts as a hang.
DEFAULT_TIMEOUT = 60.0
#: Seconds a collective waits for a missing peer before gloo raises (after the test failed).
GROUP_TIMEOUT = timedelta(seconds=90)


class WorkerError(AssertionError):
    """A task raised on a rank, or did not finish in time."""


def free_port() -> int:
    """A TCP port on localhost that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_group() -> None:
    """Join the gloo group this worker was started for (idempotent; call it inside a task
    to build a model *before* the group exists)."""
    if dist.is_initialized():
        return
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{os.environ['VQKIT_TEST_PORT']}",
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        timeout=GROUP_TIMEOUT,
    )


def _worker(rank: int, world: int, port: int, tasks: Any, results: Any) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), VQKIT_TEST_PORT=str(port),
        GLOO_SOCKET_IFNAME="lo",
    )
    while True:
        task = tasks.get()
        if task is None:
            break
        fn, args, init = task
        try:
            if init:
                init_group()
            results.put((rank, True, fn(rank, world, *args)))
        except BaseException:  # noqa: BLE001 - reported to the parent, which fails the test
            results.put((rank, False, traceback.format_exc()))


class Workers:
    """A pool of ``world_size`` processes in one gloo group (see the module docstring)."""

    def __init__(self, world_size: int = 2) -> None:
        self.world_size = world_size
        self._procs: list[Any] = []

    def start(self) -> None:
        ctx = mp.get_context("spawn")
        port = free_port()
        self._results = ctx.Queue()
        self._tasks = [ctx.Queue() for _ in range(self.world_size)]
        self._procs = [
            ctx.Process(target=_worker, args=(r, self.world_size, port, self._tasks[r],
                                               self._results), daemon=True)
            for r in range(self.world_size)
        ]
        for p in self._procs:
            p.start()

    @property
    def alive(self) -> bool:
        return bool(self._procs) and all(p.is_alive() for p in self._procs)

    def run(self, fn: Callable[..., Any], *args: Any, timeout: float = DEFAULT_TIMEOUT,
            init: bool = True) -> list[Any]:
        """``[fn(0, world, *args), fn(1, world, *args), ...]``, computed on the ranks.

        Raises:
            WorkerError: a rank raised (its traceback is the message) or the deadline passed.
        """
        if not self.alive:
            self.close()
            self.start()
        for q in self._tasks:
            q.put((fn, args, init))
        out: dict[int, Any] = {}
        deadline = time.monotonic() + timeout
        while len(out) < self.world_size:
            left = deadline - time.monotonic()
            try:
                rank, ok, value = self._results.get(timeout=max(left, 0.01))
            except queue.Empty:
                self.close(kill=True)
                missing = sorted(set(range(self.world_size)) - set(out))
                raise WorkerError(
                    f"{fn.__name__} did not finish within {timeout:.0f} s on ranks {missing} "
                    "(a hang in a collective?)"
                ) from None
            if not ok:
                self.close(kill=True)
                raise WorkerError(f"{fn.__name__} failed on rank {rank}:\n{value}")
            out[rank] = value
        return [out[r] for r in range(self.world_size)]

    def close(self, kill: bool = False) -> None:
        """Stop the processes (politely, or by SIGKILL after a failure)."""
        if not self._procs:
            return
        if not kill:
            for q in self._tasks:
                q.put(None)
            for p in self._procs:
                p.join(timeout=2)  # then killed below: exiting a gloo group can linger
        for p in self._procs:
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
        self._procs = []

    def __enter__(self) -> Workers:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(kill=exc[0] is not None)
