"""LightningModules around the shared Transformer (Lightning, not Optuna, not W&B)."""

from attnlab.lit.classify import ClassifierModule
from attnlab.lit.common import NonFiniteLossError
from attnlab.lit.lm import LanguageModelModule

__all__ = ["ClassifierModule", "LanguageModelModule", "NonFiniteLossError"]
