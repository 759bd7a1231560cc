"""Semi-supervised self-training: its iteration, and the pieces it shares with DACS."""
import pytest
import torch
from uda_helpers import fake_uda_batch, spy, tiny_model_cfg

from mmseg_uda.models.uda import DACS, SelfTraining, TeacherStudent, build_train_model


def make_self_training(**uda):
    model = build_train_model(dict(model=tiny_model_cfg('daformer'),
                                   uda=dict(type='SelfTraining', **uda)))
    model.init_weights()
    return model.train()


def test_one_iteration_trains_on_labelled_then_on_teacher_pseudo_labels(monkeypatch):
    model = make_self_training(pseudo_threshold=0.0)  # every pixel confident: weight 1
    opt = torch.optim.SGD(model.get_model().parameters(), lr=0.01)
    batch = fake_uda_batch()
    calls, backwards, steps = [], [], []
    spy(monkeypatch, model.model, 'forward_train',
        before=lambda img, metas, label, **kw: calls.append((img, label, kw)))
    spy(monkeypatch, model, 'backward', before=lambda loss, **kw: backwards.append(loss.item()))
    spy(monkeypatch, opt, 'step', before=lambda *a, **k: steps.append(1))
    logs = model.train_step(batch, opt)['log_vars']
    assert len(calls) == 2 and len(backwards) == 2 and len(steps) == 1
    (img0, label0, kw0), (img1, label1, kw1) = calls
    assert img0 is batch['img'] and label0 is batch['gt_semantic_seg'] and 'seg_weight' not in kw0
    # The student sees the very images the teacher labelled (no perturbation by default) ...
    assert img1 is batch['target_img']
    # ... with per-pixel weights on the pseudo-labels.
    assert kw1['seg_weight'].shape == label1.shape[:1] + label1.shape[2:]
    assert torch.all(kw1['seg_weight'] == 1.0)
    assert backwards[1] == pytest.approx(logs['unlabelled.decode.loss_ce'], rel=1e-5)
    assert logs['loss'] == pytest.approx(logs['src.decode.loss_ce']
                                         + logs['unlabelled.decode.loss_ce'], rel=1e-5)


def test_pseudo_labels_are_the_teachers_argmax_and_reach_the_observers(monkeypatch):
    import torch.nn as nn

    from mmseg_uda.models.uda import PSEUDO_LABEL_OBSERVERS
    seen = []

    class Recorder(nn.Module):
        def attach(self, student):
            pass

        def observe(self, pseudo_label, iteration):
            seen.append((iteration, pseudo_label.clone()))

    monkeypatch.setitem(PSEUDO_LABEL_OBSERVERS._module_dict, 'Recorder', Recorder)
    model = make_self_training(pseudo_label_observers=[dict(type='Recorder')])
    opt = torch.optim.SGD(model.get_model().parameters(), lr=0.01)
    batch = fake_uda_batch()
    with torch.no_grad():
        expected = model.ema_model.encode_decode(batch['target_img'],
                                                 batch['target_img_metas']).argmax(1)
    model.train_step(batch, opt)
    assert [i for i, _ in seen] == [1]
    assert torch.equal(seen[0][1], expected)


def test_the_unlabelled_loss_is_weighted_by_the_confident_ratio_and_unlabelled_weight(
        monkeypatch):
    model = make_self_training(pseudo_threshold=1.1, unlabelled_weight=0.5)  # nothing confident
    weights = []
    spy(monkeypatch, model.model, 'forward_train',
        before=lambda img, metas, label, **kw: weights.append(kw.get('seg_weight')))
    logs = model.train_step(fake_uda_batch(), torch.optim.SGD(
        model.get_model().parameters(), lr=0.01))['log_vars']
    assert torch.all(weights[1] == 0) and logs['unlabelled.decode.loss_ce'] == 0
    model = make_self_training(pseudo_threshold=0.0, unlabelled_weight=0.5)
    weights.clear()
    spy(monkeypatch, model.model, 'forward_train',
        before=lambda img, metas, label, **kw: weights.append(kw.get('seg_weight')))
    model.train_step(fake_uda_batch(), torch.optim.SGD(model.get_model().parameters(), lr=0.01))
    assert torch.all(weights[1] == 0.5)


def test_strong_augmentation_changes_only_the_students_view(monkeypatch):
    model = make_self_training(strong_augmentation=True, color_jitter_p=1.0, blur=False)
    batch = fake_uda_batch()
    views = []
    spy(monkeypatch, model.model, 'forward_train',
        before=lambda img, metas, label, **kw: views.append(img))
    teacher_inputs = []
    spy(monkeypatch, model.ema_model, 'encode_decode',
        before=lambda img, metas: teacher_inputs.append(img))
    model.train_step(batch, torch.optim.SGD(model.get_model().parameters(), lr=0.01))
    assert teacher_inputs[0] is batch['target_img']
    assert not torch.equal(views[1], batch['target_img'])


def test_the_teacher_follows_the_student_with_the_ema_and_has_no_imagenet_model():
    model = make_self_training(alpha=0.999)
    assert isinstance(model, TeacherStudent) and not isinstance(model, DACS)
    assert {k.split('.')[0] for k in model.state_dict()} == {'model', 'ema_model', '_extra_state'}
    opt = torch.optim.SGD(model.get_model().parameters(), lr=0.1)
    model.train_step(fake_uda_batch(), opt)
    # Iteration 0's ramp: alpha = min(1 - 1/2, 0.999), so the teacher is halfway.
    before = [p.detach().clone() for p in model.ema_model.parameters()]
    model.train_step(fake_uda_batch(seed=1), opt)
    alpha = min(1 - 1 / 3, 0.999)
    for t, t0, s1 in zip(model.ema_model.parameters(), before, model.model.parameters()):
        assert torch.allclose(t, alpha * t0 + (1 - alpha) * s1, atol=1e-6)


def test_a_negative_unlabelled_weight_is_refused():
    with pytest.raises(ValueError, match='unlabelled_weight=-1'):
        make_self_training(unlabelled_weight=-1)


def test_a_plain_encoder_decoder_gets_a_clear_error():
    cfg = tiny_model_cfg('daformer')
    cfg['type'] = 'EncoderDecoder'
    with pytest.raises(TypeError, match="SelfTraining needs a segmentor whose forward_train"):
        SelfTraining(cfg)


# --- paper Eq. 4 after every epoch: the teacher's pass over the unlabelled images ----------

def _blv_self_training(interval: int, source: str):
    from blv_patches import apply_blv
    model = apply_blv(dict(model=tiny_model_cfg('daformer')), [100.0 * (i + 1) for i in range(19)],
                      sigma=4.0)['model']
    st = build_train_model(dict(model=model, uda=dict(
        type='SelfTraining', pseudo_label_observers=[dict(
            type='PseudoLabelClassFrequency', interval=interval, source=source)])))
    st.init_weights()
    return st.train()


def _unlabelled_loader(tiny_data):
    import os.path as osp

    from mmcv import Config
    from uda_helpers import test_pipeline

    from mmseg_uda.apis.train import build_val_dataloader
    data = dict(type='CityscapesDataset', data_root=osp.join(tiny_data, 'cityscapes'),
                img_dir='leftImg8bit/val', ann_dir='gtFine/val', pipeline=test_pipeline((128, 64)))
    return build_val_dataloader(Config(dict(data=dict(workers_per_gpu=0))), data)


def test_the_pass_counts_the_teachers_labels_of_every_unlabelled_image(tiny_data):
    from mmcv.parallel import scatter

    from blv_patches import BLVLoss
    from mmseg_uda.core.evaluation import predict_logits

    st = _blv_self_training(interval=2, source='unlabelled_pass')
    [observer] = st.pseudo_label_observers
    loader = _unlabelled_loader(tiny_data)
    assert st.observers_wanting_pass(1) == [] and st.observers_wanting_pass(2) == [observer]
    # Training pseudo-labels do not count in this mode.
    st.train_step(fake_uda_batch(), torch.optim.SGD(st.get_model().parameters(), lr=0.01))
    assert int(observer.counts.sum()) == 0
    expected = torch.zeros(19, dtype=torch.int64)
    st.ema_model.eval()
    with torch.no_grad():
        for data in loader:
            data = scatter(data, [-1])[0]
            pred = predict_logits(st.ema_model, data['img'], data['img_metas']).argmax(1)
            expected += torch.bincount(pred.flatten(), minlength=19)
    st.ema_model.train()
    assert st.pseudo_label_pass(loader, 2, [observer]) == len(loader.dataset)
    assert st.ema_model.training  # the teacher's mode is given back
    losses = [m for m in st.model.modules() if isinstance(m, BLVLoss)]
    assert losses
    for loss in losses:
        assert torch.equal(loss.class_counts.long(), expected)
    assert int(observer.counts.sum()) == 0  # the next epoch starts from nothing


def test_a_pass_observer_without_the_pass_data_and_the_reverse_are_config_errors():
    from mmcv import Config

    from mmseg_uda.apis.train import unlabelled_pass_hook
    st = _blv_self_training(interval=2, source='unlabelled_pass')
    with pytest.raises(ValueError, match=r"needs the unlabelled images: set pseudo_label_pass"):
        unlabelled_pass_hook(Config(dict()), st, distributed=False)
    st = _blv_self_training(interval=2, source='iterations')
    with pytest.raises(ValueError, match="no pseudo-label observer has source='unlabelled_pass'"):
        unlabelled_pass_hook(Config(dict(pseudo_label_pass=dict(data={}))), st, distributed=False)
    assert unlabelled_pass_hook(Config(dict()), st, distributed=False) is None


def test_an_unknown_observer_source_is_refused():
    with pytest.raises(ValueError, match=r"source='epochs'; choose one of"):
        _blv_self_training(interval=2, source='epochs')


def test_confident_pixels_weigh_one_and_the_others_zero():
    model = make_self_training(pseudo_weight='confident_pixels', pseudo_threshold=0.06)
    batch = fake_uda_batch()
    with torch.no_grad():
        prob = torch.softmax(model.ema_model.encode_decode(
            batch['target_img'], batch['target_img_metas']), dim=1).amax(1)
    _, weight = model.make_pseudo_labels(batch['target_img'], batch['target_img_metas'], None,
                                         {})
    assert torch.equal(weight, (prob >= 0.06).float())
    assert 0 < weight.mean() < 1  # the threshold splits this random model's pixels
    with pytest.raises(ValueError, match=r"pseudo_weight='soft'; choose one of"):
        make_self_training(pseudo_weight='soft')


def test_smoothing_keeps_classes_the_teacher_never_predicts_the_most_varied():
    from blv_patches import BLVLoss, PseudoLabelClassFrequency
    st = _blv_self_training(interval=1, source='iterations')
    observer = PseudoLabelClassFrequency(interval=1, smoothing=1.0)
    observer.attach(st.model)
    observer.observe(torch.zeros(2, 8, 8, dtype=torch.int64), 1)  # only class 0
    [loss, *_] = [m for m in st.model.modules() if isinstance(m, BLVLoss)]
    assert loss.class_counts[0] == 129 and torch.all(loss.class_counts[1:] == 1)
    assert loss.class_scale[0] < 0.1 and torch.all(loss.class_scale[1:] == 1.0)
    raw = PseudoLabelClassFrequency(interval=1)
    raw.attach(st.model)
    with pytest.warns(UserWarning, match='have zero pixels'):
        raw.observe(torch.zeros(2, 8, 8, dtype=torch.int64), 1)
    assert torch.all(loss.class_scale == 0)  # with raw counts nothing is left to vary
