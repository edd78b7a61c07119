"""The one Trainer with every kind of batch source, a bare quantizer or a model holding one,
against hand-written loops as oracles (the loops the Trainer replaced)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vqkit import NoiseSubstitution, SpaceFillingVQ, VectorQuantizer, fit_space_filling
from vqkit.training.batches import Epochs, Iterate, RandomRows, Sampler
from vqkit.training.loop import Trainer
from vqkit.training.objective import StepResult, summed_error_objective
from vqkit.training.schedule import Cosine, Growth, MultiStep, Replacement, Schedule


def _data(n: int = 300, d: int = 4) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(1))


def _recording(seen: list):
    def objective(q, x):
        seen.append(x.clone() if isinstance(x, torch.Tensor) else x)
        return summed_error_objective(q, x)
    return objective


def test_random_rows_draw_like_torch_randint():
    data, seen = _data(), []
    torch.manual_seed(0)
    t = Trainer(VectorQuantizer(4, 8), RandomRows(data, 7, torch.Generator().manual_seed(5)),
                Schedule(steps=3), objective=_recording(seen))
    t.run()
    g = torch.Generator().manual_seed(5)
    for x in seen:
        assert torch.equal(x, data[torch.randint(0, 300, (7,), generator=g)])


def test_epochs_in_order_and_shuffled():
    data, seen = _data(10), []
    torch.manual_seed(0)
    Trainer(VectorQuantizer(4, 8), Epochs(data, 4), Schedule(steps=6),
            objective=_recording(seen)).run()
    assert [len(x) for x in seen] == [4, 4, 2] * 2
    assert torch.equal(torch.cat(seen[:3]), data) and torch.equal(torch.cat(seen[3:]), data)
    seen.clear()
    Trainer(VectorQuantizer(4, 8), Epochs(data, 4, shuffle=torch.Generator().manual_seed(2)),
            Schedule(steps=6), objective=_recording(seen)).run()
    g = torch.Generator().manual_seed(2)
    for epoch in (seen[:3], seen[3:]):
        assert torch.equal(torch.cat(epoch), data[torch.randperm(10, generator=g)])


def test_shuffled_epochs_refuse_to_start_mid_epoch():
    with pytest.raises(ValueError, match="resume at an epoch boundary"):
        Epochs(_data(10), 4, shuffle=torch.Generator()).batch(1)


def test_sampler_gets_the_batch_size_and_its_generator():
    seen = []
    g = torch.Generator().manual_seed(4)
    torch.manual_seed(0)
    Trainer(VectorQuantizer(4, 8), Sampler(lambda n, gen: torch.randn(n, 4, generator=gen), 5, g),
            Schedule(steps=3), objective=_recording(seen)).run()
    oracle = torch.Generator().manual_seed(4)
    for x in seen:
        assert torch.equal(x, torch.randn(5, 4, generator=oracle))


def test_iterate_goes_through_the_batches_and_says_when_they_end():
    batches = [torch.full((3, 4), float(i)) for i in range(4)]
    seen = []
    torch.manual_seed(0)
    t = Trainer(VectorQuantizer(4, 8), Iterate(batches), Schedule(steps=4),
                objective=_recording(seen))
    t.run()
    assert all(torch.equal(a, b) for a, b in zip(seen, batches, strict=True))
    t = Trainer(VectorQuantizer(4, 8), Iterate(batches[:2]), Schedule(steps=4))
    with pytest.raises(ValueError, match="ended at step 2"):
        t.run()


def test_wrong_combinations_are_refused():
    rows = RandomRows(_data(), 8, torch.Generator())
    with pytest.raises(ValueError, match="maintenance generator"):
        Trainer(VectorQuantizer(4, 8), rows, Schedule(steps=5, replacement=Replacement(2)))
    with pytest.raises(ValueError, match="growth needs a SpaceFillingVQ"):
        Trainer(VectorQuantizer(4, 8), rows, Schedule(steps=5, growth=Growth(2, 1)))
    with pytest.raises(ValueError, match="per epoch needs a source with epochs"):
        Trainer(VectorQuantizer(4, 8), rows,
                Schedule(steps=5, lr_schedule=MultiStep((1,), per="epoch")))


def test_nsvq_loop_equals_the_hand_written_loop():
    """The loop of the demo and the NSVQ toys: Adam, cosine lr, replacement until a step,
    one generator for batches and replacements."""
    data, steps, every, until = _data(400, 6), 40, 6, 25

    def fresh() -> tuple[VectorQuantizer, torch.Generator]:
        torch.manual_seed(3)
        return VectorQuantizer(6, 16), torch.Generator().manual_seed(4)

    vq, g = fresh()
    opt = torch.optim.Adam(vq.parameters(), lr=0.02)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for step in range(1, steps + 1):
        x = data[torch.randint(0, 400, (32,), generator=g)]
        out = vq(x)
        loss = (out.quantized - x).pow(2).sum(1).mean() + out.loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % every == 0 and step <= until:
            vq.replace_dead_codes_(0.01, generator=g)

    got, g2 = fresh()
    schedule = Schedule(steps=steps, lr=0.02, lr_schedule=Cosine(),
                        replacement=Replacement(every, until))
    Trainer(got, RandomRows(data, 32, g2), schedule, objective=summed_error_objective,
            maintenance=g2).run()
    assert torch.equal(got.codewords, vq.codewords)
    assert torch.equal(g.get_state(), g2.get_state())


def test_fit_space_filling_equals_the_papers_loop():
    """fit_space_filling (through the Trainer) against [vali2023sfvqcode]'s loop written out:
    fixed-order epochs, a fresh Adam and MultiStepLR per stage, expansion between stages."""
    x = _data(200, 3)
    bits, epochs, batch, lr = 4, 3, 48, 1e-2
    got = fit_space_filling(x, bits, epochs_per_stage=epochs, batch_size=batch, lr=lr,
                            generator=torch.Generator().manual_seed(9))
    from vqkit import MSEFit

    sf = SpaceFillingVQ(3, 16, estimator=MSEFit(), initial_size=4,
                        generator=torch.Generator().manual_seed(9))
    sf.init_codebook_(x)
    sf.train()
    for stage in range(2, bits + 1):
        if stage > 2:
            sf.expand_()
        opt = torch.optim.Adam(sf.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(0.6 * epochs), int(0.8 * epochs)],
                                                     gamma=0.5)
        for _ in range(epochs):
            for start in range(0, 200, batch):
                out = sf(x[start : start + batch])
                opt.zero_grad(set_to_none=True)
                out.loss.backward()
                opt.step()
            sched.step()
    assert torch.equal(got.codewords, sf.codewords) and got.codebook_size == 16


class _AutoEncoder(nn.Module):
    """A model holding a quantizer between an encoder and a decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder, self.decoder = nn.Linear(6, 3), nn.Linear(3, 6)
        self.vq = VectorQuantizer(3, 8, estimator=NoiseSubstitution())

    def forward(self, x):
        out = self.vq(self.encoder(x))
        return self.decoder(out.quantized), out


def _reconstruct(model: _AutoEncoder, x: torch.Tensor) -> StepResult:
    y, out = model(x)
    mse = (y - x).pow(2).mean()
    return StepResult(mse + out.loss, indices=out.indices, metrics={"recon": float(mse.detach())})


def test_a_model_holding_a_quantizer_trains_all_of_it():
    torch.manual_seed(0)
    model = _AutoEncoder()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    replaced = []
    model.vq.replace_dead_codes_ = lambda threshold, *, rule, generator: replaced.append(1) or 0
    data = _data(400, 6)
    t = Trainer(model, RandomRows(data, 32, torch.Generator().manual_seed(1)),
                Schedule(steps=60, lr=1e-2, replacement=Replacement(20), log_every=30),
                objective=_reconstruct, quantizer=model.vq, maintenance=torch.Generator())
    t.run()
    for key in ("encoder.weight", "decoder.weight", "vq.codebook.codewords"):
        assert not torch.equal(before[key], model.state_dict()[key]), key
    assert len(replaced) == 3
    first, last = t.meters.history
    assert set(last) >= {"step", "loss", "recon", "usage", "perplexity"}
    assert last["recon"] < first["recon"]
    assert math.isfinite(last["loss"])


def test_progress_reports_every_step_and_the_window_means():
    calls = []
    torch.manual_seed(0)
    t = Trainer(VectorQuantizer(4, 8), RandomRows(_data(), 8, torch.Generator()),
                Schedule(steps=6, log_every=3),
                progress=lambda done, total, info: calls.append((done, total, dict(info))))
    t.run()
    assert [(c[0], c[1]) for c in calls] == [(s, 6) for s in range(1, 7)]
    assert [c[2] == {} for c in calls] == [True, True, False, True, True, False]
    assert calls[2][2]["loss"] == t.meters.history[0]["loss"]


def test_replacements_record_the_step_and_count_of_each_call():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 8)
    counts = iter([3, 0, 5])
    calls = []

    def replace(threshold, *, rule, generator):
        calls.append(threshold)
        return next(counts)

    vq.replace_dead_codes_ = replace
    t = Trainer(vq, RandomRows(_data(), 8, torch.Generator()),
                Schedule(steps=20, replacement=Replacement(5, 15, 0.2)),
                maintenance=torch.Generator())
    t.run()
    assert t.replacements == [(5, 3), (10, 0), (15, 5)] and calls == [0.2] * 3


def test_a_model_holding_a_quantizer_resumes_bit_identically_or_is_refused(tmp_path):
    from vqkit.training.checkpoint import load_checkpoint, save_checkpoint

    def trainer() -> Trainer:
        torch.manual_seed(0)
        model = _AutoEncoder()
        return Trainer(model, RandomRows(_data(400, 6), 32, torch.Generator().manual_seed(1)),
                       Schedule(steps=20, lr=1e-2, log_every=5), objective=_reconstruct,
                       quantizer=model.vq)

    whole = trainer()
    whole.run()
    part = trainer()
    part.run(10)
    save_checkpoint(part.checkpoint(), tmp_path / "m.ckpt")
    resumed = trainer()
    resumed.restore(load_checkpoint(tmp_path / "m.ckpt"))
    resumed.run()
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_a_quantizer_only_checkpoint_does_not_resume_a_model_and_model_only_runs_round_trip(
        tmp_path):
    from vqkit.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = _AutoEncoder()
    t = Trainer(model, RandomRows(_data(400, 6), 32, torch.Generator().manual_seed(1)),
                Schedule(steps=4, log_every=2), objective=_reconstruct, quantizer=model.vq)
    t.run()
    only_vq = Checkpoint(quantizer=model.vq, step=4, optimizer=t.optimizer.state_dict(),
                         rng=t.checkpoint().rng)
    with pytest.raises(ValueError, match="holds a quantizer only"):
        t.restore(only_vq)
    # A model without a quantizer: the checkpoint holds the model state alone.
    torch.manual_seed(0)
    plain = nn.Linear(6, 6)
    t2 = Trainer(plain, RandomRows(_data(400, 6), 32, torch.Generator().manual_seed(1)),
                 Schedule(steps=3, log_every=3),
                 objective=lambda m, x: StepResult((m(x) - x).pow(2).mean()))
    t2.run()
    save_checkpoint(t2.checkpoint(), tmp_path / "plain.ckpt")
    back = load_checkpoint(tmp_path / "plain.ckpt")
    assert back.quantizer is None and torch.equal(back.model["weight"], plain.weight.detach())
    with pytest.raises(ValueError, match="neither a quantizer nor a model"):
        save_checkpoint(Checkpoint(quantizer=None), tmp_path / "empty.ckpt")


def test_a_non_finite_quantizer_state_stops_training_naming_it():
    """The loss stays finite; the state check alone must find the NaN codeword."""
    from vqkit.training.loop import TrainingDiverged

    vq = VectorQuantizer(4, 8)

    def poisoning(q, x):
        result = summed_error_objective(q, x)
        with torch.no_grad():
            q.codebook.codewords[3, 1] = float("nan")
        return result

    t = Trainer(vq, RandomRows(_data(), 16, torch.Generator().manual_seed(0)),
                Schedule(steps=5, log_every=5), objective=poisoning)
    with pytest.raises(TrainingDiverged, match=r"step 1: the quantizer's codebook\.codewords"):
        t.run()


@pytest.mark.parametrize("max_norm", [None, 0.05, 1e3])
def test_max_grad_norm_clips_the_global_gradient_before_the_step(max_norm):
    """With SGD at lr 1 the update is minus the gradient: its global norm is the raw
    gradient's (computed by hand, float64) or max_grad_norm, whichever is smaller."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 4))
    data = _data()
    x = data[torch.randint(0, 300, (16,), generator=torch.Generator().manual_seed(2))]
    before = [p.detach().clone() for p in model.parameters()]
    loss = (model(x) - x).pow(2).sum()
    raw = torch.autograd.grad(loss, list(model.parameters()))
    raw_norm = math.sqrt(sum(float(g.double().pow(2).sum()) for g in raw))

    def objective(m, batch):
        return StepResult((m(batch) - batch).pow(2).sum())

    t = Trainer(model, RandomRows(data, 16, torch.Generator().manual_seed(2)),
                Schedule(steps=1, lr=1.0, max_grad_norm=max_norm), objective=objective,
                optimizer=lambda m, lr: torch.optim.SGD(m.parameters(), lr=lr))
    t.run()
    moved = math.sqrt(sum(float((p.detach() - b).double().pow(2).sum())
                          for p, b in zip(model.parameters(), before, strict=True)))
    expected = raw_norm if max_norm is None else min(raw_norm, max_norm)
    assert moved == pytest.approx(expected, rel=1e-5)
    assert max_norm is None or max_norm > raw_norm or moved < raw_norm / 2


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan"), True])
def test_max_grad_norm_must_be_a_positive_finite_number(bad):
    with pytest.raises(ValueError, match="max_grad_norm"):
        Schedule(steps=1, max_grad_norm=bad)
