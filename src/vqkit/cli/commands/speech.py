"""vqkit speech encode in.wav out.vqs, and vqkit speech decode out.vqs out.wav.

The WORLD vocoder codec of vqkit.apps.speech.codec: 20 ms frames, f0 and band
aperiodicity (19 bits) and a multi-stage VQ of the spectral envelope (8 bits per stage).
Input of any sample rate is resampled to 8 kHz and stereo is averaged to mono.
"""

from __future__ import annotations

import argparse
import sys

from ...io.paths import output_file
from ...training.threads import add_threads, set_threads
from ._common import positive_int

NAME = "speech"
HELP = "speech envelope codec: encode wav -> .vqs, decode .vqs -> wav"


def _codec(args: argparse.Namespace):
    from ...apps.speech.codec import DEFAULT_MODEL, WorldCodec

    return WorldCodec.load(args.model or DEFAULT_MODEL)


def _encode(args: argparse.Namespace) -> int:
    from ...apps.speech.codec import encode_file

    set_threads(args.threads)
    output_file(args.output, inputs=(args.input, args.model))
    codec = _codec(args)
    info = encode_file(args.input, args.output, codec, stages=args.stages)
    print(f"{args.output}: {info['bytes']} bytes, {info['seconds']:.2f} s, "
          f"{info['kbps']:.2f} kbit/s", file=sys.stdout)
    return 0


def _decode(args: argparse.Namespace) -> int:
    from ...apps.speech.codec import decode_file

    set_threads(args.threads)
    output_file(args.output, inputs=(args.input, args.model))
    info = decode_file(args.input, args.output, _codec(args))
    print(f"{args.output}: {info['seconds']:.2f} s at {info['sample_rate']} Hz", file=sys.stdout)
    return 0


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(NAME, help=HELP, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="speech_command", metavar="ACTION")
    enc = sub.add_parser("encode", help="encode an audio file to .vqs")
    enc.add_argument("input", help="audio file (wav, ogg, flac; any rate, mono or stereo)")
    enc.add_argument("output", help="the .vqs file to write")
    enc.add_argument("--stages", type=positive_int, default=None,
                     help="envelope VQ stages to send, 8 bits each (default: all)")
    enc.add_argument("--model", default=None, help="codec model (default: the shipped one)")
    add_threads(enc)
    enc.set_defaults(func=_encode)
    dec = sub.add_parser("decode", help="decode a .vqs file to wav")
    dec.add_argument("input", help="the .vqs file")
    dec.add_argument("output", help="the wav file to write (16-bit mono, 8 kHz)")
    dec.add_argument("--model", default=None, help="codec model (default: the shipped one)")
    add_threads(dec)
    dec.set_defaults(func=_decode)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
