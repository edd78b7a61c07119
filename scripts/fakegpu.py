"""A CPU-backed stand-in accelerator, ``fakegpu``, that finds device mixing without a GPU.

Usage (a pytest plugin, opt-in; nothing imports it otherwise)::

    PYTHONPATH=scripts:src python -m pytest -p fakegpu --device fakegpu \\
        tests/test_contract.py tests/test_search.py ...

Importing this module registers torch's PrivateUse1 backend under the name ``fakegpu``. A tensor
on ``fakegpu`` is a wrapper holding a CPU tensor: every op runs on the CPU, with the same numbers,
but an op that combines a ``fakegpu`` tensor with a CPU tensor of one or more dimensions raises
:class:`DeviceMixError`, as a CUDA kernel raises for a CUDA and a CPU tensor. Allowed, as on
CUDA: 0-dim CPU tensors (scalars), CPU index tensors in indexing, cross-device ``copy_`` and
``to``. A factory with ``device=fakegpu`` and a CPU generator raises too. So a test suite that
passes on ``fakegpu`` has no tensor left on the CPU by mistake, and a code path that creates a
tensor without ``device=`` next to device tensors is found on any machine.

What it cannot check: kernels and numerics of a real GPU (TF32, atomics, bf16 arithmetic;
autocast is a no-op on ``fakegpu``), and generators on the device: torch offers no Python hook
for them, so a test that makes ``torch.Generator(device=fakegpu)`` is skipped here (it runs on
a real GPU). Two torch entry points are patched while the plugin is loaded: ``torch.tensor(...,
device=fakegpu)`` builds on the CPU and moves (the direct path trips an internal assert of the
Python backend), and ``torch.load(map_location=fakegpu)`` loads on the CPU (storages cannot be
restored onto a Python backend; the callers under test move what they load).

It uses experimental torch APIs (``torch.utils.backend_registration
._setup_privateuseone_for_python_backend``), checked with torch 2.13.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import return_and_correct_aliasing
from torch.utils._pytree import tree_flatten, tree_map
from torch.utils.backend_registration import _DummyBackendModule


class _BackendModule(_DummyBackendModule):
    def get_amp_supported_dtype(self) -> list[torch.dtype]:
        return [torch.float16, torch.bfloat16]


torch.utils.backend_registration._setup_privateuseone_for_python_backend(
    "fakegpu", backend_module=_BackendModule()
)
DEVICE = torch.device("fakegpu", 0)
_CPU = torch.device("cpu")
_aten = torch.ops.aten
#: Ops that may take tensors of two devices.
_CROSS_DEVICE = {_aten.copy_.default, _aten._to_copy.default, _aten._copy_from.default,
                 _aten._copy_from_and_resize.default}
#: Indexing ops and the position of their (possibly CPU) index tensors.
_INDEX_ARG = {_aten.index.Tensor: 1, _aten.index_put_.default: 1, _aten.index_put.default: 1,
              _aten._index_put_impl_.default: 1, _aten._unsafe_index.Tensor: 1,
              _aten._unsafe_index_put.default: 1}


class DeviceMixError(RuntimeError):
    """A CPU tensor (or generator) met a ``fakegpu`` tensor where CUDA would refuse it."""


def _on_fake(device) -> bool:
    return device is not None and torch.device(device).type == "fakegpu"


def _unwrap(t):
    return t.inner if isinstance(t, FakeTensor) else t


def _wrap(t):
    return FakeTensor(t) if type(t) is torch.Tensor else t


def _check(func, args, kwargs) -> None:
    if func in _CROSS_DEVICE:
        return
    skip = _INDEX_ARG.get(func)
    flat, _ = tree_flatten(([a for i, a in enumerate(args) if i != skip], kwargs))
    tensors = [t for t in flat if isinstance(t, torch.Tensor)]
    if not any(isinstance(t, FakeTensor) for t in tensors):
        return
    for t in tensors:
        if not isinstance(t, FakeTensor) and t.dim() > 0:
            raise DeviceMixError(f"{func}: a CPU tensor of shape {tuple(t.shape)} with fakegpu "
                                 "tensors (CUDA would raise: tensors on different devices)")
    for g in flat:
        if isinstance(g, torch.Generator) and g.device.type == "cpu":
            raise DeviceMixError(f"{func}: a CPU generator for fakegpu tensors")


class FakeTensor(torch.Tensor):
    """A tensor on ``fakegpu``: a wrapper around its CPU value ``inner``."""

    inner: torch.Tensor

    @staticmethod
    def __new__(cls, inner: torch.Tensor):
        out = torch.Tensor._make_wrapper_subclass(
            cls, inner.shape, strides=inner.stride(), storage_offset=inner.storage_offset(),
            dtype=inner.dtype, layout=inner.layout, device=DEVICE,
            requires_grad=inner.requires_grad,
        )
        out.inner = inner
        return out

    __torch_function__ = torch._C._disabled_torch_function_impl

    def __repr__(self, **kwargs) -> str:
        return f"FakeTensor({self.inner!r})"

    def tolist(self):
        return self.inner.tolist()

    def numpy(self, *args, **kwargs):
        raise DeviceMixError("numpy() of a fakegpu tensor (a CUDA tensor needs .cpu() first)")

    def __getitem__(self, index):
        # x[[0, 1, 4]] builds its index tensor on a path the Python backend cannot take.
        if isinstance(index, list):
            index = _torch_tensor(index)
        return torch.Tensor.__getitem__(self, index)

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        out = _torch_tensor(data, dtype=dtype or self.dtype).to(device or self.device)
        return out.requires_grad_(requires_grad) if requires_grad else out

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        _check(func, args, kwargs)
        plain_args, plain_kwargs = tree_map(_unwrap, args), tree_map(_unwrap, kwargs)
        to_cpu = False
        if plain_kwargs.get("device") is not None:
            if _on_fake(plain_kwargs["device"]):
                plain_kwargs["device"] = _CPU
            else:
                to_cpu = torch.device(plain_kwargs["device"]).type == "cpu"
        out = func(*plain_args, **plain_kwargs)
        if to_cpu or func is _aten._local_scalar_dense.default:
            return out
        return return_and_correct_aliasing(func, args, kwargs, tree_map(_wrap, out))


def _fallback(op, *args, **kwargs):
    """Ops that reach the fakegpu key without a FakeTensor argument: factories."""
    flat, _ = tree_flatten((args, kwargs))
    for t in flat:
        if isinstance(t, torch.Tensor) and not isinstance(t, FakeTensor) and t.dim() > 0:
            raise DeviceMixError(f"{op}: a CPU tensor argument for a fakegpu result")
        if isinstance(t, torch.Generator) and t.device.type == "cpu":
            raise DeviceMixError(
                f"{op}: Expected a 'fakegpu' device type for generator but found 'cpu'")
    if _on_fake(kwargs.get("device")):
        kwargs["device"] = _CPU
    return tree_map(_wrap, op(*tree_map(_unwrap, args), **kwargs))


_library = torch.library.Library("_", "IMPL")
_library.fallback(_fallback, dispatch_key="PrivateUse1")
_library.fallback(torch.library.fallthrough_kernel, dispatch_key="AutocastPrivateUse1")

_torch_tensor = torch.tensor
_torch_load = torch.load


def _tensor(data, *args, device=None, requires_grad=False, **kwargs):
    if _on_fake(device):
        out = _torch_tensor(data, *args, **kwargs).to(device)
        return out.requires_grad_(requires_grad) if requires_grad else out
    return _torch_tensor(data, *args, device=device, requires_grad=requires_grad, **kwargs)


def _load(*args, map_location=None, **kwargs):
    if isinstance(map_location, (str, torch.device)) and _on_fake(map_location):
        map_location = "cpu"
    return _torch_load(*args, map_location=map_location, **kwargs)


class _Generator(torch.Generator):
    def __new__(cls, device="cpu"):
        if _on_fake(device):
            pytest.skip("fakegpu cannot make a generator on its device; run on a real GPU")
        return super().__new__(cls, device)


torch.tensor = _tensor
torch.load = _load
torch.Generator = _Generator
