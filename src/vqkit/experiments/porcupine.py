"""Privacy PORCUPINE ([vali2024porcupine]) on real speaker embeddings of the offline corpora.

256-d resemblyzer embeddings ([wan2018speaker]) of every utterance of the installed
corpora (:func:`vqkit.data.speech.utterances`) are split at random into train and test halves
per seed. Minimum-MSE VQ (k-means) and occurrence-normalised SFVQ (an SFVQ curve fitted by the
paper's growth schedule, resampled into K equal-count chunks) are trained on the train half at
4 to 8 bits; the test half is quantized by nearest neighbour and the index histogram is scored
with the metrics of :mod:`vqkit.privacy`.

The paper (§5) used 192-d ECAPA-TDNN embeddings [desplanques2020ecapa] of 90 224 Common Voice
speakers (one per speaker); here the vectors are per utterance, from about 70 labelled
speakers, so the absolute numbers differ; the comparison between the two quantizers is what
carries over.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..functional.kmeans import kmeans
from ..functional.search import nearest_neighbor
from ..privacy import index_histogram, occurrence_normalise, privacy_metrics
from ..training.provenance import Run, read_json, write_json
from ..training.seed import consecutive_seeds, offset_generator
from ..training.space_filling import fit_space_filling
from .reproduction import Reproduction, no_results

log = logging.getLogger(__name__)

NAME = "porcupine"
RESULT_FILE = "porcupine.json"
PLOT = "porcupine_metrics.png"

@dataclass(frozen=True)
class PorcupineConfig:
    """Settings of the run (recorded as the results' ``config``): the ``bits`` measured, the
    number of ``seeds`` (consecutive from the run's), the SFVQ growth schedule
    (``epochs_per_stage``, ``batch_size``, Adam ``lr``) and the share of the embeddings in the
    train half."""

    bits: tuple[int, ...] = (4, 5, 6, 7, 8)
    seeds: int = 5
    epochs_per_stage: int = 20
    batch_size: int = 64
    lr: float = 1e-2
    train_fraction: float = 0.5


#: Adam lr 1e-2 and batch 64 as in [vali2024porcupine] §5; 20 epochs per growth stage (the
#: paper gives 100 epochs without saying whether per stage).
FULL = PorcupineConfig()
QUICK = PorcupineConfig(bits=(4, 5), seeds=2, epochs_per_stage=2)
METRICS = ["kl_divergence", "worst_case_disclosure", "worst_case_disclosure_plus_one",
           "average_disclosure", "sparseness", "std"]

#: [vali2024porcupine] Fig. 2 (= [vali2025thesis] Fig. 5.6), 4 bits, K = 16, M = 10 240 test
#: speakers.
PAPER_4BIT = {
    "vq": {"kl_divergence": 130.80, "worst_case_disclosure": 7.46, "sparseness": 0.28,
           "std": 306.15},
    "normalised_sfvq": {"kl_divergence": 22.88, "worst_case_disclosure": 4.53,
                        "sparseness": 0.26, "std": 133.35},
}


def _metrics(codewords: Tensor, test: Tensor) -> dict[str, float]:
    idx = nearest_neighbor(test, codewords)[1][:, 0]
    return privacy_metrics(index_histogram(idx, codewords.shape[0])).as_dict()


def one_seed(emb: Tensor, cfg: PorcupineConfig, seed: int) -> dict[int, dict[str, Any]]:
    """Split ``emb`` with ``seed``, fit both quantizers at every bitrate of ``cfg``, score."""
    gen = offset_generator(seed, 0)  # the split, the fits and k-means, in order
    perm = torch.randperm(emb.shape[0], generator=gen)
    n_train = int(cfg.train_fraction * emb.shape[0])
    train, test = emb[perm[:n_train]], emb[perm[n_train:]]
    out: dict[int, dict[str, Any]] = {}
    wanted = set(cfg.bits)

    def score(bits: int, sf) -> None:
        if bits not in wanted:
            return
        normalised = occurrence_normalise(sf, train).codewords.detach()
        vq = kmeans(train, 2**bits, generator=gen)
        _, _, points = sf.project(train)
        vq_points = vq[nearest_neighbor(train, vq)[1][:, 0]]
        out[bits] = {
            "vq": _metrics(vq, test),
            "normalised_sfvq": _metrics(normalised, test),
            "sfvq_corners": _metrics(sf.codewords.detach(), test),
            "train_mse": {
                "vq": float((train - vq_points).pow(2).sum(1).mean()),
                "sfvq_projection": float((train - points).pow(2).sum(1).mean()),
            },
        }

    fit_space_filling(
        train, max(cfg.bits), epochs_per_stage=cfg.epochs_per_stage,
        batch_size=cfg.batch_size, lr=cfg.lr, generator=gen,
        on_stage_end=score,
    )
    return out


def _summary(per_seed: list[dict[int, dict[str, Any]]], bits: list[int]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for b in bits:
        row: dict[str, Any] = {}
        for method in ("vq", "normalised_sfvq", "sfvq_corners"):
            row[method] = {}
            for m in METRICS:
                vals = torch.tensor([s[b][method][m] for s in per_seed], dtype=torch.float64)
                finite = vals[torch.isfinite(vals)]
                row[method][m] = {
                    "mean": float(vals.mean()),
                    "std": float(vals.std(correction=0)),
                    "finite_runs": int(finite.numel()),
                }
        lower = {m: all(s[b]["normalised_sfvq"][m] < s[b]["vq"][m] for s in per_seed)
                 for m in ("std", "kl_divergence")}
        row["normalised_lower_than_vq_in_every_seed"] = lower
        row["normalised_lower_than_vq_on_mean"] = {
            m: row["normalised_sfvq"][m]["mean"] < row["vq"][m]["mean"]
            for m in ("std", "kl_divergence")
        }
        summary[str(b)] = row
    return summary


def run(
    out_dir: Path, *, quick: bool = False, seed: int = 0, cache: str | Path | None = None,
    allow_dirty: bool = False,
) -> Path:
    """Embed (or read the cached embeddings), run ``cfg.seeds`` seeds from ``seed``."""
    from ..data.speaker_embeddings import speaker_embeddings

    cfg = QUICK if quick else FULL
    seeds = consecutive_seeds(seed, cfg.seeds)
    run_info = Run(command=f"vqkit reproduce {NAME}" + (" --quick" if quick else "")
                   + f" --seed {seed} --threads {torch.get_num_threads()}", seeds=seeds,
                   allow_dirty=allow_dirty)
    data = speaker_embeddings(cache=cache, progress=not quick)
    emb = data.embeddings
    per_seed = [one_seed(emb, cfg, s) for s in seeds]
    results = {
        "config": asdict(cfg),
        "data": {
            "utterances": emb.shape[0], "speakers": len(set(data.speakers)),
            "corpora": sorted(set(data.corpora)), "skipped_no_speech": len(data.skipped),
            "dim": emb.shape[1], "train": int(cfg.train_fraction * emb.shape[0]),
            "test": emb.shape[0] - int(cfg.train_fraction * emb.shape[0]),
        },
        "vq_baseline": "k-means (k-means++ seeding, <= 50 Lloyd iterations): minimum-MSE VQ",
        "summary": _summary(per_seed, cfg.bits),
        "per_seed": [{str(b): v for b, v in s.items()} for s in per_seed],
        "paper_4bit": PAPER_4BIT,
    }
    out_dir = Path(out_dir)
    path = write_json(out_dir / RESULT_FILE, run_info.record(results, quick=quick))
    try:
        _plot(results, out_dir / PLOT)
    except ImportError as err:
        log.warning("no plot written: %s", err)
    return path


def _plot(results: dict[str, Any], path: Path) -> None:
    from ..plotting import figure, save_png

    bits = results["config"]["bits"]
    fig, axes = figure(1, 4, size=(14, 3.2))
    for ax, m in zip(axes, ["kl_divergence", "worst_case_disclosure_plus_one", "sparseness", "std"],
                     strict=True):
        for method, style in (("vq", "o-"), ("normalised_sfvq", "s-")):
            mean = [results["summary"][str(b)][method][m]["mean"] for b in bits]
            err = [results["summary"][str(b)][method][m]["std"] for b in bits]
            ax.errorbar(bits, mean, yerr=err, fmt=style, label=method, capsize=3)
        ax.set_xlabel("bits")
        ax.set_title(m, fontsize=9)
        if m in ("kl_divergence", "std"):
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    save_png(fig, path, dpi=120)


def _fmt(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.3g}" if abs(v) < 100 else f"{v:.1f}"


def report(results_dir: Path) -> str:
    """Markdown section from ``porcupine.json``."""
    path = Path(results_dir) / RESULT_FILE
    if not path.is_file():
        return no_results(NAME, NAME)
    rec = read_json(path)
    res = rec["results"]
    d = res["data"]
    lines = [
        f"## Privacy PORCUPINE ({NAME})",
        "",
        f"{d['utterances']} resemblyzer embeddings ({d['dim']}-d) of {d['speakers']} speakers "
        f"from {', '.join(d['corpora'])}; {d['train']} train / {d['test']} test per seed (random "
        f"split), seeds {rec['seeds']}. Command: `{rec['command']}` ({rec['wall_seconds']:.0f} s, "
        f"{rec['environment']['threads']} thread(s), commit {rec['git_commit']}). Mean ± std "
        "over seeds of the test-index histogram metrics; worst-case disclosure is the paper's "
        "-log2(min g / M) (inf when an index is unused) with the published code's +1 variant "
        "in brackets. The paper's 4-bit numbers are for 10 240 Common Voice speakers "
        "(ECAPA, 192-d), not comparable in absolute terms.",
        "",
        "| bits | method | KL (bits) | worst-case (+1) | average | l2/l1 | std |",
        "|---|---|---|---|---|---|---|",
    ]
    for b, row in res["summary"].items():
        for method, label in (("vq", "VQ (k-means)"), ("normalised_sfvq", "normalised SFVQ")):
            r = row[method]

            def ms(m: str, r: dict[str, Any] = r) -> str:
                return f"{_fmt(r[m]['mean'])} ± {_fmt(r[m]['std'])}"

            worst = _fmt(r["worst_case_disclosure"]["mean"])
            lines.append(
                f"| {b} | {label} | {ms('kl_divergence')} | {worst} "
                f"({ms('worst_case_disclosure_plus_one')}) | {ms('average_disclosure')} | "
                f"{ms('sparseness')} | {ms('std')} |"
            )
    p = res["paper_4bit"]
    for method, label in (("vq", "VQ, paper"), ("normalised_sfvq", "resampled SFVQ, paper")):
        lines.append(f"| 4 | {label} | {p[method]['kl_divergence']} | "
                     f"{p[method]['worst_case_disclosure']} | - | {p[method]['sparseness']} | "
                     f"{p[method]['std']} |")
    every = all(all(r["normalised_lower_than_vq_in_every_seed"].values())
                for r in res["summary"].values())
    lines += ["", f"Normalised SFVQ has lower std and KL than VQ in every seed at every bitrate: "
              f"**{'yes' if every else 'no'}**.", "", f"![metrics]({PLOT})", ""]
    return "\n".join(lines)


# expected_minutes: with cached embeddings; embedding all corpora first took ~30 min.
# quick_minutes: measured 283 s at 1 thread without cached embeddings (over a minute, so no
# committed quick result).
REPRODUCTION = Reproduction(
    NAME, "Occurrence-normalised SFVQ vs VQ on resemblyzer speaker embeddings, 4-8 bits",
    expected_minutes=4.0, quick_minutes=4.7, result_files=(RESULT_FILE,), run=run, report=report,
    config=PorcupineConfig)
