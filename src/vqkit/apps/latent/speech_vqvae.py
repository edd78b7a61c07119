"""A small speaker-conditioned speech VQ-VAE, the host model of [vali2023sfvq] at CPU scale.

[vali2023sfvq] §3 used the ZeroSpeech VQ-VAE of [vanniekerk2020zerospeech] (768-channel
encoder, 64-d codes, 256 EMA codewords, WaveRNN decoder). Here: a 1-D convolutional
encoder (80 log-mel bands -> ``channels`` -> 64-d at half the frame rate, i.e. one code per
20 ms as in the paper), an EMA VQ with commitment 0.25, and a convolutional decoder that
reconstructs the log-mel frames from the codes and a speaker embedding (the speaker
conditioning pushes speaker identity out of the codes, as in the paper's model).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...codebooks import EMA
from ...estimators import StraightThrough
from ...progress import bar_callback
from ...quantizers.vector import VectorQuantizer
from ...training.batches import Sampler
from ...training.loop import Trainer
from ...training.objective import StepResult
from ...training.schedule import Replacement, Schedule

log = logging.getLogger(__name__)


class SpeechVQVAE(nn.Module):
    """Conv encoder (stride 2) -> VQ -> speaker-conditioned conv decoder on log-mel frames.

    Args:
        n_mels: input bands (80).
        channels: hidden channels (the paper's encoder has 768).
        dim: code dimension (64 as in the paper).
        codebook_size: VQ size (256 as in the paper).
        n_speakers: size of the speaker table of the decoder.
        speaker_dim: speaker embedding size.

    Shape:
        ``mel`` ``(B, T, n_mels)`` with T even; codes ``(B, T/2, dim)``.

    Example:
        >>> m = SpeechVQVAE(channels=16, n_speakers=2)
        >>> recon, out = m(torch.randn(3, 8, 80), torch.tensor([0, 1, 1]))
        >>> tuple(recon.shape), tuple(out.indices.shape)
        ((3, 8, 80), (3, 4))
    """

    def __init__(
        self, n_mels: int = 80, channels: int = 128, dim: int = 64, codebook_size: int = 256,
        n_speakers: int = 1, speaker_dim: int = 16,
    ) -> None:
        super().__init__()
        c = channels
        self.encoder = nn.Sequential(
            nn.Conv1d(n_mels, c, 3, padding=1), nn.ReLU(),
            nn.Conv1d(c, c, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(c, c, 3, padding=1), nn.ReLU(),
            nn.Conv1d(c, dim, 1),
        )
        self.vq = VectorQuantizer(
            dim, codebook_size, estimator=StraightThrough(0.25), learning=EMA(0.99)
        )
        self.speaker = nn.Embedding(n_speakers, speaker_dim)
        self.decoder = nn.Sequential(
            nn.ConvTranspose1d(dim + speaker_dim, c, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(c, c, 3, padding=1), nn.ReLU(),
            nn.Conv1d(c, n_mels, 3, padding=1),
        )
        self.register_buffer("mel_mean", torch.zeros(n_mels))
        self.register_buffer("mel_std", torch.ones(n_mels))

    def set_normalisation_(self, mels: Sequence[Tensor]) -> None:
        """Per-band mean and std of the training frames (inputs are standardised with them)."""
        allf = torch.cat(list(mels))
        self.mel_mean.copy_(allf.mean(0))
        self.mel_std.copy_(allf.std(0).clamp_min(1e-3))

    def encode(self, mel: Tensor) -> Tensor:
        """Encoder outputs (continuous, before the VQ): ``(B, T, n_mels) -> (B, T//2, dim)``."""
        x = ((mel - self.mel_mean) / self.mel_std).transpose(1, 2)
        return self.encoder(x).transpose(1, 2)

    def forward(self, mel: Tensor, speaker: Tensor):
        z = self.encode(mel)
        out = self.vq(z)
        s = self.speaker(speaker)[:, None, :].expand(-1, z.shape[1], -1)
        h = torch.cat([out.quantized, s], dim=-1).transpose(1, 2)
        recon = self.decoder(h).transpose(1, 2) * self.mel_std + self.mel_mean
        return recon, out


@dataclass
class TrainConfig:
    """Training settings: Adam ``lr`` (4e-4 in the paper), ``steps`` of ``batch`` random
    ``segment``-frame crops, ``codebook_size`` codewords; dead codewords (<1 % of batches)
    are replaced every 200 steps."""

    steps: int = 2500
    batch: int = 32
    segment: int = 64
    lr: float = 4e-4
    channels: int = 128
    codebook_size: int = 256


def _crops(mels: list[Tensor], speakers: Tensor, batch: int, segment: int,
           gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """``batch`` random ``segment``-frame crops ``(batch, segment, n_mels)`` of utterances at
    least that long, and their speakers ``(batch,)``."""
    long = [i for i, m in enumerate(mels) if m.shape[0] >= segment]
    if not long:
        raise ValueError(f"no utterance has at least segment={segment} frames")
    pick = torch.randint(len(long), (batch,), generator=gen)
    xs, ss = [], []
    for p in pick.tolist():
        m = mels[long[p]]
        start = int(torch.randint(m.shape[0] - segment + 1, (1,), generator=gen))
        xs.append(m[start : start + segment])
        ss.append(speakers[long[p]])
    return torch.stack(xs), torch.stack(ss)


def reconstruction_mse(model: SpeechVQVAE, batch: tuple[Tensor, Tensor]) -> StepResult:
    """Log-mel MSE of the reconstruction + the VQ's commitment loss; the MSE is the ``mse``
    meter.

    Args:
        model: the VQ-VAE, in training mode.
        batch: log-mel crops ``(B, T, n_mels)`` and their speakers ``(B,)``.
    """
    x, s = batch
    recon, out = model(x, s)
    mse = (recon - x).pow(2).mean()
    return StepResult(mse + out.loss, indices=out.indices, metrics={"mse": float(mse.detach())})


def train_speech_vqvae(
    mels: list[Tensor], speakers: Tensor, n_speakers: int, cfg: TrainConfig,
    generator: torch.Generator, *, progress: bool = True,
) -> tuple[SpeechVQVAE, list[float]]:
    """Train a :class:`SpeechVQVAE` on log-mel utterances ``mels`` (each ``(T_i, 80)``) with
    integer ``speakers``; the codebook starts from k-means of the initial encoder's outputs.
    Training runs through :class:`vqkit.training.loop.Trainer`; ``generator`` draws the
    k-means sample, the crops and the dead-code replacements (every 200 steps, to the end).

    Returns the model (eval mode) and the mean reconstruction MSE of each 100 steps (the last
    entry: of the steps after the last multiple of 100).

    Raises:
        ValueError: ``speakers`` does not have one entry per utterance, or no utterance has
            ``cfg.segment`` frames.
    """
    if len(mels) != speakers.numel():
        raise ValueError(f"speakers must have one entry per utterance ({len(mels)}), got "
                         f"{speakers.numel()}")
    model = SpeechVQVAE(mels[0].shape[1], cfg.channels, codebook_size=cfg.codebook_size,
                        n_speakers=n_speakers)
    model.set_normalisation_(mels)
    with torch.no_grad():
        x, _ = _crops(mels, speakers, 128, cfg.segment, generator)
        model.vq.init_codebook_(model.encode(x).reshape(-1, model.vq.dim), generator=generator)
    crops = Sampler(lambda n, g: _crops(mels, speakers, n, cfg.segment, g), cfg.batch,
                    generator)
    schedule = Schedule(steps=cfg.steps, lr=cfg.lr, replacement=Replacement(200, None, 0.01),
                        log_every=100)
    trainer = Trainer(model, crops, schedule, objective=reconstruction_mse, quantizer=model.vq,
                      maintenance=generator,
                      progress=bar_callback("speech VQ-VAE", enabled=progress, unit="step"))
    trainer.run(on_window=_log_window)
    return model.eval(), [row["mse"] for row in trainer.meters.history]


def _log_window(trainer: Trainer) -> None:
    log.info("step %d: log-mel MSE %.4f", trainer.step, trainer.meters.last()["mse"])
