"""The contract every quantizer keeps, and the input checks they share.

A quantizer maps channel-last vectors ``(..., D)`` to a :class:`~vqkit.types.QuantizerOutput`.
Besides ``forward`` / ``encode`` / ``decode``, the contract has the calls a training loop and
the tools make on any quantizer: :meth:`Quantizer.init_codebook_`,
:meth:`Quantizer.replace_dead_codes_`, :attr:`Quantizer.codebook_sizes`,
:attr:`Quantizer.bits_per_vector` and :meth:`Quantizer.config` / :meth:`Quantizer.from_config`.
Subclasses implement three methods on flat ``(N, D)`` inputs:

- ``_train_forward(x) -> (quantized, indices, loss, losses)`` for training mode;
- ``_encode(x) -> indices`` with shape ``(N, *index_shape)``;
- ``_decode(indices) -> (N, D)``;

and the base class handles shapes, masks, validation and eval mode, where ``forward`` is
``decode(encode(x))`` by construction.

**The dtype rule.** ``forward`` returns ``quantized`` in the dtype of its input, in training
and in eval mode (a bf16 network stays bf16; an fp32 network around a bf16 quantizer stays
fp32). ``decode`` has no input to follow and returns the codebook's dtype. So, exactly and for
every pair of dtypes, ``q.eval()(x).quantized == q.decode(q.encode(x)).to(x.dtype)``, and
without the cast whenever ``x`` has the codebook's dtype. Searches and estimators compute in
at least fp32 whatever the dtypes; statistics (EMA sums and counts, usage counters) are kept in
fp32 or int64 and ``.to(dtype)`` does not lower them.

Under ``torch.compile`` / ``torch.export`` the same code traces without graph breaks: value
checks become in-graph assertions, and a mask is applied in place (fixed shapes) by
quantizers that set ``masks_in_place``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from .. import distributed
from ..functional.metrics import bits_per_vector
from ..registry import QUANTIZERS
from ..types import Progress, QuantizerOutput
from .data_init import (
    check_data_init,
    fill_missing_flag_,
    initialise_on_first_batch_,
    register_flag_,
    warn_if_uninitialised,
)

if TYPE_CHECKING:
    from ..maintenance import ReplacementRule
    from .data_init import DataInit


def assert_in_graph(ok: Tensor, message: str) -> None:
    """Inside ``torch.compile`` / ``torch.export``: fail unless the bool tensor ``ok`` is True.

    A value check such as ``bool(torch.isfinite(x).all())`` needs a host sync, which breaks the
    graph. While compiling, checks call this instead: ``torch._assert_async`` stays in the graph
    and raises ``RuntimeError(message)`` when the graph runs (a device-side assert on CUDA), so
    bad values still never pass silently. Eager mode keeps the ``ValueError`` checks.
    """
    torch._assert_async(ok, message)


def check_vectors(x: Any, dim: int, name: str = "x") -> None:
    """Raise TypeError/ValueError unless ``x`` is a finite floating tensor ``(..., dim)``.

    While compiling, the finiteness check is an in-graph assertion (:func:`assert_in_graph`).

    Raises:
        TypeError: ``x`` is not a tensor or not of a floating dtype.
        ValueError: ``x`` is not ``(..., dim)`` or contains NaN/Inf (eager mode).
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")
    if x.dim() < 1 or x.shape[-1] != dim:
        raise ValueError(f"{name} must have shape (..., {dim}), got {tuple(x.shape)}")
    if torch.compiler.is_compiling():
        assert_in_graph(torch.isfinite(x).all(), f"{name} contains NaN or Inf values")
    elif x.numel() and not _all_finite(x):
        raise ValueError(f"{name} contains NaN or Inf values")


def _all_finite(x: Tensor) -> bool:
    """Whether a non-empty ``x`` holds no NaN or Inf, in one reduction without temporaries
    in the common case (``isfinite(x).all()`` builds three full-size masks, 30x slower on the
    CPU for a (65536, 64) batch).

    A sum is non-finite whenever an element is (IEEE: NaN and +-Inf absorb finite addends,
    +Inf + -Inf is NaN), so a finite sum proves every element finite. A non-finite sum may
    also be the overflow of finite elements; only then the max and min, which propagate NaN
    and show +-Inf, decide (one pass more)."""
    return bool(torch.isfinite(x.sum())) or (
        bool(torch.isfinite(x.amax())) and bool(torch.isfinite(x.amin())))


def check_samples(samples: Any, dim: int, minimum: int) -> Tensor:
    """``samples`` as checked ``(N, dim)`` rows, at least ``minimum`` of them over all ranks.

    Raises:
        TypeError: ``samples`` is not a tensor or not of a floating dtype.
        ValueError: ``samples`` is not ``(..., dim)``, contains NaN/Inf, or holds fewer than
            ``minimum`` vectors summed over the DDP ranks.
    """
    check_vectors(samples, dim, "samples")
    flat = samples.reshape(-1, dim)
    count = torch.tensor([flat.shape[0]], dtype=torch.long, device=flat.device)
    total = int(distributed.all_reduce_(count))
    if total < minimum:
        raise ValueError(f"samples must hold at least codebook_size={minimum} vectors, got {total}")
    return flat


def check_mask(mask: Any, lead: torch.Size, device: torch.device) -> Tensor:
    """Return ``mask`` as a bool tensor of shape ``lead`` on ``device``.

    Raises:
        TypeError: ``mask`` is not a tensor or not of dtype bool.
        ValueError: ``mask``'s shape is not ``lead`` (the input without its last axis).
    """
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor, got {mask.dtype}")
    if mask.shape != lead:
        raise ValueError(f"mask must have shape {tuple(lead)} (x without its last axis), "
                         f"got {tuple(mask.shape)}")
    return mask.to(device)


def check_index_tensor(indices: Any, high: int, name: str = "indices") -> None:
    """Raise unless ``indices`` is an integer tensor with values in ``[-1, high)``.

    While compiling, the range check is an in-graph assertion (:func:`assert_in_graph`).

    Raises:
        TypeError: ``indices`` is not a tensor, or has a floating, complex or bool dtype.
        ValueError: a value lies outside ``[-1, high)`` (eager mode).
    """
    if not isinstance(indices, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(indices).__name__}")
    if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
        raise TypeError(f"{name} must have an integer dtype, got {indices.dtype}")
    if torch.compiler.is_compiling():
        in_range = ((indices >= -1) & (indices < high)).all()
        assert_in_graph(in_range, f"{name} must lie in [-1, {high - 1}] (-1 = masked)")
    elif indices.numel():
        lo, hi = int(indices.min()), int(indices.max())
        if lo < -1 or hi >= high:
            raise ValueError(
                f"{name} must lie in [-1, {high - 1}] (-1 = masked), got values in [{lo}, {hi}]"
            )


def loss_over_kept(
    keep: Tensor, loss: Tensor, losses: Mapping[str, Tensor]
) -> tuple[Tensor, dict[str, Tensor]]:
    """Losses that are means over all N rows, where the masked rows (``keep`` False) gave
    exactly zero, turned into means over the kept rows (zero when none is kept)."""
    scale = keep.shape[0] / keep.sum().clamp_min(1).to(torch.float32)
    return loss * scale, {name: value * scale for name, value in losses.items()}


class Quantizer(nn.Module):
    """Base class: ``forward`` / ``encode`` / ``decode`` over channel-last tensors.

    Attributes:
        dim: D, the size of the last axis.
        index_shape: trailing shape of one vector's indices: ``()`` for one codebook,
            ``(M,)`` for M codebooks.
    """

    dim: int
    index_shape: tuple[int, ...] = ()
    #: dtype of the indices (float64 curve positions for space-filling VQ).
    index_dtype: torch.dtype = torch.long
    #: True when ``_train_forward(x, keep)`` takes a row mask (see :meth:`_train_forward`).
    masks_in_place: bool = False

    # -- subclass hooks -------------------------------------------------------------------------
    def _train_forward(
        self, x: Tensor, keep: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Mapping[str, Tensor]]:
        """Training-mode quantization of ``x (N, D)``.

        ``keep`` (N,) bool is given only while compiling and only to quantizers that set
        :attr:`masks_in_place`: all N rows go through with fixed shapes, and the rows with
        ``keep`` False must come back with index -1, a zero output, no share of the losses
        (see :func:`loss_over_kept`) and no effect on usage counters or EMA statistics.
        """
        raise NotImplementedError

    def _encode(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _decode(self, indices: Tensor) -> Tensor:
        raise NotImplementedError

    def _check_indices(self, indices: Tensor) -> None:
        raise NotImplementedError

    # -- what a training loop and the tools call on any quantizer -------------------------------
    #: Whether :meth:`init_codebook_` fits the codebook(s) to data (k-means, the curve's corner
    #: points); False for quantizers whose codebook is computed (FSQ, LFQ, BSQ), whose
    #: :meth:`init_codebook_` raises ``NotImplementedError``. Wrappers answer for what they wrap.
    initialises_from_data: bool = False

    def init_codebook_(
        self,
        samples: Tensor,
        *,
        generator: torch.Generator | None = None,
        progress: Progress | None = None,
        **options: Any,
    ) -> None:
        """Initialise the codebook(s) from data (k-means for codeword quantizers).

        Args:
            samples: ``(N, D)`` vectors (``(..., D)`` is flattened); under DDP each rank passes
                its own and all ranks end with the same codebook.
            generator: random source of the initialisation (seed it identically on all ranks).
            progress: :data:`vqkit.types.Progress` callback of a long initialisation (k-means
                reports ``done == total`` at its end); one-pass initialisations accept and
                ignore it.
            **options: quantizer-specific settings (``iters`` of k-means, ...).

        Raises:
            TypeError / ValueError: ``samples`` is not a finite ``(..., D)`` tensor, or holds
                fewer vectors than the initialisation needs.
            NotImplementedError: the quantizer has no data-driven initialisation.
        """
        raise NotImplementedError(f"{type(self).__name__} has no data-driven initialisation")

    def replace_dead_codes_(
        self,
        threshold: float = 0.01,
        *,
        rule: ReplacementRule | None = None,
        generator: torch.Generator | None = None,
    ) -> int:
        """Overwrite the codewords picked in fewer than ``threshold`` of the training batches
        since the last call (see :func:`vqkit.maintenance.replace_dead_codes_`).

        Args:
            threshold: a codeword used in fewer than this fraction of batches is dead.
            rule: a :class:`~vqkit.maintenance.ReplacementRule` (None: ``TileUsed()``).
            generator: random source of the replacement (seed it identically on all ranks).

        Returns:
            How many codewords were overwritten; this default, for quantizers without usage
            counters, has nothing to replace and returns 0.

        Raises:
            ValueError: ``threshold`` is outside ``[0, 1]`` (quantizers that replace).
        """
        return 0

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        """The number of entries K of the codebook behind each index column, in column order
        (``(K,)`` for one codebook, ``(K_1, ..., K_M)`` for M; for space-filling VQ the corner
        points in use now).

        Returns:
            A tuple of ints >= 1, one per column of ``encode``'s indices.

        Raises:
            NotImplementedError: a subclass that does not say.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define codebook_sizes")

    @property
    def bits_per_vector(self) -> float:
        """Bits of one vector's indices at a fixed rate: ``sum_m log2 K_m``.

        Returns:
            A float (``M log2 K`` for M codebooks of K entries).
        """
        return bits_per_vector(self.codebook_sizes)

    def config(self) -> dict[str, Any]:
        """Constructor arguments as plain values, enough to rebuild the quantizer.

        Returns:
            A dict of plain values (nested strategies as ``{"type": name, **arguments}``;
            generators are not saved); :meth:`from_config` takes it back.

        Raises:
            NotImplementedError: a subclass that cannot be rebuilt from a config.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define config()")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Quantizer:
        """A new quantizer built from :meth:`config`'s output (fresh state: load the
        ``state_dict`` separately, or use :func:`vqkit.load`).

        Args:
            config: what :meth:`config` returned.

        Returns:
            An instance of ``cls``.

        Raises:
            ValueError / TypeError: the config names unknown strategies or bad values.
            NotImplementedError: a subclass that cannot be rebuilt from a config.
        """
        raise NotImplementedError(f"{cls.__name__} does not define from_config()")

    # -- lazy data initialisation (:mod:`vqkit.quantizers.data_init`) ---------------------------
    #: The :class:`~vqkit.quantizers.data_init.DataInit` run on the first training batch, or
    #: None (initialisation by explicit :meth:`init_codebook_` calls only).
    data_init: DataInit | None = None

    def _use_data_init_(self, data_init: DataInit | None) -> None:
        """For constructors: keep ``data_init`` and, when given, register the bool buffer
        ``initialised`` (False until the first training batch).

        Raises:
            TypeError: ``data_init`` is neither None nor a ``DataInit``.
            ValueError: the quantizer has no data-driven initialisation.
        """
        self.data_init = check_data_init(data_init, self)
        if self.data_init is not None:
            register_flag_(self)

    def _initialise_lazily_(self, flat: Tensor, keep: Tensor | None) -> None:
        """Training mode, before quantizing ``flat (N, D)`` (``keep``: the mask's rows):
        the data initialisation, if this quantizer has one that has not run."""
        if self.data_init is not None:
            initialise_on_first_batch_(self, flat, keep)

    def _check_initialised(self) -> None:
        """Eval mode and ``encode``: warn if the data initialisation has not run."""
        if self.data_init is not None and not torch.compiler.is_compiling():
            warn_if_uninitialised(self)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        if self.data_init is not None:  # an older state_dict: initialised (see data_init)
            fill_missing_flag_(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- the contract ---------------------------------------------------------------------------
    def forward(self, x: Tensor, *, mask: Tensor | None = None) -> QuantizerOutput:
        """Quantize ``x``; masked positions get index -1, a zero output and no loss.

        A quantizer built with ``data_init`` first fits its codebooks to the kept vectors of
        its first training-mode call (:mod:`vqkit.quantizers.data_init`); before that, an
        eval-mode call warns.

        Args:
            x: the vectors, floating, last axis D.
            mask: which vectors to quantize (None: all).

        Returns:
            A :class:`~vqkit.types.QuantizerOutput`: ``quantized`` in the dtype of ``x``,
            ``indices``, the training ``loss`` and its named ``losses`` (zero in eval mode).

        Shape:
            x: ``(..., D)``; mask: ``(...)`` bool, True = quantize; ``quantized``
            ``(..., D)``; ``indices`` ``(..., *index_shape)``.

        Raises:
            TypeError: ``x`` is not a floating tensor, or ``mask`` is not a bool tensor.
            ValueError: ``x`` is not ``(..., D)`` or contains NaN/Inf, or ``mask``'s shape is
                not ``x.shape[:-1]``, or a data initialisation that is due gets no kept
                vector (over all ranks).
        """
        check_vectors(x, self.dim)
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.dim)
        keep = None if mask is None else check_mask(mask, lead, x.device).reshape(-1)
        if self.training:
            self._initialise_lazily_(flat, keep)
        else:
            self._check_initialised()
        in_place = self.masks_in_place or not self.training
        if keep is not None and flat.shape[0] and in_place and torch.compiler.is_compiling():
            return self._forward_masked_in_place(x, keep)
        if keep is not None:
            flat = flat[keep]
        loss = x.new_zeros((), dtype=torch.float32)
        losses: Mapping[str, Tensor] = {}
        if flat.shape[0] == 0:
            if self.training and distributed.is_distributed():
                # Run the (empty) update anyway: the other ranks' EMA all-reduce waits for ours.
                self._train_forward(flat)
            quantized = flat
            indices = torch.empty(0, *self.index_shape, dtype=self.index_dtype, device=x.device)
        elif self.training:
            quantized, indices, loss, losses = self._train_forward(flat)
        else:
            with torch.no_grad():
                indices = self._encode(flat)
            quantized = self._decode(indices).to(x.dtype)
        if keep is not None:
            quantized = x.new_zeros(keep.shape[0], self.dim).index_put((keep,), quantized)
            full = torch.full(
                (keep.shape[0], *self.index_shape), -1, dtype=indices.dtype, device=x.device
            )
            indices = full.index_put((keep,), indices)
        return QuantizerOutput(
            quantized.reshape(x.shape), indices.reshape(*lead, *self.index_shape), loss, losses
        )

    def _forward_masked_in_place(self, x: Tensor, keep: Tensor) -> QuantizerOutput:
        """:meth:`forward` with a mask in fixed shapes (used while compiling): selecting the
        kept rows has a data-dependent shape, so every row is quantized and the masked ones
        are then set to index -1 and a zero output.

        In eval mode this equals eager mode (rows are independent). In training mode,
        ``_train_forward(x, keep)`` keeps masked rows out of the losses and statistics; what
        differs from eager mode: the estimator's noise and the dropout depths are drawn for
        all rows, losses are rounded differently (last bits), and a batch whose rows are all
        masked still runs the EMA and dropout-counter updates (as eager mode does under DDP).
        """
        if self.training:
            quantized, indices, loss, losses = self._train_forward(x.reshape(-1, self.dim), keep)
        else:
            out = self.forward(x)
            quantized, indices, loss, losses = out.quantized, out.indices, out.loss, out.losses
        rows = keep.reshape(-1, *(1 for _ in self.index_shape))
        indices = indices.reshape(-1, *self.index_shape).where(rows, -1)
        quantized = quantized.reshape(-1, self.dim).where(keep[:, None], 0.0)
        lead = x.shape[:-1]
        return QuantizerOutput(
            quantized.reshape(x.shape), indices.reshape(*lead, *self.index_shape), loss, losses
        )

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Indices of ``x`` (no gradient; the same in training and eval mode).

        Shape:
            x: ``(..., D)``; returns ``(..., *index_shape)``.

        Raises:
            TypeError: ``x`` is not a floating tensor.
            ValueError: ``x`` is not ``(..., D)`` or contains NaN/Inf.
        """
        check_vectors(x, self.dim)
        self._check_initialised()
        return self._encode(x.reshape(-1, self.dim)).reshape(*x.shape[:-1], *self.index_shape)

    def decode(self, indices: Tensor) -> Tensor:
        """Reconstruction from ``indices``; index -1 contributes zero.

        Shape:
            indices: ``(..., *index_shape)``; returns ``(..., D)`` in the codebook's dtype.

        Raises:
            TypeError: ``indices`` is not a tensor, or has a dtype indices cannot have
                (not an integer dtype; for space-filling VQ's curve positions, complex or
                bool).
            ValueError: ``indices`` do not end in ``index_shape`` (a prefix of the stages for
                residual VQ) or hold a value outside ``[-1, K)`` (the curve's range for
                space-filling VQ).
        """
        self._check_indices(indices)
        n_tail = len(self.index_shape)
        lead = indices.shape[: indices.dim() - n_tail]
        flat = indices.reshape(-1, *indices.shape[indices.dim() - n_tail :])
        return self._decode(flat.long()).reshape(*lead, self.dim)


def quantizer_to_config(quantizer: Quantizer) -> dict[str, Any]:
    """``{"type": registered name, "config": quantizer.config()}``: the quantizer without its
    state, as saved files and wrapping quantizers store it.

    Raises:
        TypeError: the quantizer's class is not in :data:`vqkit.registry.QUANTIZERS`.
    """
    return {"type": QUANTIZERS.name_of(type(quantizer)), "config": quantizer.config()}


def quantizer_from_config(config: Mapping[str, Any]) -> Quantizer:
    """A new quantizer from :func:`quantizer_to_config`'s output.

    Raises:
        ValueError: the type is not in :data:`vqkit.registry.QUANTIZERS`.
    """
    return QUANTIZERS.lookup(config["type"]).from_config(config["config"])
