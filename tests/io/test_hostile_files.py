"""Issue 16, items 4-10: integrity of torch.save files, safe writes, a full disk, non-finite
state, the smaller readers' cases, one loader for what the CLI writes, SIGTERM."""

from __future__ import annotations

import errno
import os
import signal
import struct
import threading
import zlib

import numpy as np
import pytest
import torch

import vqkit
from vqkit.cli.main import main
from vqkit.data.vectors import load_vectors
from vqkit.functional.kmeans import kmeans
from vqkit.functional.search import nearest_neighbor
from vqkit.io.atomic import atomic_write
from vqkit.io.serialization import quantizer_record
from vqkit.io.torch_file import atomic_torch_save
from vqkit.training.checkpoint import load_checkpoint


class Evil:
    """Not a tensor or plain value: a safe load refuses it."""


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(result, *needles):
    """Exit 2 and one error line (``fit`` prints its one status line before it)."""
    code, _, err = result
    lines = [line for line in err.splitlines() if not line.startswith("fit: ")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("vqkit: error"), err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A trained checkpoint, its data, a vqkit.save file and encoded codes."""
    d = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    np.save(d / "x.npy", np.random.default_rng(0).normal(size=(300, 4)).astype("float32"))
    assert main(["fit", str(d / "x.npy"), "--bits", "3", "--steps", "20", "--batch", "64",
                 "--init-samples", "300", "-q", "-o", str(d / "q.ckpt")]) == 0
    vqkit.save(vqkit.load(d / "q.ckpt"), d / "q.pt")
    assert main(["encode", "-q", str(d / "q.ckpt"), str(d / "x.npy"), str(d / "c.vqc")]) == 0
    return d


# -- 4: integrity --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["q.ckpt", "q.pt"])
def test_a_flipped_bit_in_the_weights_is_refused(run, tmp_path, capsys, name):
    blob = bytearray((run / name).read_bytes())
    record = torch.load(run / name, weights_only=True)
    state = (record.get("quantizer") or record)["state_dict"]
    raw = state["codebook.codewords"].numpy().tobytes()
    at = bytes(blob).index(raw[:16])  # the codewords' bytes inside the zip
    blob[at + 5] ^= 0x10
    bad = tmp_path / name
    bad.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="CRC-32 mismatch"):
        vqkit.load(bad)
    _one_line(_cli(capsys, "encode", bad, run / "x.npy", tmp_path / "c.vqc"), "CRC-32")
    _one_line(_cli(capsys, "info", bad), "CRC-32")
    assert not (tmp_path / "c.vqc").exists()


def test_crafted_config_and_state_values_are_refused(run, tmp_path):
    base = quantizer_record(vqkit.load(run / "q.pt"))
    cases = [
        ({"codebook_size": "8"}, None, "codebook_size must be an int"),
        ({"codebook_size": 8.7}, None, "codebook_size must be an int"),
        ({"codebook_size": True}, None, "codebook_size must be an int"),
        ({"dim": -4}, None, "dim must be an int >= 1"),
        ({"estimator": {"type": "StraightThrough", "beta": float("inf")}}, None, "finite"),
        (None, ("codebook.usage", -torch.ones(8, dtype=torch.long)), "negative count"),
        (None, ("codebook.codewords", torch.full((8, 4), float("nan"))), "NaN"),
    ]
    for config, state, needle in cases:
        record = {**base, "config": {**base["config"], **(config or {})},
                  "state_dict": dict(base["state_dict"])}
        if state is not None:
            record["state_dict"][state[0]] = state[1]
        atomic_torch_save(record, tmp_path / "c.pt")
        with pytest.raises(ValueError, match=needle):
            vqkit.load(tmp_path / "c.pt")


def test_a_huge_configured_codebook_is_refused_before_allocation(run, tmp_path, capsys):
    import resource

    record = quantizer_record(vqkit.load(run / "q.pt"))
    record["config"]["codebook_size"] = 50_000_000
    atomic_torch_save(record, tmp_path / "big.pt")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _one_line(_cli(capsys, "info", tmp_path / "big.pt"), "(50000000, 4)")
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 100


def test_checkpoint_fields_are_checked(run, tmp_path):
    record = torch.load(run / "q.ckpt", weights_only=True)
    for key, value, needle in [("step", -3, "step must be"), ("step", "3", "step must be"),
                               ("fit", [], "fit must be")]:
        atomic_torch_save({**record, key: value}, tmp_path / "c.ckpt")
        with pytest.raises(ValueError, match=needle):
            load_checkpoint(tmp_path / "c.ckpt")


# -- 5, 6, 10: writes ----------------------------------------------------------------------


def test_writes_refuse_device_nodes_and_fifos(run, tmp_path, capsys):
    with pytest.raises(ValueError, match="character device"):
        atomic_write("/dev/null", lambda f: f.write(b"x"))
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    _one_line(_cli(capsys, "encode", run / "q.ckpt", run / "x.npy", "/dev/null"),
              "character device")
    _one_line(_cli(capsys, "encode", run / "q.ckpt", run / "x.npy", fifo), "FIFO")
    # a FIFO as an input is refused at once, never read (which would block)
    _one_line(_cli(capsys, "info", fifo), "FIFO")
    (tmp_path / "v.npy").unlink(missing_ok=True)
    os.rename(fifo, tmp_path / "v.npy")
    _one_line(_cli(capsys, "encode", run / "q.ckpt", tmp_path / "v.npy", tmp_path / "o.vqc"),
              "FIFO")


def test_failed_and_killed_writes_leave_no_temporary_file(tmp_path):
    target = tmp_path / "out.bin"

    def boom(f):
        f.write(b"partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert os.listdir(tmp_path) == []
    # a process killed mid-write (pid 2**22 + 1 is above any pid_max default: not running)
    stale = tmp_path / f".out.bin.{2**22 + 1}.abcd1234.tmp"
    stale.write_bytes(b"half")
    live = tmp_path / f".out.bin.{os.getppid()}.abcd1234.tmp"  # a running process's
    live.write_bytes(b"busy")
    atomic_write(target, lambda f: f.write(b"ok"))
    assert sorted(os.listdir(tmp_path)) == sorted(["out.bin", live.name])


def test_crafted_temporary_names_neither_fail_nor_block_writes(tmp_path):
    """A pid beyond the C pid_t made os.kill raise OverflowError; a directory (or a link)
    named like a temporary file made every later write fail. A dead pid's regular file goes,
    anything else with such a name stays."""
    target = tmp_path / "o.vqc"
    huge = tmp_path / f".o.vqc.{10**23 - 1}.x.tmp"
    huge.write_bytes(b"half")
    folder = tmp_path / f".o.vqc.{2**22 + 1}.y.tmp"
    (folder / "inside").mkdir(parents=True)
    link = tmp_path / f".o.vqc.{2**22 + 1}.z.tmp"
    link.symlink_to(folder)
    for content in (b"one", b"two"):
        atomic_write(target, lambda f, c=content: f.write(c))
        assert target.read_bytes() == content
    assert sorted(os.listdir(tmp_path)) == sorted(["o.vqc", folder.name, link.name])
    assert (folder / "inside").is_dir()


def test_a_full_disk_exits_2_naming_path_and_cause(run, tmp_path, capsys, monkeypatch):
    import vqkit.io.atomic as atomic

    real = atomic.os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: Full(real(fd, mode)))
    out = tmp_path / "c.vqc"
    _one_line(_cli(capsys, "encode", run / "q.ckpt", run / "x.npy", out), str(out),
              "No space left on device", "ENOSPC")
    _one_line(_cli(capsys, "decode", run / "q.ckpt", run / "c.vqc", tmp_path / "y.npy"),
              "ENOSPC")
    assert os.listdir(tmp_path) == []


def test_a_full_disk_under_torch_save_exits_2_naming_path_and_cause(run, tmp_path, capsys,
                                                                    monkeypatch):
    """torch.save turns the failed write into a RuntimeError of its zip writer."""
    import vqkit.io.atomic as atomic

    real = atomic.os.fdopen

    def full(fd, mode):  # a device that is always full: every write fails with ENOSPC
        os.close(fd)
        return real(os.open("/dev/full", os.O_WRONLY), mode)

    monkeypatch.setattr(atomic.os, "fdopen", full)
    for name in ("y.pt", "y.npy", "y.csv"):
        _one_line(_cli(capsys, "decode", run / "q.ckpt", run / "c.vqc", tmp_path / name),
                  str(tmp_path / name), "No space left on device", "ENOSPC")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["y.pt", "y.npy"])
def test_a_short_write_exits_2_naming_path_and_cause(run, tmp_path, capsys, name):
    """A disk filling up mid-file: the OS writes part of a chunk, then refuses. numpy's C
    writer said "1200 requested and 218 written" (no cause) and torch's zip writer raised a
    RuntimeError; the file size limit makes the same short write."""
    import resource

    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, limit[1]))
    try:
        result = _cli(capsys, "decode", run / "q.ckpt", run / "c.vqc", tmp_path / name)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, handler)
    _one_line(result, str(tmp_path / name), "File too large", "EFBIG")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("err, name", [(errno.EACCES, "EACCES"), (errno.EISDIR, "EISDIR"),
                                       (errno.ELOOP, "ELOOP")])
def test_oserrors_map_to_one_line(run, tmp_path, capsys, monkeypatch, err, name):
    import vqkit.cli.commands.encode as encode

    def fail(*a, **k):
        raise OSError(err, os.strerror(err), str(tmp_path / "c.vqc"))

    monkeypatch.setattr("vqkit.io.codes_file.write_codes", fail)
    assert encode  # the command imports write_codes when it runs
    _one_line(_cli(capsys, "encode", run / "q.ckpt", run / "x.npy", tmp_path / "c.vqc"),
              name, str(tmp_path / "c.vqc"))


def test_outputs_are_checked_before_any_work(run, tmp_path, capsys):
    data = tmp_path / "x.npy"
    data.write_bytes((run / "x.npy").read_bytes())
    _one_line(_cli(capsys, "fit", data, "--steps", "5", "-q", "-o", data), "is the input")
    assert data.read_bytes() == (run / "x.npy").read_bytes()
    _one_line(_cli(capsys, "fit", data, "--steps", "5", "-q", "-o", tmp_path / "no" / "q.ckpt"),
              "no such folder")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if not os.access(ro, os.W_OK):  # root writes anywhere: nothing to test then
            _one_line(_cli(capsys, "fit", data, "--steps", "5", "-q", "-o", ro / "q.ckpt"),
                      "not writable")
    finally:
        ro.chmod(0o700)
    _one_line(_cli(capsys, "encode", run / "q.ckpt", data, data), "is the input")


def test_image_compress_does_not_create_folders(tmp_path, capsys):
    pytest.importorskip("PIL")
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "x.png")
    target = tmp_path / "nonexistent" / "dir" / "x.vqi"
    _one_line(_cli(capsys, "image", "compress", tmp_path / "x.png", target), "no such folder")
    assert not (tmp_path / "nonexistent").exists()


def test_sigterm_during_fit_writes_a_checkpoint_and_says_so_once(run, tmp_path, capsys):
    out = tmp_path / "q.ckpt"
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        code = main(["fit", str(run / "x.npy"), "--steps", "100000000", "--batch", "8",
                     "--init", "random", "-q", "-o", str(out)])
    finally:
        timer.cancel()
    err = capsys.readouterr().err
    assert code == 130 and err.count("interrupted") == 1 and "--resume" in err
    assert load_checkpoint(out).step > 0


# -- 7: non-finite -------------------------------------------------------------------------


def test_training_stops_naming_the_step_when_it_diverges(run, tmp_path, capsys):
    result = _cli(capsys, "fit", run / "x.npy", "--lr", "1e30", "--steps", "50", "--batch",
                  "64", "--init", "random", "-q", "-o", tmp_path / "q.ckpt")
    _one_line(result, "training diverged at step")
    assert not (tmp_path / "q.ckpt").exists()
    _one_line(_cli(capsys, "fit", run / "x.npy", "--lr", "1e38", "-q", "-o",
                   tmp_path / "q.ckpt"), "at most")


def test_search_and_kmeans_refuse_non_finite_inputs():
    c = torch.randn(8, 3)
    c[2, 1] = float("nan")
    with pytest.raises(ValueError, match="row 2"):
        nearest_neighbor(torch.randn(5, 3), c)
    x = torch.randn(20, 3)
    x[4, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite"):
        kmeans(x, 4)
    with pytest.raises(ValueError, match=r"k must be in \[1, 5\]"):
        kmeans(torch.randn(5, 3), 6)


def test_nearest_neighbor_k_above_1_keeps_its_results(monkeypatch):
    x, c = torch.randn(300, 6), torch.randn(500, 6)
    whole = nearest_neighbor(x, c, 4, chunk_elements=1 << 30)
    small = nearest_neighbor(x, c, 4, chunk_elements=4000)
    assert torch.equal(whole[1], small[1]) and torch.equal(whole[0], small[0])


# -- 8: smaller ----------------------------------------------------------------------------


def test_smaller_reader_cases_are_one_line(run, tmp_path, capsys):
    pk = tmp_path / "pk.npy"
    pk.write_bytes(b"PK\x03\x04" + b"\0" * 40)
    _one_line(_cli(capsys, "encode", run / "q.ckpt", pk, tmp_path / "o.vqc"), "not a .npy")
    header = bytearray((run / "x.npy").read_bytes())
    header[15] ^= 0x7F
    bad = tmp_path / "h.npy"
    bad.write_bytes(bytes(header))
    _one_line(_cli(capsys, "encode", run / "q.ckpt", bad, tmp_path / "o.vqc"), str(bad))
    short = tmp_path / "short.npy"
    short.write_bytes((run / "x.npy").read_bytes()[:-8])
    _one_line(_cli(capsys, "encode", run / "q.ckpt", short, tmp_path / "o.vqc"), "truncated")
    loop = tmp_path / "loop.npy"
    os.symlink(loop, loop)
    _one_line(_cli(capsys, "encode", run / "q.ckpt", loop, tmp_path / "o.vqc"),
              "symbolic-link loop")
    _one_line(_cli(capsys, "encode", run / "q.ckpt", run / "x.npy", loop), "symbolic-link loop")
    bom = tmp_path / "b.csv"
    bom.write_text("1,2,3,4\n5,6,7,8\n", encoding="utf-8-sig")
    assert vqkit.data.vectors.load_vectors(bom).shape == (2, 4)  # the first row is kept
    code, _, err = _cli(capsys, "fit", run / "x.npy", "--bits", "64")
    assert code == 2 and "at most 30 bits" in err and "Traceback" not in err
    assert not (tmp_path / "o.vqc").exists()


def test_images_huge_or_truncated_are_one_line(tmp_path, capsys):
    pytest.importorskip("PIL")
    from PIL import Image

    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "x.png")
    blob = (tmp_path / "x.png").read_bytes()
    (tmp_path / "t.png").write_bytes(blob[: len(blob) // 2])
    chunk = b"IHDR" + struct.pack(">II", 100000, 100000) + blob[24:29]
    huge = blob[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) \
        + blob[33:]
    (tmp_path / "h.png").write_bytes(huge)
    for name, needle in (("t.png", "truncated"), ("h.png", "pixels")):
        _one_line(_cli(capsys, "image", "compress", tmp_path / name, tmp_path / "o.vqi"),
                  needle)


def test_messages_never_advise_weights_only_false(run, tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, evil)
    result = _cli(capsys, "info", evil)
    _one_line(result, "Python objects")
    assert "weights_only" not in result[2]


def test_speech_model_option_on_a_non_model_file(run, tmp_path, capsys):
    pytest.importorskip("pyworld")
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    for model in (run / "x.npy", run / "q.pt", run / "c.vqc"):
        _one_line(_cli(capsys, "speech", "encode", tmp_path / "a.wav", tmp_path / "o.vqs",
                       "--model", model), str(model))


def test_speech_encode_refuses_non_finite_samples(tmp_path, capsys):
    pytest.importorskip("pyworld")
    sf = pytest.importorskip("soundfile")
    audio = np.zeros(8000, np.float32)
    audio[100] = np.nan
    sf.write(tmp_path / "n.wav", audio, 8000, subtype="FLOAT")
    _one_line(_cli(capsys, "speech", "encode", tmp_path / "n.wav", tmp_path / "o.vqs"),
              "NaN or infinite samples")


# -- 9: one loader ---------------------------------------------------------------------------


def test_vqkit_load_reads_a_fit_checkpoint_and_info_knows_vqi_and_vqs(run, tmp_path, capsys):
    q = vqkit.load(run / "q.ckpt")
    assert torch.equal(q.codewords, load_checkpoint(run / "q.ckpt").quantizer.codewords)
    pytest.importorskip("PIL")
    from PIL import Image

    from vqkit.apps.image_codec.model import DEFAULT_MODEL

    with pytest.raises(ValueError, match="load_checkpoint"):
        vqkit.load(DEFAULT_MODEL)
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "x.png")
    assert main(["image", "compress", "-q", str(tmp_path / "x.png"),
                 str(tmp_path / "x.vqi")]) == 0
    capsys.readouterr()
    code, out, _ = _cli(capsys, "info", tmp_path / "x.vqi")
    assert code == 0 and ".vqi file (checksum ok)" in out and "30" in out


@pytest.mark.parametrize("make", [lambda: torch.zeros(3, 8).to_sparse(),
                                  lambda: {"vectors": torch.eye(4).to_sparse_csr()}])
def test_a_sparse_tensor_file_is_refused(run, tmp_path, capsys, make):
    path = tmp_path / "s.pt"
    torch.save(make(), path)
    with pytest.raises(ValueError, match="dense"):
        load_vectors(path)
    _one_line(_cli(capsys, "encode", run / "q.ckpt", path, tmp_path / "c.vqc"), str(path),
              "layout torch.sparse", "dense (strided) tensors only")
