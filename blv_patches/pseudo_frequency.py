"""Paper Eq. 4: BLV's class frequencies re-estimated from the pseudo-labels of training.

A pseudo-label observer of the UDA wrapper (``uda.pseudo_label_observers``), and it alone knows
BLV. Two sources of pseudo-labels:

- ``source='iterations'`` (UDA): the teacher's pseudo-labels of the training crops of the last
  ``interval`` iterations, ``dict(type='PseudoLabelClassFrequency', interval=N)``.
- ``source='unlabelled_pass'`` (semi-supervised, paper Sec. 3.3 as written): every ``interval``
  iterations (one epoch) the teacher labels every unlabelled image, whole, and those counts are
  Eq. 4's. The ``UnlabelledPassHook`` runs the pass (``mmseg_uda.core.hooks``).
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
from mmcv.utils import print_log

from .loss import BLVLoss

SOURCES = ('iterations', 'unlabelled_pass')


class PseudoLabelClassFrequency(nn.Module):
    """Every ``interval`` iterations, the pixel counts of the pseudo-labels seen since the last
    update (``source``: see the module) become the class counts of every BLVLoss of the student.

    The counts are a buffer (``counts``), so a checkpoint taken mid-window resumes the same
    window. Under DDP the counts are summed over ranks, so every rank sets the same ones.

    ``smoothing`` pixels are added to every class's count before it reaches BLV. Eq. 3 is
    infinite for a class the teacher never predicts, and BLV gives a zero-count class no
    variation (right for a class absent from a data set, as SYNTHIA's); a weak teacher predicts
    none of the tail classes, so with raw counts (``smoothing=0``, Eq. 4 as printed) exactly
    the classes BLV is for lose their variation. With ``smoothing=1`` such a class counts as
    the rarest there is (c_k = log of the pixel total) and gets the largest variation.
    """

    def __init__(self, interval: int, source: str = 'iterations',
                 smoothing: float = 0.0) -> None:
        super().__init__()
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'PseudoLabelClassFrequency: interval={interval!r}, expected an '
                             'integer >= 1 (iterations per window)')
        if source not in SOURCES:
            raise ValueError(f'PseudoLabelClassFrequency: source={source!r}; choose one of '
                             f'{SOURCES}')
        if smoothing < 0:
            raise ValueError(f'PseudoLabelClassFrequency: smoothing={smoothing!r} must be >= 0')
        self.interval = interval
        self.source = source
        self.smoothing = smoothing
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
        """Count the training pseudo-labels of iteration ``iteration`` (1-based); at a window's
        end hand the window's counts to BLV and start the next window. With
        ``source='unlabelled_pass'`` training pseudo-labels are not Eq. 4's: nothing happens."""
        if self.source != 'iterations':
            return
        self.accumulate(pseudo_label)
        if iteration % self.interval == 0:
            self.commit(iteration)

    def wants_pass(self, iteration: int) -> bool:
        """Whether iteration ``iteration`` (1-based) ends an epoch of an unlabelled pass."""
        return self.source == 'unlabelled_pass' and iteration % self.interval == 0

    @torch.no_grad()
    def accumulate(self, pseudo_label: torch.Tensor) -> None:
        """Add the pixel counts of ``pseudo_label`` (any shape of class ids)."""
        self.counts += torch.bincount(pseudo_label.flatten().to(self.counts.device),
                                      minlength=self.counts.numel())

    @torch.no_grad()
    def commit(self, iteration: int) -> None:
        """Hand the counts accumulated since the last commit to BLV (Eq. 4), and start again."""
        counts = self.counts.clone()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
        self.counts.zero_()
        counts = counts.cpu().numpy() + self.smoothing
        for loss in self._losses:
            loss.set_class_counts(counts)
        print_log(f'iter {iteration}: BLV class counts from pseudo-labels {counts.tolist()}',
                  logger='mmseg')
