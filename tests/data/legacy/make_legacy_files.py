"""Write the files of ``tests/test_legacy_files.py``: saved by vqkit before the registry.

They were made once with vqkit at commit 2f79c45 (before quantizer and strategy names moved to
``vqkit.registry``) by running, from a checkout of that commit::

    PYTHONPATH=src python tests/data/legacy/make_legacy_files.py tests/data/legacy

and are kept as they are: the test checks that today's vqkit reads them and decodes the same.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(out: Path) -> None:
    import numpy as np
    import torch

    import vqkit
    from vqkit import (
        EMA,
        AdditiveVQ,
        BeamSearch,
        DiVeQ,
        ExactProjection,
        FractionDepth,
        PerStage,
        ProductVQ,
        ResidualVQ,
        SpaceFillingVQ,
        StraightThrough,
        VectorQuantizer,
    )
    from vqkit.io.codes_file import write_codes

    torch.manual_seed(0)
    quantizers = {
        "vq": VectorQuantizer(4, 8, estimator=DiVeQ(sigma=0.01), learning=EMA(decay=0.9)),
        "rvq": ResidualVQ(4, 8, 3, estimator=PerStage(StraightThrough(beta=0.5)),
                          encoder=BeamSearch(2), dropout=FractionDepth(0.5, seed=3)),
        "pvq": ProductVQ(4, 8, 2),
        "avq": AdditiveVQ(4, 8, 2, encoder=BeamSearch(3)),
        "sfvq": SpaceFillingVQ(4, 8, projection=ExactProjection(), initial_size=4),
    }
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 4, generator=g)
    expected = {"x": x}
    for name, q in quantizers.items():
        q.train()
        for _ in range(3):
            q(torch.randn(64, 4, generator=g))
        q.eval()
        vqkit.save(q, out / f"{name}.pt")
        idx = q.encode(x)
        expected[f"{name}_indices"] = idx
        expected[f"{name}_quantized"] = q(x).quantized.detach()
        write_codes(out / f"{name}.vqc", idx, q)
    torch.save(expected, out / "expected.pt")

    from vqkit.apps.image_codec.codec import compress, reconstruct
    from vqkit.apps.image_codec.model import load_default_model

    model = load_default_model()
    image = (np.random.default_rng(0).random((20, 28, 3)) * 255).astype(np.uint8)
    (out / "default_model.vqi").write_bytes(compress(model, image))
    np.save(out / "default_model_image.npy", image)
    np.save(out / "default_model_reconstruction.npy", reconstruct(model, image))

    from vqkit.apps.speech.codec import DEFAULT_MODEL, WorldCodec
    from vqkit.io.fingerprint import quantizer_digest

    codec = WorldCodec.load(DEFAULT_MODEL)
    (out / "speech_model.txt").write_text(
        f"{codec.fingerprint().hex()} {quantizer_digest(codec.quantizer)}\n"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
