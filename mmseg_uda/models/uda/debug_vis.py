"""DACS debug images: what the student was trained on in one iteration (host copies only here)."""
from __future__ import annotations

import os
import os.path as osp
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from mmseg.datasets import CityscapesDataset

_PALETTE = np.asarray(CityscapesDataset.PALETTE, dtype=np.uint8)


def image_to_rgb(img: torch.Tensor, img_norm_cfg: Mapping) -> np.ndarray:
    """A normalised C×H×W image → H×W×3 floats in [0, 1]."""
    mean = np.asarray(img_norm_cfg['mean'], dtype=np.float32)
    std = np.asarray(img_norm_cfg['std'], dtype=np.float32)
    rgb = img.detach().float().cpu().numpy().transpose(1, 2, 0) * std + mean
    return np.clip(rgb / 255.0, 0, 1)


def label_to_rgb(label: torch.Tensor) -> np.ndarray:
    """Train ids → Cityscapes colours; ignore (255) and unknown ids are black."""
    label = label.detach().squeeze().cpu().numpy().astype(np.int64)
    rgb = np.zeros((*label.shape, 3), dtype=np.uint8)
    known = (label >= 0) & (label < len(_PALETTE))
    rgb[known] = _PALETTE[label[known]]
    return rgb


def save_panels(path: str, panels: Sequence[tuple[str, np.ndarray, dict]],
                columns: int = 4) -> None:
    """One PNG with a titled grid of images; each panel is (title, array, imshow kwargs)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis('off')
    for ax, (title, array, kwargs) in zip(axes.flat, panels):
        ax.imshow(array, **kwargs)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def save_class_mix_debug(out_dir: str, iteration: int, img_norm_cfg: Mapping,
                         tensors: Mapping[str, torch.Tensor]) -> None:
    """One grid per image of the batch: ``{out_dir}/{iteration:06d}_{j}.png``.

    ``tensors`` holds the batch's source, target, source_gt, pseudo_label, mixed_img, mix_mask,
    mixed_label and weight.
    """
    for j in range(tensors['source'].shape[0]):
        panels = [
            ('source', image_to_rgb(tensors['source'][j], img_norm_cfg), {}),
            ('target', image_to_rgb(tensors['target'][j], img_norm_cfg), {}),
            ('source GT', label_to_rgb(tensors['source_gt'][j]), {}),
            ('pseudo-label', label_to_rgb(tensors['pseudo_label'][j]), {}),
            ('mixed image', image_to_rgb(tensors['mixed_img'][j], img_norm_cfg), {}),
            ('mix mask (1 = source)', tensors['mix_mask'][j].squeeze().float().cpu().numpy(),
             dict(cmap='gray', vmin=0, vmax=1)),
            ('mixed label', label_to_rgb(tensors['mixed_label'][j]), {}),
            ('pixel weight', tensors['weight'][j].squeeze().float().cpu().numpy(),
             dict(cmap='viridis', vmin=0, vmax=1)),
        ]
        save_panels(osp.join(out_dir, f'{iteration:06d}_{j}.png'), panels)
