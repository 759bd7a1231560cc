"""Convert SYNTHIA RAND-CITYSCAPES labels to the 19 Cityscapes train ids; write RCS statistics.

Reads DATA_ROOT/RGB/*.png and DATA_ROOT/GT/LABELS/*.png (16-bit, class id in the first channel).
Writes *_labelTrainIds.png beside each label, and sample_class_stats.json,
sample_class_stats_dict.json and samples_with_class.json into DATA_ROOT.

    python tools/convert_datasets/synthia.py data/synthia --nproc 8
"""
import sys

from mmseg_uda.datasets.conversion import main

if __name__ == '__main__':
    sys.exit(main('synthia', __doc__.splitlines()[0]))
