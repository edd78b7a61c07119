"""save / load: round trip, and foreign, corrupt or truncated files refused with ValueError."""

from __future__ import annotations

import pytest
import torch

import vqkit
from vqkit import EMA, DiVeQ, MSEFit, PerStage, ResidualVQ, SFDiVeQ, VectorQuantizer


def test_round_trip_keeps_config_and_buffers(tmp_path):
    vq = VectorQuantizer(4, 8, estimator=DiVeQ(sigma=0.01), learning=EMA(decay=0.95))
    vq(torch.randn(16, 4))
    vqkit.save(vq, tmp_path / "a.pt")
    back = vqkit.load(tmp_path / "a.pt")
    assert back.estimator == DiVeQ(sigma=0.01) and back.codebook.learning == EMA(decay=0.95)
    assert torch.equal(back.codebook.usage, vq.codebook.usage)
    assert torch.equal(back.codebook.ema_sums, vq.codebook.ema_sums)


def _record(tmp_path, **changes):
    vq = VectorQuantizer(4, 8)
    path = tmp_path / "q.pt"
    vqkit.save(vq, path)
    record = torch.load(path, weights_only=True)
    record.update(changes)
    torch.save(record, path)
    return path


def test_unknown_type_and_version_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown quantizer type 'Mystery'"):
        vqkit.load(_record(tmp_path, type="Mystery"))
    with pytest.raises(ValueError, match="format_version 99"):
        vqkit.load(_record(tmp_path, format_version=99))


def test_corrupt_truncated_and_foreign_files_are_refused(tmp_path):
    path = tmp_path / "q.pt"
    vqkit.save(VectorQuantizer(4, 8), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable vqkit quantizer file"):
        vqkit.load(path)
    path.write_bytes(b"hello, not a checkpoint")
    with pytest.raises(ValueError, match="not a readable vqkit quantizer file"):
        vqkit.load(path)
    torch.save({"weights": torch.ones(2)}, path)
    with pytest.raises(ValueError, match="missing fields"):
        vqkit.load(path)
    with pytest.raises(FileNotFoundError):
        vqkit.load(tmp_path / "absent.pt")


def test_mismatched_state_dict_is_refused(tmp_path):
    other = VectorQuantizer(4, 16).state_dict()
    with pytest.raises(ValueError, match="does not match its config"):
        vqkit.load(_record(tmp_path, state_dict=other))


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "q.pt"
    vqkit.save(VectorQuantizer(4, 8), path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        vqkit.save(VectorQuantizer(4, 8), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["q.pt"]


@pytest.mark.parametrize("build", [
    lambda: VectorQuantizer(4, 8, estimator=SFDiVeQ(sigma=0.01)),
    lambda: VectorQuantizer(4, 8, estimator=MSEFit()),
    lambda: ResidualVQ(4, 8, 2, estimator=MSEFit()),
    lambda: ResidualVQ(4, 8, 2, estimator=PerStage(SFDiVeQ())),
], ids=["vq-sfdiveq", "vq-msefit", "rvq-msefit", "rvq-perstage-sfdiveq"])
def test_curve_estimators_save_and_load_on_any_quantizer(build, tmp_path):
    # These quantizers accept SFDiVeQ / MSEFit, saved, and then failed in vqkit.load with
    # "unknown estimator type": only SpaceFillingVQ looked estimators up among all of them.
    q = build()
    vqkit.save(q, tmp_path / "q.pt")
    back = vqkit.load(tmp_path / "q.pt")
    assert back.estimator == q.estimator and back.config() == q.config()
