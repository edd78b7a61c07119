"""Schedule: validation, the learning rate against torch's own schedulers, replacement at
exactly the scheduled steps, growth at the stage boundaries, exact resume inside a stage."""

from __future__ import annotations

import math

import pytest
import torch

from vqkit import MSEFit, SpaceFillingVQ, VectorQuantizer
from vqkit.training.batches import Epochs, RandomRows
from vqkit.training.checkpoint import load_checkpoint, save_checkpoint
from vqkit.training.loop import Trainer
from vqkit.training.objective import StepResult
from vqkit.training.schedule import (
    Constant,
    Cosine,
    Growth,
    MultiStep,
    Replacement,
    Schedule,
)


@pytest.mark.parametrize("make, match", [
    (lambda: Schedule(steps=0), "steps must be an int >= 1"),
    (lambda: Schedule(steps=True), "steps must be an int >= 1"),
    (lambda: Schedule(steps=2.5), "steps must be an int >= 1"),
    (lambda: Schedule(steps=5, log_every=0), "log_every must be an int >= 1"),
    (lambda: Schedule(steps=5, lr=0.0), "lr must be a finite number > 0"),
    (lambda: Schedule(steps=5, lr=float("nan")), "lr must be a finite number > 0"),
    (lambda: Replacement(every=-1), "every must be >= 0"),
    (lambda: Replacement(every=5, until=-1), "until must be >= 0"),
    (lambda: Replacement(threshold=1.5), r"threshold must be in \[0, 1\]"),
    (lambda: Growth(every=0, stages=1), "every >= 1"),
    (lambda: Growth(every=5, stages=-1), "stages >= 0"),
    (lambda: MultiStep((3, -1)), "milestones must be >= 0"),
    (lambda: MultiStep((3,), gamma=0.0), "gamma must be > 0"),
    (lambda: MultiStep((3,), per="batch"), "per must be one of"),
    (lambda: Cosine(per="minute"), "per must be one of"),
])
def test_bad_values_raise_naming_them(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_replacement_due_steps():
    assert [s for s in range(1, 31) if Replacement(5, until=17).due(s)] == [5, 10, 15]
    assert [s for s in range(1, 31) if Replacement(5, until=15).due(s)] == [5, 10, 15]
    assert [s for s in range(1, 31) if Replacement(10).due(s)] == [10, 20, 30]
    assert not any(Replacement(0, until=30).due(s) for s in range(1, 31))
    assert not any(Replacement(5, until=0).due(s) for s in range(1, 31))


def test_stages_and_windows():
    s = Schedule(steps=25, growth=Growth(every=10, stages=5), log_every=4)
    assert s.boundaries() == (10, 20)  # growth after the run's end is dropped
    assert s.stages() == [(0, 10), (10, 20), (20, 25)]
    assert [s.stage_of(t)[0] for t in (0, 1, 10, 11, 20, 21, 25)] == [0, 0, 0, 10, 10, 20, 20]
    assert [t for t in range(1, 26) if s.closes_window(t)] == [4, 8, 10, 12, 16, 20, 24]
    assert Schedule(steps=7).stages() == [(0, 7)]


def _vq(seed: int = 0) -> VectorQuantizer:
    torch.manual_seed(seed)
    return VectorQuantizer(3, 8)


def _data(n: int = 200) -> torch.Tensor:
    return torch.randn(n, 3, generator=torch.Generator().manual_seed(1))


def _lrs(trainer: Trainer, steps: int | None = None) -> list[float]:
    seen: list[float] = []
    trainer.run(steps, on_step=lambda t, r: seen.append(t.optimizer.param_groups[0]["lr"]))
    return seen


def _oracle(make, stepping) -> list[float]:
    """Learning rates of a torch scheduler on a dummy parameter, stepped as ``stepping`` says."""
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched, out = make(opt), []
    for step in range(1, len(stepping) + 1):
        opt.step()
        if stepping[step - 1]:
            sched.step()
        out.append(opt.param_groups[0]["lr"])
    return out


def test_cosine_per_step_equals_torch_cosine_annealing():
    rows = RandomRows(_data(), 16, torch.Generator().manual_seed(0))
    got = _lrs(Trainer(_vq(), rows, Schedule(steps=30, lr=0.1, lr_schedule=Cosine())))
    want = _oracle(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 30), [True] * 30)
    assert got == want
    # and both are the closed form 0.1 (1 + cos(pi s / 30)) / 2 after step s
    closed = [0.05 * (1 + math.cos(math.pi * s / 30)) for s in range(1, 31)]
    assert got == pytest.approx(closed, abs=1e-12)


def test_multistep_per_epoch_equals_torch_and_halves_at_the_milestones():
    source = Epochs(_data(50), 16)  # 4 batches per epoch
    schedule = Schedule(steps=24, lr=0.1, lr_schedule=MultiStep((2, 5), 0.5, per="epoch"))
    got = _lrs(Trainer(_vq(), source, schedule))
    want = _oracle(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5], 0.5),
                   [s % 4 == 0 for s in range(1, 25)])
    assert got == want
    # after step s, epochs done = s // 4; lr halves once 2 and again once 5 epochs are done
    assert got == [0.1 * 0.5 ** ((s // 4 >= 2) + (s // 4 >= 5)) for s in range(1, 25)]


def test_constant_lr_builds_no_scheduler():
    rows = RandomRows(_data(), 16, torch.Generator().manual_seed(0))
    t = Trainer(_vq(), rows, Schedule(steps=5, lr=0.02, lr_schedule=Constant()))
    assert t.lr_scheduler is None and set(_lrs(t)) == {0.02}


def test_replacement_happens_exactly_when_scheduled():
    vq = _vq()
    calls: list[tuple[int, float]] = []
    rows = RandomRows(_data(), 16, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(2)
    t = Trainer(vq, rows, Schedule(steps=20, replacement=Replacement(3, until=12, threshold=0.2)),
                maintenance=g)

    def spy(threshold, *, rule, generator):  # the contract's keywords (default rule: None)
        assert generator is g and rule is None
        calls.append((t.step, threshold))
        return 0

    vq.replace_dead_codes_ = spy
    t.run()
    assert calls == [(3, 0.2), (6, 0.2), (9, 0.2), (12, 0.2)]


def _sfvq() -> SpaceFillingVQ:
    torch.manual_seed(0)
    # The dither draws from the global generator, which checkpoints hold.
    sf = SpaceFillingVQ(3, 16, estimator=MSEFit(), initial_size=4)
    sf.init_codebook_(_data())
    return sf


def _growing(sf: SpaceFillingVQ, steps: int = 15) -> Trainer:
    schedule = Schedule(steps=steps, lr=0.05, lr_schedule=Cosine(), log_every=4,
                        growth=Growth(every=5, stages=2))
    rows = RandomRows(_data(), 16, torch.Generator().manual_seed(0))
    return Trainer(sf, rows, schedule, objective=lambda q, x: StepResult(q(x).loss))


def test_growth_at_the_stage_boundaries_with_a_fresh_optimizer():
    sf = _sfvq()
    t = _growing(sf)
    sizes, adam_steps, lrs, ends = [], [], [], []

    def on_step(tr, result):
        sizes.append(sf.codebook_size)
        adam_steps.append(max(int(s["step"]) for s in tr.optimizer.state.values()))
        lrs.append(tr.optimizer.param_groups[0]["lr"])

    t.run(on_step=on_step, on_stage_end=lambda tr: ends.append((tr.step, sf.codebook_size)))
    assert sizes == [4] * 5 + [8] * 5 + [16] * 5
    assert adam_steps == [1, 2, 3, 4, 5] * 3  # a fresh Adam per stage
    stage = _oracle(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 5), [True] * 5)
    assert lrs == [0.5 * x for x in stage] * 3  # the lr schedule restarts per stage
    assert ends == [(5, 4), (10, 8), (15, 16)]
    assert [r["step"] for r in t.meters.history] == [4, 5, 8, 10, 12, 15]


@pytest.mark.parametrize("stop", [5, 7])  # at a growth boundary, inside a stage
def test_resume_with_growth_and_lr_schedule_is_bit_identical(tmp_path, stop):
    whole = _growing(_sfvq())
    whole.run()
    part = _growing(_sfvq())
    part.run(stop)
    save_checkpoint(part.checkpoint(), tmp_path / "p.ckpt")
    resumed = _growing(_sfvq())
    resumed.restore(load_checkpoint(tmp_path / "p.ckpt"))
    resumed.run()
    for key, value in whole.quantizer.state_dict().items():
        assert torch.equal(value, resumed.quantizer.state_dict()[key]), key
    assert whole.optimizer.param_groups[0]["lr"] == resumed.optimizer.param_groups[0]["lr"]
    assert whole.meters.history[-1] == resumed.meters.history[-1]
    assert whole.meters.history[-1]["loss"] > 0


def test_a_per_step_lr_schedule_steps_every_step_on_a_source_with_epochs():
    """`per="step"` means every step whatever the source: an `Epochs` source (4 batches an
    epoch) must not make it step once an epoch."""
    source = Epochs(_data(50), 16)
    got = _lrs(Trainer(_vq(), source, Schedule(steps=12, lr=0.1, lr_schedule=Cosine())))
    want = _oracle(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 12), [True] * 12)
    assert got == want


def test_a_per_epoch_lr_schedule_counts_epochs_from_the_start_of_each_growth_stage():
    """Growth every 6 steps with 4 batches an epoch: each stage builds a fresh scheduler and
    steps it 4 steps into the stage (the stage's own epochs; counting the source's epochs
    would step the second stage at steps 8 and 12 instead of 10)."""
    sf = _sfvq()
    schedule = Schedule(steps=12, lr=0.1, lr_schedule=MultiStep((1,), 0.5, per="epoch"),
                        growth=Growth(every=6, stages=1), log_every=4)
    got = _lrs(Trainer(sf, Epochs(_data(50), 16), schedule,
                       objective=lambda q, x: StepResult(q(x).loss)))
    stage = _oracle(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [1], 0.5),
                    [s % 4 == 0 for s in range(1, 7)])
    assert got == stage * 2
    assert got == [0.1] * 3 + [0.05] * 3 + [0.1] * 3 + [0.05] * 3
