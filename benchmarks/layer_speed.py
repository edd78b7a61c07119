"""Speed and peak memory of one VQ training step: vqkit against vector-quantize-pytorch.

For each (N, D, K) and thread count, times one forward + backward pass in training mode of

- vqkit ``VectorQuantizer`` with STE + ``EMA(decay=0.99)``, and with NSVQ (gradient codebook);
- vector-quantize-pytorch ``VectorQuantize`` with comparable settings (EMA decay 0.99,
  rotation trick off) and with its defaults (decay 0.8, rotation trick on);
- the bare distance matmul + argmin over the full N x K matrix (one ``addmm`` of
  ``||c||^2 - 2 x.c``, then ``argmin``; forward only, no training bookkeeping): the floor any
  exact VQ layer has to pay.

On the CPU (the default) each case runs in a fresh subprocess, all in the same run: peak memory
is the rise of the peak resident set size (VmHWM) during the first step over the resident size
after the inputs and the module were built; the time is the median of the following
``--repeats`` steps. Each subprocess runs under an address-space limit (``--memory-limit-gib``,
default 20 GiB of the machine's 24), so a case that needs more fails with a recorded "out of
memory" instead of waking the kernel's OOM killer.

On a GPU (``--device cuda``) the cases run one after another in this process: peak memory is
``torch.cuda.max_memory_allocated`` during the first step minus the memory allocated after the
inputs and the module were built (the caching allocator's statistics, reset per case), and
each timed step is bracketed by ``torch.cuda.synchronize``. ``--threads`` does not apply.

``--dtype bfloat16`` feeds bf16 inputs and runs every step under
``torch.autocast(dtype=torch.bfloat16)`` with fp32 parameters (mixed-precision training as it
is usually done); ``float32`` is plain fp32. Several dtypes can be given; each row records its
device and dtype, and the JSON records the device, the dtypes and the GPU's name.

``--scalar`` times the implicit-codebook layers instead, each beside the peer's same layer
configured as its README shows: vqkit ``FSQ`` against vector-quantize-pytorch ``FSQ``
(levels 8-5-5-5, without and with the 64 -> 4 -> 64 projections) and vqkit ``LFQ`` (STE,
entropy penalty weight 0.1) against ``LFQ(entropy_loss_weight=0.1, diversity_gamma=1.0)``, at
``--tokens`` vectors (65,536 by default), one forward + backward in training mode.

Usage: ``python benchmarks/layer_speed.py [--quick] [--out results/bench_layer.json]``;
``python benchmarks/layer_speed.py --scalar --threads 1 --out results/bench_layer_fsq_lfq.json``;
on a GPU e.g. ``python benchmarks/layer_speed.py --device cuda --dtype float32 bfloat16
--shapes 65536x64x16384,65536x256x65536 --out results/gpu_bench_layer.json``.
"""

from __future__ import annotations

import argparse
import gc
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
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
#: --scalar: the (layer, input D) pairs timed, each as "vqkit <layer>" and "VQP <layer>".
SCALAR_LAYERS = [("FSQ 8-5-5-5", 4), ("FSQ 8-5-5-5", 64), ("LFQ 2^10", 10), ("LFQ 2^10", 64)]
CPU = torch.device("cpu")


def parse_shapes(text: str) -> list[tuple[int, int, int]]:
    """``"65536x64x16384,65536x256x65536"`` -> ``[(N, D, K), ...]`` (argparse type)."""
    shapes = []
    for part in text.split(","):
        fields = part.strip().lower().split("x")
        try:
            shape = tuple(int(f) for f in fields)
        except ValueError:
            shape = ()
        if len(shape) != 3 or min(shape) < 1:
            raise argparse.ArgumentTypeError(
                f"shapes must be NxDxK[,NxDxK...] with positive integers, got {part.strip()!r}")
        shapes.append(shape)
    return shapes


def build(impl: str, n: int, d: int, k: int, device: torch.device = CPU,
          dtype: torch.dtype = torch.float32):
    """Return a zero-argument callable running one training step of ``impl`` on ``device``.

    The data are the same CPU draws on every device; a bf16 step takes bf16 inputs and runs
    under bf16 autocast with fp32 parameters.
    """
    step = _build(impl, n, d, k, device, dtype)
    if dtype == torch.float32:
        return step

    def autocast_step():
        with torch.autocast(device_type=device.type, dtype=dtype):
            step()

    return autocast_step


def _build_scalar(impl: str, n: int, d: int, device: torch.device, dtype: torch.dtype):
    """One training step of an implicit-codebook layer: ``"vqkit <layer>"`` or ``"VQP
    <layer>"`` with ``<layer>`` a first item of :data:`SCALAR_LAYERS`, on ``(n, d)`` inputs."""
    side, layer = impl.split(" ", 1)
    x = torch.randn(1, n, d, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)  # the projections' initial weights
    if side == "vqkit":
        from vqkit import FSQ, LFQ

        q = FSQ(d, (8, 5, 5, 5)) if layer.startswith("FSQ") else LFQ(d, 2**10)
    else:
        from vector_quantize_pytorch import FSQ as PeerFSQ
        from vector_quantize_pytorch import LFQ as PeerLFQ

        q = (PeerFSQ(levels=[8, 5, 5, 5], dim=d) if layer.startswith("FSQ") else
             PeerLFQ(codebook_size=2**10, dim=d, entropy_loss_weight=0.1, diversity_gamma=1.0))
    q = q.to(device).train()
    xin = x.to(device, dtype).clone().requires_grad_()

    def step():
        out = q(xin)
        if side == "vqkit":
            (out.quantized.sum() + out.loss).backward()
        elif layer.startswith("FSQ"):
            out[0].sum().backward()
        else:
            (out[0].sum() + out[2]).backward()

    return step


def _build(impl: str, n: int, d: int, k: int, device: torch.device, dtype: torch.dtype):
    if impl.split(" ", 1)[-1] in {layer for layer, _ in SCALAR_LAYERS}:
        return _build_scalar(impl, n, d, device, dtype)
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
        vq = vq.to(device)
        xin = x.to(device, dtype).clone().requires_grad_()

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
        vq = vq.to(device)
        xin = x[None].to(device, dtype).clone().requires_grad_()

        def step():
            quantized, _, loss = vq(xin)
            (quantized.sum() + loss.sum()).backward()

        return step
    if impl == "bare matmul+argmin":
        c = x[torch.randperm(n, generator=g)[:k]].to(device)
        x = x.to(device, dtype)

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
                  limit_gib: float, dtype: str = "float32") -> None:
    """Run in a fresh process: peak memory of the first step, then the median step time."""
    resource.setrlimit(resource.RLIMIT_AS, (int(limit_gib * 2**30),) * 2)
    torch.set_num_threads(threads)
    try:
        step = build(impl, n, d, k, dtype=DTYPES[dtype])
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
            limit_gib: float, dtype: str = "float32") -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", impl, str(n), str(d), str(k), str(threads),
         str(repeats), str(limit_gib), dtype],
        capture_output=True, text=True,
    )
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return {"error": f"child exited with {out.returncode}: {out.stderr.strip()[-200:]}"}
    return json.loads(lines[-1])


def _release(device: torch.device) -> None:
    gc.collect()
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()


def measure_cuda(impl: str, n: int, d: int, k: int, repeats: int, device: torch.device,
                 dtype: torch.dtype) -> dict:
    """In this process on a CUDA device: the rise of allocated memory during the first step
    (which also warms up the kernels) and the median time of the following synchronised steps."""
    _release(device)
    try:
        step = build(impl, n, d, k, device, dtype)
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - base
        times = []
        for _ in range(repeats):
            torch.cuda.synchronize(device)
            t = time.perf_counter()
            step()
            torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t)
    except torch.cuda.OutOfMemoryError as err:
        return {"error": f"out of memory on {device}: {str(err).splitlines()[0][:120]}"}
    except Exception as err:  # a peer that cannot run this configuration: record, go on
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"}
    finally:
        step = None
        _release(device)
    return {"seconds": statistics.median(times), "peak_bytes": peak}


def _warm_up(device: torch.device, dtype: torch.dtype) -> None:
    """Create the cuBLAS handle and workspace before the first case, so that its memory is
    not charged to whichever case happens to run first."""
    a = torch.ones(64, 64, device=device)
    with torch.autocast(device_type="cuda", dtype=dtype, enabled=dtype != torch.float32):
        (a @ a).sum().item()


def _peer_version() -> str:
    import vector_quantize_pytorch

    version = getattr(vector_quantize_pytorch, "__version__", None)
    if version is None:
        from importlib.metadata import version as installed

        version = installed("vector-quantize-pytorch")
    return version


def scalar_main(args: argparse.Namespace) -> int:
    """``--scalar``: vqkit FSQ / LFQ beside the peer's, on the CPU, one process per case."""
    from vqkit.training.provenance import Run, write_json
    from vqkit.training.source_state import DirtyTreeError

    try:
        run = Run(seeds=[0], allow_dirty=args.allow_dirty)
    except DirtyTreeError as err:
        print(f"layer_speed.py: error: {err}", file=sys.stderr)
        return 2
    rows, ratios = [], []
    for dtype in args.dtype:
        for threads in args.threads:
            for layer, d in SCALAR_LAYERS:
                got = {}
                for side in ("vqkit", "VQP"):
                    impl = f"{side} {layer}"
                    got[side] = measure(impl, args.tokens, d, 0, threads, args.repeats,
                                        args.memory_limit_gib, dtype)
                    rows.append({"N": args.tokens, "D": d, "layer": layer, "threads": threads,
                                 "dtype": dtype, "impl": impl, **got[side]})
                    shown = got[side].get("error") or (
                        f"{got[side]['seconds'] * 1e3:9.1f} ms  peak "
                        f"{got[side]['peak_bytes'] / 2**20:8.1f} MiB")
                    print(f"N={args.tokens} D={d:>3} threads={threads} {dtype} {impl:<18} "
                          f"{shown}", flush=True)
                if any("error" in r for r in got.values()):
                    continue
                ratio = got["vqkit"]["seconds"] / got["VQP"]["seconds"]
                ratios.append({"N": args.tokens, "D": d, "layer": layer, "threads": threads,
                               "dtype": dtype, "time_over_vqp": ratio,
                               "memory_ratio_vs_vqp": got["vqkit"]["peak_bytes"]
                               / max(got["VQP"]["peak_bytes"], 1)})
                print(f"  {layer} D={d}: vqkit takes {ratio:.2f}x the peer's time", flush=True)
    out = args.out if args.out != Path("results/bench_layer.json") else Path(
        "results/bench_layer_fsq_lfq.json")
    write_json(out, run.record(
        {"rows": rows, "ratios": ratios}, peer={"vector-quantize-pytorch": _peer_version()},
        repeats=args.repeats, device="cpu", dtypes=args.dtype, tokens=args.tokens,
    ))
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small shapes (a smoke run)")
    p.add_argument("--shapes", type=parse_shapes, default=None,
                   help="NxDxK[,NxDxK...], e.g. 65536x64x16384,65536x256x65536 "
                        "(default: the standard shapes, or the quick ones with --quick)")
    p.add_argument("--device", default="cpu",
                   help="cpu (default; one subprocess per case) or cuda[:i]")
    p.add_argument("--dtype", nargs="+", choices=sorted(DTYPES), default=["float32"],
                   help="float32 (default) and/or bfloat16 (bf16 inputs under bf16 autocast)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                   help="CPU thread counts (CPU only)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("results/bench_layer.json"))
    p.add_argument("--memory-limit-gib", type=float, default=20.0,
                   help="address-space limit of each measurement process (default 20; CPU only)")
    p.add_argument("--scalar", action="store_true",
                   help="time FSQ and LFQ beside the peer's FSQ and LFQ instead (see above)")
    p.add_argument("--tokens", type=int, default=65536, help="--scalar: vectors per step")
    p.add_argument("--allow-dirty", action="store_true",
                   help="run even if the source tree has uncommitted changes (recorded as dirty)")
    p.add_argument("--child", nargs=8, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        impl, n, d, k, t, r, lim, dt = args.child
        measure_child(impl, int(n), int(d), int(k), int(t), int(r), float(lim), dt)
        return 0
    if args.scalar:
        return scalar_main(args)
    try:
        device = torch.device(args.device)
    except RuntimeError as err:
        p.error(f"--device: {err}")
    if device.type not in ("cpu", "cuda"):
        p.error(f"--device must be cpu or cuda[:i], got {args.device!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {args.device} was given but torch.cuda.is_available() is False "
                f"(torch {torch.__version__})")
    on_gpu = device.type == "cuda"

    from vqkit.training.provenance import Run, write_json
    from vqkit.training.source_state import DirtyTreeError

    try:
        run = Run(seeds=[0], allow_dirty=args.allow_dirty)
    except DirtyTreeError as err:
        print(f"layer_speed.py: error: {err}", file=sys.stderr)
        return 2
    shapes = args.shapes or (QUICK_SHAPES if args.quick else SHAPES)
    # On a GPU the thread count does not matter: one entry, the process's.
    thread_counts = [torch.get_num_threads()] if on_gpu else args.threads
    rows = []
    for dtype in args.dtype:
        if on_gpu:
            _warm_up(device, DTYPES[dtype])
        for n, d, k in shapes:
            for threads in thread_counts:
                if not on_gpu:
                    torch.set_num_threads(threads)
                for impl in IMPLS:
                    if on_gpu:
                        got = measure_cuda(impl, n, d, k, args.repeats, device, DTYPES[dtype])
                    else:
                        got = measure(impl, n, d, k, threads, args.repeats,
                                      args.memory_limit_gib, dtype)
                    rows.append({"N": n, "D": d, "K": k, "threads": threads, "dtype": dtype,
                                 "impl": impl, **got})
                    shown = got.get("error") or (
                        f"{got['seconds'] * 1e3:9.1f} ms  peak "
                        f"{got['peak_bytes'] / 2**20:8.1f} MiB")
                    print(f"N={n:>6} D={d} K={k:>6} threads={threads} {dtype} {impl:<28} "
                          f"{shown}", flush=True)
    ratios = []
    for dtype in args.dtype:
        for n, d, k in shapes:
            for threads in thread_counts:
                key = (n, d, k, threads, dtype)
                sel = {r["impl"]: r for r in rows
                       if (r["N"], r["D"], r["K"], r["threads"], r["dtype"]) == key}
                ours, peer = sel["vqkit STE+EMA"], sel["VQP EMA 0.99, no rotation"]
                failed = [i for i, r in sel.items() if "error" in r]
                if failed:
                    ratios.append({"N": n, "D": d, "K": k, "threads": threads, "dtype": dtype,
                                   "not_measured": {i: sel[i]["error"] for i in failed}})
                    print(f"N={n} D={d} K={k} threads={threads} {dtype}: no ratio, failed: "
                          f"{failed}", flush=True)
                    continue
                bare = sel["bare matmul+argmin"]["seconds"]
                ratios.append({
                    "N": n, "D": d, "K": k, "threads": threads, "dtype": dtype,
                    "speedup_vs_vqp": peer["seconds"] / ours["seconds"],
                    "speedup_vs_vqp_defaults": sel["VQP defaults"]["seconds"] / ours["seconds"],
                    "memory_ratio_vs_vqp": ours["peak_bytes"] / max(peer["peak_bytes"], 1),
                    "time_over_bare_matmul": ours["seconds"] / bare,
                    "nsvq_time_over_bare_matmul": sel["vqkit NSVQ"]["seconds"] / bare,
                })
                r = ratios[-1]
                print(f"N={n} D={d} K={k} threads={threads} {dtype}: vqkit STE+EMA is "
                      f"{r['speedup_vs_vqp']:.2f}x faster than VQP (EMA 0.99, no rotation), "
                      f"{r['speedup_vs_vqp_defaults']:.2f}x than VQP defaults, uses "
                      f"{r['memory_ratio_vs_vqp']:.3f}x its peak memory, and takes "
                      f"{r['time_over_bare_matmul']:.2f}x the bare matmul+argmin "
                      f"(NSVQ {r['nsvq_time_over_bare_matmul']:.2f}x)", flush=True)
    write_json(args.out, run.record(
        {"rows": rows, "ratios": ratios},
        peer={"vector-quantize-pytorch": _peer_version()},
        quick=args.quick, repeats=args.repeats, device=str(device), dtypes=args.dtype,
        gpu_name=torch.cuda.get_device_name(device) if on_gpu else None,
        cuda=torch.version.cuda if on_gpu else None,
    ))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
