"""Shared helpers of the UDA/eval tests: tiny model configs and fake UDA batches."""
from __future__ import annotations

import os
import os.path as osp

import numpy as np
import torch
from mmcv import Config, ConfigDict

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
MODEL_CONFIGS = {
    'daformer': 'configs/_base_/models/tiny_daformer_mitb0.py',
    'hrda': 'configs/_base_/models/tiny_hrda_daformer_mitb0.py',
    'dlv2': 'configs/_base_/models/tiny_deeplabv2red_r18v1c.py',
}
IMG_NORM_CFG = dict(mean=np.array([123.675, 116.28, 103.53], dtype=np.float32),
                    std=np.array([58.395, 57.12, 57.375], dtype=np.float32), to_rgb=True)


def tiny_model_cfg(kind: str = 'daformer') -> ConfigDict:
    """The ``model`` of one of the tiny model configs (random init), as mmcv gives it."""
    return Config.fromfile(osp.join(REPO, MODEL_CONFIGS[kind])).model


def spy(monkeypatch, owner, name: str, before=None, after=None) -> None:
    """Wrap ``owner.name``: ``before(*args, **kwargs)`` runs before each call and
    ``after(result)`` after it; the real method still runs in between."""
    real = getattr(owner, name)

    def wrapper(*args, **kwargs):
        if before is not None:
            before(*args, **kwargs)
        result = real(*args, **kwargs)
        if after is not None:
            after(result)
        return result

    monkeypatch.setattr(owner, name, wrapper)


def img_metas(batch: int, size: int) -> list[dict]:
    shape = (size, size, 3)
    return [dict(img_shape=shape, ori_shape=shape, pad_shape=shape, flip=False,
                 img_norm_cfg=IMG_NORM_CFG, filename=f'fake_{i}.png') for i in range(batch)]


def blocky_labels(batch: int, size: int, classes, block: int = 16,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """B×1×H×W labels made of ``block``-sized squares of classes drawn from ``classes``."""
    classes = torch.as_tensor(classes)
    cells = size // block
    idx = torch.randint(len(classes), (batch, 1, cells, cells), generator=generator)
    return classes[idx].repeat_interleave(block, 2).repeat_interleave(block, 3)


def fake_uda_batch(batch: int = 2, size: int = 64, seed: int = 0,
                   classes=tuple(range(19))) -> dict:
    """A UDA batch as the data loader gives it after scatter: source with GT, target without."""
    g = torch.Generator().manual_seed(seed)
    gt = blocky_labels(batch, size, classes, generator=g)
    # Images that carry the label, so a model can learn something in a few steps.
    img = (gt.float() / 9.0 - 1.0).expand(-1, 3, -1, -1).clone()
    img += 0.1 * torch.randn(img.shape, generator=g)
    target_img = torch.randn(batch, 3, size, size, generator=g)
    return dict(img=img, img_metas=img_metas(batch, size), gt_semantic_seg=gt,
                target_img=target_img, target_img_metas=img_metas(batch, size))


def write_cityscapes_like(root: str, num_images: int = 4, size=(32, 64), seed: int = 0,
                          classes=tuple(range(19))) -> dict:
    """A tiny Cityscapes-layout val set on disk (images and labelTrainIds with 255 areas);
    returns mmseg ``CityscapesDataset`` kwargs without the pipeline."""
    import mmcv
    rng = np.random.default_rng(seed)
    h, w = size
    for i in range(num_images):
        name = f'city/city_{i:06d}_000019'
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        label = np.asarray(classes, dtype=np.uint8)[rng.integers(0, len(classes), (h // 8, w // 8))]
        label = label.repeat(8, 0).repeat(8, 1)
        label[: h // 8] = 255
        mmcv.imwrite(img, osp.join(root, 'leftImg8bit', f'{name}_leftImg8bit.png'))
        mmcv.imwrite(label, osp.join(root, 'gtFine', f'{name}_gtFine_labelTrainIds.png'))
    return dict(type='CityscapesDataset', data_root=root, img_dir='leftImg8bit',
                ann_dir='gtFine')


def test_pipeline(img_scale=(32, 16)) -> list[dict]:
    """mmseg's single-scale test pipeline (resize, normalise), as DAFormer's val sets use."""
    norm = dict(mean=IMG_NORM_CFG['mean'].tolist(), std=IMG_NORM_CFG['std'].tolist(),
                to_rgb=True)
    return [dict(type='LoadImageFromFile'),
            dict(type='MultiScaleFlipAug', img_scale=img_scale, flip=False, transforms=[
                dict(type='Resize', keep_ratio=True), dict(type='RandomFlip'),
                dict(type='Normalize', **norm), dict(type='ImageToTensor', keys=['img']),
                dict(type='Collect', keys=['img'])])]


# --- end-to-end configs on the synthetic data ----------------------------------------------

BASE = osp.join(REPO, 'configs', '_base_')


def _image_size(folder: str) -> tuple[int, int]:
    """(width, height) of the first PNG below ``folder``."""
    import glob

    import mmcv
    path = sorted(glob.glob(osp.join(folder, '**', '*.png'), recursive=True))[0]
    h, w = mmcv.imread(path).shape[:2]
    return w, h


def uda_run_config(data_root: str, work_dir: str, model: str = 'daformer',
                   uda_base: str = 'dacs_a999_fdthings', source: str = 'gta', blv: bool = False,
                   max_iters: int = 2, crop: int = 64, **overrides) -> Config:
    """A complete training config from the real _base_ files, shrunk to a generated data set
    (``tools/make_synthetic_data.py`` + converters under ``data_root``): tiny model, images at
    their own size, ``crop``×``crop`` crops, ``max_iters`` iterations, evaluation at the end."""
    from blv_patches import apply_blv
    from mmseg_uda.datasets import scale_pipelines

    hrda = model == 'hrda'
    # HRDA's data set is DAFormer's at doubled scales; scale_pipelines below sets the scales.
    dataset = f'uda_{source}_to_cityscapes_512x512.py'
    bases = [osp.join(REPO, MODEL_CONFIGS[model]), osp.join(BASE, 'datasets', dataset),
             osp.join(BASE, 'uda', f'{uda_base}.py'), osp.join(BASE, 'schedules', 'adamw.py'),
             osp.join(BASE, 'schedules', 'poly10warm.py'), osp.join(BASE, 'default_runtime.py')]
    os.makedirs(work_dir, exist_ok=True)
    composed = osp.join(work_dir, 'composed.py')
    with open(composed, 'w') as f:
        f.write(f'_base_ = {bases!r}\n')
    cfg = Config.fromfile(composed)
    source_root, target_root = osp.join(data_root, source), osp.join(data_root, 'cityscapes')
    target_size = _image_size(osp.join(target_root, 'leftImg8bit', 'val'))
    scale_pipelines(cfg, _image_size(osp.join(source_root, cfg.data.train.source.img_dir)),
                    target_size, (crop, crop), target_size)
    cfg.data.train.source.data_root = source_root
    for split in (cfg.data.train.target, cfg.data.val, cfg.data.test):
        split.data_root = target_root
    cfg.merge_from_dict(dict(
        data=dict(samples_per_gpu=2, workers_per_gpu=0),
        runner=dict(max_iters=max_iters),
        lr_config=dict(warmup_iters=max(1, max_iters // 10)),
        checkpoint_config=dict(interval=max_iters),
        evaluation=dict(interval=max_iters),
        log_config=dict(interval=1),
        exp_meta=dict(exp=0, tables=[], dataset=f'{source[:3]}2cs',
                      method='source_only' if uda_base == 'source_only' else
                      ('hrda' if hrda else 'daformer'),
                      backbone='r101' if model == 'dlv2' else 'mitb5', blv=None, seed=0),
        seed=0, work_dir=work_dir))
    if cfg.get('uda') is not None and cfg.uda.get('debug_img_interval'):
        cfg.uda.debug_img_interval = None
    cfg.merge_from_dict(overrides)
    if blv:
        cfg = apply_blv(cfg, osp.join(source_root, 'sample_class_stats.json'), sigma=4.0)
        cfg.exp_meta.blv = dict(sigma=4.0, variation='gaussian', clip=1.0, balance=True,
                                use_variation=True)
    return cfg
