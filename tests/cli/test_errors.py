"""User errors end with a non-zero exit and one line on stderr, never a traceback."""

from __future__ import annotations

import numpy as np
import pytest

from vqkit.cli.main import build_parser


def _one_line_error(result, *needles: str) -> None:
    code, _, err = result
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("vqkit: error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def trained(vqkit, vectors, tmp_path):
    """A checkpoint, a codes file of ``vectors`` and a second checkpoint (another seed)."""
    ckpt, other, codes = tmp_path / "a.ckpt", tmp_path / "b.ckpt", tmp_path / "x.vqc"
    for path, seed in ((ckpt, "0"), (other, "1")):
        code, _, err = vqkit("fit", vectors, "--bits", "3", "--steps", "3", "--batch", "16",
                             "--seed", seed, "-q", "-o", path)
        assert code == 0, err
    assert vqkit("encode", ckpt, vectors, codes)[0] == 0
    return ckpt, other, codes


def test_corrupt_codes_file(vqkit, trained, tmp_path):
    ckpt, _, codes = trained
    blob = bytearray(codes.read_bytes())
    blob[len(blob) // 2] ^= 0x10
    bad = tmp_path / "bad.vqc"
    bad.write_bytes(bytes(blob))
    _one_line_error(vqkit("decode", ckpt, bad, tmp_path / "y.npy"), "corrupt")
    _one_line_error(vqkit("info", bad), "checksum")
    assert not (tmp_path / "y.npy").exists()


def test_truncated_codes_file(vqkit, trained, tmp_path):
    ckpt, _, codes = trained
    blob = codes.read_bytes()
    for cut in (len(blob) - 1, len(blob) // 2, 10, 0):
        bad = tmp_path / f"cut{cut}.vqc"
        bad.write_bytes(blob[:cut])
        _one_line_error(vqkit("decode", ckpt, bad, tmp_path / "y.npy"), str(bad))


def test_unknown_version_and_truncation_through_decode_and_info(vqkit, trained, tmp_path):
    import hashlib
    import struct

    ckpt, _, codes = trained
    body = bytearray(codes.read_bytes()[:-32])
    struct.pack_into("<I", body, 8, 3)  # version 2 exists (curve-steps packing); 3 does not
    newer = tmp_path / "v3.vqc"
    newer.write_bytes(bytes(body) + hashlib.sha256(bytes(body)).digest())
    cut = tmp_path / "cut.vqc"
    cut.write_bytes(codes.read_bytes()[:-7])
    for command in (("decode", ckpt), ("info",)):
        extra = (tmp_path / "y.npy",) if command[0] == "decode" else ()
        _one_line_error(vqkit(*command, newer, *extra), str(newer), "format version 3")
        _one_line_error(vqkit(*command, cut, *extra), str(cut), "corrupt or truncated")
    assert not (tmp_path / "y.npy").exists()


def test_info_on_an_empty_file_says_it_is_empty(vqkit, tmp_path):
    for name in ("empty.vqi", "empty.vqc", "empty.ckpt"):
        (tmp_path / name).write_bytes(b"")
        _one_line_error(vqkit("info", tmp_path / name), "is empty")


def test_foreign_file_as_codes(vqkit, trained, vectors, tmp_path):
    ckpt, _, _ = trained
    _one_line_error(vqkit("decode", ckpt, vectors, tmp_path / "y.npy"), "not a vqkit codes file")


def test_codes_with_the_wrong_checkpoint(vqkit, trained, tmp_path):
    _, other, codes = trained
    _one_line_error(vqkit("decode", other, codes, tmp_path / "y.npy"), "different quantizer")


def test_wrong_dimensions(vqkit, trained, tmp_path):
    ckpt, _, _ = trained
    np.save(tmp_path / "w.npy", np.zeros((10, 5), dtype=np.float32))
    _one_line_error(vqkit("encode", ckpt, tmp_path / "w.npy", tmp_path / "w.vqc"),
                    "dimension 5", "needs 6")
    _one_line_error(vqkit("eval", ckpt, tmp_path / "w.npy"), "dimension 5")
    _one_line_error(vqkit("fit", tmp_path / "w.npy", "--resume", ckpt, "--steps", "9"))


@pytest.mark.parametrize("command", ["encode", "decode", "eval", "info", "fit"])
def test_missing_files(vqkit, trained, vectors, tmp_path, command):
    ckpt, _, codes = trained
    missing = tmp_path / "missing.ckpt"
    argv = {
        "encode": [missing, vectors, tmp_path / "o.vqc"],
        "decode": [ckpt, tmp_path / "missing.vqc", tmp_path / "o.npy"],
        "eval": [ckpt, tmp_path / "missing.npy"],
        "info": [missing],
        "fit": [tmp_path / "missing.npy", "-q"],
    }[command]
    _one_line_error(vqkit(command, *argv), "missing")


def test_bad_inputs(vqkit, trained, tmp_path):
    ckpt, _, codes = trained
    _one_line_error(vqkit("encode", codes, tmp_path / "x.npy", tmp_path / "o.vqc"))
    (tmp_path / "x.txt").write_text("1,2\n")
    _one_line_error(vqkit("fit", tmp_path / "x.txt"), "must end in one of")
    (tmp_path / "n.csv").write_text("1,2\n3,nan\n")
    _one_line_error(vqkit("fit", tmp_path / "n.csv"), "NaN")
    (tmp_path / "t.csv").write_text("1,2\n3,x\n")
    _one_line_error(vqkit("fit", tmp_path / "t.csv"), "not a CSV of numbers")
    (tmp_path / "junk.ckpt").write_bytes(b"\x00" * 100)
    _one_line_error(vqkit("info", tmp_path / "junk.ckpt"), "junk.ckpt")
    _one_line_error(vqkit("info", tmp_path), "is a directory")
    _one_line_error(vqkit("fit", ckpt, "-q"), "must end in")


def test_usage_errors_return_2(vqkit):
    code, _, err = vqkit("fit")
    assert code == 2 and "usage:" in err
    code, _, err = vqkit("fit", "x.npy", "--bits", "0")
    assert code == 2 and "expected an integer >= 1" in err


def _commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)


def test_mine_are_registered():
    assert {"fit", "encode", "decode", "info", "eval", "reproduce", "report"} <= set(_commands())


@pytest.mark.parametrize("command", _commands())
def test_help_works_for_every_command(vqkit, command):
    code, out, _ = vqkit(command, "--help")
    assert code == 0 and out.startswith("usage: vqkit " + command)


def test_top_level_help(vqkit):
    code, out, _ = vqkit("--help")
    assert code == 0 and "fit" in out and "encode" in out


def test_truncated_or_corrupt_checkpoint(vqkit, trained, vectors, tmp_path):
    ckpt, _, codes = trained
    blob = ckpt.read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(blob[: len(blob) // 2])
    _one_line_error(vqkit("encode", tmp_path / "cut.ckpt", vectors, tmp_path / "o.vqc"),
                    "cut.ckpt")
    _one_line_error(vqkit("fit", vectors, "--resume", tmp_path / "cut.ckpt", "-q"), "cut.ckpt")
    _one_line_error(vqkit("decode", codes, codes, tmp_path / "o.npy"), "x.vqc")


@pytest.mark.parametrize("bug", [RuntimeError, KeyError, TypeError, AttributeError])
def test_an_internal_bug_shows_its_traceback(monkeypatch, bug):
    """Only user errors are caught: a bug inside a command propagates with its traceback."""
    from vqkit.cli import main as cli_main
    from vqkit.cli.commands import info

    def broken(args):
        raise bug("planted")

    monkeypatch.setattr(info, "run", broken)
    with pytest.raises(bug, match="planted"):
        cli_main.main(["info", "whatever.vqc"])


@pytest.mark.parametrize("error", [ValueError, FileNotFoundError, ImportError])
def test_a_user_error_is_one_line_and_exit_2(monkeypatch, capsys, error):
    from vqkit.cli import main as cli_main
    from vqkit.cli.commands import info

    def refused(args):
        raise error("what went wrong\nsecond line")

    monkeypatch.setattr(info, "run", refused)
    assert cli_main.main(["info", "whatever.vqc"]) == 2
    assert capsys.readouterr().err == "vqkit: error: what went wrong\n"


def test_a_broken_vqkit_import_shows_its_traceback_a_missing_package_does_not(monkeypatch,
                                                                              capsys):
    from vqkit.cli import main as cli_main
    from vqkit.cli.commands import info

    def broken(args):
        raise ImportError("cannot import name 'x' from 'vqkit.io'", name="vqkit.io")

    monkeypatch.setattr(info, "run", broken)
    with pytest.raises(ImportError, match="cannot import name"):
        cli_main.main(["info", "whatever.vqc"])

    def missing(args):
        raise ModuleNotFoundError("faiss is not installed: pip install faiss-cpu", name="faiss")

    monkeypatch.setattr(info, "run", missing)
    assert cli_main.main(["info", "whatever.vqc"]) == 2
    err = capsys.readouterr().err
    assert err == "vqkit: error: faiss is not installed: pip install faiss-cpu\n"
