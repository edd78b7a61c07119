"""Issue 16 review: ``vqkit fit`` refuses sizes it cannot hold, before building anything; an
allocation that fails anyway, or a bad setting, is one error line (the banner comes after the
checks, and not at all with -q)."""

from __future__ import annotations

import resource

import pytest

from vqkit.cli.commands._budget import MAX_CODEBOOKS, MAX_FIT_BYTES, check_fit_sizes

from .test_errors import _one_line_error


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("options, needle", [
    (("--bits", "30"), "1073741824 codes x 1 codebook(s) x dimension 6 needs 96 GiB"),
    (("--codebook-size", "1000000000"), "1000000000 codes"),
    (("--codebook", "factorised", "--codebook-dim", "100000000"), "--codebook-dim 100000000"),
    (("--quantizer", "rvq", "--num-codebooks", "100000"), "--num-codebooks 100000 is more"),
    (("--batch", "1000000000"), "--batch 1000000000 x dimension 6 needs 22.4 GiB for a batch"),
    (("--batch", "2000000", "--bits", "10"), "--batch 2000000 x 1024 codes"),
])
def test_fit_refuses_sizes_beyond_its_budget(vqkit, vectors, tmp_path, options, needle):
    before = _peak_mib()
    _one_line_error(vqkit("fit", vectors, *options, "--steps", "2", "-q", "-o",
                          tmp_path / "q.ckpt"), needle, "more than the")
    assert _peak_mib() - before < 200
    assert not (tmp_path / "q.ckpt").exists()


def test_the_budget_bounds_every_estimate():
    """lfq --bits 30 would take the whole machine: the bound is checked without running it."""
    lfq = {"quantizer": "lfq", "codebook_size": 2**30, "num_codebooks": 1, "batch": 1024}
    with pytest.raises(ValueError, match="1073741824 codes x 1 codebook"):
        check_fit_sizes(lfq, 30)
    fsq = {"levels": [1024, 1024, 1024], "codebook_size": 256, "batch": 16}
    with pytest.raises(ValueError, match="--levels 1024 1024 1024 x 1 codebook"):
        check_fit_sizes(fsq, 3)
    # at the bound exactly: accepted; one more value: refused
    fits = {"codebook_size": MAX_FIT_BYTES // 16, "num_codebooks": 1, "batch": 1}
    check_fit_sizes(fits, 1)
    with pytest.raises(ValueError, match="codebooks and their training state"):
        check_fit_sizes({**fits, "codebook_size": MAX_FIT_BYTES // 16 + 1}, 1)
    check_fit_sizes({"codebook_size": 2, "num_codebooks": MAX_CODEBOOKS, "batch": 8}, 4)
    with pytest.raises(ValueError, match="--num-codebooks 4097"):
        check_fit_sizes({"codebook_size": 2, "num_codebooks": MAX_CODEBOOKS + 1, "batch": 8}, 4)
    # the defaults of fit, and a large but sane run, pass
    check_fit_sizes({"codebook_size": 256, "num_codebooks": 4, "batch": 1024}, 768)
    check_fit_sizes({"codebook_size": 2**16, "num_codebooks": 8, "batch": 4096}, 128)


def test_a_failed_allocation_is_one_line_naming_the_sizes(vqkit, vectors, tmp_path,
                                                          monkeypatch):
    import vqkit.training.fit as fit

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: "
                           "can't allocate memory: you tried to allocate 4398046511104 bytes.\n"
                           "frame #0")

    monkeypatch.setattr(fit, "fit_trainer", out_of_memory)
    _one_line_error(vqkit("fit", vectors, "--bits", "4", "--batch", "64", "-q", "-o",
                          tmp_path / "q.ckpt"),
                    "fit ran out of memory (--bits 4, --batch 64)", "can't allocate memory")


@pytest.mark.parametrize("options, needle", [
    (("--lr", "nan"), "lr must be a finite number"),
    (("--lr", "-1"), "got -1.0"),
    (("--replace-threshold", "2"), "replacement threshold must be in [0, 1]"),
])
def test_fit_settings_are_refused_before_its_banner(vqkit, vectors, tmp_path, options, needle):
    """Without -q too: the banner comes after the settings are checked."""
    _one_line_error(vqkit("fit", vectors, "--bits", "3", *options, "-o", tmp_path / "q.ckpt"),
                    needle)


def test_fit_prints_its_banner_unless_quiet(vqkit, vectors, tmp_path):
    args = ("fit", vectors, "--bits", "3", "--steps", "2", "--batch", "16", "-o",
            tmp_path / "q.ckpt")
    code, _, err = vqkit(*args)
    assert code == 0 and err.startswith(
        f"fit: VectorQuantizer on 600 x 6 vectors from {vectors}, steps 0 -> 2\n"), err
    code, _, err = vqkit(*args, "-q")
    assert code == 0 and "fit: " not in err, err
