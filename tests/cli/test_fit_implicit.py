"""``vqkit fit`` with the implicit-codebook quantizers: --levels, and clear errors."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("argv", "message"), [
    (["--quantizer", "fsq"], "needs --levels"),
    (["--quantizer", "fsq", "--levels", "5", "5", "--bits", "4"], "do not apply to fsq"),
    (["--quantizer", "vq", "--levels", "5", "5"], "--levels applies to fsq/rfsq only"),
    (["--quantizer", "lfq", "--learning", "ema"], "LFQ takes no learning"),
    (["--quantizer", "bsq", "--estimator", "rotation"], "BSQ cannot use RotationTrick"),
    (["--quantizer", "lfq", "--codebook-size", "12"], "power of two"),
])
def test_bad_combinations_are_user_errors(vqkit, vectors, tmp_path, argv, message):
    code, _, err = vqkit("fit", vectors, *argv, "--steps", "2", "-q", "-o", tmp_path / "q.ckpt")
    assert code != 0 and message in err, err


def test_kmeans_init_is_skipped_with_a_warning(vqkit, vectors, tmp_path, caplog):
    code, _, err = vqkit("fit", vectors, "--quantizer", "lfq", "--bits", "6", "--init", "kmeans",
                         "--steps", "2", "-q", "-o", tmp_path / "q.ckpt")
    assert code == 0, err
    warned = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage() for r in warned] == [
        "fit: LFQ has no data-driven initialisation; --init kmeans skipped"]
