"""Shared training logic of the multi-codebook quantizers (residual, product, additive VQ).

A :class:`MultiCodebookQuantizer` holds M :class:`~vqkit.codebooks.Codebook` objects in an
``nn.ModuleList`` (so usage counters and EMA buffers are per codebook) and trains them as
[vali2023rpavq] does: the indices come from a hard search, the composite ``x_hat`` is built from
differentiable lookups, and the estimator is applied through an
:class:`~vqkit.quantizers.application.EstimatorApplication` (one call on the composite by
default). An EMA codebook moves each selected codeword toward its target: ``x`` minus the other
selected codewords (additive and residual VQ), the sub-vector (product VQ), or the stage's
residual (residual VQ with :class:`~vqkit.quantizers.application.PerStage`).

Each codebook may have a parameterisation (:mod:`vqkit.parameterisations`). The sum-type
quantizers take only those whose code space is the data space (direct, SimVQ); product VQ takes
all of them, one per sub-space: the input is taken to the code space sub-vector by
sub-vector, the search, the estimator and the EMA run there, and the output is taken back.

Subclasses define the search (:meth:`_select`), the codebook dimensions, and whether the parts
are summed or concatenated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .. import distributed
from ..codebooks import Codebook, CodebookLearning
from ..estimators import Estimator
from ..functional.beam import residual_beam_search
from ..functional.kmeans import SEEDINGS, kmeans, stage_progress
from ..functional.least_squares import least_squares_codebooks
from ..functional.search import nearest_indices
from ..maintenance import ReplacementRule, replace_dead_codes_
from ..parameterisations import CodebookParameterisation, Direct
from ..registry import DATA_INITS, LEARNINGS, PARAMETERISATIONS
from ..strategy import from_config, to_config
from ..types import Progress
from .application import EstimatorApplication, application_from_config, as_application
from .base import Quantizer, check_index_tensor, check_samples, loss_over_kept
from .beam_fit import BeamFit, check_beam_fit, fit_rows


def check_count(value: Any, name: str) -> int:
    """``value`` as an int >= 1.

    Raises:
        ValueError: ``value`` is not an int >= 1 (a bool is not an int here); the message
            names ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


class MultiCodebookQuantizer(Quantizer):
    """Base class of residual, product and additive VQ (:class:`~vqkit.ResidualVQ` ...).

    Subclasses call :meth:`_build` from their constructor and implement :meth:`_select`.
    """

    #: True: x_hat is the sum of the parts; False: their concatenation (product VQ).
    sums_parts: bool = True

    codebooks: nn.ModuleList

    def _build(
        self,
        dim: int,
        codebook_size: int,
        num_codebooks: int,
        codebook_dim: int,
        estimator: Estimator | EstimatorApplication | None,
        learning: CodebookLearning | None,
        init: str,
        parameterisation: CodebookParameterisation | None = None,
    ) -> None:
        self.dim = check_count(dim, "dim")
        size = check_count(codebook_size, "codebook_size")
        self.num_codebooks = check_count(num_codebooks, "num_codebooks")
        self.index_shape = (self.num_codebooks,)
        self.application = as_application(estimator)
        if parameterisation is not None and self.sums_parts and not parameterisation.in_data_space:
            raise ValueError(
                f"{type(self).__name__} cannot use {parameterisation!r}: its codewords are summed "
                "in the data space, and a sum of unit-norm or separately projected codewords "
                "has no common residual to search; use Direct() or SimVQ() here, or ProductVQ / "
                "VectorQuantizer for cosine and factorised codebooks")
        self.codebooks = nn.ModuleList(
            Codebook(size, codebook_dim, learning=learning, init=init,
                     parameterisation=parameterisation)
            for _ in range(self.num_codebooks)
        )

    # -- properties -------------------------------------------------------------------------
    @property
    def estimator(self) -> Estimator:
        return self.application.estimator

    @property
    def learning(self) -> CodebookLearning:
        return self.codebooks[0].learning

    @property
    def parameterisation(self) -> CodebookParameterisation:
        return self.codebooks[0].parameterisation

    @property
    def codebook_size(self) -> int:
        return self.codebooks[0].codebook_size

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return tuple(cb.codebook_size for cb in self.codebooks)

    @property
    def bits(self) -> float:
        """Bits per vector, ``M log2 K`` (the same as :attr:`bits_per_vector`)."""
        return self.bits_per_vector

    @property
    def codewords(self) -> Tensor:
        """All effective codewords, ``(M, K, d)``."""
        return torch.stack([cb.effective_codewords() for cb in self.codebooks])

    # -- hooks --------------------------------------------------------------------------------
    def _select(self, x: Tensor) -> Tensor:
        """Hard search: ``(N, D)`` -> ``(N, M)`` indices (no gradient)."""
        raise NotImplementedError

    def _stage_dropout(self, indices: Tensor) -> Tensor:
        """Training-time index dropout (only residual VQ has one)."""
        return indices

    def _subvector(self, x: Tensor, m: int) -> Tensor:
        """The part of ``x`` codebook ``m`` quantizes (all of it unless product VQ); in the data
        space or, for the code-space vectors of :meth:`_to_code`, in the code space."""
        return x

    def _to_code(self, x: Tensor) -> Tensor:
        """``(N, D)`` inputs in the code space: each sub-vector through its codebook's
        parameterisation (the identity when that is the data space)."""
        if self.parameterisation.in_data_space:
            return x
        return torch.cat([cb.to_code(self._subvector(x, m))
                          for m, cb in enumerate(self.codebooks)], dim=-1)

    def _from_code(self, z: Tensor) -> Tensor:
        """The inverse direction of :meth:`_to_code`, for code-space outputs."""
        if self.parameterisation.in_data_space:
            return z
        return torch.cat([cb.from_code(self._subvector(z, m))
                          for m, cb in enumerate(self.codebooks)], dim=-1)

    def _combine(self, parts: Sequence[Tensor]) -> Tensor:
        if self.sums_parts:
            total = parts[0]
            for p in parts[1:]:
                total = total + p
            return total
        return torch.cat(list(parts), dim=-1)

    def _targets(self, x: Tensor, parts: Sequence[Tensor], per_stage: bool) -> list[Tensor]:
        """What each codebook should reproduce (``parts`` detached, ``x`` may carry grad)."""
        if not self.sums_parts:
            return [self._subvector(x, m) for m in range(len(parts))]
        total = self._combine(parts)
        return [x - (total - p) for p in parts]

    # -- the contract -------------------------------------------------------------------------
    def _parts(self, indices: Tensor) -> list[Tensor]:
        """Differentiable lookups per codebook; index -1 gives a zero row."""
        return [cb.lookup(indices[:, m]) for m, cb in enumerate(self.codebooks)]

    masks_in_place = True
    initialises_from_data = True

    def _train_forward(
        self, x: Tensor, keep: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Mapping[str, Tensor]]:
        with torch.no_grad():
            indices = self._stage_dropout(self._select(x))
        dtype = x.dtype
        x = self._to_code(x)
        if keep is not None:  # masked rows: indices -1 (zero codewords) and a zero input
            indices = indices.where(keep[:, None], -1)
            x = x.where(keep[:, None], 0.0)
        valid = indices >= 0
        parts = self._parts(indices)
        q = self._combine(parts)
        per_stage = self.application.per_stage
        targets = self._targets(x.float(), [p.detach().float() for p in parts], per_stage)
        by_gradient = self.learning.trained_by_gradient
        if per_stage:
            surrogates, loss, losses = self.application.apply_stages(
                targets, parts, valid, by_gradient
            )
            grad = self._combine(surrogates)
            if self.sums_parts:
                grad = grad / valid.sum(dim=1, keepdim=True).clamp_min(1).to(grad.dtype)
            quantized = q.detach().float() + (grad - grad.detach())
        else:
            out = self.application.apply(x, q, by_gradient)
            quantized, loss, losses = out.quantized, out.loss, dict(out.losses)
            if keep is not None:  # PerStage already averages each stage over its valid rows
                loss, losses = loss_over_kept(keep, loss, losses)
        self._observe(targets, indices)
        return self._from_code(quantized).to(dtype), indices, loss, losses

    @torch.no_grad()
    def _observe(self, targets: Sequence[Tensor], indices: Tensor) -> None:
        """Usage counters (only codebooks this batch used) and EMA updates (always, so every
        DDP rank makes the same collectives). Dropped entries (-1) are skipped by
        :meth:`~vqkit.codebooks.Codebook.observe_` itself, so shapes stay fixed."""
        for m, cb in enumerate(self.codebooks):
            cb.observe_(targets[m].detach(), indices[:, m])

    def _encode(self, x: Tensor) -> Tensor:
        return self._select(x)

    def _decode(self, indices: Tensor) -> Tensor:
        if self.parameterisation.in_data_space:
            return self._combine(self._parts(indices))
        return self._combine([cb.decode(indices[:, m]) for m, cb in enumerate(self.codebooks)])

    def _check_indices(self, indices: Tensor) -> None:
        check_index_tensor(indices, self.codebook_size)
        if indices.dim() < 1 or indices.shape[-1] != self.num_codebooks:
            raise ValueError(
                f"indices must have shape (..., {self.num_codebooks}), got {tuple(indices.shape)}"
            )

    # -- maintenance --------------------------------------------------------------------------
    def replace_dead_codes_(
        self,
        threshold: float = 0.01,
        *,
        rule: ReplacementRule | None = None,
        generator: torch.Generator | None = None,
    ) -> int:
        """Replace the dead codewords of every codebook separately ([vali2023rpavqcode]).

        Returns:
            The total number of codewords overwritten.

        Raises:
            ValueError: ``threshold`` is outside ``[0, 1]``, or the parameterisation cannot
                overwrite single codewords (SimVQ).
        """
        return sum(
            replace_dead_codes_(cb, threshold, rule=rule, generator=generator)
            for cb in self.codebooks
        )

    @torch.no_grad()
    def init_codebook_(
        self,
        samples: Tensor,
        *,
        generator: torch.Generator | None = None,
        iters: int = 50,
        progress: Progress | None = None,
        beam: int = 1,
        fit_to: BeamFit | None = None,
        max_points_per_centroid: int | None = None,
        seeding: str = "kmeans++",
        dim_steps: int = 1,
    ) -> None:
        """k-means initialisation, codebook by codebook.

        Sum-type quantizers fit codebook ``m`` to the residuals left by codebooks ``< m``:
        the greedy assignment's, or with ``beam > 1`` those of the tuples that ``fit_to``
        picks from a stage-ordered beam search over codebooks ``< m`` (by default each
        sample's best tuple; every tuple of the beam is how FAISS's ``ResidualQuantizer``
        trains [douze2024faiss]; see :mod:`vqkit.quantizers.beam_fit`). Product VQ fits each
        codebook to its sub-vectors (in the code space of its parameterisation). A SimVQ
        codebook gets the least-squares ``W`` of ``B W + b = centres``, and the next residual
        is what its codewords leave.
        Under DDP every rank passes its own samples and all ranks end with the same codebooks.

        Args:
            samples: ``(N, D)`` data with N >= K over all ranks.
            generator: random source of the k-means samples and seeds (seed it identically
                on all ranks).
            iters: maximum Lloyd iterations per codebook.
            progress: ``progress(done, total, info)`` over all codebooks' k-means, ``total =
                sum over codebooks of (K_m + iters)`` (see :func:`vqkit.functional.kmeans.kmeans`);
                ``info["codebook"]`` is the codebook being fitted.
            beam: width of the beam that re-encodes the samples after each codebook of a
                sum-type quantizer (1 = greedy; the codebooks are searched in order, whatever
                the quantizer's own encoder).
            fit_to: which of the beam's tuples give the residuals of the next codebook's
                k-means: :class:`~vqkit.quantizers.beam_fit.BestTuple` (default; ``N``
                rows) or :class:`~vqkit.quantizers.beam_fit.WholeBeam` (``N W`` rows, as
                FAISS). Ignored when ``beam == 1``.
            max_points_per_centroid: each k-means runs on at most this many rows per centre
                (FAISS's default is 256), drawn before the beam's residuals are formed; None
                uses them all.
            seeding: ``"kmeans++"`` (default, [arthur2007kmeanspp]) or ``"random"``: FAISS's
                clustering, whose seeds are random rows and which is seeded identically for
                every codebook ([douze2024faiss]): the generator is reset to its starting
                state before each codebook's draws, so codebooks whose k-means see equally
                many rows draw their sample and seeds from the same positions (the
                generator ends where the last codebook's draws leave it; with
                ``generator=None`` a private one is seeded from the global generator).
            dim_steps: each codebook's k-means clusters in this many steps of growing
                dimension on the principal axes of its residuals (FAISS's
                ``ProgressiveDimClustering``, the default training of its
                ``ResidualQuantizer`` with 10 steps, [douze2024faiss]; see
                :func:`vqkit.functional.kmeans.kmeans`); ``iters`` Lloyd iterations per step.
                1 (default): plain k-means.

        Raises:
            TypeError / ValueError: ``samples`` is not a finite floating ``(N, D)`` tensor
                with at least K rows.
            ValueError: ``beam`` or ``dim_steps`` is not an int >= 1,
                ``max_points_per_centroid`` < 1, or ``seeding`` is not ``"kmeans++"`` or
                ``"random"``.
            TypeError: ``fit_to`` is neither None nor a :class:`BeamFit`.
        """
        check_count(beam, "beam")
        check_count(dim_steps, "dim_steps")
        fit_to = check_beam_fit(fit_to)
        if seeding not in SEEDINGS:
            raise ValueError(f"seeding must be one of {sorted(SEEDINGS)}, got {seeding!r}")
        x = check_samples(samples, self.dim, self.codebook_size).float()
        restart = seeding == "random"
        if restart and generator is None:
            generator = torch.Generator().manual_seed(int(torch.randint(2**62, ())))
        start = generator.get_state() if restart else None
        residual = x
        total = sum(cb.codebook_size + iters * dim_steps for cb in self.codebooks)
        offset, helds = 0, []
        for m, cb in enumerate(self.codebooks):
            if start is not None:
                generator.set_state(start)
            if self.sums_parts and beam > 1 and m > 0:
                limit = (None if max_points_per_centroid is None
                         else max_points_per_centroid * cb.codebook_size)
                residual = fit_rows(x, helds, fit_to.tuples(x, helds, beam), limit, generator)
            data = cb.to_code(self._subvector(residual, m))
            step = stage_progress(progress, offset, total, {"codebook": m})
            centres = kmeans(
                data, cb.codebook_size, iters=iters, generator=generator,
                all_reduce=distributed.reducer(), progress=step,
                max_points_per_centroid=max_points_per_centroid, seeding=seeding,
                dim_steps=dim_steps,
            )  # on the samples' device, which may not be the codebook's
            offset += cb.codebook_size + iters * dim_steps
            rows = torch.arange(cb.codebook_size, device=cb.usage.device)
            held = cb.overwrite_(rows, centres.to(cb.usage.device)).to(centres.device)
            helds.append(held.float())
            cb.reset_usage_()
            if self.sums_parts and beam == 1:  # (the centres, or SimVQ's fit of them)
                nearest = nearest_indices(data, held)[:, 0]
                residual = residual - held[nearest].to(residual.dtype)

    @torch.no_grad()
    def refit_codebooks_(self, samples: Tensor, *, beam: int = 1) -> None:
        """Least-squares refit of all codebooks to ``samples`` given their codes.

        The samples are encoded by a stage-ordered beam search of width ``beam`` (as in
        :meth:`init_codebook_`, whatever the quantizer's own encoder), then every codebook is
        set to :func:`~vqkit.functional.least_squares.least_squares_codebooks` of those codes:
        the codewords that minimise the samples' squared error with the codes fixed, in the
        gauge the stage-ordered search needs (FAISS's ``Train_refine_codebook``,
        [douze2024faiss]; the codebook update of [babenko2014aq]). The error of the samples'
        codes cannot rise; a second call re-encodes and refits again. Under DDP every rank
        passes its own samples and all ranks end with the same codebooks.

        Args:
            samples: ``(N, D)`` data with N >= K over all ranks.
            beam: width of the beam that encodes ``samples`` (1 = greedy).

        Raises:
            TypeError / ValueError: ``samples`` is not a finite floating ``(N, D)`` tensor
                with at least K rows.
            ValueError: ``beam`` is not an int >= 1, or the quantizer concatenates its parts
                (product VQ: each codeword's least-squares value is its cell's mean, which
                k-means already gives).
        """
        if not self.sums_parts:
            raise ValueError(f"{type(self).__name__} concatenates its codebooks: a refit "
                             "applies to sums of codebooks (ResidualVQ, AdditiveVQ)")
        check_count(beam, "beam")
        x = check_samples(samples, self.dim, self.codebook_size).float()
        books = [cb.effective_codewords().detach().float().to(x.device) for cb in self.codebooks]
        codes = residual_beam_search(x, books, beam)
        new = least_squares_codebooks(x, codes, books, all_reduce=distributed.reducer())
        for cb, book in zip(self.codebooks, new, strict=True):
            rows = torch.arange(cb.codebook_size, device=cb.usage.device)
            cb.overwrite_(rows, book.to(cb.usage.device))
            cb.reset_usage_()

    # -- config -------------------------------------------------------------------------------
    def _base_config(self) -> dict[str, Any]:
        config = {
            "dim": self.dim,
            "codebook_size": self.codebook_size,
            "num_codebooks": self.num_codebooks,
            "estimator": to_config(self.application),
            "learning": to_config(self.learning),
            "init": self.codebooks[0].init,
        }
        if self.parameterisation != Direct():  # absent otherwise: older configs match
            config["parameterisation"] = to_config(self.parameterisation)
        if self.data_init is not None:  # (the same)
            config["data_init"] = to_config(self.data_init)
        return config

    @staticmethod
    def _base_args(config: Mapping[str, Any]) -> dict[str, Any]:
        args = dict(config)
        args["estimator"] = application_from_config(args["estimator"])
        args["learning"] = from_config(args["learning"], LEARNINGS)
        if "parameterisation" in args:
            args["parameterisation"] = from_config(args["parameterisation"], PARAMETERISATIONS)
        if "data_init" in args:
            args["data_init"] = from_config(args["data_init"], DATA_INITS)
        return args

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, codebook_size={self.codebook_size}, "
            f"num_codebooks={self.num_codebooks}, estimator={self.application!r}"
        )
