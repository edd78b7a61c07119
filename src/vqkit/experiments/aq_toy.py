"""The toy experiment of [vali2023rpavq] (Fig. 2-3): AVQ vs RVQ vs PVQ trained with NSVQ.

D = 64, M = 4 codebooks, 12 to 40 bits per vector (B/4 bits per codebook), every quantizer
trained by one noise substitution on the composite vector (Adam, U(-1/K, 1/K) init, dead-code
replacement as in §4.5) and evaluated by the mean squared error ``mean ||x - x_hat||^2`` (summed
over the 64 dimensions) on held-out vectors.

Data (the paper's generator is unknown, §4.7):

- ``uncorrelated``: ``x ~ N(0, I_64)``.
- ``correlated``: ``x = W z`` with ``z ~ N(0, I_16)`` and a fixed ``W`` (64 x 16, entries
  ``N(0, 1/16)``, drawn from seed 1234): a rank-16 Gaussian whose correlations span all 64
  dimensions, so every contiguous block of product VQ sees (redundantly) the same latent.

The paper's absolute values use unknown units and normalisation; compare orderings and the
relative fall with the bitrate, not the absolute numbers.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..estimators import NoiseSubstitution
from ..quantizers.build import build_quantizer
from ..quantizers.encoders import BeamSearch
from ..reporting import markdown_table
from ..training.batches import Sampler
from ..training.loop import Trainer
from ..training.objective import summed_error_objective
from ..training.provenance import Run, read_json, write_json
from ..training.schedule import Replacement, Schedule
from ..training.seed import offset_generator, offset_seed_global
from .reproduction import Reproduction, no_results

log = logging.getLogger(__name__)

NAME = "aq-toy"
DESCRIPTION = "[vali2023rpavq] toy: AVQ/RVQ/PVQ trained with NSVQ, MSE at 12-40 bits (D=64, M=4)"
RESULT_FILE = "aq_toy.json"
PLOT_FILE = "aq_toy.png"

DIM, NUM_CODEBOOKS, LATENT = 64, 4, 16
METHODS = ("AVQ", "RVQ", "PVQ")
DATASETS = ("correlated", "uncorrelated")

#: The paper's toy MSE ([vali2023rpavq] Fig. 2-3; [vali2023rpavqcode] results, units unknown).
PAPER: dict[str, dict[str, list[float]]] = {
    "correlated": {
        "AVQ": [5.012, 3.991, 2.840, 2.024, 1.439, 1.018, 0.721, 0.510],
        "RVQ": [6.223, 4.648, 3.444, 2.487, 1.790, 1.274, 0.901, 0.633],
        "PVQ": [10.196, 8.893, 7.813, 6.888, 6.097, 5.411, 4.807, 4.269],
    },
    "uncorrelated": {
        "AVQ": [116.03, 109.64, 101.17, 92.69, 84.51, 76.76, 69.46, 62.56],
        "RVQ": [118.40, 109.70, 101.99, 95.42, 88.18, 81.04, 74.14, 67.41],
        "PVQ": [118.39, 109.69, 100.25, 92.12, 83.79, 75.80, 68.26, 61.18],
    },
}
PAPER_BITS = [12, 16, 20, 24, 28, 32, 36, 40]

#: How the data are generated (the paper's generator is unknown).
DATA_DESCRIPTION = (
    "uncorrelated: x ~ N(0, I_64); correlated: x = W z with z ~ N(0, I_16) and a fixed "
    "64 x 16 matrix W with N(0, 1/16) entries (seed 1234), a rank-16 Gaussian whose "
    "correlations span all 64 dimensions (total variance about 64 for both)."
)


@dataclass(frozen=True)
class ToyConfig:
    """Training and evaluation settings (the paper's: lr 1e-3, batch 64, 20 000 steps, 2^18
    test vectors, replacement every 1 000 steps until 2 000 before the end; ours are scaled
    down to fit a shared 2-core CPU, see ``FULL``)."""

    bits: tuple[int, ...] = tuple(PAPER_BITS)
    datasets: tuple[str, ...] = DATASETS
    steps: int = 1500
    batch: int = 64
    lr: float = 3e-3
    beam_width: int = 8
    eval_vectors: int = 1 << 13
    replace_every: int = 75
    replace_threshold: float = 0.01


#: The full run: the paper's batch of 64 but 13x fewer steps (1 500, at lr 3e-3) and 2^13 test
#: vectors, so that the 48 trainings fit in about an hour on one heavily shared CPU thread.
FULL = ToyConfig()
QUICK = ToyConfig(bits=(12,), datasets=("correlated",), steps=200, batch=64, lr=1e-2,
                  eval_vectors=1 << 11, replace_every=50)


def mixing_matrix() -> torch.Tensor:
    """The fixed 64 x 16 matrix of the correlated data (seed 1234)."""
    g = torch.Generator().manual_seed(1234)
    return torch.randn(DIM, LATENT, generator=g) / LATENT**0.5


def make_data(kind: str, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` toy vectors of ``kind`` ("correlated" or "uncorrelated"), shape ``(n, 64)``.

    Raises:
        ValueError: ``kind`` is not one of :data:`DATASETS`.

    Example:
        >>> make_data("correlated", 5, torch.Generator().manual_seed(0)).shape
        torch.Size([5, 64])
    """
    if kind == "uncorrelated":
        return torch.randn(n, DIM, generator=generator)
    if kind == "correlated":
        return torch.randn(n, LATENT, generator=generator) @ mixing_matrix().t()
    raise ValueError(f"kind must be one of {DATASETS}, got {kind!r}")


def build(method: str, bits: int, cfg: ToyConfig, seed: int) -> torch.nn.Module:
    """The quantizer of ``method`` at ``bits`` per vector, NSVQ-trained, uniform init.

    Raises:
        ValueError: ``bits`` is not a multiple of :data:`NUM_CODEBOOKS`, or ``method`` is not
            one of :data:`METHODS`.
    """
    if bits % NUM_CODEBOOKS:
        raise ValueError(f"bits must be a multiple of {NUM_CODEBOOKS}, got {bits}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    size = 2 ** (bits // NUM_CODEBOOKS)
    offset_seed_global(seed)  # the U(-1/K, 1/K) initial codewords
    nsvq = NoiseSubstitution(generator=offset_generator(seed, 1))  # the substituted noise
    options = {"encoder": BeamSearch(min(cfg.beam_width, size))} if method == "AVQ" else {}
    return build_quantizer(method.lower(), DIM, size, NUM_CODEBOOKS, estimator=nsvq, **options)


def schedule(cfg: ToyConfig) -> Schedule:
    """Adam at a constant ``cfg.lr``; dead codewords replaced every ``cfg.replace_every`` steps
    up to 90 % of the run."""
    return Schedule(steps=cfg.steps, lr=cfg.lr, log_every=cfg.steps,
                    replacement=Replacement(cfg.replace_every, math.floor(0.9 * cfg.steps),
                                            cfg.replace_threshold))


def train_and_evaluate(method: str, kind: str, bits: int, cfg: ToyConfig, seed: int) -> float:
    """Train one quantizer on fresh batches of ``kind`` data; return its test MSE.

    With NSVQ, ``||x - x_tilde||^2 = ||x - x_hat||^2``: the loss is the quantization error
    (:func:`~vqkit.training.objective.summed_error_objective`).
    """
    quantizer = build(method, bits, cfg, seed)
    g = offset_generator(seed, 2)  # the batches and the replacements
    batches = Sampler(lambda n, gen: make_data(kind, n, gen), cfg.batch, g)
    Trainer(quantizer, batches, schedule(cfg), objective=summed_error_objective,
            maintenance=g).run()
    quantizer.eval()
    test = make_data(kind, cfg.eval_vectors, offset_generator(seed, 10_000))  # the test vectors
    with torch.no_grad():
        err = (quantizer(test).quantized - test).pow(2).sum(-1)
    return float(err.mean())


def run(out_dir: Path, *, quick: bool = False, seed: int = 0, allow_dirty: bool = False
        ) -> Path:
    """Train every method x dataset x bitrate; write ``aq_toy.json`` and ``aq_toy.png``.

    The JSON is rewritten after every training (``"complete": false`` until the last), and a
    rerun with the same settings from the same source (commit, dirty state and diff) resumes
    from it, so an interrupted run loses one training; the file's ``"runs"`` then lists each
    process (command, commit, diff, start) with the jobs it trained. A rerun from other
    source starts over.
    """
    from ..progress import progress_bar

    cfg = QUICK if quick else FULL
    out_dir = Path(out_dir)
    path = out_dir / RESULT_FILE
    config = {**asdict(cfg), "bits": list(cfg.bits), "datasets": list(cfg.datasets),
              "dim": DIM, "num_codebooks": NUM_CODEBOOKS, "latent": LATENT, "quick": quick}
    record = Run(command=f"vqkit reproduce {NAME}" + (" --quick" if quick else ""), seeds=[seed],
                 allow_dirty=allow_dirty)
    done: dict[str, float] = {}
    seconds: dict[str, float] = {}
    runs: list[dict[str, Any]] = []
    if path.is_file():
        old = read_json(path)
        if (old.get("config") == config and old.get("seeds") == [seed]
                and record.same_code(old)):
            done = dict(old["results"].get("by_job", {}))
            seconds = dict(old["results"].get("seconds", {}))
            runs = list(old.get("runs", []))
    this_run = {**record.summary(), "jobs": []}
    runs.append(this_run)
    jobs = [(k, b, m) for b in cfg.bits for k in cfg.datasets for m in METHODS]
    for kind, bits, method in progress_bar(jobs, desc=NAME, enabled=not quick):
        key = f"{kind}/{method}/{bits}"
        if key in done:
            continue
        t0 = time.perf_counter()
        done[key] = train_and_evaluate(method, kind, bits, cfg, seed)
        seconds[key] = round(time.perf_counter() - t0, 2)
        this_run["jobs"].append(key)
        log.info("%s: mse %.4f (%.0f s)", key, done[key], seconds[key])
        _write(path, record, runs, cfg, config, done, seconds, complete=len(done) == len(jobs))
    payload = _write(path, record, runs, cfg, config, done, seconds, complete=True)
    _plot(payload, out_dir / PLOT_FILE)
    return path


def _write(path, record, runs, cfg, config, done, seconds, *, complete: bool
           ) -> dict[str, Any]:
    mse = {k: {m: [done.get(f"{k}/{m}/{b}") for b in cfg.bits] for m in METHODS}
           for k in cfg.datasets}
    payload = record.record(
        {"bits": list(cfg.bits), "mse": mse, "by_job": done, "seconds": seconds,
         "complete": complete},
        config=config,
        paper={"bits": PAPER_BITS, "mse": PAPER},
        data=DATA_DESCRIPTION,
        runs=runs,
    )
    write_json(path, payload)
    return payload


def _plot(payload: dict[str, Any], path: Path) -> None:
    from ..plotting import figure, save_png

    try:
        fig, axes = figure(1, 2, size=(10, 4))
    except ImportError as err:
        log.warning("no plot written: %s", err)
        return
    res = payload["results"]
    for ax, kind in zip(axes, DATASETS, strict=True):
        if kind not in res["mse"]:
            ax.set_visible(False)
            continue
        for method, colour in zip(METHODS, ("C0", "C1", "C2"), strict=True):
            ours = [float("nan") if v is None else v for v in res["mse"][kind][method]]
            ax.semilogy(res["bits"], ours, "o-", color=colour,
                        label=f"{method} (ours)")
            ax.semilogy(PAPER_BITS, PAPER[kind][method], "x--", color=colour, alpha=0.5,
                        label=f"{method} (paper, own units)")
        ax.set_title(f"{kind} toy data, D=64, M=4")
        ax.set_xlabel("bits per vector")
        ax.set_ylabel("MSE (sum over dims)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, path, dpi=100)


def report(results_dir: Path) -> str:
    """Markdown: our MSE beside the paper's, per dataset and bitrate, from ``aq_toy.json``."""
    path = Path(results_dir) / RESULT_FILE
    if not path.is_file():
        return no_results(NAME, NAME)
    payload = read_json(path)
    res, cfg = payload["results"], payload.get("config", {})
    lines = [
        f"## {NAME}: {DESCRIPTION}",
        "",
        f"Command: `{payload['command']}` (commit {payload.get('git_commit')}, "
        f"{payload.get('wall_seconds')} s, {payload['environment'].get('threads')} thread(s)). "
        f"{cfg.get('steps')} steps of batch {cfg.get('batch')}, lr {cfg.get('lr')}, AVQ beam "
        f"{cfg.get('beam_width')}, {cfg.get('eval_vectors')} test vectors. Data: "
        + DATA_DESCRIPTION,
        "",
        "Paper values are in the paper's (unknown) units; compare orderings and slopes.",
        "",
    ]
    if not res.get("complete", True):
        lines += ["**Incomplete run**: the rows marked 'not run' were not trained.", ""]
    for kind in [k for k in DATASETS if k in res["mse"]]:
        lines += [f"**{kind}** (MSE = mean squared error summed over the 64 dims)", ""]
        header = ["bits", *[f"{m} {who}" for m in METHODS for who in ("ours", "paper")],
                  "order (ours)"]
        body = []
        for i, bits in enumerate(res["bits"]):
            cells = []
            ours = {m: res["mse"][kind][m][i] for m in METHODS}
            for m in METHODS:
                paper = PAPER[kind][m][PAPER_BITS.index(bits)] if bits in PAPER_BITS else None
                cells += ["not run" if ours[m] is None else f"{ours[m]:.4g}",
                          "" if paper is None else f"{paper:.4g}"]
            known = [m for m in METHODS if ours[m] is not None]
            order = " < ".join(sorted(known, key=ours.get))
            body.append([bits, *cells, order])
        lines += [*markdown_table(header, body), ""]
        falls = []
        for m in METHODS:
            ours = res["mse"][kind][m]
            first, last = ours[0], ours[-1]
            if first and last and res["bits"][0] in PAPER_BITS and res["bits"][-1] in PAPER_BITS:
                paper = PAPER[kind][m]
                ratio = paper[PAPER_BITS.index(res["bits"][-1])] / paper[
                    PAPER_BITS.index(res["bits"][0])]
                falls.append(f"{m} {last / first:.3f} (paper {ratio:.3f})")
        if falls and len(res["bits"]) > 1:
            lines += [f"MSE at {res['bits'][-1]} bits / MSE at {res['bits'][0]} bits: "
                      + ", ".join(falls) + ".", ""]
    if (Path(results_dir) / PLOT_FILE).is_file():
        lines += [f"![{NAME}](../results/{PLOT_FILE})", ""]
    return "\n".join(lines)


# expected_minutes: measured: 36 min on the shared 2-core machine, 1 thread
REPRODUCTION = Reproduction(
    NAME, DESCRIPTION,
    expected_minutes=36.0, quick_minutes=0.08,
    result_files=(RESULT_FILE,), run=run, report=report, config=ToyConfig)
