"""A small Fashion-MNIST VAE whose latent passes a StyleGAN-like mapping network.

[vali2025ganlatent] interprets the intermediate W space of StyleGAN2 [karras2020stylegan].
At CPU scale we train a VAE with the same split: a prior latent ``z ~ N(0, I)`` is pixel-
normalised and sent through an MLP *mapping network* (LeakyReLU 0.2, as in StyleGAN) to an
intermediate latent ``w``, and the *synthesis* network turns ``w`` into an image. SFVQ is
then fitted on ``w = mapping(z)`` samples, exactly where the paper fits it.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from ...progress import bar_callback
from ...training.batches import Epochs
from ...training.loop import Trainer
from ...training.objective import StepResult
from ...training.schedule import Schedule

log = logging.getLogger(__name__)


def _mlp(sizes: list[int], last_act: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_act:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class MappedVAE(nn.Module):
    """VAE on 28x28 images with a mapping network between the prior latent and the decoder.

    Args:
        z_dim: prior latent size.
        w_dim: intermediate (mapped) latent size.
        mapping_layers: fully connected layers of the mapping network (StyleGAN uses 8).
        hidden: width of the encoder and synthesis MLPs.

    Raises:
        ValueError: ``mapping_layers < 1``.

    Example:
        >>> vae = MappedVAE(z_dim=4, w_dim=8, hidden=32)
        >>> logits, mu, logvar = vae(torch.rand(5, 28, 28))
        >>> tuple(logits.shape), tuple(vae.mapping(mu).shape)
        ((5, 28, 28), (5, 8))
    """

    def __init__(
        self, z_dim: int = 16, w_dim: int = 32, mapping_layers: int = 4, hidden: int = 512
    ) -> None:
        super().__init__()
        if mapping_layers < 1:
            raise ValueError(f"mapping_layers must be >= 1, got {mapping_layers}")
        self.z_dim, self.w_dim = z_dim, w_dim
        self.encoder = _mlp([784, hidden, hidden // 2, 2 * z_dim], last_act=False)
        self.mapping_net = _mlp([z_dim] + [w_dim] * mapping_layers, last_act=True)
        self.synthesis_net = _mlp([w_dim, hidden // 2, hidden, 784], last_act=False)

    def mapping(self, z: Tensor) -> Tensor:
        """``w = f(z / rms(z))``: StyleGAN's pixel norm then the MLP."""
        z = z * torch.rsqrt(z.pow(2).mean(-1, keepdim=True) + 1e-8)
        return self.mapping_net(z)

    def synthesis_logits(self, w: Tensor) -> Tensor:
        return self.synthesis_net(w).reshape(*w.shape[:-1], 28, 28)

    @torch.no_grad()
    def synthesize(self, w: Tensor) -> Tensor:
        """Images in [0, 1] from mapped latents ``(..., w_dim) -> (..., 28, 28)``."""
        return torch.sigmoid(self.synthesis_logits(w))

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(x.reshape(x.shape[0], -1))
        return h[:, : self.z_dim], h[:, self.z_dim :]

    def forward(self, x: Tensor, generator: torch.Generator | None = None):
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
        z = mu + eps * (0.5 * logvar).exp() if self.training else mu
        return self.synthesis_logits(self.mapping(z)), mu, logvar

    @torch.no_grad()
    def sample_w(self, n: int, generator: torch.Generator, truncation: float = 1.0) -> Tensor:
        """``n`` mapped prior samples; ``truncation`` < 1 pulls them towards the mean W
        (StyleGAN's truncation trick, the mean estimated from 4096 samples)."""
        w = self.mapping(torch.randn(n, self.z_dim, generator=generator))
        if truncation != 1.0:
            mean = self.mapping(torch.randn(4096, self.z_dim, generator=generator)).mean(0)
            w = mean + truncation * (w - mean)
        return w


def vae_loss(logits: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """Negative ELBO per image: Bernoulli reconstruction (nats) + KL to N(0, I)."""
    rec = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum()
    return (rec + kl) / x.shape[0]


def train_mapped_vae(
    images: Tensor, *, epochs: int, batch_size: int = 128, lr: float = 1e-3,
    generator: torch.Generator, progress: bool = True, **model_kw: int,
) -> tuple[MappedVAE, list[float]]:
    """Train a :class:`MappedVAE` on ``images`` (``(N, 28, 28)`` floats in [0, 1]) with Adam
    through :class:`vqkit.training.loop.Trainer`; ``generator`` draws each epoch's shuffle and
    the reparameterisation noise. Returns the model (eval mode) and the mean negative ELBO of
    each epoch (nats per image).

    Raises:
        ValueError: ``images`` is not float ``(N, 28, 28)``.
    """
    if images.dim() != 3 or images.shape[1:] != (28, 28) or not images.is_floating_point():
        raise ValueError(f"images must be float (N, 28, 28), got {tuple(images.shape)} "
                         f"{images.dtype}")
    model = MappedVAE(**model_kw)
    source = Epochs(images, batch_size, shuffle=generator)
    history: list[float] = []
    total = 0.0

    def objective(vae: MappedVAE, x: Tensor) -> StepResult:
        logits, mu, logvar = vae(x, generator)
        loss = vae_loss(logits, x, mu, logvar)
        return StepResult(loss, metrics={"batch_nelbo": float(loss.detach()) * x.shape[0]})

    def per_epoch(trainer: Trainer, result: StepResult) -> None:
        nonlocal total
        total += result.metrics["batch_nelbo"]
        if trainer.step % source.epoch_length == 0:
            history.append(total / images.shape[0])
            total = 0.0
            log.info("epoch %d: negative ELBO %.2f nats", len(history), history[-1])

    if epochs > 0:
        schedule = Schedule(steps=epochs * source.epoch_length, lr=lr,
                            log_every=source.epoch_length)
        trainer = Trainer(model, source, schedule, objective=objective,
                          progress=bar_callback("mapped VAE", enabled=progress))
        trainer.run(on_step=per_epoch)
    return model.eval(), history
