"""``vqkit reproduce``: run one registered paper reproduction, or list them."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ...training.threads import add_threads, set_threads

NAME = "reproduce"
HELP = "run a paper reproduction (reproduce --list names them)"
DESCRIPTION = """\
Run the reproduction NAME (a module of vqkit.experiments): it writes its results JSON (with
the command, commit, seed, torch version, threads, CPU/GPU and wall time) and its plots into
the results folder. `vqkit report` then rebuilds docs/results.md from them.
`--list` prints every reproduction, one line each, with its expected minutes on the 2-core
reference machine and the names of its variants.
`--variant VARIANT` runs a variant of NAME instead: a follow-up run with other settings that
writes its own JSON (e.g. image-estimators' gap-check, STE vs NSVQ + CBR trained 3 times
longer, and dim-check-8 / dim-check-64, the same at 8- or 64-dimensional latents); with
--quick, its smoke version.

examples:
  vqkit reproduce --list
  vqkit reproduce nsvq-toy --threads 2
  vqkit reproduce nsvq-toy --quick        # smoke run into out/quick/
  vqkit reproduce image-estimators --variant gap-check
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="the reproduction to run")
    p.add_argument("--list", action="store_true", help="list the reproductions and exit")
    p.add_argument("--variant", default=None, metavar="VARIANT",
                   help="run this variant of NAME (a follow-up run; --list names them; "
                   "default: the main run)")
    p.add_argument("--quick", action="store_true",
                   help="the seconds-long smoke version (its numbers are not the reported ones)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default=None,
                   help="results folder (default results/, or out/quick/ with --quick so a "
                   "smoke run never overwrites the reported numbers)")
    add_threads(p)


def list_lines() -> list[str]:
    """One line per reproduction: name, expected minutes, description, variants."""
    from ...experiments import registry

    reg = registry()
    width = max((len(n) for n in reg), default=0)
    minutes = {name: f"~{float(rep.expected_minutes):g} min" for name, rep in reg.items()}
    col = max((len(m) for m in minutes.values()), default=0)
    lines = []
    for name, rep in reg.items():
        variants = f" (variants: {', '.join(rep.variants)})" if rep.variants else ""
        lines.append(f"{name:<{width}}  {minutes[name]:>{col}}  {rep.description}{variants}")
    return lines


def run(args: argparse.Namespace) -> int:
    """List the reproductions (``--list``), or run ``args.name`` (or its ``--variant``) into the
    results folder.

    Raises:
        ValueError: no NAME without ``--list``, an unknown NAME or variant, or
            ``--threads < 1``; the reproduction's own errors (e.g.
            :class:`vqkit.data.MissingDataError`, an ImportError naming a missing package)
            pass through.
    """
    from ...experiments import registry

    if args.list:
        for line in list_lines():
            print(line)
        return 0
    reg = registry()
    if not args.name:
        raise ValueError(f"give a reproduction NAME or --list; known: {', '.join(reg)}")
    if args.name not in reg:
        raise ValueError(f"unknown reproduction {args.name!r}; known: {', '.join(reg)}")
    rep = reg[args.name]
    run_fn = rep.runner(args.variant)  # checks the variant before any work
    set_threads(args.threads)
    what = (rep.description if args.variant is None
            else f"variant {args.variant}: {rep.variants[args.variant].description}")
    print(f"reproduce {args.name}: {what} (expected ~{rep.expected_minutes:g} "
          f"min{', quick' if args.quick else ''})", file=sys.stderr)
    start = time.perf_counter()
    out = Path(args.out or ("out/quick" if args.quick else "results"))
    path = run_fn(out, quick=args.quick, seed=args.seed)
    print(f"{args.name}: wrote {path} in {time.perf_counter() - start:.1f} s")
    return 0
