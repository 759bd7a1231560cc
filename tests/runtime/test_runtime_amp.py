"""Mixed precision: low-precision forward passes, fp32 losses, BLV noise and parameters."""
from pathlib import Path

import pytest
import torch
from mmcv import Config
from mmseg.models import build_segmentor
from uda_helpers import fake_uda_batch, tiny_model_cfg

from blv_patches import BLVLoss, apply_blv
from mmseg_uda.models.uda import build_train_model
from mmseg_uda.runtime import TrainStepper, fp32_outputs

pytestmark = pytest.mark.usefixtures('one_torch_thread')

CONFIGS = Path(__file__).parents[2] / 'configs' / '_base_' / 'models'


def _tiny_blv_segmentor() -> torch.nn.Module:
    cfg = Config.fromfile(str(CONFIGS / 'tiny_daformer_mitb0.py'))
    cfg = apply_blv(cfg, class_counts=[100 * (i + 1) for i in range(19)])
    return build_segmentor(cfg.model).train()


def test_default_is_off_and_bad_configs_are_explained():
    assert not TrainStepper.from_cfg(None).enabled
    with pytest.raises(ValueError, match="amp.dtype must be one of"):
        TrainStepper.from_cfg(dict(enabled=True, dtype='fp8'))
    with pytest.raises(ValueError, match=r"Unknown keys in the amp config: \['precision'\]"):
        TrainStepper.from_cfg(dict(enabled=True, precision='bf16'))


@pytest.mark.parametrize('dtype, low', [('bf16', torch.bfloat16), ('fp16', torch.float16)])
def test_forward_in_low_precision_losses_and_blv_noise_in_fp32(dtype, low):
    model = _tiny_blv_segmentor()
    fp32_outputs(model)
    seen = {}
    first_conv = model.backbone.layers[0][0].projection
    first_conv.register_forward_hook(lambda m, i, o: seen.update(conv=o.dtype))
    blv = next(m for m in model.modules() if isinstance(m, BLVLoss))
    perturb = blv.perturb

    def spy(logits):
        seen['blv_in'] = logits.dtype
        return perturb(logits)

    blv.perturb = spy
    stepper = TrainStepper(enabled=True, dtype=dtype)
    img = torch.randn(2, 3, 32, 32)
    gt = torch.randint(0, 19, (2, 1, 32, 32))
    metas = [dict(img_shape=(32, 32, 3), ori_shape=(32, 32, 3), pad_shape=(32, 32, 3),
                  flip=False)] * 2
    with stepper.autocast(img.device):
        losses = model.forward_train(img, metas, gt)
    loss = losses['decode.loss_blv']
    stepper.backward(loss)
    assert seen == dict(conv=low, blv_in=torch.float32)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(p.grad.dtype == torch.float32 for p in model.parameters() if p.grad is not None)


def test_fp16_skips_a_step_with_inf_gradients_and_resumes_its_scale():
    weight = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    stepper = TrainStepper(enabled=True, dtype='fp16')
    stepper.backward((weight * torch.tensor([float('inf'), 1.0])).sum())
    stepper.step(optimizer)
    assert torch.equal(weight.detach(), torch.ones(2))  # skipped, not applied
    assert stepper.scaler.get_scale() == 2.0 ** 15  # halved from 2**16

    resumed = TrainStepper(enabled=True, dtype='fp16')
    resumed.load_state_dict(stepper.state_dict())
    optimizer.zero_grad()
    resumed.backward(weight.sum())
    assert torch.equal(weight.grad, torch.full((2,), 2.0 ** 15))  # scaled by the resumed scale
    resumed.step(optimizer)
    torch.testing.assert_close(weight.detach(), torch.full((2,), 0.9))  # unscaled step


def test_bf16_needs_no_loss_scaling():
    stepper = TrainStepper(enabled=True, dtype='bf16')
    weight = torch.nn.Parameter(torch.ones(1))
    stepper.backward(weight.sum())
    assert stepper.scaler is None and torch.equal(weight.grad, torch.ones(1))


def test_dacs_iteration_under_bf16_keeps_losses_noise_and_teacher_in_fp32():
    model = apply_blv(dict(model=tiny_model_cfg('daformer')), [100 * (i + 1) for i in range(19)])
    dacs = build_train_model(dict(model=model['model'], amp=dict(enabled=True, dtype='bf16'),
                                  uda=dict(type='DACS', imnet_feature_dist_lambda=0.005)))
    dacs.init_weights()
    dacs.train()
    seen = []
    for name, module in (('student', dacs.model), ('teacher', dacs.ema_model),
                         ('imnet', dacs.imnet_model)):
        conv = module.backbone.layers[0][0].projection
        conv.register_forward_hook(lambda m, i, o, name=name: seen.append((name, o.dtype)))
    noise_dtypes = []
    for blv in (m for m in dacs.model.modules() if isinstance(m, BLVLoss)):
        perturb = blv.perturb

        def spy(logits, perturb=perturb):
            noise_dtypes.append(logits.dtype)
            return perturb(logits)

        blv.perturb = spy
    teacher_before = [p.detach().clone() for p in dacs.ema_model.parameters()]
    optimizer = torch.optim.AdamW(dacs.get_model().parameters(), lr=1e-3)
    logs = dacs.train_step(fake_uda_batch(size=32), optimizer)['log_vars']
    assert set(seen) == {('student', torch.bfloat16), ('teacher', torch.bfloat16),
                         ('imnet', torch.bfloat16)}  # every network forward in bf16
    assert noise_dtypes == [torch.float32, torch.float32]  # source and mixed BLV losses
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    teacher = list(dacs.ema_model.parameters())
    assert all(p.dtype == torch.float32 for p in teacher)
    assert any(not torch.equal(a, b) for a, b in zip(teacher, teacher_before))  # EMA ran


@pytest.mark.parametrize('kind', ['daformer', 'hrda'])
def test_every_logit_reaches_losses_blv_and_threshold_in_fp32_under_bf16(kind, monkeypatch):
    """HRDA's context/detail/attention/fused logits and the teacher's logits (encode_decode,
    which bypasses decode_head(...)) are fp32 where they are consumed."""
    from mmseg_uda.models.uda import teacher_student as teacher_student_module

    model = apply_blv(dict(model=tiny_model_cfg(kind)), [100 * (i + 1) for i in range(19)])
    dacs = build_train_model(dict(model=model['model'], amp=dict(enabled=True, dtype='bf16'),
                                  uda=dict(type='DACS')))
    dacs.init_weights()
    dacs.train()
    loss_inputs, teacher_logits = [], []
    for blv in (m for m in dacs.model.modules() if isinstance(m, BLVLoss)):
        blv.register_forward_pre_hook(lambda m, args: loss_inputs.append(args[0].dtype))
    real = teacher_student_module.pseudo_label_and_weight

    def spy(logits, threshold, *weighting):
        teacher_logits.append(logits.dtype)
        return real(logits, threshold, *weighting)

    monkeypatch.setattr(teacher_student_module, 'pseudo_label_and_weight', spy)
    teacher_head = dacs.ema_model.decode_head
    head_outputs = []
    forward_test = teacher_head.forward_test

    def record_head_output(*args, **kwargs):
        out = forward_test(*args, **kwargs)
        head_outputs.append(out.dtype)  # before any resize (CPU autocast resizes in fp32)
        return out

    teacher_head.forward_test = record_head_output
    parts = {}
    if kind == 'hrda':
        head = dacs.model.decode_head
        forward_parts = head.forward_parts

        def record_parts(inputs):
            out = forward_parts(inputs)
            parts.update({k: v.dtype for k, v in out.items()})
            return out

        head.forward_parts = record_parts
    optimizer = torch.optim.AdamW(dacs.get_model().parameters(), lr=1e-3)
    dacs.train_step(fake_uda_batch(size=64), optimizer)
    assert teacher_logits == [torch.float32] and head_outputs == [torch.float32]
    # DAFormer: source + mixed; HRDA: fused + detail, for source and mixed.
    assert loss_inputs == [torch.float32] * (4 if kind == 'hrda' else 2)
    if kind == 'hrda':
        assert set(parts) == {'lr', 'hr', 'hr_merged', 'attention', 'lr_attended', 'fused'}
        assert set(parts.values()) == {torch.float32}
