"""tools/train.py and tools/test.py end to end on a tiny generated data set (CPU).

DAFormer-R101 (DeepLabV2, depth reduced to 18), DAFormer-MiT and HRDA, each with and without
BLV, train two iterations from the real _base_ configs, then write a checkpoint, TensorBoard
scalars and final_metrics.json.
"""
import glob
import json
import os.path as osp

import pytest
from uda_helpers import uda_run_config

from tools import test as test_tool
from tools import train as train_tool

RUNS = [('dlv2', 'gta'), ('daformer', 'gta'), ('hrda', 'synthia')]


def _train(cfg, work_dir) -> dict:
    path = osp.join(work_dir, 'config.py')
    cfg.dump(path)
    train_tool.main([path, '--device', 'cpu'])
    with open(osp.join(work_dir, 'final_metrics.json')) as f:
        return json.load(f)


def _log_text(work_dir) -> str:
    (log,) = glob.glob(osp.join(work_dir, '*.log'))
    with open(log) as f:
        return f.read()


@pytest.mark.parametrize('blv', [False, True], ids=['ce', 'blv'])
@pytest.mark.parametrize('model,source', RUNS)
def test_train_writes_checkpoint_tensorboard_and_final_metrics(tiny_data, tmp_path, model,
                                                               source, blv):
    work_dir = str(tmp_path / 'run')
    overrides = {}
    if model == 'hrda':  # margins v2 and debug images on this one
        overrides = dict(data=dict(train=dict(target=dict(crop_pseudo_margins=[4, 8, 4, 4]))),
                         uda=dict(debug_img_interval=1))
    else:
        overrides = dict(uda=dict(pseudo_weight_ignore_top=2, pseudo_weight_ignore_bottom=8))
    metrics = _train(uda_run_config(tiny_data, work_dir, model, source=source, blv=blv,
                                    **overrides), work_dir)
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    assert glob.glob(osp.join(work_dir, 'tf_logs', 'events.out.tfevents.*'))
    assert metrics['iter'] == 2
    assert metrics['exp_meta']['dataset'] == f'{source[:3]}2cs'
    assert len(metrics['per_class_iou']) == 19 and 'miou' in metrics
    assert ('miou16' in metrics and 'miou13' in metrics) == (source == 'synthia')
    log = _log_text(work_dir)
    loss_name = 'loss_blv' if blv else 'loss_ce'
    assert f'src.decode.{loss_name}' in log and f'mix.decode.{loss_name}' in log
    assert 'src.loss_imnet_feat_dist' in log
    if model == 'hrda':
        assert f'mix.decode.hr.{loss_name}' in log
        assert len(glob.glob(osp.join(work_dir, 'class_mix_debug', '*.png'))) == 4


def test_test_tool_reproduces_final_metrics_and_source_only_runs(tiny_data, tmp_path,
                                                                 monkeypatch):
    work_dir = str(tmp_path / 'source_only')
    cfg = uda_run_config(tiny_data, work_dir, 'daformer', uda_base='source_only', blv=True)
    metrics = _train(cfg, work_dir)
    assert metrics['exp_meta']['method'] == 'source_only'
    assert 'mix.decode' not in _log_text(work_dir)
    out = str(tmp_path / 'test.json')
    show_dir = str(tmp_path / 'show')
    record = test_tool.main([osp.join(work_dir, 'config.py'), osp.join(work_dir, 'iter_2.pth'),
                             '--eval', 'mIoU', '--out', out, '--show-dir', show_dir])
    # The student evaluated by tools/test.py is exactly the one the training run evaluated.
    assert record['miou'] == pytest.approx(metrics['miou'], abs=1e-9)
    assert record['per_class_iou'] == pytest.approx(metrics['per_class_iou'], abs=1e-9) \
        if None not in metrics['per_class_iou'].values() else \
        record['per_class_iou'] == metrics['per_class_iou']
    with open(out) as f:
        assert json.load(f)['miou'] == record['miou']
    assert len(glob.glob(osp.join(show_dir, '**', '*.png'), recursive=True)) == 4
    # The config of a 4-GPU DDP run evaluates in one process on one device.
    used = []
    real_build_dp = test_tool.build_dp
    monkeypatch.setattr(test_tool, 'build_dp', lambda model, device, device_ids: used.append(
        device_ids) or real_build_dp(model, device, device_ids=device_ids))
    test_tool.main([osp.join(work_dir, 'config.py'), osp.join(work_dir, 'iter_2.pth'),
                    '--eval', 'mIoU', '--cfg-options', 'gpu_ids=[0,1,2,3]'])
    assert used == [[0]]


def test_uda_wrappers_refuse_an_optimizer_hook(tiny_data, tmp_path):
    work_dir = str(tmp_path / 'bad')
    cfg = uda_run_config(tiny_data, work_dir, 'daformer')
    cfg.optimizer_config = dict(grad_clip=dict(max_norm=1.0))
    with pytest.raises(ValueError, match='optimizer_config=None'):
        _train(cfg, work_dir)
