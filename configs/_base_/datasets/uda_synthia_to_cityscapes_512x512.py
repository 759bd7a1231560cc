# SYNTHIA (1280x760) -> Cityscapes (1024x512), 512x512 crops: DAFormer's data settings.
# HRDA's 1024x1024 variant (2560x1520 -> 2048x1024): the scales doubled by scale_pipelines.
from mmseg_uda.datasets import pipeline_configs  # a module: mmcv leaves it out of the config

_base_ = ['./uda_cityscapes_target_512x512.py']
source_train_pipeline = pipeline_configs.labelled_train_pipeline(img_scale=(1280, 760),
                                                                 crop_size=(512, 512))
data = dict(train=dict(source=dict(type='SynthiaDataset', data_root='data/synthia/',
                                   img_dir='RGB', ann_dir='GT/LABELS',
                                   pipeline=source_train_pipeline)))
