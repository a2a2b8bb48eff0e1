"""Docent: an offline talking exhibit guide for museum kiosks."""

__version__ = "0.1.0"
