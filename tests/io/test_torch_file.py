"""The one reader of torch.save files: safe loading and errors that name the file and its kind."""

from __future__ import annotations

import fractions

import pytest
import torch

from vqkit.io.torch_file import atomic_torch_save, read_torch_file


def test_round_trip_of_tensors_and_plain_values(tmp_path):
    obj = {"w": torch.arange(4.0), "cache": [("a", 1, 2), None], "n": 3}
    atomic_torch_save(obj, tmp_path / "x.pt")
    back = read_torch_file(tmp_path / "x.pt", "test file")
    assert torch.equal(back["w"], obj["w"]) and back["cache"] == obj["cache"] and back["n"] == 3


def test_missing_directory_truncated_foreign_and_unsafe_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no such model file: .*absent.pt; train one"):
        read_torch_file(tmp_path / "absent.pt", "model file", hint="train one")
    with pytest.raises(IsADirectoryError, match="model file .* is a directory"):
        read_torch_file(tmp_path, "model file")
    path = tmp_path / "x.pt"
    atomic_torch_save({"w": torch.ones(100)}, path)
    data = path.read_bytes()
    cases = {
        "cut.pt": data[: len(data) // 2],
        "text.pt": b"hello, not a checkpoint",
        "empty.pt": b"",
    }
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
    # weights_only refuses pickled code: an arbitrary class is not loaded.
    torch.save(fractions.Fraction(1, 3), tmp_path / "code.pt")
    for name in [*cases, "code.pt"]:
        with pytest.raises(ValueError) as err:
            read_torch_file(tmp_path / name, "model file")
        message = str(err.value)
        assert message.startswith(f"{tmp_path / name} is not a readable model file: "), message
        assert "\n" not in message


def test_a_failed_save_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "x.pt"
    atomic_torch_save({"step": 1}, path)
    before = path.read_bytes()

    def full_disk(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="disk full"):
        atomic_torch_save({"step": 2}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]
