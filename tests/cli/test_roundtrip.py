"""fit -> encode -> decode through ``main(argv)`` equals the library's decode exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vqkit.io.codes_file import read_codes
from vqkit.registry import QUANTIZERS
from vqkit.training.checkpoint import load_checkpoint, load_quantizer

#: (--quantizer, class name, extra fit arguments)
SETUPS = [
    ("vq", "VectorQuantizer", ["--bits", "4"]),
    ("rvq", "ResidualVQ", ["--bits", "3", "--num-codebooks", "3"]),
    ("pvq", "ProductVQ", ["--bits", "3", "--num-codebooks", "2"]),
    ("avq", "AdditiveVQ", ["--bits", "3", "--num-codebooks", "2"]),
    ("sfvq", "SpaceFillingVQ", ["--codebook-size", "12"]),
    ("fsq", "FSQ", ["--levels", "8", "5", "5", "5", "--estimator", "ste"]),
    ("rfsq", "ResidualFSQ", ["--levels", "5", "5", "3", "--num-codebooks", "2"]),
    ("lfq", "LFQ", ["--bits", "6", "--estimator", "ste"]),
    ("bsq", "BSQ", ["--bits", "10"]),
]


@pytest.mark.parametrize(("name", "cls", "extra"), SETUPS, ids=[s[0] for s in SETUPS])
def test_fit_encode_decode_equals_library(vqkit, vectors, tmp_path, name, cls, extra):
    if cls not in QUANTIZERS:
        pytest.skip(f"{cls} is not in this vqkit yet")
    ckpt, codes, out = tmp_path / "q.ckpt", tmp_path / "x.vqc", tmp_path / "y.npy"
    code, stdout, err = vqkit("fit", vectors, "--quantizer", name, *extra, "--steps", "30",
                              "--batch", "64", "--log-every", "10", "-q", "-o", ckpt)
    assert code == 0, err
    assert "mse" in stdout and "usage" in stdout
    assert vqkit("encode", ckpt, vectors, codes)[0] == 0
    assert vqkit("decode", ckpt, codes, out)[0] == 0

    quantizer, checkpoint = load_quantizer(ckpt)
    assert type(quantizer).__name__ == cls and checkpoint.step == 30
    x = torch.from_numpy(np.load(vectors))
    expected = quantizer.eval().decode(quantizer.encode(x))
    got = torch.from_numpy(np.load(out))
    assert got.dtype == expected.dtype and torch.equal(got, expected)
    # The codes file holds exactly the library's indices.
    assert torch.equal(read_codes(codes, quantizer).indices, quantizer.encode(x))


def test_fit_reports_final_metrics_that_eval_reproduces(vqkit, vectors, tmp_path):
    ckpt = tmp_path / "q.ckpt"
    code, fit_out, _ = vqkit("fit", vectors, "--bits", "4", "--steps", "20", "--batch", "64",
                             "-q", "-o", ckpt, "--json", tmp_path / "fit.json")
    assert code == 0
    code, eval_out, _ = vqkit("eval", ckpt, vectors, "--json", tmp_path / "eval.json",
                              "--plot", tmp_path / "usage.png")
    assert code == 0 and (tmp_path / "usage.png").stat().st_size > 1000
    import json

    fit = json.loads((tmp_path / "fit.json").read_text())
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert fit["results"]["final"]["mse"] == ev["results"]["mse"]
    assert fit["command"].startswith("vqkit fit ")
    # MSE by hand: mean over vectors of the squared error of the hard reconstruction.
    quantizer, _ = load_quantizer(ckpt)
    x = torch.from_numpy(np.load(vectors))
    with torch.no_grad():
        x_hat = quantizer.eval()(x).quantized
    mse = float((x.double() - x_hat.double()).pow(2).sum(1).mean())
    assert ev["results"]["mse"] == pytest.approx(mse, rel=1e-12)
    assert ev["results"]["bits_per_vector"] == 4.0


def test_seeded_fit_reaches_the_cluster_noise_floor(vqkit, tmp_path):
    """16 clusters with noise sigma = 0.1 in 4-d: a 16-codeword VQ must reach MSE ~ 4 * 0.01."""
    rng = np.random.default_rng(1)
    centres = rng.uniform(-4, 4, (16, 4))
    x = centres[np.arange(4000) % 16] + 0.1 * rng.standard_normal((4000, 4))
    np.save(tmp_path / "c.npy", x.astype(np.float32))
    ckpt = tmp_path / "c.ckpt"
    code, _, err = vqkit("fit", tmp_path / "c.npy", "--codebook-size", "16", "--steps", "200",
                         "--batch", "256", "--replace-every", "50", "-q", "-o", ckpt,
                         "--json", tmp_path / "c.json")
    assert code == 0, err
    import json

    final = json.loads((tmp_path / "c.json").read_text())["results"]["final"]
    assert final["mse"] < 1.2 * 4 * 0.01, final   # noise floor: E||n||^2 = 0.04
    assert final["usage"] == 1.0


def test_encode_keeps_leading_axes(vqkit, tmp_path):
    x = torch.randn(5, 7, 3)
    torch.save(x, tmp_path / "x.pt")
    torch.save(x.reshape(-1, 3), tmp_path / "flat.pt")
    ckpt = tmp_path / "q.ckpt"
    assert vqkit("fit", tmp_path / "flat.pt", "--bits", "2", "--steps", "5", "--batch", "8",
                 "-q", "-o", ckpt)[0] == 0
    assert vqkit("encode", ckpt, tmp_path / "x.pt", tmp_path / "x.vqc")[0] == 0
    assert vqkit("decode", ckpt, tmp_path / "x.vqc", tmp_path / "y.pt")[0] == 0
    y = torch.load(tmp_path / "y.pt")
    quantizer, _ = load_quantizer(ckpt)
    assert y.shape == (5, 7, 3) and torch.equal(y, quantizer.eval()(x).quantized)
    assert read_codes(tmp_path / "x.vqc").shape == (5, 7)


def test_checkpoint_embeds_a_quantizer_record(vqkit, vectors, tmp_path):
    ckpt = tmp_path / "q.ckpt"
    assert vqkit("fit", vectors, "--bits", "3", "--steps", "4", "--batch", "16", "-q",
                 "-o", ckpt)[0] == 0
    raw = torch.load(ckpt, weights_only=True)
    assert set(raw["quantizer"]) == {"format_version", "type", "config", "state_dict"}
    ck = load_checkpoint(ckpt)
    assert ck.step == 4 and ck.optimizer is not None and len(ck.rng) == 1
    assert ck.meters["history"][-1]["step"] == 4
