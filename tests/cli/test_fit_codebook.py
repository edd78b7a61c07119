"""``vqkit fit --codebook simvq|cosine|factorised [--codebook-dim d]``: the parameterisation
reaches the checkpoint, and the combinations that cannot work are user errors."""

from __future__ import annotations

import pytest

from vqkit import Cosine, Factorised, SimVQ
from vqkit.training.checkpoint import load_quantizer


@pytest.mark.parametrize(("argv", "expected"), [
    (["--codebook", "simvq"], SimVQ()),
    (["--codebook", "linear"], SimVQ()),
    (["--codebook", "cosine", "--learning", "ema"], Cosine()),
    (["--codebook", "factorised", "--codebook-dim", "3"], Factorised(3)),
    (["--quantizer", "pvq", "--num-codebooks", "2", "--codebook", "cosine"], Cosine()),
    (["--quantizer", "rvq", "--num-codebooks", "2", "--codebook", "simvq"], SimVQ()),
])
def test_the_parameterisation_reaches_the_checkpoint(vqkit, vectors, tmp_path, argv,
                                                     expected):
    out = tmp_path / "q.ckpt"
    code, _, err = vqkit("fit", vectors, *argv, "--bits", "4", "--steps", "20", "-q",
                             "-o", out)
    assert code == 0, err
    quantizer, _ = load_quantizer(out)
    assert quantizer.parameterisation == expected


@pytest.mark.parametrize(("argv", "message"), [
    (["--quantizer", "fsq", "--levels", "5", "5", "--codebook", "cosine"],
     "--codebook/--codebook-dim apply to vq, pvq, rvq and avq"),
    (["--quantizer", "rvq", "--codebook", "cosine"], "ResidualVQ cannot use Cosine()"),
    (["--codebook", "simvq", "--learning", "ema"], "SimVQ cannot be learned by EMA"),
    (["--codebook", "simvq", "--replace-every", "5"], "SimVQ cannot replace dead codes"),
    (["--codebook", "cosine", "--codebook-dim", "3"], "codebook_dim applies to the factorised"),
])
def test_bad_combinations_are_user_errors(vqkit, vectors, tmp_path, argv, message):
    code, _, err = vqkit("fit", vectors, *argv, "--steps", "2", "-q",
                             "-o", tmp_path / "q.ckpt")
    assert code != 0 and message in err, err
