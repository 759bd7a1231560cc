"""The segmentor interface DACS relies on: seg_weight, return_feat, loss keys, slide inference."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmcv import ConfigDict
from mmseg.ops import resize
from models_helpers import build_model, fake_batch, slide_inference


@pytest.fixture(scope='module')
def daformer():
    return build_model('tiny_daformer_mitb0')


def _manual_weighted_ce(model, img, gt, weight):
    """DAFormer's reduction: per-pixel CE × weight, averaged over all pixels (ignored ones too)."""
    logits = resize(model.encode_decode(img, None), size=gt.shape[2:], mode='bilinear',
                    align_corners=False)
    ce = F.cross_entropy(logits, gt.squeeze(1), reduction='none', ignore_index=255)
    return (ce * weight).mean()


def test_seg_weight_weights_every_pixel_and_averages_over_all_pixels(daformer):
    img, metas, gt = fake_batch()
    weight = torch.rand(2, 64, 64, generator=torch.Generator().manual_seed(1))
    daformer.eval()  # no dropout, BN running stats: forward_train and encode_decode agree
    losses = daformer.forward_train(img, metas, gt, seg_weight=weight)
    expected = _manual_weighted_ce(daformer, img, gt, weight)
    torch.testing.assert_close(losses['decode.loss_ce'], expected, rtol=1e-5, atol=1e-6)
    unweighted = daformer.forward_train(img, metas, gt)['decode.loss_ce']
    torch.testing.assert_close(unweighted, _manual_weighted_ce(daformer, img, gt, 1.0),
                               rtol=1e-5, atol=1e-6)
    zero = daformer.forward_train(img, metas, gt, seg_weight=torch.zeros(2, 64, 64))
    assert zero['decode.loss_ce'].item() == 0


def test_seg_weight_accepts_channel_dim_and_rejects_wrong_size(daformer):
    img, metas, gt = fake_batch()
    daformer.eval()
    flat = daformer.forward_train(img, metas, gt, seg_weight=torch.full((2, 64, 64), 0.5))
    chan = daformer.forward_train(img, metas, gt, seg_weight=torch.full((2, 1, 64, 64), 0.5))
    torch.testing.assert_close(flat['decode.loss_ce'], chan['decode.loss_ce'])
    with pytest.raises(ValueError, match='seg_weight has shape'):
        daformer.forward_train(img, metas, gt, seg_weight=torch.ones(2, 32, 32))


def test_mmseg_auxiliary_head_gets_seg_weight_too():
    aux = dict(type='FCNHead', in_channels=160, in_index=2, channels=16, num_convs=1,
               concat_input=False, num_classes=19, align_corners=False,
               loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4))
    model = build_model('tiny_daformer_mitb0', auxiliary_head=aux)
    img, metas, gt = fake_batch()
    losses = model.forward_train(img, metas, gt, seg_weight=torch.zeros(2, 64, 64))
    assert losses['aux.loss_ce'].item() == 0 and losses['decode.loss_ce'].item() == 0
    assert model.forward_train(img, metas, gt)['aux.loss_ce'].item() > 0


def test_return_feat_gives_backbone_features_and_gradients_reach_backbone(daformer):
    img, metas, gt = fake_batch()
    daformer.train()
    daformer.zero_grad()
    losses = daformer.forward_train(img, metas, gt, return_feat=True)
    feats = losses.pop('features')
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]  # strides 4/8/16/32
    assert [f.shape[1] for f in feats] == [32, 64, 160, 256]
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg'}
    losses['decode.loss_ce'].backward()
    first = daformer.backbone.layers[0][0].projection.weight.grad
    assert first is not None and first.abs().sum() > 0


@pytest.mark.parametrize('batched', [True, False])
def test_slide_inference_matches_whole_image_on_one_window(daformer, batched):
    """With one window covering the image, slide inference is exactly encode_decode."""
    img, metas, _ = fake_batch(size=64)
    daformer.eval()
    daformer.test_cfg = ConfigDict(mode='slide', crop_size=(64, 64), stride=(32, 32),
                             batched_slide=batched)
    with torch.no_grad():
        torch.testing.assert_close(daformer.slide_inference(img, metas, rescale=False),
                                   daformer.encode_decode(img, metas))


def test_batched_and_looped_slide_inference_agree(daformer):
    img, metas, _ = fake_batch(size=(64, 96))
    for meta in metas:
        meta['ori_shape'] = (32, 48, 3)
    batched = slide_inference(daformer, img, metas, batched=True)
    assert batched.shape == (2, 19, 32, 48)  # rescaled to ori_shape
    torch.testing.assert_close(batched, slide_inference(daformer, img, metas, batched=False),
                               rtol=1e-4, atol=1e-5)


def test_missing_pretrained_file_warns_and_keeps_random_init(tmp_path):
    missing = str(tmp_path / 'mit_b5.pth')
    with pytest.warns(UserWarning, match='does not exist'):
        model = build_model('tiny_daformer_mitb0', pretrained=missing)
    assert model.pretrained == missing
