"""DACS building blocks: EMA ramp, pseudo-labels, margins, ClassMix, strong augmentation,
feature distance."""
import math
import random

import pytest
import torch
import torch.nn as nn
from uda_helpers import IMG_NORM_CFG

from mmseg_uda.datasets.label_maps import THING_TRAINIDS
from mmseg_uda.models.uda.augment import StrongAugmentation, blur_kernel_size
from mmseg_uda.models.uda.classmix import class_mix_masks, mix
from mmseg_uda.models.uda.ema import copy_parameters, disable_dropout, ema_alpha, ema_update
from mmseg_uda.models.uda.feature_distance import (
    class_lookup,
    downscale_label_ratio,
    masked_feature_distance,
    thing_mask,
)
from mmseg_uda.models.uda.pseudo_label import pseudo_label_and_weight, zero_row_margins

# --- EMA ------------------------------------------------------------------------------------


def test_ema_alpha_ramps_then_saturates():
    assert ema_alpha(1, 0.999) == pytest.approx(0.5)
    assert ema_alpha(9, 0.999) == pytest.approx(0.9)
    assert ema_alpha(999, 0.999) == pytest.approx(0.999)   # the ramp meets the cap at i=999
    assert ema_alpha(500, 0.999) == pytest.approx(1 - 1 / 501)
    assert ema_alpha(40000, 0.999) == pytest.approx(0.999)
    assert ema_alpha(99, 0.99) == pytest.approx(0.99)
    assert ema_alpha(5000, 0.99) == pytest.approx(0.99)


def _bn_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5))


def test_ema_update_averages_parameters_not_buffers():
    teacher, student = _bn_net(), _bn_net()
    teacher[1].running_mean.fill_(7.0)
    t0 = [p.clone() for p in teacher.parameters()]
    ema_update(teacher, student, alpha=0.9)
    for t, t_old, s in zip(teacher.parameters(), t0, student.parameters()):
        torch.testing.assert_close(t, 0.9 * t_old + 0.1 * s)
    assert torch.all(teacher[1].running_mean == 7.0)  # BN statistics are the teacher's own
    copy_parameters(teacher, student)
    for t, s in zip(teacher.parameters(), student.parameters()):
        assert torch.equal(t, s)
    assert torch.all(teacher[1].running_mean == 7.0)


def test_ema_rejects_different_architectures():
    with pytest.raises(ValueError, match='same model config'):
        ema_update(_bn_net(), nn.Conv2d(3, 4, 3), 0.5)


def test_disable_dropout_keeps_batchnorm_in_train_mode():
    net = _bn_net().train()
    disable_dropout(net)
    assert net[1].training and not net[2].training
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(net[2](x), x)  # dropout is the identity now

# --- pseudo-labels ---------------------------------------------------------------------------


def _two_class_logits(margins: torch.Tensor) -> torch.Tensor:
    """B×2×H×W logits whose softmax max is sigmoid(|margin|), class 1 where margin > 0."""
    return torch.stack([torch.zeros_like(margins), margins], dim=1)


def test_pseudo_weight_is_the_confident_fraction():
    # sigmoid(4) = 0.982 >= 0.968 > sigmoid(3) = 0.953: 30 of 100 pixels are confident.
    margins = torch.full((1, 10, 10), 3.0)
    margins[0, :3] = 4.0
    margins[0, 5:] = -3.0
    label, weight, ratio = pseudo_label_and_weight(_two_class_logits(margins), 0.968)
    assert ratio.item() == pytest.approx(0.3)
    assert torch.all(weight == ratio) and weight.shape == (1, 10, 10)
    assert torch.equal(label, (margins > 0).long())


def test_pseudo_weight_is_one_scalar_for_the_whole_batch():
    margins = torch.full((2, 4, 4), 3.0)
    margins[0] = 5.0  # image 0 all confident, image 1 not at all
    _, weight, ratio = pseudo_label_and_weight(_two_class_logits(margins), 0.968)
    assert ratio.item() == pytest.approx(0.5)
    assert torch.all(weight == 0.5)


def test_class_balanced_pixels_keep_the_confident_half_of_an_unsure_class():
    """Class 1 is confident everywhere (margin 5): all of it passes the global threshold.
    Class 0 never reaches it (margins -1 .. -3, confidence 0.73 .. 0.95): 'confident_pixels'
    drops it all, 'class_balanced_pixels' keeps its most confident half."""
    margins = torch.full((1, 4, 10), 5.0)
    margins[0, 2:] = -torch.linspace(1.0, 3.0, 20).reshape(2, 10)
    logits = _two_class_logits(margins)
    _, plain, ratio = pseudo_label_and_weight(logits, 0.968, 'confident_pixels')
    label, balanced, balanced_ratio = pseudo_label_and_weight(logits, 0.968,
                                                              'class_balanced_pixels')
    assert torch.all(plain[0, :2] == 1) and torch.all(plain[0, 2:] == 0)
    assert torch.all(balanced[0, :2] == 1)
    unsure = balanced[0, 2:].flatten()    # ordered by growing confidence
    assert torch.all(unsure[:10] == 0) and torch.all(unsure[10:] == 1)
    assert torch.equal(label, (margins > 0).long())
    assert balanced_ratio == ratio == pytest.approx(0.5)


def test_row_margins_zero_top_and_bottom():
    weight = torch.full((2, 512, 512), 0.7)
    out = zero_row_margins(weight, 15, 120)
    assert torch.all(out[:, :15] == 0) and torch.all(out[:, -120:] == 0)
    assert torch.all(out[:, 15:-120] == 0.7)
    assert torch.all(weight == 0.7)  # not in place

# --- ClassMix ---------------------------------------------------------------------------------


def test_classmix_image_mode_pastes_whole_classes_half_of_each_image():
    labels = torch.tensor([[0, 0, 1, 1, 2, 2, 3, 255],
                           [5, 5, 5, 6, 6, 255, 255, 255]]).view(2, 1, 2, 4)
    for _ in range(20):
        masks = class_mix_masks(labels, 'image')
        for label, mask in zip(labels, masks):
            classes = [c for c in label.unique().tolist() if c != 255]
            chosen = [c for c in classes if mask[label == c].all()]
            for c in classes:  # a class is pasted completely or not at all
                assert mask[label == c].all() or not mask[label == c].any()
            assert len(chosen) == math.ceil(len(classes) / 2)
            assert not mask[label == 255].any()


def test_classmix_choice_is_uniform():
    labels = torch.tensor([0, 1, 2, 3]).view(1, 1, 1, 4)
    draws = 2000
    counts = torch.zeros(4)
    for _ in range(draws):
        counts += class_mix_masks(labels, 'image').view(4).float()
    # Each class is in the chosen half with p = 0.5; sd of the frequency = 0.011.
    torch.testing.assert_close(counts / draws, torch.full((4,), 0.5), atol=0.05, rtol=0)
    assert torch.all(counts.view(-1) > 0)


def test_classmix_batch_mode_draws_from_the_batch_union_with_ignore():
    # Image 0 has only class 1; the union is {1, 2, 3, 255}: 2 of 4 classes are chosen, so
    # image 0's class 1 is pasted with p = 0.5 and 255 pixels can be pasted too.
    labels = torch.tensor([[1, 1, 1, 1], [2, 3, 255, 255]]).view(2, 1, 1, 4)
    pasted_1 = pasted_ignore = 0
    for _ in range(400):
        masks = class_mix_masks(labels, 'batch')
        pasted_1 += int(masks[0].all())
        pasted_ignore += int(masks[1, 0, 0, 2:].all())
        assert masks[0].all() or not masks[0].any()
    assert 0.4 < pasted_1 / 400 < 0.6
    assert 0.4 < pasted_ignore / 400 < 0.6
    with pytest.raises(ValueError, match='classes_from'):
        class_mix_masks(labels, 'pixels')


def test_mix_takes_source_inside_the_mask_for_images_labels_and_weights():
    mask = torch.tensor([[True, False], [False, True]]).view(1, 1, 2, 2)
    src_img, tgt_img = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    mixed = mix(mask, src_img, tgt_img)
    assert torch.equal(mixed[0, :, 0, 0], torch.ones(3)) and torch.equal(mixed[0, :, 0, 1],
                                                                         torch.zeros(3))
    labels = mix(mask, torch.full((1, 1, 2, 2), 4), torch.full((1, 1, 2, 2), 9))
    assert labels.view(-1).tolist() == [4, 9, 9, 4]

# --- strong augmentation -----------------------------------------------------------------------


def test_blur_kernel_sizes_match_daformer():
    assert blur_kernel_size(512) == 51
    assert blur_kernel_size(1024) == 103
    assert blur_kernel_size(64) % 2 == 1


def test_strong_augmentation_probabilities(monkeypatch):
    aug = StrongAugmentation(color_jitter_p=0.8, blur_p=0.5)
    calls = {'jitter': 0, 'blur': 0}
    monkeypatch.setattr(aug, 'jitter', lambda img, cfg: calls.__setitem__(
        'jitter', calls['jitter'] + 1) or img)
    monkeypatch.setattr(aug, 'gaussian_blur', lambda img: calls.__setitem__(
        'blur', calls['blur'] + 1) or img)
    random.seed(1)
    n = 1000
    for _ in range(n):
        aug(torch.zeros(1, 3, 4, 4), IMG_NORM_CFG)
    # Binomial frequencies: sd 0.013 (jitter) and 0.016 (blur); 4 sd tolerance.
    assert abs(calls['jitter'] / n - 0.8) < 0.05
    assert abs(calls['blur'] / n - 0.5) < 0.065


def test_strong_augmentation_changes_only_its_output():
    aug = StrongAugmentation(color_jitter_p=1.0, blur_p=1.0)
    img = torch.randn(2, 3, 32, 32)
    original = img.clone()
    out = aug(img, IMG_NORM_CFG)
    assert torch.equal(img, original)
    assert out.shape == img.shape and not torch.allclose(out, img)
    # Blur smooths: neighbouring pixels differ less than before.
    blurred = aug.gaussian_blur(img)
    assert (blurred.diff(dim=-1).abs().mean() < 0.5 * img.diff(dim=-1).abs().mean())


def test_color_jitter_stays_in_the_normalised_image_range():
    aug = StrongAugmentation(color_jitter_strength=0.2)
    mean = torch.tensor(IMG_NORM_CFG['mean']).view(1, 3, 1, 1)
    std = torch.tensor(IMG_NORM_CFG['std']).view(1, 3, 1, 1)
    img = (torch.rand(4, 3, 16, 16) * 255 - mean) / std
    unit = (aug.jitter(img, IMG_NORM_CFG) * std + mean) / 255
    assert unit.min() >= -1e-5 and unit.max() <= 1 + 1e-5
    assert not torch.allclose(unit, (img * std + mean) / 255)

# --- ImageNet feature distance -----------------------------------------------------------------


def test_downscale_label_ratio_dominant_class_or_ignore():
    label = torch.zeros(1, 1, 4, 8, dtype=torch.long)
    label[..., :4, :4] = 13                        # cell 0: 100% car
    label[..., :4, 4:8] = 6                        # cell 1: 75% light, 25% road
    label[..., 3, 4:8] = 0
    small = downscale_label_ratio(label, 4, 0.75, 19)
    assert small.view(-1).tolist() == [13, 6]
    label[..., 2:4, 4:8] = 0                       # cell 1: 50/50 → ignore
    label[..., :4, :3] = 255                       # cell 0: 75% ignore → ignore
    assert downscale_label_ratio(label, 4, 0.75, 19).view(-1).tolist() == [255, 255]
    with pytest.raises(ValueError, match='multiple'):
        downscale_label_ratio(label, 3, 0.75, 19)


def test_feature_distance_only_counts_thing_cells():
    label = torch.zeros(1, 1, 8, 8, dtype=torch.long)   # road everywhere …
    label[..., :4, :4] = 13                             # … but one car cell
    lut = class_lookup(THING_TRAINIDS)
    mask = thing_mask(label, (2, 2), lut, 0.75, 19)
    assert mask.view(-1).tolist() == [True, False, False, False]
    ref = torch.zeros(1, 8, 2, 2)
    feat = torch.zeros(1, 8, 2, 2, requires_grad=True)
    with torch.no_grad():
        feat[0, :, 1, 1] = 5.0                          # differs only on a road cell
    dist = masked_feature_distance(feat, ref, mask)
    assert dist.item() == 0.0
    dist.backward()
    assert torch.all(feat.grad == 0)
    with torch.no_grad():
        feat[0, :2, 0, 0] = 3.0                         # and now on the car cell: |(3,3)| = 4.24
    assert masked_feature_distance(feat, ref, mask).item() == pytest.approx(math.sqrt(18))


def test_feature_distance_without_things_is_zero_not_nan():
    feat, ref = torch.ones(1, 4, 2, 2), torch.zeros(1, 4, 2, 2)
    empty = torch.zeros(1, 1, 2, 2, dtype=torch.bool)
    assert masked_feature_distance(feat, ref, empty).item() == 0.0
    assert masked_feature_distance(feat, ref).item() == pytest.approx(2.0)  # no mask: all cells


def test_jitter_is_per_image_like_daformer():
    """Each image is jittered by its own call (own factors, own order of the four operations):
    the batch result equals jittering the images one by one from the same torch stream."""
    aug = StrongAugmentation(color_jitter_strength=0.2)
    img = torch.randn(3, 3, 16, 16)
    torch.manual_seed(4)
    batch = aug.jitter(img, IMG_NORM_CFG)
    torch.manual_seed(4)
    one_by_one = torch.cat([aug.jitter(img[i:i + 1], IMG_NORM_CFG) for i in range(3)])
    torch.testing.assert_close(batch, one_by_one)


def test_strong_augmentation_decisions_use_daformers_draws(monkeypatch):
    """DAFormer: jitter when u1 > color_jitter_probability (0.2), blur when u2 > 0.5, both
    from Python's random, for the whole batch."""
    aug = StrongAugmentation(color_jitter_p=0.8, blur_p=0.5)
    applied = []
    monkeypatch.setattr(aug, 'jitter', lambda img, cfg: applied.append('jitter') or img)
    monkeypatch.setattr(aug, 'gaussian_blur', lambda img: applied.append('blur') or img)
    random.seed(7)
    expected = []
    for _ in range(50):
        u1, u2 = random.uniform(0, 1), random.uniform(0, 1)
        expected += (['jitter'] if u1 > 0.2 else []) + (['blur'] if u2 > 0.5 else [])
    random.seed(7)
    for _ in range(50):
        aug(torch.zeros(2, 3, 4, 4), IMG_NORM_CFG)
    assert applied == expected


def test_the_fd_config_names_daformers_thing_classes():
    """configs/_base_/uda/dacs_a999_fdthings.py reads the thing ids from label_maps: DAFormer's
    traffic light, sign, person, rider, car, truck, bus, train, motorcycle, bicycle."""
    from pathlib import Path

    from mmcv import Config
    cfg = Config.fromfile(str(Path(__file__).parents[2] / 'configs' / '_base_' / 'uda' /
                              'dacs_a999_fdthings.py'))
    assert tuple(cfg.uda.imnet_feature_dist_classes) == THING_TRAINIDS
    assert THING_TRAINIDS == (6, 7, 11, 12, 13, 14, 15, 16, 17, 18)


def test_synthia_subsets_are_the_papers_class_lists():
    """The analysis derives SYNTHIA's 16 and 13 classes from label_maps; the paper's lists in
    paper_tables.json must be the same classes."""
    from mmseg_uda.experiments.analysis import PAPER, SYNTHIA13, SYNTHIA16
    assert SYNTHIA16 == tuple(PAPER['classes_synthia16'])
    assert SYNTHIA13 == tuple(PAPER['classes_synthia13'])


def test_tail_classes_are_the_papers():
    """label_maps.TAIL_TRAINIDS is the tail mIoU's class list; paper_tables.json names them."""
    from mmseg_uda.datasets.label_maps import CLASSES, TAIL_TRAINIDS
    from mmseg_uda.experiments.analysis import PAPER, TAIL
    assert TAIL == tuple(CLASSES[c] for c in TAIL_TRAINIDS) == tuple(PAPER['tail_classes_paper'])
