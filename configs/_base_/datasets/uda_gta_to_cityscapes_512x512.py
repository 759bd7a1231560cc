# GTA5 (1914x1052 resized to 1280x720) -> Cityscapes (1024x512), 512x512 crops: DAFormer's data
# settings. HRDA's 1024x1024 variant (2560x1440 -> 2048x1024) is this file with the scales
# doubled by mmseg_uda.datasets.scale_pipelines (mmseg_uda/experiments/recipes.py).
from mmseg_uda.datasets import pipeline_configs  # a module: mmcv leaves it out of the config

_base_ = ['./uda_cityscapes_target_512x512.py']
source_train_pipeline = pipeline_configs.labelled_train_pipeline(img_scale=(1280, 720),
                                                                 crop_size=(512, 512))
data = dict(train=dict(source=dict(type='GTADataset', data_root='data/gta/', img_dir='images',
                                   ann_dir='labels', pipeline=source_train_pipeline)))
