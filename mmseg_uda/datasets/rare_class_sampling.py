"""Rare class sampling (DAFormer): draw a class c with P(c) = softmax((1 - f_c) / T), then a source
image that holds more than ``min_pixels`` pixels of c. ``class_temp=None`` draws c uniformly
(class-aware sampling; with ``min_crop_ratio=0`` it is experiment 41's "RS" baseline).

f_c is class c's share of the source pixels, from the converters' ``sample_class_stats.json``.
Only classes with pixels in the source take part (16 for SYNTHIA).
"""
from __future__ import annotations

import json
import os.path as osp

import numpy as np

from blv_patches.class_frequency import STATS_FILE, read_class_stats

SAMPLES_FILE = 'samples_with_class.json'


def _load_json(data_root: str, name: str):
    path = osp.join(data_root, name)
    if not osp.exists(path):
        raise FileNotFoundError(
            f'{path} not found: rare class sampling reads the statistics that the converter '
            f'writes. Run python tools/convert_datasets/<gta|synthia>.py {data_root}')
    with open(path) as f:
        return json.load(f)


def class_probabilities(counts: dict[int, int], temperature: float | None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Classes (sorted train ids) and their sampling probabilities softmax((1 - f_c) / T), or
    uniform for ``temperature=None``."""
    classes = np.array(sorted(counts))
    if temperature is None:
        return classes, np.full(len(classes), 1.0 / len(classes))
    if temperature <= 0:
        raise ValueError(f'rare_class_sampling.class_temp must be > 0 (or None: uniform), got '
                         f'{temperature}')
    n = np.array([counts[c] for c in classes], np.float64)
    logits = (1 - n / n.sum()) / temperature
    p = np.exp(logits - logits.max())
    return classes, p / p.sum()


class RareClassSampler:
    """Which source image to load next, and whether a crop of it holds enough of the class.

    Uses numpy's global RNG, like the pipeline's random crops: mmseg's ``set_random_seed`` and
    its data-loader ``worker_init_fn`` seed it, so a training run's draws follow from its seed.
    """

    def __init__(self, data_root: str, seg_map_names: list[str], min_pixels: int,
                 class_temp: float | None, min_crop_ratio: float):
        self.min_pixels, self.min_crop_ratio = min_pixels, min_crop_ratio
        # The one reader of the statistics (with its checks), shared with BLV.
        per_class = read_class_stats(osp.join(data_root, STATS_FILE))
        counts = {c: int(n) for c, n in enumerate(per_class) if n > 0}
        self.classes, self.probs = class_probabilities(counts, class_temp)
        index_of = {osp.basename(name): i for i, name in enumerate(seg_map_names)}
        samples = _load_json(data_root, SAMPLES_FILE)
        # For each class, the dataset indices of the images with more than min_pixels of it.
        self.indices: dict[int, list[int]] = {}
        for c in self.classes:
            files = [f for f, n in samples.get(str(c), []) if n > min_pixels]
            self.indices[int(c)] = [index_of[osp.basename(f)] for f in files
                                    if osp.basename(f) in index_of]
        empty = [int(c) for c in self.classes if not self.indices[int(c)]]
        if empty:
            raise ValueError(
                f'rare class sampling: classes {empty} have no image in {data_root} with more '
                f'than min_pixels={min_pixels} pixels of them. Lower '
                'rare_class_sampling.min_pixels (docs/data.md lists values for the synthetic '
                'data), or check that the statistics belong to this dataset.')

    @property
    def crop_threshold(self) -> float:
        return self.min_pixels * self.min_crop_ratio

    def sample_class(self) -> int:
        return int(np.random.choice(self.classes, p=self.probs))

    def sample_index(self, cls: int) -> int:
        candidates = self.indices[cls]
        return candidates[np.random.randint(len(candidates))]

    def crop_has_class(self, gt, cls: int) -> bool:
        """Whether a cropped label (tensor or array) holds more than the threshold of ``cls``;
        always true with ``min_crop_ratio=0``, which turns re-cropping off (as in DAFormer)."""
        return self.min_crop_ratio <= 0 or int((gt == cls).sum()) > self.crop_threshold
