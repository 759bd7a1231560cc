"""Datasets: GTA, SYNTHIA, Cityscapes (DAFormer and HRDA resolutions), UDADataset with rare class
sampling. Importing this package registers them in mmseg's DATASETS (``CityscapesDataset``
replaces mmseg's class with a compatible subclass that adds ``crop_pseudo_margins``)."""
from .cityscapes import CityscapesDataset
from .config_utils import scale_pipelines, train_crop_size, without_labels
from .gta import GTADataset
from .pipelines import FormatValidPseudoMask
from .synthia import SynthiaDataset
from .uda_dataset import UDADataset

__all__ = ['CityscapesDataset', 'FormatValidPseudoMask', 'GTADataset', 'SynthiaDataset',
           'UDADataset', 'scale_pipelines', 'train_crop_size', 'without_labels']
