"""The .vqs speech file: round trip, exact bit budget, corrupt files, odd inputs, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from vqkit import ResidualVQ
from vqkit.apps.speech import world
from vqkit.apps.speech.codec import (
    DEFAULT_MODEL,
    WorldCodec,
    decode_file,
    decode_frames,
    encode_file,
    encode_frames,
    read_vqs,
)
from vqkit.cli.main import main
from vqkit.data.speech import load_wav

from .test_speech_world import fill_freed_heap

pytest.importorskip("pyworld")
torch.set_num_threads(1)
SOURCE = "/usr/share/codec2/wav/hts1a.wav"  # 8 kHz, an unseen (test) speaker
CLIP = ""  # set by the audio fixture: the first 1.5 s of SOURCE, to keep the tests fast


@pytest.fixture(scope="module", autouse=True)
def audio(tmp_path_factory):
    global CLIP
    samples = load_wav(SOURCE, 8000)[0][:12000]
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    sf.write(path, samples, 8000, subtype="FLOAT")
    CLIP = str(path)
    return samples


@pytest.fixture(scope="module")
def codec(audio, tmp_path_factory):
    """A small codec (2 stages of 4 bits) fitted by k-means to the clip's own envelopes."""
    frames = world.analyse(audio, 8000)
    z = torch.from_numpy(frames.coded).float()
    codec = WorldCodec(ResidualVQ(16, 16, 2))
    codec.mean.copy_(z.mean(0))
    codec.scale.copy_((z - codec.mean).std())
    codec.quantizer.init_codebook_((z - codec.mean) / codec.scale,
                                   generator=torch.Generator().manual_seed(0))
    path = tmp_path_factory.mktemp("model") / "codec.pt"
    codec.eval().save(path)
    return WorldCodec.load(path), path


def test_round_trip_indices_exact_and_bit_budget(audio, codec, tmp_path):
    codec, _ = codec
    out = tmp_path / "a.vqs"
    info = encode_file(CLIP, out, codec)
    frames = world.analyse(audio, 8000)  # the analysis depends on the input only
    expected = encode_frames(codec, frames)
    indices, rate, length = read_vqs(out, codec)
    assert np.array_equal(indices, expected)
    assert (rate, length) == (8000, len(audio))
    bits_per_frame = 7 + 4 * 3 + 2 * 4
    assert info["bytes"] == 27 + -(-len(expected) * bits_per_frame // 8) + 4
    wav = tmp_path / "a.wav"
    decode_file(out, wav, codec)
    decoded, sr = sf.read(wav)
    assert sr == 8000 and decoded.shape == (len(audio),)
    # The decoder's output equals the vocoder run on the dequantized parameters.
    direct = world.synthesise(decode_frames(codec, expected), 8000, len(audio))
    assert np.allclose(decoded, np.clip(direct, -1, 1), atol=1 / 32767)
    # Quantized f0 stays within half a step (log scale) of the analysed f0 where voiced.
    voiced = frames.f0 > 0
    ratio = world.dequantize_f0(expected[voiced, 0]) / np.clip(frames.f0[voiced], 60, 400)
    assert np.all(np.abs(np.log(ratio)) <= np.log(400 / 60) / 125 / 2 + 1e-9)


def test_same_input_same_bits_whatever_ran_before(codec, tmp_path):
    """A batch job or server encodes many files in one process: the bits of a file must not
    depend on what was encoded (or freed) before it."""
    codec, _ = codec
    first = tmp_path / "first.vqs"
    encode_file(CLIP, first, codec)
    for i, name in enumerate(["hts2a", "morig", "cross"]):
        other = tmp_path / f"{name}.wav"
        sf.write(other, load_wav(f"/usr/share/codec2/wav/{name}.wav", 8000)[0][:8000], 8000)
        encode_file(other, tmp_path / f"{name}.vqs", codec, stages=1 + i % 2)
    for garbage in (-1e300, float("inf"), float("nan")):
        fill_freed_heap(garbage)
        again = tmp_path / "again.vqs"
        encode_file(CLIP, again, codec)
        assert again.read_bytes() == first.read_bytes(), garbage


def test_fewer_stages_cost_fewer_bits_and_decode(codec, tmp_path):
    codec, _ = codec
    full = encode_file(CLIP, tmp_path / "full.vqs", codec)
    one = encode_file(CLIP, tmp_path / "one.vqs", codec, stages=1)
    assert one["bytes"] < full["bytes"]
    decode_file(tmp_path / "one.vqs", tmp_path / "one.wav", codec)
    with pytest.raises(ValueError, match="stages"):
        encode_file(CLIP, tmp_path / "x.vqs", codec, stages=3)


def test_corrupt_or_foreign_files_are_refused(codec, tmp_path):
    codec, _ = codec
    out = tmp_path / "a.vqs"
    encode_file(CLIP, out, codec)
    data = bytearray(out.read_bytes())
    data[30] ^= 0xFF
    (tmp_path / "bad.vqs").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        read_vqs(tmp_path / "bad.vqs", codec)
    (tmp_path / "text.vqs").write_text("hello world, not a codec file")
    with pytest.raises(ValueError, match="not a .vqs"):
        read_vqs(tmp_path / "text.vqs", codec)
    other = WorldCodec(ResidualVQ(16, 16, 2)).eval()
    with pytest.raises(ValueError, match="different codec model"):
        read_vqs(out, other)


def test_every_defect_names_the_file_and_writes_are_atomic(codec, tmp_path, monkeypatch):
    import os
    import struct
    import zlib

    codec, _ = codec
    out = tmp_path / "a.vqs"
    encode_file(CLIP, out, codec)
    data = out.read_bytes()
    fields = struct.unpack_from("<4sBIIIBB8s", data)
    assert fields[:2] == (b"VQS1", 1) and fields[5:] == (2, 4, codec.fingerprint())
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])
    body = bytearray(data[:-4])
    body[4] = 5
    cases = {
        "version": (bytes(body) + struct.pack("<I", zlib.crc32(bytes(body))),
                    "is .vqs file format version 5; this vqkit reads version 1"),
        "cut": (data[:-1], "is corrupt or truncated (CRC-32 checksum mismatch)"),
        "short": (data[:12], "is not a .vqs file or is truncated"),
        "magic": (b"RIFF" + data[4:], "is not a .vqs file (magic"),
    }
    for name, (blob, message) in cases.items():
        path = tmp_path / f"{name}.vqs"
        path.write_bytes(blob)
        with pytest.raises(ValueError) as err:
            read_vqs(path, codec)
        assert str(err.value).startswith(f"{path} {message}"), (name, err.value)
    with pytest.raises(FileNotFoundError, match="no such .vqs file"):
        read_vqs(tmp_path / "absent.vqs", codec)

    def no_rename(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="rename failed"):
        encode_file(CLIP, out, codec, stages=1)
    monkeypatch.undo()
    assert out.read_bytes() == data
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_other_rate_and_stereo_input_are_resampled_and_downmixed(audio, codec, tmp_path):
    codec, _ = codec
    from vqkit.data.speech import resample

    wide = resample(audio, 8000, 16000)
    sf.write(tmp_path / "mono16k.wav", wide, 16000, subtype="FLOAT")
    sf.write(tmp_path / "stereo16k.wav", np.stack([wide, wide], 1), 16000, subtype="FLOAT")
    encode_file(tmp_path / "mono16k.wav", tmp_path / "m.vqs", codec)
    encode_file(tmp_path / "stereo16k.wav", tmp_path / "s.vqs", codec)
    assert (tmp_path / "m.vqs").read_bytes() == (tmp_path / "s.vqs").read_bytes()
    _, rate, length = read_vqs(tmp_path / "m.vqs", codec)
    assert rate == 8000 and abs(length - len(audio)) <= 1


def test_empty_short_and_non_audio_inputs_are_refused(codec, tmp_path):
    codec, _ = codec
    sf.write(tmp_path / "empty.wav", np.zeros(0), 8000)
    with pytest.raises(ValueError, match="no audio samples"):
        encode_file(tmp_path / "empty.wav", tmp_path / "e.vqs", codec)
    sf.write(tmp_path / "short.wav", np.zeros(100), 8000)
    with pytest.raises(ValueError, match="too short"):
        encode_file(tmp_path / "short.wav", tmp_path / "e.vqs", codec)
    (tmp_path / "notes.wav").write_text("this is not audio")
    with pytest.raises(ValueError, match="not a readable audio file"):
        encode_file(tmp_path / "notes.wav", tmp_path / "e.vqs", codec)
    assert not (tmp_path / "e.vqs").exists()


def test_cli_encode_decode_and_clear_errors(codec, tmp_path, capsys):
    _, model = codec
    assert main(["speech", "encode", CLIP, str(tmp_path / "c.vqs"), "--model", str(model)]) == 0
    assert main(["speech", "decode", str(tmp_path / "c.vqs"), str(tmp_path / "c.wav"),
                 "--model", str(model)]) == 0
    assert sf.info(str(tmp_path / "c.wav")).samplerate == 8000
    (tmp_path / "bad.wav").write_text("not audio")
    capsys.readouterr()
    assert main(["speech", "encode", str(tmp_path / "bad.wav"), str(tmp_path / "d.vqs"),
                 "--model", str(model)]) == 2
    assert "not a readable audio file" in capsys.readouterr().err


def test_shipped_model_loads_and_codes_a_clip(tmp_path):
    if not DEFAULT_MODEL.is_file():
        pytest.fail(f"the shipped codec model {DEFAULT_MODEL} is missing")
    codec = WorldCodec.load(DEFAULT_MODEL)
    info = encode_file(CLIP, tmp_path / "x.vqs", codec)
    assert info["kbps"] < 3.0
    decode_file(tmp_path / "x.vqs", tmp_path / "x.wav", codec)
