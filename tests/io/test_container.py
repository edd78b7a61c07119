"""The one container: exact layout (hand-built oracles), versions, and every refusal."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib

import pytest

from vqkit.io import container as container_module
from vqkit.io.container import CRC32, SHA256, ContainerFormat, FixedHeader, JsonHeader

JSON_KIND = ContainerFormat(
    name="test file", magic=b"\x93TESTS\r\n", version_code="I", headers={1: JsonHeader()},
    digest=SHA256, fingerprint=("model", "digest"), model="quantizer",
    payload_length="payload_len",
)
OLD_FIXED = FixedHeader(("rows", "H"), ("fp", "4s"), ("n", "I"))
FIXED_KIND = ContainerFormat(
    name=".tst file", magic=b"TST!", version_code="B",
    headers={1: OLD_FIXED, 2: FixedHeader(("rows", "I"), ("fp", "4s"), ("n", "I"))},
    digest=CRC32, fingerprint=("fp",), payload_length="n",
)
HEADER = {"model": {"digest": "sha256:ab"}, "payload_len": 3, "shape": [1, 3]}


def test_json_layout_is_magic_version_length_json_payload_sha256():
    blob = JSON_KIND.pack(HEADER, b"xyz")
    raw = json.dumps(HEADER, sort_keys=True).encode()
    body = b"\x93TESTS\r\n" + struct.pack("<II", 1, len(raw)) + raw + b"xyz"
    assert blob == body + hashlib.sha256(body).digest()
    got = JSON_KIND.unpack(blob)
    assert (got.version, got.header, got.payload) == (1, HEADER, b"xyz")


def test_fixed_layout_is_packed_fields_and_crc32_and_the_newest_version_is_written():
    blob = FIXED_KIND.pack({"rows": 7, "fp": b"abcd", "n": 2}, b"\x01\x02")
    body = b"TST!" + struct.pack("<BI4sI", 2, 7, b"abcd", 2) + b"\x01\x02"
    assert blob == body + struct.pack("<I", zlib.crc32(body))
    assert FIXED_KIND.prefix_size == 5 and FIXED_KIND.version == 2
    assert FIXED_KIND.unpack(blob).header == {"rows": 7, "fp": b"abcd", "n": 2}


def test_an_older_version_is_read_with_its_own_layout():
    body = b"TST!" + struct.pack("<BH4sI", 1, 9, b"wxyz", 7) + b"payload"
    old = FIXED_KIND.unpack(body + struct.pack("<I", zlib.crc32(body)))
    assert (old.version, old.payload) == (1, b"payload")
    assert old.header == {"rows": 9, "fp": b"wxyz", "n": 7}


def _reseal(kind: ContainerFormat, body: bytes) -> bytes:
    return body + kind.digest.compute(body)


def test_every_refusal_is_a_value_error_naming_the_file(tmp_path):
    blob = JSON_KIND.pack(HEADER, b"xyz")
    cases = {
        "magic": (b"PK\x03\x04" + blob[4:], "is not a test file (magic"),
        "short": (blob[:5], "is not a test file or is truncated (5 bytes"),
        "empty": (b"", "or is truncated (0 bytes"),
        "cut": (blob[:-1], "corrupt or truncated (SHA-256 checksum mismatch)"),
        "flip": (blob[:20] + bytes([blob[20] ^ 1]) + blob[21:], "SHA-256 checksum mismatch"),
        "padded": (blob + b"\0", "SHA-256 checksum mismatch"),
        "version": (_reseal(JSON_KIND, blob[:8] + struct.pack("<I", 3) + blob[12:-32]),
                    "is test file format version 3; this vqkit reads version 1"),
        "json": (_reseal(JSON_KIND, blob[:12] + struct.pack("<I", 3) + b"{x:" + b"xyz"),
                 "has a corrupt header (JSONDecodeError"),
        "list": (_reseal(JSON_KIND, blob[:12] + struct.pack("<I", 2) + b"[]" + b"xyz"),
                 "corrupt header (not a JSON object)"),
        "length": (_reseal(JSON_KIND, blob[:12] + struct.pack("<I", 999) + b"{}"),
                   "header length 999 exceeds the file"),
        "payload": (_reseal(JSON_KIND, blob[:-32] + b"!"), "payload holds 4 bytes, header says 3"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / f"{name}.tst"
        path.write_bytes(data)
        with pytest.raises(ValueError) as err:
            JSON_KIND.read(path)
        assert str(path) in str(err.value) and message in str(err.value), (name, err.value)
        assert "\n" not in str(err.value)


def test_a_fixed_header_cut_inside_is_truncated():
    blob = FIXED_KIND.pack({"rows": 7, "fp": b"abcd", "n": 0}, b"")
    with pytest.raises(ValueError, match="or is truncated"):
        FIXED_KIND.unpack(blob[:8], "f.tst")
    with pytest.raises(ValueError, match="version 9"):
        FIXED_KIND.unpack(b"TST!\x09" + bytes(20), "f.tst")


def test_missing_file_directory_and_non_bytes(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such test file"):
        JSON_KIND.read(tmp_path / "absent.tst")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        JSON_KIND.read(tmp_path)
    with pytest.raises(TypeError, match="bytes, got str"):
        JSON_KIND.unpack("text")


def test_the_fingerprint_check_refuses_another_model():
    header = JSON_KIND.unpack(JSON_KIND.pack(HEADER, b"xyz")).header
    JSON_KIND.check_fingerprint(header, "sha256:ab", "a.tst")
    with pytest.raises(ValueError, match=r"a.tst was written by a different quantizer .*"
                                         r"sha256:ab.*sha256:cd"):
        JSON_KIND.check_fingerprint(header, "sha256:cd", "a.tst")
    with pytest.raises(ValueError, match="no model fingerprint model.digest"):
        JSON_KIND.check_fingerprint({"model": {}}, "sha256:ab", "a.tst")
    fixed = FIXED_KIND.unpack(FIXED_KIND.pack({"rows": 1, "fp": b"\x01\x02\x03\x04", "n": 0},
                                              b"")).header
    with pytest.raises(ValueError, match=r"different model \(fingerprint 01020304\)"):
        FIXED_KIND.check_fingerprint(fixed, b"\x01\x02\x03\x05", "b.tst")


def test_headers_that_do_not_fit_are_refused_before_writing(tmp_path):
    path = tmp_path / "a.tst"
    FIXED_KIND.write(path, {"rows": 1, "fp": b"abcd", "n": 0}, b"")
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"misses the fields \['n'\]"):
        FIXED_KIND.write(path, {"rows": 1, "fp": b"abcd"}, b"")
    with pytest.raises(ValueError, match="does not fit"):
        FIXED_KIND.write(path, {"rows": -1, "fp": b"abcd", "n": 0}, b"")
    assert path.read_bytes() == before


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "a.tst"
    JSON_KIND.write(path, HEADER, b"xyz")
    before = path.read_bytes()

    def full_disk(f):
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        container_module.atomic_write(path, full_disk)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.tst"]   # no temporary left
