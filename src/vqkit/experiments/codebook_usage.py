"""Codebook usage on Fashion-MNIST: FSQ, SimVQ and cosine VQ against plain VQ, at about
1,000 and about 16,000 codes.

The families of [mentzer2024fsq] (FSQ: an implicit grid, no codebook to collapse),
[zhu2024simvq] (SimVQ: ``C = B W + b``, every codeword moves with ``W``) and [yu2022vitvqgan]
(l2-normalised codes) all aim at using the whole codebook. Each trains in the same small conv
autoencoder with residual blocks (28x28 images -> a 7x7 grid of 8-dimensional latents ->
28x28; :class:`~._autoencoder.ConvAutoencoder`) with the same
network, steps, batch and learning rate. Family-specific settings are only the papers' own:
the codeword quantizers (VQ, cosine VQ, SimVQ) train with STE and the VQ-VAE commitment 0.25,
random initial codewords (N(0, 1); SimVQ as its paper's code initialises it: a frozen basis
``B`` ~ N(0, 1/D), ``W, b`` as ``nn.Linear``'s default) and no dead-code replacement, so what
keeps codes alive is the family itself; FSQ uses its own default, STE with no auxiliary loss
([mentzer2024fsq]: "no commitment loss"), tanh bounds and a learned projection from the 8-dim
latent to ``len(levels)`` channels and back.

The schedule (16,000 Adam steps of 32 images, about 8.5 epochs, lr 2e-3) and the network (64
channels with residual blocks) were chosen on a validation split of the training images (the
first 50,000 for training, the last 10,000 for usage; ``scripts/usage_validation.py``; the
residual network was first tried in an exploratory run on the test set, then confirmed on the
validation split): the first run's 1,500 steps of 64 images (1.6 epochs) were far too short,
and at ~1k codes usage rose with the number of steps more than with the batch (FSQ: 78 % after
1,500 steps of 64, 97.5 % after 6,000 of 64, 99 % after 6,000 of 16). At ~16k codes the plain
two-layer network of the previous version (32 channels, 8,000 steps) left SimVQ and FSQ far
below 95 %; the residual blocks and 64 channels raised both, and the run after that (16,000
steps of 16 images) left FSQ at 15,360 codes at 94.7 % test usage. On the validation split FSQ
there reached 95.7 % with 32 images per step (16,000 steps), 95.2 % with 32,000 steps of 16,
and 92.9 % with lr 4e-3 instead: 32 images per step it is, for every method. Small batches
are overhead-bound here, so the larger batch costs little time.

Usage is the fraction of the K codes picked at least once over the latents of the 10,000
test images (490,000 vectors), and, as a check that test usage is not limited by the data,
over the latents of the first 10,000 training images. The perplexity ``exp(H)`` of the test
index histogram is the effective number of codes in use, which does not grow with the number
of vectors counted as usage does. The reconstruction MSE is per pixel on [0, 1] test images.

Run: ``vqkit reproduce codebook-usage --threads 2`` (about 105 minutes in two single-threaded
worker processes, see :func:`run`; the points' training times add up to about 200 minutes, the
time with ``--threads 1``); ``--quick`` is the seconds-long smoke version the default test run
checks.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import FSQ, Cosine, Quantizer, SimVQ, StraightThrough, VectorQuantizer
from ..data.fashion_mnist import load_fashion_mnist
from ..functional.metrics import counts_perplexity, index_histogram
from ..reporting import format_number, markdown_table
from ..training.batches import RandomRows
from ..training.loop import Trainer
from ..training.objective import StepResult
from ..training.provenance import Run, write_json
from ..training.schedule import Schedule
from ..training.seed import generator, seed_global
from ._autoencoder import ConvAutoencoder
from ._processes import map_in_processes
from .reproduction import Reproduction, json_report

log = logging.getLogger(__name__)

NAME = "codebook-usage"
RESULT_FILE = "codebook_usage.json"
LATENT_DIM = 8
#: (codes, FSQ levels): prod(levels) = 1,000 and 15,360.
SIZES = ((1024, (8, 5, 5, 5)), (16384, (8, 8, 8, 6, 5)))
METHODS = ("VQ", "Cosine VQ", "SimVQ", "FSQ")


@dataclass(frozen=True)
class UsageConfig:
    """Settings of the run.

    Attributes:
        steps: Adam steps per method and size.
        batch: images per step (49 latent vectors each).
        lr: Adam learning rate.
        train_images: training images used (the first ones of the training split).
        test_images: test images the usage and MSE are measured on.
        train_usage_images: training images (the first ones) the training usage is measured on.
        hidden: channels of the autoencoder's convolutions.
    """

    steps: int = 16_000
    batch: int = 32
    lr: float = 2e-3
    train_images: int = 60_000
    test_images: int = 10_000
    hidden: int = 64
    train_usage_images: int = 10_000


CONFIG = UsageConfig()
QUICK = UsageConfig(steps=25, batch=16, train_images=2_000, test_images=500, hidden=8,
                    train_usage_images=500)


def _objective(model: ConvAutoencoder, images: Tensor) -> StepResult:
    recon, out = model(images)
    mse = F.mse_loss(recon, images)
    return StepResult(mse + out.loss, None, out.indices.reshape(-1),
                      {"recon_mse": float(mse.detach())})


def make_quantizer(method: str, codes: int, levels: tuple[int, ...]) -> Quantizer:
    """The quantizer of ``method`` with about ``codes`` codes (FSQ: ``prod(levels)``).

    Raises:
        ValueError: ``method`` is not one of :data:`METHODS`.
    """
    if method == "FSQ":
        return FSQ(LATENT_DIM, levels)
    parameterisation = {"VQ": None, "Cosine VQ": Cosine(), "SimVQ": SimVQ()}
    if method not in parameterisation:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return VectorQuantizer(LATENT_DIM, codes, estimator=StraightThrough(), init="normal",
                           parameterisation=parameterisation[method])


def _images(split: str, count: int) -> Tensor:
    x, _ = load_fashion_mnist(split)
    return torch.tensor(x[:count], dtype=torch.float32).div(255.0).unsqueeze(1)


@torch.no_grad()
def _measure(model: ConvAutoencoder, images: Tensor) -> tuple[Tensor, float]:
    """(how often each code is picked, per-pixel squared error) over ``images`` in eval mode."""
    model.eval()
    counts = torch.zeros(model.vq.codebook_sizes[0], dtype=torch.long)
    sq, n = 0.0, 0
    for chunk in images.split(500):
        recon, out = model(chunk)
        counts += index_histogram(out.indices.reshape(-1), len(counts))
        sq += float((recon - chunk).pow(2).sum())
        n += chunk.numel()
    return counts, sq / n


def _evaluate(model: ConvAutoencoder, test: Tensor, train: Tensor) -> dict[str, float]:
    size = model.vq.codebook_sizes[0]
    counts, mse = _measure(model, test)
    used = int((counts > 0).sum())
    train_used = int((_measure(model, train)[0] > 0).sum())
    return {"codes": size, "used": used, "usage": used / size,
            "perplexity": counts_perplexity(counts), "test_mse": mse,
            "train_used": train_used, "train_usage": train_used / size}


def run_point(method: str, codes: int, levels: tuple[int, ...], train: Tensor, test: Tensor,
              cfg: UsageConfig, seed: int) -> dict[str, Any]:
    """Train one method at one size and measure it; returns its results row."""
    seed_global(seed, NAME, method, codes)  # the initial weights and codewords
    model = ConvAutoencoder(make_quantizer(method, codes, levels), cfg.hidden, LATENT_DIM)
    source = RandomRows(train, cfg.batch, generator(seed, NAME, "batches", method, codes))
    schedule = Schedule(steps=cfg.steps, lr=cfg.lr, log_every=max(cfg.steps // 5, 1))
    trainer = Trainer(model, source, schedule, objective=_objective, quantizer=model.vq)
    start = time.perf_counter()
    trainer.run()
    seconds = time.perf_counter() - start
    row = {"method": method, **_evaluate(model, test, train[:cfg.train_usage_images]),
           "train_seconds": round(seconds, 1),
           "final_train_loss": trainer.meters.history[-1]["loss"]}
    log.info("%s K=%d: usage %.4f, test MSE %.5f", method, row["codes"], row["usage"],
             row["test_mse"])
    return row


def _points() -> list[tuple[str, int, tuple[int, ...]]]:
    """(method, codes, FSQ levels) of every row, in the JSON's order."""
    return [(m, codes, levels) for codes, levels in SIZES for m in METHODS]


def _train_point(train: Tensor, test: Tensor, method: str, codes: int,
                 levels: tuple[int, ...], cfg: UsageConfig, seed: int) -> dict[str, Any]:
    return run_point(method, codes, levels, train, test, cfg, seed)


def _run_points(cfg: UsageConfig, seed: int, workers: int,
                points: list[tuple[str, int, tuple[int, ...]]] | None = None
                ) -> list[dict[str, Any]]:
    """The rows of ``points`` (default: every row), the 16k-code points started first, in
    ``workers`` single-threaded processes (:func:`~._processes.map_in_processes`). Each point
    seeds itself (:func:`run_point`), so the rows do not depend on ``workers``."""
    points = _points() if points is None else points
    train, test = _images("train", cfg.train_images), _images("test", cfg.test_images)
    order = sorted(range(len(points)), key=lambda i: -points[i][1])
    return map_in_processes(_train_point, [(*point, cfg, seed) for point in points],
                            shared=(train, test), workers=workers, order=order, desc=NAME)


def run(out_dir: Path, *, quick: bool = False, seed: int = 0, allow_dirty: bool = False
        ) -> Path:
    """Train every method at both sizes; write ``out_dir/codebook_usage.json``.

    ``torch.get_num_threads()`` (``vqkit reproduce --threads N``) sets the number of worker
    processes, each with one thread: the small convolutions and searches here gain little from
    a second intra-op thread, and the points are independent.
    """
    cfg = QUICK if quick else CONFIG
    record = Run(command=f"vqkit reproduce {NAME}" + (" --quick" if quick else ""), seeds=[seed],
                 allow_dirty=allow_dirty)
    workers = min(torch.get_num_threads(), len(_points()))
    rows = _run_points(cfg, seed, workers)
    path = Path(out_dir) / RESULT_FILE
    write_json(path, record.record({"rows": rows}, config=asdict(cfg), quick=quick,
                                   threads=1, workers=workers))
    return path


def _render(data: dict[str, Any]) -> str:
    rows = [[r["method"], r["codes"], r["used"], format_number(100 * r["usage"], 2),
             format_number(100 * r["train_usage"], 2), format_number(r["perplexity"], 0),
             format_number(r["test_mse"], 5),
             format_number(r["train_seconds"], 0)]
            for r in data["results"]["rows"]]
    cfg = data["config"]
    return "\n".join([
        f"## Codebook usage on Fashion-MNIST (`vqkit reproduce {NAME}`)", "",
        f"`results/{RESULT_FILE}`, command `{data['command']}`, commit "
        f"`{data['git_commit']}`. Conv autoencoder with residual blocks ({cfg['hidden']} "
        f"channels), 7x7 latents of D = {LATENT_DIM}, "
        f"{cfg['steps']} Adam steps of {cfg['batch']} images (lr {cfg['lr']}); usage over "
        f"the latents of {cfg['test_images']} test images (train usage: of the first "
        f"{cfg['train_usage_images']} training images). No dead-code replacement.", "",
        *markdown_table(["method", "codes", "used", "usage %", "train usage %", "perplexity",
                         "test MSE", "train s"], rows),
        ""])


REPRODUCTION = Reproduction(
    NAME, "codebook usage of FSQ, SimVQ, cosine VQ and plain VQ at 1k and 16k codes, "
    "Fashion-MNIST conv autoencoder",
    expected_minutes=202.0, quick_minutes=0.37, result_files=(RESULT_FILE,), run=run,
    report=json_report(NAME, RESULT_FILE, _render), config=UsageConfig)
