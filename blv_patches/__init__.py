"""BLV (Balancing Logit Variation, CVPR 2023) as an mmseg plug-in loss.

``BLVLoss`` is registered in mmseg's ``LOSSES``; ``apply_blv`` turns the cross-entropy losses of
any segmentor config into BLV losses. The paper's long-tail baselines, logit adjustment
(``LogitAdjustedLoss``) and class reweighting (``ReweightedCELoss``), share its class counts and
its wiring (``apply_loss``). ``PseudoLabelClassFrequency`` is paper Eq. 4: class
frequencies re-estimated from pseudo-labels, as an observer of a UDA wrapper.
"""
from .apply import COUNT_LOSSES, apply_blv, apply_loss, replace_cross_entropy
from .class_frequency import SCALE_FORMULAS, class_scale, load_class_counts, read_class_stats
from .long_tail_losses import LogitAdjustedLoss, ReweightedCELoss, log_prior, reweighting
from .loss import BLV_OPTIONS, BLVLoss
from .pseudo_frequency import PseudoLabelClassFrequency
from .variation import VARIATIONS, sample_variation

__all__ = ['BLVLoss', 'BLV_OPTIONS', 'COUNT_LOSSES', 'LogitAdjustedLoss',
           'PseudoLabelClassFrequency', 'ReweightedCELoss', 'apply_blv', 'apply_loss',
           'replace_cross_entropy', 'class_scale', 'load_class_counts', 'log_prior',
           'read_class_stats', 'reweighting',
           'sample_variation', 'SCALE_FORMULAS', 'VARIATIONS']
