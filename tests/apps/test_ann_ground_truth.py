"""The cached brute-force ground truth: computed once, keyed by the data, rebuilt when corrupt."""

from __future__ import annotations

import pytest
import torch

from vqkit.apps.ann import ground_truth
from vqkit.apps.ann.ground_truth import cached_nearest, default_cache_dir


def test_cached_nearest_is_computed_once_per_split(tmp_path, monkeypatch, generator):
    q, db = torch.randn(40, 5, generator=generator), torch.randn(300, 5, generator=generator)
    expected = torch.cdist(q.double(), db.double()).argmin(dim=1)
    first = cached_nearest(q, db, cache_dir=tmp_path)
    assert torch.equal(first, expected)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npy"  # no temporary file left behind

    def no_search(*_args):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(ground_truth, "exact_nearest", no_search)
    assert torch.equal(cached_nearest(q, db, cache_dir=tmp_path), expected)
    with pytest.raises(AssertionError, match="not used"):  # other data: another key
        cached_nearest(q, db[1:], cache_dir=tmp_path)


def test_a_corrupt_cache_file_is_recomputed(tmp_path, generator):
    q, db = torch.randn(10, 3, generator=generator), torch.randn(50, 3, generator=generator)
    truth = cached_nearest(q, db, cache_dir=tmp_path)
    (path,) = tmp_path.iterdir()
    path.write_bytes(b"not a numpy file")
    assert torch.equal(cached_nearest(q, db, cache_dir=tmp_path), truth)
    assert torch.equal(cached_nearest(q, db, cache_dir=tmp_path), truth)
    assert path.read_bytes()[:6] == b"\x93NUMPY"


def test_the_cache_folder_follows_vqkit_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VQKIT_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "ann-ground-truth"
