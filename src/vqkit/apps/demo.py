"""The main demo: one 1024-codeword VectorQuantizer per estimator on 32x32 photo patches.

Grey 32x32 patches of the photographs bundled with scikit-image, split train/test by photo,
are quantized directly (D = 1024, K = 1024, 10 bits per patch). Each configuration starts from
the same U(-1/K, 1/K) codebook and trains the same number of steps on
``||x - quantized||^2 + aux loss``:

- NSVQ with dead-code replacement every 100 steps (until 80 % of training),
- STE (codebook + commitment loss), STE with an EMA codebook,
- the rotation trick, DiVeQ.

Test MSE per pixel, PSNR, codebook usage and perplexity are measured on the held-out photos.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..codebooks import EMA, CodebookLearning
from ..estimators import DiVeQ, Estimator, NoiseSubstitution, RotationTrick, StraightThrough
from ..functional import perplexity, usage_fraction
from ..progress import bar_callback
from ..quantizers import VectorQuantizer
from ..training.batches import RandomRows
from ..training.loop import Trainer
from ..training.objective import StepResult, summed_error_objective
from ..training.provenance import Run, write_json
from ..training.schedule import Replacement, Schedule
from ..training.seed import offset_generator, offset_seed_global


@dataclass(frozen=True)
class DemoConfig:
    """Settings of ``vqkit demo``."""

    steps: int = 1000
    batch: int = 256
    lr: float = 5e-3
    codebook_size: int = 1024
    patch: int = 32
    stride: int = 16
    replace_every: int = 100
    eval_every: int = 50
    seed: int = 0


def configurations() -> list[tuple[str, Estimator, CodebookLearning | None, bool]]:
    """(label, estimator, codebook learning, dead-code replacement) of each demo row."""
    return [
        ("NSVQ + replacement", NoiseSubstitution(), None, True),
        ("STE", StraightThrough(), None, False),
        ("STE + EMA", StraightThrough(), EMA(decay=0.99), False),
        ("Rotation trick", RotationTrick(), None, False),
        ("DiVeQ", DiVeQ(), None, False),
    ]


def load_patches(cfg: DemoConfig) -> tuple[torch.Tensor, torch.Tensor]:
    from ..data.images import skimage_patches

    train, test = skimage_patches(cfg.patch, stride=cfg.stride)
    return (torch.from_numpy(train).reshape(len(train), -1),
            torch.from_numpy(test).reshape(len(test), -1))


def _evaluate(vq: VectorQuantizer, test: torch.Tensor) -> dict[str, float]:
    vq.eval()
    with torch.no_grad():
        idx = vq.encode(test)
        mse = float((vq.decode(idx) - test).pow(2).mean())
    vq.train()
    return {
        "test_mse": mse,
        "psnr_db": 10.0 * math.log10(1.0 / mse),
        "usage": usage_fraction(idx, vq.codebook_size),
        "perplexity": perplexity(idx, vq.codebook_size),
    }


def train_one(
    label: str,
    estimator: Estimator,
    learning: CodebookLearning | None,
    replace: bool,
    train: torch.Tensor,
    test: torch.Tensor,
    cfg: DemoConfig,
    progress: bool = True,
) -> dict[str, Any]:
    """Train one configuration; returns its final metrics and its test-MSE curve."""
    offset_seed_global(cfg.seed)  # the model's initialisation
    gen = offset_generator(cfg.seed, 1)  # the batches and the replacements
    vq = VectorQuantizer(train.shape[1], cfg.codebook_size, estimator=estimator,
                         learning=learning)
    curve: list[tuple[int, float]] = []

    def evaluate(trainer: Trainer, result: StepResult) -> None:
        if trainer.step % cfg.eval_every == 0 or trainer.step == 1:
            curve.append((trainer.step, _evaluate(vq, test)["test_mse"]))

    # Replacement stops at 80 % of training: at the steps s with s - 1 < 0.8 steps.
    replacement = Replacement(cfg.replace_every if replace else 0, math.ceil(0.8 * cfg.steps))
    schedule = Schedule(steps=cfg.steps, lr=cfg.lr, replacement=replacement,
                        log_every=cfg.eval_every)
    trainer = Trainer(vq, RandomRows(train, cfg.batch, gen), schedule,
                      objective=summed_error_objective, maintenance=gen,
                      progress=bar_callback(f"{label:<20}", enabled=progress, unit="step"))
    start = time.perf_counter()
    trainer.run(on_step=evaluate)
    seconds = time.perf_counter() - start
    return {"label": label, **_evaluate(vq, test), "seconds": round(seconds, 1),
            "curve": curve}


def run_demo(out_dir: Path, cfg: DemoConfig = DemoConfig(), progress: bool = True) -> Path:
    """Run every configuration, write ``demo.json`` and ``demo_test_mse.png`` into ``out_dir``."""
    record = Run(seeds=[cfg.seed], allow_dirty=True)  # a dirty tree is recorded, not refused
    train, test = load_patches(cfg)
    rows = [train_one(*c, train, test, cfg, progress) for c in configurations()]
    out_dir = Path(out_dir)
    path = write_json(out_dir / "demo.json", record.record(
        rows, config=asdict(cfg), data={"train_patches": len(train), "test_patches": len(test),
                                        "source": "scikit-image photos, split by photo"}))
    plot_curves(rows, out_dir / "demo_test_mse.png")
    return path


def plot_curves(rows: list[dict[str, Any]], path: Path) -> Path:
    """PNG of test MSE over training steps, one line per configuration."""
    from ..data._errors import require_module

    require_module("matplotlib", "pip install matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        steps, mse = zip(*row["curve"], strict=True)
        ax.plot(steps, mse, label=row["label"])
    ax.set_xlabel("training step")
    ax.set_ylabel("test MSE per pixel")
    ax.set_yscale("log")
    ax.set_title("1024-codeword VQ of 32x32 photo patches (held-out photos)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path


def format_table(rows: list[dict[str, Any]]) -> str:
    """The demo table as aligned text."""
    head = (f"{'configuration':<20} {'test MSE':>9} {'PSNR dB':>8} {'usage':>6} "
            f"{'perplexity':>10} {'seconds':>8}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['label']:<20} {r['test_mse']:>9.5f} {r['psnr_db']:>8.2f} "
                     f"{r['usage']:>6.3f} {r['perplexity']:>10.1f} {r['seconds']:>8.1f}")
    return "\n".join(lines)
