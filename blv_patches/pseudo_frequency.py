"""Paper Eq. 4: BLV's class frequencies re-estimated from the pseudo-labels of training.

A pseudo-label observer of the UDA wrapper (``uda.pseudo_label_observers``): the wrapper hands
it the pseudo-labels of every iteration, and it alone knows BLV. Enable it with
``uda.pseudo_label_observers=[dict(type='PseudoLabelClassFrequency', interval=N)]``.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
from mmcv.utils import print_log

from .loss import BLVLoss


class PseudoLabelClassFrequency(nn.Module):
    """Every ``interval`` iterations, the pixel counts of the pseudo-labels of the last
    ``interval`` iterations become the class counts of every BLVLoss of the student.

    The window's counts are a buffer (``counts``), so a checkpoint taken mid-window resumes the
    same window. Under DDP the counts are summed over ranks, so every rank sets the same ones.
    """

    def __init__(self, interval: int) -> None:
        super().__init__()
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'PseudoLabelClassFrequency: interval={interval!r}, expected an '
                             'integer >= 1 (iterations per window)')
        self.interval = interval
        self._losses: list[BLVLoss] = []  # the student's modules, not this module's children

    def attach(self, student: nn.Module) -> None:
        """Find the BLV losses whose counts this observer replaces."""
        self._losses = [m for m in student.modules() if isinstance(m, BLVLoss)]
        if not self._losses:
            raise ValueError('PseudoLabelClassFrequency (paper Eq. 4) re-estimates the class '
                             "frequencies of BLV, but the student has no BLVLoss; apply BLV "
                             'first (blv_patches.apply_blv)')
        self.register_buffer('counts', torch.zeros(self._losses[0].num_classes,
                                                   dtype=torch.int64))

    @torch.no_grad()
    def observe(self, pseudo_label: torch.Tensor, iteration: int) -> None:
        """Count the pseudo-labels of iteration ``iteration`` (1-based); at a window's end hand
        the window's counts to BLV and start the next window."""
        self.counts += torch.bincount(pseudo_label.flatten(), minlength=self.counts.numel())
        if iteration % self.interval:
            return
        counts = self.counts.clone()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
        self.counts.zero_()
        counts = counts.cpu().numpy()
        for loss in self._losses:
            loss.set_class_counts(counts)
        print_log(f'iter {iteration}: BLV class counts from pseudo-labels {counts.tolist()}',
                  logger='mmseg')
