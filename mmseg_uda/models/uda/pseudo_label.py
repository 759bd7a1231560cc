"""Pseudo-labels from teacher logits: confidence threshold, scalar weight, margins."""
from __future__ import annotations

import torch

from mmseg_uda.runtime import mean_over_ranks

# How a pseudo-label pixel is weighted: 'confident_ratio' (DACS/DAFormer), every pixel by the
# batch's fraction of confident pixels; 'confident_pixels', each pixel 1 if it is confident,
# else 0 (the per-pixel mask of FixMatch-style self-training); 'class_balanced_pixels', the
# same with a threshold per class lowered to keep at least CLASS_BALANCED_PORTION of the pixels
# labelled with that class (CBST's class-balanced selection, Zou et al., ECCV 2018, per batch).
PSEUDO_WEIGHTS = ('confident_ratio', 'confident_pixels', 'class_balanced_pixels')
# CBST's final portion: its selection grows from 20 % to 50 % over the rounds.
CLASS_BALANCED_PORTION = 0.5


@torch.no_grad()
def pseudo_label_and_weight(logits: torch.Tensor, threshold: float,
                            weighting: str = 'confident_ratio'
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Arg-max labels (B×H×W), their weight (B×H×W) and the confident ratio (0-d tensor).

    A pixel is confident when its max softmax probability reaches ``threshold``. With
    ``weighting='confident_ratio'`` the weight is one scalar for the whole batch, as in
    DACS/DAFormer: the fraction of confident pixels. It stays on the device (no sync). Under DDP
    the fraction is that of the global batch (the ranks' batches have equal sizes). With
    ``'confident_pixels'`` it is 1 on confident pixels and 0 elsewhere. With
    ``'class_balanced_pixels'`` a class's threshold is the lower of ``threshold`` and the
    confidence that keeps its most confident ``CLASS_BALANCED_PORTION`` of the batch's pixels
    labelled with it (per rank under DDP), so that a class the teacher is unsure of still
    teaches; the confident ratio stays that of ``threshold``.
    """
    prob, label = torch.softmax(logits.detach().float(), dim=1).max(dim=1)
    confident = prob.ge(threshold).float()
    confident_ratio = mean_over_ranks(confident.mean())
    if weighting == 'confident_pixels':
        return label, confident, confident_ratio
    if weighting == 'class_balanced_pixels':
        thresholds = torch.full((logits.shape[1],), threshold, device=prob.device)
        for k in label.unique():
            in_k = prob[label == k]
            thresholds[k] = torch.quantile(in_k, 1 - CLASS_BALANCED_PORTION).clamp(max=threshold)
        return label, prob.ge(thresholds[label]).float(), confident_ratio
    weight = confident_ratio.expand_as(prob).clone()
    return label, weight, confident_ratio


def zero_row_margins(weight: torch.Tensor, top: int, bottom: int) -> torch.Tensor:
    """Margins v1 (DAFormer): no weight on the top ``top`` and bottom ``bottom`` rows."""
    weight = weight.clone()
    if top > 0:
        weight[..., :top, :] = 0
    if bottom > 0:
        weight[..., -bottom:, :] = 0
    return weight
