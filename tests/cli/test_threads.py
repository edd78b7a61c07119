"""``--threads`` means the same in every command: one default, set in one place, never
overridden by an experiment or application, and recorded as used in results JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from vqkit.cli.main import build_parser
from vqkit.training.threads import DEFAULT_THREADS

SRC = Path(__file__).resolve().parents[2] / "src" / "vqkit"


def _thread_options(parser, prog="vqkit"):
    for action in parser._actions:
        if "--threads" in action.option_strings:
            yield prog, action
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            for name, sub in action.choices.items():
                yield from _thread_options(sub, f"{prog} {name}")


def test_every_threads_option_has_the_one_default():
    found = dict(_thread_options(build_parser()))
    for prog in ("vqkit fit", "vqkit encode", "vqkit decode", "vqkit eval", "vqkit demo",
                 "vqkit reproduce", "vqkit image train", "vqkit image compress",
                 "vqkit speech encode", "vqkit speech decode"):
        assert prog in found, f"{prog} has no --threads"
    for prog, action in found.items():
        assert action.default == DEFAULT_THREADS, prog


def test_only_the_cli_helper_sets_torch_threads():
    """Experiments and applications run on the command's --threads; none resets it."""
    setter = re.compile(r"\btorch\.set_num_threads\(")
    offenders = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                 if setter.search(p.read_text()) and p.name != "threads.py"]
    assert offenders == []


def test_reproduce_runs_and_records_the_threads_it_was_given(vqkit, tmp_path, monkeypatch):
    import vqkit.experiments as experiments
    from vqkit.training.provenance import Run, write_json

    seen = []

    def run(out_dir, *, quick=False, seed=0, allow_dirty=False):
        seen.append(torch.get_num_threads())
        return write_json(Path(out_dir) / "f.json", Run(seeds=[seed], allow_dirty=True).record({}))

    fake = experiments.Reproduction("fake", "a fake", 0.1, ("f.json",), run, lambda d: "")
    monkeypatch.setattr(experiments, "registry", lambda: {"fake": fake})
    before = torch.get_num_threads()
    try:
        code = vqkit("reproduce", "fake", "--threads", "2", "--allow-dirty", "--out", tmp_path)[0]
        assert code == 0
        assert seen == [2]
        assert json.loads((tmp_path / "f.json").read_text())["environment"]["threads"] == 2
        assert vqkit("reproduce", "fake", "--allow-dirty", "--out", tmp_path)[0] == 0
        assert seen[-1] == DEFAULT_THREADS
    finally:
        torch.set_num_threads(before)
