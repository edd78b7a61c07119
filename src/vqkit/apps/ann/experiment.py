"""Shared body of the ``ann-glove`` and ``ann-fashion`` reproductions."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ...training.provenance import Run, read_json
from ...training.seed import offset_generator
from .benchmark import run_benchmark
from .config import BenchmarkConfig
from .datasets import load_split
from .faiss_bridge import require_faiss
from .report import markdown, write_results

logger = logging.getLogger(__name__)

def run_experiment(dataset: str, config: BenchmarkConfig, out_dir: Path, run: Run, *,
                   seed: int, result_file: str, plot_file: str) -> Path:
    """Load ``dataset``, run the benchmark with ``config`` and write JSON + plot to ``out_dir``
    with the provenance of ``run`` (constructed by the caller when the run started)."""
    faiss = require_faiss()
    # FAISS uses as many threads as torch: the --threads of the command (set by its caller).
    faiss.omp_set_num_threads(torch.get_num_threads())
    data = load_split(dataset, config.split, generator=offset_generator(seed))

    def save_partial(partial: dict) -> None:
        write_results(Path(out_dir), result_file, partial, run)

    payload = run_benchmark(data, config, seed=seed, on_entry=save_partial)
    return write_results(Path(out_dir), result_file, payload, run, plot_file)


def report_experiment(results_dir: Path, result_file: str, plot_file: str, title: str) -> str:
    """The Markdown section for one results file (and its plot, when present)."""
    path = Path(results_dir) / result_file
    text = markdown(read_json(path), title, f"results/{result_file}")
    if (Path(results_dir) / plot_file).is_file():
        text += f"\n![Recall@T curves](../results/{plot_file})\n"
    return text
