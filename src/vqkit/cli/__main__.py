"""``python -m vqkit.cli``."""

from .main import entry

entry()
