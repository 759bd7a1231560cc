"""The long-tail baselines of the paper's Table 5 as mmseg losses: logit adjustment (LA) and
class reweighting (RW). Both read class counts as BLV does, and both are plain cross entropy in
``eval()`` mode. Resampling (RS) is a data-side option, not a loss (docs/training.md).
"""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import torch
from mmseg.models.builder import LOSSES

from .class_frequency import ClassCounts, load_class_counts
from .count_loss import ClassCountCrossEntropy

# Reweighting schemes: w_k ∝ q_k^-1/2 ('inverse_sqrt', the milder and more common one for
# segmentation) or q_k^-1 ('inverse').
RW_SCHEMES = {'inverse_sqrt': 0.5, 'inverse': 1.0}


def _fill_absent(counts: np.ndarray, who: str) -> np.ndarray:
    """Classes with zero pixels are treated as the rarest present class (a finite prior and
    weight), with a warning: they can still appear in pseudo-labels."""
    present = counts > 0
    if present.all():
        return counts
    warnings.warn(f'{who}: classes {np.flatnonzero(~present).tolist()} have zero pixels in the '
                  'class statistics; they are treated as the rarest present class', stacklevel=4)
    filled = counts.copy()
    filled[~present] = counts[present].min()
    return filled


def log_prior(counts: np.ndarray) -> np.ndarray:
    """log π_k with π_k = q_k / Σ_j q_j (zero-pixel classes: see :func:`_fill_absent`)."""
    counts = _fill_absent(np.asarray(counts, dtype=np.float64), 'LogitAdjustedLoss')
    return np.log(counts / counts.sum())


def reweighting(counts: np.ndarray, scheme: str = 'inverse_sqrt') -> np.ndarray:
    """w_k ∝ q_k^-p, normalised so that the pixel-weighted mean Σ_k π_k w_k is 1: on the
    training distribution the loss keeps cross entropy's scale."""
    if scheme not in RW_SCHEMES:
        raise ValueError(f'unknown reweighting scheme {scheme!r}; choose one of '
                         f'{sorted(RW_SCHEMES)}')
    counts = _fill_absent(np.asarray(counts, dtype=np.float64), 'ReweightedCELoss')
    prior = counts / counts.sum()
    weight = prior ** -RW_SCHEMES[scheme]
    return weight / (prior * weight).sum()


@LOSSES.register_module()
class LogitAdjustedLoss(ClassCountCrossEntropy):
    """Logit adjustment (Menon et al., ICLR 2021): cross entropy of z_k + τ·log π_k in training,
    of z in eval, with π the class prior of the training labels (the source's pixel counts).

    Args:
        class_counts: C class pixel counts, or a path to a converter's
            ``sample_class_stats.json``.
        tau: the adjustment's temperature (Menon et al.: 1).
        num_classes: label-space size for a stats file (default 19).
    """

    def __init__(self, class_counts: ClassCounts, tau: float = 1.0, loss_weight: float = 1.0,
                 loss_name: str = 'loss_la', num_classes: int | None = None,
                 class_weight: list[float] | None = None, avg_non_ignore: bool = False) -> None:
        super().__init__(loss_name, loss_weight, class_weight, avg_non_ignore)
        self.tau = float(tau)
        counts = load_class_counts(class_counts, num_classes)
        self.register_buffer('log_prior', torch.as_tensor(log_prior(counts),
                                                          dtype=torch.float32))

    def training_logits(self, logits: torch.Tensor) -> torch.Tensor:
        self.check_logits(logits, self.log_prior.numel(), 'LogitAdjustedLoss')
        shape = (1, -1, *([1] * (logits.dim() - 2)))
        return logits.float() + self.tau * self.log_prior.view(shape)

    def extra_repr(self) -> str:
        return f'tau={self.tau}, log_prior={np.round(self.log_prior.tolist(), 3).tolist()}'


@LOSSES.register_module()
class ReweightedCELoss(ClassCountCrossEntropy):
    """Class-reweighted cross entropy ("RW"): in training, each pixel of class k weighs w_k
    (:func:`reweighting`), times ``class_weight`` if one is given; in eval, plain cross entropy.

    Args:
        class_counts: C class pixel counts, or a path to a converter's
            ``sample_class_stats.json``.
        scheme: 'inverse_sqrt' (w_k ∝ q_k^-1/2) or 'inverse' (w_k ∝ q_k^-1).
        num_classes: label-space size for a stats file (default 19).
    """

    def __init__(self, class_counts: ClassCounts, scheme: str = 'inverse_sqrt',
                 loss_weight: float = 1.0, loss_name: str = 'loss_rw',
                 num_classes: int | None = None, class_weight: list[float] | None = None,
                 avg_non_ignore: bool = False) -> None:
        super().__init__(loss_name, loss_weight, class_weight, avg_non_ignore)
        self.scheme = scheme
        counts = load_class_counts(class_counts, num_classes)
        self.register_buffer('rw_weight', torch.as_tensor(reweighting(counts, scheme),
                                                          dtype=torch.float32))

    def training_class_weight(self, logits: torch.Tensor) -> torch.Tensor:
        self.check_logits(logits, self.rw_weight.numel(), 'ReweightedCELoss')
        extra = self.eval_class_weight(logits)
        weight = self.rw_weight.to(logits.dtype)
        return weight if extra is None else weight * extra

    def extra_repr(self) -> str:
        return (f'scheme={self.scheme}, '
                f'weight={np.round(self.rw_weight.tolist(), 3).tolist()}')


def _options(cls: type) -> frozenset[str]:
    return frozenset(inspect.signature(cls.__init__).parameters) - {'self', 'class_counts'}


LA_OPTIONS = _options(LogitAdjustedLoss)
RW_OPTIONS = _options(ReweightedCELoss)
