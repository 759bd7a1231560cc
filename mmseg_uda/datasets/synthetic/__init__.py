"""Procedural street scenes in three domains, written like GTA5, SYNTHIA and Cityscapes.

``generate(out_dir, seed, scale)`` is what ``tools/make_synthetic_data.py`` runs. Every image is
drawn from its own generator seeded by (seed, domain, split, index), so the output does not
depend on the number of worker processes.
"""
from __future__ import annotations

import os.path as osp
import sys
from dataclasses import dataclass
from functools import partial

import numpy as np

from . import io
from .render import render
from .scene import sample_scene
from .style import STYLES

# Bumped whenever the same seed and scale give other images or labels; ``generate`` writes it
# to VERSION_FILE, so that a data set written by an older generator is recognised.
GENERATOR_VERSION = 3   # 2: magnified tail objects and liveries; 3: larger signs and
#   two-wheelers, solid bicycle wheels, walls of blocks (2026-12-01)
VERSION_FILE = 'GENERATOR_VERSION'

_DOMAIN_IDS = {'gta': 0, 'synthia': 1, 'cityscapes': 2}
_SPLIT_IDS = {'train': 0, 'val': 1}


@dataclass(frozen=True)
class ScaleSpec:
    """Image sizes (width, height) and image counts of one generated data set."""
    gta_size: tuple[int, int]
    synthia_size: tuple[int, int]
    cityscapes_size: tuple[int, int]
    n_gta: int
    n_synthia: int
    n_cityscapes_train: int
    n_cityscapes_val: int

    def tasks(self) -> list[tuple[str, str, int, int, tuple[int, int]]]:
        """(domain, split, index, count, size) for every image."""
        out = []
        for domain, split, n, size in (
                ('gta', 'train', self.n_gta, self.gta_size),
                ('synthia', 'train', self.n_synthia, self.synthia_size),
                ('cityscapes', 'train', self.n_cityscapes_train, self.cityscapes_size),
                ('cityscapes', 'val', self.n_cityscapes_val, self.cityscapes_size)):
            out += [(domain, split, i, n, size) for i in range(n)]
        return out


# Aspect ratios of the real sets: GTA5 16:9, SYNTHIA 1280x760, Cityscapes 2:1.
SCALES = {
    'small': ScaleSpec((256, 144), (256, 152), (256, 128), 500, 500, 500, 150),
    'medium': ScaleSpec((512, 288), (512, 304), (512, 256), 1500, 1500, 1500, 300),
    # Experiment 3's Cityscapes-like set, no source domain: the 'small' set's first 64 training
    # pictures and its 150 validation images (same seeds, same sizes). 1/8 of 500 images (63)
    # teaches the tiny model what all 500 do, so self-training would have nothing to add;
    # 1/8 of 64 (8) leaves it room (docs/experiments.md).
    'semi': ScaleSpec((256, 144), (256, 152), (256, 128), 0, 0, 64, 150),
    # The real sets' image sizes, few images: what tools/benchmark_data.py decodes.
    'full': ScaleSpec((1914, 1052), (1280, 760), (2048, 1024), 60, 60, 60, 10),
    # About a second to generate, large enough to hold most classes: tests and self-tests.
    'tiny': ScaleSpec((128, 72), (128, 76), (128, 64), 16, 16, 12, 4),
}
# The 'tiny' set's linear size vs the real sets' would be 1/16, but with so few images the
# rarest class never reaches the correspondingly scaled RCS min_pixels (12); this smaller
# factor keeps the threshold at 1 pixel (experiments.adapt_to_data_scale).
TINY_DATA_SCALE = 0.02


def render_sample(domain: str, split: str, index: int, size: tuple[int, int], seed: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image, internal label codes and instance ids of one sample."""
    rng = np.random.default_rng([seed, _DOMAIN_IDS[domain], _SPLIT_IDS[split], index])
    scene = sample_scene(rng, *size)
    return render(scene, STYLES[domain], *size)


def _make_one(task, out_dir: str, seed: int) -> np.ndarray:
    domain, split, index, count, size = task
    img, code, inst = render_sample(domain, split, index, size, seed)
    root = osp.join(out_dir, domain)
    if domain == 'gta':
        io.write_gta(root, index, img, code, inst)
    elif domain == 'synthia':
        io.write_synthia(root, index, img, code, inst)
    else:
        io.write_cityscapes(root, split, index, count, img, code, inst)
    return np.bincount(io.code_to_trainid(code, domain).ravel(), minlength=256)


def generate(out_dir: str, seed: int = 0, spec: ScaleSpec = SCALES['small'],
             nproc: int = 1) -> dict[tuple[str, str], np.ndarray]:
    """Write the three domains under ``out_dir``; return the train-id pixel histogram
    (256 bins, 255 = ignore) of each (domain, split)."""
    import mmcv

    tasks = spec.tasks()
    func = partial(_make_one, out_dir=out_dir, seed=seed)
    if nproc > 1:
        counts = mmcv.track_parallel_progress(func, tasks, nproc, chunksize=16, file=sys.stdout)
    else:
        counts = mmcv.track_progress(func, tasks, file=sys.stdout)
    hist: dict[tuple[str, str], np.ndarray] = {}
    for (domain, split, *_), c in zip(tasks, counts):
        hist[(domain, split)] = hist.get((domain, split), 0) + c
    with open(osp.join(out_dir, VERSION_FILE), 'w') as f:
        f.write(f'{GENERATOR_VERSION}\n')
    return hist
