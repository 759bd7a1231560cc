"""HRDA: detail crops, fusion, sliding-window inference, losses, ablation switches, BLV."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmseg.ops import resize
from models_helpers import build_model, fake_batch, model_cfg, slide_inference

from blv_patches import BLVLoss, apply_blv
from mmseg_uda.models.utils.boxes import Box, merge_windows, sample_crop_box, sliding_windows

TINY = 'tiny_hrda_daformer_mitb0'  # 32×32 detail crop, crop_coord_divisible 8, stride 4


@pytest.fixture(scope='module')
def hrda():
    return build_model(TINY)


def _ce(logits, gt, weight=None):
    logits = resize(logits, size=gt.shape[2:], mode='bilinear', align_corners=False)
    ce = F.cross_entropy(logits, gt.squeeze(1), reduction='none', ignore_index=255)
    return (ce if weight is None else ce * weight).mean()


# --- detail crop --------------------------------------------------------------------------

def test_detail_crops_lie_inside_the_image_on_the_divisibility_grid_and_cover_all_offsets():
    torch.manual_seed(0)
    boxes = [sample_crop_box((96, 64), (32, 32), divisible=8) for _ in range(400)]
    for box in boxes:
        assert 0 <= box.y1 < box.y2 <= 96 and 0 <= box.x1 < box.x2 <= 64
        assert (box.height, box.width) == (32, 32)
        assert box.y1 % 8 == 0 and box.x1 % 8 == 0
    # Every allowed offset is drawn: 0..64 step 8 vertically, 0..32 step 8 horizontally.
    assert {b.y1 for b in boxes} == set(range(0, 65, 8))
    assert {b.x1 for b in boxes} == set(range(0, 33, 8))


def test_detail_crop_sequence_follows_the_global_torch_seed(hrda):
    img, metas, gt = fake_batch(size=96)

    def boxes(seed):
        torch.manual_seed(seed)
        out = []
        for _ in range(3):
            hrda.forward_train(img, metas, gt)
            out.append(hrda.last_train_crop_box)
        return out

    first = boxes(3)
    assert boxes(3) == first
    assert len(set(first)) > 1 or boxes(4) != first


def test_detail_crop_larger_than_image_is_a_clear_error():
    with pytest.raises(ValueError, match='hr_crop_size'):
        sample_crop_box((32, 32), (64, 64), divisible=8)


def test_misaligned_detail_box_names_crop_coord_divisible():
    with pytest.raises(ValueError, match='crop_coord_divisible'):
        Box(4, 36, 0, 32).scaled(1 / 8)


# --- fusion -------------------------------------------------------------------------------

def _training_parts(model, img, box):
    lr_img, hr_img = model._scaled_images(img)
    feats = model._multires_features(lr_img, hr_img, [box])
    return model.decode_head.forward_parts(feats)


def test_fused_output_equals_context_outside_the_detail_crop(hrda):
    hrda.eval()
    img, _, _ = fake_batch(size=64)
    box = Box(8, 40, 24, 56)  # in the 64×64 HR image; stride 4 → grid box (2, 10, 6, 14)
    with torch.no_grad():
        parts = _training_parts(hrda, img, box)
    assert parts['fused'].shape == (2, 19, 16, 16)  # stride 4 of the HR image
    assert parts['lr'].shape == (2, 19, 8, 8) and parts['hr'].shape == (2, 19, 8, 8)
    # Attention is zero outside the crop (LR grid box (1, 5, 3, 7)) and positive inside.
    att = parts['attention']
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[1:5, 3:7] = True
    assert (att[..., ~inside] == 0).all() and (att[..., inside] > 0).all()
    # Outside the crop, dilated by one LR pixel (the reach of bilinear upsampling), the fused
    # prediction is the upsampled context prediction.
    near = torch.zeros(16, 16, dtype=torch.bool)
    near[2 - 2:10 + 2, 6 - 2:14 + 2] = True
    up_lr = resize(parts['lr'], size=(16, 16), mode='bilinear', align_corners=False)
    torch.testing.assert_close(parts['fused'][..., ~near], up_lr[..., ~near])
    assert not torch.allclose(parts['fused'][..., near], up_lr[..., near])


def test_fixed_attention_one_replaces_context_by_detail_inside_the_crop():
    model = build_model(TINY, decode_head=dict(fixed_attention=1.0)).eval()
    assert model.decode_head.scale_attention is None
    img, _, _ = fake_batch(size=64)
    with torch.no_grad():
        parts = _training_parts(model, img, Box(16, 48, 16, 48))
    core = (slice(None), slice(None), slice(6, 10), slice(6, 10))  # crop minus the margin
    torch.testing.assert_close(parts['fused'][core], parts['hr_merged'][core])
    torch.testing.assert_close(parts['hr_merged'][..., 4:12, 4:12], parts['hr'])


def test_single_attention_channel():
    model = build_model(TINY, decode_head=dict(attention_classwise=False)).eval()
    img, _, _ = fake_batch(size=64)
    with torch.no_grad():
        parts = _training_parts(model, img, Box(0, 32, 0, 32))
    assert parts['attention'].shape == (2, 1, 8, 8)
    assert parts['fused'].shape == (2, 19, 16, 16)


# --- inference ----------------------------------------------------------------------------

def _detail_by_hand(model, hr_img, boxes):
    """Each window through backbone + head on its own, pasted and averaged by hand."""
    grid = (hr_img.shape[2] // 4, hr_img.shape[3] // 4)
    total = torch.zeros(hr_img.shape[0], 19, *grid)
    count = torch.zeros(1, 1, *grid)
    for box in boxes:
        logits = model.decode_head.head(model.backbone(box.crop(hr_img)))
        g = box.scaled(1 / 4)
        total[..., g.y1:g.y2, g.x1:g.x2] += logits
        count[..., g.y1:g.y2, g.x1:g.x2] += 1
    return total / count, count


def test_detail_inference_averages_overlapping_windows_run_as_one_batch(hrda):
    hrda.eval()
    hrda.debug = True
    img, metas, _ = fake_batch(size=64)
    with torch.no_grad():
        out = hrda.encode_decode(img, metas)
        debug = dict(hrda.debug_output)
        expected, count = _detail_by_hand(hrda, img, debug['hr_boxes'])
    hrda.debug = False
    assert out.shape == (2, 19, 64, 64)
    assert len(debug['hr_boxes']) == 9  # 32-windows at stride 16 over 64×64
    assert count.max() == 4 and count.min() == 1  # overlaps really occur
    torch.testing.assert_close(debug['hr_merged'], expected, rtol=1e-4, atol=1e-5)
    # No crop mask at inference: attention is the sigmoid everywhere.
    assert (debug['attention'] > 0).all()


def test_no_overlap_ablation_tiles_the_image():
    model = build_model(TINY, hr_slide_overlapping=False).eval()
    model.debug = True
    img, metas, _ = fake_batch(size=64)
    with torch.no_grad():
        model.encode_decode(img, metas)
    assert model.debug_output['hr_boxes'] == sliding_windows((64, 64), 32, 32)
    assert len(model.debug_output['hr_boxes']) == 4


def test_batched_and_looped_test_time_slide_inference_agree(hrda):
    img, metas, _ = fake_batch(size=(64, 128))
    batched = slide_inference(hrda, img, metas, batched=True)
    assert batched.shape == (2, 19, 64, 128)
    torch.testing.assert_close(batched, slide_inference(hrda, img, metas, batched=False),
                               rtol=1e-4, atol=1e-5)


def test_merge_windows_averages_overlaps_and_checks_coverage():
    a, b = torch.full((1, 1, 2, 3), 1.0), torch.full((1, 1, 2, 3), 3.0)
    merged = merge_windows([a, b], [Box(0, 2, 0, 3), Box(0, 2, 1, 4)], (2, 4))
    torch.testing.assert_close(merged[0, 0, 0], torch.tensor([1.0, 2.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match='cover'):
        merge_windows([a], [Box(0, 2, 0, 3)], (2, 4))


# --- training losses ----------------------------------------------------------------------

def _train_with_known_box(model, img, metas, gt, seg_weight=None, seed=5):
    torch.manual_seed(seed)
    box = sample_crop_box(img.shape[2:], model.hr_crop_size, model.crop_coord_divisible)
    torch.manual_seed(seed)
    model.debug = True
    losses = model.forward_train(img, metas, gt, seg_weight=seg_weight)
    model.debug = False
    assert model.last_train_crop_box == box
    return losses, box


def test_losses_are_weighted_fused_plus_detail_on_the_cropped_label_and_weight(hrda):
    hrda.eval()
    img, metas, gt = fake_batch(size=64)
    weight = torch.rand(2, 64, 64, generator=torch.Generator().manual_seed(2))
    losses, box = _train_with_known_box(hrda, img, metas, gt, weight)
    debug = hrda.debug_output
    torch.testing.assert_close(losses['decode.loss_ce'],
                               0.9 * _ce(debug['fused'], gt, weight), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses['decode.hr.loss_ce'],
                               0.1 * _ce(debug['hr'], box.crop(gt), box.crop(weight)),
                               rtol=1e-5, atol=1e-6)


def test_seg_weight_inside_the_crop_is_what_the_detail_loss_sees(hrda):
    hrda.train()
    img, metas, gt = fake_batch(size=64)
    _, box = _train_with_known_box(hrda, img, metas, gt)
    outside_only = torch.ones(2, 64, 64)
    box.crop(outside_only).zero_()
    losses, _ = _train_with_known_box(hrda, img, metas, gt, outside_only)
    assert losses['decode.hr.loss_ce'].item() == 0
    assert losses['decode.loss_ce'].item() > 0


def test_hrda_gradients_reach_the_backbone_through_both_scales(hrda):
    hrda.train()
    hrda.zero_grad()
    img, metas, gt = fake_batch(size=64)
    losses = hrda.forward_train(img, metas, gt, return_feat=True)
    feats = losses.pop('features')
    assert [f.shape[-1] for f in feats] == [8, 4, 2, 1]  # context features: 32×32 input
    (losses['decode.loss_ce'] + losses['decode.hr.loss_ce']).backward()
    assert hrda.backbone.layers[0][0].projection.weight.grad.abs().sum() > 0
    assert hrda.decode_head.scale_attention.conv_seg.weight.grad.abs().sum() > 0


def test_feature_scale_all_and_extract_feat_for_feature_distance():
    model = build_model(TINY, feature_scale='all').eval()
    img, metas, gt = fake_batch(size=64)
    with torch.no_grad():
        context, detail = model.forward_train(img, metas, gt, return_feat=True)['features']
        again = model.extract_feat(img, hr_box=model.last_train_crop_box)
    assert context[0].shape[-1] == 8 and detail[0].shape[-1] == 8
    torch.testing.assert_close(again[1][0], detail[0])


# --- ablations ----------------------------------------------------------------------------

def test_blurred_hr_ablation_feeds_the_down_up_sampled_image():
    model = build_model(TINY, blur_hr_crop=True).eval()
    img, _, _ = fake_batch(size=64)
    _, hr_img = model._scaled_images(img)
    down = resize(img, size=(32, 32), mode='bilinear', align_corners=False)
    torch.testing.assert_close(hr_img, resize(down, size=(64, 64), mode='bilinear',
                                              align_corners=False))


def test_same_scale_ablation_trains_and_infers():
    model = build_model(TINY, scales=[0.5, 0.5], crop_coord_divisible=4)
    img, metas, gt = fake_batch(size=128)
    losses = model.forward_train(img, metas, gt)
    box = model.last_train_crop_box
    assert box.y2 <= 64 and box.x2 <= 64 and box.y1 % 4 == 0  # crops of the 0.5 image
    assert torch.isfinite(losses['decode.hr.loss_ce'])
    with torch.no_grad():
        assert model.eval().encode_decode(img, metas).shape == (2, 19, 128, 128)


# --- BLV ----------------------------------------------------------------------------------

def test_apply_blv_turns_every_hrda_loss_into_blv_detail_loss_included():
    cfg = apply_blv(model_cfg(TINY), [1000.0 * (i + 1) for i in range(19)])
    model = build_model(cfg)
    losses_modules = {name: type(m).__name__ for name, m in model.named_modules()
                      if name.endswith('loss_decode')}
    assert losses_modules and set(losses_modules.values()) == {'BLVLoss'}
    assert isinstance(model.decode_head.loss_decode, BLVLoss)
    img, metas, gt = fake_batch(size=64)
    losses = model.forward_train(img, metas, gt)
    assert {'decode.loss_blv', 'decode.hr.loss_blv'} <= set(losses)
    assert not any('loss_ce' in k for k in losses)


@pytest.mark.parametrize('attended', [True, False])
def test_context_loss_scores_the_attention_weighted_context_as_hrda(attended):
    """lr_loss_weight > 0 (HRDA's whole-crop configs): λ_c·L((1 − a)·lr, y) by default, as
    HRDA's code computes it; lr_loss_attended=False scores the raw context logits."""
    model = build_model(TINY, decode_head=dict(hr_loss_weight=0.1, lr_loss_weight=0.1,
                                               lr_loss_attended=attended)).eval()
    img, metas, gt = fake_batch(size=64)
    weight = torch.rand(2, 64, 64, generator=torch.Generator().manual_seed(3))
    losses, _ = _train_with_known_box(model, img, metas, gt, weight)
    debug = model.debug_output
    attended_lr = (1 - debug['attention']) * debug['lr']
    torch.testing.assert_close(debug['lr_attended'], attended_lr)
    expected = _ce(attended_lr if attended else debug['lr'], gt, weight)
    torch.testing.assert_close(losses['decode.lr.loss_ce'], 0.1 * expected, rtol=1e-5, atol=1e-6)
    other = _ce(debug['lr'] if attended else attended_lr, gt, weight)
    assert abs(float(other - expected)) > 1e-4  # the two readings differ on these inputs
    torch.testing.assert_close(losses['decode.loss_ce'], 0.8 * _ce(debug['fused'], gt, weight),
                               rtol=1e-5, atol=1e-6)
