# Cityscapes (1024x512) as the UDA target, 512x512 crops: data.train becomes a UDADataset whose
# target is Cityscapes train without its labels; validation and test stay Cityscapes val. A
# source file adds data.train.source (uda_gta_to_cityscapes_512x512.py).
from mmseg_uda.datasets import pipeline_configs  # a module: mmcv leaves it out of the config

_base_ = ['./cityscapes_half_512x512.py']
target_train_pipeline = pipeline_configs.target_train_pipeline(img_scale=(1024, 512),
                                                               crop_size=(512, 512))
data = dict(train=dict(
    _delete_=True,
    type='UDADataset',
    target=dict(type='CityscapesDataset', data_root='data/cityscapes/',
                img_dir='leftImg8bit/train', ann_dir='gtFine/train',
                pipeline=target_train_pipeline)))
