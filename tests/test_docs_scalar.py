"""The ```python blocks of the family guides (docs/scalar_quantizers.md,
docs/codebook_parameterisations.md) run, in order, in one namespace per guide."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

DOCS = Path(__file__).resolve().parents[1] / "docs"
GUIDES = ["scalar_quantizers.md", "codebook_parameterisations.md"]


@pytest.mark.parametrize("name", GUIDES)
def test_guide_examples_run(name):
    doc = DOCS / name
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)
    assert blocks
    torch.manual_seed(0)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(doc), "exec"), namespace)  # noqa: S102 - our own document
