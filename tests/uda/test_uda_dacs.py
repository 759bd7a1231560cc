"""DACS iterations on tiny models: order of losses, teacher, margins, BLV, Eq. 4, state."""
import copy

import numpy as np
import pytest
import torch
from uda_helpers import blocky_labels, fake_uda_batch, spy, tiny_model_cfg

from blv_patches import BLVLoss, apply_blv, class_scale
from mmseg_uda.models.uda import DACS, SourceOnly, build_train_model

THINGS = [6, 7, 11, 12, 13, 14, 15, 16, 17, 18]
# A long-tailed source distribution for BLV: road … bicycle.
SOURCE_COUNTS = [3e9, 8e8, 1.6e9, 1.8e8, 6e7, 1e8, 1.3e7, 8e6, 7e8, 2e8, 1.3e9, 3.5e7,
                 3e6, 2.5e8, 1.1e8, 3.6e7, 6e6, 3e6, 5e5]


def EQ4(interval: int) -> dict:
    """Paper Eq. 4 as DACS's pseudo-label observer."""
    return dict(type='PseudoLabelClassFrequency', interval=interval)


def make_dacs(kind='daformer', blv=False, **uda):
    model = tiny_model_cfg(kind)
    if blv:
        model = apply_blv(dict(model=model), SOURCE_COUNTS, sigma=4.0)['model']
    cfg = dict(type='DACS', alpha=0.999, imnet_feature_dist_lambda=0.005,
               imnet_feature_dist_classes=THINGS, imnet_feature_dist_scale_min_ratio=0.75)
    cfg.update(uda)
    dacs = build_train_model(dict(model=model, uda=cfg))
    dacs.init_weights()
    return dacs.train()


def optimizer_for(dacs):
    return torch.optim.AdamW(dacs.get_model().parameters(), lr=1e-3)


def thing_batch(**kw):
    """A batch whose source GT has 32×32 blocks of thing classes (so feature distance has cells)."""
    batch = fake_uda_batch(**kw)
    batch['gt_semantic_seg'] = blocky_labels(2, 64, THINGS + [0, 2], block=32)
    return batch


def test_iteration_runs_three_backwards_in_order_and_one_step(monkeypatch):
    dacs = make_dacs()
    opt = optimizer_for(dacs)
    dacs.train_step(thing_batch(), opt)       # iteration 0: student == ImageNet model
    backwards, steps = [], []
    spy(monkeypatch, dacs, 'backward', before=lambda loss, retain_graph=False: backwards.append(
        (loss.detach().clone(), retain_graph)))
    spy(monkeypatch, opt, 'step', before=lambda *a, **k: steps.append(1))
    logs = dacs.train_step(thing_batch(seed=1), opt)['log_vars']
    assert len(steps) == 1 and len(backwards) == 3
    (src, retain), (fd, _), (mixed, _) = backwards
    assert retain  # the source graph is kept for feature distance
    assert src.item() == pytest.approx(logs['src.decode.loss_ce'], rel=1e-5)
    assert fd.item() == pytest.approx(logs['src.loss_imnet_feat_dist'], rel=1e-5)
    assert fd.item() > 0  # the student moved away from the ImageNet weights on thing cells
    assert mixed.item() == pytest.approx(logs['mix.decode.loss_ce'], rel=1e-5)
    assert logs['loss'] == pytest.approx(src.item() + fd.item() + mixed.item(), rel=1e-5)
    assert dacs.local_iter == 2


def test_without_fd_there_is_no_imagenet_model_and_two_backwards(monkeypatch):
    dacs = make_dacs(imnet_feature_dist_lambda=0)
    assert dacs.imnet_model is None
    calls = []
    spy(monkeypatch, dacs, 'backward',
        before=lambda loss, retain_graph=False: calls.append(retain_graph))
    logs = dacs.train_step(fake_uda_batch(), optimizer_for(dacs))['log_vars']
    assert calls == [False, False]
    assert 'src.loss_imnet_feat_dist' not in logs


def test_teacher_and_imagenet_model_follow_the_schedule():
    dacs = make_dacs(kind='dlv2')
    opt = optimizer_for(dacs)
    with torch.no_grad():  # a teacher that differs from the student before iteration 0
        for p in dacs.ema_model.parameters():
            p.add_(1.0)
    imnet_before = copy.deepcopy(dacs.imnet_model.state_dict())
    student_before_0 = [p.detach().clone() for p in dacs.model.parameters()]
    dacs.train_step(fake_uda_batch(), opt)
    student_after_0 = [p.detach().clone() for p in dacs.model.parameters()]
    teacher_after_0 = [p.detach().clone() for p in dacs.ema_model.parameters()]
    # Iteration 0 started the teacher as the student before its first step; right after the
    # step it took the EMA with alpha(1) = 0.5, the teacher iteration 1's pseudo-labels use.
    for t, s_before, s_after in zip(teacher_after_0, student_before_0, student_after_0):
        torch.testing.assert_close(t, 0.5 * s_before + 0.5 * s_after)
    dacs.train_step(fake_uda_batch(seed=1), opt)  # then alpha(2) = 2/3
    for t, t0, s1 in zip(dacs.ema_model.parameters(), teacher_after_0, dacs.model.parameters()):
        torch.testing.assert_close(t, 2 / 3 * t0 + 1 / 3 * s1)
    for key, value in dacs.imnet_model.state_dict().items():
        assert torch.equal(value, imnet_before[key]), key  # frozen, BN statistics included
    assert all(not p.requires_grad for p in dacs.ema_model.parameters())


def test_modes_teacher_without_dropout_imagenet_model_in_eval():
    dacs = make_dacs()
    dacs.train()
    dropouts = [m for m in dacs.ema_model.modules() if isinstance(m, torch.nn.Dropout2d)
                or isinstance(m, torch.nn.Dropout)]
    assert dropouts and not any(m.training for m in dropouts)
    assert any(m.training for m in dacs.model.modules() if isinstance(m, torch.nn.Dropout2d)
               or isinstance(m, torch.nn.Dropout))
    bns = [m for m in dacs.ema_model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.training for m in bns)
    assert not any(m.training for m in dacs.imnet_model.modules())


def test_pseudo_labels_weights_and_margins_v1():
    dacs = make_dacs(pseudo_weight_ignore_top=5, pseudo_weight_ignore_bottom=10,
                     pseudo_threshold=0.0)
    batch = fake_uda_batch()
    logs = {}
    label, weight = dacs.make_pseudo_labels(batch['target_img'], batch['target_img_metas'],
                                            None, logs)
    with torch.no_grad():
        expected = dacs.ema_model.encode_decode(batch['target_img'],
                                                batch['target_img_metas']).argmax(1)
    assert torch.equal(label, expected)
    assert logs['pseudo.confident_ratio'].item() == 1.0  # threshold 0: every pixel
    assert torch.all(weight[:, :5] == 0) and torch.all(weight[:, -10:] == 0)
    assert torch.all(weight[:, 5:-10] == 1.0)
    mask = torch.ones(2, 1, 64, 64)
    with pytest.raises(ValueError, match='exclusive'):
        dacs.make_pseudo_labels(batch['target_img'], batch['target_img_metas'], mask, {})


def test_pseudo_label_margins_v2_use_the_dataset_mask():
    dacs = make_dacs(pseudo_threshold=0.0)
    batch = fake_uda_batch()
    valid = torch.ones(2, 1, 64, 64)
    valid[:, :, :, :8] = 0
    _, weight = dacs.make_pseudo_labels(batch['target_img'], batch['target_img_metas'],
                                        valid, {})
    assert torch.all(weight[..., :8] == 0) and torch.all(weight[..., 8:] == 1)


def test_class_mix_mixes_image_label_and_weight_with_one_mask():
    dacs = make_dacs()
    batch = fake_uda_batch()
    pseudo = torch.full((2, 64, 64), 3)
    pseudo_weight = torch.full((2, 64, 64), 0.25)
    mixed = dacs.class_mix(batch['img'], batch['gt_semantic_seg'], batch['target_img'],
                           pseudo, pseudo_weight)
    m = mixed.mask
    assert m.any() and not m.all()
    assert torch.equal(mixed.img, torch.where(m, batch['img'], batch['target_img']))
    assert torch.equal(mixed.label[m], batch['gt_semantic_seg'][m])
    assert torch.all(mixed.label[~m] == 3)
    assert torch.all(mixed.weight[m.squeeze(1)] == 1) and torch.all(
        mixed.weight[~m.squeeze(1)] == 0.25)


def test_strong_augmentation_reaches_only_the_mixed_image(monkeypatch):
    dacs = make_dacs(color_jitter_p=1.0, blur_p=1.0)
    batch = fake_uda_batch()
    originals = {k: batch[k].clone() for k in ('img', 'target_img', 'gt_semantic_seg')}
    seen, teacher_inputs, augmented = [], [], []
    spy(monkeypatch, dacs.model, 'forward_train',
        before=lambda img, *a, **k: seen.append(img.detach().clone()))
    spy(monkeypatch, dacs.ema_model, 'encode_decode',
        before=lambda img, metas: teacher_inputs.append(img.detach().clone()))
    spy(monkeypatch, dacs, 'strong_aug',
        before=lambda img, cfg: augmented.append(img.detach().clone()))
    dacs.train_step(batch, optimizer_for(dacs))
    for key, value in originals.items():
        assert torch.equal(batch[key], value), f'{key} was modified'
    assert torch.equal(seen[0], originals['img'])                   # clean source pass
    assert torch.equal(teacher_inputs[0], originals['target_img'])   # clean target for labels
    assert len(augmented) == 1
    mixed_before = augmented[0]
    # the input of the augmentation is the plain mix of the two clean images …
    assert all(torch.equal(px, s) or torch.equal(px, t) for px, s, t in zip(
        mixed_before.permute(0, 2, 3, 1).reshape(-1, 3),
        originals['img'].permute(0, 2, 3, 1).reshape(-1, 3),
        originals['target_img'].permute(0, 2, 3, 1).reshape(-1, 3)))
    # … and the student's mixed pass sees its augmented version.
    assert not torch.allclose(seen[1], mixed_before)


def test_no_label_map_goes_to_the_host(monkeypatch):
    """Pseudo-label statistics and logs stay on the device: the only host copy per iteration
    is the stacked vector of log scalars."""
    dacs = make_dacs()
    batch = thing_batch()
    big_copies = []

    def spy(name):
        real = getattr(torch.Tensor, name)

        def wrapper(self, *a, **k):
            if self.numel() >= 64:
                big_copies.append((name, tuple(self.shape)))
            return real(self, *a, **k)
        return wrapper

    for name in ('cpu', 'numpy', 'tolist', 'item'):
        monkeypatch.setattr(torch.Tensor, name, spy(name))
    dacs.train_step(batch, optimizer_for(dacs))
    assert big_copies == []


def test_local_iter_and_pseudo_counts_are_checkpointed():
    dacs = make_dacs(blv=True, pseudo_label_observers=[EQ4(3)])
    opt = optimizer_for(dacs)
    dacs.train_step(fake_uda_batch(), opt)
    state = dacs.state_dict()
    assert int(state['_extra_state']) == 1
    assert state['pseudo_label_observers.0.counts'].sum() == 2 * 64 * 64
    fresh = make_dacs(blv=True, pseudo_label_observers=[EQ4(3)])
    fresh.load_state_dict(state)
    assert fresh.local_iter == 1
    assert torch.equal(fresh.pseudo_label_observers[0].counts,
                       dacs.pseudo_label_observers[0].counts)

# --- BLV inside UDA ------------------------------------------------------------------------------


@pytest.mark.parametrize('kind', ['daformer', 'hrda'])
def test_blv_perturbs_source_and_mixed_losses_only(kind, monkeypatch):
    dacs = make_dacs(kind, blv=True)
    blv_losses = [m for m in dacs.model.modules() if isinstance(m, BLVLoss)]
    assert blv_losses, 'apply_blv reached no head'
    phase = {'name': None}
    perturbed = []
    spy(monkeypatch, BLVLoss, 'perturb', before=lambda *a: perturbed.append(phase['name']))
    for name in ('train_on_source', 'make_pseudo_labels', 'train_on_mixed',
                 'train_feature_distance'):
        spy(monkeypatch, dacs, name,
            before=lambda *a, name=name, **k: phase.__setitem__('name', name))
    logs = dacs.train_step(fake_uda_batch(), optimizer_for(dacs))['log_vars']
    heads = 2 if kind == 'hrda' else 1  # HRDA: fused and detail losses
    assert perturbed == ['train_on_source'] * heads + ['train_on_mixed'] * heads
    for prefix in ('src', 'mix'):
        assert f'{prefix}.decode.loss_blv' in logs
        if kind == 'hrda':
            assert f'{prefix}.decode.hr.loss_blv' in logs
    # Evaluation (the student in eval mode) never perturbs.
    perturbed.clear()
    dacs.eval()
    batch = fake_uda_batch()
    metas = [batch['img_metas'][:1]]
    dacs.simple_test(batch['img'][:1], metas[0])
    assert perturbed == []


def test_blv_loss_differs_from_ce_in_training_and_not_in_eval():
    batch = fake_uda_batch()
    torch.manual_seed(0)
    plain = make_dacs(imnet_feature_dist_lambda=0)
    blv = make_dacs(blv=True, imnet_feature_dist_lambda=0)
    blv.model.load_state_dict(plain.model.state_dict(), strict=False)
    args = (batch['img'], batch['img_metas'], batch['gt_semantic_seg'])
    ce = plain.model.forward_train(*args)['decode.loss_ce']
    perturbed = blv.model.forward_train(*args)['decode.loss_blv']
    assert perturbed.item() > ce.item() + 0.05  # the rare-class offsets raise the loss
    blv.model.eval()
    plain.model.eval()
    raw = blv.model.forward_train(*args)['decode.loss_blv']
    torch.testing.assert_close(raw, plain.model.forward_train(*args)['decode.loss_ce'])


def test_eq4_replaces_blv_counts_with_pseudo_label_counts(monkeypatch):
    dacs = make_dacs(blv=True, pseudo_label_observers=[EQ4(2)], imnet_feature_dist_lambda=0)
    opt = optimizer_for(dacs)
    labels = []
    spy(monkeypatch, dacs, 'make_pseudo_labels', after=lambda out: labels.append(out[0].clone()))
    blv = [m for m in dacs.model.modules() if isinstance(m, BLVLoss)]
    dacs.train_step(fake_uda_batch(), opt)
    np.testing.assert_allclose(blv[0].class_counts.numpy(), SOURCE_COUNTS)  # not yet
    dacs.train_step(fake_uda_batch(seed=1), opt)
    expected = torch.bincount(torch.cat(labels).flatten(), minlength=19).double()
    for loss in blv:
        torch.testing.assert_close(loss.class_counts, expected)
        torch.testing.assert_close(loss.class_scale, torch.as_tensor(
            class_scale(expected.numpy()), dtype=torch.float32))
    assert dacs.pseudo_label_observers[0].counts.sum() == 0  # a new window starts


def test_eq4_without_blv_is_a_config_error():
    with pytest.raises(ValueError, match='the student has no BLVLoss; apply BLV first'):
        make_dacs(pseudo_label_observers=[EQ4(10)])


def test_source_only_trains_on_source_and_ignores_target(monkeypatch):
    model = build_train_model(dict(model=tiny_model_cfg('daformer'),
                                   uda=dict(type='SourceOnly')))
    assert isinstance(model, SourceOnly) and not isinstance(model, DACS)
    model.init_weights()
    model.train()
    seen = []
    spy(monkeypatch, model.model, 'forward_train', before=lambda img, *a, **k: seen.append(img))
    batch = fake_uda_batch()
    before = [p.detach().clone() for p in model.parameters()]
    logs = model.train_step(batch, optimizer_for(model))['log_vars']
    assert len(seen) == 1 and seen[0] is batch['img']
    assert set(logs) == {'src.decode.loss_ce', 'src.decode.acc_seg', 'loss'}
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_dacs_explains_a_segmentor_without_the_uda_interface():
    model = dict(tiny_model_cfg('daformer'), type='EncoderDecoder')
    model.pop('pretrained')
    with pytest.raises(TypeError, match='UDAEncoderDecoder'):
        build_train_model(dict(model=model, uda=dict(type='DACS')))


def test_build_train_model_without_uda_is_the_segmentor():
    model = build_train_model(dict(model=tiny_model_cfg('daformer')))
    assert type(model).__name__ == 'UDAEncoderDecoder'


def test_dacs_hands_each_iterations_pseudo_labels_to_its_observers(monkeypatch):
    """The generic hook point: any registered observer sees the teacher's pseudo-labels of
    every iteration, with the 1-based iteration number; DACS knows nothing of BLV."""
    import torch.nn as nn

    from mmseg_uda.models.uda import PSEUDO_LABEL_OBSERVERS
    seen = []

    class Recorder(nn.Module):
        def attach(self, student):
            self.student = type(student).__name__

        def observe(self, pseudo_label, iteration):
            seen.append((iteration, pseudo_label.clone()))

    monkeypatch.setitem(PSEUDO_LABEL_OBSERVERS._module_dict, 'Recorder', Recorder)
    dacs = make_dacs(pseudo_label_observers=[dict(type='Recorder')], imnet_feature_dist_lambda=0)
    assert dacs.pseudo_label_observers[0].student == 'UDAEncoderDecoder'
    made = []
    spy(monkeypatch, dacs, 'make_pseudo_labels', after=lambda out: made.append(out[0].clone()))
    opt = optimizer_for(dacs)
    dacs.train_step(fake_uda_batch(), opt)
    dacs.train_step(fake_uda_batch(seed=1), opt)
    assert [i for i, _ in seen] == [1, 2]
    assert all(torch.equal(label, m) for (_, label), m in zip(seen, made))


def test_the_old_eq4_key_names_its_replacement():
    from mmseg_uda.config_check import ConfigError, check_config
    with pytest.raises(ConfigError, match=r"uda\.pseudo_class_freq_interval is gone; use "
                                          r"uda\.pseudo_label_observers=\[dict\(type="
                                          r"'PseudoLabelClassFrequency', interval=N\)\]"):
        check_config(dict(uda=dict(type='DACS', pseudo_class_freq_interval=10)))
