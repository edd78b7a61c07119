"""``vqkit fit`` on 2 gloo processes: identical models on both ranks, exact 2-rank resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.distributed.launcher import Workers
from vqkit.training.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def pool():
    workers = Workers(2)
    workers.start()
    yield workers
    workers.close()


def _fit(rank: int, world: int, argv: list[str]) -> dict:
    from vqkit import distributed
    from vqkit.cli.main import main
    from vqkit.codes_file import quantizer_digest
    from vqkit.training import checkpoint as ck
    from vqkit.training import evaluate as ev

    captured: dict = {"saved": False}
    save, evaluate = ck.save_checkpoint, ev.evaluate

    def save_spy(checkpoint, path):
        captured["saved"] = True
        return save(checkpoint, path)

    def evaluate_spy(quantizer, x):
        captured["digest"] = quantizer_digest(quantizer)
        captured["rank"] = distributed.rank()
        return evaluate(quantizer, x)

    ck.save_checkpoint, ev.evaluate = save_spy, evaluate_spy
    try:
        captured["code"] = main(argv)
    finally:
        ck.save_checkpoint, ev.evaluate = save, evaluate
    return captured


@pytest.mark.slow  # two processes importing torch: about 40 s on the shared 2-core machine
def test_two_rank_fit_and_resume(pool, tmp_path: Path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.standard_normal((800, 5)).astype(np.float32))
    common = [str(tmp_path / "x.npy"), "--quantizer", "vq", "--bits", "4", "--batch", "16",
              "--log-every", "5", "--replace-every", "5", "--device", "cpu", "-q"]
    whole, part = str(tmp_path / "whole.ckpt"), str(tmp_path / "part.ckpt")
    results = pool.run(_fit, ["fit", *common, "--steps", "20", "-o", whole], init=False,
                       timeout=300)
    assert [r["code"] for r in results] == [0, 0]
    assert [r["saved"] for r in results] == [True, False]      # only rank 0 writes
    assert [r["rank"] for r in results] == [0, 1]
    assert results[0]["digest"] == results[1]["digest"]        # the same model on both ranks
    a = load_checkpoint(whole)
    assert len(a.rng) == 2 and not torch.equal(a.rng[0]["torch"], a.rng[1]["torch"])
    pool.run(_fit, ["fit", *common, "--steps", "9", "-o", part], init=False, timeout=300)
    pool.run(_fit, ["fit", str(tmp_path / "x.npy"), "--resume", part, "--steps", "20",
                    "--device", "cpu", "-q"], init=False, timeout=300)
    b = load_checkpoint(part)
    for key, value in a.quantizer.state_dict().items():
        assert torch.equal(value, b.quantizer.state_dict()[key]), key
