"""Evaluation (streaming confusion matrix) and training hooks."""
from . import evaluation, hooks  # noqa: F401
