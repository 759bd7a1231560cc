# DAFormer's final UDA recipe: DACS with the EMA ramped to 0.999 and the ImageNet feature
# distance on the thing classes (lambda 0.005, min ratio 0.75, last backbone stage).
from mmseg_uda.datasets import label_maps  # a module: mmcv leaves it out of the config

_base_ = ['dacs.py']
uda = dict(
    alpha=0.999,
    imnet_feature_dist_lambda=0.005,
    imnet_feature_dist_classes=list(label_maps.THING_TRAINIDS),
    imnet_feature_dist_scale_min_ratio=0.75)
