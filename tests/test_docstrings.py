"""Public docstrings say what they raise: a Google-style ``Raises:`` section that names every
exception class the code raises.

The rule, checked on the syntax tree of every module of src/vqkit (:data:`CHECKED`; private
``_name.py`` files hold no public API and are skipped; :data:`EXCLUDED_FILES` names any other
exception, with its reason):

1. A public function, a public method of a public class (``__call__`` included) and a public
   class (its ``__init__`` / ``__post_init__``, or the one it inherits from a class of the same
   module) *raises* an exception class when its body holds ``raise Name(...)`` /
   ``raise Name``, or calls directly

   - a private ``_check*`` helper of its own module (``_check(x)``), or a ``_check*`` method
     of its own class (``self._check_indices(i)``), which count with what they raise in turn;
     a hook that only raises ``NotImplementedError`` counts with what its implementations in
     the checked modules raise (the base ``Quantizer.decode`` raises what every quantizer's
     ``_check_indices`` raises);
   - one of the shared input checks of ``quantizers/base.py`` (:data:`VALIDATORS`).

2. Each such definition has a ``Raises:`` section whose entries name every one of those
   classes (``ValueError: if ...``; one entry may name several: ``TypeError / ValueError:``).
   For a class, the section may be in the class docstring or in ``__init__``'s. Naming more
   than is raised is allowed (a subclass or a called function may raise it).

A bare ``raise`` (re-raise) names nothing.

Calls into *other* modules are not followed: a function that lets a callee's exception pass
names it by hand where it is part of its contract (a CLI command's ``run``, a loader).
"""

from __future__ import annotations

import ast
import fnmatch
import re
from collections.abc import Iterator
from pathlib import Path

import vqkit

SRC = Path(vqkit.__file__).parent

#: Modules and packages (relative to src/vqkit) whose public docstrings are checked: all of
#: src/vqkit (``"."``), every layer from the core to the CLI.
CHECKED: tuple[str, ...] = (".",)

#: Files under CHECKED left out, each with its reason (none today; a file being rewritten on
#: another branch may wait here until that work lands).
EXCLUDED_FILES: dict[str, str] = {}

#: Single definitions left out: (file pattern, qualified-name pattern) -> why (none today).
EXCLUDED_DEFS: dict[tuple[str, str], str] = {}

#: The shared input checks of quantizers/base.py; a public function calling one raises what
#: it raises (read from base.py's syntax tree).
VALIDATORS: tuple[str, ...] = ("check_vectors", "check_samples", "check_mask",
                               "check_index_tensor")
VALIDATORS_FILE = "quantizers/base.py"

_PUBLIC_DUNDERS = {"__call__"}
_CONSTRUCTORS = {"__init__", "__post_init__"}
_FUNCTION = (ast.FunctionDef, ast.AsyncFunctionDef)


# -- what the code raises ------------------------------------------------------------------------
def _exception_name(node: ast.Raise) -> str | None:
    """The class name in ``raise Name(...)`` / ``raise mod.Name``; None for a bare ``raise``."""
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    if isinstance(exc, ast.Name):
        return exc.id
    if isinstance(exc, ast.Attribute):
        return exc.attr
    return None


def _direct_raises(fn: ast.AST) -> set[str]:
    return {name for n in ast.walk(fn) if isinstance(n, ast.Raise)
            if (name := _exception_name(n)) is not None}


def _is_stub(fn: ast.AST) -> bool:
    """A hook whose body (after its docstring) is only ``raise NotImplementedError``."""
    body = [s for s in fn.body
            if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return (len(body) == 1 and isinstance(body[0], ast.Raise)
            and _exception_name(body[0]) == "NotImplementedError")


class Module:
    """One parsed module: its private ``_check*`` helpers and its classes' ``_check*`` methods.

    ``hooks`` maps a ``_check*`` method name to what its implementations raise, across all
    checked modules (used where a class only has the ``NotImplementedError`` stub).
    """

    def __init__(self, tree: ast.Module, validators: dict[str, set[str]],
                 hooks: dict[str, set[str]] | None = None) -> None:
        self.tree = tree
        self.validators = validators
        self.hooks = hooks or {}
        self.helpers = {n.name: n for n in tree.body
                        if isinstance(n, _FUNCTION) and n.name.startswith("_check")}

    def raises(self, fn: ast.AST, cls: ast.ClassDef | None = None,
               seen: frozenset[int] = frozenset()) -> set[str]:
        """What ``fn`` raises itself and through the helpers and validators it calls."""
        if id(fn) in seen:
            return set()
        seen = seen | {id(fn)}
        out = _direct_raises(fn)
        for call in (n for n in ast.walk(fn) if isinstance(n, ast.Call)):
            f = call.func
            if isinstance(f, ast.Name) and f.id in self.helpers:
                out |= self.raises(self.helpers[f.id], None, seen)
            elif isinstance(f, ast.Name) and f.id in self.validators:
                out |= self.validators[f.id]
            elif (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                  and f.value.id == "self" and f.attr.startswith("_check")):
                out |= self._method_raises(f.attr, cls, seen)
        return out

    def _method_raises(self, name: str, cls: ast.ClassDef | None,
                       seen: frozenset[int]) -> set[str]:
        method = None if cls is None else next(
            (n for n in cls.body if isinstance(n, _FUNCTION) and n.name == name), None)
        if method is None or _is_stub(method):
            return set(self.hooks.get(name, set()))
        return self.raises(method, cls, seen)


def _validator_raises() -> dict[str, set[str]]:
    tree = ast.parse((SRC / VALIDATORS_FILE).read_text(encoding="utf-8"))
    defs = {n.name: n for n in tree.body if isinstance(n, _FUNCTION)}
    base = Module(tree, {})
    out: dict[str, set[str]] = {}
    for name in VALIDATORS:  # in order: check_samples calls check_vectors
        base.validators = dict(out)
        out[name] = base.raises(defs[name])
    return out


# -- what the docstring says ---------------------------------------------------------------------
def documented_raises(doc: str | None) -> set[str] | None:
    """Exception names of the ``Raises:`` sections' entries; None when there is no section.

    An entry is a line at its section's first indentation; the names are the identifiers
    before its first colon (``TypeError / ValueError: ...`` names both). A class and its
    ``__init__`` may each have a section.
    """
    lines = (doc or "").splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Raises:"]
    if not starts:
        return None
    names: set[str] = set()
    for start in starts:
        section_indent = len(lines[start]) - len(lines[start].lstrip())
        entry_indent = None
        for line in lines[start + 1:]:
            if not line.strip():
                continue
            indent = len(line) - len(line.lstrip())
            if indent <= section_indent:
                break
            entry_indent = indent if entry_indent is None else entry_indent
            if indent == entry_indent:
                names |= {n.rsplit(".", 1)[-1]
                          for n in re.findall(r"[A-Za-z_][\w.]*", line.split(":", 1)[0])}
    return names


# -- the check -----------------------------------------------------------------------------------
def _definitions(tree: ast.Module) -> Iterator[tuple[str, ast.AST, ast.ClassDef | None, str]]:
    """(qualified name, node, class whose ``self`` it sees, docstring) of every public
    definition that is checked; a class stands for its (possibly inherited) constructors, with
    its own and the constructor's docstrings.
    """

    def visit(body: list[ast.stmt], prefix: str) -> Iterator:
        for node in body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                yield from members(node, prefix + node.name)
            elif isinstance(node, _FUNCTION) and not node.name.startswith("_"):
                yield prefix + node.name, node, None, ast.get_docstring(node) or ""

    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}

    def constructors(cls: ast.ClassDef) -> tuple[ast.ClassDef, list[ast.AST]]:
        """``cls``'s own constructors, or the nearest ones it inherits from a class of this
        module (a public class built by a private base's ``__init__`` raises what it does)."""
        own = [n for n in cls.body if isinstance(n, _FUNCTION) and n.name in _CONSTRUCTORS]
        bases = [classes[b.id] for b in cls.bases
                 if isinstance(b, ast.Name) and b.id in classes and classes[b.id] is not cls]
        for base in ([] if own else bases):
            found = constructors(base)
            if found[1]:
                return found
        return cls, own

    def members(cls: ast.ClassDef, qualname: str) -> Iterator:
        owner, inits = constructors(cls)
        for node in inits:
            doc = (ast.get_docstring(cls) or "") + "\n\n" + (ast.get_docstring(node) or "")
            yield qualname, node, owner, doc
        for node in cls.body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                yield from members(node, f"{qualname}.{node.name}")
            elif isinstance(node, _FUNCTION) and (
                not node.name.startswith("_") or node.name in _PUBLIC_DUNDERS
            ):
                yield f"{qualname}.{node.name}", node, cls, ast.get_docstring(node) or ""

    yield from visit(tree.body, "")


def violations(source: str, rel: str = "<source>", hooks: dict[str, set[str]] | None = None,
               validators: dict[str, set[str]] | None = None) -> list[str]:
    """``file:line qualname: ...`` for each public definition in ``source`` that raises a class
    its docstring's ``Raises:`` does not name."""
    tree = ast.parse(source)
    module = Module(tree, _validator_raises() if validators is None else validators, hooks)
    out = []
    for qualname, node, cls, doc in _definitions(tree):
        if any(fnmatch.fnmatch(rel, f) and fnmatch.fnmatch(qualname, q)
               for f, q in EXCLUDED_DEFS):
            continue
        raised = module.raises(node, cls)
        if not raised:
            continue
        listed = documented_raises(doc)
        if listed is None:
            out.append(f"{rel}:{node.lineno} {qualname}: raises {sorted(raised)}, "
                       "no Raises: section")
        elif raised - listed:
            out.append(f"{rel}:{node.lineno} {qualname}: raises {sorted(raised - listed)}, "
                       f"not named in Raises: (names {sorted(listed)})")
    return out


def checked_files() -> list[Path]:
    files = []
    for member in CHECKED:
        path = SRC / member
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return [p for p in files if p.relative_to(SRC).as_posix() not in EXCLUDED_FILES
            and not (p.name.startswith("_") and p.name != "__init__.py")]


def hook_raises(files: list[Path], validators: dict[str, set[str]]) -> dict[str, set[str]]:
    """``_check*`` method name -> what its implementations in ``files`` raise (stubs aside)."""
    out: dict[str, set[str]] = {}
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = Module(tree, validators)
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            for fn in cls.body:
                if (isinstance(fn, _FUNCTION) and fn.name.startswith("_check")
                        and not _is_stub(fn)):
                    out.setdefault(fn.name, set()).update(module.raises(fn, cls))
    return out


# -- tests ---------------------------------------------------------------------------------------
def test_public_docstrings_name_what_they_raise():
    validators = _validator_raises()
    files = checked_files()
    hooks = hook_raises(files, validators)
    found = [v for p in files
             for v in violations(p.read_text(encoding="utf-8"), p.relative_to(SRC).as_posix(),
                                 hooks, validators)]
    assert not found, "add or complete the Raises: sections of:\n" + "\n".join(found)


def test_scope_and_exclusions_name_existing_code():
    for member in CHECKED:
        assert (SRC / member).exists(), member
    for rel, why in EXCLUDED_FILES.items():
        assert (SRC / rel).is_file(), rel
        assert why.strip(), f"{rel}: an exclusion needs its reason"
    assert all(why.strip() for why in EXCLUDED_DEFS.values()), EXCLUDED_DEFS
    for pattern, qualname in EXCLUDED_DEFS:
        names = [q for p in SRC.glob(pattern)
                 for q, *_ in _definitions(ast.parse(p.read_text(encoding="utf-8")))]
        assert any(fnmatch.fnmatch(q, qualname) for q in names), (pattern, qualname)


def test_every_public_module_is_checked():
    """All of src/vqkit is in scope: each module is checked, private or excluded with a reason."""
    checked = {p.relative_to(SRC).as_posix() for p in checked_files()}
    public = {p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")
              if not (p.name.startswith("_") and p.name != "__init__.py")}
    assert public - checked == set(EXCLUDED_FILES), sorted(public - checked)
    assert {"cli/commands/fit.py", "apps/ann/faiss_bridge.py", "data/speech.py",
            "plotting.py", "__init__.py"} <= checked


def test_validators_raise_what_base_py_raises():
    assert _validator_raises() == {name: {"TypeError", "ValueError"} for name in VALIDATORS}


def test_hooks_count_with_their_implementations():
    hooks = hook_raises(checked_files(), _validator_raises())
    assert hooks["_check_indices"] == {"TypeError", "ValueError"}


def test_raises_section_parsing():
    doc = """Summary.

    Raises:
        TypeError / ValueError: ``x`` is not a finite ``(..., D)`` tensor:
            a continuation line with a colon: IndexError is not an entry.
        vqkit.errors.MissingDataError: the data is absent.

    Returns:
        KeyError: not in the Raises: section.
    """
    assert documented_raises(doc) == {"TypeError", "ValueError", "MissingDataError"}
    assert documented_raises("Summary only.") is None


PLANTED = '''
def _check_positive(n):
    if n <= 0:
        raise ValueError(n)


def documented(n):
    """Says it.

    Raises:
        ValueError: ``n <= 0``.
    """
    _check_positive(n)


def wrong_class(n):
    """Names another class.

    Raises:
        ValueError: never.
    """
    raise TypeError(n)


def through_helper(n):
    """No section."""
    _check_positive(n)


def through_validator(x):
    """No section."""
    check_vectors(x, 3)


def reraises(n):
    """A bare raise names nothing."""
    try:
        return 1 / n
    except ZeroDivisionError:
        raise


def _private(n):
    raise ValueError(n)


class Thing:
    """A class whose constructor raises."""

    def __init__(self, n):
        _check_positive(n)

    def __call__(self, x):
        """Raises through a hook of its own class.

        Raises:
            ValueError: never.
        """
        self._check_x(x)

    def _check_x(self, x):
        raise TypeError(x)

    def _hidden(self):
        raise ValueError


class _Base:
    def __init__(self, n):
        _check_positive(n)


class Inherits(_Base):
    """Built by a private base's constructor, which raises."""


class Said:
    """A class that says it.

    Raises:
        ValueError: ``n <= 0``.
    """

    def __init__(self, n):
        _check_positive(n)

    def decode(self, i):
        """Raises what the hook's implementations raise.

        Raises:
            ValueError: never.
        """
        self._check_indices(i)

    def _check_indices(self, i):
        raise NotImplementedError
'''


def test_checker_finds_planted_violations():
    found = violations(PLANTED, hooks={"_check_indices": {"KeyError"}},
                       validators={"check_vectors": {"TypeError"}})
    names = {line.split(" ")[1].rstrip(":") for line in found}
    assert names == {"wrong_class", "through_helper", "through_validator", "Thing",
                     "Thing.__call__", "Said.decode", "Inherits"}, found
