"""Each torch-2 fix in mmseg_uda.compat, with a check that the failure it fixes is real."""
import argparse

import numpy as np
import pytest
import torch
from mmcv import Config
from mmcv.runner import load_checkpoint, save_checkpoint
from mmseg.datasets import build_dataloader

from mmseg_uda import compat


def _save_runner_style_checkpoint(path):
    model = torch.nn.Conv2d(3, 4, 1)
    meta = dict(hook_msgs=dict(best_score=np.float64(0.61), last_ckpt=str(path)),
                iter=np.int64(40000), np_rng=np.random.get_state())
    save_checkpoint(model, str(path), meta=meta)
    return model


def test_checkpoint_with_numpy_meta_loads_back(tmp_path):
    path = tmp_path / 'iter_1.pth'
    model = _save_runner_style_checkpoint(path)
    # Without the allow-list, torch>=2.6's safe loader rejects mmcv's numpy meta.
    torch.serialization.clear_safe_globals()
    try:
        with pytest.raises(Exception, match='[Ww]eights only load failed'):
            torch.load(path, map_location='cpu')
    finally:
        compat.allow_numpy_in_checkpoints()
    ckpt = load_checkpoint(torch.nn.Conv2d(3, 4, 1), str(path), map_location='cpu')
    assert ckpt['meta']['hook_msgs']['best_score'] == pytest.approx(0.61)
    state = ckpt['meta']['np_rng']
    assert state[0] == 'MT19937' and np.array_equal(state[1], np.random.get_state()[1])
    torch.testing.assert_close(ckpt['state_dict']['weight'], model.weight)


def test_safe_loader_still_rejects_arbitrary_objects(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'x': argparse.Namespace(a=1)}, path)  # not allow-listed
    with pytest.raises(Exception, match='[Ww]eights only load failed'):
        torch.load(path, map_location='cpu')


def test_cpu_loader_config_with_zero_workers():
    cfg = Config(dict(data=dict(samples_per_gpu=2, workers_per_gpu=0)))
    dataset = [dict(img=torch.zeros(1)) for _ in range(4)]

    def build():
        loader_cfg = dict(num_gpus=len(cfg.gpu_ids), dist=False, seed=0, drop_last=True,
                          **{k: v for k, v in cfg.data.items()})
        return build_dataloader(dataset, **loader_cfg)

    cfg.gpu_ids = [0]
    with pytest.raises(ValueError, match='persistent_workers'):
        build()  # mmseg's default persistent_workers=True with 0 workers
    compat.configure_for_device(cfg, 'cpu')
    assert cfg.device == 'cpu' and cfg.gpu_ids == [0]
    assert len(list(build())) == 2


def test_json_configs_get_their_tuples_back(tmp_path):
    import json

    from mmcv.utils import build_from_cfg
    from mmseg.datasets.builder import PIPELINES
    cfg = dict(workflow=[('train', 1)],
               pipeline=[dict(type='Resize', img_scale=(1280, 720), ratio_range=(0.5, 2.0)),
                         dict(type='MultiScaleFlipAug', img_scale=(1024, 512),
                              transforms=[dict(type='Resize', keep_ratio=True)])],
               num_layers=[3, 6, 40, 3])
    path = tmp_path / 'generated.json'
    path.write_text(json.dumps(cfg))
    loaded = Config.fromfile(str(path))
    assert loaded.workflow == [('train', 1)]
    assert loaded.pipeline[0].img_scale == (1280, 720)
    assert loaded.pipeline[0].ratio_range == (0.5, 2.0)
    assert loaded.num_layers == [3, 6, 40, 3]  # lists of other keys stay lists
    for step in loaded.pipeline:  # mmseg asserts tuples here
        build_from_cfg(step, PIPELINES)
    # The failure it fixes: without restoring, mmseg rejects the JSON lists.
    raw = json.loads(path.read_text())
    with pytest.raises(AssertionError):
        build_from_cfg(raw['pipeline'][1], PIPELINES)
