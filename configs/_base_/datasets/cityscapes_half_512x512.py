# Cityscapes alone (2048x1024 resized to 1024x512), 512x512 crops: a data set for supervised
# training, and the target, validation and test base of every UDA data set. Scales and crop size
# of a derived config: mmseg_uda.datasets.scale_pipelines (docs/data.md).
from mmseg_uda.datasets import pipeline_configs  # a module: mmcv leaves it out of the config

img_norm_cfg = pipeline_configs.IMG_NORM_CFG
crop_size = (512, 512)
test_pipeline = pipeline_configs.test_pipeline(img_scale=(1024, 512))
# Names that start with '__' stay out of the config too: val and test are this one set.
__cityscapes_val = dict(type='CityscapesDataset', data_root='data/cityscapes/',
                        img_dir='leftImg8bit/val', ann_dir='gtFine/val', pipeline=test_pipeline)
data = dict(
    samples_per_gpu=2,
    workers_per_gpu=4,
    train=dict(type='CityscapesDataset', data_root='data/cityscapes/',
               img_dir='leftImg8bit/train', ann_dir='gtFine/train',
               pipeline=pipeline_configs.labelled_train_pipeline(img_scale=(1024, 512),
                                                                 crop_size=crop_size)),
    val=__cityscapes_val,
    test=__cityscapes_val)
