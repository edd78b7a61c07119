"""``python -m vqkit``: the command line."""

from .cli.main import entry

entry()
