"""Entry point of the ``vqkit`` command: ``main(argv) -> exit code``.

User errors (bad arguments, missing or corrupt files, missing optional packages or data sets)
end with one line on stderr and exit code 2, never a traceback. ``--debug`` shows the
traceback. Anything else (``RuntimeError``, ``KeyError``, ``TypeError``, ...) is a bug in
vqkit or in the environment, and shows its traceback: the library raises ``ValueError`` for
bad values and files, ``OSError`` subclasses for paths, ``ImportError`` naming the package to
install for a missing optional dependency.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
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
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("vqkit: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        if args.debug:
            raise
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"vqkit: error: {message}", file=sys.stderr)
        return 2


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
