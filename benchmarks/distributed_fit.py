"""`vqkit fit` in one process vs. `torchrun --nproc_per_node 2 -m vqkit fit`, same global batch.

Data: 20 000 random 4x4 patches (16-d, pixel values in [0, 1]) of the Fashion-MNIST training
images (Debian package fashion-mnist). Each quantizer is trained twice with the same seed and
the same global batch: one process with ``--batch 2B``, and two gloo processes with
``--batch B`` each (DDP-style gradient averaging, EMA statistics all-reduced). Writes
``results/distributed_fit.json`` with the final MSE/SNR/usage on all patches and the wall
times (measured on a shared, loaded 2-core machine: timings are indicative only; each process
uses 1 thread).

    .venv/bin/python benchmarks/distributed_fit.py            # about 2 minutes
    .venv/bin/python benchmarks/distributed_fit.py --table    # the table in docs/distributed.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vqkit.data.fashion_mnist import load_fashion_mnist
from vqkit.training.provenance import Run, write_json
from vqkit.training.source_state import DirtyTreeError

RESULT = Path("results/distributed_fit.json")
CONFIGS = {
    "vq-nsvq": ["--quantizer", "vq", "--bits", "6", "--estimator", "nsvq"],
    "rvq-ema": ["--quantizer", "rvq", "--num-codebooks", "2", "--bits", "5", "--learning", "ema",
                "--estimator", "ste"],
}


def patches(n: int, seed: int) -> np.ndarray:
    images, _ = load_fashion_mnist("train")
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(0, images.shape[0], (n,), generator=g)
    rows = torch.randint(0, 25, (n,), generator=g)
    cols = torch.randint(0, 25, (n,), generator=g)
    out = np.empty((n, 16), dtype=np.float32)
    for i, (k, r, c) in enumerate(zip(which.tolist(), rows.tolist(), cols.tolist(), strict=True)):
        out[i] = images[k, r : r + 4, c : c + 4].reshape(-1) / 255.0
    return out


def fit(data: Path, work: Path, name: str, procs: int, batch: int, steps: int, seed: int) -> dict:
    tag = f"{name}-{procs}proc"
    args = ["-m", "vqkit", "fit", str(data), *CONFIGS[name], "--steps", str(steps),
            "--batch", str(batch), "--lr", "0.003", "--seed", str(seed), "--threads", "1", "-q",
            "-o", str(work / f"{tag}.ckpt"), "--json", str(work / f"{tag}.json")]
    if procs == 1:
        cmd = [sys.executable, *args]
    else:
        torchrun = Path(sys.executable).parent / "torchrun"
        cmd = [str(torchrun), "--standalone", "--nproc_per_node", str(procs), *args]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - start
    record = json.loads((work / f"{tag}.json").read_text())["results"]
    final = record["final"]
    return {
        "quantizer": name, "processes": procs, "batch_per_process": batch,
        "global_batch": batch * procs, "steps": steps,
        "mse": final["mse"], "snr_db": final["snr_db"], "usage": final["usage"],
        "perplexity": final["perplexity"], "train_seconds": record["train_seconds"],
        "wall_seconds_incl_startup": round(wall, 2),
        "command": " ".join(["torchrun" if procs > 1 else "python", *cmd[1:]]).replace(
            f"{work}{os.sep}", ""),
    }


def table(path: Path = RESULT) -> str:
    """The Markdown table of docs/distributed.md, from the results JSON."""
    record = json.loads(path.read_text())
    res = record["results"]
    lines = [
        f"{res['data']}; {res['runs'][0]['steps']} steps, seed {record['seeds'][0]}, "
        f"{res['threads_per_process']} thread per process, git {str(record['git_commit'])[:7]}; "
        f"load average {res['load_average_1min_end']:.0f} on 2 shared cores at the end, so the "
        "times are indicative only.",
        "",
        "| quantizer | processes x batch | MSE (all patches) | SNR dB | perplexity "
        "| train s | wall s incl. start-up |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in res["runs"]:
        lines.append(
            f"| {r['quantizer']} | {r['processes']} x {r['batch_per_process']} | {r['mse']:.4f} "
            f"| {r['snr_db']:.2f} | {r['perplexity']:.1f} | {r['train_seconds']:.1f} "
            f"| {r['wall_seconds_incl_startup']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--allow-dirty", action="store_true",
                        help="run even if the source tree has uncommitted changes "
                        "(recorded as dirty)")
    parser.add_argument("--table", action="store_true",
                        help="print the Markdown table of the existing results and exit")
    args = parser.parse_args()
    if args.table:
        print(table(args.out))
        return
    torch.set_num_threads(1)
    try:
        run = Run(seeds=[args.seed], allow_dirty=args.allow_dirty)
    except DirtyTreeError as err:
        parser.error(str(err))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "patches.npy"
        np.save(data, patches(20000, args.seed))
        for name in CONFIGS:
            for procs, batch in ((1, 512), (2, 256)):
                rows.append(fit(data, work, name, procs, batch, args.steps, args.seed))
                print(json.dumps(rows[-1]))
    write_json(args.out, run.record({
        "data": "20000 random 4x4 Fashion-MNIST training patches / 255 (16-d)",
        "threads_per_process": 1, "load_average_1min_end": os.getloadavg()[0],
        "runs": rows,
    }))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
