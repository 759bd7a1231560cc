"""BLVLoss: the class scale, the four variations, the ablation switches and the reduction."""
import json
import math
import warnings

import numpy as np
import pytest
import torch
from mmseg.models.builder import build_loss
from mmseg.models.losses import CrossEntropyLoss

from blv_patches import BLVLoss, class_scale, load_class_counts, sample_variation

N = 200_000  # samples for the distribution checks; 5 standard errors as tolerance


def _phi(x):
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _tol(sd):
    return 5 * sd / math.sqrt(N)


# --- class scale -------------------------------------------------------------------------

def test_class_scale_matches_eq3_for_hand_computed_counts():
    # total 111: c = log(111/100), log(111/10), log(111/1) = 0.104360, 2.406945, 4.709530
    scale = class_scale(np.array([100.0, 10.0, 1.0]))
    np.testing.assert_allclose(scale, [0.104360 / 4.709530, 2.406945 / 4.709530, 1.0], atol=1e-6)


def test_released_v1_formula_gives_head_class_no_variation():
    # c = log(100/100), log(100/10), log(100/1) = 0, 2.302585, 4.605170
    np.testing.assert_allclose(class_scale(np.array([100.0, 10.0, 1.0]), 'released_v1'),
                               [0.0, 0.5, 1.0], atol=1e-7)


def test_zero_count_class_is_left_out_and_warned():
    with pytest.warns(UserWarning, match=r'classes \[1\] have zero pixels'):
        scale = class_scale(np.array([100.0, 0.0, 10.0, 1.0]))
    # Same as the three present classes alone.
    np.testing.assert_allclose(scale[[0, 2, 3]], class_scale(np.array([100.0, 10.0, 1.0])))
    assert scale[1] == 0.0


def test_uniform_counts_give_zero_scale_not_nan():
    assert np.all(class_scale(np.array([5.0, 5.0]), 'released_v1') == 0)
    assert np.all(np.isfinite(class_scale(np.array([7.0]))))


def test_counts_from_stats_file_list_and_dict_formats(tmp_path):
    stats = [{'0': 10, '2': 5, '255': 99, 'file': 'a.png'}, {'0': 1, '18': 4, 'file': 'b.png'}]
    (tmp_path / 'sample_class_stats.json').write_text(json.dumps(stats))
    counts = load_class_counts(tmp_path / 'sample_class_stats.json')
    expected = np.zeros(19)
    expected[[0, 2, 18]] = [11, 5, 4]
    np.testing.assert_array_equal(counts, expected)
    as_dict = {s['file']: {k: v for k, v in s.items() if k != 'file'} for s in stats}
    (tmp_path / 'sample_class_stats_dict.json').write_text(json.dumps(as_dict))
    np.testing.assert_array_equal(load_class_counts(tmp_path / 'sample_class_stats_dict.json'),
                                  expected)


def test_missing_stats_file_names_the_converter(tmp_path):
    path = tmp_path / 'gta' / 'sample_class_stats.json'
    with pytest.raises(FileNotFoundError, match=r'tools/convert_datasets/gta\.py'):
        BLVLoss(class_counts=str(path))


def test_bad_counts_are_rejected_with_the_reason(tmp_path):
    (tmp_path / 's.json').write_text(json.dumps([{'25': 3, 'file': 'x'}]))
    with pytest.raises(ValueError, match='class id 25 is outside'):
        load_class_counts(tmp_path / 's.json')
    with pytest.raises(ValueError, match='non-negative'):
        load_class_counts([1.0, -2.0])
    with pytest.raises(ValueError, match='no class with a positive'):
        load_class_counts([0, 0])


# --- variations --------------------------------------------------------------------------

@pytest.mark.parametrize('sampler', ['randn', 'inverse_cdf'])
@pytest.mark.parametrize('sigma', [4.0, 6.0])
def test_gaussian_variation_is_clipped_half_normal(sigma, sampler):
    x = sample_variation('gaussian', (N,), sigma=sigma, clip=1.0, gaussian_sampler=sampler)
    assert x.min() >= 0 and x.max() <= 1
    p_clip = 2 * (1 - _phi(1 / sigma))  # sigma=6: 0.868, sigma=4: 0.803
    frac = (x == 1).double().mean().item()
    assert abs(frac - p_clip) < _tol(math.sqrt(p_clip * (1 - p_clip)))
    # E[min(|X|, 1)] = P(|X|>1) + σ·sqrt(2/π)·(1 − exp(−1/(2σ²)))
    mean = p_clip + sigma * math.sqrt(2 / math.pi) * (1 - math.exp(-1 / (2 * sigma ** 2)))
    assert abs(x.mean().item() - mean) < _tol(0.5)


@pytest.mark.parametrize('sampler', ['randn', 'inverse_cdf'])
def test_the_unclipped_part_of_the_gaussian_is_a_truncated_half_normal(sampler):
    """Below the clip, the law is that of σ|Z| given σ|Z| < 1: CDF erf(x/(σ√2)) / erf(1/(σ√2))
    (Kolmogorov-Smirnov on the ~26k unclipped draws of 200k at σ=6)."""
    from scipy.stats import kstest
    sigma = 6.0
    x = sample_variation('gaussian', (N,), sigma=sigma, clip=1.0, gaussian_sampler=sampler)
    below = x[x < 1].double().numpy()
    norm = math.erf(1 / (sigma * math.sqrt(2)))
    cdf = np.vectorize(lambda v: math.erf(v / (sigma * math.sqrt(2))) / norm)
    assert kstest(below, cdf).pvalue > 0.01


def test_an_unknown_sampler_is_an_error():
    with pytest.raises(ValueError, match="unknown gaussian sampler 'ziggurat'"):
        sample_variation('gaussian', (3,), gaussian_sampler='ziggurat')


def test_gaussian_without_clip_is_half_normal():
    x = sample_variation('gaussian', (N,), sigma=2.0, clip=None)
    assert abs(x.mean().item() - 2.0 * math.sqrt(2 / math.pi)) < _tol(2.0)


def test_uniform_variation():
    x = sample_variation('uniform', (N,))
    assert x.min() >= 0 and x.max() <= 1
    assert abs(x.mean().item() - 0.5) < _tol(math.sqrt(1 / 12))
    assert abs((x < 0.25).double().mean().item() - 0.25) < _tol(math.sqrt(0.25 * 0.75))


def test_beta_half_half_variation_is_arcsine():
    x = sample_variation('beta', (N,))
    assert x.min() >= 0 and x.max() <= 1
    assert abs(x.mean().item() - 0.5) < _tol(math.sqrt(0.125))  # var of Beta(.5,.5) = 1/8
    p = 2 / math.pi * math.asin(math.sqrt(0.1))  # CDF at 0.1 = 0.2048
    assert abs((x < 0.1).double().mean().item() - p) < _tol(math.sqrt(p * (1 - p)))


def test_exponential_variation_clipped_at_one():
    x = sample_variation('exponential', (N,), clip=1.0)
    p = math.exp(-1)  # P(X >= 1) for λ=1
    assert abs((x == 1).double().mean().item() - p) < _tol(math.sqrt(p * (1 - p)))
    assert abs(x.mean().item() - (1 - math.exp(-1))) < _tol(0.5)  # E[min(X, 1)] = 1 - 1/e


def test_unknown_variation_is_an_error():
    with pytest.raises(ValueError, match="unknown BLV variation 'cauchy'"):
        sample_variation('cauchy', (3,))
    with pytest.raises(ValueError, match='unknown variation'):
        BLVLoss(class_counts=[1, 2], variation='cauchy')


# --- the loss ----------------------------------------------------------------------------

COUNTS = [1000.0, 300.0, 50.0, 10.0, 1.0]


def _batch(c=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, c, 8, 8, generator=g)
    label = torch.randint(0, c, (2, 8, 8), generator=g)
    label[:, :2] = 255
    weight = torch.rand(2, 8, 8, generator=g)
    return logits, label, weight


def test_eval_mode_equals_mmseg_cross_entropy():
    logits, label, weight = _batch()
    blv = BLVLoss(class_counts=COUNTS).eval()
    ce = CrossEntropyLoss()
    for w in (None, weight):
        expected = ce(logits, label, weight=w, ignore_index=255)
        assert torch.equal(blv(logits, label, weight=w, ignore_index=255), expected)


def test_training_mode_perturbs_by_scaled_variation():
    logits, _, _ = _batch()
    blv = BLVLoss(class_counts=COUNTS, sigma=4.0).train()
    torch.manual_seed(3)
    offset = blv.perturb(logits) - logits
    torch.manual_seed(3)
    delta = sample_variation('gaussian', logits.shape, sigma=4.0, clip=1.0)
    torch.testing.assert_close(offset, delta * blv.class_scale.view(1, -1, 1, 1))
    assert blv.class_scale[0] < blv.class_scale[-1] == 1.0  # head class varies least


def test_without_variation_is_a_constant_class_offset():
    logits, label, weight = _batch()
    blv = BLVLoss(class_counts=COUNTS, use_variation=False).train()
    torch.testing.assert_close(blv.perturb(logits) - logits,
                               blv.class_scale.view(1, -1, 1, 1).expand_as(logits))
    expected = CrossEntropyLoss()(logits + blv.class_scale.view(1, -1, 1, 1), label,
                                  weight=weight, ignore_index=255)
    torch.testing.assert_close(blv(logits, label, weight=weight), expected)


def test_without_balance_is_the_same_variation_for_every_class():
    logits, _, _ = _batch()
    blv = BLVLoss(class_counts=COUNTS, balance=False).train()
    torch.manual_seed(4)
    offset = blv.perturb(logits) - logits
    torch.manual_seed(4)
    torch.testing.assert_close(offset, sample_variation('gaussian', logits.shape, sigma=4.0))


def test_without_both_is_plain_cross_entropy():
    # A class-independent constant shift leaves softmax unchanged.
    logits, label, weight = _batch()
    blv = BLVLoss(class_counts=COUNTS, balance=False, use_variation=False).train()
    torch.testing.assert_close(blv(logits, label, weight=weight),
                               CrossEntropyLoss()(logits, label, weight=weight, ignore_index=255))


def test_zero_count_class_gives_finite_loss_and_gradients():
    logits, label, _ = _batch()
    logits.requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        blv = BLVLoss(class_counts=[1000.0, 0.0, 50.0, 0.0, 1.0]).train()
    loss = blv(logits, label)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert blv.class_scale[1] == 0 and blv.class_scale[3] == 0


def test_gradients_reach_the_logits():
    logits, label, weight = _batch()
    logits.requires_grad_(True)
    BLVLoss(class_counts=COUNTS).train()(logits, label, weight=weight).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    # Ignored pixels get no gradient.
    assert torch.all(logits.grad[:, :, :2] == 0)


def test_same_seed_same_loss_other_seed_other_loss():
    logits, label, _ = _batch()
    blv = BLVLoss(class_counts=COUNTS, sigma=6.0).train()
    losses = []
    for seed in (7, 7, 8):
        torch.manual_seed(seed)
        losses.append(blv(logits, label))
    assert torch.equal(losses[0], losses[1])
    assert not torch.equal(losses[0], losses[2])


def test_offsets_lower_the_loss_of_rare_labels_below_that_of_head_labels():
    # The rarest class's own logit gets the largest offset, so the CE of a rare label drops
    # below that of a head label, whose logit is pushed least (Eq. 3's balancing).
    blv = BLVLoss(class_counts=COUNTS, use_variation=False).train()
    logits = torch.zeros(1, 5, 1, 2)
    head_label = torch.tensor([[[0, 0]]])
    rare_label = torch.tensor([[[4, 4]]])
    assert blv(logits, rare_label) < blv(logits, head_label)


def test_fp16_logits_get_fp32_loss():
    logits, label, _ = _batch()
    loss = BLVLoss(class_counts=COUNTS).train()(logits.half(), label)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_class_count_mismatch_is_a_clear_error():
    logits, label, _ = _batch(c=5)
    with pytest.raises(ValueError, match='one count per class'):
        BLVLoss(class_counts=[1.0, 2.0, 3.0]).train()(logits, label)


def test_loss_name_must_contain_loss():
    with pytest.raises(ValueError, match='must contain "loss"'):
        BLVLoss(class_counts=COUNTS, loss_name='BlvLoss')


def test_set_class_counts_updates_the_scale():
    blv = BLVLoss(class_counts=COUNTS)
    blv.set_class_counts([1.0, 10.0, 100.0, 1000.0, 10000.0])
    assert blv.class_scale.argmax().item() == 0
    np.testing.assert_allclose(blv.class_scale.numpy(),
                               class_scale(np.array([1.0, 10, 100, 1000, 10000])), rtol=1e-6)


def test_registered_in_mmseg_losses():
    loss = build_loss(dict(type='BLVLoss', class_counts=COUNTS, sigma=6.0, loss_weight=0.5))
    assert isinstance(loss, BLVLoss) and loss.sigma == 6.0 and loss.loss_weight == 0.5
    assert loss.loss_name == 'loss_blv'
