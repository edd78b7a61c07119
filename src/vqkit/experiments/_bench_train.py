"""One point of ``vqkit reproduce quantizer-bench``: one quantizer at one codebook size, one
seed, one data set, trained in the fixed autoencoder and measured on the test split.

Everything but the quantizer is shared by all rows of a (data set, seed): the network
(:class:`~._autoencoder.ConvAutoencoder`), the initial weights of the encoder and decoder (the
global seed is set from the data set and the seed, and the quantizer is built after them), the
batches (drawn from a generator keyed by the data set and the seed), Adam with a cosine
learning-rate decay, and the loss ``MSE(recon, image) + out.loss``. The quantizer's random
state is drawn last, from its own key.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..apps.image_codec.data import load_dataset
from ..data._errors import require_module
from ..functional.metrics import counts_perplexity, index_histogram, psnr
from ..replacement import Replacement
from ..training.batches import Sampler
from ..training.loop import Trainer
from ..training.objective import StepResult
from ..training.schedule import Cosine, Schedule
from ..training.seed import generator, seed_global
from ._autoencoder import ConvAutoencoder
from ._bench_rows import ROWS, VQKIT

log = logging.getLogger(__name__)

NAME = "quantizer-bench"
#: The data sets: the name in the JSON -> (the loader's name, tile side, channels).
DATASETS = {"fashion-mnist": ("fashion-mnist", 28, 1), "photos": ("natural", 32, 3)}
#: How many test images the point returns reconstructions of (for the grid of reconstructions).
SHOWN = 6


def shown(test: Tensor) -> Tensor:
    """The :data:`SHOWN` test images of the grid: evenly spaced over the test split (its first
    tiles are sky)."""
    return test[torch.linspace(0, len(test) - 1, SHOWN).round().long()]


@dataclass(frozen=True)
class BenchConfig:
    """Settings of the benchmark.

    Attributes:
        steps: Adam steps per point (the same for every quantizer).
        batch: images per step.
        lr: Adam's initial learning rate (cosine decay to 0 over ``steps``).
        hidden: channels of the autoencoder's convolutions.
        dim: D, channels of the latent grid (7x7 for Fashion-MNIST, 8x8 for the photos).
        seeds: the seeds of every point.
        sizes: codebook sizes (about 1,024 and 16,384 codes).
        rows: the quantizers (names of :data:`~._bench_rows.ROWS`).
        datasets: names of :data:`DATASETS`.
        eval_every: steps between the points of the curves.
        curve_images: test images the curves are measured on (the first ones).
        test_images: test images the final metrics are measured on (None: all).
        cost_steps: timed steps of each isolated cost measurement (median).
    """

    steps: int = 300
    batch: int = 16
    lr: float = 2e-3
    hidden: int = 32
    dim: int = 16
    seeds: tuple[int, ...] = (0, 1)
    sizes: tuple[int, ...] = (1024, 16384)
    rows: tuple[str, ...] = tuple(ROWS)
    datasets: tuple[str, ...] = tuple(DATASETS)
    eval_every: int = 50
    curve_images: int = 1000
    test_images: int | None = None
    cost_steps: int = 5


def held_out_images(dataset: str, count: int | None) -> Tensor:
    """The first ``count`` test images ``(N, C, H, W)`` in [0, 1] (None: all of them).

    Raises:
        MissingDataError / ImportError: the package that provides the data is missing.
    """
    _, test = load_dataset(*DATASETS[dataset][:2])
    return test if count is None else test[:count]


def _objective(model: ConvAutoencoder, images: Tensor) -> StepResult:
    recon, out = model(images)
    mse = F.mse_loss(recon, images)
    return StepResult(mse + out.loss, None, out.indices.reshape(-1),
                      {"recon_mse": float(mse.detach())})


@torch.no_grad()
def reconstruct(model: ConvAutoencoder, images: Tensor) -> tuple[Tensor, Tensor]:
    """``(reconstructions clamped to [0, 1], indices (N, M))`` in eval mode, 200 images at a
    time (the peer's eval search holds all N x K distances of a call: 9,800 x 16,384 here)."""
    model.eval()
    recons, indices = [], []
    for chunk in images.split(200):
        recon, out = model(chunk)
        recons.append(recon.clamp(0, 1))
        idx = out.indices
        indices.append(idx.reshape(-1, idx.shape[-1]) if idx.dim() > recon.dim() - 1
                       else idx.reshape(-1, 1))
    return torch.cat(recons), torch.cat(indices)


def mean_ssim(images: Tensor, recons: Tensor) -> float:
    """Mean SSIM over the images (scikit-image's ``structural_similarity`` with the Gaussian
    window of [wang2004ssim], sigma 1.5, population covariances, data range 1; colour
    images: the mean over channels).

    Raises:
        ImportError: scikit-image is not installed.
    """
    metrics = require_module("skimage.metrics", "pip install scikit-image")
    # The images stacked as channels: skimage computes each channel's SSIM on its own and
    # averages them, which is the mean over images of each image's channel mean.
    a = images.permute(2, 3, 0, 1).reshape(*images.shape[2:], -1).double().numpy()
    b = recons.permute(2, 3, 0, 1).reshape(*recons.shape[2:], -1).double().numpy()
    return float(metrics.structural_similarity(
        a, b, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False))


def usage_stats(indices: Tensor, sizes: tuple[int, ...]) -> dict[str, float]:
    """Codebook usage (fraction of codes picked at least once) and perplexity ``exp(H)`` of
    the index histogram, each the mean over the codebooks (columns of ``indices``)."""
    counts = [index_histogram(indices[:, m], size) for m, size in enumerate(sizes)]
    return {"usage": float(np.mean([float((c > 0).sum()) / len(c) for c in counts])),
            "perplexity": float(np.mean([counts_perplexity(c) for c in counts]))}


def evaluate(model: ConvAutoencoder, images: Tensor, sizes: tuple[int, ...], *,
             ssim: bool = True) -> dict[str, float]:
    """PSNR (of the MSE per pixel over the whole set, [0, 1] pixels), SSIM (if ``ssim``),
    usage and perplexity on ``images``."""
    recons, indices = reconstruct(model, images)
    out = {"psnr": psnr(images, recons), **usage_stats(indices, sizes)}
    if ssim:
        out["ssim"] = mean_ssim(images, recons)
    return out


def replacement(every: int, steps: int) -> Replacement:
    """vqkit's recipe: dead-code replacement every ``every`` steps up to one period before the
    end (the README's ``CodeReplacer(vq, every=50, until=250)`` of a 300-step loop), so that
    every replaced codeword trains at least ``every`` steps before the test; ``every=0``:
    none."""
    return Replacement(every=every, until=max(steps - every, 0) if every else None)


def build_model(row: str, codes: int, dataset: str, seed: int, cfg: BenchConfig
                ) -> ConvAutoencoder:
    """The autoencoder with row ``row``'s quantizer; the encoder and decoder weights depend
    only on (data set, seed), the quantizer's random state on the row too."""
    channels = DATASETS[dataset][2]
    seed_global(seed, NAME, "network", dataset)
    model = ConvAutoencoder(torch.nn.Identity(), cfg.hidden, cfg.dim, channels)
    seed_global(seed, NAME, "quantizer", dataset, row, codes)
    model.vq = ROWS[row].build(cfg.dim, codes, seed)
    return model


def train_point(dataset: str, row: str, codes: int, seed: int, cfg: BenchConfig
                ) -> dict[str, Any]:
    """Train row ``row`` at ``codes`` codes on ``dataset`` with ``seed``; returns its record:
    final test metrics, the curves, the training seconds per step and ``SHOWN``
    reconstructions."""
    spec = ROWS[row]
    sizes = spec.sizes(codes)
    source, _ = load_dataset(*DATASETS[dataset][:2])
    test = held_out_images(dataset, cfg.test_images)
    curve_set = test[:cfg.curve_images]
    model = build_model(row, codes, dataset, seed, cfg)
    batches = Sampler(source.sample, cfg.batch, generator(seed, NAME, "batches", dataset))
    schedule = Schedule(steps=cfg.steps, lr=cfg.lr, lr_schedule=Cosine(),
                        replacement=replacement(spec.replace_every, cfg.steps),
                        log_every=cfg.eval_every)
    vqkit_row = spec.library == VQKIT
    trainer = Trainer(model, batches, schedule, objective=_objective,
                      quantizer=model.vq if vqkit_row else None,
                      maintenance=generator(seed, NAME, "maintenance") if spec.replace_every
                      else None)
    curve: list[dict[str, float]] = []
    seconds = 0.0

    for stop in range(cfg.eval_every, cfg.steps + cfg.eval_every, cfg.eval_every):
        start = time.perf_counter()
        trainer.run(until=min(stop, cfg.steps))
        seconds += time.perf_counter() - start  # training only, not the curve's evaluation
        curve.append({"step": trainer.step, **evaluate(model, curve_set, sizes, ssim=False)})
    final = evaluate(model, test, sizes)
    recons, _ = reconstruct(model, shown(test))
    log.info("%s %s K=%d seed %d: PSNR %.2f dB, usage %.3f", dataset, row, codes, seed,
             final["psnr"], final["usage"])
    return {"dataset": dataset, "row": row, "library": spec.library, "codes": codes,
            "codebooks": list(sizes), "seed": seed, **final,
            "train_seconds_per_step": seconds / cfg.steps,
            "replacements": len(trainer.replacements), "curve": curve,
            "shown": recons.numpy().round(4).tolist()}
