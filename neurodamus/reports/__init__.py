"""Outputs: SONATA spikes and element reports."""
