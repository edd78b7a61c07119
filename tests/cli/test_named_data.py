"""Installed data sets by name: ``vqkit fit fashion-mnist-test`` trains on exactly the rows the
loader returns, a file of the same name wins, and an unknown name lists the known ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vqkit.cli.commands._common import DATA_SETS
from vqkit.data import named
from vqkit.data.named import NAMED, read_vectors
from vqkit.training.checkpoint import load_quantizer


def _fashion_installed() -> bool:
    from vqkit.data.fashion_mnist import ROOT

    return (ROOT / "t10k-images-idx3-ubyte.gz").is_file()


def test_help_names_are_the_registry():
    assert tuple(NAMED) == DATA_SETS


def test_fake_named_set_is_read_when_no_file_has_the_name(monkeypatch, tmp_path):
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    monkeypatch.setitem(NAMED, "toy-set", lambda: x)
    monkeypatch.chdir(tmp_path)
    got = read_vectors("toy-set")
    assert got.dtype == torch.float32 and torch.equal(got, torch.from_numpy(x).float())
    with pytest.raises(ValueError, match="dimension 3, but the quantizer needs 5"):
        read_vectors("toy-set", dim=5)


def test_a_file_of_the_same_name_wins(monkeypatch, tmp_path):
    monkeypatch.setitem(NAMED, "toy.npy", lambda: np.zeros((2, 2), np.float32))
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "toy.npy", np.ones((3, 2), np.float32))
    assert torch.equal(read_vectors("toy.npy"), torch.ones(3, 2))


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(FileNotFoundError, match="glove-6b-50d, fashion-mnist-train"):
        read_vectors(tmp_path / "no-such-set")


def test_missing_package_names_what_installs_it(monkeypatch, tmp_path):
    from vqkit.data import fashion_mnist

    monkeypatch.setattr(fashion_mnist, "ROOT", tmp_path)
    monkeypatch.setitem(NAMED, "fashion-mnist-test",
                        lambda: fashion_mnist.load_fashion_mnist("test", root=tmp_path)[0])
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        named.read_vectors("fashion-mnist-test")


@pytest.mark.skipif(not _fashion_installed(), reason="apt-get install dataset-fashion-mnist")
def test_fit_and_eval_by_name_equal_fit_on_the_saved_rows(vqkit, tmp_path):
    from vqkit.data.fashion_mnist import load_fashion_mnist

    images, _ = load_fashion_mnist("test")
    saved = tmp_path / "test.npy"
    np.save(saved, images.reshape(len(images), -1).astype(np.float32))
    args = ["--bits", "3", "--steps", "4", "--batch", "128", "--init-samples", "500",
            "--log-every", "2", "-q"]
    by_name, by_file = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    code, _, err = vqkit("fit", "fashion-mnist-test", *args, "-o", by_name,
                         "--json", tmp_path / "a.json")
    assert code == 0, err
    assert vqkit("fit", saved, *args, "-o", by_file)[0] == 0
    record = json.loads((tmp_path / "a.json").read_text())
    assert record["results"]["data"]["path"] == "fashion-mnist-test"
    assert record["results"]["data"]["shape"] == [10000, 784]
    a, _ = load_quantizer(by_name)
    b, _ = load_quantizer(by_file)
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    code, out, err = vqkit("eval", by_name, "fashion-mnist-test", "-q")
    assert code == 0 and "mse" in out, err
