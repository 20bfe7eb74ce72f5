"""LightningModules around the shared Transformer (Lightning, not Optuna, not W&B)."""

from attnlab.train.classify import ClassifierModule
from attnlab.train.common import NonFiniteLossError
from attnlab.train.lm import LanguageModelModule

__all__ = ["ClassifierModule", "LanguageModelModule", "NonFiniteLossError"]
