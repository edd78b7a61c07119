"""``vqkit reproduce``: run one registered paper reproduction, or list them."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ...training.source_state import SourceState
from ...training.threads import add_threads, set_threads

if TYPE_CHECKING:
    from ...experiments.reproduction import Reproduction, RunFunction

NAME = "reproduce"
HELP = "run a paper reproduction (reproduce --list names them)"
DESCRIPTION = """\
Run the reproduction NAME (a module of vqkit.experiments): it writes its results JSON (with
the command, the commit and the state of the source tree read when the run starts, seed,
versions of the libraries it imported and of the Debian data packages, threads, CPU/GPU and
wall time) and its plots into the results folder. `vqkit report` then rebuilds
docs/results.md from them.
A run from a source tree with uncommitted changes (tracked files differing from HEAD outside
results/, or untracked files under src/) is refused before any work (exit 2) unless
`--allow-dirty` is given; the JSON then says "dirty": true with the SHA-256 of the diff.
`--list` prints every reproduction, one line each, with its measured minutes (quick version
and full run, 1 thread, on the 2-core reference machine) and the names of its variants.
`--variant VARIANT` runs a variant of NAME instead: a follow-up run with other settings that
writes its own JSON (e.g. image-estimators' gap-check, STE vs NSVQ + CBR trained 3 times
longer, and dim-check-8 / dim-check-64, the same at 8- or 64-dimensional latents); with
--quick, its smoke version.
`--verify` reruns the quick version (of NAME or of its --variant) into a temporary folder (or
--out) and compares its numbers with the committed JSON of the same name in --committed
(results/quick/): only numeric results count, not the provenance fields or any timing
(vqkit.experiments.verification says which keys are skipped), within the reproduction's
tolerance (exact unless it says why not). It prints each difference (path in the JSON,
committed value, value now) and exits 1 on a mismatch. A dirty tree is allowed here: nothing
is published.

examples:
  vqkit reproduce --list
  vqkit reproduce nsvq-toy --threads 2
  vqkit reproduce nsvq-toy --quick        # smoke run into out/quick/
  vqkit reproduce image-estimators --variant gap-check
  vqkit reproduce sfvq-toy --verify       # rerun the quick version, compare with results/quick/
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
                   "smoke run never overwrites the reported numbers; with --verify: keep the "
                   "rerun there instead of in a temporary folder)")
    p.add_argument("--allow-dirty", action="store_true",
                   help="run even if the source tree has uncommitted changes (the JSON records "
                   "\"dirty\": true and the diff's SHA-256)")
    p.add_argument("--verify", action="store_true",
                   help="rerun the quick version and compare its numbers with the committed "
                   "JSON in --committed; exit 1 on a difference")
    p.add_argument("--committed", default="results/quick", metavar="DIR",
                   help="with --verify: the folder of the committed quick results "
                   "(default: %(default)s)")
    add_threads(p)


def _minutes(value: float | None) -> str:
    return "not measured" if value is None else f"~{float(value):g} min"


def list_lines() -> list[str]:
    """One line per reproduction: name, measured minutes of the quick version and of the full
    run, description, variants."""
    from ...experiments import registry

    reg = registry()
    width = max((len(n) for n in reg), default=0)
    quick = {name: f"quick {_minutes(rep.quick_minutes)}" for name, rep in reg.items()}
    full = {name: f"full {_minutes(rep.expected_minutes)}" for name, rep in reg.items()}
    qcol = max((len(m) for m in quick.values()), default=0)
    fcol = max((len(m) for m in full.values()), default=0)
    lines = []
    for name, rep in reg.items():
        variants = f" (variants: {', '.join(rep.variants)})" if rep.variants else ""
        lines.append(f"{name:<{width}}  {quick[name]:<{qcol}}  {full[name]:<{fcol}}  "
                     f"{rep.description}{variants}")
    return lines


def verify(rep: Reproduction, run_fn: RunFunction, args: argparse.Namespace) -> int:
    """Rerun the quick version into ``args.out`` (default: a temporary folder), compare its JSON
    with the committed one of the same name in ``args.committed``; print the differences.
    Returns 0 when the numbers match within ``rep.tolerance``, else 1.

    Raises:
        FileNotFoundError: no committed JSON of that name in ``args.committed``.
        ValueError: the two records have no number in common to compare.
    """
    import tempfile

    from ...experiments.verification import Comparison, platform_difference
    from ...training.provenance import read_json

    committed_dir = Path(args.committed)
    if not committed_dir.is_dir():
        raise FileNotFoundError(f"no folder of committed quick results: {committed_dir}")
    with tempfile.TemporaryDirectory(prefix="vqkit-verify-") as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        path = Path(run_fn(out, quick=True, seed=args.seed, allow_dirty=True))
        committed_path = committed_dir / path.name
        if not committed_path.is_file():
            raise FileNotFoundError(f"no committed quick result {committed_path} (`make "
                                    "quick-results` writes them, from a clean tree)")
        committed, rerun = read_json(committed_path), read_json(path)
        comparison = Comparison(committed, rerun, rep.tolerance)
    if comparison.compared == 0:
        raise ValueError(f"{committed_path} and the rerun have no number in common to compare")
    for difference in comparison.differences:
        print(f"  {difference}")
    verdict = "match" if comparison.matches else f"{len(comparison.differences)} differ"
    print(f"verify {rep.name}: {comparison.compared} numbers compared with {committed_path} "
          f"({rep.tolerance.describe()}): {verdict}")
    platform = platform_difference(committed, rerun)
    if platform and not comparison.matches:
        print(f"verify {rep.name}: {platform}; differences are expected there, rerun "
              "`make quick-results` on this machine to compare exactly")
    return 0 if comparison.matches else 1


def run(args: argparse.Namespace) -> int:
    """List the reproductions (``--list``), or run ``args.name`` (or its ``--variant``) into the
    results folder.

    Raises:
        ValueError: no NAME without ``--list``, an unknown NAME or variant,
            ``--threads < 1``, or a dirty source tree without ``--allow-dirty``
            (:class:`vqkit.training.source_state.DirtyTreeError`); the reproduction's own
            errors (e.g. :class:`vqkit.data.MissingDataError`, an ImportError naming a
            missing package) pass through. With ``--verify``, see :func:`verify`.
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
    if args.verify:
        return verify(rep, run_fn, args)
    # Refuse a dirty tree before the banner, so the refusal is the one line on stderr; the run
    # reads the state again when it starts (its Run), and that is what its JSON records.
    SourceState.read().checked(allow_dirty=args.allow_dirty)
    what = (rep.description if args.variant is None
            else f"variant {args.variant}: {rep.variants[args.variant].description}")
    minutes = _minutes(rep.quick_minutes if args.quick else rep.expected_minutes)
    print(f"reproduce {args.name}: {what} (expected {minutes}"
          f"{', quick' if args.quick else ''})", file=sys.stderr)
    start = time.perf_counter()
    out = Path(args.out or ("out/quick" if args.quick else "results"))
    path = run_fn(out, quick=args.quick, seed=args.seed, allow_dirty=args.allow_dirty)
    print(f"{args.name}: wrote {path} in {time.perf_counter() - start:.1f} s")
    return 0
