"""Multi-process tests: 2 CPU ranks joined by gloo (see launcher.py)."""
