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
    """Experiment 3's self-training + BLV run on the tiny data, 4 iterations, saving each."""
    exp = EXPERIMENTS[3]
    [run] = [r for r in plan(exp, seeds=[0]) if r.spec.method == 'self_training'
             and r.spec.blv is not None]
    cfg = build_config(exp, run, data_root=data_root, work_root=work_dir.parent, extra=dict(
        runner=dict(max_iters=MAX_ITERS), checkpoint_config=dict(interval=1, max_keep_ckpts=-1),
        log_config=dict(interval=1), **extra))
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
