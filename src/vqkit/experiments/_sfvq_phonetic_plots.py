"""Figures and the Markdown report of the sfvq-phonetic reproduction (numbers from its JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..interpret import codeword_distances, index_histograms, transition_matrix
from ..plotting import figure, label_histograms, matrix, save_png


def plot_all(out_dir: Path, plots: dict[str, str], sf, vq_codewords: Tensor, sf_idx: Tensor,
             vq_idx: Tensor, labels: list[str], seqs: dict[str, list[Tensor]],
             results: dict[str, Any], phones: list[str]) -> None:
    k = sf.codebook_size
    fric = [i for i, g in enumerate(labels) if g == "fricatives"]
    label_histograms(index_histograms(sf_idx[fric], [phones[i] for i in fric], k),
                    out_dir / plots["fricatives"],
                    title="SFVQ: fricative phones (Blackman 7, max 1)")
    label_histograms(index_histograms(sf_idx, labels, k), out_dir / plots["histograms"],
                    title="SFVQ: phone-group histograms (Blackman 7, max 1)")
    label_histograms(index_histograms(vq_idx, labels, k), out_dir / plots["vq_histograms"],
                    title="plain VQ (the VQ-VAE's codebook): phone-group histograms")
    jsd = results["analysis"]["sfvq"]["jsd_window7"]
    matrix(torch.tensor(jsd["matrix"]), out_dir / plots["jsd"], labels=jsd["names"],
                title="Jensen-Shannon distance, SFVQ group histograms", colorbar="JSD")
    matrix(codeword_distances(sf.codewords.detach()), out_dir / plots["distances"],
                title="SFVQ codeword distances", colorbar="Euclidean distance")
    matrix(codeword_distances(vq_codewords), out_dir / plots["vq_distances"],
                title="VQ codeword distances (VQ-VAE codebook)", colorbar="Euclidean distance")
    matrix(transition_matrix(seqs["sfvq"], k), out_dir / plots["transitions"], log2=True,
                title="SFVQ index transitions", colorbar="log2(1 + count)")
    _plot_track(results["track"], out_dir / plots["track"])


def _plot_track(track: dict[str, Any], path: Path) -> None:
    fig, axes = figure(2, 1, size=(11, 5), sharex=True)
    t = range(len(track["sfvq"]))
    axes[0].plot(t, track["sfvq"], ".-", ms=3)
    axes[0].set_ylabel("SFVQ position")
    axes[1].plot(t, track["vq"], ".", ms=4, color="C1")
    axes[1].set_ylabel("VQ index")
    prev = None
    for i, ph in enumerate(track["phones"]):
        if ph != prev and ph is not None:
            axes[1].annotate(ph, (i, -30), fontsize=6, annotation_clip=False)
            for ax in axes:
                ax.axvline(i - 0.5, color="0.85", lw=0.5)
        prev = ph
    axes[1].set_xlabel("frame (20 ms)")
    axes[0].set_title(f"index track of {track['file']}")
    save_png(fig, path, dpi=120)


def _range(r: dict[str, Any]) -> str:
    return f"[{r['start']}–{r['end']}]"


def report_markdown(rec: dict[str, Any], plots: dict[str, str]) -> str:
    # Links relative to docs/results.md, where `vqkit report` puts this section.
    plots = {k: f"../results/{v}" for k, v in plots.items()}
    res = rec["results"]
    a, d, cfg, p = res["analysis"], res["data"], res["config"], res["paper"]
    k = 2 ** cfg["bits"]
    w = a["range_width"]
    lines = [
        "## Phonetic structure of an SFVQ curve (sfvq-phonetic)",
        "",
        f"Speech VQ-VAE (log-mel, {cfg['vqvae']['channels']} channels, 64-d codes, {k} EMA "
        f"codewords, speaker-conditioned decoder) trained {cfg['vqvae']['steps']} steps on "
        f"{d['train_utterances']} utterances of {d['train_speakers']} speakers "
        f"({', '.join(cfg['corpora']) or 'aligned files only'}); {cfg['bits']}-bit SFVQ fitted "
        f"on its frozen encoder outputs ({d['train_frames_20ms']} frames of 20 ms). Phone "
        f"groups from PocketSphinx forced alignment of {d['aligned_utterances']} English "
        f"utterances ({d['labelled_frames_20ms']} labelled frames). Command: `{rec['command']}` "
        f"({rec['wall_seconds']:.0f} s on a shared, loaded 2-core machine, "
        f"{rec['environment']['threads']} thread, commit {rec['git_commit']}).",
        "",
        f"Encoder-output MSE (sum over 64 dims): SFVQ projection {res['sfvq_projection_mse']:.3f}"
        f", the model's VQ {res['vq_mse']:.3f} (total variance "
        f"{res['encoder_output_variance']:.3f}). Codeword order: mean pair distance / mean "
        f"consecutive distance = {a['ordering']['sfvq']['pair_over_consecutive']:.2f} for "
        f"SFVQ, {a['ordering']['vq']['pair_over_consecutive']:.2f} for VQ. Codewords used by "
        f"the labelled frames: SFVQ {a['sfvq']['codes_used']}, VQ {a['vq']['codes_used']} "
        f"of {k}.",
        "",
        f"**Contiguity.** Share of each group's frames inside its best contiguous range of {w} "
        f"indices (of {k}), and the mass-weighted group purity of the {k // w} fixed ranges of "
        f"{w} indices; a random relabelling of the SFVQ cells (mean of {cfg['permutations']}) "
        "is the unordered null model.",
        "",
        "| group | frames | SFVQ share | SFVQ range | SFVQ peak | VQ share | VQ range |",
        "|---|---|---|---|---|---|---|",
    ]
    for g, r in a["sfvq"]["groups"].items():
        v = a["vq"]["groups"][g]
        lines.append(f"| {g} | {r['count']} | {r['share']:.3f} | {_range(r)} | {r['peak']} | "
                     f"{v['share']:.3f} | {_range(v)} |")
    rows = (("SFVQ", a["sfvq"]), ("VQ (VQ-VAE codebook)", a["vq"]),
            ("SFVQ cells, random order", a["sfvq_permuted"]))
    lines += ["", f"| indices | mean share in best {w}-range | purity of {w}-ranges | "
              "purity of single cells |", "|---|---|---|---|"]
    lines += [f"| {n} | {m['mean_share']:.3f} | {m['range_purity']:.3f} | "
              f"{m['cell_purity']:.3f} |" for n, m in rows]
    cv_s, cv_v = a["sfvq"]["consonant_vowel_split"], a["vq"]["consonant_vowel_split"]
    sil = a["sfvq"]["silence_at_end"]
    names = a["sfvq"]["jsd_window7"]["names"]
    jsd = a["sfvq"]["jsd_window7"]["matrix"]

    def j(x: str, y: str) -> float:
        return jsd[names.index(x)][names.index(y)]

    fp, pp = a.get("fricative_phones", {}).get("sfvq", {}), p.get("fricative_peaks", {})
    if fp:
        lines += ["", "Fricative phones: peak of the smoothed SFVQ histogram (median index; "
                  "frames) against the paper's peaks (TIMIT, its own curve and direction).", "",
                  "| phone | " + " | ".join(fp) + " |", "|---|" + "---|" * len(fp),
                  "| SFVQ peak (median; frames) | " + " | ".join(
                      f"{v['peak']} ({v['median']:.0f}; {v['count']})" for v in fp.values())
                  + " |",
                  "| paper peak | " + " | ".join(str(pp.get(ph, "–")) for ph in fp) + " |"]
    lines += [
        "",
        f"**Paper comparison.** Consonants (plosives, fricatives, nasals) vs vowels+diphthongs "
        f"by one threshold on the index: balanced accuracy {cv_s['balanced_accuracy']:.3f} at "
        f"index {cv_s['threshold']} for SFVQ, {cv_v['balanced_accuracy']:.3f} for VQ (paper: a "
        f"split around index {p['consonant_vowel_boundary']} of 256). Silence frames in the "
        f"lowest / highest {sil['edge_width']} indices: {sil['share_low_end']:.3f} / "
        f"{sil['share_high_end']:.3f} (paper: silence at [0–20]; the curve's direction is "
        f"arbitrary). Jensen–Shannon distance (Blackman-smoothed SFVQ histograms): "
        f"vowels–diphthongs {j('vowels', 'diphthongs'):.2f} (paper {p['jsd_vowel_diphthong']}), "
        f"silence–vowels {j('silence', 'vowels'):.2f} (paper {p['jsd_silence_vowel']}). "
        f"Transitions to a different index that stay within ±2 indices: "
        f"{a['sfvq']['transitions_within_2_of_diagonal']:.3f} (SFVQ) vs "
        f"{a['vq']['transitions_within_2_of_diagonal']:.3f} (VQ).",
        "",
        f"![SFVQ histograms]({plots['histograms']}) ![VQ histograms]({plots['vq_histograms']})",
        "",
        f"![JSD]({plots['jsd']}) ![SFVQ distances]({plots['distances']}) "
        f"![VQ distances]({plots['vq_distances']}) ![transitions]({plots['transitions']})",
        "",
        f"![track]({plots['track']}) ![fricatives]({plots['fricatives']})",
        "",
    ]
    return "\n".join(lines)
