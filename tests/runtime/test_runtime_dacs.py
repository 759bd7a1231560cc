"""Training at scale with the real DACS, on CPU with a tiny DAFormer and generated data.

- tools/train.py interrupted between iterations, or killed while writing a checkpoint, and
  resumed with --resume-from auto ends bit-identical to an uninterrupted run (BLV noise,
  ClassMix, augmentation, rare class sampling, EMA teacher, ImageNet model, AdamW, poly LR);
- a NaN loss stops DACS with the term and the iteration, after saving the last good state;
- an empty feature-distance mask gives a zero loss, not a NaN;
- a 2-process gloo run matches the 1-process run with the same global batch;
- distributed evaluation equals single-process evaluation.
"""
import logging
import signal
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmcv import Config
from mmcv.runner import LogBuffer
from runtime_helpers import (
    Interrupted,
    assert_nested_equal,
    load,
    run_killed_during_save,
    run_on_ranks,
)
from uda_helpers import (
    blocky_labels,
    fake_uda_batch,
    test_pipeline,
    tiny_model_cfg,
    uda_run_config,
    write_cityscapes_like,
)

from mmseg_uda.apis import build_val_dataloader
from mmseg_uda.core.hooks import StreamingEvalHook
from mmseg_uda.models.uda import build_train_model
from mmseg_uda.models.uda.pseudo_label import pseudo_label_and_weight
from mmseg_uda.runtime import NonFiniteLossError, SelfSyncDistributedDataParallel
from tools import train as train_tool

pytestmark = pytest.mark.usefixtures('one_torch_thread')

MAX_ITERS = 4


@pytest.fixture(scope='module', autouse=True)
def _restore_determinism():
    yield
    torch.use_deterministic_algorithms(False)  # --deterministic sets it process-wide


def _config(data_root, work_dir, **overrides) -> str:
    """A DAFormer-style run on the generated data (DACS, feature distance, BLV, rare class
    sampling), saving every iteration."""
    settings = dict(checkpoint_config=dict(interval=1, max_keep_ckpts=-1),
                    data=dict(train=dict(rare_class_sampling=dict(
                        min_pixels=0, class_temp=0.01, min_crop_ratio=0.5))))
    settings.update(overrides)
    cfg = uda_run_config(data_root, str(work_dir), 'daformer', blv=True, max_iters=MAX_ITERS,
                         **settings)
    path = str(Path(work_dir) / 'config.py')
    cfg.dump(path)
    return path


def _train(config: str, *extra: str) -> None:
    train_tool.main([config, '--device', 'cpu', '--deterministic', '--no-validate', *extra])


def _assert_same_checkpoint(a, b) -> None:
    a, b = load(a), load(b)
    for key in ('state_dict', 'optimizer', 'training_state'):
        assert_nested_equal(a[key], b[key], key)


@pytest.fixture(scope='module')
def reference(tiny_data, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    _train(_config(tiny_data, work_dir))
    return work_dir


def test_interrupted_run_resumes_bit_exactly_with_auto(tiny_data, reference, tmp_path):
    config = _config(tiny_data, tmp_path, custom_hooks=[
        dict(type='InterruptAfterIter', iteration=2, priority='LOWEST')])
    with pytest.raises(Interrupted):
        _train(config, '--resume-from', 'auto')  # no checkpoint yet: starts
    resumed = _config(tiny_data, tmp_path)
    _train(resumed, '--resume-from', 'auto')
    assert load(tmp_path / 'iter_4.pth')['training_state']['iter'] == MAX_ITERS
    _assert_same_checkpoint(tmp_path / 'iter_4.pth', reference / 'iter_4.pth')
    state = load(tmp_path / 'iter_4.pth')['state_dict']
    assert {k.split('.')[0] for k in state} >= {'model', 'ema_model', 'imnet_model'}
    assert int(state['_extra_state']) == MAX_ITERS  # DACS's local_iter, the EMA ramp's clock


@pytest.mark.integration
def test_run_killed_during_a_checkpoint_save_resumes_bit_exactly(tiny_data, reference,
                                                                 tmp_path):
    config = _config(tiny_data, tmp_path)
    proc = run_killed_during_save(3, textwrap.dedent(f"""
        from tools import train
        train.main([{config!r}, '--device', 'cpu', '--deterministic', '--no-validate'])"""))
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert 'iter_2.pth' in names and 'iter_3.pth' not in names
    assert any(n.startswith('.iter_3.pth.') and n.endswith('.tmp') for n in names), names
    _train(config, '--resume-from', 'auto')
    _assert_same_checkpoint(tmp_path / 'iter_4.pth', reference / 'iter_4.pth')


def test_nan_loss_stops_dacs_after_saving_the_last_good_state(tiny_data, reference, tmp_path,
                                                              monkeypatch):
    from mmseg_uda.models.uda import dacs as dacs_module
    real = dacs_module.DACS.train_on_mixed

    def nan_at_iteration_2(self, mixed, img_metas, logs):
        real(self, mixed, img_metas, logs)
        if self.local_iter == 2:
            logs['mix.decode.loss_blv'] = logs['mix.decode.loss_blv'] * float('nan')

    monkeypatch.setattr(dacs_module.DACS, 'train_on_mixed', nan_at_iteration_2)
    config = _config(tiny_data, tmp_path, checkpoint_config=dict(interval=100))
    with pytest.raises(NonFiniteLossError, match="'mix.decode.loss_blv' is nan at iteration 2"):
        _train(config)
    # Before the step: weights, teacher, BN statistics, AdamW, generators and data stream are
    # those of a clean run after 2 iterations.
    _assert_same_checkpoint(tmp_path / 'iter_2.pth', reference / 'iter_2.pth')


def _dacs(model_cfg=None, **uda):
    cfg = dict(type='DACS', alpha=0.999, imnet_feature_dist_lambda=0.005,
               imnet_feature_dist_classes=[6, 7, 11, 12, 13, 14, 15, 16, 17, 18],
               imnet_feature_dist_scale_min_ratio=0.75)
    cfg.update(uda)
    dacs = build_train_model(dict(model=model_cfg or tiny_model_cfg('daformer'), uda=cfg))
    dacs.init_weights()
    return dacs.train()


def test_empty_feature_distance_mask_gives_zero_not_nan():
    dacs = _dacs()
    optimizer = torch.optim.AdamW(dacs.get_model().parameters(), lr=1e-3)
    batch = fake_uda_batch()
    batch['gt_semantic_seg'] = blocky_labels(2, 64, [0, 1, 2, 8, 10])  # no thing class
    logs = dacs.train_step(batch, optimizer)['log_vars']  # the NaN guard would raise
    assert logs['src.loss_imnet_feat_dist'] == 0.0


# --- DDP -----------------------------------------------------------------------------------


def _batch_independent_dacs():
    """Per-sample computations only: GroupNorm instead of BN, no dropout, no BLV noise, no
    random augmentation, a ClassMix without choice (one class + ignore per image), and every
    pseudo-label confident (a threshold inside the softmax range would flip pixels on
    rounding differences; the global weight has its own test below)."""
    model = tiny_model_cfg('daformer')
    gn = dict(type='GN', num_groups=8, requires_grad=True)
    model.decode_head.update(norm_cfg=gn, dropout_ratio=0.0)
    model.decode_head.decoder_params.fusion_cfg.norm_cfg = gn
    torch.manual_seed(0)
    dacs = _dacs(model, pseudo_threshold=0.0, color_jitter_p=0.0, blur=False)
    # The feature distance's L2 norm has no gradient at 0: move the ImageNet model off the
    # student, or the feature distance's gradient of iteration 0 is the direction of rounding
    # noise, which depends on the batch.
    with torch.no_grad():
        for p in dacs.imnet_model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    return dacs


def _global_batches(steps=3):
    batches = []
    for step in range(steps):
        batch = fake_uda_batch(seed=step)
        gt = torch.full_like(batch['gt_semantic_seg'], 255)
        gt[0, :, 0:32, 0:48] = 13    # car: a thing, so feature distance has a cell on image 0 only
        gt[1, :, 0:32, :] = 8        # vegetation
        batch['gt_semantic_seg'] = gt
        batches.append(batch)
    return batches


def _slice(batch, start, stop):
    return {k: v[start:stop] for k, v in batch.items()}


def _train_dacs(rank, world_size):
    dacs = _batch_independent_dacs()
    if world_size > 1:
        torch.manual_seed(100 + rank)  # the ranks' own streams differ, as in tools/train.py
        model = SelfSyncDistributedDataParallel(dacs)
    else:
        model = dacs
    # SGD: Adam divides by the gradient's own scale, so parameters whose true gradient is 0
    # (attention key biases) would turn rounding noise into full-size steps.
    optimizer = torch.optim.SGD(dacs.get_model().parameters(), lr=0.05, momentum=0.9)
    per_rank = 2 // world_size
    logs = [model.train_step(_slice(b, rank * per_rank, (rank + 1) * per_rank), optimizer)
            ['log_vars'] for b in _global_batches()]
    return logs, {k: v.clone() for k, v in dacs.state_dict().items()
                  if k.startswith(('model.', 'ema_model.'))}


@pytest.mark.integration
def test_two_processes_match_one_process_with_the_same_global_batch():
    single_logs, single_state = _train_dacs(0, 1)
    (logs0, state0), (logs1, state1) = run_on_ranks(_train_dacs, 2)
    assert logs0 == logs1  # log values are averaged over ranks
    assert single_logs[-1]['src.loss_imnet_feat_dist'] > 0
    for step_logs, single in zip(logs0, single_logs):
        assert step_logs.keys() == single.keys()
        for key in [k for k in single if 'loss' in k]:  # acc_seg: a ratio per rank, not a loss
            assert step_logs[key] == pytest.approx(single[key], rel=1e-5, abs=1e-7), key
    for key, value in single_state.items():
        assert torch.equal(state0[key], state1[key]), key  # student and teacher: one replica
        torch.testing.assert_close(state0[key], value, rtol=1e-3, atol=1e-4)


def _pseudo_weights(rank, world_size):
    logits = torch.zeros(1, 19, 4, 4) if world_size > 1 else torch.zeros(2, 19, 4, 4)
    if world_size == 1 or rank == 0:
        logits[0, 3] = 10.0  # image 0: every pixel confident; image 1: none
    return pseudo_label_and_weight(logits, 0.968)[1]


@pytest.mark.integration
def test_pseudo_weight_is_the_confident_fraction_of_the_global_batch():
    single = _pseudo_weights(0, 1)
    assert torch.equal(single, torch.full((2, 4, 4), 0.5))
    for weight in run_on_ranks(_pseudo_weights, 2):
        assert torch.equal(weight, torch.full((1, 4, 4), 0.5))


def _evaluate(rank, world_size, dataset_cfg):
    torch.manual_seed(0)
    dacs = build_train_model(dict(model=tiny_model_cfg('daformer'), uda=dict(type='SourceOnly')))
    if rank == 1:  # BN statistics differ between ranks after training
        for module in dacs.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.add_(1.0)
    model = SelfSyncDistributedDataParallel(dacs) if world_size > 1 else dacs
    loader = build_val_dataloader(Config(dict(data=dict(workers_per_gpu=0))), dataset_cfg,
                                  shard=True)
    runner = SimpleNamespace(model=model, logger=logging.getLogger('eval'),
                             log_buffer=LogBuffer())
    rng = torch.get_rng_state()
    summary = StreamingEvalHook(loader, interval=1, progress=False).evaluate(runner, 1)
    assert torch.equal(rng, torch.get_rng_state())  # evaluation does not move the generators
    return summary, len(loader)


@pytest.mark.integration
def test_distributed_evaluation_equals_single_process(tmp_path):
    dataset_cfg = dict(pipeline=test_pipeline((64, 32)),
                       **write_cityscapes_like(str(tmp_path), num_images=5))
    single, n_single = _evaluate(0, 1, dataset_cfg)
    (summary0, n0), (summary1, n1) = run_on_ranks(_evaluate, 2, dataset_cfg)
    assert (n_single, n0, n1) == (5, 3, 2)  # shards without padding
    assert summary0 == summary1 == single
