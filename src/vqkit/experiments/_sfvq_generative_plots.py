"""Figures and the Markdown report of the sfvq-generative reproduction (numbers from its JSON)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..data.fashion_mnist import CLASSES
from ..interpret import index_histograms
from ..plotting import figure, label_histograms, save_png

if TYPE_CHECKING:
    from .sfvq_generative import GenerativeConfig


def _grid(images: Tensor, rows: int, cols: int) -> Tensor:
    """``(rows * cols, 28, 28)`` (missing cells blank) -> one ``(rows*29, cols*29)`` image."""
    out = torch.ones(rows * 29, cols * 29)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[r * 29 : r * 29 + 28, c * 29 : c * 29 + 28] = img
    return out


def _show(image: Tensor, path: Path, title: str, ylabels: list[str] | None = None) -> None:
    h, w = image.shape
    fig, ax = figure(size=(max(4.0, w / 40), max(2.0, h / 40)))
    ax.imshow(image.numpy(), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    if ylabels:
        ax.set_yticks([29 * i + 14 for i in range(len(ylabels))], ylabels, fontsize=7)
    else:
        ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    save_png(fig, path, dpi=120)


@torch.no_grad()
def plot_all(out_dir: Path, plots: dict[str, str], vae, curves: dict[int, Tensor],
             sf_dirs: Tensor, pca_dirs: Tensor, scale_of: Callable[[Tensor], Tensor],
             cfg: GenerativeConfig, gen: torch.Generator, top_indices: Tensor,
             labels: Tensor) -> None:
    low = [b for b in sorted(curves) if b <= 5]
    cols = 2 ** max(low)
    cells = []
    for b in low:
        imgs = vae.synthesize(curves[b])
        cells.append(torch.cat([imgs, torch.zeros(cols - imgs.shape[0], 28, 28)]))
    _show(_grid(torch.cat(cells), len(low), cols), out_dir / plots["corners_low"],
          "images of the ordered SFVQ corner points c_0 .. c_{K-1}",
          [f"{b} bits" for b in low])
    top = max(curves)
    k = 2**top
    side = int(round(k**0.5))
    _show(_grid(vae.synthesize(curves[top]), -(-k // side), side), out_dir / plots["corners_8"],
          f"{top}-bit SFVQ corner points in curve order (row by row)")
    base = vae.sample_w(cfg.edit_bases, gen, truncation=cfg.truncation)
    sig = torch.tensor(cfg.edit_sigmas, dtype=torch.float32)
    for key, dirs, name in (("edits_sfvq", sf_dirs, "SFVQ segment"), ("edits_pca", pca_dirs,
                                                                      "PC")):
        scales = scale_of(dirs)
        rows = []
        for d, s in zip(dirs, scales, strict=True):
            w = base[:, None, :] + sig[None, :, None] * s * d  # (bases, sigmas, D)
            rows.append(vae.synthesize(w.reshape(-1, w.shape[-1])))
        n = len(rows)
        _show(_grid(torch.cat(rows), n, base.shape[0] * sig.numel()), out_dir / plots[key],
              f"edits w + sigma*std*d, sigma in {list(cfg.edit_sigmas)}, {base.shape[0]} samples",
              [f"{name} {j}" + ("→" + str(j + 1) if name.startswith("SFVQ") else "")
               for j in range(n)])
    names = [CLASSES[int(c)] for c in labels]
    label_histograms(index_histograms(top_indices, names, k), out_dir / plots["classes"],
                    title=f"test classes along the {top}-bit SFVQ curve (Blackman 7, max 1)")


def report_markdown(rec: dict[str, Any], plots: dict[str, str]) -> str:
    # Links relative to docs/results.md, where `vqkit report` puts this section.
    plots = {k: f"../results/{v}" for k, v in plots.items()}
    res, cfg = rec["results"], rec["results"]["config"]
    d = res["directions"]
    lines = [
        "## Generative factors along an SFVQ curve (sfvq-generative)",
        "",
        f"Fashion-MNIST VAE (z {cfg['z_dim']}-d → {cfg['mapping_layers']}-layer mapping "
        f"network → W {cfg['w_dim']}-d → MLP synthesis) trained {cfg['vae_epochs']} epochs on "
        f"{cfg['train_images']} images (final negative ELBO "
        f"{res['vae_negative_elbo_per_epoch'][-1]:.1f} nats). SFVQ fitted on "
        f"{cfg['w_samples']} mapped prior samples, {cfg['sfvq_epochs_per_stage']} epochs per "
        f"growth stage; k-means VQ with the same K on the same samples. Class purity on the "
        f"W of {cfg['test_images']} test images (posterior means). Command: "
        f"`{rec['command']}` ({rec['wall_seconds']:.0f} s on a shared, loaded 2-core machine, "
        f"{rec['environment']['threads']} thread, commit {rec['git_commit']}). The paper "
        "([vali2025ganlatent], on StyleGAN2/BigGAN) reports no quantitative metric; it is compared "
        "qualitatively.",
        "",
        "Mass-weighted class purity of consecutive index ranges (width 1 = single codewords, "
        "width 4 = 4 consecutive indices) and the mean share of a class inside its best "
        "contiguous range of K/8 indices; 'random order' relabels the SFVQ cells at random "
        f"(mean of {cfg['permutations']}).",
        "",
        "| bits | SFVQ w1 | VQ w1 | SFVQ w4 | VQ w4 | random order w4 | SFVQ K/8-share | "
        "VQ K/8-share | random K/8-share | MSE SFVQ / VQ |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def g(r: dict[str, float], m: str) -> str:
        return f"{r[m]:.3f}" if m in r else "–"

    for b, r in res["purity"].items():
        s, v, p = r["sfvq"], r["vq"], r["sfvq_permuted"]
        lines.append(
            f"| {b} | {g(s, 'width1')} | {g(v, 'width1')} | {g(s, 'width4')} | "
            f"{g(v, 'width4')} | {g(p, 'width4')} | {g(s, 'class_share_in_best_eighth')} | "
            f"{g(v, 'class_share_in_best_eighth')} | {g(p, 'class_share_in_best_eighth')} | "
            f"{r['mse']['sfvq_projection']:.3f} / {r['mse']['vq']:.3f} |")
    e = d["edits"]
    cos = ", ".join(f"{c:.2f}" for c in d["max_abs_cos_with_top10_pcs"])
    lines += [
        "",
        f"**Directions.** The {len(d['max_abs_cos_with_top10_pcs'])} unit directions between "
        f"consecutive corner points of the {d['bits']}-bit curve have max |cos| with the top "
        f"10 principal components of W of {cos} (best-matching PCs {d['best_matching_pc']}). "
        f"Editing {cfg['edit_samples']} truncated (ψ = {cfg['truncation']}) samples by ±"
        f"{d['edit_sigma_in_stds']:g} standard deviations of W along each direction changes "
        f"the class predicted by a linear classifier (test accuracy "
        f"{d['classifier_test_accuracy']:.3f}) in {e['sfvq']['class_change_rate']:.3f} of the "
        f"edits for SFVQ directions and {e['pca']['class_change_rate']:.3f} for the same "
        f"number of top PCs (mean |pixel change| {e['sfvq']['mean_abs_pixel_change']:.3f} vs "
        f"{e['pca']['mean_abs_pixel_change']:.3f}).",
        "",
        f"![corners 2-5 bits]({plots['corners_low']}) ![corners 8 bits]({plots['corners_8']})",
        "",
        f"![SFVQ edits]({plots['edits_sfvq']}) ![PCA edits]({plots['edits_pca']})",
        "",
        f"![classes along the curve]({plots['classes']})",
        "",
    ]
    return "\n".join(lines)
