"""The interpretation of a generator's mapped latent of [vali2025ganlatent], at CPU scale.

A Fashion-MNIST VAE with a StyleGAN-like mapping network (:mod:`vqkit.apps.latent.generative`)
stands in for the pretrained StyleGAN2. SFVQ is fitted with the paper's growth schedule on
mapped prior samples ``w = mapping(z)``; the curve of every bitrate 2..8 comes from one fit.
We render the images of the ordered corner points, take the unit vectors between consecutive
corner points as directions and edit along them (``w + sigma d``), with the top principal
components of W (GANSpace) as the baseline. With the class labels of the test images (their
posterior means mapped to W) we measure how well curve position separates classes: the class
purity of consecutive index ranges for SFVQ, for k-means VQ with the same K (unordered
indices), and for the SFVQ cells in a random order.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..apps.latent import purity
from ..apps.latent.generative import train_mapped_vae
from ..data.fashion_mnist import load_fashion_mnist
from ..functional.kmeans import kmeans
from ..functional.search import nearest_neighbor
from ..interpret import curve_positions, nearest_corner, unit_directions
from ..progress import bar_callback
from ..training.batches import Epochs
from ..training.loop import Trainer
from ..training.objective import StepResult
from ..training.provenance import Run, write_json
from ..training.schedule import Schedule
from ..training.seed import offset_generator, offset_seed_global
from ..training.space_filling import fit_space_filling
from ._sfvq_generative_plots import plot_all, report_markdown
from .reproduction import Reproduction, json_report

log = logging.getLogger(__name__)

NAME = "sfvq-generative"
RESULT_FILE = "sfvq_generative.json"
PLOTS = {"corners_low": "sfvq_generative_corners_2-5bit.png",
         "corners_8": "sfvq_generative_corners_8bit.png",
         "edits_sfvq": "sfvq_generative_edits_sfvq.png",
         "edits_pca": "sfvq_generative_edits_pca.png",
         "classes": "sfvq_generative_class_histograms.png"}

@dataclass(frozen=True)
class GenerativeConfig:
    """Settings of the run (recorded as the results' ``config``).

    Attributes:
        train_images, test_images: Fashion-MNIST images drawn from each split.
        vae_epochs, batch, lr: the mapped VAE's training (Adam).
        z_dim, w_dim, mapping_layers, hidden: the VAE's sizes.
        w_samples: mapped prior samples ``w = mapping(z)`` the SFVQ and k-means are fitted on.
        bits: the bitrates measured (one SFVQ fit grows through all of them).
        sfvq_epochs_per_stage, sfvq_lr: the SFVQ growth schedule.
        permutations: random relabellings of the SFVQ cells averaged over.
        direction_bits, n_directions: the curve whose consecutive corners give the directions,
            and how many.
        edit_sigmas, edit_bases, truncation: the plotted edits.
        classifier_epochs: epochs of the linear classifier that judges the edits.
        edit_samples: truncated samples edited to measure the class changes.
    """

    train_images: int = 60000
    test_images: int = 10000
    vae_epochs: int = 5
    batch: int = 128
    lr: float = 1e-3
    z_dim: int = 16
    w_dim: int = 32
    mapping_layers: int = 4
    hidden: int = 256
    w_samples: int = 20000
    bits: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
    sfvq_epochs_per_stage: int = 5
    sfvq_lr: float = 1e-3
    permutations: int = 20
    direction_bits: int = 3
    n_directions: int = 7
    edit_sigmas: tuple[float, ...] = (-2, -1, 0, 1, 2)
    edit_bases: int = 3
    truncation: float = 0.5
    classifier_epochs: int = 3
    edit_samples: int = 500


FULL = GenerativeConfig()
QUICK = GenerativeConfig(train_images=1000, test_images=500, vae_epochs=1, hidden=64,
                         w_samples=600, bits=(2, 3, 4), sfvq_epochs_per_stage=1,
                         permutations=3, classifier_epochs=1, edit_samples=50)

#: Rows per step of the linear classifier.
CLASSIFIER_BATCH = 256


def _images(split: str, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    x, y = load_fashion_mnist(split)
    idx = torch.randperm(x.shape[0], generator=gen)[:n]
    xt = torch.tensor(x, dtype=torch.float32) / 255.0
    return xt[idx], torch.tensor(y, dtype=torch.int64)[idx]


def _purities(idx: Tensor, labels: Tensor, k: int) -> dict[str, float]:
    out = {"width1": purity.range_purity(idx, labels, k, 1)}
    if k >= 16:
        out["width4"] = purity.range_purity(idx, labels, k, 4)
        width = k // 8
        shares = [purity.best_range(idx[labels == c], k, width)[0]
                  for c in labels.unique().tolist()]
        out["class_share_in_best_eighth"] = sum(shares) / len(shares)
    return out


def _linear_classifier(x: Tensor, y: Tensor, epochs: int, gen: torch.Generator) -> torch.nn.Module:
    """A linear classifier of the images ``x`` (labels ``y``): ``epochs`` shuffled epochs of
    cross-entropy, Adam lr 1e-2."""
    clf = torch.nn.Linear(784, 10)
    flat = x.reshape(x.shape[0], -1)

    def objective(model: torch.nn.Module, rows: Tensor) -> StepResult:
        return StepResult(torch.nn.functional.cross_entropy(model(flat[rows]), y[rows]))

    # The batches are row numbers: a fresh permutation of them at every epoch.
    rows = Epochs(torch.arange(x.shape[0]), CLASSIFIER_BATCH, shuffle=gen)
    steps = epochs * rows.epoch_length
    Trainer(clf, rows, Schedule(steps=steps, lr=1e-2, log_every=steps),
            objective=objective).run()
    return clf.eval()


@torch.no_grad()
def _edit_effects(vae, clf, dirs: Tensor, scales: Tensor, base: Tensor, sigma: float
                  ) -> dict[str, float]:
    """Mean over directions of: the share of base samples whose predicted class changes under
    ``w +- sigma * scale * d``, and the mean absolute pixel change."""
    base_img = vae.synthesize(base)
    base_cls = clf(base_img.reshape(base.shape[0], -1)).argmax(1)
    changed, pixels = [], []
    for d, s in zip(dirs, scales, strict=True):
        for sign in (-1.0, 1.0):
            img = vae.synthesize(base + sign * sigma * s * d)
            changed.append(float((clf(img.reshape(base.shape[0], -1)).argmax(1) != base_cls)
                                 .double().mean()))
            pixels.append(float((img - base_img).abs().mean()))
    return {"class_change_rate": sum(changed) / len(changed),
            "mean_abs_pixel_change": sum(pixels) / len(pixels)}


def run(out_dir: Path, *, quick: bool = False, seed: int = 0, allow_dirty: bool = False
        ) -> Path:
    """Train the VAE, fit SFVQ and k-means at every bitrate, measure, plot."""
    cfg = QUICK if quick else FULL
    offset_seed_global(seed)  # the layers' initialisation
    gen = offset_generator(seed, 0)  # every draw of the run, in order
    run_info = Run(command=f"vqkit reproduce {NAME}" + (" --quick" if quick else "")
                   + f" --seed {seed}", seeds=[seed], allow_dirty=allow_dirty)
    x_train, y_train = _images("train", cfg.train_images, gen)
    x_test, y_test = _images("test", cfg.test_images, gen)
    vae, history = train_mapped_vae(
        x_train, epochs=cfg.vae_epochs, batch_size=cfg.batch, lr=cfg.lr, generator=gen,
        progress=not quick, z_dim=cfg.z_dim, w_dim=cfg.w_dim,
        mapping_layers=cfg.mapping_layers, hidden=cfg.hidden)
    with torch.no_grad():
        w_fit = vae.sample_w(cfg.w_samples, gen)
        w_test = vae.mapping(vae.encode(x_test)[0])
    curves: dict[int, Tensor] = {}
    per_bits: dict[str, Any] = {}

    def on_stage(bits: int, sf) -> None:
        if bits not in cfg.bits:
            return
        k = 2**bits
        curves[bits] = sf.codewords.detach().clone()
        pos = curve_positions(sf, w_test)
        sf_idx = nearest_corner(pos).clamp_max(k - 1)
        vq = kmeans(w_fit, k, generator=gen)
        vq_idx = nearest_neighbor(w_test, vq)[1][:, 0]
        perm = [_purities(purity.permuted(sf_idx, k, gen), y_test, k)
                for _ in range(cfg.permutations)]
        per_bits[str(bits)] = {
            "sfvq": _purities(sf_idx, y_test, k), "vq": _purities(vq_idx, y_test, k),
            "sfvq_permuted": {m: sum(p[m] for p in perm) / len(perm) for m in perm[0]},
            "mse": {"sfvq_projection": float((w_test - sf.project(w_test)[2]).pow(2).sum(1)
                                             .mean()),
                    "vq": float((w_test - vq[vq_idx]).pow(2).sum(1).mean())},
        }
        if bits == max(cfg.bits):
            per_bits[str(bits)]["test_indices"] = sf_idx.tolist()

    fit_space_filling(w_fit, max(cfg.bits), epochs_per_stage=cfg.sfvq_epochs_per_stage,
                      lr=cfg.sfvq_lr, generator=gen, on_stage_end=on_stage,
                      progress=bar_callback("SFVQ", enabled=not quick))
    top_indices = per_bits[str(max(cfg.bits))].pop("test_indices")

    # Directions: consecutive-corner unit vectors of one curve vs the top PCs of W (GANSpace).
    n_dir = cfg.n_directions
    sf_dirs = unit_directions(curves[cfg.direction_bits])[:n_dir]
    mean_w = w_fit.mean(0)
    _, _, v = torch.linalg.svd(w_fit - mean_w, full_matrices=False)
    pca_dirs = v[:n_dir]
    scale_of = lambda d: ((w_fit - mean_w) @ d.T).std(0)  # noqa: E731
    cos = (sf_dirs @ v[:10].T).abs()
    clf = _linear_classifier(x_train, y_train, cfg.classifier_epochs, gen)
    with torch.no_grad():
        clf_acc = float((clf(x_test.reshape(x_test.shape[0], -1)).argmax(1) == y_test)
                        .double().mean())
    base = vae.sample_w(cfg.edit_samples, gen, truncation=cfg.truncation)
    edits = {"sfvq": _edit_effects(vae, clf, sf_dirs, scale_of(sf_dirs), base, 2.0),
             "pca": _edit_effects(vae, clf, pca_dirs, scale_of(pca_dirs), base, 2.0)}
    results = {
        "config": asdict(cfg),
        "vae_negative_elbo_per_epoch": history,
        "w_variance": float(w_fit.var(0).sum()),
        "purity": per_bits,
        "directions": {
            "bits": cfg.direction_bits,
            "max_abs_cos_with_top10_pcs": cos.max(1).values.tolist(),
            "best_matching_pc": cos.argmax(1).tolist(),
            "edit_sigma_in_stds": 2.0,
            "classifier_test_accuracy": clf_acc,
            "edits": edits,
        },
    }
    out_dir = Path(out_dir)
    path = write_json(out_dir / RESULT_FILE, run_info.record(results, quick=quick))
    try:
        plot_all(out_dir, PLOTS, vae, curves, sf_dirs, pca_dirs, scale_of, cfg, gen,
                 torch.tensor(top_indices), y_test)
    except ImportError as err:
        log.warning("no plots written: %s", err)
    return path


REPRODUCTION = Reproduction(
    NAME, "[vali2025ganlatent] latents: SFVQ 2-8 bits on a Fashion-MNIST mapped-VAE's "
    "W space",
    expected_minutes=4.5, quick_minutes=0.05,
    result_files=(RESULT_FILE,), run=run, config=GenerativeConfig,
    report=json_report(NAME, RESULT_FILE, lambda record: report_markdown(record, PLOTS)))
