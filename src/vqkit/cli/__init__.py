"""The ``vqkit`` command line: thin commands over the apps and experiments."""
