"""The declaration shared by the ANN-search reproductions (not a reproduction itself)."""

from __future__ import annotations

from pathlib import Path

from ..apps.ann.config import BenchmarkConfig
from ..apps.ann.experiment import report_experiment, run_experiment
from ..training.provenance import Run
from .reproduction import Reproduction, RunFunction, Variant


def ann_reproduction(name: str, dataset: str, *, description: str, expected_minutes: float,
                     quick_minutes: float, title: str, settings: BenchmarkConfig,
                     quick_settings: BenchmarkConfig,
                     small_settings: BenchmarkConfig) -> Reproduction:
    """The reproduction ``name``: :func:`vqkit.apps.ann.experiment.run_experiment` on
    ``dataset`` with ``settings`` (``quick_settings`` for the smoke run), writing
    ``<name>.json`` and ``<name>_recall.png`` (``-`` as ``_``); its report section is headed
    ``title``. Its variant ``small`` (``vqkit reproduce NAME --variant small``) runs
    ``small_settings`` and writes ``<name>_small.json`` and ``<name>_small_recall.png``."""
    stem = name.replace("-", "_")
    result_file, plot_file = f"{stem}.json", f"{stem}_recall.png"

    def runner(command: str, full: BenchmarkConfig, out_stem: str) -> RunFunction:
        def run(out_dir: Path, *, quick: bool = False, seed: int = 0,
                allow_dirty: bool = False) -> Path:
            """Run the benchmark (``quick``: a seconds-long smoke version); write JSON + plot."""
            record = Run(command=command + (" --quick" if quick else ""), seeds=[seed],
                         allow_dirty=allow_dirty)
            return run_experiment(dataset, quick_settings if quick else full, out_dir, record,
                                  seed=seed, result_file=f"{out_stem}.json",
                                  plot_file=f"{out_stem}_recall.png")
        return run

    run = runner(f"vqkit reproduce {name}", settings, stem)
    run_small = runner(f"vqkit reproduce {name} --variant small", small_settings, f"{stem}_small")

    def report(results_dir: Path) -> str:
        return report_experiment(results_dir, result_file, plot_file,
                                 f"{title} (`vqkit reproduce {name}`)")

    small = Variant(f"the small sizes for quick runs (writes {stem}_small.json)", run_small)
    return Reproduction(name, description, expected_minutes, (result_file,), run, report,
                        config=BenchmarkConfig, quick_minutes=quick_minutes,
                        variants={"small": small})
