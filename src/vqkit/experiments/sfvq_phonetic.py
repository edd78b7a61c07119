"""The phonetic analysis of [vali2023sfvq] §4 on a speech VQ-VAE trained here.

A small speaker-conditioned VQ-VAE (:mod:`vqkit.apps.latent.speech_vqvae`) is trained on
80-band log-mel frames of the installed English speech (Asterisk prompts, codec2 examples,
LibriVox clips); its encoder is frozen and an SFVQ with the paper's growth schedule is fitted
on the encoder outputs of all training frames. Frames of the English utterances with known
text get phone labels by PocketSphinx forced alignment (the paper used TIMIT's hand labels)
and are mapped to the paper's seven phone groups. The paper's analyses (Blackman-smoothed
group histograms, Jensen-Shannon matrix, codeword distances, transitions, an utterance's
index track) compare the SFVQ index with the model's own (unordered) VQ index, and the
contiguity of each group along the index axis is measured against both and against the SFVQ
indices under random relabellings (the same cells in an arbitrary order).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..apps.latent import purity
from ..apps.latent.alignment import (
    CONSONANTS,
    PHONE_GROUPS,
    VOWELS,
    aligned_utterances,
    frame_labels,
    frame_phones,
)
from ..apps.latent.logmel import log_mel
from ..apps.latent.speech_vqvae import TrainConfig, train_speech_vqvae
from ..data.speech import load_wav, utterances
from ..interpret import (
    codeword_distances,
    curve_positions,
    index_histograms,
    jensen_shannon_matrix,
    nearest_corner,
    transition_matrix,
)
from ..progress import bar_callback
from ..training.provenance import Run, write_json
from ..training.seed import offset_generator, offset_seed_global
from ..training.space_filling import fit_space_filling
from ._sfvq_phonetic_plots import plot_all, report_markdown
from .reproduction import Reproduction, json_report

log = logging.getLogger(__name__)

NAME = "sfvq-phonetic"
RESULT_FILE = "sfvq_phonetic.json"
PLOTS = {
    "histograms": "sfvq_phonetic_histograms.png",
    "vq_histograms": "sfvq_phonetic_vq_histograms.png",
    "jsd": "sfvq_phonetic_jsd.png", "distances": "sfvq_phonetic_distances.png",
    "vq_distances": "sfvq_phonetic_vq_distances.png",
    "transitions": "sfvq_phonetic_transitions.png", "track": "sfvq_phonetic_track.png",
    "fricatives": "sfvq_phonetic_fricatives.png",
}
GROUPS = list(PHONE_GROUPS)
TRACK_TEXT_FILE = "sense_and_sensibility_01_austen_64kb-0880.wav"  # "he was not an ill ..."

@dataclass(frozen=True)
class PhoneticConfig:
    """Settings of the run (recorded as the results' ``config``).

    Attributes:
        corpora: the corpora the VQ-VAE and the SFVQ train on (empty: the aligned files only).
        aligned_limit: how many aligned utterances to analyse (None: all).
        vqvae: the speech VQ-VAE's training settings.
        bits, sfvq_epochs_per_stage, sfvq_batch, sfvq_lr: the SFVQ growth schedule.
        range_width: the width of the index ranges of the contiguity measures.
        permutations: random relabellings of the SFVQ cells averaged over.
    """

    corpora: tuple[str, ...] = ("asterisk-en", "codec2", "librivox")
    aligned_limit: int | None = None
    vqvae: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=1500, batch=32, segment=64, lr=4e-4, channels=128, codebook_size=256))
    bits: int = 8
    sfvq_epochs_per_stage: int = 5
    sfvq_batch: int = 64
    sfvq_lr: float = 1e-3
    range_width: int = 32
    permutations: int = 20


FULL = PhoneticConfig()
QUICK = PhoneticConfig(corpora=(), aligned_limit=8,
                       vqvae=TrainConfig(steps=30, batch=8, segment=32, lr=1e-3, channels=16,
                                         codebook_size=32),
                       bits=5, sfvq_epochs_per_stage=1, range_width=4, permutations=5)

#: [vali2023sfvq] §4, Fig. 3-4: 8-bit SFVQ on the ZeroSpeech VQ-VAE, TIMIT labels.
PAPER = {"consonant_vowel_boundary": 125, "silence_range": [0, 20], "nasals_range": [105, 125],
         "fricatives_s_z_sh_zh_range": [64, 81], "jsd_vowel_diphthong": 0.19,
         "jsd_silence_vowel": 0.98,
         "fricative_peaks": {"F": 51, "V": 50, "TH": 78, "DH": 80, "S": 71, "Z": 67, "SH": 65,
                             "ZH": 67, "HH": 46}}


def fricative_phones(idx: Tensor, phones: list[str], k: int) -> dict[str, dict[str, float]]:
    """Per fricative phone ([vali2023sfvq] Fig. 4): the peak of its Blackman-smoothed histogram, its
    median index and frame count."""
    out: dict[str, dict[str, float]] = {}
    for ph in PHONE_GROUPS["fricatives"]:
        pick = torch.tensor([p == ph for p in phones])
        if not bool(pick.any()):
            continue
        hist = index_histograms(idx[pick], [ph] * int(pick.sum()), k)[ph]
        out[ph] = {"peak": int(hist.argmax()), "median": float(idx[pick].double().median()),
                   "count": int(pick.sum())}
    return out


def _mel(path: Path) -> Tensor:
    audio, _ = load_wav(path, 16000)
    m = log_mel(audio)
    return m[: m.shape[0] // 2 * 2]


def _ordering(codewords: Tensor) -> dict[str, float]:
    d = codeword_distances(codewords).double()
    k = d.shape[0]
    consecutive = float(d.diagonal(1).mean())
    pairs = float(d.sum() / (k * (k - 1)))
    return {"mean_consecutive_distance": consecutive, "mean_pair_distance": pairs,
            "pair_over_consecutive": pairs / consecutive}


def _near_diagonal(trans: Tensor, band: int) -> float:
    i, j = torch.meshgrid(torch.arange(trans.shape[0]), torch.arange(trans.shape[1]),
                          indexing="ij")
    off = (i != j)
    near = off & ((i - j).abs() <= band)
    return float(trans[near].sum()) / max(float(trans[off].sum()), 1.0)


def _contiguity(idx: Tensor, labels: list[str], k: int, width: int) -> dict[str, Any]:
    ranges = purity.label_ranges(idx, labels, k, width)
    lab_ids = torch.tensor([GROUPS.index(g) for g in labels])
    return {"groups": ranges,
            "mean_share": sum(r["share"] for r in ranges.values()) / len(ranges),
            "range_purity": purity.range_purity(idx, lab_ids, k, width),
            "cell_purity": purity.range_purity(idx, lab_ids, k, 1)}


def analyse(sf_idx: Tensor, vq_idx: Tensor, labels: list[str], sequences: dict[str, list[Tensor]],
            k: int, cfg: PhoneticConfig, gen: torch.Generator) -> dict[str, Any]:
    """All numbers of the phonetic analysis for integer SFVQ and VQ indices of labelled frames."""
    width = cfg.range_width
    res: dict[str, Any] = {"range_width": width}
    res["sfvq"] = _contiguity(sf_idx, labels, k, width)
    res["vq"] = _contiguity(vq_idx, labels, k, width)
    perms = [_contiguity(purity.permuted(sf_idx, k, gen), labels, k, width)
             for _ in range(cfg.permutations)]
    res["sfvq_permuted"] = {m: sum(p[m] for p in perms) / len(perms)
                            for m in ("mean_share", "range_purity", "cell_purity")}
    is_cons = torch.tensor([g in CONSONANTS for g in labels])
    keep = torch.tensor([g in CONSONANTS or g in VOWELS for g in labels])
    for name, idx in (("sfvq", sf_idx), ("vq", vq_idx)):
        acc, t = purity.best_threshold_split(idx[keep], is_cons[keep])
        res[name]["consonant_vowel_split"] = {"balanced_accuracy": acc, "threshold": t}
        res[name]["codes_used"] = int(idx.unique().numel())
        sil = idx[torch.tensor([g == "silence" for g in labels])]
        edge = max(k // 10, 1)
        low, high = float((sil < edge).double().mean()), float((sil >= k - edge).double().mean())
        res[name]["silence_at_end"] = {"edge_width": edge, "share_low_end": low,
                                       "share_high_end": high}
        trans = transition_matrix(sequences[name], k)
        res[name]["transitions_within_2_of_diagonal"] = _near_diagonal(trans, 2)
        for w in (1, 7):
            hist = index_histograms(idx, labels, k, window=w)
            names, jsd = jensen_shannon_matrix(hist)
            res[name][f"jsd_window{w}"] = {"names": names, "matrix": jsd.tolist()}
    return res


def _track(model, sf, mel: Tensor, segs) -> dict[str, Any]:
    with torch.no_grad():
        z = model.encode(mel[None])[0]
    labels = frame_labels(segs, z.shape[0], stride=2)
    phones = frame_phones(segs, z.shape[0], stride=2)
    return {"sfvq": curve_positions(sf, z).tolist(), "vq": model.vq.encode(z).tolist(),
            "groups": labels, "phones": phones}


def run(out_dir: Path, *, quick: bool = False, seed: int = 0, allow_dirty: bool = False
        ) -> Path:
    """Train the VQ-VAE, fit the SFVQ, align, analyse; write JSON and PNGs into ``out_dir``.

    Raises:
        vqkit.data.MissingDataError: a speech corpus or the prompt texts are not installed.
        ImportError: pocketsphinx (alignment) or soundfile is not installed.
        RuntimeError: the configuration gives the VQ-VAE a codebook of another size than the
            SFVQ's (a bug in the configuration, not in the input).
    """
    cfg = QUICK if quick else FULL
    offset_seed_global(seed)  # the layers' initialisation
    gen = offset_generator(seed, 0)  # every draw of the run, in order
    run_info = Run(command=f"vqkit reproduce {NAME}" + (" --quick" if quick else "")
                   + f" --seed {seed}", seeds=[seed], allow_dirty=allow_dirty)
    aligned = aligned_utterances(cfg.aligned_limit)
    train_utts = utterances(*cfg.corpora) if cfg.corpora else [u for u, _ in aligned]
    mels = {u.path: _mel(u.path) for u in train_utts}
    mels.update({u.path: _mel(u.path) for u, _ in aligned if u.path not in mels})
    speakers = sorted({u.speaker for u in train_utts})
    spk = torch.tensor([speakers.index(u.speaker) for u in train_utts])
    model, history = train_speech_vqvae(
        [mels[u.path] for u in train_utts], spk, len(speakers),
        cfg.vqvae, gen, progress=not quick)
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        z_train = torch.cat([model.encode(mels[u.path][None])[0] for u in train_utts])
    sf = fit_space_filling(z_train, cfg.bits, epochs_per_stage=cfg.sfvq_epochs_per_stage,
                           batch_size=cfg.sfvq_batch, lr=cfg.sfvq_lr, generator=gen,
                           progress=bar_callback("SFVQ", enabled=not quick))
    k = 2 ** cfg.bits
    z_train_hat = sf.project(z_train)[2]
    sf_idx_l, vq_idx_l, labels, seqs = [], [], [], {"sfvq": [], "vq": []}
    phones: list[str] = []
    with torch.no_grad():
        for utt, segs in aligned:
            z = model.encode(mels[utt.path][None])[0]
            s_idx = nearest_corner(curve_positions(sf, z)).clamp_max(k - 1)
            v_idx = model.vq.encode(z)
            seqs["sfvq"].append(s_idx)
            seqs["vq"].append(v_idx)
            lab = frame_labels(segs, z.shape[0], stride=2)
            keep = torch.tensor([g is not None for g in lab])
            sf_idx_l.append(s_idx[keep])
            vq_idx_l.append(v_idx[keep])
            labels += [g for g in lab if g is not None]
            ph = frame_phones(segs, z.shape[0], stride=2)
            phones += [p for p, g in zip(ph, lab, strict=True) if g is not None]
    sf_idx, vq_idx = torch.cat(sf_idx_l), torch.cat(vq_idx_l)
    vq_k = model.vq.codebook_size
    if vq_k != k:
        raise RuntimeError(f"the VQ-VAE codebook ({vq_k}) must match the SFVQ size ({k})")
    res = analyse(sf_idx, vq_idx, labels, seqs, k, cfg, gen)
    res["fricative_phones"] = {"sfvq": fricative_phones(sf_idx, phones, k),
                               "vq": fricative_phones(vq_idx, phones, k)}
    res["ordering"] = {"sfvq": _ordering(sf.codewords.detach()),
                       "vq": _ordering(model.vq.codewords.detach())}
    track_utt = next(((u, s) for u, s in aligned if u.path.name == TRACK_TEXT_FILE), aligned[0])
    results = {
        "config": asdict(cfg),
        "data": {"train_utterances": len(train_utts), "train_speakers": len(speakers),
                 "train_frames_20ms": int(z_train.shape[0]),
                 "aligned_utterances": len(aligned), "labelled_frames_20ms": len(labels),
                 "group_counts": {g: labels.count(g) for g in GROUPS}},
        "vqvae_logmel_mse_per_100_steps": history,
        "sfvq_projection_mse": float((z_train - z_train_hat).pow(2).sum(1).mean()),
        "vq_mse": float((z_train - model.vq.decode(model.vq.encode(z_train))).pow(2).sum(1).mean()),
        "encoder_output_variance": float(z_train.var(0).sum()),
        "analysis": res,
        "track": {"file": track_utt[0].path.name, **_track(model, sf, mels[track_utt[0].path],
                                                             track_utt[1])},
        "paper": PAPER,
    }
    out_dir = Path(out_dir)
    path = write_json(out_dir / RESULT_FILE, run_info.record(results, quick=quick))
    try:
        plot_all(out_dir, PLOTS, sf, model.vq.codewords.detach(), sf_idx, vq_idx, labels,
                 seqs, results, phones)
    except ImportError as err:
        log.warning("no plots written: %s", err)
    return path


REPRODUCTION = Reproduction(
    NAME, "[vali2023sfvq] phonetics: 8-bit SFVQ on a speech VQ-VAE encoder, PocketSphinx "
    "phones",
    expected_minutes=10.0, quick_minutes=0.04,
    result_files=(RESULT_FILE,), run=run, config=PhoneticConfig,
    report=json_report(NAME, RESULT_FILE, lambda record: report_markdown(record, PLOTS)))
