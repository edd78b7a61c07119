"""The eager finiteness check of quantizer inputs: a finite sum proves every element finite;
a sum that overflows from finite elements falls back to the max and min."""

from __future__ import annotations

import pytest
import torch

from vqkit.quantizers.base import check_vectors


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_finite_values_pass_even_when_their_sum_overflows(dtype):
    big = torch.finfo(dtype).max
    x = torch.full((5, 4), big, dtype=dtype)
    assert not torch.isfinite(x.sum())  # the sum overflows: the fallback decides
    check_vectors(x, 4)
    check_vectors(-x, 4)
    check_vectors(torch.randn(7, 4).to(dtype), 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), "both"])
def test_any_non_finite_element_raises(dtype, bad):
    x = torch.randn(6, 4).to(dtype)
    if bad == "both":  # +Inf and -Inf: their sum is NaN
        x[1, 2], x[4, 0] = float("inf"), float("-inf")
    else:
        x[3, 1] = bad
    with pytest.raises(ValueError, match="x contains NaN or Inf values"):
        check_vectors(x, 4)
    huge = torch.full((6, 4), torch.finfo(dtype).max, dtype=dtype)  # overflowing sum, too
    huge[2, 3] = x[3, 1] if bad != "both" else float("nan")
    with pytest.raises(ValueError, match="x contains NaN or Inf values"):
        check_vectors(huge, 4)
