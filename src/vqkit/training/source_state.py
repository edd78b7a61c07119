"""The state of the source tree a run starts from: commit, uncommitted diff, untracked sources.

A results file must say exactly which code made it. :meth:`SourceState.read` is called when a
run starts (by :class:`vqkit.training.provenance.Run`), before any work, so a commit made while
the run goes on cannot be recorded instead; :meth:`SourceState.checked` refuses a dirty tree
unless the caller explicitly allows one (``vqkit reproduce --allow-dirty``), and then the
record says it was dirty and carries the SHA-256 of the diff.

Dirty means: ``git diff HEAD`` of the tracked files is not empty, or untracked (and not
ignored) files exist under ``src/``. Changes under ``results/`` do not count: that folder holds
what the commands write (regenerating one results file must not block the next run), and no
computation reads it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Paths whose changes do not make the tree dirty (the commands' own outputs).
OUTPUT_PATHS = ("results",)


class DirtyTreeError(ValueError):
    """A run was asked for from a source tree with uncommitted changes."""


def _git(args: list[str], cwd: Path) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True).stdout


@dataclass(frozen=True)
class SourceState:
    """Commit and cleanliness of the checkout vqkit runs from.

    Attributes:
        commit: the HEAD commit (40 hex digits), or None outside a git checkout (an installed
            wheel), where nothing more can be said.
        dirty: whether tracked files differ from HEAD or untracked files exist under ``src/``
            (None outside git).
        diff_sha256: SHA-256 (hex) of ``git diff HEAD --binary`` (outside ``results/``) when
            that diff is not empty, else None.
        untracked_src: the untracked, not ignored files under ``src/`` (paths relative to the
            checkout), sorted.
    """

    commit: str | None
    dirty: bool | None
    diff_sha256: str | None
    untracked_src: tuple[str, ...]

    @classmethod
    def read(cls, cwd: str | os.PathLike[str] | None = None) -> SourceState:
        """The state of the checkout that holds ``cwd`` (default: the one vqkit is imported
        from, i.e. an editable install's source tree).

        Raises:
            Nothing: outside git (or without git installed) it returns the state with
            ``commit=None``.
        """
        cwd = Path(__file__).resolve().parent if cwd is None else Path(cwd)
        try:
            top = Path(_git(["rev-parse", "--show-toplevel"], cwd).decode().strip())
            commit = _git(["rev-parse", "HEAD"], top).decode().strip()
            excluded = [f":(exclude){p}" for p in OUTPUT_PATHS]
            diff = _git(["diff", "HEAD", "--binary", "--", ".", *excluded], top)
            untracked = _git(["ls-files", "--others", "--exclude-standard", "-z", "--", "src"],
                             top)
        except (OSError, subprocess.CalledProcessError):
            return cls(commit=None, dirty=None, diff_sha256=None, untracked_src=())
        names = tuple(sorted(n for n in untracked.decode().split("\0") if n))
        return cls(commit=commit, dirty=bool(diff) or bool(names),
                   diff_sha256=hashlib.sha256(diff).hexdigest() if diff else None,
                   untracked_src=names)

    def checked(self, *, allow_dirty: bool) -> SourceState:
        """``self``, after refusing a dirty tree unless ``allow_dirty``.

        Raises:
            DirtyTreeError: the tree is dirty and ``allow_dirty`` is False; the message says
                what is uncommitted and how to go on.
        """
        if self.dirty and not allow_dirty:
            what = []
            if self.diff_sha256 is not None:
                what.append("tracked files differ from HEAD (git diff HEAD)")
            if self.untracked_src:
                shown = ", ".join(self.untracked_src[:3])
                more = f" and {len(self.untracked_src) - 3} more" if len(
                    self.untracked_src) > 3 else ""
                what.append(f"untracked files under src/ ({shown}{more})")
            raise DirtyTreeError(
                f"the source tree at {self.commit} is dirty: {'; '.join(what)}; commit the "
                "changes, or pass --allow-dirty to run anyway (the results then record "
                "\"dirty\": true and the diff's SHA-256)")
        return self

    @property
    def label(self) -> str | None:
        """The commit with ``-dirty`` appended when the tree was dirty (the ``git_commit``
        field of results files); None outside git."""
        if self.commit is None:
            return None
        return self.commit + ("-dirty" if self.dirty else "")

    def as_record(self) -> dict[str, Any]:
        """The JSON fields: ``dirty``, ``diff_sha256``, ``untracked_src``."""
        return {"dirty": self.dirty, "diff_sha256": self.diff_sha256,
                "untracked_src": list(self.untracked_src)}
