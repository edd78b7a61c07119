"""The quantizer benchmark: every row builds and trains in the network, the peer adapter keeps
the peer's numbers, the metrics against independent oracles, the comparisons, and the quick
run end to end (its committed fixture: ``test_quick_regeneration``); under ``-m slow`` the
committed full run: its consistency and the acceptance (strict xfails where it falls short)."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from vqkit.experiments import _bench_rows as rows
from vqkit.experiments import _bench_train as bt
from vqkit.experiments import quantizer_bench as qb
from vqkit.experiments import registry

pytest.importorskip("vector_quantize_pytorch")
CFG = bt.BenchConfig(hidden=8, dim=16, batch=4)


@pytest.mark.parametrize("name", list(rows.ROWS))
def test_every_row_trains_a_step_in_the_network_with_finite_loss(name):
    """Training and eval forward of the whole network; indices in range, one column per
    codebook; the encoder and decoder start from the same weights for every row."""
    model = bt.build_model(name, 1024, "photos", 0, CFG).train()
    x = torch.rand(CFG.batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    recon, out = model(x)
    loss = (recon - x).pow(2).mean() + out.loss
    loss.backward()
    assert recon.shape == x.shape and torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.enc.parameters())
    sizes = rows.ROWS[name].sizes(1024)
    recons, idx = bt.reconstruct(model, x)
    assert idx.shape == (CFG.batch * 64, len(sizes))
    assert all(int(idx[:, m].min()) >= 0 and int(idx[:, m].max()) < k
               for m, k in enumerate(sizes))
    reference = bt.build_model(rows.VQKIT_ROWS[0].name, 1024, "photos", 0, CFG)
    for part in ("enc", "dec"):
        ours, theirs = getattr(model, part).state_dict(), getattr(reference, part).state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), part


def test_the_peer_adapter_returns_the_peers_own_output():
    from vector_quantize_pytorch import ResidualVQ

    torch.manual_seed(0)
    layer = ResidualVQ(dim=8, num_quantizers=2, codebook_size=16).eval()
    adapter = rows.PeerQuantizer(layer, losses=2)
    x = torch.randn(3, 4, 5, 8)
    out = adapter(x)
    quantized, indices, losses = layer(x.reshape(3, 20, 8))
    assert torch.equal(out.quantized, quantized.reshape(3, 4, 5, 8))
    assert torch.equal(out.indices, indices.reshape(3, 4, 5, 2))
    assert torch.equal(out.loss, losses.sum())


def test_equal_bits_per_latent_for_every_family():
    for codes, bits in ((1024, 10), (16384, 14)):
        for row in rows.ROWS.values():
            total = math.prod(row.sizes(codes))
            assert abs(math.log2(total) - bits) < 0.1, (row.name, total)


def test_usage_counts_codes_picked_once():
    idx = torch.tensor([[0], [0], [1], [3], [3]])
    assert bt.usage_stats(idx, (8,))["usage"] == 3 / 8


@pytest.mark.parametrize("codes", [1024, 16384])
def test_fsq_rows_take_the_levels_of_their_size(codes):
    """Both libraries' FSQ rows have the [mentzer2024fsq] levels of that size."""
    for name in ("FSQ", "VQP FSQ"):
        layer = rows.build_row(name, 16, codes, 0)
        layer = layer.layer if isinstance(layer, rows.PeerQuantizer) else layer
        assert layer.codebook_size == math.prod(rows.FSQ_LEVELS[codes]), name


@pytest.mark.parametrize("row", [r for r in rows.PEER_ROWS if r.name != "VQP FSQ"],
                         ids=lambda r: r.name)
def test_every_peer_row_trains_on_the_peers_loss(row):
    """The adapter's loss is the peer's float auxiliary loss, with a gradient to the
    input (not its indices)."""
    torch.manual_seed(0)
    layer = row.build(8, 16, 0).train()
    x = torch.randn(2, 3, 4, 8, requires_grad=True)
    out = layer(x)
    assert out.loss.dtype == torch.float32 and out.loss.dim() == 0
    assert out.loss.requires_grad


def test_peer_equivalents_are_one_peer_row_per_family_at_equal_bits():
    pairs = rows.PEER_EQUIVALENT
    assert len(set(pairs.values())) == len(pairs)
    for ours, theirs in pairs.items():
        assert rows.ROWS[ours].library == rows.VQKIT and rows.ROWS[theirs].library == rows.PEER
        for codes in (1024, 16384):
            assert rows.ROWS[ours].sizes(codes) == rows.ROWS[theirs].sizes(codes), ours


def test_reconstruct_is_the_eval_forward_clamped_to_the_pixel_range():
    model = bt.build_model(qb.DEFAULT_ROW, 64, "photos", 0, CFG).train()
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    model(x)  # the first training batch: the data initialisation
    first, idx = bt.reconstruct(model, x)
    assert not model.training
    second, idx2 = bt.reconstruct(model.train(), x)
    assert torch.equal(first, second) and torch.equal(idx, idx2)
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    with torch.no_grad():
        raw, _ = model.eval()(x)
    assert torch.equal(first, raw.clamp(0, 1)) and bool(((raw < 0) | (raw > 1)).any())


def test_shown_images_are_evenly_spaced_from_first_to_last():
    picked = bt.shown(torch.arange(100).reshape(100, 1, 1, 1)).flatten().tolist()
    assert picked == [0, 20, 40, 59, 79, 99]


def test_the_report_lists_each_table_from_the_best_psnr_down():
    summary = [{"dataset": "d", "codes": 4, "row": name, "library": lib, "seeds": 2,
                "psnr_mean": m, "psnr_min": m - 0.5, "psnr_max": m + 0.25, "ssim_mean": 0.5,
                "usage_mean": 0.5, "perplexity_mean": 2.0, "step_seconds": 0.01,
                "peak_step_mib": 1.0, "quantizer_seconds": 0.001}
               for name, lib, m in ((qb.DEFAULT_ROW, "vqkit", 20.0), ("FSQ", "vqkit", 22.0),
                                    ("VQP FSQ", "vector-quantize-pytorch", 21.0))]
    data = {"command": "c", "git_commit": "g", "config": {"hidden": 1, "dim": 2, "steps": 3,
                                                           "batch": 4, "lr": 0.1, "seeds": [0]},
            "results": {"summary": summary, "comparisons": qb._comparisons(summary)}}
    text = qb._render(data)
    lines = [line for line in text.splitlines() if line.startswith("| ") and "PSNR" not in line]
    assert [line.split(" | ")[0] for line in lines] == [
        "| FSQ", "| VQP FSQ", f"| {qb.DEFAULT_ROW}"]
    assert "22.00 [21.50, 22.25]" in lines[0]
    assert "minus the peer's best (VQP FSQ): 1.00 dB" in text


def test_usage_and_perplexity_against_counting():
    g = torch.Generator().manual_seed(0)
    idx = torch.stack([torch.randint(0, 8, (50,), generator=g),
                       torch.randint(0, 3, (50,), generator=g)], 1)
    stats = bt.usage_stats(idx, (16, 4))
    used = [len(set(idx[:, 0].tolist())) / 16, len(set(idx[:, 1].tolist())) / 4]
    perp = []
    for m in range(2):
        _, counts = np.unique(idx[:, m].numpy(), return_counts=True)
        p = counts / counts.sum()
        perp.append(math.exp(-(p * np.log(p)).sum()))
    assert stats["usage"] == pytest.approx(np.mean(used), abs=1e-12)
    assert stats["perplexity"] == pytest.approx(np.mean(perp), rel=1e-9)


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_is_the_mean_of_scikit_image_per_image(channels):
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(1)
    a = torch.rand(5, channels, 28, 28, generator=g)
    b = (a + 0.1 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    per_image = [structural_similarity(
        a[i].permute(1, 2, 0).double().numpy(), b[i].permute(1, 2, 0).double().numpy(),
        data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False) for i in range(5)]
    assert bt.mean_ssim(a, b) == pytest.approx(float(np.mean(per_image)), abs=1e-12)


def test_comparisons_pick_the_best_of_each_library_and_pair_the_step_times():
    def entry(row, library, psnr, seconds):
        return {"dataset": "d", "codes": 4, "row": row, "library": library, "psnr_mean": psnr,
                "usage_mean": 0.5, "step_seconds": seconds}

    summary = [entry(qb.DEFAULT_ROW, "vqkit", 20.0, 1.0), entry("FSQ", "vqkit", 21.0, 2.0),
               entry("VQP VectorQuantize defaults", "vector-quantize-pytorch", 20.5, 4.0),
               entry("VQP FSQ", "vector-quantize-pytorch", 19.0, 1.0)]
    (c,) = qb._comparisons(summary)
    assert (c["vqkit_best"], c["peer_best"]) == ("FSQ", "VQP VectorQuantize defaults")
    assert c["margin_db"] == pytest.approx(0.5) and c["default_gap_db"] == pytest.approx(1.0)
    assert c["step_time_over_peer"] == {qb.DEFAULT_ROW: 0.25, "FSQ": 2.0}


def test_the_cost_of_a_row_is_measured(tmp_path):
    from vqkit.experiments._bench_cost import measure_cost

    cost = measure_cost("fashion-mnist", "FSQ", 1024, bt.BenchConfig(hidden=8, batch=4,
                                                                     cost_steps=2))
    assert cost["step_seconds"] > 0 and cost["quantizer_seconds"] > 0
    assert 0 <= cost["peak_step_mib"] < 4096


def _check_record(data, cfg, quick):
    """A record's points are the config's, and its summary and comparisons are recomputed
    from them (the seeds' mean and range, the best of each library)."""
    res = data["results"]
    assert data["quick"] is quick and data["config"] == json.loads(json.dumps(asdict(cfg)))
    assert [(p["dataset"], p["row"], p["codes"], p["seed"]) for p in res["points"]] == \
        qb._points(cfg)
    for p in res["points"]:
        sizes = rows.ROWS[p["row"]].sizes(p["codes"])
        assert p["codebooks"] == list(sizes) and p["library"] == rows.ROWS[p["row"]].library
        assert 0 < p["usage"] <= 1 and 0 < p["ssim"] <= 1
        # exp(H) over the codes in use: between 1 and the (mean) number of codes used.
        assert 1 <= p["perplexity"] <= p["usage"] * statistics.fmean(sizes) * (1 + 1e-9)
        assert [c["step"] for c in p["curve"]] == list(range(cfg.eval_every, cfg.steps + 1,
                                                             cfg.eval_every))
        assert "shown" not in p
    assert len(res["summary"]) == len(cfg.datasets) * len(cfg.sizes) * len(cfg.rows)
    for s in res["summary"]:
        runs = [p for p in res["points"]
                if (p["dataset"], p["codes"], p["row"]) == (s["dataset"], s["codes"], s["row"])]
        assert s["seeds"] == len(runs) == len(cfg.seeds)
        psnrs = [p["psnr"] for p in runs]
        assert s["psnr_mean"] == pytest.approx(statistics.fmean(psnrs), abs=1e-12)
        assert (s["psnr_min"], s["psnr_max"]) == (min(psnrs), max(psnrs))
        for metric in ("ssim", "usage", "perplexity"):
            assert s[f"{metric}_mean"] == pytest.approx(
                statistics.fmean(p[metric] for p in runs), abs=1e-12)
        assert s["usage_min"] == min(p["usage"] for p in runs)
        assert s["train_seconds_per_step"] == pytest.approx(
            statistics.fmean(p["train_seconds_per_step"] for p in runs), abs=1e-15)
        assert s["library"] == rows.ROWS[s["row"]].library
        assert 0 <= s["peak_step_mib"] < 4096  # MiB: a step of this network needs far less
        assert s["step_seconds"] > 0 and s["quantizer_seconds"] > 0
    assert res["comparisons"] == json.loads(json.dumps(qb._comparisons(res["summary"])))


def test_quick_run_writes_every_point_and_the_report(tmp_path):
    path = qb.run(tmp_path, quick=True, seed=0, allow_dirty=True)
    data = json.loads(path.read_text())
    _check_record(data, qb.QUICK, quick=True)
    assert all((tmp_path / f).is_file() for f in data["results"]["plots"].values())
    assert registry()["quantizer-bench"].report(tmp_path).startswith("## Every quantizer")


def test_the_recipe_replaces_up_to_one_period_before_the_end():
    schedule = bt.replacement(100, 600)
    assert [s for s in range(1, 601) if schedule.due(s)] == [100, 200, 300, 400, 500]
    assert not any(bt.replacement(0, 600).due(s) for s in range(1, 601))


RESULTS = Path(__file__).resolve().parents[2] / "results" / qb.RESULT_FILE


def _committed():
    return json.loads(RESULTS.read_text())


@pytest.mark.slow
def test_committed_full_run_is_the_configs_and_consistent():
    _check_record(_committed(), qb.CONFIG, quick=False)


def _comparison(dataset, codes):
    (entry,) = [c for c in _committed()["results"]["comparisons"]
                if (c["dataset"], c["codes"]) == (dataset, codes)]
    return entry


CELLS = [(d, k) for d in bt.DATASETS for k in qb.CONFIG.sizes]

# The acceptance of the benchmark, on the committed run. Where the run falls short, the test is
# a strict xfail with the measured numbers (docs/choosing.md says so too): if a later run meets
# the target, the xfail turns into a failure and the marks must be updated.
SHORT_OF_MARGIN = pytest.mark.xfail(strict=True, reason=(
    "committed run: the peer's best row is ahead at every cell (vqkit minus peer: -0.13, "
    "-0.20, -0.39, -0.57 dB at Fashion-MNIST 1k, 16k, photos 1k, 16k)"))


@pytest.mark.slow
@pytest.mark.parametrize("dataset,codes", [pytest.param(*c, marks=SHORT_OF_MARGIN)
                                           for c in CELLS])
def test_committed_run_vqkit_best_leads_the_peers_best_by_0_3_db(dataset, codes):
    assert _comparison(dataset, codes)["margin_db"] >= 0.3


@pytest.mark.slow
@pytest.mark.parametrize("dataset,codes", [
    pytest.param(*c, marks=pytest.mark.xfail(strict=True, reason=(
        "committed run: the default is 0.21, 0.26 and 0.30 dB behind vqkit's best at "
        "Fashion-MNIST 1k, 16k and photos 16k")))
    if c != ("photos", 1024) else c for c in CELLS])
def test_committed_run_default_within_0_2_db_of_vqkits_best(dataset, codes):
    assert _comparison(dataset, codes)["default_gap_db"] <= 0.2


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "committed run: the default uses 71.0 % (Fashion-MNIST) and 29.4 % (photos) of 16,384 "
    "codes after 300 steps"))
@pytest.mark.parametrize("dataset", list(bt.DATASETS))
def test_committed_run_default_uses_95_percent_of_16k_codes(dataset):
    assert _comparison(dataset, 16384)["default_usage"] >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("dataset,codes", CELLS)
def test_committed_run_step_time_no_slower_than_the_peers_equivalent(dataset, codes):
    """Every vqkit row's training step against its peer equivalent's, the one exception
    (FSQ at about 1k codes) in the next test."""
    ratios = _comparison(dataset, codes)["step_time_over_peer"]
    assert set(ratios) == set(rows.PEER_EQUIVALENT)
    assert all(r <= 1.0 for name, r in ratios.items() if (name, codes) != ("FSQ", 1024))


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "committed run: vqkit's FSQ step is 1.14x (Fashion-MNIST) and 1.13x (photos) the peer's "
    "at 1,000 codes"))
@pytest.mark.parametrize("dataset", list(bt.DATASETS))
def test_committed_run_fsq_step_time_at_1k_no_slower_than_the_peers(dataset):
    assert _comparison(dataset, 1024)["step_time_over_peer"]["FSQ"] <= 1.0
