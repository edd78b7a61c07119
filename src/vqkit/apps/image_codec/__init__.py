"""A learned image codec: a compact convolutional VQ-VAE and the ``.vqi`` file format.

- :mod:`.config`: frozen dataclasses (architecture, quantizer, training);
- :mod:`.model`: the network, checkpoints and the shipped default model;
- :mod:`.data`: natural-photo tiles (split by photo) and Fashion-MNIST;
- :mod:`.train`, :mod:`.evaluate`: the training loop, PSNR and SSIM;
- :mod:`.baselines`: JPEG and WebP on the same test tiles;
- :mod:`.codec`: compress / decompress ``.vqi`` files of any size.
- :mod:`.image_io`: image files in (every Pillow mode mapped, EXIF orientation applied) and out.

The command line is ``vqkit image compress|decompress|train``; see docs/image_codec.md.
"""

from .config import CodecConfig, QuantizerSpec, TrainConfig
from .model import ImageCodecModel, load_checkpoint, load_default_model, save_checkpoint

__all__ = [
    "CodecConfig",
    "ImageCodecModel",
    "QuantizerSpec",
    "TrainConfig",
    "load_checkpoint",
    "load_default_model",
    "save_checkpoint",
]
