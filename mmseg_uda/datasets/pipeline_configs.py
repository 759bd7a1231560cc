"""The pipeline configs of the data-set base files, written once.

``configs/_base_/datasets/*.py`` call these (mmcv drops functions from a config), so the
labelled pipeline that Cityscapes, GTA and SYNTHIA share differs only in the arguments that
differ: the Resize scale and the crop. The steps are DAFormer's data settings
(lhoyer/DAFormer e6f6e041, configs/_base_/datasets/uda_gta_to_cityscapes_512x512.py).
"""
from __future__ import annotations

# ImageNet mean and std, RGB order.
IMG_NORM_CFG = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)


def _train_tail(crop_size: tuple[int, int], keys: list[str]) -> list[dict]:
    # Photometric augmentation is left to the UDA method (DACS), as in DAFormer.
    return [dict(type='RandomFlip', prob=0.5),
            dict(type='Normalize', **IMG_NORM_CFG),
            dict(type='Pad', size=crop_size, pad_val=0, seg_pad_val=255),
            dict(type='DefaultFormatBundle'),
            dict(type='Collect', keys=keys)]


def labelled_train_pipeline(img_scale: tuple[int, int],
                            crop_size: tuple[int, int]) -> list[dict]:
    """A labelled training set (a UDA source, or Cityscapes trained on alone): resize to
    ``img_scale`` (w, h), crop ``crop_size`` (h, w) with at most 75 % of one class."""
    return [dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='Resize', img_scale=img_scale),
            dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
            *_train_tail(crop_size, ['img', 'gt_semantic_seg'])]


def target_train_pipeline(img_scale: tuple[int, int],
                          crop_size: tuple[int, int]) -> list[dict]:
    """A UDA target: its labels are not even loaded, so no crop can depend on them
    (DAFormer#6); hence no ``cat_max_ratio``."""
    return [dict(type='LoadImageFromFile'),
            dict(type='Resize', img_scale=img_scale),
            dict(type='RandomCrop', crop_size=crop_size),
            *_train_tail(crop_size, ['img'])]


def test_pipeline(img_scale: tuple[int, int]) -> list[dict]:
    """Validation and test: one scale, no flip."""
    return [dict(type='LoadImageFromFile'),
            dict(type='MultiScaleFlipAug', img_scale=img_scale, flip=False, transforms=[
                dict(type='Resize', keep_ratio=True),
                dict(type='RandomFlip'),
                dict(type='Normalize', **IMG_NORM_CFG),
                dict(type='ImageToTensor', keys=['img']),
                dict(type='Collect', keys=['img']),
            ])]
