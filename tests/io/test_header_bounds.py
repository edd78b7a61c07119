"""Issue 16, items 1-3 and 11: header fields are bounded before anything is allocated, a codes
header is checked against the quantizer that decodes it, and curve positions pack at the
quantizer's bits. Every crafted file carries a recomputed checksum, so only the new checks can
refuse it."""

from __future__ import annotations

import hashlib
import json
import resource
import struct

import pytest
import torch

from vqkit import ResidualVQ, SpaceFillingVQ, VectorQuantizer
from vqkit.apps.speech.codec import VQS, WorldCodec, frame_count, pack_bits, read_vqs
from vqkit.cli.main import main
from vqkit.functional.bitstream import MAX_INDICES, MAX_ZERO_BIT_VECTORS, unpack_indices
from vqkit.io import codes_file
from vqkit.io.codes_file import MAGIC, read_codes, write_codes


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _forge(blob: bytes, edit, payload: bytes | None = None, version: int = 1) -> bytes:
    """A codes file with its JSON header edited by ``edit`` (and ``payload`` instead of its
    own, ``payload_len`` set to match) and the SHA-256 recomputed."""
    _, _, hlen = struct.unpack_from("<8sII", blob)
    header = json.loads(blob[16 : 16 + hlen])
    payload = blob[16 + hlen : -32] if payload is None else payload
    header["payload_len"] = len(payload)
    edit(header)
    raw = json.dumps(header, sort_keys=True).encode()
    body = struct.pack("<8sII", MAGIC, version, len(raw)) + raw + payload
    return body + hashlib.sha256(body).digest()


@pytest.fixture
def vq_codes(tmp_path):
    vq = VectorQuantizer(4, 16).eval()
    path = tmp_path / "c.vqc"
    write_codes(path, vq.encode(torch.randn(5, 4)), vq)
    return vq, path


def test_unpack_refuses_a_shape_beyond_its_maximum_before_allocating():
    before = _peak_mib()
    with pytest.raises(ValueError, match="more than the"):
        unpack_indices(b"", [1], (10**12,))
    with pytest.raises(ValueError, match="more than the"):
        unpack_indices(b"", [1], (MAX_INDICES + 1,))
    assert _peak_mib() - before < 100


def test_zero_bit_codes_header_declaring_huge_shape_is_refused_cheaply(vq_codes, tmp_path):
    _, path = vq_codes
    forged = tmp_path / "huge.vqc"  # K = 1: zero bits per vector, so an empty payload fits
    forged.write_bytes(_forge(path.read_bytes(), lambda h: h.update(
        codebook_sizes=[1], shape=[10**9]), payload=b""))
    before = _peak_mib()
    with pytest.raises(ValueError, match="more than the"):
        read_codes(forged)
    assert main(["info", str(forged)]) == 2
    assert _peak_mib() - before < 100


def test_zero_bit_vectors_are_bounded_on_their_own():
    """2^27 indices of 0 bits fit MAX_INDICES and an empty payload, yet would take 1 GiB."""
    assert unpack_indices(b"", [1], (MAX_ZERO_BIT_VECTORS,)).shape == (MAX_ZERO_BIT_VECTORS, 1)
    with pytest.raises(ValueError, match="vectors of 0 bits"):
        unpack_indices(b"", [1], (MAX_ZERO_BIT_VECTORS + 1,))
    with pytest.raises(ValueError, match="vectors of 0 bits"):
        unpack_indices(b"", [1, 1], (MAX_INDICES // 2,))


@pytest.mark.parametrize("sizes, shape, extra", [
    ([1], [MAX_INDICES], {}),
    ([1], [MAX_ZERO_BIT_VECTORS + 1], {}),
    ([1], [MAX_ZERO_BIT_VECTORS + 1], {"packing": "curve-steps", "position_bits": 4}),
])
def test_zero_bit_codes_header_within_max_indices_is_refused(vq_codes, tmp_path, capsys,
                                                             sizes, shape, extra):
    _, path = vq_codes
    forged = tmp_path / "zero.vqc"
    version = 2 if extra else 1
    forged.write_bytes(_forge(path.read_bytes(), lambda h: h.update(
        codebook_sizes=sizes, shape=shape, **extra), payload=b"", version=version))
    with pytest.raises(ValueError, match="vectors of 0 bits"):
        read_codes(forged)
    capsys.readouterr()
    assert main(["info", str(forged)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(forged) in err[0] and "0 bits" in err[0]


def test_info_reads_a_codes_header_without_unpacking(vq_codes, monkeypatch, capsys):
    _, path = vq_codes

    def refuse(*args):
        raise AssertionError("info unpacked the indices")

    monkeypatch.setattr(codes_file, "_unpack", refuse)
    assert main(["info", str(path)]) == 0
    assert "checksum ok" in capsys.readouterr().out
    header = codes_file.read_codes_header(path)
    assert header.shape == (5,) and header.indices.numel() == 0


@pytest.mark.parametrize("edit, needle", [
    (lambda h: h.update(shape=[2.5]), "lists of"),
    (lambda h: h.update(shape=["5"]), "lists of"),
    (lambda h: h.update(shape=[True, 5]), "lists of"),
    (lambda h: h.update(codebook_sizes=[0]), "lists of"),
    (lambda h: h.update(index_shape=[2]), "codebook sizes for index_shape"),
    (lambda h: h.update(dim=0), "dim 0"),
    (lambda h: h.update(packing="zip"), "packing 'zip'"),
    (lambda h: h.update(quantizer="x"), "no quantizer"),
    (lambda h: h.update(shape=[7]), "need"),
    (lambda h: h.update(position_bits=3), "position_bits with packing"),
])
def test_codes_header_fields_are_type_and_range_checked(vq_codes, tmp_path, edit, needle):
    _, path = vq_codes
    forged = tmp_path / "f.vqc"
    forged.write_bytes(_forge(path.read_bytes(), edit))
    with pytest.raises(ValueError, match=needle):
        read_codes(forged)


def test_codes_header_is_checked_against_the_quantizers_own_sizes(vq_codes, tmp_path):
    vq, path = vq_codes
    # K = 2 for a K = 16 quantizer (5 vectors of 1 bit); the digest still names the quantizer.
    forged = tmp_path / "k2.vqc"
    forged.write_bytes(_forge(path.read_bytes(), lambda h: h.update(codebook_sizes=[2]),
                              payload=b"\x00"))
    assert read_codes(forged).codebook_sizes == [2]  # a consistent file in itself ...
    with pytest.raises(ValueError, match="codebook sizes \\[2\\]"):  # ... not this quantizer's
        read_codes(forged, vq)


def test_residual_codes_rewritten_to_fewer_stages_are_refused(tmp_path):
    rvq = ResidualVQ(4, 16, 3).eval()
    path = tmp_path / "r.vqc"
    idx = rvq.encode(torch.randn(8, 4))
    write_codes(path, idx, rvq)
    fewer = tmp_path / "r2.vqc"
    prefix = write_codes(tmp_path / "tmp.vqc", idx[:, :2], ResidualVQ(4, 16, 2))
    payload = (tmp_path / "tmp.vqc").read_bytes()[-32 - prefix.payload_bytes : -32]
    fewer.write_bytes(_forge(path.read_bytes(), lambda h: h.update(
        index_shape=[2], codebook_sizes=[16, 16]), payload=payload))
    assert read_codes(fewer).indices.shape == (8, 2)  # a consistent file in itself ...
    with pytest.raises(ValueError, match="index shape"):  # ... but not this quantizer's
        read_codes(fewer, rvq)


@pytest.mark.parametrize("bits", [0, 3, 8])
def test_curve_positions_pack_at_the_quantizers_bits(tmp_path, bits):
    sf = SpaceFillingVQ(4, 64).eval()
    sf.init_codebook_(torch.randn(500, 4), generator=torch.Generator().manual_seed(0))
    pos = sf.encode(torch.randn(100, 4))
    path = tmp_path / "s.vqc"
    codes = write_codes(path, pos, sf, position_bits=bits)
    blob = path.read_bytes()
    assert struct.unpack_from("<I", blob, 8)[0] == 2  # the new version
    steps = 63 * 2**bits + 1
    assert codes.payload_bytes == (100 * (steps - 1).bit_length() + 7) // 8
    if bits == 0:
        assert codes.payload_bytes * 8 == 100 * 6  # sf.bits_per_vector = log2 64 = 6
        assert sf.bits_per_vector == 6
    back = read_codes(path, sf)
    assert back.indices.dtype == torch.float64 and back.position_bits == bits
    assert torch.equal(back.indices, torch.round(pos * 2**bits) / 2**bits)
    assert float((back.indices - pos).abs().max()) <= 2.0 ** -(bits + 1)
    # The exact float64 packing is still version 1, byte for byte.
    write_codes(tmp_path / "f.vqc", pos, sf)
    assert struct.unpack_from("<I", (tmp_path / "f.vqc").read_bytes(), 8)[0] == 1


def test_curve_steps_option_is_refused_where_it_does_not_apply(tmp_path):
    vq = VectorQuantizer(4, 16)
    with pytest.raises(ValueError, match="curve positions"):
        write_codes(tmp_path / "x.vqc", vq.encode(torch.randn(3, 4)), vq, position_bits=2)
    sf = SpaceFillingVQ(4, 8).eval()
    with pytest.raises(ValueError, match="position_bits must be"):
        write_codes(tmp_path / "x.vqc", sf.encode(torch.randn(3, 4)), sf, position_bits=40)


# -- .vqs ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    torch.manual_seed(0)
    codec = WorldCodec(ResidualVQ(16, 16, 2)).eval()
    model = tmp_path_factory.mktemp("m") / "codec.pt"
    codec.save(model)
    return WorldCodec.load(model), model


def _vqs(codec, rate=8000, length=1600, frames=None, stages=2, payload_frames=None) -> bytes:
    frames = frame_count(length, 8000) if frames is None else frames
    rows = frames if payload_frames is None else payload_frames
    import numpy as np

    widths = [7, 3, 3, 3, 3] + [codec.index_bits] * stages
    payload = pack_bits(np.zeros((rows, len(widths)), np.int64), widths) if widths else b""
    header = {"rate": rate, "length": length, "frames": frames, "stages": stages,
              "ebits": codec.index_bits, "model": codec.fingerprint()}
    return VQS.pack(header, payload)


def test_a_well_formed_vqs_reads(speech, tmp_path):
    codec, _ = speech
    (tmp_path / "ok.vqs").write_bytes(_vqs(codec))
    indices, rate, length = read_vqs(tmp_path / "ok.vqs", codec)
    assert (rate, length, indices.shape) == (8000, 1600, (11, 7))


@pytest.mark.parametrize("fields, needle", [
    ({"rate": 0}, "sample rate 0"), ({"rate": 1}, "sample rate 1"),
    ({"rate": 100}, "sample rate 100"), ({"rate": 16000}, "sample rate 16000"),
    ({"rate": 48000}, "sample rate 48000"), ({"rate": 2**31}, "sample rate"),
    ({"length": 10**7, "frames": 11}, "11 frames for 10000000 samples"),
    ({"length": 2**32 - 1, "frames": 11}, "frames for"),
    ({"length": 0, "frames": 11}, "frames for 0"),
    ({"stages": 0, "payload_frames": 11}, "0 stages"),
    ({"stages": 3}, "3 stages"),
    ({"frames": 10**6, "payload_frames": 11}, "frames for"),
])
def test_vqs_header_fields_are_bounded(speech, tmp_path, fields, needle):
    codec, model = speech
    path = tmp_path / "bad.vqs"
    path.write_bytes(_vqs(codec, **fields))
    before = _peak_mib()
    with pytest.raises(ValueError, match=needle):
        read_vqs(path, codec)
    assert _peak_mib() - before < 100


def test_speech_decode_of_a_bad_rate_exits_2_in_one_line(speech, tmp_path, capsys):
    codec, model = speech
    path = tmp_path / "bad.vqs"
    path.write_bytes(_vqs(codec, rate=100))
    code = main(["speech", "decode", str(path), str(tmp_path / "o.wav"), "--model", str(model)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "sample rate 100" in err
    assert not (tmp_path / "o.wav").exists()
