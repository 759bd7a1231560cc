"""The common shape of the class-count losses (BLV and the long-tail baselines).

Each is mmseg's softmax cross entropy, with the same reduction (pixel mean over all pixels,
ignored ones included, unless ``avg_non_ignore``), on logits and class weights that it may
change *in training only*: in ``eval()`` mode every one of them is exactly mmseg's
``CrossEntropyLoss``. The class counts come from ``load_class_counts`` (a list, or a
converter's ``sample_class_stats.json``).
"""
from __future__ import annotations

import torch
import torch.nn as nn
from mmseg.models.losses.cross_entropy_loss import cross_entropy


class ClassCountCrossEntropy(nn.Module):
    """Base class: subclasses override :meth:`training_logits` and/or
    :meth:`training_class_weight`."""

    def __init__(self, loss_name: str, loss_weight: float = 1.0,
                 class_weight: list[float] | None = None, avg_non_ignore: bool = False) -> None:
        super().__init__()
        if 'loss' not in loss_name:
            # mmseg >= 0.23's BaseSegmentor._parse_losses only sums keys containing 'loss'.
            raise ValueError(f'{type(self).__name__}: loss_name {loss_name!r} must contain '
                             '"loss", or mmseg leaves it out of the total loss')
        self.loss_weight = loss_weight
        self.class_weight = class_weight
        self.avg_non_ignore = avg_non_ignore
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def training_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return logits

    def training_class_weight(self, logits: torch.Tensor) -> torch.Tensor | None:
        return self.eval_class_weight(logits)

    def eval_class_weight(self, logits: torch.Tensor) -> torch.Tensor | None:
        return logits.new_tensor(self.class_weight) if self.class_weight is not None else None

    def forward(self, cls_score: torch.Tensor, label: torch.Tensor,
                weight: torch.Tensor | None = None, avg_factor: float | None = None,
                reduction_override: str | None = None, ignore_index: int = 255,
                **kwargs) -> torch.Tensor:
        if self.training:
            logits = self.training_logits(cls_score)
            class_weight = self.training_class_weight(logits)
        else:
            logits, class_weight = cls_score, self.eval_class_weight(cls_score)
        return self.loss_weight * cross_entropy(
            logits, label, weight, class_weight=class_weight,
            reduction=reduction_override or 'mean', avg_factor=avg_factor,
            ignore_index=ignore_index, avg_non_ignore=self.avg_non_ignore)

    @staticmethod
    def check_logits(logits: torch.Tensor, num_classes: int, who: str) -> None:
        if logits.dim() < 2 or logits.shape[1] != num_classes:
            raise ValueError(f'{who}: logits have shape {tuple(logits.shape)}, expected '
                             f'N×{num_classes}×...; class_counts must list one count per class')
