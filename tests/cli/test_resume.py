"""A run stopped and resumed ends bit-identically to an uninterrupted run with the same seed."""

from __future__ import annotations

import pytest
import torch

from vqkit.registry import QUANTIZERS
from vqkit.training.checkpoint import load_checkpoint


def _same_state(a, b) -> None:
    sa, sb = a.quantizer.state_dict(), b.quantizer.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    if a.optimizer is not None:
        for pid, state in a.optimizer["state"].items():
            for key, value in state.items():
                assert torch.equal(value, b.optimizer["state"][pid][key]), (pid, key)
    for x, y in zip(a.rng, b.rng, strict=True):
        assert torch.equal(x["torch"], y["torch"])


CASES = [
    ("vq", "VectorQuantizer", ["--bits", "4", "--replace-every", "7"]),
    ("vq-ema-ste", "VectorQuantizer",
     ["--bits", "4", "--estimator", "ste", "--learning", "ema"]),
    ("rvq", "ResidualVQ", ["--bits", "3", "--num-codebooks", "2", "--replace-every", "7"]),
    ("sfvq", "SpaceFillingVQ", ["--codebook-size", "8"]),
]


@pytest.mark.parametrize(("label", "cls", "extra"), CASES, ids=[c[0] for c in CASES])
def test_stop_and_resume_equals_uninterrupted(vqkit, vectors, tmp_path, label, cls, extra):
    if cls not in QUANTIZERS:
        pytest.skip(f"{cls} is not in this vqkit yet")
    quantizer = label.split("-")[0]

    def common(seed: int) -> list:
        return [vectors, "--quantizer", quantizer, *extra, "--batch", "32", "--log-every", "5",
                "--seed", str(seed), "-q"]

    whole, part = tmp_path / "whole.ckpt", tmp_path / "part.ckpt"
    assert vqkit("fit", *common(3), "--steps", "24", "-o", whole)[0] == 0
    assert vqkit("fit", *common(3), "--steps", "11", "-o", part)[0] == 0
    assert load_checkpoint(part).step == 11
    code, _, err = vqkit("fit", vectors, "--resume", part, "--steps", "24", "-q")
    assert code == 0, err
    a, b = load_checkpoint(whole), load_checkpoint(part)
    assert a.step == b.step == 24
    _same_state(a, b)
    # And the check is not vacuous: a different seed ends with other codewords.
    other = tmp_path / "other.ckpt"
    assert vqkit("fit", *common(4), "--steps", "24", "-o", other)[0] == 0
    sa, sc = a.quantizer.state_dict(), load_checkpoint(other).quantizer.state_dict()
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())

def test_checkpoint_every_writes_intermediate_state(vqkit, vectors, tmp_path):
    ckpt = tmp_path / "q.ckpt"
    common = [vectors, "--bits", "3", "--batch", "16", "--log-every", "4", "-q", "-o", ckpt]
    assert vqkit("fit", *common, "--steps", "8", "--checkpoint-every", "4")[0] == 0
    assert load_checkpoint(ckpt).step == 8


def test_resume_rejects_changed_settings_and_other_data(vqkit, vectors, tmp_path):
    ckpt = tmp_path / "q.ckpt"
    assert vqkit("fit", vectors, "--bits", "3", "--steps", "4", "--batch", "16", "-q",
                 "-o", ckpt)[0] == 0
    code, _, err = vqkit("fit", vectors, "--resume", ckpt, "--lr", "0.5", "--steps", "8")
    assert code == 2 and "--lr 0.5 differs" in err and len(err.strip().splitlines()) == 1
    other = tmp_path / "other.npy"
    import numpy as np

    np.save(other, np.zeros((50, 6), dtype=np.float32))
    code, _, err = vqkit("fit", other, "--resume", ckpt, "--steps", "8")
    assert code == 2 and "other data" in err
    code, _, err = vqkit("fit", vectors, "--resume", ckpt, "--steps", "2")
    assert code == 2 and "below the 4 steps" in err


def test_sfvq_growth_resumes_exactly_across_an_expansion(vqkit, vectors, tmp_path):
    if "SpaceFillingVQ" not in QUANTIZERS:
        pytest.skip("SpaceFillingVQ is not in this vqkit yet")
    common = [vectors, "--quantizer", "sfvq", "--codebook-size", "32", "--initial-size", "4",
              "--expand-every", "6", "--batch", "32", "--log-every", "3", "-q"]
    whole, part = tmp_path / "whole.ckpt", tmp_path / "part.ckpt"
    assert vqkit("fit", *common, "--steps", "20", "-o", whole)[0] == 0
    assert vqkit("fit", *common, "--steps", "12", "-o", part)[0] == 0   # stops at a boundary
    assert load_checkpoint(part).quantizer.codebook_size == 8            # 4 -> 8 at step 6
    assert vqkit("fit", vectors, "--resume", part, "--steps", "20", "-q")[0] == 0
    a, b = load_checkpoint(whole), load_checkpoint(part)
    assert a.quantizer.codebook_size == b.quantizer.codebook_size == 32  # 6, 12, 18
    _same_state(a, b)
    assert tuple(a.meters["window_counts"].shape) == (1, 32)   # usage counts all 32 points
