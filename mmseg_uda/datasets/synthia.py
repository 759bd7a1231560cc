from mmseg.datasets import CityscapesDataset as _MMSegCityscapes
from mmseg.datasets.builder import DATASETS
from mmseg.datasets.custom import CustomDataset

from .checks import require_converted_labels


@DATASETS.register_module()
class SynthiaDataset(CustomDataset):
    """SYNTHIA RAND-CITYSCAPES (``RGB/*.png``, ``GT/LABELS/*_labelTrainIds.png``).

    The output space stays the 19 Cityscapes classes; terrain, truck and train have no pixels.
    """

    CLASSES = _MMSegCityscapes.CLASSES
    PALETTE = _MMSegCityscapes.PALETTE

    def __init__(self, img_suffix: str = '.png', seg_map_suffix: str = '_labelTrainIds.png',
                 **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
        require_converted_labels(self, 'synthia')
