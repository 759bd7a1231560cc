"""Streaming confusion matrix: mIoU accumulated on the prediction's device, image by image."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist

from mmseg_uda.runtime.dist import is_distributed


class ConfusionMatrix:
    """A C×C matrix of pixel counts, rows = ground truth, columns = prediction.

    ``update`` adds one batch with a single ``torch.bincount`` on the tensors' device, so memory
    stays at C² int64 however many images are evaluated, and nothing goes to the host until
    ``iou()`` is called. Pixels labelled ``ignore_index`` (or outside [0, C)) are skipped, as in
    mmseg's ``intersect_and_union``.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255,
                 device: torch.device | str | None = None) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    @torch.no_grad()
    def update(self, pred: torch.Tensor, label: torch.Tensor) -> None:
        """Add predictions and labels of the same shape (any leading dims, any int dtype)."""
        if pred.shape != label.shape:
            raise ValueError(f'prediction shape {tuple(pred.shape)} does not match label shape '
                             f'{tuple(label.shape)}; rescale predictions to the label size')
        label = label.to(self.matrix.device, torch.int64).flatten()
        pred = pred.to(self.matrix.device, torch.int64).flatten()
        valid = (label != self.ignore_index) & (label >= 0) & (label < self.num_classes)
        index = label[valid] * self.num_classes + pred[valid]
        counts = torch.bincount(index, minlength=self.num_classes ** 2)
        self.matrix += counts.view(self.num_classes, self.num_classes)

    def all_reduce(self) -> None:
        """Sum the matrices of all ranks (each rank must have seen disjoint images)."""
        if is_distributed():
            dist.all_reduce(self.matrix)

    def iou(self) -> torch.Tensor:
        """Per-class IoU in [0, 1] (float64, on the host); NaN where a class has no union,
        i.e. it is neither in the labels nor in the predictions (mmseg's convention)."""
        m = self.matrix.double().cpu()
        intersection = m.diagonal()
        union = m.sum(0) + m.sum(1) - intersection
        return intersection / union  # 0/0 = NaN, excluded by the nanmean below


def mean_iou(iou: torch.Tensor, classes: Sequence[int] | None = None) -> float:
    """NaN-mean of ``iou`` over ``classes`` (all when None), like mmseg's ``np.nanmean``."""
    values = iou if classes is None else iou[list(classes)]
    return float(values.nanmean())
