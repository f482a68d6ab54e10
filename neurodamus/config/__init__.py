"""Simulation and circuit config loading, node sets and validation (no NEURON here)."""

from .settings import RunOptions, Settings, load_settings

__all__ = ["RunOptions", "Settings", "load_settings"]
