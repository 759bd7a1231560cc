"""Decode heads; importing this package also gives every mmseg head a ``seg_weight``."""
from . import patch_mmseg_heads  # noqa: F401  (patches BaseDecodeHead before any head is built)
from .daformer_head import DAFormerHead
from .dlv2_head import DLV2Head
from .hrda_head import HRDAHead, MultiResFeatures

__all__ = ['DAFormerHead', 'DLV2Head', 'HRDAHead', 'MultiResFeatures']
