"""The one model fingerprint reproduces, byte for byte, the three hashes files were written with.

The oracles are the hash functions vqkit shipped before ``vqkit.io.fingerprint`` (quantizer
digest of codes files, image-codec and speech-codec model fingerprints), copied here verbatim.
"""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from vqkit import ResidualVQ, SpaceFillingVQ, VectorQuantizer
from vqkit.io.fingerprint import BARE_FLOAT32, NAMED, TYPED, fingerprint, quantizer_digest


def _old_quantizer_digest(quantizer) -> str:
    h = hashlib.sha256()
    head = {"type": type(quantizer).__name__, "config": quantizer.config()}
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    for name, tensor in sorted(quantizer.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return "sha256:" + h.hexdigest()


def _old_image_fingerprint(config: dict, state) -> bytes:
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name, value in sorted(state.items()):
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.digest()[:8]


def _old_speech_fingerprint(state) -> bytes:
    h = hashlib.sha256()
    for value in state.values():
        h.update(value.detach().cpu().float().numpy().tobytes())
    return h.digest()[:8]


def _quantizers():
    torch.manual_seed(0)
    rvq = ResidualVQ(6, 8, 3)
    rvq(torch.randn(32, 6))   # usage counters and other buffers become non-trivial
    return [VectorQuantizer(4, 10), rvq, SpaceFillingVQ(6, 8)]


@pytest.mark.parametrize("quantizer", _quantizers(), ids=lambda q: type(q).__name__)
def test_typed_hashing_is_the_codes_file_quantizer_digest(quantizer):
    assert quantizer_digest(quantizer) == _old_quantizer_digest(quantizer)


def test_named_hashing_is_the_image_codec_fingerprint():
    from vqkit.apps.image_codec.codec import model_fingerprint
    from vqkit.apps.image_codec.config import CodecConfig
    from vqkit.apps.image_codec.model import ImageCodecModel

    torch.manual_seed(0)
    model = ImageCodecModel(CodecConfig(tile=16, hidden=8, latent_dim=4))
    old = _old_image_fingerprint(model.config.asdict(), model.state_dict())
    assert model_fingerprint(model) == old
    state = model.state_dict()
    assert fingerprint(state, head=model.config.asdict(), hashing=NAMED)[:8] == old


def test_bare_float32_hashing_is_the_speech_codec_fingerprint():
    from vqkit.apps.speech.codec import WorldCodec

    torch.manual_seed(0)
    codec = WorldCodec(ResidualVQ(16, 16, 2))
    codec.mean.normal_()
    state = codec.state_dict()
    assert list(state)[0] == "mean"   # state order, not sorted ("mean" < "quantizer" < "scale")
    assert codec.fingerprint() == _old_speech_fingerprint(state)


def test_every_part_of_the_input_changes_the_fingerprint():
    state = {"b": torch.arange(3), "a": torch.ones(2, 2)}
    base = fingerprint(state, head={"k": 1})
    assert len(base) == 32
    assert fingerprint(dict(reversed(list(state.items()))), head={"k": 1}) == base  # sorted
    assert fingerprint(state, head={"k": 2}) != base
    assert fingerprint(state) != base
    assert fingerprint({**state, "a": torch.ones(4)}, head={"k": 1}) != base  # shape is typed
    assert fingerprint({**state, "a": torch.ones(4)}, head={"k": 1}, hashing=NAMED) == \
        fingerprint(state, head={"k": 1}, hashing=NAMED)   # NAMED hashes no shape
    assert fingerprint(state, hashing=BARE_FLOAT32) != fingerprint(
        dict(reversed(list(state.items()))), hashing=BARE_FLOAT32)   # in state order
    assert fingerprint(state, hashing=TYPED) == fingerprint(state)


def test_odd_dtypes_and_non_tensors():
    state = {"flag": torch.tensor([True, False]), "s": torch.tensor(3.0),
             "h": torch.ones(2, dtype=torch.bfloat16), "t": torch.ones(3, 2).t()}
    assert fingerprint(state) != fingerprint({**state, "flag": torch.tensor([True, True])})
    with pytest.raises(TypeError, match="state entry 'x' must be a tensor, got int"):
        fingerprint({"x": 3})
