"""Convert GTA5 labels to the 19 Cityscapes train ids and write rare-class-sampling statistics.

Reads DATA_ROOT/images/*.png and DATA_ROOT/labels/*.png (Cityscapes label ids).
Writes *_labelTrainIds.png beside each label, and sample_class_stats.json,
sample_class_stats_dict.json and samples_with_class.json into DATA_ROOT.

    python tools/convert_datasets/gta.py data/gta --nproc 8
"""
import sys

from mmseg_uda.datasets.conversion import main

if __name__ == '__main__':
    sys.exit(main('gta', __doc__.splitlines()[0]))
