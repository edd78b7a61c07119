"""Results of the ANN benchmark: the JSON, the recall-curve plot and the Markdown report.

The report puts our table beside the thesis's SIFT1M Recall@T ([vali2023rpavq] Fig. 5 and
Fig. 6a), labelled as the paper's numbers on other data.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ...reporting import markdown_table
from ...training.provenance import Run, write_json

logger = logging.getLogger(__name__)

#: SIFT1M Recall@T of [vali2023rpavq] Fig. 5: AVQ/RVQ/PVQ trained with NSVQ and
#: the literature baselines (AQ [babenko2014aq], PQ [jegou2011pq]) as digitised from published
#: figures. Code length not stated.
PAPER_SIFT1M = {
    "T": [1, 2, 4, 8, 16, 32, 64, 128],
    "AVQ (NSVQ)": [0.292, 0.416, 0.549, 0.679, 0.795, 0.886, 0.947, 0.979],
    "RVQ (NSVQ)": [0.273, 0.393, 0.521, 0.650, 0.769, 0.866, 0.932, 0.972],
    "PVQ (NSVQ)": [0.226, 0.327, 0.441, 0.562, 0.687, 0.797, 0.882, 0.941],
    "AQ baseline": [0.313, 0.443, 0.605, 0.745, 0.858, 0.941, 0.979, 0.996],
    "PQ baseline": [0.234, 0.329, 0.454, 0.588, 0.726, 0.839, 0.909, 0.959],
}
#: Fig. 6a: RVQ (NSVQ) against the RVQ baseline (the method of [chen2010rvq]) at T = 1, 10, 100.
PAPER_SIFT1M_RVQ = {"T": [1, 10, 100], "RVQ (NSVQ)": [0.271, 0.689, 0.960],
                    "RVQ baseline": [0.263, 0.662, 0.956]}


def write_results(out_dir: Path, filename: str, payload: dict[str, Any], run: Run,
                  plot_name: str | None = None) -> Path:
    """Write the JSON with provenance (atomically) and, if matplotlib is there, the plot."""
    path = write_json(Path(out_dir) / filename, run.record(payload))
    if plot_name is not None:
        try:
            plot_recall(payload, Path(out_dir) / plot_name)
        except ImportError as err:  # the plot is optional; the JSON is the result
            logger.warning("no recall plot: %s", err)
    return path


def plot_recall(payload: dict[str, Any], path: Path) -> Path:
    """Recall@T curves, one panel per bit rate (FAISS dashed, vqkit solid); PNG, atomic.

    Raises:
        ImportError: if matplotlib is not installed.
    """
    from ...plotting import figure, pyplot, save_png

    entries = payload["entries"]
    bits = sorted({e["bits"] for e in entries})
    fig, axes = figure(1, len(bits), size=(6 * len(bits), 4.5), squeeze=False)
    colors = pyplot().get_cmap("tab20").colors
    for ax, b in zip(axes[0], bits, strict=True):
        for i, e in enumerate(e for e in entries if e["bits"] == b):
            ts = range(1, len(e["recall"]) + 1)
            style = "--" if e["family"] == "faiss" else ("-" if e.get("training") == "nsvq"
                                                         else ":")
            ax.plot(ts, e["recall"], style, color=colors[i % len(colors)], label=e["method"])
        ax.set_xscale("log")
        ax.set_xlabel("T")
        ax.set_ylabel("Recall@T")
        ax.set_title(f"{payload['dataset']}, {b} bits")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, path)


def _row(e: dict[str, Any]) -> list[Any]:
    mark = " *" if e.get("selected") else ""
    val = f"{e['validation_mse']:.4g}" if "validation_mse" in e else "-"
    val_r = (f"{e['validation_recall_at_10']:.3f}" if "validation_recall_at_10" in e
             else "-")
    return [e["method"] + mark, e["bits"], f"{e['recall_at_1']:.3f}",
            f"{e['recall_at_10']:.3f}", f"{e['recall_at_100']:.3f}", f"{e['mse']:.4g}", val_r,
            val,
            f"{e.get('train_cpu_seconds', e['train_seconds']):.1f}",
            f"{e.get('encode_cpu_seconds', e['encode_seconds']):.1f}"]


def _cpu(e: dict[str, Any]) -> float:
    """Train + encode CPU seconds of a row (wall seconds in files written before CPU times)."""
    return (e.get("train_cpu_seconds", e["train_seconds"])
            + e.get("encode_cpu_seconds", e["encode_seconds"]))


def goal_line(entries: list[dict[str, Any]], bits: int, n_queries: int | None = None) -> str:
    """Whether vqkit's best recipe row (``"selected"`` on the validation vectors; in older
    files, AVQ + NSVQ) reaches the best FAISS Recall@10 at ``bits``, and at what train +
    encode CPU time (with the binomial standard error of a Recall@10 over ``n_queries``
    queries, when given)."""
    ours = [e for e in entries if e["bits"] == bits and e["family"] == "vqkit"
            and e.get("selected", e["method"].startswith("vqkit AVQ")
                      and e.get("training") == "nsvq")]
    theirs = [e for e in entries if e["bits"] == bits and e["family"] == "faiss"]
    if not ours or not theirs:
        return f"No {bits}-bit vqkit/FAISS pair in this file."
    a = max(ours, key=lambda e: e["recall_at_10"])
    best = max(theirs, key=lambda e: e["recall_at_10"])
    gap = a["recall_at_10"] - best["recall_at_10"]
    verdict = "reaches" if gap >= 0 else "falls short of"
    p = best["recall_at_10"]
    se = "" if not n_queries else \
        f"; standard error of one Recall@10 here: {(p * (1 - p) / n_queries) ** 0.5:.3f}"
    return (f"At {bits} bits, {a['method']} has Recall@10 {a['recall_at_10']:.3f}; the best FAISS "
            f"quantizer, {best['method']}, has {best['recall_at_10']:.3f}: vqkit {verdict} it "
            f"({gap:+.3f}{se}), in {_cpu(a):.0f} s of train + encode CPU time against "
            f"{_cpu(best):.0f} s.")


def _encode_text(cfg: dict[str, Any]) -> str:
    """Which beam vqkit's RVQ and AVQ encode the database with (older files: one beam)."""
    rvq = cfg.get("rvq_encode_beam")
    if rvq is None or rvq == cfg["encode_beam"]:
        return f"RVQ and AVQ encode with beam {cfg['encode_beam']}. "
    return f"RVQ encodes with beam {rvq}, AVQ with beam {cfg['encode_beam']}. "


def _init_text(cfg: dict[str, Any]) -> str:
    init = cfg.get("init")
    if init is None:
        return "k-means++, up to 50 Lloyd iterations on all training vectors"
    steps = init.get("dim_steps", 1)
    how = (f"{init['iters']} Lloyd iterations" if steps == 1 else
           f"progressive-dimension k-means, {steps} steps of {init['iters']} Lloyd iterations,")
    return (f"{init.get('seeding', 'kmeans++')} seeding, {how} on at most "
            f"{init['max_points_per_centroid']} K sampled vectors; the '+ beam' rows re-encode "
            f"with beam {init['beam']} between codebooks")


def markdown(record: dict[str, Any], title: str, source: str) -> str:
    """The report section for one results file (``record`` as written by :func:`write_results`)."""
    res = record["results"]
    sizes, cfg = res["sizes"], res["config"]
    sch = cfg["schedule"]
    standard = "validation" in cfg  # the standard protocol (files before it: disjoint splits)
    criterion = ("Recall@10 (ties: MSE)" if any("validation_recall_at_10" in e
                                                  for e in res["entries"]) else "MSE")
    lines = [
        f"## {title}",
        "",
        f"Source: `{source}` (command `{record['command']}`, commit `{record['git_commit']}`, "
        f"torch threads {res['threads']['torch']}, FAISS threads {res['threads']['faiss']}, "
        f"{record['environment']['cpu']}, wall {record['wall_seconds']:.0f} s). Timings were "
        "measured on a shared, loaded 2-core machine: compare rows, not absolute values.",
        "",
        f"Data: {res['dataset']} ({res['dim']}-d), {sizes['train']} training vectors "
        f"({'drawn from' if standard else 'disjoint from'} the database), "
        f"{sizes['database']} database vectors, {sizes['queries']} "
        f"queries (disjoint from both). K = {cfg['codebook_size']} per codebook; M = "
        f"{cfg['num_codebooks']}. vqkit: residual k-means ({_init_text(cfg)}), then "
        f"{sch['steps']} NSVQ Adam steps (batch {sch['batch_size']}, lr {sch['lr']}, cosine "
        f"decay, dead-code replacement every {sch['replace_every']}). "
        + (f"vqkit trains on the training vectors less {cfg['validation']} held out for "
           f"validation; the row marked * is the recipe, chosen by its validation {criterion}. "
           f"AVQ trains with beam {cfg['avq_train_width']}; "
           + _encode_text(cfg) if standard else
           f"AVQ trains with beam {cfg['avq_train_width']}, encodes with beam "
           f"{cfg['avq_width']}; RVQ is greedy. ") +
        "Recall@T: the true nearest neighbour among the top T of asymmetric-distance search, "
        "run inside FAISS for every row (ours exported). MSE: mean ||x - x_hat||^2 over the "
        f"database. Train / encode (database): {'CPU' if standard else 'wall'} seconds, one "
        "thread.",
        "",
        *([] if res.get("complete", True) else [
            "**Partial run:** the run was stopped before every method had finished; the rows "
            "below are all that it wrote (the order of `vqkit.apps.ann.benchmark.plan`).", ""]),
    ]
    entries = res["entries"]
    lines += markdown_table(
        ["method", "bits", "R@1", "R@10", "R@100", "MSE", "val. R@10", "val. MSE", "train (s)",
         "encode (s)"],
        [_row(e) for b in sorted({e["bits"] for e in entries}) for e in entries if e["bits"] == b])
    lines += [""] + [goal_line(entries, b, sizes["queries"])
                     for b in sorted({e["bits"] for e in entries}, reverse=True)]
    lines += [
        "",
        "**The paper's numbers (SIFT1M, 128-d, 1M database; other data, code length not "
        "stated; [vali2023rpavq] Fig. 5):**",
        "",
        *markdown_table(list(PAPER_SIFT1M), [
            [t, *[f"{v[i]:.3f}" for k, v in PAPER_SIFT1M.items() if k != "T"]]
            for i, t in enumerate(PAPER_SIFT1M["T"])]),
    ]
    lines += ["", "Paper, Fig. 6a (SIFT1M): RVQ (NSVQ) R@1/10/100 = 0.271 / 0.689 / 0.960; "
              "RVQ baseline 0.263 / 0.662 / 0.956.", ""]
    return "\n".join(lines)
