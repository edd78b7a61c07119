"""Speed and peak memory of one VQ training step: vqkit against vector-quantize-pytorch.

For each (N, D, K) and thread count, times one forward + backward pass in training mode of

- vqkit ``VectorQuantizer`` with STE + ``EMA(decay=0.99)``, and with NSVQ (gradient codebook);
- vector-quantize-pytorch ``VectorQuantize`` with comparable settings (EMA decay 0.99,
  rotation trick off) and with its defaults (decay 0.8, rotation trick on);
- the bare distance matmul + argmin over the full N x K matrix (one ``addmm`` of
  ``||c||^2 - 2 x.c``, then ``argmin``; forward only, no training bookkeeping): the floor any
  exact VQ layer has to pay.

Each case runs in a fresh subprocess, all in the same run: peak memory is the rise of the
peak resident set size (VmHWM) during the first step over the resident size after the inputs
and the module were built; the time is the median of the following ``--repeats`` steps. Each
subprocess runs under an address-space limit (``--memory-limit-gib``, default 20 GiB of the
machine's 24), so a case that needs more fails with a recorded "out of memory" instead of
waking the kernel's OOM killer.

Usage: ``python benchmarks/layer_speed.py [--quick] [--out results/bench_layer.json]``
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

SHAPES = [(16384, 64, 1024), (16384, 64, 8192), (65536, 64, 16384)]
QUICK_SHAPES = [(4096, 32, 512), (4096, 32, 2048)]
IMPLS = ["vqkit STE+EMA", "vqkit NSVQ", "VQP EMA 0.99, no rotation", "VQP defaults",
         "bare matmul+argmin"]


def build(impl: str, n: int, d: int, k: int):
    """Return a zero-argument callable running one training step of ``impl``."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g)
    if impl.startswith("vqkit"):
        from vqkit import EMA, NoiseSubstitution, StraightThrough, VectorQuantizer

        if impl == "vqkit STE+EMA":
            vq = VectorQuantizer(d, k, estimator=StraightThrough(), learning=EMA(decay=0.99))
        else:
            vq = VectorQuantizer(d, k, estimator=NoiseSubstitution())
        with torch.no_grad():  # a codebook of data points: every configuration starts alike
            vq.codebook.codewords.copy_(x[torch.randperm(n, generator=g)[:k]])
        xin = x.clone().requires_grad_()

        def step():
            out = vq(xin)
            (out.quantized.sum() + out.loss).backward()

        return step
    if impl.startswith("VQP"):
        from vector_quantize_pytorch import VectorQuantize

        if impl == "VQP defaults":
            vq = VectorQuantize(dim=d, codebook_size=k)
        else:
            vq = VectorQuantize(dim=d, codebook_size=k, decay=0.99, rotation_trick=False)
        vq.train()
        with torch.no_grad():
            vq._codebook.embed.copy_(x[torch.randperm(n, generator=g)[:k]][None])
        xin = x[None].clone().requires_grad_()

        def step():
            quantized, _, loss = vq(xin)
            (quantized.sum() + loss.sum()).backward()

        return step
    if impl == "bare matmul+argmin":
        c = x[torch.randperm(n, generator=g)[:k]].clone()

        def step():
            with torch.no_grad():
                torch.addmm(c.pow(2).sum(1), x, c.t(), alpha=-2.0).argmin(dim=1)

        return step
    raise ValueError(f"unknown implementation {impl!r}")


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_child(impl: str, n: int, d: int, k: int, threads: int, repeats: int,
                  limit_gib: float) -> None:
    """Run in a fresh process: peak memory of the first step, then the median step time."""
    resource.setrlimit(resource.RLIMIT_AS, (int(limit_gib * 2**30),) * 2)
    torch.set_num_threads(threads)
    try:
        step = build(impl, n, d, k)
        base = _status("VmRSS")
        step()
        peak = _status("VmHWM") - base
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
    except (RuntimeError, MemoryError) as err:  # allocation refused under the address limit
        print(json.dumps({"error": f"out of memory under the {limit_gib:g} GiB limit: "
                                   f"{str(err).splitlines()[0][:120]}"}))
        return
    print(json.dumps({"seconds": statistics.median(times), "peak_bytes": peak}))


def measure(impl: str, n: int, d: int, k: int, threads: int, repeats: int,
            limit_gib: float) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", impl, str(n), str(d), str(k), str(threads),
         str(repeats), str(limit_gib)],
        capture_output=True, text=True,
    )
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return {"error": f"child exited with {out.returncode}: {out.stderr.strip()[-200:]}"}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small shapes (a smoke run)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("results/bench_layer.json"))
    p.add_argument("--memory-limit-gib", type=float, default=20.0,
                   help="address-space limit of each measurement process (default 20)")
    p.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        impl, n, d, k, t, r, lim = args.child
        measure_child(impl, int(n), int(d), int(k), int(t), int(r), float(lim))
        return 0

    from vqkit.training.provenance import Run, write_json

    run = Run(seeds=[0])
    rows = []
    for n, d, k in QUICK_SHAPES if args.quick else SHAPES:
        for threads in args.threads:
            torch.set_num_threads(threads)
            for impl in IMPLS:
                got = measure(impl, n, d, k, threads, args.repeats, args.memory_limit_gib)
                rows.append({"N": n, "D": d, "K": k, "threads": threads, "impl": impl, **got})
                shown = got.get("error") or (
                    f"{got['seconds'] * 1e3:9.1f} ms  peak {got['peak_bytes'] / 2**20:8.1f} MiB")
                print(f"N={n:>6} D={d} K={k:>6} threads={threads} {impl:<28} {shown}",
                      flush=True)
    ratios = []
    for n, d, k in QUICK_SHAPES if args.quick else SHAPES:
        for threads in args.threads:
            sel = {r["impl"]: r for r in rows if (r["N"], r["K"], r["threads"]) == (n, k, threads)}
            ours, peer = sel["vqkit STE+EMA"], sel["VQP EMA 0.99, no rotation"]
            failed = [i for i, r in sel.items() if "error" in r]
            if failed:
                ratios.append({"N": n, "D": d, "K": k, "threads": threads,
                               "not_measured": {i: sel[i]["error"] for i in failed}})
                print(f"N={n} K={k} threads={threads}: no ratio, failed: {failed}", flush=True)
                continue
            ratios.append({
                "N": n, "D": d, "K": k, "threads": threads,
                "speedup_vs_vqp": peer["seconds"] / ours["seconds"],
                "speedup_vs_vqp_defaults": sel["VQP defaults"]["seconds"] / ours["seconds"],
                "memory_ratio_vs_vqp": ours["peak_bytes"] / max(peer["peak_bytes"], 1),
                "time_over_bare_matmul": ours["seconds"] / sel["bare matmul+argmin"]["seconds"],
                "nsvq_time_over_bare_matmul":
                    sel["vqkit NSVQ"]["seconds"] / sel["bare matmul+argmin"]["seconds"],
            })
            r = ratios[-1]
            print(f"N={n} K={k} threads={threads}: vqkit STE+EMA is {r['speedup_vs_vqp']:.2f}x "
                  f"faster than VQP (EMA 0.99, no rotation), {r['speedup_vs_vqp_defaults']:.2f}x "
                  f"than VQP defaults, uses {r['memory_ratio_vs_vqp']:.3f}x its peak memory, "
                  f"and takes {r['time_over_bare_matmul']:.2f}x the bare matmul+argmin "
                  f"(NSVQ {r['nsvq_time_over_bare_matmul']:.2f}x)", flush=True)
    import vector_quantize_pytorch

    peer_version = getattr(vector_quantize_pytorch, "__version__", None)
    if peer_version is None:
        from importlib.metadata import version

        peer_version = version("vector-quantize-pytorch")
    write_json(args.out, run.record({"rows": rows, "ratios": ratios},
                                    peer={"vector-quantize-pytorch": peer_version},
                                    quick=args.quick, repeats=args.repeats))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
