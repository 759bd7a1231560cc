"""Pseudo-labels from teacher logits: confidence threshold, scalar weight, margins."""
from __future__ import annotations

import torch

from mmseg_uda.runtime import mean_over_ranks


@torch.no_grad()
def pseudo_label_and_weight(logits: torch.Tensor, threshold: float
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Arg-max labels (B×H×W), their weight (B×H×W) and the confident ratio (0-d tensor).

    The weight is one scalar for the whole batch, as in DACS/DAFormer: the fraction of pixels
    whose max softmax probability reaches ``threshold``. It stays on the device (no sync).
    Under DDP the fraction is that of the global batch (the ranks' batches have equal sizes).
    """
    prob, label = torch.softmax(logits.detach().float(), dim=1).max(dim=1)
    confident_ratio = mean_over_ranks(prob.ge(threshold).float().mean())
    weight = confident_ratio.expand_as(prob).clone()
    return label, weight, confident_ratio


PSEUDO_WEIGHTS = ('confident_ratio', 'confident_pixels')


@torch.no_grad()
def confident_pixels(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """B×H×W weights: 1 where the max softmax probability reaches ``threshold``, else 0 (the
    per-pixel confidence mask of FixMatch-style self-training)."""
    return torch.softmax(logits.detach().float(), dim=1).amax(dim=1).ge(threshold).float()


def zero_row_margins(weight: torch.Tensor, top: int, bottom: int) -> torch.Tensor:
    """Margins v1 (DAFormer): no weight on the top ``top`` and bottom ``bottom`` rows."""
    weight = weight.clone()
    if top > 0:
        weight[..., :top, :] = 0
    if bottom > 0:
        weight[..., -bottom:, :] = 0
    return weight
