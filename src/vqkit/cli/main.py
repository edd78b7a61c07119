"""Entry point of the ``vqkit`` command: ``main(argv) -> exit code``.

User errors (bad arguments, missing or corrupt files, missing optional packages or data sets)
end with one line on stderr and exit code 2, never a traceback. ``--debug`` shows the
traceback. Anything else (``RuntimeError``, ``KeyError``, ``TypeError``, ...) is a bug in
vqkit or in the environment, and shows its traceback: the library raises ``ValueError`` for
bad values and files, ``OSError`` subclasses for paths, ``ImportError`` naming the package to
install for a missing optional dependency. Any other ``OSError`` (a full disk, a folder
without write permission, a symbolic-link loop) also ends with one line naming the path and
the cause (``vqkit: error: cannot use out.vqc: No space left on device [ENOSPC]``). Warnings
of numpy, torch and other packages go to the log, shown with ``--verbose`` only, so an error
stays one line. ``SIGTERM`` (what batch schedulers and torchrun send) is handled as ``SIGINT``:
``fit`` writes its checkpoint and the command ends with status 130 after one message.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import pkgutil
import signal
import sys
from collections.abc import Sequence

from . import commands

#: Exceptions that mean "the user asked for something that cannot be done"; only these.
USER_ERRORS = (ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
               PermissionError, ImportError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vqkit",
        description="Vector quantization for neural networks: train quantizers, encode and "
        "decode codes files, run the paper reproductions and the applications.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "add_subcommands"):
            module.add_subcommands(sub)
            continue
        p = sub.add_parser(
            module.NAME, help=module.HELP, description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def _one_line(err: BaseException) -> str:
    """The error as one line; an ``OSError`` names its path and cause."""
    if isinstance(err, OSError) and err.strerror and err.filename is not None:
        code = errno.errorcode.get(err.errno or 0)
        return f"cannot use {err.filename}: {err.strerror}" + (f" [{code}]" if code else "")
    text = str(err)
    return text.splitlines()[0] if text else type(err).__name__


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vqkit`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2): return, do not exit
        return exit_.code if isinstance(exit_.code, int) else 2
    # The command as typed, for the provenance of results files.
    args.command_line = " ".join(["vqkit", *argv])
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.INFO if args.verbose else logging.ERROR)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _terminated)
    except ValueError:  # not the main thread: leave SIGTERM alone
        previous = None
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as err:  # a command may say what it saved, in one line
        print(f"vqkit: interrupted{f' {err}' if str(err) else ''}", file=sys.stderr)
        return 130
    except (*USER_ERRORS, OSError) as err:
        if args.debug or _inside_vqkit(err):
            raise
        print(f"vqkit: error: {_one_line(err)}", file=sys.stderr)
        return 2
    finally:
        logging.captureWarnings(False)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _inside_vqkit(err: BaseException) -> bool:
    """An ImportError of a vqkit module is a bug (a broken import), not a missing package."""
    return isinstance(err, ImportError) and (err.name or "").split(".")[0] == "vqkit"


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
