"""HRDA's pseudo-label margin mask: which target pixels may carry a pseudo-label.

The dataset creates the mask at the loaded image's size (1 inside, 0 in the margins) and lists
it in ``seg_fields``, so Resize, RandomCrop and RandomFlip treat it like a label.
``FormatValidPseudoMask`` then turns it into a tensor next to ``img`` in the sample.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mmcv.parallel import DataContainer as DC
from mmseg.datasets.builder import PIPELINES
from mmseg.datasets.pipelines.formatting import to_tensor

KEY = 'valid_pseudo_mask'


def pseudo_margin_mask(height: int, width: int, margins: Sequence[int]) -> np.ndarray:
    """uint8 (height, width) mask: 0 within ``margins`` = (top, bottom, left, right) pixels
    of the border, 1 elsewhere."""
    top, bottom, left, right = margins
    if top + bottom >= height or left + right >= width:
        raise ValueError(
            f'crop_pseudo_margins={list(margins)} (top, bottom, left, right) leave nothing of a '
            f'{width}x{height} image; they are in pixels of the original image, so scale them '
            'for smaller images (HRDA uses [30, 240, 30, 30] for 2048x1024).')
    mask = np.zeros((height, width), np.uint8)
    mask[top:height - bottom, left:width - right] = 1
    return mask


@PIPELINES.register_module()
class FormatValidPseudoMask:
    """Format ``valid_pseudo_mask`` as a (1, H, W) uint8 tensor in a stacked DataContainer.

    Pixels that Pad filled (with the label pad value) count as invalid.
    """

    def __call__(self, results: dict) -> dict:
        if KEY in results:
            mask = (results[KEY] == 1).astype(np.uint8)
            results[KEY] = DC(to_tensor(np.ascontiguousarray(mask[None])), stack=True)
        return results

    def __repr__(self) -> str:
        return self.__class__.__name__ + '()'
