"""Helpers shared by the segmentors and heads."""
from .boxes import Box, boxes_mask, merge_windows, sample_crop_box, sliding_windows

__all__ = ['Box', 'boxes_mask', 'merge_windows', 'sample_crop_box', 'sliding_windows']
