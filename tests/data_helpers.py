"""Helpers of the data tests: a tiny generated data set, raw-label writers, dataset configs."""
from __future__ import annotations

import os
import os.path as osp
import shutil

import cv2
import numpy as np
from mmcv import Config
from PIL import Image

from mmseg_uda.datasets.synthetic import SCALES

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DATASET_CONFIGS = {
    'gta': ('configs/_base_/datasets/uda_gta_to_cityscapes_512x512.py', 'gta2cs'),
    'synthia': ('configs/_base_/datasets/uda_synthia_to_cityscapes_512x512.py', 'syn2cs'),
}
# The UDA data sets at both resolutions: HRDA's ('...HR') is DAFormer's file scaled by the
# recipe's hr_sizes, as run_experiments.py composes it.
UDA_DATASETS = ('gta', 'gtaHR', 'synthia', 'synthiaHR')
TINY = SCALES['tiny']
IMG_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
IMG_STD = np.array([58.395, 57.12, 57.375], np.float32)


def copy_domain(tiny_root: str, domain: str, dst: str) -> str:
    out = osp.join(dst, domain)
    shutil.copytree(osp.join(tiny_root, domain), out)
    return out


def dataset_config(name: str) -> Config:
    """The data config ``name`` (a key of DATASET_CONFIGS, or that key + 'HR')."""
    from mmseg_uda.datasets import scale_pipelines
    from mmseg_uda.experiments import DATASETS

    base = name.removesuffix('HR')
    path, recipe = DATASET_CONFIGS[base]
    cfg = Config.fromfile(osp.join(REPO, path))
    if name.endswith('HR'):
        scale_pipelines(cfg, **DATASETS[recipe].hr_sizes)
    return cfg


def uda_config(tiny_root: str, name: str = 'gta', crop=(48, 48), rcs: dict | None = None,
               margins=None) -> Config:
    """A dataset base config pointed at the tiny data, with scales for its image sizes."""
    from mmseg_uda.datasets import scale_pipelines

    cfg = dataset_config(name)
    source = 'synthia' if name.startswith('synthia') else 'gta'
    cfg.data.train.source.data_root = osp.join(tiny_root, source)
    for split in (cfg.data.train.target, cfg.data.val, cfg.data.test):
        split.data_root = osp.join(tiny_root, 'cityscapes')
    size = TINY.synthia_size if source == 'synthia' else TINY.gta_size
    scale_pipelines(cfg, source_scale=size, target_scale=TINY.cityscapes_size, crop_size=crop)
    if rcs is not None:
        cfg.data.train.rare_class_sampling = rcs
    if margins is not None:
        cfg.data.train.target.crop_pseudo_margins = margins
    return cfg


# --- raw labels in each data set's own encoding, written without the generator's code ---

def write_palette_png(path: str, ids: np.ndarray) -> None:
    """GTA5-style label: palette PNG whose indices are Cityscapes label ids."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    img = Image.fromarray(ids.astype(np.uint8), mode='P')
    img.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    img.save(path)


def write_gray_png(path: str, ids: np.ndarray) -> None:
    """Cityscapes-style ``*_gtFine_labelIds.png``."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(ids.astype(np.uint8), mode='L').save(path)


def write_synthia_png(path: str, ids: np.ndarray, instance: np.ndarray | None = None) -> None:
    """SYNTHIA-style label: 16-bit, 3 channels, class id in the first (R) channel."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    inst = np.zeros_like(ids) if instance is None else instance
    rgb = np.dstack([ids, inst, np.zeros_like(ids)]).astype(np.uint16)
    assert cv2.imwrite(path, rgb[:, :, ::-1])   # OpenCV writes BGR


def write_rgb_png(path: str, height: int, width: int, seed: int = 0) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)


def read_png(path: str) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


class FakeSegDataset:
    """Duck-typed dataset for UDADataset tests: item ``i`` has label ``labels(i, call)``, where
    ``call`` counts the loads of ``i`` so far (each load is a new "crop"). Records every load."""

    CLASSES = tuple(f'c{i}' for i in range(19))
    PALETTE = [[i, i, i] for i in range(19)]
    ignore_index = 255

    def __init__(self, n: int, labels=None, data_root: str | None = None, size: int = 8):
        import torch
        from mmcv.parallel import DataContainer as DC
        self._torch, self._dc = torch, DC
        self.data_root, self.size, self.n = data_root, size, n
        self.img_infos = [dict(filename=f'{i:05d}.png',
                               ann=dict(seg_map=f'{i:05d}_labelTrainIds.png'))
                          for i in range(n)]
        self.labels = labels or (lambda i, call: np.full((size, size), i % 19))
        self.loads: list[int] = []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        call = self.loads.count(i)
        self.loads.append(i)
        gt = self._torch.as_tensor(np.asarray(self.labels(i, call)), dtype=self._torch.long)
        return dict(img=self._dc(self._torch.full((3, self.size, self.size), float(i))),
                    img_metas=self._dc(dict(index=i, call=call), cpu_only=True),
                    gt_semantic_seg=self._dc(gt[None], stack=True))


def write_rcs_stats(root: str, per_image: list[dict[int, int]]) -> None:
    """The converters' statistics files for images ``{i:05d}_labelTrainIds.png``."""
    import json

    from mmseg_uda.datasets.conversion import save_class_stats
    os.makedirs(root, exist_ok=True)
    stats = []
    for i, counts in enumerate(per_image):
        s = {str(c): n for c, n in counts.items()}
        s['file'] = osp.join(root, 'labels', f'{i:05d}_labelTrainIds.png')
        stats.append(s)
    save_class_stats(root, stats)
    assert json.load(open(osp.join(root, 'sample_class_stats.json')))
