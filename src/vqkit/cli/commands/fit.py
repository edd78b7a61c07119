"""``vqkit fit``: train a quantizer on a file of vectors and write a checkpoint."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ...registry import ESTIMATORS, LEARNINGS, PARAMETERISATIONS, QUANTIZERS
from ...training.threads import add_threads, set_threads
from ._common import bits_int, nonnegative_int, positive_int, print_table, vectors_help

NAME = "fit"
HELP = "train a quantizer (VQ, RVQ, PVQ, AVQ, SFVQ) on vectors from .npy/.pt/.csv"
DESCRIPTION = """\
Train a quantizer on the rows of a vectors file (.npy, .pt or .csv, shape (N, D)), or of an
installed data set named instead of a file, to minimise the quantization error, and write a
checkpoint that `vqkit encode/decode/eval/info` read and `vqkit fit --resume` continues
bit-identically. Progress bars show the k-means initialisation and the training: loss, MSE
(mean squared error per vector) and codebook usage. At the end the MSE, SNR, usage,
perplexity and bits per vector of the whole data set are printed.

Under torchrun (`torchrun --nproc_per_node 2 -m vqkit fit ...`) every rank trains on its
shard of the data, gradients are averaged, and rank 0 writes the outputs.

examples:
  vqkit fit vectors.npy --quantizer vq --bits 8 --steps 2000 -o vq.ckpt
  vqkit fit vectors.npy --quantizer rvq --num-codebooks 8 --bits 8 --threads 2
  vqkit fit vectors.npy --resume vq.ckpt --steps 4000
  vqkit fit glove-6b-50d --quantizer rvq --num-codebooks 8 --bits 8 -o glove-rvq.ckpt
"""

#: Settings that define the run; fixed once it started (a resume must not change them).
FIXED_DEFAULTS: dict[str, Any] = {
    "quantizer": "vq", "estimator": "nsvq", "learning": "gradient", "ema_decay": 0.99,
    "codebook_size": 256, "num_codebooks": None, "init": "kmeans", "init_samples": 20000,
    "batch": 1024, "lr": 1e-3, "replace_every": 0, "replace_threshold": 0.01,
    "log_every": 50, "seed": 0, "initial_size": None, "expand_every": 0, "levels": None,
    "codebook": "direct", "codebook_dim": None, "beam": None,
}
STEPS_DEFAULT = 1000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help=vectors_help("vectors (N, D)"))
    q = p.add_argument_group("quantizer (fixed when resuming)")
    q.add_argument("--quantizer",
                   help="quantizer family (default vq): "
                   + ", ".join(f"{a} = {n}" for a, n in QUANTIZERS.aliases().items())
                   + " (or a class name)")
    q.add_argument("--estimator", help=f"gradient estimator: {', '.join(ESTIMATORS.aliases())} "
                   "(default nsvq)")
    q.add_argument("--learning", choices=list(LEARNINGS.aliases()),
                   help="how codebooks learn (default gradient)")
    q.add_argument("--ema-decay", type=float, help="EMA decay (default 0.99)")
    size = q.add_mutually_exclusive_group()
    size.add_argument("--codebook-size", type=positive_int, help="K per codebook (default 256)")
    size.add_argument("--bits", type=bits_int, help="log2 K per codebook, K = 2**bits, at most 30 "
                      "(default: --codebook-size's)")
    q.add_argument("--levels", type=positive_int, nargs="+",
                   help="fsq/rfsq: levels per channel, e.g. 8 5 5 5 (prod(levels) codes; "
                   "instead of --bits; default: none, required by fsq/rfsq); lfq/bsq take "
                   "--bits = code bits")
    q.add_argument("--codebook", choices=list(PARAMETERISATIONS.aliases()),
                   help="codebook parameterisation of vq/pvq (rvq/avq: direct, simvq): a free "
                   "matrix (default direct), simvq = linear (frozen basis times a learned map), "
                   "cosine (l2-normalised codes and inputs), factorised (search in "
                   "--codebook-dim dimensions)")
    q.add_argument("--codebook-dim", type=positive_int,
                   help="factorised: d of the low-dimensional codes (default 8)")
    q.add_argument("--beam", type=positive_int,
                   help="rvq/avq: beam width of the encoder, in training and encoding "
                   "(default: rvq greedy = 1, avq 8; FAISS's max_beam_size)")
    q.add_argument("--num-codebooks", type=positive_int,
                   help="M codebooks for rvq/pvq/avq (default 4; 1 for vq/sfvq)")
    q.add_argument("--init", choices=["kmeans", "random"],
                   help="codebook start: k-means on a sample of the data (default) or random")
    q.add_argument("--init-samples", type=positive_int,
                   help="vectors drawn for the k-means initialisation (default 20000)")
    q.add_argument("--initial-size", type=positive_int,
                   help="sfvq: corner points at the start (default: --codebook-size)")
    q.add_argument("--expand-every", type=nonnegative_int,
                   help="sfvq: double the corner points every N steps until --codebook-size "
                   "(the paper's growth; default 0 = never)")
    t = p.add_argument_group("training")
    t.add_argument("--steps", type=positive_int,
                   help=f"total optimizer steps (default {STEPS_DEFAULT}; may grow on resume)")
    t.add_argument("--batch", type=positive_int, help="vectors per step and rank (default 1024)")
    t.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    t.add_argument("--replace-every", type=nonnegative_int,
                   help="replace dead codewords every N steps (default 0 = never)")
    t.add_argument("--replace-threshold", type=float,
                   help="dead = picked in fewer than this fraction of batches (default 0.01)")
    t.add_argument("--log-every", type=positive_int, help="steps per progress update (default 50)")
    t.add_argument("--seed", type=int, help="random seed (default 0)")
    add_threads(t)
    t.add_argument("--device", help="cpu or cuda (default: the GPU if there is one)")
    o = p.add_argument_group("outputs")
    o.add_argument("-o", "--out", help="checkpoint to write (default <data>.<quantizer>.ckpt; "
                   "the --resume file when resuming)")
    o.add_argument("--resume", metavar="CHECKPOINT",
                   help="continue this checkpoint's run (default: start a new run)")
    o.add_argument("--checkpoint-every", type=nonnegative_int, default=0,
                   help="also write the checkpoint every N steps, 0 = only at the end "
                   "(default: %(default)s)")
    o.add_argument("--json", metavar="PATH",
                   help="write the results with provenance as JSON (default: none written)")
    o.add_argument("--plot", metavar="PNG",
                   help="write training curves (needs matplotlib; default: no plot)")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _settings(args: argparse.Namespace, saved: dict[str, Any] | None) -> dict[str, Any]:
    """Merge the command line with the defaults, or with a resumed run's saved settings."""
    given = {k: getattr(args, k) for k in FIXED_DEFAULTS if getattr(args, k, None) is not None}
    if args.bits is not None:
        given["codebook_size"] = 2 ** args.bits
    if saved is None:
        from ...quantizers.build import build_parameterisation, quantizer_class, takes_argument
        from ...space_filling import SpaceFillingVQ

        settings = {**FIXED_DEFAULTS, **given}
        kind = quantizer_class(settings["quantizer"])  # ValueError naming the known names
        ESTIMATORS.lookup(settings["estimator"])
        if settings["num_codebooks"] is None:
            settings["num_codebooks"] = 4 if takes_argument(kind, "num_codebooks") else 1
        if takes_argument(kind, "levels") and "codebook_size" in given:
            raise ValueError("--bits/--codebook-size do not apply to fsq/rfsq: the codebook "
                             "has prod(--levels) entries")
        curve = issubclass(kind, SpaceFillingVQ)
        if not curve and (settings["initial_size"] or settings["expand_every"]):
            raise ValueError("--initial-size and --expand-every apply to --quantizer sfvq only")
        if curve and settings["replace_every"]:
            raise ValueError("--replace-every does not apply to --quantizer sfvq: a curve's "
                             "corner points have no usage counts to find dead ones by")
        if settings["replace_every"]:  # SimVQ refuses now, not at the first replacement
            build_parameterisation(settings["codebook"], settings["codebook_dim"]
                                   ).check_rows_writable()
    else:
        settings = {k: saved.get(k, FIXED_DEFAULTS[k]) for k in FIXED_DEFAULTS}
        for key, value in given.items():
            if value != settings[key]:
                raise ValueError(
                    f"--{key.replace('_', '-')} {value} differs from the resumed run's "
                    f"{settings[key]}; leave it out when resuming"
                )
    steps = args.steps if args.steps is not None else (saved or {}).get("steps", STEPS_DEFAULT)
    settings["steps"] = int(steps)
    return settings


def _fingerprint(path: str, x: Any) -> dict[str, Any]:
    digest = hashlib.sha256(x.contiguous().numpy().tobytes()).hexdigest()
    return {"path": str(path), "shape": list(x.shape), "sha256": digest}


def _sizes(args: argparse.Namespace) -> str:
    """The size options of the command line, for an out-of-memory error."""
    names = ("codebook_size", "bits", "levels", "num_codebooks", "codebook_dim", "batch")
    options = vars(args)
    given = [f"--{k.replace('_', '-')} {options[k]}" for k in names
             if options.get(k) is not None]
    return ", ".join(given) or "default sizes"


def run(args: argparse.Namespace) -> int:
    """Train the quantizer the options describe on ``args.data`` (or continue ``--resume``)
    and write its checkpoint (and the ``--json`` results, the ``--plot`` curves).

    Raises:
        FileNotFoundError / IsADirectoryError: DATA or the ``--resume`` checkpoint is missing
            or a directory.
        ValueError: ``--threads < 1``; a bad torchrun environment or ``--device``; DATA is
            unreadable or holds no vectors, NaN or Inf; an unknown quantizer or estimator
            name; options that do not apply to the quantizer; or, resuming, other data, other
            settings or fewer ``--steps`` than the checkpoint has taken, or vectors of another
            dimension than its quantizer's; or training made the loss or the codewords
            non-finite (the step is named); the sizes would take more memory than
            ``_budget.MAX_FIT_BYTES`` (4 GiB), or an allocation failed (the sizes are named).
        ValueError / OSError: an output (``-o``, ``--json``, ``--plot``) is the data file, not a
            regular file, in a missing or read-only folder (checked before training), or
            cannot be written (a full disk).
        ImportError: ``--plot`` without matplotlib.
    """
    from ...training import ddp

    set_threads(args.threads)
    info = ddp.setup_from_env(device=args.device)
    try:
        return _fit(args, info)
    except (MemoryError, RuntimeError) as err:
        if isinstance(err, RuntimeError) and "allocate" not in str(err):
            raise
        raise ValueError(f"fit ran out of memory ({_sizes(args)}): "
                         f"{str(err).splitlines()[0] if str(err) else 'MemoryError'}") from err
    finally:
        ddp.cleanup()


def _fit(args: argparse.Namespace, info: Any) -> int:
    from ...data.named import read_vectors
    from ...io.paths import output_file
    from ...progress import bar_callback
    from ...training import ddp
    from ...training.checkpoint import load_checkpoint, save_checkpoint
    from ...training.evaluate import evaluate
    from ...training.fit import fit_schedule, fit_trainer, loop_record
    from ...training.loop import Trainer
    from ...training.provenance import Run
    from ...training.seed import seed_global
    from ._budget import check_fit_sizes
    from ._common import make_quantizer

    # A dirty tree is recorded, not refused: the user's own training run.
    run_record = Run(command=getattr(args, "command_line", None), seeds=[], allow_dirty=True)
    cpu_start = time.process_time()
    load_start = os.getloadavg()[0]
    checkpoint = load_checkpoint(args.resume) if args.resume else None
    data = read_vectors(args.data)
    fingerprint = _fingerprint(args.data, data)
    settings = _settings(args, None if checkpoint is None else checkpoint.fit)
    run_record.seeds = [settings["seed"]]
    if checkpoint is not None:
        if checkpoint.data.get("sha256") != fingerprint["sha256"]:
            raise ValueError(
                f"--resume {args.resume} was trained on other data (shape "
                f"{checkpoint.data.get('shape')}) than {args.data} (shape {fingerprint['shape']})"
            )
        if settings["steps"] < checkpoint.step:
            raise ValueError(
                f"--steps {settings['steps']} is below the {checkpoint.step} steps the "
                "checkpoint has already taken"
            )
        quantizer = checkpoint.quantizer.to(info.device)
    else:
        check_fit_sizes(settings, data.shape[1])
        seed_global(settings["seed"], "construct")  # the same random codebooks on every rank
        quantizer = make_quantizer(settings, data.shape[1]).to(info.device)
    if quantizer.dim != data.shape[1]:
        raise ValueError(
            f"{args.data} holds vectors of dimension {data.shape[1]}, but the checkpoint's "
            f"quantizer needs {quantizer.dim}"
        )
    out = Path(args.out or args.resume or f"{Path(args.data).stem}.{settings['quantizer']}.ckpt")
    # Every output is checked before training, not discovered unwritable after it.
    for target in (out, args.json, args.plot):
        if target is not None:
            output_file(target, inputs=(args.data,))
    fit_schedule(settings)  # refuses a bad --lr, --log-every, ... before the banner
    if info.is_main and not args.quiet:  # -q: an error is the only line on stderr
        first = 0 if checkpoint is None else checkpoint.step
        print(f"fit: {type(quantizer).__name__} on {data.shape[0]} x {data.shape[1]} vectors "
              f"from {args.data}, steps {first} -> {settings['steps']}", file=sys.stderr)
    bars = not args.quiet and info.is_main
    trainer = fit_trainer(quantizer, data, settings, device=info.device, checkpoint=checkpoint,
                          progress=bar_callback("fit", enabled=bars, unit="step"),
                          init_progress=bar_callback("k-means init", enabled=bars, unit="step"))
    extra = {"fit": {**settings, "loop": loop_record(settings)}, "data": fingerprint}

    def write(t: Trainer) -> None:
        ckpt = t.checkpoint(**extra)
        if ckpt is not None:
            save_checkpoint(ckpt, out)

    last_saved = [trainer.step]

    def on_window(t: Trainer) -> None:
        if args.checkpoint_every and t.step - last_saved[0] >= args.checkpoint_every:
            write(t)
            last_saved[0] = t.step

    start, cpu_train = time.perf_counter(), time.process_time()
    try:
        trainer.run(on_window=on_window)
    except KeyboardInterrupt:  # SIGINT, or SIGTERM (the command line raises it for both)
        if info.is_distributed:
            raise
        write(trainer)
        raise KeyboardInterrupt(f"at step {trainer.step}; checkpoint written to {out}; "
                                f"continue with --resume {out}") from None
    train_seconds = time.perf_counter() - start
    cpu_train = time.process_time() - cpu_train
    write(trainer)
    start = time.perf_counter()
    final = evaluate(quantizer, data[ddp.shard(data.shape[0])].to(info.device),
                     progress=bar_callback("eval", enabled=bars, unit="vector"))
    eval_seconds = time.perf_counter() - start
    if not info.is_main:
        return 0
    last = trainer.meters.last()
    print_table({"step": trainer.step, **{k: v for k, v in last.items() if k != "step"}},
                "last training window:")
    print_table({
        "vectors": final["vectors"], "mse": final["mse"], "mse_per_dim": final["mse_per_dim"],
        "snr_db": final["snr_db"], "usage": final["usage"], "perplexity": final["perplexity"],
        "bits_per_vector": final["bits_per_vector"],
    }, "final (eval mode, all vectors):")
    print(f"checkpoint: {out}")
    print(f"time: train {train_seconds:.1f} s, eval {eval_seconds:.1f} s, CPU "
          f"{time.process_time() - cpu_start:.1f} s, "
          f"{info.world_size} process(es) x {torch.get_num_threads()} thread(s)")
    results = {
        "data": fingerprint, "settings": settings, "quantizer": type(quantizer).__name__,
        "world_size": info.world_size, "train_seconds": round(train_seconds, 3),
        "eval_seconds": round(eval_seconds, 3),
        # CPU seconds of this process (all threads): on a shared machine the wall time
        # depends on the other load, the CPU time much less.
        "cpu_seconds": {"train": round(cpu_train, 3),
                        "total": round(time.process_time() - cpu_start, 3)},
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
        "final": final, "history": trainer.meters.history,
    }
    if args.json:
        from ...training.provenance import write_json

        write_json(args.json, run_record.record(results))
        print(f"results: {args.json}")
    if args.plot:
        from ...plotting import training_curves

        training_curves(trainer.meters.history, args.plot, title=type(quantizer).__name__)
        print(f"plot: {args.plot}")
    return 0

