"""Cityscapes, usable at 1024x512 (DAFormer) and 2048x1024 (HRDA) through the pipeline's Resize,
with HRDA's optional pseudo-label margin mask."""
from __future__ import annotations

import os.path as osp
from collections.abc import Sequence

from mmseg.datasets import CityscapesDataset as _MMSegCityscapes
from mmseg.datasets.builder import DATASETS
from mmseg.datasets.pipelines import Collect
from PIL import Image

from .checks import require_converted_labels, require_split_file
from .pipelines.pseudo_margins import KEY, FormatValidPseudoMask, pseudo_margin_mask


# Registered under mmseg's own name, as HRDA extends mmseg's class in place: configs keep
# ``type='CityscapesDataset'``, and without ``crop_pseudo_margins`` nothing changes.
@DATASETS.register_module(name='CityscapesDataset', force=True)
class CityscapesDataset(_MMSegCityscapes):
    """mmseg's Cityscapes dataset plus ``crop_pseudo_margins=(top, bottom, left, right)``.

    With margins, every training sample carries ``valid_pseudo_mask`` (uint8, 1 x H x W after
    the pipeline): 0 on the margins, in pixels of the original image, and on padding. The
    dataset adds the formatting step and the ``Collect`` key itself, so the pipeline config is
    the same with and without margins.
    """

    def __init__(self, crop_pseudo_margins: Sequence[int] | None = None, **kwargs):
        require_split_file(kwargs.get('split'), kwargs.get('data_root'))
        super().__init__(**kwargs)
        require_converted_labels(self, 'cityscapes')
        self.crop_pseudo_margins = None
        if crop_pseudo_margins is not None:
            margins = tuple(int(m) for m in crop_pseudo_margins)
            if len(margins) != 4 or min(margins) < 0:
                raise ValueError('crop_pseudo_margins must be 4 non-negative pixel counts '
                                 f'(top, bottom, left, right), got {crop_pseudo_margins}')
            self.crop_pseudo_margins = margins
            if not self.test_mode:
                self._collect_valid_pseudo_mask()
        self._sizes: dict[str, tuple[int, int]] = {}

    def _collect_valid_pseudo_mask(self) -> None:
        transforms = self.pipeline.transforms
        if not transforms or not isinstance(transforms[-1], Collect):
            raise ValueError('crop_pseudo_margins needs a pipeline that ends with Collect')
        transforms[-1].keys = list(transforms[-1].keys) + [KEY]
        transforms.insert(len(transforms) - 1, FormatValidPseudoMask())

    def _image_size(self, results: dict) -> tuple[int, int]:
        """(height, width) of the image file, from its header (cached)."""
        path = osp.join(results['img_prefix'], results['img_info']['filename'])
        if path not in self._sizes:
            with Image.open(path) as img:
                self._sizes[path] = (img.height, img.width)
        return self._sizes[path]

    def pre_pipeline(self, results: dict) -> None:
        super().pre_pipeline(results)
        if self.crop_pseudo_margins is not None and not self.test_mode:
            results[KEY] = pseudo_margin_mask(*self._image_size(results), self.crop_pseudo_margins)
            results['seg_fields'].append(KEY)
