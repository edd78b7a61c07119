"""Checks of the paths vqkit reads and writes, before it touches them.

- :func:`input_file`: a file to read must exist and be a regular file (not a directory, a FIFO
  that would block the read, a device or a symbolic-link loop);
- :func:`output_file`: a file to write must be new or a regular file (never a device node such
  as ``/dev/null``, which a rename would replace), in an existing, writable folder, and not one
  of the command's inputs;
- :func:`naming`: an ``OSError`` re-raised with the path it concerns, so the one-line error
  of the command line names the path and the cause (``No space left on device``).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory"}


def _stat(path: Path) -> os.stat_result | None:
    """``os.stat(path)``, None when nothing is there; a symbolic-link loop is a ValueError."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ValueError(f"{path} is a symbolic-link loop") from err
        raise


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def input_file(path: str | os.PathLike[str], what: str = "file", hint: str = "") -> Path:
    """``path`` as a :class:`~pathlib.Path`, checked to be an existing regular file.

    Args:
        path: the file to read.
        what: the kind of file expected, for errors (``"vqkit checkpoint"``).
        hint: appended to the missing-file error (how to make such a file).

    Raises:
        FileNotFoundError: nothing is at ``path``.
        IsADirectoryError: ``path`` is a directory.
        ValueError: ``path`` is a FIFO, a device or a socket (reading could block or never
            end), or a symbolic-link loop.

    Example:
        >>> input_file("/dev/null")
        Traceback (most recent call last):
        ...
        ValueError: /dev/null is a character device, not a file vqkit can read
    """
    path = Path(path)
    info = _stat(path)
    if info is None:
        raise FileNotFoundError(f"no such {what}: {path}" + (f"; {hint}" if hint else ""))
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"{what} {path} is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is {_kind(info.st_mode)}, not a file vqkit can read")
    return path


def writable_target(path: str | os.PathLike[str]) -> Path:
    """Refuse to write over anything at ``path`` that is not a regular file.

    Raises:
        ValueError: ``path`` is a device node, a FIFO, a socket, a directory or a symbolic-link
            loop (a rename over it would replace it).
    """
    path = Path(path)
    info = _stat(path)
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise ValueError(f"refusing to write {path}: it is {_kind(info.st_mode)}, not a "
                         "regular file")
    return path


def output_file(path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = ()
                ) -> Path:
    """Check, before any work, that ``path`` can be written as a command's output.

    Args:
        path: the output file.
        inputs: the command's input files; the output must be none of them.

    Raises:
        FileNotFoundError: the folder of ``path`` does not exist (it is not created).
        NotADirectoryError: the folder of ``path`` is not a directory.
        PermissionError: the folder of ``path`` is not writable.
        ValueError: as :func:`writable_target`, or ``path`` is one of ``inputs``.
    """
    path = writable_target(path)
    folder = path.parent if str(path.parent) else Path(".")
    info = _stat(folder)
    if info is None:
        raise FileNotFoundError(f"cannot write {path}: no such folder {folder}")
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(f"cannot write {path}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {path}: folder {folder} is not writable")
    for source in inputs:
        if source is not None and Path(source).exists() and path.exists() \
                and os.path.samefile(source, path):
            raise ValueError(f"the output {path} is the input {source}; write elsewhere")
    return path


@contextmanager
def naming(path: str | os.PathLike[str]) -> Iterator[None]:
    """Re-raise an ``OSError`` that names no file as the same kind of error naming ``path``.

    Raises:
        OSError: what the block raised, with ``filename`` set to ``path``.

    Example:
        >>> try:
        ...     with naming("x.vqc"):
        ...         raise OSError(28, "No space left on device")
        ... except OSError as err:
        ...     print(err)
        [Errno 28] No space left on device: 'x.vqc'
    """
    try:
        yield
    except OSError as err:
        if err.filename is not None or err.errno is None:
            raise
        raise OSError(err.errno, err.strerror, str(path)) from err
