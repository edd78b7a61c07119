"""Shared pieces of the training scripts, apps and experiments (never imported by the core)."""
