"""Sub-commands of ``vqkit``, discovered when the parser is built.

Each module here (not starting with ``_``) defines ``NAME``, ``HELP`` (one line),
``DESCRIPTION`` (the ``--help`` text), ``add_arguments(parser)`` and ``run(args) -> int``.
A module may instead define ``add_subcommands(subparsers)`` for a command group such as
``vqkit image compress``; each sub-parser then sets ``func=<callable(args) -> int>``.
"""
