"""Populations, gid offsets, distribution over ranks, morphologies and cell instantiation."""
