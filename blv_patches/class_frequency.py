"""Class pixel counts and the BLV class scale c_k / max_i c_i (paper Eq. 3)."""
from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from typing import Union

import numpy as np

ClassCounts = Union[Sequence[float], np.ndarray, str, os.PathLike]

# How c_k is computed. 'paper' is Eq. 3: c_k = log(sum_j q_j / q_k). 'released_v1' is the
# formula of the first released BLV commit, c_k = log(max_j q_j / q_k), which gives the most
# frequent class no variation at all (grantword8/BLV before its 'Fix blv_loss.py bug' commit;
# BLV#4).
SCALE_FORMULAS = ('paper', 'released_v1')
# The converters' per-image class statistics (tools/convert_datasets/*.py), read by BLV and by
# rare class sampling.
STATS_FILE = 'sample_class_stats.json'

# The class counts of every released BLV config (``cls_num_list``, grantword8/BLV e08cc6cb),
# labelled "Cityscapes" there: GTA5's pixel counts, entry for entry, except car, whose leading
# digit is dropped (259,269,812 for 1,259,269,812). Kept to reproduce the released configs;
# this project's runs read the data set's own statistics.
RELEASED_CONFIG_COUNTS = (16099193283, 4155428633, 8478285320, 925367586, 317481282, 531401266,
                          67288808, 40463971, 3810296251, 1074861777, 6784666433, 181828023,
                          15321782, 259269812, 564950248, 184638969, 32522117, 15799033, 2718199)
# The same with car's digit restored: GTA5's class pixel counts.
GTA5_PIXEL_COUNTS = RELEASED_CONFIG_COUNTS[:13] + (1259269812,) + RELEASED_CONFIG_COUNTS[14:]

_CONVERTER_HINT = {
    'gta': 'tools/convert_datasets/gta.py',
    'synthia': 'tools/convert_datasets/synthia.py',
    'cityscapes': 'tools/convert_datasets/cityscapes.py',
}


def _converter_for(path: str) -> str:
    low = path.lower()
    for key, tool in _CONVERTER_HINT.items():
        if key in low:
            return f'python {tool} {os.path.dirname(path) or "."}'
    return 'python tools/convert_datasets/{gta,synthia,cityscapes}.py DATA_ROOT'


def read_class_stats(path: str | os.PathLike, num_classes: int = 19) -> np.ndarray:
    """Sum the per-image pixel counts of a converter's ``sample_class_stats.json``.

    Accepts the list format (``[{"0": n, ..., "file": path}, ...]``) and the dict format of
    ``sample_class_stats_dict.json`` (``{file: {"0": n, ...}}``). Ignore-label keys (255) are
    skipped; any other id outside ``[0, num_classes)`` is an error.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'class statistics not found: {path}. It is written by the dataset converter; '
            f'run `{_converter_for(path)}` first.')
    try:
        with open(path) as f:
            stats = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f'{path} is not valid JSON ({e}); re-run the dataset converter '
                         f'with --overwrite: `{_converter_for(path)} --overwrite`.') from e
    per_image = stats.values() if isinstance(stats, dict) else stats
    counts = np.zeros(num_classes, dtype=np.float64)
    for entry in per_image:
        if not isinstance(entry, dict):
            raise ValueError(f'{path}: expected per-image dicts of {{trainId: pixel count}}, '
                             f'found {type(entry).__name__}')
        for key, n in entry.items():
            if key == 'file':
                continue
            cls = int(key)
            if cls == 255:
                continue
            if not 0 <= cls < num_classes:
                raise ValueError(f'{path}: class id {cls} is outside [0, {num_classes}); '
                                 f'pass num_classes= to match the label space')
            counts[cls] += n
    return counts


def load_class_counts(source: ClassCounts, num_classes: int | None = None) -> np.ndarray:
    """Class pixel counts from a sequence of C numbers or a ``sample_class_stats.json`` path.

    ``num_classes`` defaults to the sequence's length, or to 19 (the Cityscapes label space
    shared by GTA5, SYNTHIA and Cityscapes) for a stats file.
    """
    if isinstance(source, (str, os.PathLike)):
        counts = read_class_stats(source, num_classes or 19)
    else:
        counts = np.asarray(source, dtype=np.float64).reshape(-1)
        if num_classes is not None and counts.size != num_classes:
            raise ValueError(f'class_counts has {counts.size} entries, num_classes is '
                             f'{num_classes}')
    if counts.size == 0:
        raise ValueError('class_counts is empty')
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError(f'class_counts must be finite and non-negative, got {counts.tolist()}')
    if not np.any(counts > 0):
        raise ValueError('class_counts has no class with a positive pixel count')
    return counts


def class_scale(counts: np.ndarray, formula: str = 'paper') -> np.ndarray:
    """c_k / max_i c_i over the classes present (count > 0); absent classes get 0.

    A class with zero pixels would have c_k = inf. It is left out of the max and gets no
    variation, with a warning, so that e.g. SYNTHIA's terrain/truck/train stay finite.
    """
    if formula not in SCALE_FORMULAS:
        raise ValueError(f'unknown scale_formula {formula!r}; choose one of {SCALE_FORMULAS}')
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    if not present.all():
        warnings.warn(f'BLV: classes {np.flatnonzero(~present).tolist()} have zero pixels in '
                      'the class statistics; they get no logit variation', stacklevel=3)
    reference = counts.sum() if formula == 'paper' else counts.max()
    c = np.zeros_like(counts)
    c[present] = np.log(reference / counts[present])
    c_max = c.max()
    # All present classes equally frequent (or a single class): nothing to balance.
    return c / c_max if c_max > 0 else c
