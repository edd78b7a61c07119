"""Sizes and schedules of an ANN benchmark run (plain dataclasses, stored in the results JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ...functional.kmeans import SEEDINGS
from ...quantizers.composite import check_count
from ...registry import BEAM_FITS


@dataclass(frozen=True)
class Split:
    """How many vectors go to training, the database and the queries.

    The training vectors are drawn from the database; the queries are disjoint from both.

    Raises:
        ValueError: a count is not an ``int >= 1`` (a bool counts as not an int), or
            ``n_train > n_database``.
    """

    n_train: int
    n_database: int
    n_queries: int

    def __post_init__(self) -> None:
        for name in ("n_train", "n_database", "n_queries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.n_train > self.n_database:
            raise ValueError(f"n_train ({self.n_train}) must be <= n_database "
                             f"({self.n_database}): training vectors come from the database")


@dataclass(frozen=True)
class Schedule:
    """NSVQ training after k-means initialisation (Adam, cosine-decayed learning rate).

    Args:
        steps: optimizer steps (0 = k-means initialisation only).
        batch_size: vectors per step, drawn from the training split.
        lr: Adam's initial learning rate.
        replace_every: dead-code replacement period in steps ([vali2023rpavqcode]); 0 = never.
        threshold: a codeword used in fewer than this fraction of batches is dead.

    Raises:
        ValueError: ``steps < 0``, ``batch_size < 1``, ``lr <= 0`` (or NaN) or
            ``replace_every < 0``.
    """

    steps: int = 300
    batch_size: int = 1024
    lr: float = 1e-3
    replace_every: int = 100
    threshold: float = 0.01

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or not self.lr > 0 or self.replace_every < 0:
            raise ValueError(f"invalid schedule {self!r}: steps >= 0, batch_size >= 1, lr > 0, "
                             "replace_every >= 0 required")


@dataclass(frozen=True)
class Init:
    """The residual k-means initialisation, as FAISS trains its ``ResidualQuantizer``.

    Args:
        iters: Lloyd iterations per codebook (FAISS: 10).
        max_points_per_centroid: each k-means sees at most this many training rows per
            centre (FAISS: 256, so 65,536 for K = 256).
        beam: the "+ beam in training" rows re-encode the training vectors with a
            stage-ordered beam of this width after each codebook (the plain rows: greedy,
            width 1).
        beam_fit: the name of the :class:`~vqkit.quantizers.beam_fit.BeamFit` that picks the
            beam's tuples whose residuals fit the next codebook: ``"BestTuple"`` (the best
            tuple's) or ``"WholeBeam"`` (every tuple's, as FAISS).
        seeding: the k-means seeding, ``"kmeans++"`` or ``"random"`` (FAISS's: random rows,
            the same draws for every codebook; see ``init_codebook_``).
        dim_steps: steps of growing dimension of each codebook's k-means (1: plain
            k-means; FAISS RQ's default training is progressive with 10 steps, see
            ``vqkit.functional.kmeans.kmeans``).

    The defaults (best tuple, k-means++) gave a higher Recall@10 on GloVe validation vectors
    than FAISS's choices, though a higher MSE (docs/ann.md).

    Raises:
        ValueError: ``iters``, ``max_points_per_centroid``, ``beam`` or ``dim_steps`` is not
            an int >= 1 (a bool is not an int here; the message names it), or ``beam_fit``
            or ``seeding`` is not a known name.
    """

    iters: int = 10
    max_points_per_centroid: int = 256
    beam: int = 8
    beam_fit: str = "BestTuple"
    seeding: str = "kmeans++"
    dim_steps: int = 1

    def __post_init__(self) -> None:
        counts = {"iters": self.iters, "max_points_per_centroid": self.max_points_per_centroid,
                  "beam": self.beam, "dim_steps": self.dim_steps}
        for name, value in counts.items():
            check_count(value, f"Init.{name}")
        if self.beam_fit not in BEAM_FITS or self.seeding not in SEEDINGS:
            raise ValueError(f"invalid init {self!r}: beam_fit must be one of "
                             f"{list(BEAM_FITS)}, seeding one of {sorted(SEEDINGS)}")


@dataclass(frozen=True)
class BenchmarkConfig:
    """One benchmark run: every method at every bit rate on one data set.

    Args:
        split: training / database / query sizes.
        schedule: the NSVQ schedule of the vqkit quantizers.
        init: their k-means initialisation.
        validation: training vectors held out of vqkit's training to choose the recipe on
            them, never on the queries: each row records their MSE and their Recall@10
            among the other training vectors, and the recipe row is the ladder's best by
            Recall@10 (ties: MSE).
        codebook_size: K of every codebook (2**nbits; 256 = one byte per codebook).
        num_codebooks: M for each bit rate; bits = M log2 K.
        encode_beam: beam width of vqkit AVQ's database encoding, and RVQ's unless
            ``rvq_encode_beam`` is given.
        rvq_encode_beam: beam width of vqkit RVQ's database encoding (None: ``encode_beam``).
            RVQ's stage-ordered beam costs far less per width than AVQ's free-order one, so
            it can afford a wider beam, as FAISS RQ's widest row does.
        avq_train_width: beam width of AdditiveVQ's encoding during NSVQ training.
        rq_beams: FAISS ResidualQuantizer beam sizes to compare.
        recall_max: largest T of Recall@T.

    Raises:
        ValueError: ``validation`` is not in ``[1, split.n_train - max(codebook_size, 10)]``
            (the rest trains K centres, and the validation Recall@10 searches it for 10).
    """

    split: Split
    schedule: Schedule = field(default_factory=Schedule)
    init: Init = field(default_factory=Init)
    validation: int = 1000
    codebook_size: int = 256
    num_codebooks: tuple[int, ...] = (4, 8)
    encode_beam: int = 8
    rvq_encode_beam: int | None = None
    avq_train_width: int = 1
    rq_beams: tuple[int, ...] = (1, 5, 32)
    recall_max: int = 100

    def __post_init__(self) -> None:
        most = self.split.n_train - max(self.codebook_size, 10)
        if not 1 <= self.validation <= most:
            raise ValueError(f"validation must be in [1, n_train - max(codebook_size, 10) = "
                             f"{most}], got {self.validation}")

    def encode_width(self, kind: str) -> int:
        """The database-encoding beam width of vqkit's ``kind`` (``"rvq"`` or ``"avq"``)."""
        if kind == "rvq" and self.rvq_encode_beam is not None:
            return self.rvq_encode_beam
        return self.encode_beam

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
