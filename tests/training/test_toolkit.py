"""Seeding, meters, checkpoints (atomic, validated) and the Trainer's exact resume."""

from __future__ import annotations

import os

import pytest
import torch

from vqkit import EMA, StraightThrough, VectorQuantizer
from vqkit.training.checkpoint import Checkpoint, load_checkpoint, load_quantizer, save_checkpoint
from vqkit.training.evaluate import evaluate, index_histogram, usage_stats
from vqkit.training.loop import Trainer, rows_trainer
from vqkit.training.meters import Meters
from vqkit.training.schedule import Replacement, Schedule
from vqkit.training.seed import (
    consecutive_seeds,
    derive_seed,
    generator,
    offset_generator,
    offset_seed_global,
    rng_state,
    seed_global,
    set_rng_state,
)


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(0, "batches", 0) == derive_seed(0, "batches", 0)
    seeds = {derive_seed(s, k, r) for s in range(3) for k in ("a", "b") for r in range(3)}
    assert len(seeds) == 18
    assert all(0 <= s < 2**63 for s in seeds)


def test_offset_derivations_reproduce_seed_plus_offset():
    # The runs whose committed numbers predate derive_seed draw from torch seeded with seed + k.
    want = torch.rand(4, generator=torch.Generator().manual_seed(7 + 99))
    assert torch.equal(torch.rand(4, generator=offset_generator(7, 99)), want)
    offset_seed_global(7, 99)
    assert torch.equal(torch.rand(4), want)
    offset_seed_global(7)
    assert torch.initial_seed() == 7
    assert consecutive_seeds(3, 3) == [3, 4, 5]
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="count"):
            consecutive_seeds(0, bad)


def test_rng_state_restores_global_and_named_generators():
    g = generator(1, "x")
    seed_global(5)
    state = rng_state({"x": g})
    a = (torch.rand(4), torch.rand(4, generator=g))
    set_rng_state(state, {"x": g})
    b = (torch.rand(4), torch.rand(4, generator=g))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="lacks generator 'y'"):
        set_rng_state(state, {"y": g})


def test_meters_windows_and_state_roundtrip():
    m = Meters()
    for v in (1.0, 2.0, 6.0):
        m.update({"mse": v})
    assert m.means() == {"mse": 3.0}
    m.close_window(3)
    m.update({"mse": 10.0}, weight=2)
    m2 = Meters()
    m2.load_state_dict(m.state_dict())
    assert m2.history == [{"step": 3, "mse": 3.0}] and m2.means() == {"mse": 10.0}


def test_usage_and_perplexity_match_their_definitions():
    counts = index_histogram(torch.tensor([[0, 1], [0, 1], [1, 1], [3, 2]]), [4, 3])
    assert counts.tolist() == [[2, 1, 0, 1], [0, 3, 1, 0]]
    stats = usage_stats(counts, [4, 3])
    p0 = torch.tensor([0.5, 0.25, 0.25])
    p1 = torch.tensor([0.75, 0.25])
    ppl = (torch.exp(-(p0 * p0.log()).sum()) + torch.exp(-(p1 * p1.log()).sum())) / 2
    assert stats["usage"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert stats["perplexity"] == pytest.approx(float(ppl))


def test_evaluate_snr_and_mse_by_hand():
    vq = VectorQuantizer(2, 2)
    with torch.no_grad():
        vq.codebook.codewords.copy_(torch.tensor([[0.0, 0.0], [2.0, 0.0]]))
    x = torch.tensor([[0.0, 1.0], [2.0, 1.0], [2.0, 0.0]])  # errors 1, 1, 0
    r = evaluate(vq, x)
    assert r["mse"] == pytest.approx(2 / 3) and r["mse_per_dim"] == pytest.approx(1 / 3)
    assert r["snr_db"] == pytest.approx(10 * torch.log10(torch.tensor(10 / 2)).item())
    assert r["usage"] == 1.0 and r["bits_per_vector"] == 1.0 and vq.training


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    save_checkpoint(Checkpoint(VectorQuantizer(4, 8), step=1), path)

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(Checkpoint(VectorQuantizer(4, 8), step=2), path)
    monkeypatch.undo()
    assert load_checkpoint(path).step == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run.ckpt"]   # no temporary left


def test_checkpoint_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such vqkit checkpoint"):
        load_checkpoint(tmp_path / "nope.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(os.urandom(64))
    with pytest.raises(ValueError, match="not a readable vqkit checkpoint"):
        load_checkpoint(tmp_path / "junk.ckpt")
    torch.save({"format": "vqkit-checkpoint", "version": 99}, tmp_path / "v.ckpt")
    with pytest.raises(ValueError, match="version 99"):
        load_checkpoint(tmp_path / "v.ckpt")
    import vqkit

    vqkit.save(VectorQuantizer(4, 8), tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="not a vqkit training checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    quantizer, ck = load_quantizer(tmp_path / "plain.pt")
    assert ck is None and quantizer.codebook_size == 8


def _trainer(seed: int = 0, **kw) -> Trainer:
    seed_global(seed, "construct")
    vq = VectorQuantizer(3, 8, **kw)
    data = torch.randn(500, 3, generator=generator(seed, "data"))
    schedule = Schedule(steps=30, log_every=4, replacement=Replacement(every=6))
    t = rows_trainer(vq, data, schedule, batch=16, seed=seed)
    seed_global(seed, "train")
    return t


@pytest.mark.parametrize("kw", [{}, {"estimator": StraightThrough(), "learning": EMA(0.9)}],
                         ids=["nsvq-gradient", "ste-ema"])
def test_trainer_resume_is_bit_identical(tmp_path, kw):
    whole = _trainer(**kw)
    whole.run()
    part = _trainer(**kw)
    part.run(13)
    save_checkpoint(part.checkpoint(), tmp_path / "p.ckpt")
    resumed = _trainer(**kw)
    # Disturb every random source before resuming: the checkpoint must restore them.
    torch.rand(100)
    for g in resumed.generators.values():
        g.manual_seed(123)
    resumed.restore(load_checkpoint(tmp_path / "p.ckpt"))
    resumed.run()
    for key, value in whole.quantizer.state_dict().items():
        assert torch.equal(value, resumed.quantizer.state_dict()[key]), key
    assert whole.meters.history[-1] == resumed.meters.history[-1]
    assert resumed.replacements == whole.replacements and len(whole.replacements) == 5


def test_trainer_learns_and_replaces_dead_codes():
    t = _trainer()
    with torch.no_grad():
        t.quantizer.codebook.codewords[4:] = 100.0   # far away: dead until replaced
    before = evaluate(t.quantizer, t.source.data)
    t.run()
    after = evaluate(t.quantizer, t.source.data)
    assert before["usage"] <= 0.5 and after["usage"] >= 0.75
    assert after["mse"] < before["mse"]
    assert any(row.get("replaced", 0) > 0 for row in t.meters.history)


def test_schedule_rejects_bad_values():
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        Schedule(steps=0)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        Schedule(steps=1, lr=0.0)


@pytest.mark.parametrize("world, rank", [(2, 0), (2, 1), (4, 3)])
def test_the_kmeans_sample_of_fit_totals_init_samples_over_all_ranks(monkeypatch, world, rank):
    """`vqkit fit --init-samples S` on W ranks: each rank draws S // W of its own vectors for
    the k-means initialisation (which pools them), from its own stream."""
    from vqkit import distributed
    from vqkit.training.fit import fit_trainer

    monkeypatch.setattr(distributed, "world_size", lambda: world)
    monkeypatch.setattr(distributed, "rank", lambda: rank)
    data = torch.randn(4000, 3, generator=torch.Generator().manual_seed(0))
    vq = VectorQuantizer(3, 8)
    seen = []
    monkeypatch.setattr(vq, "init_codebook_", lambda rows, **kw: seen.append(rows))
    settings = {"steps": 5, "batch": 16, "lr": 1e-3, "replace_every": 0,
                "replace_threshold": 0.01, "log_every": 5, "seed": 3, "init": "kmeans",
                "init_samples": 600, "codebook_size": 8, "initial_size": None,
                "expand_every": 0}
    fit_trainer(vq, data, settings, device=torch.device("cpu"))
    (rows,) = seen
    assert rows.shape == (600 // world, 3)
    local = data[rank * (4000 // world):(rank + 1) * (4000 // world)]
    assert (rows[:, None, :] == local[None]).all(-1).any(-1).all()  # rows of this rank's shard
