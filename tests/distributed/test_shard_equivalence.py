"""Two ranks, each on its own shard, train exactly like one process on the concatenated shards.

With a noise-free estimator (straight-through, DiVeQ-Detach) and the same initial codebook,
data-parallel training is deterministic arithmetic: rank ``r`` draws a batch of ``B`` rows from
its shard, the gradients of the two batch means are averaged, and Adam steps. That equals one
process stepping on the mean over the ``2 B`` rows of both batches, up to fp32 rounding. So:

- the Trainer on 2 gloo ranks is compared with a one-process loop over the concatenated
  batches the ranks drew (recorded through the objective), and every row a rank drew must
  come from its own contiguous half of the data;
- ``torchrun --nproc_per_node 2 -m vqkit fit`` is compared with a one-process replay in this
  test: rank ``r``'s batches are drawn from the contiguous half ``r`` with the loop's
  per-rank generator, concatenated, and trained on.

A rank that sees all the data instead of its shard draws other rows, and its codewords end
far from the reference (the difference is orders of magnitude above the tolerance).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

from vqkit import DiVeQDetach, StraightThrough, VectorQuantizer
from vqkit.training.checkpoint import load_quantizer
from vqkit.training.objective import reconstruction_objective

from .models import DIM, clustered
from .test_torchrun_fit import torchrun

N, BATCH, STEPS, LR = 512, 16, 25, 0.02
#: What a worker prints when it aborts in C++ teardown after its Python code has finished
#: (seen in about 1 of 10 two-process runs with torch 2.13 on CPU; see _check_run).
TEARDOWN_ABORT = "terminate called without an active exception"
SIZE = 16
TOL = {"rtol": 1e-5, "atol": 1e-6}


def _quantizer(name: str) -> VectorQuantizer:
    """The same initial codebook in every process (seeded, N(0, 1) codewords)."""
    estimator = StraightThrough() if name == "ste" else DiVeQDetach()
    with torch.random.fork_rng():  # leaves the global generator of the test process alone
        torch.manual_seed(12)
        return VectorQuantizer(DIM, SIZE, estimator=estimator, init="normal")


def _halves(data: torch.Tensor) -> list[torch.Tensor]:
    """The shards by contract: contiguous, in rank order (written here, not via ddp.shard)."""
    half = data.shape[0] // 2
    return [data[:half], data[half : 2 * half]]


def _replay(quantizer: VectorQuantizer, batches: list[torch.Tensor]) -> torch.Tensor:
    """One process: Adam on the mean loss of each concatenated batch (the Trainer's loss)."""
    opt = torch.optim.Adam([p for p in quantizer.parameters() if p.requires_grad], lr=LR)
    for x in batches:
        opt.zero_grad(set_to_none=True)
        reconstruction_objective(quantizer, x)[0].backward()
        opt.step()
    return quantizer.codewords.detach().clone()


def _rows_belong(rows: torch.Tensor, part: torch.Tensor) -> bool:
    return bool((rows[:, None, :] == part[None, :, :]).all(dim=2).any(dim=1).all())


def _trainer_worker(rank: int, world: int, name: str) -> dict:
    from vqkit.training import ddp
    from vqkit.training.batches import RandomRows
    from vqkit.training.loop import Trainer
    from vqkit.training.schedule import Schedule
    from vqkit.training.seed import generator

    data = clustered(N, seed=8)
    quantizer = _quantizer(name)
    drawn: list[torch.Tensor] = []

    def objective(q, x):
        drawn.append(x.detach().clone())
        return reconstruction_objective(q, x)

    local = data[ddp.shard(N, even=True)]
    rows = RandomRows(local, BATCH, generator(3, "batches", rank))
    Trainer(quantizer, rows, Schedule(steps=STEPS, lr=LR, log_every=STEPS),
            objective=objective).run()
    return {"codewords": quantizer.codewords.detach().clone(), "drawn": torch.stack(drawn)}


@pytest.mark.parametrize("name", ["ste", "diveq-detach"])
def test_trainer_on_two_shards_equals_one_process_on_both(workers, name):
    a, b = workers.run(_trainer_worker, name)
    data = clustered(N, seed=8)
    halves = _halves(data)
    for rank, result in enumerate((a, b)):
        rows = result["drawn"].reshape(-1, DIM)
        assert _rows_belong(rows, halves[rank]), f"rank {rank} drew rows outside its shard"
    assert torch.equal(a["codewords"], b["codewords"]), "the ranks ended with different codebooks"
    batches = [torch.cat([a["drawn"][s], b["drawn"][s]]) for s in range(STEPS)]
    start = _quantizer(name).codewords.detach().clone()
    want = _replay(_quantizer(name), batches)
    torch.testing.assert_close(a["codewords"], want, **TOL)
    assert (want - start).abs().max() > 0.05  # training moved the codebook


def _check_run(done: subprocess.CompletedProcess) -> None:
    """The run succeeded, or it did all its work and a worker then aborted at interpreter
    exit (an intermittent SIGABRT with no Python frame, after ``destroy_process_group``; it
    is not what this test is about, and the checkpoint it wrote is checked numerically)."""
    if done.returncode == 0:
        return
    finished = "checkpoint: vq.ckpt" in done.stdout and "time: train" in done.stdout
    assert finished and TEARDOWN_ABORT in done.stderr, done.stderr[-3000:]


def test_torchrun_fit_on_two_shards_equals_one_process_on_both(tmp_path: Path):
    """``vqkit fit`` under torchrun: each rank must train on its half of the file."""
    from vqkit.training.seed import derive_seed, generator

    data = clustered(N, seed=9)
    torch.save(data, tmp_path / "vectors.pt")
    seed = 5
    args = (
        f"fit vectors.pt --quantizer vq --estimator ste --codebook-size {SIZE} --init random "
        f"--steps {STEPS} --batch {BATCH} --lr {LR} --seed {seed} --threads 1 --device cpu "
        "-q -o vq.ckpt"
    )
    cmd = [*torchrun(), "--standalone", "--nproc_per_node", "2", "-m", "vqkit", *args.split()]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=150)
    _check_run(done)
    got, _ = load_quantizer(tmp_path / "vq.ckpt")

    # The reference: fit's initial codebook (torch's generator seeded for "construct", the
    # default uniform init), and rank r's batches drawn from half r by the loop's per-rank
    # generator (the seeding conventions of vqkit.training.seed).
    with torch.random.fork_rng():
        torch.manual_seed(derive_seed(seed, "construct"))
        reference = VectorQuantizer(DIM, SIZE, estimator=StraightThrough())
    start = reference.codewords.detach().clone()
    halves = _halves(data)
    draws = [generator(seed, "batches", rank) for rank in range(2)]
    batches = [
        torch.cat(
            [
                part[torch.randint(0, len(part), (BATCH,), generator=g)]
                for part, g in zip(halves, draws, strict=True)
            ]
        )
        for _ in range(STEPS)
    ]
    want = _replay(reference, batches)
    torch.testing.assert_close(got.codewords.detach(), want, **TOL)
    assert (want - start).abs().max() > 0.05  # training moved the codebook
