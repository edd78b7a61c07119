"""A learned image codec: whole images through a convolutional residual-VQ autoencoder,
entropy-coded into ``.vqi`` files; and the tile model of the estimator sweeps.

- :mod:`.config`: frozen dataclasses (architectures, quantizer, training);
- :mod:`.network`: the whole-image model, its files and the shipped model;
- :mod:`.prior`: the learned index prior and its range coder;
- :mod:`.whole_file`: compress / decompress whole-image ``.vqi`` files at any rate;
- :mod:`.reference_codecs`, :mod:`.seams`: JPEG / WebP / AVIF on whole images, and the
  block-grid measure;
- :mod:`.layers`: building blocks of the networks;
- :mod:`.model`: the tile model (32x32 tiles, fixed rate) and its checkpoints;
- :mod:`.data`: natural-photo tiles (split by photo) and Fashion-MNIST;
- :mod:`.train`, :mod:`.evaluate`: the training loop, PSNR and SSIM;
- :mod:`.baselines`: JPEG and WebP on the same test tiles;
- :mod:`.codec`: compress / decompress the tile model's fixed-rate ``.vqi`` files.
- :mod:`.image_io`: image files in (every Pillow mode mapped, EXIF orientation applied) and out.

The command line is ``vqkit image compress|decompress|train``; see docs/image_codec.md.
"""

from .config import CodecConfig, ImageModelConfig, QuantizerSpec, TrainConfig
from .model import ImageCodecModel, load_checkpoint, load_default_model, save_checkpoint
from .network import WholeImageModel, load_default_image_model, load_image_model, save_image_model

__all__ = [
    "CodecConfig",
    "ImageCodecModel",
    "ImageModelConfig",
    "WholeImageModel",
    "load_default_image_model",
    "load_image_model",
    "save_image_model",
    "QuantizerSpec",
    "TrainConfig",
    "load_checkpoint",
    "load_default_model",
    "save_checkpoint",
]
