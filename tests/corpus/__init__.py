"""The bad-input corpus: mutations of the example circuit (see cases.py)."""
