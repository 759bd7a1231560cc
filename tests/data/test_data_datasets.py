"""GTA, SYNTHIA and Cityscapes datasets built from the base configs, on generated data."""
from __future__ import annotations

import os
import os.path as osp

import numpy as np
import pytest
import torch
from data_helpers import (
    IMG_MEAN,
    IMG_STD,
    TINY,
    UDA_DATASETS,
    copy_domain,
    dataset_config,
    read_png,
    uda_config,
)
from mmseg.datasets import build_dataset

from mmseg_uda.datasets import CityscapesDataset, GTADataset, SynthiaDataset


def _transform(pipeline, kind):
    return next(t for t in pipeline if t['type'] == kind)


def _rgb(path: str) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as img:
        return np.asarray(img.convert('RGB'), np.float32)


@pytest.mark.parametrize('name', UDA_DATASETS)
def test_base_configs_build_and_yield_crops(tiny_data, name):
    cfg = uda_config(tiny_data, name, crop=(40, 56))
    uda = build_dataset(cfg.data.train)
    source_type = SynthiaDataset if name.startswith('synthia') else GTADataset
    assert isinstance(uda.source, source_type) and isinstance(uda.target, CityscapesDataset)
    assert len(uda) == len(uda.source) * len(uda.target) == 16 * TINY.n_cityscapes_train
    sample = uda[5]
    img, gt = sample['img'].data, sample['gt_semantic_seg'].data
    assert img.shape == sample['target_img'].data.shape == (3, 40, 56)
    assert img.dtype == torch.float32 and gt.dtype == torch.int64 and gt.shape == (1, 40, 56)
    assert set(gt.unique().tolist()) <= set(range(19)) | {255}
    val = build_dataset(cfg.data.val)
    assert len(val) == TINY.n_cityscapes_val and val.test_mode is False


def test_real_configs_keep_daformer_and_hrda_settings():
    expect = {'gta': ((1280, 720), (512, 512), (1024, 512)),
              'synthia': ((1280, 760), (512, 512), (1024, 512)),
              'gtaHR': ((2560, 1440), (1024, 1024), (2048, 1024)),
              'synthiaHR': ((2560, 1520), (1024, 1024), (2048, 1024))}
    for name, (src_scale, crop, tgt_scale) in expect.items():
        data = dataset_config(name).data
        src, tgt = data.train.source.pipeline, data.train.target.pipeline
        assert _transform(src, 'Resize')['img_scale'] == src_scale
        assert _transform(src, 'RandomCrop') == dict(type='RandomCrop', crop_size=crop,
                                                     cat_max_ratio=0.75)
        assert _transform(tgt, 'Resize')['img_scale'] == tgt_scale
        assert _transform(tgt, 'RandomCrop').get('cat_max_ratio', 1.0) == 1.0
        assert not any(t['type'] == 'LoadAnnotations' for t in tgt)
        assert _transform(data.val.pipeline, 'MultiScaleFlipAug')['img_scale'] == tgt_scale
        assert data.samples_per_gpu == 2


def test_normalisation_and_ignore_index(tiny_data):
    """A crop of the whole image without flip is the normalised image; padding is 0 in the image
    and 255 in the labels."""
    h, w = TINY.gta_size[1], TINY.gta_size[0]
    cfg = uda_config(tiny_data, 'gta', crop=(h + 8, w))
    pipe = cfg.data.train.source.pipeline
    _transform(pipe, 'RandomFlip')['prob'] = 0.0
    source = build_dataset(cfg.data.train.source)
    sample = source[3]
    img, gt = sample['img'].data.numpy(), sample['gt_semantic_seg'].data.numpy()[0]
    raw = _rgb(osp.join(tiny_data, 'gta', 'images', '00004.png'))
    np.testing.assert_allclose(img[:, :h].transpose(1, 2, 0), (raw - IMG_MEAN) / IMG_STD,
                               atol=1e-5)
    assert (img[:, h:] == 0).all() and (gt[h:] == 255).all()
    np.testing.assert_array_equal(
        gt[:h], read_png(osp.join(tiny_data, 'gta', 'labels', '00004_labelTrainIds.png')))

    val = build_dataset(cfg.data.val)
    v = val[1]
    raw = _rgb(osp.join(val.img_dir, val.img_infos[1]['filename']))
    np.testing.assert_allclose(v['img'][0].numpy().transpose(1, 2, 0),
                               (raw - IMG_MEAN) / IMG_STD, atol=1e-5)
    gt = val.get_gt_seg_map_by_idx(1)
    assert (gt[-2:] == 255).all()          # the ego car's bonnet is ignored


def test_synthia_source_keeps_19_classes_without_its_absent_ones(tiny_data):
    cfg = uda_config(tiny_data, 'synthia')
    source = build_dataset(cfg.data.train.source)
    assert source.CLASSES == CityscapesDataset.CLASSES and len(source.CLASSES) == 19
    seen = set()
    for i in range(len(source)):
        seen |= set(np.unique(source.get_gt_seg_map_by_idx(i)).tolist())
    assert not seen & {9, 14, 16} and {0, 2, 10} <= seen


def test_missing_converted_labels_name_the_converter(tiny_data, tmp_path):
    root = copy_domain(tiny_data, 'cityscapes', str(tmp_path))
    os.remove(osp.join(root, 'gtFine', 'val', 'munster',
                       'munster_000003_000019_gtFine_labelTrainIds.png'))
    cfg = uda_config(tiny_data, 'gta')
    cfg.data.val.data_root = root
    with pytest.raises(FileNotFoundError,
                       match=r'1 of 4 label files.*tools/convert_datasets/cityscapes\.py'):
        build_dataset(cfg.data.val)


def test_pseudo_margin_mask_follows_crop_and_flip(tiny_data):
    h, w = TINY.cityscapes_size[1], TINY.cityscapes_size[0]
    margins = [2, 10, 3, 7]
    expected = np.zeros((h, w), np.uint8)
    expected[2:h - 10, 3:w - 7] = 1
    for prob, want in ((0.0, expected), (1.0, expected[:, ::-1])):
        cfg = uda_config(tiny_data, 'gta', crop=(h, w), margins=margins)
        _transform(cfg.data.train.target.pipeline, 'RandomFlip')['prob'] = prob
        target = build_dataset(cfg.data.train.target)
        mask = target[0]['valid_pseudo_mask'].data
        assert mask.dtype == torch.uint8 and mask.shape == (1, h, w)
        np.testing.assert_array_equal(mask[0].numpy(), want)
    # Padding is outside the image, so no pseudo-label is valid there.
    cfg = uda_config(tiny_data, 'gta', crop=(h + 6, w), margins=[0, 0, 0, 0])
    mask = build_dataset(cfg.data.train.target)[0]['valid_pseudo_mask'].data[0]
    assert (mask[:h] == 1).all() and (mask[h:] == 0).all()


def test_pseudo_margins_only_when_asked_and_validated(tiny_data):
    cfg = uda_config(tiny_data, 'gta')
    assert 'valid_pseudo_mask' not in build_dataset(cfg.data.train.target)[0]
    cfg = uda_config(tiny_data, 'gta', margins=[30, 240, 30, 30])   # full-resolution values
    with pytest.raises(ValueError, match='crop_pseudo_margins=.*leave nothing of a 128x64'):
        build_dataset(cfg.data.train.target)[0]
    with pytest.raises(ValueError, match='4 non-negative'):
        build_dataset(uda_config(tiny_data, 'gta', margins=[1, 2, 3]).data.train.target)
