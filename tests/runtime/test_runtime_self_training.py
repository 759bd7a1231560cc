"""Semi-supervised self-training through tools/train.py: interrupted mid-epoch and resumed, it
ends bit-identical to an uninterrupted run, Eq. 4's pass and BLV's re-estimated counts included."""
import json
from pathlib import Path

import pytest
import torch
from data_helpers import copy_domain
from runtime_helpers import Interrupted, assert_nested_equal, load

from mmseg_uda.experiments import EXPERIMENTS, build_config, plan
from mmseg_uda.experiments.planning import write_partitions
from tools import train as train_tool

pytestmark = [pytest.mark.usefixtures('one_torch_thread'), pytest.mark.integration]

MAX_ITERS = 4
EPOCH = 2  # an Eq. 4 pass after iterations 2 and 4


@pytest.fixture(scope='module', autouse=True)
def _restore_determinism():
    yield
    torch.use_deterministic_algorithms(False)


@pytest.fixture(scope='module')
def data_root(tiny_data, tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp('semi')
    copy_domain(tiny_data, 'cityscapes', str(root))
    return str(root)


def _config(data_root: str, work_dir: Path, **extra) -> str:
    """Experiment 3's self-training + BLV run on the tiny data, 4 iterations, saving each,
    from random weights (not experiment 0's warm start)."""
    exp = EXPERIMENTS[3]
    [run] = [r for r in plan(exp, seeds=[0]) if r.spec.method == 'self_training'
             and r.spec.blv is not None]
    cfg = build_config(exp, run, data_root=data_root, work_root=work_dir.parent, extra=dict(
        runner=dict(max_iters=MAX_ITERS), checkpoint_config=dict(interval=1, max_keep_ckpts=-1),
        log_config=dict(interval=1), **extra))
    cfg['load_from'] = None
    cfg['uda']['pseudo_label_observers'][0]['interval'] = EPOCH
    cfg['work_dir'] = str(work_dir)
    write_partitions(cfg)
    path = work_dir / 'config.json'
    work_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg))
    return str(path)


def _train(config: str, *extra: str) -> None:
    train_tool.main([config, '--device', 'cpu', '--deterministic', '--no-validate', *extra])


@pytest.fixture(scope='module')
def reference(data_root, tmp_path_factory) -> Path:
    work_dir = tmp_path_factory.mktemp('uninterrupted') / 'run'
    _train(_config(data_root, work_dir))
    return work_dir


def test_resumed_mid_epoch_it_ends_as_the_uninterrupted_run(data_root, reference, tmp_path):
    work_dir = tmp_path / 'run'
    with pytest.raises(Interrupted):
        _train(_config(data_root, work_dir, custom_hooks=[
            dict(type='InterruptAfterIter', iteration=3, priority='LOWEST')]),
            '--resume-from', 'auto')
    _train(_config(data_root, work_dir), '--resume-from', 'auto')
    a, b = load(work_dir / 'iter_4.pth'), load(reference / 'iter_4.pth')
    for key in ('state_dict', 'optimizer', 'training_state'):
        assert_nested_equal(a[key], b[key], key)
    state = a['state_dict']
    assert {k.split('.')[0] for k in state} >= {'model', 'ema_model', 'pseudo_label_observers'}
    # BLV's counts after the pass of iteration 4: the teacher's labels of every unlabelled image
    # plus one pixel per class, and no longer the labelled images' statistics.
    counts = state['model.decode_head.loss_decode.class_counts']
    unlabelled = (Path(data_root) / 'cityscapes' / 'splits' / '1-8_seed0' / 'unlabelled.txt')
    assert counts.min() >= 1 and counts.sum() > 19
    assert len(unlabelled.read_text().split()) > 0
    log = next(reference.glob('*.log')).read_text()
    assert log.count('Eq. 4 pass over') == 2


# --- DDP: the machinery DACS's DDP tests check, with SelfTraining -------------------------

def _batch_independent_self_training():
    """Per-sample computations only (GroupNorm, no dropout, CE), and every pseudo-label pixel
    confident, as in DACS's DDP test."""
    from uda_helpers import tiny_model_cfg

    from mmseg_uda.models.uda import build_train_model
    model = tiny_model_cfg('daformer')
    gn = dict(type='GN', num_groups=8, requires_grad=True)
    model.decode_head.update(norm_cfg=gn, dropout_ratio=0.0)
    model.decode_head.decoder_params.fusion_cfg.norm_cfg = gn
    torch.manual_seed(0)
    st = build_train_model(dict(model=model, uda=dict(type='SelfTraining', alpha=0.99,
                                                      pseudo_threshold=0.0)))
    st.init_weights()
    return st.train()


def _train_self_training(rank, world_size):
    from uda_helpers import fake_uda_batch

    from mmseg_uda.runtime import SelfSyncDistributedDataParallel
    st = _batch_independent_self_training()
    model = SelfSyncDistributedDataParallel(st) if world_size > 1 else st
    optimizer = torch.optim.SGD(st.get_model().parameters(), lr=0.05, momentum=0.9)
    per_rank = 2 // world_size
    logs = []
    for step in range(3):
        batch = fake_uda_batch(seed=step)
        logs.append(model.train_step({k: v[rank * per_rank:(rank + 1) * per_rank]
                                      for k, v in batch.items()}, optimizer)['log_vars'])
    return logs, {k: v.clone() for k, v in st.state_dict().items()
                  if k.startswith(('model.', 'ema_model.'))}


def test_two_processes_match_one_process_with_the_same_global_batch():
    from runtime_helpers import run_on_ranks
    single_logs, single_state = _train_self_training(0, 1)
    (logs0, state0), (logs1, state1) = run_on_ranks(_train_self_training, 2)
    assert logs0 == logs1
    for step_logs, single in zip(logs0, single_logs):
        for key in [k for k in single if 'loss' in k]:
            assert step_logs[key] == pytest.approx(single[key], rel=1e-5, abs=1e-7), key
    assert single_logs[-1]['unlabelled.decode.loss_ce'] > 0
    for key, value in single_state.items():
        assert torch.equal(state0[key], state1[key]), key
        torch.testing.assert_close(state0[key], value, rtol=1e-3, atol=1e-4)


def _pass_counts(rank, world_size, data_root):
    """Each rank labels its shard of the unlabelled images; the committed counts are summed."""
    from mmcv import Config
    from uda_helpers import test_pipeline, tiny_model_cfg

    from blv_patches import BLVLoss, PseudoLabelClassFrequency, apply_blv
    from mmseg_uda.apis.train import build_val_dataloader
    from mmseg_uda.models.uda import build_train_model
    torch.manual_seed(0)
    model = apply_blv(dict(model=tiny_model_cfg('daformer')), [1.0] * 19, sigma=4.0)['model']
    st = build_train_model(dict(model=model, uda=dict(type='SelfTraining')))
    st.init_weights()
    observer = PseudoLabelClassFrequency(interval=1, source='unlabelled_pass')
    observer.attach(st.model)
    data = dict(type='CityscapesDataset', data_root=str(Path(data_root) / 'cityscapes'),
                img_dir='leftImg8bit/val', ann_dir='gtFine/val', pipeline=test_pipeline((128, 64)))
    loader = build_val_dataloader(Config(dict(data=dict(workers_per_gpu=0))), data,
                                  shard=world_size > 1)
    seen = st.pseudo_label_pass(loader, 1, [observer])
    loss = next(m for m in st.model.modules() if isinstance(m, BLVLoss))
    return seen, loss.class_counts.clone()


def test_the_eq4_pass_over_shards_counts_what_one_process_counts(data_root):
    from runtime_helpers import run_on_ranks
    single_seen, single_counts = _pass_counts(0, 1, data_root)
    (seen0, counts0), (seen1, counts1) = run_on_ranks(_pass_counts, 2, data_root)
    assert seen0 + seen1 == single_seen and min(seen0, seen1) > 0
    assert torch.equal(counts0, counts1) and torch.equal(counts0, single_counts)
