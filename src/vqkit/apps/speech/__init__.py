"""Speech spectral-envelope codec ([vali2021msvq]): MDCT + trainable 16-band log envelope,
quantized by multi-stage, product, additive, soft or scalar quantizers; and a WORLD vocoder
front end whose coded envelope the same quantizers code, written to ``.vqs`` files.

Optional dependencies (the ``audio`` extra): soundfile, scipy, pyworld, pesq, pystoi.
"""
