"""Every quantizer, vqkit's and vector-quantize-pytorch's, in the same network, on the same
data, with the same budget: ``vqkit reproduce quantizer-bench``.

The question it answers: if this layer replaces the one in my tokenizer, do I get a better
model, and at what cost? One small convolutional autoencoder per data set
(:class:`~._autoencoder.ConvAutoencoder`: two stride-2 convolutions with residual blocks down
to a 7x7 (Fashion-MNIST, 28x28 grey) or 8x8 (photo patches, 32x32 RGB, split by photo) grid of
D = 16 latents, and back) is trained with each quantizer of :mod:`._bench_rows` in its
bottleneck, at about 1,024 and about 16,384 codes (10 and 14 bits per latent), with the same
initial network weights, batches, optimiser (Adam, cosine decay), steps and seeds; only the
quantizer changes. Test metrics: PSNR of the mean MSE, mean SSIM (scikit-image), codebook
usage and perplexity over the test latents (the mean over codebooks for residual VQ), each as
the mean and range over the seeds; curves of PSNR and usage against steps on the first test
images; and the cost, measured alone in a fresh process per quantizer
(:mod:`._bench_cost`): seconds per training step of the whole network, the peak memory of
that step, and the quantizer's forward + backward alone. Training seconds per step of the
runs themselves are recorded too, but two of them share the machine.

The budget, 300 Adam steps of 16 images (4,800 images, a twelfth of an epoch of Fashion-MNIST),
is what fits the 90 minutes on 2 cores that the run is allowed with the peer in it: at 16,384
codes a point of the peer's ``VectorQuantize`` (an N x K one-hot and einsum) took about 1.2 s
per training step of 16 images, curves included, in a worker beside another (its ``LFQ``, an
N x 2^14 table, is heavier still), so a first full run with 600 steps was on course for well
over two hours and was stopped. So the PSNRs are those of short training: the curves show how
far each row has come, and the ranking may change with longer training.

Run: ``vqkit reproduce quantizer-bench --threads 2`` (the points in two single-threaded worker
processes, then the costs one at a time): 77 minutes from a clean clone at c9d82c0 on the
shared 2-core machine, so about 154 minutes of single-threaded work (``expected_minutes``).
``--quick`` is the harness check of the default test run: two quantizers, one size, a tiny
network, 200 steps.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..reporting import format_number, markdown_table
from ..training.provenance import Run, write_json
from . import _bench_plots as plots
from ._bench_cost import measure_costs
from ._bench_rows import PEER_EQUIVALENT, ROWS, VQKIT
from ._bench_train import NAME, BenchConfig, held_out_images, shown, train_point
from ._processes import map_in_processes
from .reproduction import Reproduction, json_report

RESULT_FILE = "quantizer_bench.json"
#: vqkit's default recipe: the row the acceptance compares with vqkit's best.
DEFAULT_ROW = "NSVQ + replacement (default)"
CONFIG = BenchConfig()
QUICK = replace(CONFIG, steps=200, batch=8, hidden=8, sizes=(1024,),
                rows=(DEFAULT_ROW, "VQP k-means + EMA 0.99 + STE"), eval_every=100,
                curve_images=64, test_images=256, cost_steps=2)
PLOTS = {"psnr_curves": "quantizer_bench_psnr_steps.png",
         "usage_curves": "quantizer_bench_usage_steps.png",
         "psnr_bars": "quantizer_bench_psnr.png"}


def _points(cfg: BenchConfig) -> list[tuple[str, str, int, int]]:
    """(data set, row, codes, seed) of every training run, in the JSON's order."""
    return [(d, r, k, s) for d in cfg.datasets for k in cfg.sizes for r in cfg.rows
            for s in cfg.seeds]


def _summary(points: list[dict[str, Any]], costs: list[dict[str, Any]]
             ) -> list[dict[str, Any]]:
    """One row per (data set, size, quantizer): the seeds' mean and range, and the cost."""
    out = []
    for cost in costs:
        key = (cost["dataset"], cost["codes"], cost["row"])
        runs = [p for p in points if (p["dataset"], p["codes"], p["row"]) == key]
        psnr = [p["psnr"] for p in runs]
        out.append({
            "dataset": key[0], "codes": key[1], "row": key[2], "library": runs[0]["library"],
            "seeds": len(runs), "psnr_mean": statistics.fmean(psnr), "psnr_min": min(psnr),
            "psnr_max": max(psnr),
            **{f"{m}_mean": statistics.fmean(p[m] for p in runs)
               for m in ("ssim", "usage", "perplexity")},
            "usage_min": min(p["usage"] for p in runs),
            "train_seconds_per_step": statistics.fmean(p["train_seconds_per_step"]
                                                       for p in runs),
            **{k: cost[k] for k in ("step_seconds", "peak_step_mib", "quantizer_seconds")}})
    return out


def _comparisons(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (data set, size): vqkit's best against the peer's best, the default against
    vqkit's best, and the step-time ratio of each vqkit row to its peer equivalent."""
    out = []
    for dataset, codes in sorted({(s["dataset"], s["codes"]) for s in summary}):
        rows = {s["row"]: s for s in summary if (s["dataset"], s["codes"]) == (dataset, codes)}
        ours = [s for s in rows.values() if s["library"] == VQKIT]
        theirs = [s for s in rows.values() if s["library"] != VQKIT]
        entry: dict[str, Any] = {"dataset": dataset, "codes": codes}
        if ours and theirs:
            best, peer = (max(group, key=lambda s: s["psnr_mean"]) for group in (ours, theirs))
            entry.update(vqkit_best=best["row"], vqkit_best_psnr=best["psnr_mean"],
                         peer_best=peer["row"], peer_best_psnr=peer["psnr_mean"],
                         margin_db=best["psnr_mean"] - peer["psnr_mean"])
            if DEFAULT_ROW in rows:
                entry.update(default_psnr=rows[DEFAULT_ROW]["psnr_mean"],
                             default_gap_db=best["psnr_mean"] - rows[DEFAULT_ROW]["psnr_mean"],
                             default_usage=rows[DEFAULT_ROW]["usage_mean"])
        entry["step_time_over_peer"] = {
            ours_name: rows[ours_name]["step_seconds"] / rows[peer_name]["step_seconds"]
            for ours_name, peer_name in PEER_EQUIVALENT.items()
            if ours_name in rows and peer_name in rows}
        out.append(entry)
    return out


def _plot(out_dir: Path, points: list[dict[str, Any]], summary: list[dict[str, Any]],
          cfg: BenchConfig) -> dict[str, str]:
    files = {}
    files["psnr_curves"] = plots.curves(points, "psnr", out_dir / PLOTS["psnr_curves"],
                                        ylabel="test PSNR (dB)").name
    files["usage_curves"] = plots.curves(points, "usage", out_dir / PLOTS["usage_curves"],
                                         ylabel="codebook usage").name
    files["psnr_bars"] = plots.psnr_bars(summary, out_dir / PLOTS["psnr_bars"]).name
    codes = max(cfg.sizes)
    for dataset in cfg.datasets:
        recons = {p["row"]: np.asarray(p["shown"], dtype=np.float32) for p in points
                  if p["dataset"] == dataset and p["codes"] == codes
                  and p["seed"] == cfg.seeds[0]}
        originals = shown(held_out_images(dataset, cfg.test_images)).numpy()
        name = f"quantizer_bench_recons_{dataset}.png"
        files[f"recons_{dataset}"] = plots.reconstructions(
            originals, recons, out_dir / name,
            title=f"{dataset}, {codes} codes, seed {cfg.seeds[0]}: test images").name
    return files


def run(out_dir: Path, *, quick: bool = False, seed: int = 0, allow_dirty: bool = False
        ) -> Path:
    """Train every (data set, size, quantizer, seed), measure the costs; write
    ``out_dir/quantizer_bench.json`` and the plots. ``seed`` offsets the seeds of the config.

    ``torch.get_num_threads()`` (``vqkit reproduce --threads N``) sets the number of
    single-threaded worker processes of the training runs.
    """
    cfg = QUICK if quick else CONFIG
    cfg = replace(cfg, seeds=tuple(seed + s for s in cfg.seeds))
    record = Run(command=f"vqkit reproduce {NAME}" + (" --quick" if quick else ""),
                 seeds=list(cfg.seeds), allow_dirty=allow_dirty)
    jobs = [(*point, cfg) for point in _points(cfg)]
    workers = min(torch.get_num_threads(), len(jobs))
    # the slowest first: the 16k-code peer layers, then the other 16k points
    order = sorted(range(len(jobs)), key=lambda i: (-jobs[i][2], ROWS[jobs[i][1]].library == VQKIT))
    points = map_in_processes(train_point, jobs, workers=workers, order=order, desc=NAME)
    costs = measure_costs([(d, r, k) for d in cfg.datasets for k in cfg.sizes
                           for r in cfg.rows], cfg)
    summary = _summary(points, costs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = _plot(out_dir, points, summary, cfg)
    for p in points:
        del p["shown"]
    path = out_dir / RESULT_FILE
    write_json(path, record.record(
        {"points": points, "summary": summary, "comparisons": _comparisons(summary),
         "plots": files},
        config=asdict(cfg), quick=quick, threads=1, workers=workers))
    return path


def _render(data: dict[str, Any]) -> str:
    results, cfg = data["results"], data["config"]
    lines = [f"## Every quantizer in one network (`vqkit reproduce {NAME}`)", "",
             f"`results/{RESULT_FILE}`, command `{data['command']}`, commit "
             f"`{data['git_commit']}`. Conv autoencoder ({cfg['hidden']} channels, latents of "
             f"D = {cfg['dim']}), {cfg['steps']} Adam steps of {cfg['batch']} images (lr "
             f"{cfg['lr']}, cosine decay), seeds {cfg['seeds']}; test PSNR as the mean over "
             "the seeds (their range in brackets). Costs measured alone, one thread: seconds "
             "per training step of the whole network, the peak memory of that step, the "
             "quantizer's forward + backward.", ""]
    for entry in results["comparisons"]:
        rows = [s for s in results["summary"]
                if (s["dataset"], s["codes"]) == (entry["dataset"], entry["codes"])]
        rows.sort(key=lambda s: -s["psnr_mean"])
        lines += [f"### {entry['dataset']}, about {entry['codes']} codes", ""]
        lines += markdown_table(
            ["quantizer", "library", "PSNR dB", "SSIM", "usage %", "perplexity",
             "step ms", "peak MiB", "quantizer ms"],
            [[s["row"], s["library"],
              f"{format_number(s['psnr_mean'], 2)} [{format_number(s['psnr_min'], 2)}, "
              f"{format_number(s['psnr_max'], 2)}]",
              format_number(s["ssim_mean"], 3), format_number(100 * s["usage_mean"], 1),
              format_number(s["perplexity_mean"], 0), format_number(1e3 * s["step_seconds"], 1),
              format_number(s["peak_step_mib"], 1),
              format_number(1e3 * s["quantizer_seconds"], 2)] for s in rows])
        if "margin_db" in entry:
            lines += ["", f"vqkit's best ({entry['vqkit_best']}) minus the peer's best "
                      f"({entry['peer_best']}): {format_number(entry['margin_db'], 2)} dB."]
        lines.append("")
    return "\n".join(lines)


REPRODUCTION = Reproduction(
    NAME, "every quantizer of vqkit and vector-quantize-pytorch in one conv autoencoder, "
    "Fashion-MNIST and photo patches, 1k and 16k codes",
    expected_minutes=154.0, quick_minutes=0.9, result_files=(RESULT_FILE,), run=run,
    report=json_report(NAME, RESULT_FILE, _render), config=BenchConfig)
