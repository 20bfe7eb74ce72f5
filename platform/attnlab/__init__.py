"""attnlab: one shared Transformer, many attention mechanisms, honest ablations."""

__version__ = "0.1.0"
