"""Configuration of the learned image codec: frozen dataclasses, checked on construction.

A :class:`CodecConfig` (architecture and quantizer) is everything needed to rebuild a model
from a checkpoint; a :class:`TrainConfig` says how it was trained. Both round-trip through
plain dictionaries (``asdict`` / ``from_dict``) so checkpoints hold no pickled code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from vqkit.registry import ESTIMATORS, LEARNINGS

#: The quantizers the codec takes (their :data:`vqkit.registry.QUANTIZERS` names; the codec
#: packs integer indices): one codebook (VQ), residual, product or additive multi-codebook VQ.
QUANTIZER_KINDS = ("vq", "rvq", "pvq", "avq")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class QuantizerSpec:
    """Which quantizer sits in the bottleneck and how it is trained.

    Args:
        kind: ``"vq"``, ``"rvq"``, ``"pvq"`` or ``"avq"``.
        bits: bits per latent vector, split evenly over the codebooks
            (``K = 2 ** (bits // num_codebooks)`` entries each).
        num_codebooks: M (1 for ``"vq"``).
        estimator: ``"nsvq"``, ``"ste"``, ``"rotation"``, ``"diveq"`` or ``"diveq-detach"``.
        learning: ``"gradient"`` or ``"ema"`` (EMA needs an estimator with a commitment loss).
        beam_width: beam of the additive-VQ search.

    Raises:
        ValueError: an unknown ``kind``, ``estimator`` or ``learning``; ``bits``,
            ``num_codebooks`` or ``beam_width`` not a positive int; ``num_codebooks != 1`` for
            ``"vq"``; ``bits`` not divisible by ``num_codebooks``; or bits per codebook
            outside ``[1, 16]``.

    Example:
        >>> QuantizerSpec(kind="rvq", bits=12, num_codebooks=4).codebook_size
        8
    """

    kind: str = "vq"
    bits: int = 9
    num_codebooks: int = 1
    estimator: str = "nsvq"
    learning: str = "gradient"
    beam_width: int = 16

    def __post_init__(self) -> None:
        _choice("kind", self.kind, QUANTIZER_KINDS)
        ESTIMATORS.lookup(self.estimator)  # ValueError naming the known estimators
        LEARNINGS.lookup(self.learning)
        for name in ("bits", "num_codebooks", "beam_width"):
            _positive(name, getattr(self, name))
        if self.kind == "vq" and self.num_codebooks != 1:
            raise ValueError(f"num_codebooks must be 1 for kind='vq', got {self.num_codebooks}")
        if self.bits % self.num_codebooks:
            raise ValueError(
                f"bits={self.bits} must be divisible by num_codebooks={self.num_codebooks}"
            )
        if not 1 <= self.bits // self.num_codebooks <= 16:
            raise ValueError(
                f"bits per codebook must be in [1, 16], got {self.bits // self.num_codebooks}"
            )

    @property
    def codebook_size(self) -> int:
        return 2 ** (self.bits // self.num_codebooks)


@dataclass(frozen=True)
class CodecConfig:
    """Architecture of the convolutional VQ-VAE.

    Args:
        tile: side of the square tiles the codec works on (training patch size).
        downsample: encoder stride; the latent grid is ``tile // downsample`` squared.
        channels: image channels (3 for RGB, 1 for grey).
        hidden: width of the convolutional layers.
        latent_dim: D, the dimension of each latent vector.
        quantizer: the :class:`QuantizerSpec`.

    Raises:
        TypeError: ``quantizer`` is not a :class:`QuantizerSpec`.
        ValueError: a size is not a positive int, ``downsample`` is not 2, 4 or 8, ``tile``
            is not a multiple of ``downsample``, or (product VQ) ``latent_dim`` is not
            divisible by ``num_codebooks``.

    Example:
        >>> cfg = CodecConfig(tile=32, downsample=4)
        >>> cfg.grid, round(cfg.bits_per_pixel, 4)
        (8, 0.5625)
        >>> CodecConfig.from_dict(cfg.asdict()) == cfg
        True
    """

    tile: int = 32
    downsample: int = 4
    channels: int = 3
    hidden: int = 16
    latent_dim: int = 64
    quantizer: QuantizerSpec = field(default_factory=QuantizerSpec)

    def __post_init__(self) -> None:
        for name in ("tile", "downsample", "channels", "hidden", "latent_dim"):
            _positive(name, getattr(self, name))
        if self.downsample not in (2, 4, 8):
            raise ValueError(f"downsample must be 2, 4 or 8, got {self.downsample}")
        if self.tile % self.downsample:
            raise ValueError(f"tile={self.tile} must be a multiple of downsample={self.downsample}")
        if not isinstance(self.quantizer, QuantizerSpec):
            got = type(self.quantizer).__name__
            raise TypeError(f"quantizer must be a QuantizerSpec, got {got}")
        if self.quantizer.kind == "pvq" and self.latent_dim % self.quantizer.num_codebooks:
            raise ValueError(
                f"latent_dim={self.latent_dim} must be divisible by "
                f"num_codebooks={self.quantizer.num_codebooks} for product VQ"
            )

    @property
    def grid(self) -> int:
        """Side of the latent grid of one tile."""
        return self.tile // self.downsample

    @property
    def bits_per_tile(self) -> int:
        return self.grid * self.grid * self.quantizer.bits

    @property
    def bits_per_pixel(self) -> float:
        """Payload bits per pixel (without the file header)."""
        return self.bits_per_tile / (self.tile * self.tile)

    def asdict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodecConfig:
        """The config that :meth:`asdict` wrote (``quantizer`` a nested dict).

        Raises:
            TypeError: ``data`` is not a dict, or it holds a key that is no field.
            ValueError: a value the constructors reject (see :class:`QuantizerSpec` and
                :class:`CodecConfig`).
        """
        if not isinstance(data, dict):
            raise TypeError(f"config must be a dict, got {type(data).__name__}")
        args = dict(data)
        args["quantizer"] = QuantizerSpec(**dict(args.get("quantizer", {})))
        return cls(**args)


@dataclass(frozen=True)
class TrainConfig:
    """How a codec model is trained.

    Args:
        steps: optimizer steps.
        batch_size: tiles per step.
        lr: Adam learning rate.
        replace_every: dead-codeword replacement period in steps (0 = never); replacement stops
            ``2 * replace_every`` steps before the end, as in the NSVQ reference.
        replace_threshold: a codeword used in fewer than this fraction of batches is dead.
        seed: seeds the model initialisation, the batch order and the estimator noise.
        lr_schedule: ``"constant"`` or ``"cosine"`` (decay to 0 over the run).
        max_grad_norm: clip the global gradient norm to this before each step (None: never).

    Raises:
        ValueError: ``steps`` or ``batch_size`` not a positive int, ``lr <= 0`` (or NaN),
            ``replace_every`` not an int ``>= 0``, ``replace_threshold`` outside ``[0, 1]``,
            an unknown ``lr_schedule``, or ``max_grad_norm`` not None or > 0.
    """

    steps: int = 800
    batch_size: int = 16
    lr: float = 2e-3
    replace_every: int = 0
    replace_threshold: float = 0.01
    seed: int = 0
    lr_schedule: str = "constant"
    max_grad_norm: float | None = None

    def __post_init__(self) -> None:
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be None or > 0, got {self.max_grad_norm}")
        _choice("lr_schedule", self.lr_schedule, ("constant", "cosine"))
        _positive("steps", self.steps)
        _positive("batch_size", self.batch_size)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not isinstance(self.replace_every, int) or self.replace_every < 0:
            raise ValueError(f"replace_every must be an integer >= 0, got {self.replace_every!r}")
        if not 0.0 <= self.replace_threshold <= 1.0:
            raise ValueError(f"replace_threshold must be in [0, 1], got {self.replace_threshold}")

    def asdict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ImageModelConfig:
    """Architecture of the whole-image codec (:class:`~.network.WholeImageModel`).

    Args:
        channels: image channels (3: RGB).
        hidden: width of the convolutional layers.
        latent_dim: D, the dimension of each latent vector.
        downsample: encoder stride: one latent vector per ``downsample x downsample`` pixels
            (4, 8 or 16).
        codebook_size: K, codewords of each residual stage.
        stages: M, residual VQ stages; a file keeps any prefix of them (the rate).
        estimator: gradient estimator through the quantizer (a registered name).

    Raises:
        ValueError: a size is not a positive int, ``downsample`` is not 4, 8 or 16,
            ``codebook_size`` is not in ``[2, 65536]``, or ``estimator`` is unknown.

    Example:
        >>> cfg = ImageModelConfig(hidden=8, latent_dim=4, stages=2)
        >>> ImageModelConfig.from_dict(cfg.asdict()) == cfg
        True
    """

    channels: int = 3
    hidden: int = 64
    latent_dim: int = 64
    downsample: int = 8
    codebook_size: int = 256
    stages: int = 16
    estimator: str = "nsvq"

    def __post_init__(self) -> None:
        for name in ("channels", "hidden", "latent_dim", "downsample", "codebook_size", "stages"):
            _positive(name, getattr(self, name))
        if self.downsample not in (4, 8, 16):
            raise ValueError(f"downsample must be 4, 8 or 16, got {self.downsample}")
        if not 2 <= self.codebook_size <= 1 << 16:
            raise ValueError(f"codebook_size must be in [2, 65536], got {self.codebook_size}")
        ESTIMATORS.lookup(self.estimator)

    def asdict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageModelConfig:
        """The config :meth:`asdict` wrote.

        Raises:
            TypeError: ``data`` is not a dict, or holds a key that is no field.
            ValueError: a value the constructor rejects.
        """
        if not isinstance(data, dict):
            raise TypeError(f"config must be a dict, got {type(data).__name__}")
        return cls(**data)
