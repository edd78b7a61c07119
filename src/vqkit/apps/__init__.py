"""Applications built on vqkit's quantizers: configs, training and evaluation of real tools."""
