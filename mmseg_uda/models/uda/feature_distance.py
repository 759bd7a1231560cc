"""ImageNet feature distance (DAFormer): keep thing-class features near the pretrained ones."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmcv.runner import get_dist_info

from mmseg_uda.runtime import mean_over_ranks


@torch.no_grad()
def downscale_label_ratio(label: torch.Tensor, scale: int, min_ratio: float,
                          num_classes: int, ignore_index: int = 255) -> torch.Tensor:
    """B×1×H×W labels → B×1×(H/scale)×(W/scale): each cell's dominant class, or
    ``ignore_index`` where that class is 'ignore' or covers less than ``min_ratio`` of it."""
    if label.dim() != 4 or label.shape[1] != 1:
        raise ValueError(f'expected B×1×H×W labels, got {tuple(label.shape)}')
    if label.shape[-2] % scale or label.shape[-1] % scale:
        raise ValueError(f'label size {tuple(label.shape[-2:])} is not a multiple of the '
                         f'feature stride {scale}')
    label = label.squeeze(1).long()
    label = label.masked_fill((label < 0) | (label >= num_classes), num_classes)
    one_hot = F.one_hot(label, num_classes + 1).permute(0, 3, 1, 2).float()
    ratio, dominant = F.avg_pool2d(one_hot, kernel_size=scale).max(dim=1)
    dominant = dominant.masked_fill((ratio < min_ratio) | (dominant == num_classes),
                                    ignore_index)
    return dominant.unsqueeze(1)


def class_lookup(classes: Sequence[int], device=None) -> torch.Tensor:
    """A 256-entry boolean table: ``lut[label]`` is True for the given classes."""
    lut = torch.zeros(256, dtype=torch.bool, device=device)
    lut[list(classes)] = True
    return lut


def thing_mask(label: torch.Tensor, feat_size: Sequence[int], class_lut: torch.Tensor,
               min_ratio: float, num_classes: int) -> torch.Tensor:
    """B×1×h×w mask of feature cells dominated (≥ ``min_ratio``) by a class of ``class_lut``."""
    scale = label.shape[-1] // feat_size[-1]
    small = downscale_label_ratio(label, scale, min_ratio, num_classes)
    return class_lut[small]


def masked_feature_distance(feat: torch.Tensor, ref: torch.Tensor,
                            mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over the masked cells of the per-cell L2 distance across channels.

    An empty mask gives 0 with no gradient, where DAFormer logs NaN (DAFormer#11): a NaN
    would otherwise also trip any NaN guard for a harmless crop without things.

    Under DDP the mean is over the masked cells of the global batch: each rank divides its sum
    by the global count (times the number of ranks, which the gradient average divides out).
    """
    dist = torch.norm(feat - ref.detach(), p=2, dim=1, keepdim=True)
    if mask is None:
        return dist.mean()
    mask = mask.to(dist.dtype)
    global_cells = mean_over_ranks(mask.sum())  # = count on one GPU
    return (dist * mask).sum() / global_cells.clamp(min=1 / get_dist_info()[1])
