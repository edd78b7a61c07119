"""vqkit image: the learned image codec (compress, decompress, train).

examples:
  vqkit image compress photo.png photo.vqi            # shipped model, highest rate
  vqkit image compress photo.png photo.vqi --bpp 0.5  # the highest rate within 0.5 bits/pixel
  vqkit image compress photo.png photo.vqi --stages 4 # keep 4 residual stages
  vqkit image decompress photo.vqi photo_decoded.png
  vqkit image train --out my_model.pt   # a whole-image model (as shipped)
  vqkit image train-tiles --bits 9 --out tiles.pt     # the tile model of the estimator sweeps

The shipped model codes the whole image at once (no tiles): a residual VQ whose first m
stages are kept (the rate) and range-coded under a prior learned with the model, so the file
size follows the content. A .vqi file records which model wrote it (a fingerprint);
decompressing with another model is an error. --model also takes a tile model
(`image train-tiles`), whose files are fixed-rate.
"""

from __future__ import annotations

import argparse
import sys

from ...training.threads import add_threads, set_threads
from ._common import nonnegative_int, positive_int

NAME = "image"
HELP = "learned image codec: compress / decompress .vqi files, train a model"
COMPRESS_DESCRIPTION = """compress an image file (PNG, JPEG, TIFF, ...) to a .vqi file.

input images: the EXIF orientation is applied first. A grey image (1-bit, 8-bit or 16-bit) is
coded as grey and decompresses to a grey image. 16-bit samples are scaled to 8 bits
(round(v / 257)); 32-bit integer and float images are refused. Palette, CMYK and YCbCr images
are coded as RGB; a model trained on grey images (--data fashion-mnist) refuses a colour
image. An image with transparent pixels (an alpha channel or a transparent palette
entry) is refused unless --drop-alpha, as the codec keeps no alpha; a fully opaque alpha
channel is dropped, since it holds nothing.
"""


def _model(args: argparse.Namespace):
    from ...apps.image_codec.model import load_checkpoint
    from ...apps.image_codec.network import load_default_image_model, load_image_model
    from ...io.torch_file import read_torch_file

    if args.model is None:
        return load_default_image_model()
    record = read_torch_file(args.model, "image-codec model")
    kind = record.get("format") if isinstance(record, dict) else None
    return load_checkpoint(args.model) if kind == "vqkit-image-codec" else \
        load_image_model(args.model)


def _compress(args: argparse.Namespace) -> int:
    from ...apps.image_codec import whole_file
    from ...apps.image_codec.codec import compress
    from ...apps.image_codec.image_io import read_image
    from ...apps.image_codec.network import WholeImageModel
    from ...io.atomic import atomic_write
    from ...io.paths import output_file
    from ...progress import bar_callback

    set_threads(args.threads)
    output_file(args.output, inputs=(args.input, args.model))
    model = _model(args)
    source = read_image(args.input)
    if source.translucent and not args.drop_alpha:
        raise ValueError(f"{args.input} has transparent pixels (mode {source.mode}) and the "
                         "codec keeps no alpha; pass --drop-alpha to code its colours alone")
    image = source.pixels
    whole = isinstance(model, WholeImageModel)
    if not whole and (args.bpp is not None or args.stages is not None):
        raise ValueError(f"{args.model} is a fixed-rate tile model: --bpp and --stages need a "
                         "whole-image model")
    if whole:
        data = whole_file.compress(model, image, stages=args.stages, bpp=args.bpp)
        rate = f"{whole_file.read_image_header(data).stages} of {model.config.stages} stages"
    else:
        data = compress(model, image, progress=bar_callback("compress", enabled=not args.quiet,
                                                            unit="tile"))
        rate = f"fixed rate, {model.config.bits_per_pixel:.4f} bits per padded pixel"
    atomic_write(args.output, lambda f: f.write(data))
    h, w = image.shape[:2]
    print(f"{args.output}: {w}x{h} px{' grey' if source.grey else ''}, {len(data)} bytes, "
          f"{8 * len(data) / (h * w):.4f} bits per pixel ({rate})")
    return 0


def _decompress(args: argparse.Namespace) -> int:
    from ...apps.image_codec import whole_file
    from ...apps.image_codec.codec import decompress
    from ...apps.image_codec.image_io import write_image
    from ...apps.image_codec.network import WholeImageModel
    from ...io.paths import input_file, output_file
    from ...progress import bar_callback

    set_threads(args.threads)
    output_file(args.output, inputs=(args.input, args.model))
    path = input_file(args.input, ".vqi file")
    data = path.read_bytes()
    model = _model(args)
    if isinstance(model, WholeImageModel):
        image = whole_file.decompress(model, data, str(path))
    else:
        image = decompress(model, data, str(path),
                           progress=bar_callback("decompress", enabled=not args.quiet,
                                                 unit="tile"))
    write_image(args.output, image)
    h, w = image.shape[:2]
    print(f"{args.output}: {w}x{h} px from {len(data)} bytes, "
          f"{8 * len(data) / (h * w):.4f} bits per pixel")
    return 0


def _train(args: argparse.Namespace) -> int:
    from ...apps.image_codec.config import ImageModelConfig, TrainConfig
    from ...apps.image_codec.data import AugmentedCrops
    from ...apps.image_codec.network import save_image_model
    from ...apps.image_codec.train import train
    from ...data.images import natural_photos, split_photos
    from ...io.paths import output_file
    from ...training.provenance import Run

    set_threads(args.threads)
    output_file(args.out)
    # recorded in the model: the command, the commit and whether the tree was clean
    run = Run(command=getattr(args, "command_line", None), seeds=[args.seed], allow_dirty=True)
    cfg = ImageModelConfig(hidden=args.hidden, latent_dim=args.latent_dim,
                           codebook_size=args.codebook_size, stages=args.stages)
    tcfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                       replace_every=args.replace_every, seed=args.seed, lr_schedule="cosine",
                       max_grad_norm=args.max_grad_norm)
    train_photos, _ = split_photos(natural_photos())
    result = train(cfg, tcfg, AugmentedCrops(train_photos, args.crop), progress=not args.quiet)
    save_image_model(result.model, args.out, {**tcfg.asdict(), "crop": args.crop,
                                              "seconds": round(result.seconds, 1),
                                              "threads": args.threads,
                                              "provenance": run.summary()})
    print(f"{args.out}: trained in {result.seconds:.0f} s, last training MSE "
          f"{result.losses[-1]:.5f}; use it with `vqkit image compress IMAGE OUT.vqi "
          f"--model {args.out}`")
    return 0


def _train_tiles(args: argparse.Namespace) -> int:
    from ...apps.image_codec.config import CodecConfig, QuantizerSpec, TrainConfig
    from ...apps.image_codec.data import load_dataset
    from ...apps.image_codec.evaluate import evaluate
    from ...apps.image_codec.model import save_checkpoint
    from ...apps.image_codec.train import train
    from ...io.paths import output_file

    set_threads(args.threads)
    output_file(args.out)
    tile = 28 if args.data == "fashion-mnist" else 32
    spec = QuantizerSpec(kind=args.quantizer, bits=args.bits, num_codebooks=args.num_codebooks,
                         estimator=args.estimator, learning=args.learning,
                         beam_width=args.beam_width)
    cfg = CodecConfig(tile=tile, downsample=args.downsample,
                      channels=1 if args.data == "fashion-mnist" else 3, hidden=args.hidden,
                      latent_dim=args.latent_dim, quantizer=spec)
    tcfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                       replace_every=args.replace_every, seed=args.seed)
    source, test = load_dataset(args.data, tile)
    result = train(cfg, tcfg, source, progress=True)
    save_checkpoint(result.model, args.out, tcfg.asdict())
    m = evaluate(result.model, test)
    print(f"{args.out}: {args.data} test PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f} at "
          f"{m['bits_per_pixel']:.4f} bits per pixel ({result.seconds:.0f} s training)")
    return 0


def _training_options(p: argparse.ArgumentParser, *, hidden: int, steps: int, batch: int,
                      unit: str, lr: float, lr_help: str, replace_every: int) -> None:
    """The options both training commands take, with each command's defaults."""
    p.add_argument("--out", required=True, help="model file to write")
    p.add_argument("--hidden", type=positive_int, default=hidden,
                   help="width of the convolutional layers (default: %(default)s)")
    p.add_argument("--latent-dim", type=positive_int, default=64,
                   help="dimension of each latent vector (default: %(default)s)")
    p.add_argument("--steps", type=positive_int, default=steps,
                   help="training steps (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=batch,
                   help=f"{unit} per step (default: %(default)s)")
    p.add_argument("--lr", type=float, default=lr, help=f"{lr_help} (default: %(default)s)")
    p.add_argument("--replace-every", type=nonnegative_int, default=replace_every,
                   help="dead-codeword replacement period in steps, 0 = never "
                   "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    add_threads(p)


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(NAME, help=HELP, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="image_command", metavar="ACTION")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", default=None, help="codec checkpoint (default: the shipped one)")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        add_threads(p)

    comp = sub.add_parser("compress", help="compress an image (PNG, JPEG, ...) to .vqi",
                          description=COMPRESS_DESCRIPTION,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    comp.add_argument("input", help="image file Pillow can read")
    comp.add_argument("output", help="the .vqi file to write")
    rate = comp.add_mutually_exclusive_group()
    rate.add_argument("--bpp", type=float, default=None,
                      help="target rate: the most stages whose file is at most this many bits "
                      "per pixel (default: every stage, the highest quality)")
    rate.add_argument("--stages", type=positive_int, default=None,
                      help="residual stages to keep, 1 .. the model's (the quality; default: "
                      "every stage)")
    comp.add_argument("--drop-alpha", action="store_true",
                      help="code an image with transparent pixels by its colours alone, "
                      "dropping its alpha channel (without this it is refused; a fully opaque "
                      "alpha channel is always dropped, it holds nothing)")
    common(comp)
    comp.set_defaults(func=_compress)

    dec = sub.add_parser("decompress", help="decompress a .vqi file to an image")
    dec.add_argument("input", help="the .vqi file")
    dec.add_argument("output", help="image to write; format from the suffix (PNG if unknown)")
    common(dec)
    dec.set_defaults(func=_decompress)

    wt = sub.add_parser("train", help="train a whole-image codec model (as shipped)",
                        description="train the whole-image codec on random crops (3 scales, "
                        "flips) of the training photos (scikit-image, opencv-doc, "
                        "mate-backgrounds; the held-out photos are never seen)")
    _training_options(wt, hidden=64, steps=8000, batch=8, unit="crops", lr=5e-4,
                      lr_help="Adam learning rate, cosine-decayed to 0", replace_every=200)
    wt.add_argument("--codebook-size", type=positive_int, default=256,
                    help="codewords per residual stage (default: %(default)s)")
    wt.add_argument("--stages", type=positive_int, default=16,
                    help="residual stages: the number of rates (default: %(default)s)")
    wt.add_argument("--crop", type=positive_int, default=128,
                    help="side of the training crops, a multiple of 8 (default: %(default)s)")
    wt.add_argument("--max-grad-norm", type=float, default=0.2,
                    help="clip the global gradient norm to this before each step "
                    "(default: %(default)s)")
    wt.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    wt.set_defaults(func=_train)

    tr = sub.add_parser("train-tiles",
                        help="train a tile model (fixed rate, 32x32 tiles) and save it")
    _training_options(tr, hidden=16, steps=800, batch=16, unit="tiles", lr=2e-3,
                      lr_help="Adam learning rate", replace_every=100)
    tr.add_argument("--data", choices=("natural", "fashion-mnist"), default="natural",
                    help="training and test images: natural photo tiles (32x32 RGB) or "
                    "Fashion-MNIST (28x28 grey) (default: %(default)s)")
    tr.add_argument("--quantizer", choices=("vq", "rvq", "pvq", "avq"), default="vq",
                    help="plain, residual, product or additive VQ (default: %(default)s)")
    tr.add_argument("--num-codebooks", type=positive_int, default=1,
                    help="codebooks of rvq / pvq / avq, sharing --bits (default: %(default)s)")
    tr.add_argument("--beam-width", type=positive_int, default=16,
                    help="beam of avq's encoder search (default: %(default)s)")
    tr.add_argument("--estimator", choices=("nsvq", "ste", "rotation", "diveq", "diveq-detach"),
                    default="nsvq",
                    help="gradient estimator through the quantizer (default: %(default)s)")
    tr.add_argument("--learning", choices=("gradient", "ema"), default="gradient",
                    help="codebook learning: by gradient or EMA (default: %(default)s)")
    tr.add_argument("--bits", type=positive_int, default=9,
                    help="bits per latent vector (default: %(default)s)")
    tr.add_argument("--downsample", type=int, choices=(2, 4, 8), default=4,
                    help="encoder stride: tiles shrink by this factor per side "
                    "(default: %(default)s)")
    tr.set_defaults(func=_train_tiles)
    parser.set_defaults(func=lambda args: (parser.print_help(sys.stdout), 2)[1])
