"""The codes-file format of docs/formats.md: layout, exact round trips, and every check."""

from __future__ import annotations

import hashlib
import json
import os
import struct

import pytest
import torch

from vqkit import VectorQuantizer
from vqkit.functional.bitstream import pack_indices, packed_size
from vqkit.io.codes_file import MAGIC, read_codes, write_codes
from vqkit.io.fingerprint import quantizer_digest
from vqkit.registry import QUANTIZERS


def _parts(blob: bytes) -> tuple[dict, bytes]:
    magic, version, hlen = struct.unpack_from("<8sII", blob)
    assert magic == MAGIC and version == 1
    header = json.loads(blob[16 : 16 + hlen])
    return header, blob[16 + hlen : -32]


def _reseal(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()


def test_layout_matches_the_documented_format(tmp_path):
    vq = VectorQuantizer(4, 10)
    idx = torch.randint(0, 10, (7, 3))
    write_codes(tmp_path / "c.vqc", idx, vq)
    blob = (tmp_path / "c.vqc").read_bytes()
    assert hashlib.sha256(blob[:-32]).digest() == blob[-32:]
    header, payload = _parts(blob)
    assert header == {
        "shape": [7, 3], "dim": 4, "index_shape": [], "codebook_sizes": [10],
        "index_kind": "int64", "packing": "bits-lsb",
        "quantizer": {"type": "VectorQuantizer", "digest": quantizer_digest(vq)},
        "payload_len": packed_size(21, [10]),
    }
    assert payload == pack_indices(idx.reshape(-1, 1), [10])      # 21 x 4 bits = 11 bytes
    assert len(payload) == 11


@pytest.mark.parametrize("name", ["ResidualVQ", "SpaceFillingVQ"])
def test_multi_codebook_and_curve_positions_round_trip_exactly(tmp_path, name):
    if name not in QUANTIZERS:
        pytest.skip(f"{name} not available")
    args = (6, 8, 3) if name == "ResidualVQ" else (6, 8)
    q = QUANTIZERS.lookup(name)(*args).eval()
    x = torch.randn(2, 9, 6)
    idx = q.encode(x)
    codes = write_codes(tmp_path / "c.vqc", idx, q)
    back = read_codes(tmp_path / "c.vqc", q)
    assert back.indices.dtype == idx.dtype and torch.equal(back.indices, idx)
    assert torch.equal(q.decode(back.indices), q(x).quantized)
    if name == "SpaceFillingVQ":
        assert codes.packing == "float64" and codes.payload_bytes == 8 * 18
    else:
        assert codes.payload_bytes == packed_size(18, [8, 8, 8])   # 9 bits per vector


def test_masked_indices_cannot_be_written(tmp_path):
    vq = VectorQuantizer(4, 8)
    with pytest.raises(ValueError, match="no -1"):
        write_codes(tmp_path / "c.vqc", torch.tensor([0, -1, 3]), vq)
    assert not (tmp_path / "c.vqc").exists()


def test_checks_after_the_checksum(tmp_path):
    """Files whose checksum is right but whose content is inconsistent are still refused."""
    vq = VectorQuantizer(4, 5)
    write_codes(tmp_path / "c.vqc", torch.tensor([4, 4, 4]), vq)   # 3 x 3 bits: 7 pad bits
    blob = (tmp_path / "c.vqc").read_bytes()
    body = bytearray(blob[:-32])
    body[-1] |= 0x80                                              # a padding bit
    (tmp_path / "pad.vqc").write_bytes(_reseal(bytes(body)))
    with pytest.raises(ValueError, match="padding"):
        read_codes(tmp_path / "pad.vqc")
    body = bytearray(blob[:-32])
    struct.pack_into("<I", body, 8, 3)               # version 3 (2 is the curve-steps one)
    (tmp_path / "v.vqc").write_bytes(_reseal(bytes(body)))
    with pytest.raises(ValueError, match="version 3"):
        read_codes(tmp_path / "v.vqc")
    header, payload = _parts(blob)
    header["payload_len"] += 1
    raw = json.dumps(header).encode()
    forged = struct.pack("<8sII", MAGIC, 1, len(raw)) + raw + payload
    (tmp_path / "len.vqc").write_bytes(_reseal(forged))
    with pytest.raises(ValueError, match="payload holds"):
        read_codes(tmp_path / "len.vqc")
    header["payload_len"] = 1
    header["codebook_sizes"] = [3]                                # 2 bits, but index 3 >= K
    raw = json.dumps(header).encode()
    forged = struct.pack("<8sII", MAGIC, 1, len(raw)) + raw + pack_indices(
        torch.tensor([[3], [3], [3]]), [4])
    (tmp_path / "k.vqc").write_bytes(_reseal(forged))
    with pytest.raises(ValueError, match="codebook_sizes"):
        read_codes(tmp_path / "k.vqc")

def test_digest_ties_codes_to_one_quantizer(tmp_path):
    a, b = VectorQuantizer(4, 8), VectorQuantizer(4, 8)
    write_codes(tmp_path / "c.vqc", torch.tensor([1, 2]), a)
    read_codes(tmp_path / "c.vqc", a)
    with pytest.raises(ValueError, match="different quantizer"):
        read_codes(tmp_path / "c.vqc", b)


def _defects(blob: bytes) -> dict[str, tuple[bytes, str]]:
    body = bytearray(blob[:-32])
    struct.pack_into("<I", body, 8, 7)
    return {
        "magic": (b"\x89PNG\r\n\x1a\n" + blob[8:], "is not a vqkit codes file (magic"),
        "truncated": (blob[:-5], "corrupt or truncated (SHA-256 checksum mismatch)"),
        "short": (blob[:20], "is not a vqkit codes file or is truncated"),
        "version": (_reseal(bytes(body)), "format version 7; this vqkit reads version 1"),
        "flipped": (blob[:30] + bytes([blob[30] ^ 4]) + blob[31:], "SHA-256 checksum mismatch"),
    }


def test_every_defect_is_a_value_error_naming_the_file(tmp_path):
    vq = VectorQuantizer(4, 8)
    write_codes(tmp_path / "c.vqc", torch.tensor([1, 2, 3]), vq)
    for name, (data, message) in _defects((tmp_path / "c.vqc").read_bytes()).items():
        path = tmp_path / f"{name}.vqc"
        path.write_bytes(data)
        with pytest.raises(ValueError) as err:
            read_codes(path, vq)
        assert str(err.value).startswith(str(path)) and message in str(err.value), name
    with pytest.raises(ValueError, match=f"{tmp_path / 'c.vqc'} was written by a different "
                                         "quantizer"):
        read_codes(tmp_path / "c.vqc", VectorQuantizer(4, 8))


def test_a_failed_write_leaves_the_old_codes_file(tmp_path, monkeypatch):
    vq = VectorQuantizer(4, 8)
    path = tmp_path / "c.vqc"
    write_codes(path, torch.tensor([1, 2, 3]), vq)
    before = path.read_bytes()

    def no_rename(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="rename failed"):
        write_codes(path, torch.tensor([4, 5, 6]), vq)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.vqc"]
    with pytest.raises(ValueError, match="no -1"):
        write_codes(path, torch.tensor([-1]), vq)
    assert path.read_bytes() == before
