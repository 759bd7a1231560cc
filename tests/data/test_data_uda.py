"""UDADataset and rare class sampling: the class distribution, the image choice, the re-crop rule,
and that target labels never reach a crop."""
from __future__ import annotations

import glob
import os.path as osp

import numpy as np
import pytest
from data_helpers import (
    FakeSegDataset,
    copy_domain,
    read_png,
    uda_config,
    write_gray_png,
    write_rcs_stats,
)
from mmseg.datasets import build_dataset
from scipy.stats import chisquare

from blv_patches.class_frequency import GTA5_PIXEL_COUNTS
from mmseg_uda.datasets import UDADataset
from mmseg_uda.datasets.rare_class_sampling import class_probabilities

GTA5_COUNTS = list(GTA5_PIXEL_COUNTS)


def rcs_dataset(tmp_path, per_image, source=None, **rcs):
    root = str(tmp_path / 'src')
    write_rcs_stats(root, per_image)
    source = source or FakeSegDataset(len(per_image), data_root=root)
    source.data_root = root
    cfg = dict(min_pixels=100, class_temp=0.1, min_crop_ratio=0.5)
    cfg.update(rcs)
    return UDADataset(source, FakeSegDataset(3), rare_class_sampling=cfg)


def test_class_probabilities_follow_the_formula():
    counts = {0: 5000, 1: 3000, 2: 1500, 5: 400, 13: 80, 18: 20}
    classes, p = class_probabilities(counts, temperature=0.1)
    assert classes.tolist() == [0, 1, 2, 5, 13, 18] and np.isclose(p.sum(), 1)
    f = np.array([5000, 3000, 1500, 400, 80, 20]) / 10000
    for i in range(6):          # softmax((1 - f) / T): p_i / p_j = exp((f_j - f_i) / T)
        for j in range(6):
            assert np.isclose(p[i] / p[j], np.exp((f[j] - f[i]) / 0.1))


def test_gta5_probabilities_match_daformer_numbers():
    classes, p = class_probabilities(dict(enumerate(GTA5_COUNTS)), temperature=0.01)
    p = dict(zip(classes.tolist(), p))
    assert all(p[c] < 1e-4 for c in (0, 1, 2, 8, 10))         # road, sidewalk, building, veg, sky
    assert 0.006 < p[13] < 0.008                                # car
    assert all(0.09 < p[c] < 0.13 for c in (6, 7, 12, 16, 17, 18))


def test_sampled_classes_pass_chi_square_against_the_formula(tmp_path):
    per_image = [{0: 5000, 1: 3000}, {2: 1500, 5: 400}, {13: 80, 18: 120}]
    ds = rcs_dataset(tmp_path, per_image, min_pixels=10)
    n = 20000
    draws = np.array([ds.rcs.sample_class() for _ in range(n)])
    observed = np.array([(draws == c).sum() for c in ds.rcs.classes])
    counts = {0: 5000, 1: 3000, 2: 1500, 5: 400, 13: 80, 18: 120}
    f = np.array([counts[c] for c in ds.rcs.classes]) / sum(counts.values())
    expected = np.exp((1 - f) / 0.1)
    expected = n * expected / expected.sum()
    assert expected.min() > 5                       # chi-square's validity condition
    assert chisquare(observed, expected).pvalue > 0.01
    # The same draws are far from a distribution with twice the temperature.
    wrong = np.exp((1 - f) / 0.2)
    assert chisquare(observed, n * wrong / wrong.sum()).pvalue < 1e-6


def test_image_choice_is_uniform_over_images_with_enough_pixels(tmp_path):
    per_image = [{18: 50, 0: 9000}, {18: 500, 0: 9000}, {18: 2000, 0: 9000}, {0: 9000}]
    ds = rcs_dataset(tmp_path, per_image, min_pixels=100)
    assert ds.rcs.indices[18] == [1, 2] and ds.rcs.indices[0] == [0, 1, 2, 3]
    picks = np.array([ds.rcs.sample_index(18) for _ in range(2000)])
    assert abs((picks == 1).sum() - 1000) < 5 * np.sqrt(2000 * 0.25)


def test_recrop_until_the_crop_holds_enough_of_the_class(tmp_path):
    # min_pixels * min_crop_ratio = 50: crops of image 1 hold 20, 50 (not more), 60 pixels.
    pixels = [20, 50, 60, 70]
    source = FakeSegDataset(2, labels=lambda i, call: np.where(
        np.arange(100).reshape(10, 10) < pixels[call], 18, 0))
    ds = rcs_dataset(tmp_path, [{0: 900}, {18: 200, 0: 900}], source=source, min_pixels=100)
    sample = ds.rare_class_source_sample(cls=18)
    assert source.loads == [1, 1, 1] and sample['img_metas'].data['call'] == 2


def test_recrop_gives_up_after_ten_recrops(tmp_path):
    source = FakeSegDataset(2, labels=lambda i, call: np.zeros((10, 10)))
    ds = rcs_dataset(tmp_path, [{0: 900}, {18: 200, 0: 900}], source=source, min_pixels=100)
    sample = ds.rare_class_source_sample(cls=18)
    assert source.loads == [1] * 11 and sample['img_metas'].data['call'] == 10
    source.loads.clear()
    ds.rcs.min_crop_ratio = 0                    # DAFormer: ratio 0 turns re-cropping off
    ds.rare_class_source_sample(cls=18)
    assert source.loads == [1]


def test_rcs_errors_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match=r'classes \[18\] .* min_pixels=100'):
        rcs_dataset(tmp_path, [{0: 900, 18: 40}], min_pixels=100)
    source = FakeSegDataset(2, data_root=str(tmp_path / 'nothing'))
    with pytest.raises(FileNotFoundError, match=r'sample_class_stats\.json.*convert_datasets'):
        UDADataset(source, FakeSegDataset(2), rare_class_sampling=dict(
            min_pixels=1, class_temp=0.01, min_crop_ratio=0.5))


def test_pairs_source_and_target_without_rcs():
    source, target = FakeSegDataset(3), FakeSegDataset(4)
    ds = UDADataset(source, target)
    assert len(ds) == 12 and ds.CLASSES == target.CLASSES and ds.PALETTE == target.PALETTE
    item = ds[7]
    assert set(item) == {'img', 'img_metas', 'gt_semantic_seg', 'target_img', 'target_img_metas'}
    assert item['img_metas'].data['index'] == 1 and item['target_img_metas'].data['index'] == 3
    target.CLASSES = target.CLASSES[:16]
    with pytest.raises(ValueError, match='share CLASSES'):
        UDADataset(source, target)


def test_target_crop_must_not_read_target_labels(tiny_data):
    cfg = uda_config(tiny_data, 'gta')
    crop = next(t for t in cfg.data.train.target.pipeline if t['type'] == 'RandomCrop')
    crop['cat_max_ratio'] = 0.75
    with pytest.raises(ValueError, match='cat_max_ratio'):
        build_dataset(cfg.data.train)


@pytest.mark.parametrize('load_target_gt', [False, True])
def test_target_labels_never_reach_the_crop_choice(tiny_data, tmp_path,
                                                  load_target_gt):
    """The same RNG state gives the same samples whatever the target labels say."""
    target_root = copy_domain(tiny_data, 'cityscapes', str(tmp_path))
    cfg = uda_config(tiny_data, 'gta', crop=(32, 32), margins=[1, 4, 1, 1],
                     rcs=dict(min_pixels=0, class_temp=0.01, min_crop_ratio=0.5))
    cfg.data.train.target.data_root = target_root
    if load_target_gt:     # DAFormer's target pipeline loads the labels; they still must not count
        pipe = cfg.data.train.target.pipeline
        pipe.insert(1, dict(type='LoadAnnotations'))
        pipe[-1]['keys'] = ['img', 'gt_semantic_seg']

    def draw():
        np.random.seed(1)
        ds = build_dataset(cfg.data.train)
        return [ds[i] for i in range(8)]

    before = draw()
    for path in glob.glob(osp.join(target_root, 'gtFine', 'train', '*', '*_labelTrainIds.png')):
        write_gray_png(path, np.zeros_like(read_png(path)))   # one class: crops would differ
    after = draw()
    for a, b in zip(before, after):
        assert set(a) == {'img', 'img_metas', 'gt_semantic_seg', 'target_img',
                          'target_img_metas', 'valid_pseudo_mask'}
        for key in ('img', 'gt_semantic_seg', 'target_img', 'valid_pseudo_mask'):
            assert (a[key].data == b[key].data).all()
        assert a['target_img_metas'].data['filename'] == b['target_img_metas'].data['filename']


@pytest.mark.parametrize('name', ['gta', 'gtaHR'])
def test_recrop_decodes_once_and_gives_the_full_reload_samples(tiny_data, monkeypatch, name):
    """Re-crops come from the image decoded once; the draws (class, image, crop offsets, flips)
    and so the samples are those of DAFormer's full reload of the pipeline."""
    import mmcv

    cfg = uda_config(tiny_data, name, crop=(32, 32),
                     rcs=dict(min_pixels=1, class_temp=0.01, min_crop_ratio=50.0))
    ds = build_dataset(cfg.data.train)
    assert ds._recrop is not None
    assert [type(t).__name__ for t in ds._recrop.decode_steps] == [
        'LoadImageFromFile', 'LoadAnnotations', 'Resize']
    decodes = []
    real = mmcv.imfrombytes
    monkeypatch.setattr(mmcv, 'imfrombytes', lambda *a, **k: decodes.append(1) or real(*a, **k))

    def draw(recrop):
        ds._recrop = recrop
        np.random.seed(3)
        decodes.clear()
        samples = [ds.rare_class_source_sample(cls=12) for _ in range(3)]  # rider: rarely enough
        return samples, len(decodes)

    recrop = ds._recrop
    once, once_decodes = draw(recrop)
    full, full_decodes = draw(None)
    assert once_decodes == 2 * 3  # image + label, once per pick
    assert full_decodes > once_decodes  # the full reload decodes again for each re-crop
    for a, b in zip(once, full):
        assert np.array_equal(a['img'].data.numpy(), b['img'].data.numpy())
        assert np.array_equal(a['gt_semantic_seg'].data.numpy(), b['gt_semantic_seg'].data.numpy())
        assert a['img_metas'].data['flip'] == b['img_metas'].data['flip']


def test_rs_draws_classes_uniformly_and_images_by_hand_computed_probabilities(tmp_path):
    """Experiment 41's RS: class_temp=None draws each class with 1/C, then an image holding it;
    min_crop_ratio=0 keeps the pipeline's own crop. Image 0 holds classes 0 and 1, image 1
    classes 0 and 2, image 2 class 2 only: P = (1/3)(1/2 + 1) = 1/2, (1/3)(1/2 + 1/2) = 1/3,
    (1/3)(1/2) = 1/6."""
    per_image = [{0: 500, 1: 500}, {0: 500, 2: 500}, {2: 500}]
    ds = rcs_dataset(tmp_path, per_image, min_pixels=100, class_temp=None, min_crop_ratio=0.0)
    np.testing.assert_allclose(ds.rcs.probs, [1 / 3] * 3)
    n = 12000
    picks = np.array([ds.rcs.sample_index(ds.rcs.sample_class()) for _ in range(n)])
    observed = np.bincount(picks, minlength=3)
    assert chisquare(observed, n * np.array([1 / 2, 1 / 3, 1 / 6])).pvalue > 0.01
    assert ds.rcs.crop_has_class(np.zeros((4, 4)), 1)  # no re-crop: any crop is accepted
