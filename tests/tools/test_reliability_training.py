"""Reliability probes of training and evaluation: each makes the bad input, runs the real tool,
and checks the message the user sees and that nothing is lost (tiny data, CPU)."""
from __future__ import annotations

import json
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from uda_helpers import uda_run_config

from mmseg_uda.config_check import ConfigError
from mmseg_uda.datasets.pipelines import CorruptFileError
from tools import test as test_tool
from tools import train as train_tool


def _run(cfg, work_dir) -> None:
    path = osp.join(work_dir, 'config.py')
    cfg.dump(path)
    train_tool.main([path, '--device', 'cpu', '--no-validate'])


def _copy_data(tiny_root: str, dst) -> str:
    root = str(dst / 'data')
    shutil.copytree(tiny_root, root)
    return root


def _truncate(path: str) -> None:
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 3])


def _first(pattern_dir: str, suffix: str) -> str:
    import glob
    return sorted(glob.glob(osp.join(pattern_dir, '**', f'*{suffix}'), recursive=True))[0]


def test_a_truncated_training_image_stops_with_its_path_or_is_skipped(tiny_data, tmp_path):
    """Probe 3: 'NoneType' object has no attribute 'shape' at iteration 8, no file named."""
    root = _copy_data(tiny_data, tmp_path)
    bad = _first(osp.join(root, 'cityscapes', 'leftImg8bit', 'train'), '_leftImg8bit.png')
    _truncate(bad)
    cfg = uda_run_config(root, str(tmp_path / 'run'), 'daformer', uda_base='source_only',
                         max_iters=12, data=dict(train=dict(rare_class_sampling=None)))
    cfg.data.train.target.data_root = osp.join(root, 'cityscapes')
    with pytest.raises(CorruptFileError, match=rf'{bad}: cannot be decoded.*check_data\.py'
                                               r'.*skip_corrupt'):
        _run(cfg, str(tmp_path / 'run'))
    cfg.data.skip_corrupt = True
    with pytest.warns(UserWarning, match=rf'skip_corrupt: skipped a training sample: {bad}'):
        _run(cfg, str(tmp_path / 'run'))
    assert osp.isfile(tmp_path / 'run' / 'iter_12.pth')


def test_a_truncated_val_image_loses_no_training(tiny_data, tmp_path):
    """Probe 4: the crash in the final evaluation came before the final checkpoint."""
    root = _copy_data(tiny_data, tmp_path)
    bad = _first(osp.join(root, 'cityscapes', 'leftImg8bit', 'val'), '_leftImg8bit.png')
    good = open(bad, 'rb').read()
    work = tmp_path / 'run'
    cfg = uda_run_config(root, str(work), 'daformer', uda_base='source_only', max_iters=2)
    path = str(work / 'config.py')
    cfg.dump(path)
    _truncate(bad)
    with pytest.raises(CorruptFileError, match=bad):
        train_tool.main([path, '--device', 'cpu'])
    assert osp.isfile(work / 'iter_2.pth')  # the training is kept
    open(bad, 'wb').write(good)  # the user replaces the file and resumes
    train_tool.main([path, '--device', 'cpu', '--resume-from', 'auto'])
    assert json.loads((work / 'final_metrics.json').read_text())['iter'] == 2


@pytest.mark.parametrize('option, message', [
    ('evalution.interval=1', r"'evalution' is not a config key that the run reads "
                             r"\(did you mean 'evaluation'\?\)"),
    ('checkpoint_config.max_keep=1', r"checkpoint_config\.max_keep is not read by this project "
                                     r"\(did you mean 'max_keep_ckpts'\?\)"),
    ('runner.max_iters=abc', r"runner\.max_iters='abc': expected an integer"),
    ('evaluation.interval=0', r'evaluation\.interval=0: expected an integer >= 1'),
    ('data.skip_corrupt=yes', r"data\.skip_corrupt='yes': expected True or False"),
])
def test_bad_cfg_options_stop_before_training_and_name_the_key(tiny_data, tmp_path, option,
                                                               message):
    """Probes 6-8: a typo was accepted silently, or failed 4,000 iterations later, or failed
    in the logger without naming the key."""
    work = tmp_path / 'run'
    cfg = uda_run_config(tiny_data, str(work), 'daformer', uda_base='source_only')
    path = str(work / 'config.py')
    cfg.dump(path)
    with pytest.raises(ConfigError, match=message):
        train_tool.main([path, '--device', 'cpu', '--cfg-options', option])
    assert not list(work.glob('*.pth'))


def test_a_typo_among_the_top_level_keys_of_a_config_file(tiny_data, tmp_path):
    work = tmp_path / 'run'
    cfg = uda_run_config(tiny_data, str(work), 'daformer', uda_base='source_only')
    cfg.checkpoint_confg = dict(interval=1)
    path = str(work / 'config.py')
    cfg.dump(path)
    with pytest.raises(ConfigError, match="'checkpoint_confg'.*did you mean 'checkpoint_config'"):
        train_tool.main([path, '--device', 'cpu'])


@pytest.fixture
def finished_run(tiny_data, tmp_path):
    work = tmp_path / 'run'
    cfg = uda_run_config(tiny_data, str(work), 'daformer', uda_base='source_only', max_iters=2,
                         checkpoint_config=dict(interval=1, max_keep_ckpts=-1))
    path = str(work / 'config.py')
    cfg.dump(path)
    train_tool.main([path, '--device', 'cpu', '--no-validate'])
    return work, path


def test_unloadable_checkpoints_name_the_file_and_the_earlier_one(finished_run, tmp_path):
    """Probe 9 and the partial ones: torch's raw zip or 'weights_only' errors."""
    work, config = finished_run
    _truncate(str(work / 'iter_2.pth'))
    with pytest.raises(ValueError, match=r'iter_2\.pth: cannot be loaded.*newest loadable '
                                         r'earlier one is .*iter_1\.pth'):
        train_tool.main([config, '--device', 'cpu', '--resume-from', str(work / 'iter_2.pth'),
                         '--no-validate'])
    random_bytes = tmp_path / 'random.pth'
    random_bytes.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match=r'cannot read the checkpoint .*random\.pth: it is '
                                         'truncated, corrupt or not a PyTorch file'):
        test_tool.main([config, str(random_bytes), '--eval', 'mIoU', '--device', 'cpu'])
    with pytest.raises(ValueError, match=r'iter_2\.pth: it is truncated'):
        test_tool.main([config, str(work / 'iter_2.pth'), '--eval', 'mIoU', '--device', 'cpu'])


def test_a_checkpoint_of_another_class_count_names_file_and_mismatch(finished_run):
    work, config = finished_run
    with pytest.raises(ValueError, match=r'iter_1\.pth does not fit this config\'s model.*'
                                         r'size mismatch.*num_classes'):
        train_tool.main([config, '--device', 'cpu', '--resume-from', str(work / 'iter_1.pth'),
                         '--no-validate', '--cfg-options', 'model.decode_head.num_classes=16',
                         'runner.max_iters=3'])
    with pytest.raises(ValueError, match=r'iter_1\.pth does not match.*19 classes and the '
                                         r'config 16'):
        test_tool.main([config, str(work / 'iter_1.pth'), '--eval', 'mIoU', '--device', 'cpu',
                        '--cfg-options', 'model.decode_head.num_classes=16'])
    assert torch.load(work / 'iter_1.pth', weights_only=False)['state_dict']  # untouched


def test_check_data_lists_every_broken_file(tiny_data, tmp_path, capsys):
    from experiments_helpers import load_script
    tool = load_script('tools/check_data.py')
    root = _copy_data(tiny_data, tmp_path)
    assert tool.main([root]) == 0
    assert 'all decode' in capsys.readouterr().out
    cut = _first(osp.join(root, 'gta', 'images'), '.png')
    empty = _first(osp.join(root, 'cityscapes', 'gtFine', 'val'), '_labelTrainIds.png')
    _truncate(cut)
    open(empty, 'wb').close()
    open(osp.join(root, 'gta', 'labels', '.00001.png.abc.tmp'), 'wb').close()  # ignored
    assert tool.main([root, '--nproc', '2']) == 1
    out = capsys.readouterr().out
    assert '2 broken' in out
    assert f'{cut}: truncated PNG (no IEND chunk)' in out and f'{empty}: empty file' in out
    assert tool.main([str(tmp_path / 'nowhere')]) == 1


def test_a_sweep_resumes_past_a_truncated_newest_checkpoint(tiny_data, tmp_path):
    """Probe 5: the sweep passed the truncated file as --resume-from PATH, so every re-run
    failed with torch's zip error; with auto it falls back to the checkpoint before."""
    from mmseg_uda.experiments.sweep import Job, run_sweep
    work = tmp_path / 'run'
    cfg = uda_run_config(tiny_data, str(work), 'daformer', uda_base='source_only', max_iters=3,
                         checkpoint_config=dict(interval=1, max_keep_ckpts=-1))
    config = tmp_path / 'run.json'
    cfg.dump(str(config))
    job = Job('run', config, work)
    from mmcv import Config
    stop_after_2 = Config(cfg._cfg_dict.to_dict())
    stop_after_2.custom_hooks = [dict(type='ExitAfterIterHook', iteration=2, priority='LOWEST')]
    stop_after_2.dump(str(tmp_path / 'stop.json'))
    logs: list[str] = []
    assert not run_sweep([Job('run', tmp_path / 'stop.json', work)], log=logs.append,
                         train_args=['--device', 'cpu']).ok  # "pre-empted" after iteration 2
    _truncate(str(work / 'iter_2.pth'))
    result = run_sweep([job], log=logs.append, train_args=['--device', 'cpu'])
    assert result.ok, logs
    assert any('resuming (--resume-from auto' in line for line in logs)
    assert json.loads((work / 'final_metrics.json').read_text())['iter'] == 3


def test_a_cut_png_is_refused_even_by_a_lenient_decoder(tiny_data, tmp_path, monkeypatch):
    """Some decoders (older OpenCV builds, PIL with LOAD_TRUNCATED_IMAGES) turn a cut PNG into
    pixels without an error; the loader checks the IEND chunk itself."""
    import mmcv
    from mmseg.datasets.pipelines import LoadImageFromFile
    src = _first(osp.join(tiny_data, 'cityscapes', 'leftImg8bit', 'train'), '.png')
    cut = tmp_path / 'cut.png'
    data = open(src, 'rb').read()
    cut.write_bytes(data[:-12])  # every pixel there, only the IEND chunk missing
    monkeypatch.setattr(mmcv, 'imfrombytes', lambda *a, **k: np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(CorruptFileError, match=r'cut\.png: cannot be decoded \(truncated PNG'):
        LoadImageFromFile()(dict(img_prefix=str(tmp_path), img_info=dict(filename='cut.png')))
    out = LoadImageFromFile()(dict(img_prefix=osp.dirname(src),
                                   img_info=dict(filename=osp.basename(src))))
    assert out['img'].shape == (4, 4, 3)  # a complete file goes through
