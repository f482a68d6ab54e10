"""Edges: bulk reading, synapse parameters (plan), synapse/NetCon creation, replay."""
