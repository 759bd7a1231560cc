"""Paper Eq. 4: BLV's class frequencies re-estimated from the teacher's pseudo-labels."""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn

from mmseg_uda.runtime import is_distributed


class PseudoLabelClassCounter(nn.Module):
    """Counts pseudo-label pixels per class on the device, window by window.

    The counts are a buffer, so a checkpoint taken mid-window resumes the same window.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.register_buffer('counts', torch.zeros(num_classes, dtype=torch.int64))

    @torch.no_grad()
    def add(self, pseudo_label: torch.Tensor) -> None:
        self.counts += torch.bincount(pseudo_label.flatten(), minlength=self.num_classes)

    @torch.no_grad()
    def pop(self) -> torch.Tensor:
        """The window's counts (summed over DDP ranks, so every rank agrees); then reset."""
        counts = self.counts.clone()
        if is_distributed():
            dist.all_reduce(counts)
        self.counts.zero_()
        return counts
