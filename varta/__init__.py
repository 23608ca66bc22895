"""Varta: city-wide video surveillance (VMS)."""

__version__ = "0.1.0"
