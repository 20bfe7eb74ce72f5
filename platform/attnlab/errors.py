"""Errors every layer may raise: the lowest module of the package (imports nothing from attnlab)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config problem, with the dotted key (and file, once the loader knows it)."""


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file (and line) and the fix."""
