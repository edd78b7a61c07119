"""The cost of one quantizer in the benchmark network, measured alone in a fresh process.

:func:`measure_costs` runs :func:`measure_cost` for each (data set, row, size) in its own
spawned process, one after another, with one torch thread, so that nothing else runs beside
it: peak memory is the rise of the process's peak resident set size (``VmHWM``) during the
first training step of the whole network (forward, backward, Adam step; including a data
initialisation that runs on that step) over the resident size after the network and the
batch were built; the step time is the median of the next ``cost_steps`` steps; the
quantizer's own forward + backward is timed on a latent grid of the same shape, alone.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..progress import progress_bar
from ..training.threads import set_threads


def process_memory(field: str) -> int:
    """A memory field of ``/proc/self/status`` in bytes (``"VmRSS"``, ``"VmHWM"``, ...).

    Raises:
        RuntimeError: the field is not there (not Linux).
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _median_seconds(step: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_cost(dataset: str, row: str, codes: int, cfg: Any) -> dict[str, Any]:
    """Peak memory and time of a training step of the network with ``row``'s quantizer, and
    the quantizer's forward + backward alone (run in a fresh process: see the module)."""
    from ._bench_train import DATASETS, build_model

    set_threads(1)
    _, side, channels = DATASETS[dataset]
    model = build_model(row, codes, dataset, 0, cfg).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(cfg.batch, channels, side, side, generator=g)

    def step() -> None:
        recon, out = model(images)
        loss = F.mse_loss(recon, images) + out.loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    base = process_memory("VmRSS")
    step()
    peak = process_memory("VmHWM") - base
    step_seconds = _median_seconds(step, cfg.cost_steps)
    latents = torch.randn(cfg.batch, side // 4, side // 4, cfg.dim, generator=g)
    latents.requires_grad_()

    def quantizer_step() -> None:
        out = model.vq(latents)
        (out.quantized.sum() + out.loss).backward()

    return {"dataset": dataset, "row": row, "codes": codes, "peak_step_mib": peak / 2**20,
            "step_seconds": step_seconds,
            "quantizer_seconds": _median_seconds(quantizer_step, cfg.cost_steps)}


def measure_costs(points: Sequence[tuple[str, str, int]], cfg: Any) -> list[dict[str, Any]]:
    """:func:`measure_cost` of each ``(dataset, row, codes)``, each in a fresh process, one at a
    time."""
    results = []
    context = get_context("spawn")
    with progress_bar(total=len(points), desc="quantizer-bench costs", unit="point") as bar:
        for dataset, row, codes in points:
            with ProcessPoolExecutor(1, mp_context=context) as pool:
                results.append(pool.submit(measure_cost, dataset, row, codes, cfg).result())
            bar.update(1)
    return results
