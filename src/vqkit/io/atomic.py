"""Atomic file writes: a temporary file beside the target, then one rename over it.

An interrupted write (crash, Ctrl-C, full disk) leaves the previous file untouched and no
half-written target. The new file gets the usual permissions (0666 minus the umask), not the
0600 of ``tempfile.mkstemp``. The temporary file is ``.{name}.{pid}.{random}.tmp``: a failed
write removes it, and the next write to the same target removes those a killed process
(SIGKILL, power loss) left behind (regular files only; a name that is no pid of a
running process counts as dead). A target that exists and is not a regular file (a device
node such as ``/dev/null``, a FIFO, a directory) is refused, never replaced.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .paths import naming, writable_target


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


class _Writes:
    """The temporary file as the writer sees it: every ``write`` goes through Python's
    buffered file and its first ``OSError`` is kept.

    Writers that bypass or hide that error are thus caught: ``numpy.save`` would write a real
    file from C and report a short write without a cause ("800000 requested and 65529
    written"); ``torch.save`` turns the ``OSError`` into a ``RuntimeError`` from its zip writer.
    """

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self._file.write(data)
        except OSError as err:
            self.error = self.error or err
            raise

    def flush(self) -> None:
        self._file.flush()

    def tell(self) -> int:
        return self._file.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def seekable(self) -> bool:
        return self._file.seekable()

    def writable(self) -> bool:
        return True


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs; a pid no process can have (beyond the C ``pid_t``) does
    not."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files of ``path`` that a process no longer running left behind.

    Only regular files are removed: a directory, a symbolic link or a device with a temporary
    file's name is left alone, as is a file that cannot be removed.

    Returns:
        the files removed.
    """
    pattern = re.compile(re.escape(f".{path.name}.") + r"(\d+)\.[^.]+\.tmp")
    removed = []
    try:
        candidates = list(path.parent.iterdir())
    except OSError:
        return removed
    for tmp in candidates:
        match = pattern.fullmatch(tmp.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))) \
                and _regular(tmp):
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                continue
            removed.append(tmp)
    return removed


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(binary_file)`` on a temporary file, then rename it to ``path``.

    Args:
        path: the target; its folder is created if missing.
        write: writes the whole content to the open binary file it is given.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: something other than a regular file is at ``path``.
        OSError: the folder or file cannot be written (naming ``path``), also when ``write``
            hid the ``OSError`` of a failed write (a full disk) in another error; the
            temporary file is removed and the previous file at ``path``, if any, is left
            intact. Whatever ``write`` raises is re-raised the same way.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "x.bin")
        >>> atomic_write(p, lambda f: f.write(b"abc")).read_bytes()
        b'abc'
    """
    path = writable_target(path)
    with naming(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                   dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                writes = _Writes(f)
                try:
                    write(writes)
                except Exception as err:
                    failed = writes.error
                    if failed is None or failed is err:
                        raise
                    raise OSError(failed.errno, failed.strerror, failed.filename) from err
            os.chmod(tmp, _default_mode())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path
