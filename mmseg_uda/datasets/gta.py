from mmseg.datasets import CityscapesDataset as _MMSegCityscapes
from mmseg.datasets.builder import DATASETS
from mmseg.datasets.custom import CustomDataset

from .checks import require_converted_labels


@DATASETS.register_module()
class GTADataset(CustomDataset):
    """GTA5 (``images/*.png``, ``labels/*_labelTrainIds.png``) in the 19 Cityscapes classes."""

    CLASSES = _MMSegCityscapes.CLASSES
    PALETTE = _MMSegCityscapes.PALETTE

    def __init__(self, img_suffix: str = '.png', seg_map_suffix: str = '_labelTrainIds.png',
                 **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
        require_converted_labels(self, 'gta')
