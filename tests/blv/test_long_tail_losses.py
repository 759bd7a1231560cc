"""The long-tail baselines of Table 5 (logit adjustment, reweighting): hand-computed values,
plain cross entropy in eval, and the same wiring as BLV into every head."""
import math

import numpy as np
import pytest
import torch
from mmcv import Config
from mmseg.models.builder import build_loss
from mmseg.models.losses import CrossEntropyLoss

from blv_patches import (
    LogitAdjustedLoss,
    ReweightedCELoss,
    apply_loss,
    log_prior,
    reweighting,
)


def test_log_prior_by_hand():
    np.testing.assert_allclose(log_prior(np.array([1.0, 3.0])), [math.log(0.25), math.log(0.75)])


def test_a_class_without_pixels_is_treated_as_the_rarest():
    with pytest.warns(UserWarning, match=r'classes \[0\] have zero pixels'):
        prior = log_prior(np.array([0.0, 2.0, 8.0]))
    np.testing.assert_allclose(np.exp(prior), [2 / 12, 2 / 12, 8 / 12])


def test_la_offsets_the_logits_by_tau_log_prior_in_training_only():
    la = LogitAdjustedLoss([1.0, 3.0], tau=1.0)
    logits = torch.zeros(1, 2, 1, 1, requires_grad=True)
    label = torch.zeros(1, 1, 1, dtype=torch.long)
    # softmax([log .25, log .75])[0] = 0.25
    assert la(logits, label).item() == pytest.approx(-math.log(0.25), rel=1e-6)
    la2 = LogitAdjustedLoss([1.0, 3.0], tau=2.0)
    # softmax([2 log .25, 2 log .75])[0] = .0625 / (.0625 + .5625)
    assert la2(logits, label).item() == pytest.approx(-math.log(0.0625 / 0.625), rel=1e-6)
    la.eval()
    assert la(logits, label).item() == pytest.approx(math.log(2), rel=1e-6)


def test_rw_weights_by_hand():
    # prior .25/.75; q^-1/2 ∝ (2, 1.1547), normalised so that .25 w0 + .75 w1 = 1
    w = reweighting(np.array([1.0, 3.0]), 'inverse_sqrt')
    expected = np.array([2.0, 2 / math.sqrt(3)]) / (0.5 + 0.75 * 2 / math.sqrt(3))
    np.testing.assert_allclose(w, expected)
    np.testing.assert_allclose(reweighting(np.array([1.0, 3.0]), 'inverse'), [2.0, 2 / 3])
    with pytest.raises(ValueError, match="unknown reweighting scheme 'square'"):
        reweighting(np.array([1.0, 3.0]), 'square')


def test_rw_loss_is_the_pixel_mean_of_weighted_ce():
    rw = ReweightedCELoss([1.0, 3.0], scheme='inverse')
    logits = torch.zeros(1, 2, 1, 3)
    label = torch.tensor([[[0, 1, 255]]])
    # mmseg's reduction: the weighted per-pixel CE (0 on ignored pixels) averaged over all 3.
    assert rw(logits, label).item() == pytest.approx((2.0 + 2 / 3) * math.log(2) / 3, rel=1e-6)


@pytest.mark.parametrize('loss', [
    LogitAdjustedLoss([5e6, 1e3, 2e5, 40.0], tau=1.0),
    ReweightedCELoss([5e6, 1e3, 2e5, 40.0], scheme='inverse_sqrt'),
])
def test_eval_mode_is_exactly_mmseg_cross_entropy(loss):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 6, 5, generator=g)
    label = torch.randint(0, 4, (2, 6, 5), generator=g)
    label[0, :2] = 255
    weight = torch.rand(2, 6, 5, generator=g)
    loss.eval()
    ce = CrossEntropyLoss()
    torch.testing.assert_close(loss(logits, label, weight, ignore_index=255),
                               ce(logits, label, weight, ignore_index=255))
    loss.train()
    assert not torch.allclose(loss(logits, label, weight, ignore_index=255),
                              ce(logits, label, weight, ignore_index=255))


def test_the_losses_build_from_a_stats_file(tmp_path):
    import json
    stats = tmp_path / 'sample_class_stats.json'
    stats.write_text(json.dumps([{'0': 30, '1': 10, 'file': 'a.png'}, {'0': 60, 'file': 'b'}]))
    la = build_loss(dict(type='LogitAdjustedLoss', class_counts=str(stats), num_classes=2))
    np.testing.assert_allclose(la.log_prior.numpy(), np.log([0.9, 0.1]), rtol=1e-6)
    assert la.loss_name == 'loss_la'
    rw = build_loss(dict(type='ReweightedCELoss', class_counts=str(stats), num_classes=2))
    assert rw.loss_name == 'loss_rw'


def test_apply_loss_reaches_every_head_and_checks_options():
    ce = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
    cfg = Config(dict(model=dict(
        type='EncoderDecoder', decode_head=dict(type='X', loss_decode=dict(ce)),
        auxiliary_head=[dict(type='Y', loss_decode=dict(ce, loss_weight=0.4))])))
    out = apply_loss(cfg, 'LogitAdjustedLoss', [1.0, 3.0], tau=0.5)
    assert out.model.decode_head.loss_decode == dict(type='LogitAdjustedLoss',
                                                     class_counts=[1.0, 3.0], loss_weight=1.0,
                                                     tau=0.5)
    assert out.model.auxiliary_head[0].loss_decode.loss_weight == 0.4
    with pytest.raises(KeyError, match=r"unknown LogitAdjustedLoss option\(s\) \['sigma'\]"):
        apply_loss(cfg, 'LogitAdjustedLoss', [1.0, 3.0], sigma=6.0)
    with pytest.raises(KeyError, match="'FocalLoss' is not a class-count loss"):
        apply_loss(cfg, 'FocalLoss', [1.0, 3.0])


def test_evaluation_models_get_plain_cross_entropy_for_every_count_loss():
    """tools/test.py builds the segmentor with CE: no stats file, no training-time change."""
    from mmseg_uda.apis import with_cross_entropy
    cfg = dict(decode_head=dict(loss_decode=dict(type='LogitAdjustedLoss', class_counts='x')),
               auxiliary_head=[dict(loss_decode=dict(type='ReweightedCELoss', class_counts='x',
                                                     loss_weight=0.4)),
                               dict(loss_decode=dict(type='BLVLoss', class_counts='x'))])
    out = with_cross_entropy(cfg)
    ce = dict(type='CrossEntropyLoss', use_sigmoid=False)
    assert out['decode_head']['loss_decode'] == dict(ce, loss_weight=1.0)
    assert [h['loss_decode'] for h in out['auxiliary_head']] == [dict(ce, loss_weight=0.4),
                                                                 dict(ce, loss_weight=1.0)]
    assert cfg['decode_head']['loss_decode']['type'] == 'LogitAdjustedLoss'  # a copy
