"""CodeReplacer: dead-code replacement in one call per step of a hand-written loop.

Oracles: the same loop with explicit ``replace_dead_codes_`` calls at the steps the schedule
names (computed here, not by the replacer), and the Trainer (which replaces through a
CodeReplacer) on the same batches; all three end bit-identical.
"""

from __future__ import annotations

import pytest
import torch

from vqkit import CodeReplacer, StraightThrough, UsageWeighted, VectorQuantizer
from vqkit.training.batches import RandomRows
from vqkit.training.loop import Trainer, adam
from vqkit.training.objective import reconstruction_objective
from vqkit.training.schedule import Replacement, Schedule

STEPS, EVERY, UNTIL, THRESHOLD, LR = 20, 4, 14, 0.1, 1e-2


def _data() -> torch.Tensor:
    return 3.0 * torch.randn(500, 4, generator=torch.Generator().manual_seed(0))


def _vq(**kw) -> VectorQuantizer:
    torch.manual_seed(0)  # U(-1/K, 1/K) start: STE uses a few codewords, the rest die
    return VectorQuantizer(4, 32, estimator=StraightThrough(), **kw)


def _loop(vq: VectorQuantizer, after_step) -> None:
    """The Trainer's step by hand: batch, objective, backward, Adam step, then ``after_step``."""
    rows = RandomRows(_data(), 16, torch.Generator().manual_seed(1))
    optimizer = adam(vq, LR)
    for step in range(1, STEPS + 1):
        optimizer.zero_grad(set_to_none=True)
        reconstruction_objective(vq, rows.batch(step - 1)).loss.backward()
        optimizer.step()
        after_step(step)


def test_one_call_per_step_equals_explicit_calls_and_the_trainer():
    one_liner, counts = _vq(), []
    replacer = CodeReplacer(one_liner, EVERY, until=UNTIL, threshold=THRESHOLD,
                            generator=torch.Generator().manual_seed(3))
    _loop(one_liner, lambda step: counts.append(replacer.step()))

    explicit, explicit_counts = _vq(), []
    g = torch.Generator().manual_seed(3)

    def replace(step: int) -> None:
        if step % EVERY == 0 and step <= UNTIL:
            explicit_counts.append((step, explicit.replace_dead_codes_(THRESHOLD, generator=g)))

    _loop(explicit, replace)

    trained = _vq()
    schedule = Schedule(steps=STEPS, lr=LR, replacement=Replacement(EVERY, UNTIL, THRESHOLD))
    trainer = Trainer(trained, RandomRows(_data(), 16, torch.Generator().manual_seed(1)),
                      schedule, maintenance=torch.Generator().manual_seed(3))
    trainer.run()

    steps = [s for s, n in enumerate(counts, 1) if n is not None]
    assert steps == [4, 8, 12]
    assert [(s, counts[s - 1]) for s in steps] == explicit_counts == trainer.replacements
    assert sum(n for _, n in explicit_counts) > 0  # it did replace codewords
    assert replacer.steps == STEPS
    assert torch.equal(one_liner.codewords, explicit.codewords)
    assert torch.equal(one_liner.codewords, trained.codewords)


def test_it_passes_its_rule_and_generator():
    vq, calls = _vq(), []
    g, rule = torch.Generator().manual_seed(0), UsageWeighted()

    def spy(threshold, *, rule, generator):
        calls.append((threshold, rule, generator))
        return 7

    vq.replace_dead_codes_ = spy
    replacer = CodeReplacer(vq, 2, threshold=0.3, rule=rule, generator=g)
    assert [replacer.step() for _ in range(5)] == [None, 7, None, 7, None]
    assert calls == [(0.3, rule, g)] * 2
    default = CodeReplacer(vq, 1)  # its own generator, seeded 0, and the default rule
    default.step()
    assert calls[-1][1] is None and torch.equal(default.generator.get_state(),
                                                torch.Generator().manual_seed(0).get_state())
    never = CodeReplacer(vq, 0)
    assert [never.step() for _ in range(4)] == [None] * 4


def test_a_resumed_replacer_continues_as_if_never_stopped():
    def run(stop: int | None):
        vq, counts = _vq(), []
        replacer = CodeReplacer(vq, 3, threshold=0.2)

        def after(step: int) -> None:
            nonlocal replacer
            counts.append(replacer.step())
            if step == stop:  # a new replacer from the saved state
                state = replacer.state_dict()
                replacer = CodeReplacer(vq, 3, threshold=0.2)
                replacer.load_state_dict(state)

        _loop(vq, after)
        return vq.codewords.detach().clone(), counts

    whole, resumed = run(None), run(10)
    assert torch.equal(whole[0], resumed[0]) and whole[1] == resumed[1]


def test_bad_arguments_are_refused():
    vq = _vq()
    with pytest.raises(TypeError, match="quantizer must be a Quantizer"):
        CodeReplacer(torch.nn.Linear(2, 2), 5)
    with pytest.raises(ValueError, match="every must be >= 0"):
        CodeReplacer(vq, -1)
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\]"):
        CodeReplacer(vq, 5, threshold=2.0)
    with pytest.raises(ValueError, match="steps must be an int >= 0"):
        CodeReplacer(vq, 5).load_state_dict({"steps": -2, "generator": None})
