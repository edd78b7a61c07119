"""No code in src/ probes a quantizer with getattr / hasattr: the contract is on ``Quantizer``.

The rule, checked on the syntax tree of every module under ``src/vqkit``:

1. A call ``getattr(obj, ...)`` or ``hasattr(obj, ...)`` is *quantizer probing* when ``obj``
   names a quantizer or something that holds one: its source text matches
   :data:`QUANTIZER_LIKE` (``quantizer``, ``model.quantizer``, ``q``, ``vq``, ``inner``,
   ``codebook``, ``codec``, ...), or the call is in ``src/vqkit/quantizers/`` (where every
   object is a quantizer or one of its strategies). Quantizer probing fails the test unless
   :data:`ALLOWED` lists it with a reason that it is not a vqkit quantizer.
2. Every other getattr / hasattr call in src/ must be listed in :data:`ALLOWED` too, with why
   it is legitimate (argparse namespaces, modules, optional packages, dataclass fields, error
   messages about arbitrary objects). A new call fails until it is listed, and a listed call
   that no longer exists fails as stale, so the list is always the exact inventory.

Entries are keyed by file and the call's source text (``ast.unparse``), not by line number.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import vqkit

SRC = Path(vqkit.__file__).parent
QUANTIZER_LIKE = re.compile(
    r"quantiz|codebook|codec|\b(?:q|vq|rvq|pvq|avq|sfvq|sf|fq|inner|obj)\b", re.IGNORECASE
)

_ARGPARSE = "argparse namespace: options that some callers' namespaces lack"
_FIELDS = "a frozen dataclass validating its own fields by name"
_MESSAGE = "error message naming the shape or type of an argument that may not be a tensor"
_FAISS = ("FAISS objects (SWIG proxies of faiss.ProductQuantizer, ResidualQuantizer, Index*), "
          "not vqkit quantizers: their sub-quantizer and is_trained attributes vary by class")

#: Every getattr / hasattr call left in src/, and why it is legitimate.
ALLOWED: dict[tuple[str, str], str] = {
    ("apps/image_codec/config.py", "getattr(self, name)"): _FIELDS,
    ("apps/ann/config.py", "getattr(self, name)"): _FIELDS,
    ("apps/image_codec/codec.py", "getattr(header, name)"):
        "the parsed .vqi header (a NamedTuple) checked field by field",
    ("training/provenance.py", "hasattr(os, 'getloadavg')"):
        "os.getloadavg does not exist on every platform",
    ("cli/main.py", "hasattr(module, 'add_subcommands')"):
        "command modules: a module with sub-commands adds them itself",
    ("cli/main.py", "getattr(args, 'func', None)"): _ARGPARSE,
    ("cli/commands/fit.py", "getattr(args, k)"): _ARGPARSE,
    ("cli/commands/fit.py", "getattr(args, k, None)"): _ARGPARSE,
    ("cli/commands/fit.py", "getattr(args, 'command_line', None)"): _ARGPARSE,
    ("cli/commands/demo.py", "getattr(args, 'command_line', None)"): _ARGPARSE,
    ("cli/commands/eval.py", "getattr(args, 'command_line', None)"): _ARGPARSE,
    ("cli/commands/image.py", "getattr(args, 'command_line', None)"): _ARGPARSE,
    ("data/images.py", "getattr(data, name)"):
        "skimage.data: its sample images are functions named by the image",
    ("data/glove.py", "getattr(module, 'ROOT', None)"):
        "an optional data package: where it keeps its files, if it says",
    ("distributed.py", "getattr(dist.ReduceOp, _OPS[op])"):
        "torch.distributed.ReduceOp member named by the reduction",
    ("training/space_filling.py", "getattr(data, 'shape', type(data).__name__)"): _MESSAGE,
    ("privacy/metrics.py", "getattr(g, 'shape', type(g).__name__)"): _MESSAGE,
    ("space_filling/normalisation.py", "getattr(embeddings, 'shape', type(embeddings).__name__)"):
        _MESSAGE,
    ("apps/ann/faiss_bridge.py", "getattr(obj, name, None)"): _FAISS,
    ("apps/ann/faiss_bridge.py", "getattr(fq, 'is_trained', True)"): _FAISS,
    ("apps/ann/faiss_bridge.py", "getattr(inner, 'is_trained', True)"): _FAISS,
}


def _calls() -> set[tuple[str, str]]:
    """``(path relative to src/vqkit, call source)`` of every getattr / hasattr call."""
    found = set()
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr") and node.args):
                found.add((path.relative_to(SRC).as_posix(), ast.unparse(node)))
    return found


def _probes_a_quantizer(path: str, call: str) -> bool:
    obj = ast.unparse(ast.parse(call).body[0].value.args[0])  # type: ignore[attr-defined]
    return path.startswith("quantizers/") or bool(QUANTIZER_LIKE.search(obj))


def test_no_getattr_or_hasattr_on_quantizers():
    probes = sorted(c for c in _calls() if _probes_a_quantizer(*c) and c not in ALLOWED)
    assert not probes, (
        "getattr/hasattr on quantizer-like objects (declare what is needed on "
        "vqkit.quantizers.base.Quantizer and call it):\n"
        + "\n".join(f"  {p}: {c}" for p, c in probes)
    )


def test_the_allow_list_is_the_exact_inventory():
    calls = _calls()
    new = sorted(calls - set(ALLOWED))
    stale = sorted(set(ALLOWED) - calls)
    assert not new, "getattr/hasattr calls missing from ALLOWED (say why each is legitimate, " \
        "or write explicit code):\n" + "\n".join(f"  {p}: {c}" for p, c in new)
    assert not stale, "ALLOWED lists calls that are gone:\n" + "\n".join(
        f"  {p}: {c}" for p, c in stale)


def test_the_rule_catches_probing():
    assert _probes_a_quantizer("training/loop.py", "getattr(self.quantizer, 'x', None)")
    assert _probes_a_quantizer("apps/speech/train.py", "hasattr(quantizer, 'init_codebook_')")
    assert _probes_a_quantizer("apps/x.py", "getattr(model.quantizer, 'inner', None)")
    assert _probes_a_quantizer("quantizers/vector.py", "getattr(self, 'codebook')")
    assert not _probes_a_quantizer("cli/main.py", "getattr(args, 'func', None)")
