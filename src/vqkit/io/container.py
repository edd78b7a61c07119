"""The one container of vqkit's binary files; ``.vqc``, ``.vqi`` and ``.vqs`` declare its fields.

Layout (little-endian; each kind of file is a :class:`ContainerFormat` declaration)::

    magic     the kind's magic bytes
    version   the format version (u8 or u32, as the kind declares)
    header    the version's header: JSON (u32 length + UTF-8 JSON, keys sorted) or fixed-width
              named fields; it holds the model fingerprint (a declared field)
    payload   the kind's bytes (packed indices), to the digest
    digest    a checksum of every byte before it: SHA-256 or CRC-32, as the kind declares

Reading checks, in order: the magic, the smallest size, the version, the digest (a flipped
bit or a truncated file fails here), the header, the payload length against the header's
declared length field; :meth:`ContainerFormat.check_fingerprint` then refuses another model.
Every failure is a one-line ``ValueError`` naming the file and what is wrong. Files are written
atomically. The byte layout of each kind is its own (compact kinds use fixed fields and
CRC-32): files written before this module keep their exact bytes. ``docs/formats.md`` lists
the fields of each kind.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .atomic import atomic_write
from .paths import input_file

_U32 = struct.Struct("<I")


def _sha256(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


def _crc32(body: bytes) -> bytes:
    return _U32.pack(zlib.crc32(body))


@dataclass(frozen=True)
class Digest:
    """The checksum at the end of a file, over every byte before it.

    Attributes:
        name: for errors (``"SHA-256"``).
        size: its length in bytes.
        compute: bytes -> the ``size`` digest bytes.
    """

    name: str
    size: int
    compute: Callable[[bytes], bytes]


SHA256 = Digest("SHA-256", 32, _sha256)
CRC32 = Digest("CRC-32", 4, _crc32)


class JsonHeader:
    """A u32 length, then that many bytes of UTF-8 JSON (an object, keys sorted)."""

    min_size = _U32.size

    def encode(self, header: Mapping[str, Any]) -> bytes:
        """The header's bytes.

        Raises:
            TypeError: a value JSON cannot hold.
        """
        raw = json.dumps(header, sort_keys=True).encode()
        return _U32.pack(len(raw)) + raw

    def decode(self, body: bytes, offset: int, source: str) -> tuple[dict[str, Any], int]:
        """``(header, end offset)`` of the header at ``body[offset:]``.

        Raises:
            ValueError: the length exceeds the file, or the bytes are not a JSON object.
        """
        (length,) = _U32.unpack_from(body, offset)
        start = offset + _U32.size
        if start + length > len(body):
            raise ValueError(f"{source} is corrupt (header length {length} exceeds the file)")
        try:
            header = json.loads(body[start : start + length].decode())
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError(
                f"{source} has a corrupt header ({type(err).__name__}: {err})"
            ) from err
        if not isinstance(header, dict):
            raise ValueError(f"{source} has a corrupt header (not a JSON object)")
        return header, start + length


class FixedHeader:
    """Named fixed-width fields, packed little-endian (``struct`` codes: ``"I"``, ``"8s"``).

    Args:
        fields: ``(name, struct code)`` pairs in file order.
    """

    def __init__(self, *fields: tuple[str, str]) -> None:
        self.names = tuple(name for name, _ in fields)
        self._struct = struct.Struct("<" + "".join(code for _, code in fields))
        self.min_size = self._struct.size

    def encode(self, header: Mapping[str, Any]) -> bytes:
        """The header's bytes.

        Raises:
            ValueError: a field is missing or does not fit its width.
        """
        missing = [n for n in self.names if n not in header]
        if missing:
            raise ValueError(f"header misses the fields {missing}")
        try:
            return self._struct.pack(*(header[n] for n in self.names))
        except struct.error as err:
            raise ValueError(f"header does not fit its fields: {err}") from err

    def decode(self, body: bytes, offset: int, source: str) -> tuple[dict[str, Any], int]:
        """``(header, end offset)`` of the fields at ``body[offset:]``.

        Raises:
            ValueError: the file ends inside the header.
        """
        if offset + self.min_size > len(body):
            raise ValueError(f"{source} is truncated inside its header")
        values = self._struct.unpack_from(body, offset)
        return dict(zip(self.names, values, strict=True)), offset + self.min_size


@dataclass(frozen=True)
class Container:
    """What :meth:`ContainerFormat.unpack` found: the version, the header and the payload."""

    version: int
    header: dict[str, Any]
    payload: bytes


def _show(value: Any) -> str:
    text = value.hex() if isinstance(value, bytes) else str(value)
    return text if len(text) <= 23 else text[:23] + "..."


@dataclass(frozen=True, eq=False)
class ContainerFormat:
    """A kind of vqkit file: its magic, versions, header fields, digest and fingerprint field.

    Attributes:
        name: the kind, for errors (``".vqi file"``).
        magic: the first bytes of every file of the kind.
        version_code: ``struct`` code of the version field (``"B"``: u8, ``"I"``: u32).
        headers: the header layout (:class:`JsonHeader` or :class:`FixedHeader`) of every version
            this vqkit reads; the newest is written.
        digest: the checksum at the end (:data:`SHA256` or :data:`CRC32`).
        fingerprint: the header field (a key path into nested JSON) holding the fingerprint of
            the model that wrote the file.
        model: what the fingerprint names, for errors (``"quantizer"``).
        payload_length: the header field recording the payload's length, or None.
    """

    name: str
    magic: bytes
    version_code: str
    headers: Mapping[int, JsonHeader | FixedHeader]
    digest: Digest
    fingerprint: tuple[str, ...]
    model: str = "model"
    payload_length: str | None = None

    @property
    def version(self) -> int:
        """The version written."""
        return max(self.headers)

    @property
    def prefix_size(self) -> int:
        """Bytes of the magic and the version field."""
        return len(self.magic) + struct.calcsize("<" + self.version_code)

    def pack(self, header: Mapping[str, Any], payload: bytes, version: int | None = None
             ) -> bytes:
        """The file's bytes: magic, version, ``header``, ``payload``, digest.

        Args:
            header: the header fields.
            payload: the payload bytes.
            version: the version to write (default the newest); a kind writes the oldest
                version that holds what it writes, so older readers keep reading it.

        Raises:
            ValueError: ``header`` lacks a field of the layout, a value does not fit it, or
                ``version`` is not one of the kind's.
        """
        version = self.version if version is None else version
        if version not in self.headers:
            raise ValueError(f"{self.name} has no version {version}")
        prefix = self.magic + struct.pack("<" + self.version_code, version)
        body = prefix + self.headers[version].encode(header) + bytes(payload)
        return body + self.digest.compute(body)

    def write(self, path: str | os.PathLike[str], header: Mapping[str, Any],
              payload: bytes, version: int | None = None) -> bytes:
        """Write :meth:`pack`'s bytes to ``path`` atomically (a failed write keeps the old file).

        Raises:
            ValueError: as :meth:`pack`, or ``path`` is not a regular file.
            OSError: the file cannot be written.
        """
        blob = self.pack(header, payload, version)
        atomic_write(path, lambda f: f.write(blob))
        return blob

    def unpack(self, data: bytes, source: str = "the data") -> Container:
        """Check ``data`` (magic, size, version, digest, header, payload length) and split it.

        Args:
            data: a whole file's bytes.
            source: the file's name, for errors.

        Raises:
            TypeError: ``data`` is not bytes.
            ValueError: not a file of this kind, truncated, an unknown version, a digest
                mismatch, a corrupt header or a payload of another length than the header's.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        data = bytes(data)
        n = len(self.magic)
        if data[:n] != self.magic[: len(data)]:
            raise ValueError(f"{source} is not a {self.name} (magic {data[:n]!r}, "
                             f"expected {self.magic!r})")
        self._check_size(data, self.prefix_size, source)
        (version,) = struct.unpack_from("<" + self.version_code, data, n)
        if version not in self.headers:
            readable = ", ".join(map(str, sorted(self.headers)))
            raise ValueError(f"{source} is {self.name} format version {version}; this vqkit "
                             f"reads version {readable}")
        layout = self.headers[version]
        self._check_size(data, self.prefix_size + layout.min_size, source)
        body, digest = data[: -self.digest.size], data[-self.digest.size :]
        if self.digest.compute(body) != digest:
            raise ValueError(f"{source} is corrupt or truncated ({self.digest.name} checksum "
                             "mismatch)")
        header, end = layout.decode(body, self.prefix_size, source)
        payload = body[end:]
        if self.payload_length is not None:
            expected = header.get(self.payload_length)
            if not isinstance(expected, int) or expected != len(payload):
                raise ValueError(f"{source} is corrupt: payload holds {len(payload)} bytes, "
                                 f"header says {expected!r}")
        return Container(version, header, payload)

    def _check_size(self, data: bytes, needed: int, source: str) -> None:
        if len(data) < needed + self.digest.size:
            raise ValueError(f"{source} is not a {self.name} or is truncated ({len(data)} "
                             f"bytes; one needs at least {needed + self.digest.size})")

    def read(self, path: str | os.PathLike[str]) -> Container:
        """:meth:`unpack` the file at ``path``.

        Raises:
            FileNotFoundError: no such file.
            IsADirectoryError: ``path`` is a directory.
            ValueError: as :meth:`unpack`, naming ``path``; or ``path`` is a FIFO, a device or
                a symbolic-link loop.
        """
        path = input_file(path, self.name)
        return self.unpack(path.read_bytes(), str(path))

    def recorded_fingerprint(self, header: Mapping[str, Any], source: str = "the data") -> Any:
        """The fingerprint field of ``header``.

        Raises:
            ValueError: the header has no such field.
        """
        value: Any = header
        for key in self.fingerprint:
            if not isinstance(value, Mapping) or key not in value:
                raise ValueError(f"{source} has a corrupt header (no model fingerprint "
                                 f"{'.'.join(self.fingerprint)})")
            value = value[key]
        return value

    def check_fingerprint(self, header: Mapping[str, Any], expected: Any,
                          source: str = "the data") -> None:
        """Refuse a file whose recorded fingerprint is not ``expected`` (the given model's).

        Raises:
            ValueError: the file was written by another model (or has no fingerprint).
        """
        found = self.recorded_fingerprint(header, source)
        if found != expected:
            raise ValueError(
                f"{source} was written by a different {self.model} (fingerprint {_show(found)}) "
                f"than the one given ({_show(expected)}); pass the {self.model} it was written "
                "with"
            )
