"""scripts/ann_validation_sweep.py: its recipe strings, and its refusal of bad ones (exit 2,
before it loads any data)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .script_module import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ann_validation_sweep.py"


@pytest.fixture(scope="module")
def sweep():
    return load_script(SCRIPT, "ann_validation_sweep")


def test_recipes_parse_into_fit_seeding_dim_steps_and_refits(sweep):
    assert sweep.parse_recipe("best") == ("best", "kmeans++", 1, 0)
    assert sweep.parse_recipe("whole+random+pd10+refit2") == ("whole", "random", 10, 2)
    assert sweep.parse_recipe("best+pd3") == ("best", "kmeans++", 3, 0)
    assert sweep.parse_recipe("best+refit0+pd1") == ("best", "kmeans++", 1, 0)


@pytest.mark.parametrize("text, part", [("best+pd0", "pd0"), ("best+pd", "pd"),
                                        ("best+pd-1", "pd-1"), ("best+pdx", "pdx"),
                                        ("best+pd\u00b2", "pd\u00b2"),
                                        ("best+refit\u00b2", "refit\u00b2"),
                                        ("nope+pd2", "nope+pd2")])
def test_bad_recipes_are_refused_naming_the_part(sweep, text, part):
    with pytest.raises(ValueError, match=repr(part).replace("+", r"\+")):
        sweep.parse_recipe(text)


def test_the_script_exits_2_on_a_bad_recipe_before_loading_data(tmp_path):
    """No data set is cached here: a run that got past the recipes would fail otherwise."""
    run = subprocess.run([sys.executable, str(SCRIPT), "glove", "rvq", "--recipe", "best",
                          "best+pd0"], capture_output=True, text=True, cwd=tmp_path,
                         env={"VQKIT_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin",
                              "PYTHONPATH": str(SCRIPT.parents[1] / "src")})
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines()[-1].endswith("unknown recipe part 'pd0' in 'best+pd0'")
