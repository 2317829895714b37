"""Backends: one module per kind, each hiding one library behind a small protocol."""
