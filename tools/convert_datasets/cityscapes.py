"""Convert Cityscapes labels to the 19 Cityscapes train ids; write rare-class-sampling statistics.

Reads DATA_ROOT/{leftImg8bit,gtFine}/{train,val}/CITY/ (labels: *_gtFine_labelIds.png).
Writes *_labelTrainIds.png beside each label, and sample_class_stats.json,
sample_class_stats_dict.json and samples_with_class.json into DATA_ROOT.

    python tools/convert_datasets/cityscapes.py data/cityscapes --nproc 8
"""
import sys

from mmseg_uda.datasets.conversion import main

if __name__ == '__main__':
    sys.exit(main('cityscapes', __doc__.splitlines()[0]))
