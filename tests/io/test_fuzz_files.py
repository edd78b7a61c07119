"""Seeded corruption of every kind of file vqkit reads, through the command line (issue 16).

For each kind -- codes ``.vqc``, checkpoint, ``vqkit.save`` file, ``.vqi``, ``.vqs``, ``.npy``
-- :data:`CASES` seeded corruptions (bit flips, truncations, appended bytes, overwritten and
zeroed ranges) are fed to the command that reads it. Every run must end with exit 0 and the
output of the intact file (or, for ``.npy`` data, which carries no checksum, any output), or
exit 2 and exactly one line on stderr; never a traceback (an exception out of ``main``), a
signal (it would kill the test process), or a memory growth above :data:`MEMORY_CAP_MIB`.
"""

from __future__ import annotations

import contextlib
import io
import random
import resource
from pathlib import Path

import numpy as np
import pytest
import torch

from vqkit.cli.main import main

CASES = 150
MEMORY_CAP_MIB = 300
SEED = 16


def _mutate(blob: bytes, rng: random.Random) -> bytes:
    data = bytearray(blob)
    kind = rng.randrange(5)
    if kind == 0:  # flip 1 to 3 bits
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncate
        del data[rng.randrange(len(data)) :]
    elif kind == 2:  # append
        data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind == 3:  # overwrite a range with random bytes
        at = rng.randrange(len(data))
        for i in range(at, min(len(data), at + rng.randint(1, 8))):
            data[i] = rng.randrange(256)
    else:  # zero a range
        at = rng.randrange(len(data))
        data[at : at + rng.randint(1, 64)] = bytes(len(data[at : at + 64]))[: rng.randint(1, 64)]
    return bytes(data)


def _run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    np.save(d / "x.npy", np.random.default_rng(0).normal(size=(40, 4)).astype("float32"))
    assert main(["fit", str(d / "x.npy"), "--bits", "3", "--steps", "5", "--batch", "16",
                 "--init", "random", "-q", "-o", str(d / "q.ckpt")]) == 0
    import vqkit

    vqkit.save(vqkit.load(d / "q.ckpt"), d / "q.pt")
    assert main(["encode", "-q", str(d / "q.ckpt"), str(d / "x.npy"), str(d / "c.vqc")]) == 0
    return d


def _fuzz(tmp: Path, name: str, blob: bytes, command, output: str | None,
          exact: bool = True) -> dict[int, int]:
    """Run ``command(path)`` on :data:`CASES` corruptions of ``blob``; returns exit counts."""
    rng = random.Random(f"{SEED}-{name}")
    target = tmp / name
    reference = None
    if output is not None:
        target.write_bytes(blob)
        assert _run(command(target)) [0] == 0
        reference = (tmp / output).read_bytes()
    counts = {0: 0, 2: 0}
    for case in range(CASES):
        target.write_bytes(_mutate(blob, rng))
        if output is not None:
            (tmp / output).unlink(missing_ok=True)
        code, err = _run(command(target))
        assert code in (0, 2), (name, case, code, err)
        if code == 2:
            assert err.count("\n") == 1 and err.startswith("vqkit: error: "), (name, case, err)
        elif exact and reference is not None:
            assert (tmp / output).read_bytes() == reference, (name, case)
        counts[code] += 1
    return counts


def test_corrupted_files_exit_0_unchanged_or_2_in_one_line(files, tmp_path):
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    d = files
    out = str(tmp_path / "out")
    counts = {}
    counts["vqc"] = _fuzz(tmp_path, "c.vqc", (d / "c.vqc").read_bytes(),
                          lambda p: ["decode", "-q", str(d / "q.ckpt"), str(p), out + ".npy"],
                          "out.npy")
    for name in ("q.ckpt", "q.pt"):
        counts[name] = _fuzz(tmp_path, name, (d / name).read_bytes(),
                             lambda p: ["encode", "-q", str(p), str(d / "x.npy"), out + ".vqc"],
                             "out.vqc")
    counts["npy"] = _fuzz(tmp_path, "x.npy", (d / "x.npy").read_bytes(),
                          lambda p: ["encode", "-q", str(d / "q.ckpt"), str(p), out + ".vqc"],
                          "out.vqc", exact=False)
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) / 1024
    assert growth < MEMORY_CAP_MIB, growth
    for name, seen in counts.items():  # the checks refuse most corruptions
        assert seen[2] > CASES // 2, (name, seen)


def test_corrupted_image_files(tmp_path):
    pytest.importorskip("PIL")
    from vqkit.apps.image_codec.codec import compress
    from vqkit.apps.image_codec.model import DEFAULT_MODEL, load_default_model

    model = load_default_model()
    blob = compress(model, np.random.default_rng(0).integers(0, 255, (20, 24, 3), np.uint8))
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seen = _fuzz(tmp_path, "x.vqi", blob, lambda p: ["image", "decompress", "-q", str(p),
                                                      str(tmp_path / "o.png"), "--model",
                                                      str(DEFAULT_MODEL)], "o.png")
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) / 1024 < MEMORY_CAP_MIB
    assert seen[2] > CASES // 2


def test_corrupted_whole_image_files(tmp_path):
    pytest.importorskip("constriction")
    from vqkit.apps.image_codec.network import DEFAULT_IMAGE_MODEL, load_default_image_model
    from vqkit.apps.image_codec.whole_file import compress

    if not DEFAULT_IMAGE_MODEL.is_file():
        pytest.skip("image model not shipped")
    image = np.random.default_rng(0).integers(0, 255, (20, 24, 3), np.uint8)
    blob = compress(load_default_image_model(), image)
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seen = _fuzz(tmp_path, "w.vqi", blob, lambda p: ["image", "decompress", "-q", str(p),
                                                      str(tmp_path / "o.png")], "o.png")
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) / 1024 < MEMORY_CAP_MIB
    assert seen[2] > CASES // 2


def test_corrupted_whole_image_files_of_a_small_model(tmp_path, small_whole_image_model):
    """As above without the shipped model: a small untrained model with a skewed prior."""
    from vqkit.apps.image_codec.whole_file import compress

    path, model = small_whole_image_model
    image = np.random.default_rng(0).integers(0, 255, (20, 24, 3), np.uint8)
    blob = compress(model, image)
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seen = _fuzz(tmp_path, "s.vqi", blob, lambda p: ["image", "decompress", "-q", str(p),
                                                      str(tmp_path / "o.png"), "--model",
                                                      str(path)], "o.png")
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) / 1024 < MEMORY_CAP_MIB
    assert seen[2] > CASES // 2


def test_corrupted_speech_files(tmp_path):
    pytest.importorskip("pyworld")
    from vqkit import ResidualVQ
    from vqkit.apps.speech.codec import VQS, WorldCodec, frame_count, pack_bits

    torch.manual_seed(0)
    codec = WorldCodec(ResidualVQ(16, 16, 2)).eval()
    codec.save(tmp_path / "m.pt")
    frames = frame_count(1600, 8000)
    widths = [7, 3, 3, 3, 3, 4, 4]
    payload = pack_bits(np.ones((frames, len(widths)), np.int64), widths)
    blob = VQS.pack({"rate": 8000, "length": 1600, "frames": frames, "stages": 2, "ebits": 4,
                     "model": codec.fingerprint()}, payload)
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seen = _fuzz(tmp_path, "x.vqs", blob, lambda p: ["speech", "decode", str(p),
                                                      str(tmp_path / "o.wav"), "--model",
                                                      str(tmp_path / "m.pt")], "o.wav")
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) / 1024 < MEMORY_CAP_MIB
    assert seen[2] > CASES // 2
