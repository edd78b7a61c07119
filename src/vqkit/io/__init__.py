"""Files: atomic writes, quantizer save/load, the one ``torch.save`` reader, the one container.

- :mod:`.atomic`: :func:`atomic_write` (temporary file, then rename);
- :mod:`.torch_file`: :func:`atomic_torch_save` and :func:`read_torch_file`, the one reader of
  checkpoints, models and caches (``weights_only=True``, clear errors);
- :mod:`.serialization`: :func:`save` / :func:`load` of quantizers (``vqkit.save``/``vqkit.load``);
- :mod:`.fingerprint`: :func:`fingerprint`, the one model fingerprint, and
  :func:`quantizer_digest`;
- :mod:`.container`: :class:`ContainerFormat`, the framing, digest and fingerprint check of every
  binary file kind (``.vqc`` here; ``.vqi`` and ``.vqs`` declared by their apps);
- :mod:`.codes_file`: ``.vqc`` codes files of ``vqkit encode``/``decode``.

The whole package imports torch, numpy and the standard library only.
"""

from .atomic import atomic_write
from .codes_file import CODES, CodesFile, read_codes, read_codes_header, write_codes
from .container import CRC32, SHA256, Container, ContainerFormat, FixedHeader, JsonHeader
from .fingerprint import fingerprint, quantizer_digest
from .serialization import load, save
from .torch_file import atomic_torch_save, read_torch_file

__all__ = [
    "CODES",
    "CRC32",
    "Container",
    "ContainerFormat",
    "CodesFile",
    "FixedHeader",
    "JsonHeader",
    "SHA256",
    "atomic_torch_save",
    "atomic_write",
    "fingerprint",
    "load",
    "quantizer_digest",
    "read_codes",
    "read_codes_header",
    "read_torch_file",
    "save",
    "write_codes",
]
