"""BLV (Balancing Logit Variation, CVPR 2023) as an mmseg plug-in loss.

``BLVLoss`` is registered in mmseg's ``LOSSES``; ``apply_blv`` turns the cross-entropy losses of
any segmentor config into BLV losses. ``PseudoLabelClassFrequency`` is paper Eq. 4: class
frequencies re-estimated from pseudo-labels, as an observer of a UDA wrapper.
"""
from .apply import apply_blv
from .class_frequency import SCALE_FORMULAS, class_scale, load_class_counts, read_class_stats
from .loss import BLV_OPTIONS, BLVLoss
from .pseudo_frequency import PseudoLabelClassFrequency
from .variation import VARIATIONS, sample_variation

__all__ = ['BLVLoss', 'BLV_OPTIONS', 'PseudoLabelClassFrequency', 'apply_blv', 'class_scale',
           'load_class_counts', 'read_class_stats', 'sample_variation', 'SCALE_FORMULAS',
           'VARIATIONS']
