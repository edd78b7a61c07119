"""Files written by vqkit before the registry still load and decode exactly as they did.

``tests/data/legacy`` holds what vqkit wrote at commit 2f79c45 (``make_legacy_files.py`` there
made them): ``vqkit.save`` files of each quantizer family with non-default strategies, codes
files of their indices, a ``.vqi`` image compressed with the shipped image-codec model, and the
fingerprints of the shipped speech-codec model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import vqkit
from vqkit.io.codes_file import read_codes
from vqkit.io.fingerprint import quantizer_digest

DATA = Path(__file__).parent / "data" / "legacy"
NAMES = ["vq", "rvq", "pvq", "avq", "sfvq"]


@pytest.fixture(scope="module")
def expected():
    return torch.load(DATA / "expected.pt", weights_only=True)


@pytest.mark.parametrize("name", NAMES)
def test_saved_quantizers_load_and_decode_the_same(name, expected):
    q = vqkit.load(DATA / f"{name}.pt").eval()
    x = expected["x"]
    assert torch.equal(q.encode(x), expected[f"{name}_indices"])
    assert torch.equal(q(x).quantized, expected[f"{name}_quantized"])
    # The codes file names its quantizer by a digest of type, config and state: unchanged.
    codes = read_codes(DATA / f"{name}.vqc", q)
    assert torch.equal(codes.indices, expected[f"{name}_indices"])


def test_an_old_image_file_decodes_with_the_model_that_wrote_it():
    # default_model_v1.pt is the shipped model of 2026-11 (replaced by a regenerated one);
    # the current code must still read it and decode the file it wrote, bit for bit.
    from vqkit.apps.image_codec.codec import decompress
    from vqkit.apps.image_codec.model import load_checkpoint

    model = load_checkpoint(DATA / "default_model_v1.pt")
    image = decompress(model, (DATA / "default_model.vqi").read_bytes())
    assert np.array_equal(image, np.load(DATA / "default_model_reconstruction.npy"))


def test_the_shipped_image_model_refuses_a_file_of_another_model():
    from vqkit.apps.image_codec.codec import decompress
    from vqkit.apps.image_codec.model import DEFAULT_MODEL, load_default_model

    if not DEFAULT_MODEL.is_file():
        pytest.fail(f"the shipped image-codec model {DEFAULT_MODEL} is missing")
    with pytest.raises(ValueError, match="fingerprint|model"):
        decompress(load_default_model(), (DATA / "default_model.vqi").read_bytes())


def test_the_shipped_speech_model_is_unchanged():
    from vqkit.apps.speech.codec import DEFAULT_MODEL, WorldCodec

    codec = WorldCodec.load(DEFAULT_MODEL)
    fingerprint, digest = (DATA / "speech_model.txt").read_text().split()
    assert codec.fingerprint().hex() == fingerprint  # what .vqs files are checked against
    assert quantizer_digest(codec.quantizer) == digest
