"""Wire BLV into any mmseg segmentor config: every CE loss_decode becomes a BLVLoss."""
from __future__ import annotations

import copy
import os
import warnings
from typing import Any

import numpy as np
from mmcv import Config

from .class_frequency import ClassCounts
from .loss import BLV_OPTIONS

_CE_TYPES = ('CrossEntropyLoss', 'BLVLoss')


def _to_blv(loss_cfg: dict, where: str, class_counts: Any, options: dict) -> dict:
    if loss_cfg.get('type') not in _CE_TYPES:
        warnings.warn(f'apply_blv: {where} is a {loss_cfg.get("type")}, not a cross entropy; '
                      'left unchanged', stacklevel=4)
        return loss_cfg
    if loss_cfg.get('use_sigmoid') or loss_cfg.get('use_mask'):
        raise ValueError(f'apply_blv: {where} is a sigmoid/mask cross entropy; BLV perturbs '
                         'softmax logits only')
    blv = dict(type='BLVLoss', class_counts=class_counts)
    for key in ('loss_weight', 'class_weight', 'avg_non_ignore'):
        if key in loss_cfg:
            blv[key] = loss_cfg[key]
    if loss_cfg.get('type') == 'BLVLoss':  # re-applying keeps earlier options unless overridden
        blv.update({k: v for k, v in loss_cfg.items() if k not in ('type', 'class_counts')})
    blv.update(options)
    return blv


def _rewrite(node: Any, where: str, class_counts: Any, options: dict) -> int:
    """Recursively replace loss_decode entries below ``node``; returns how many."""
    n = 0
    if isinstance(node, dict):
        for key, value in node.items():
            path = f'{where}.{key}'
            if key == 'loss_decode':
                if isinstance(value, dict):
                    node[key] = _to_blv(value, path, class_counts, options)
                    n += 1
                elif isinstance(value, (list, tuple)):
                    node[key] = [_to_blv(v, f'{path}[{i}]', class_counts, options)
                                 for i, v in enumerate(value)]
                    n += len(value)
            else:
                n += _rewrite(value, path, class_counts, options)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            n += _rewrite(value, f'{where}[{i}]', class_counts, options)
    return n


def apply_blv(cfg: Config | dict, class_counts: ClassCounts, **blv_options: Any) -> Config | dict:
    """Return a copy of ``cfg`` whose decode-head losses are all ``BLVLoss(class_counts, **opts)``.

    Works on a full config (its ``model``) or a model config, for plain ``EncoderDecoder``
    configs, auxiliary heads (a dict or a list) and nested heads such as HRDA's, whose inner
    single-scale head shares the outer ``loss_decode``. ``class_counts`` may be a path to a
    ``sample_class_stats.json``; it is read when the loss is built, so configs can be generated
    before the data exists.
    """
    unknown = set(blv_options) - BLV_OPTIONS
    if unknown:
        raise KeyError(f'apply_blv: unknown BLV option(s) {sorted(unknown)}; '
                       f'valid options are {sorted(BLV_OPTIONS)}')
    if isinstance(class_counts, os.PathLike):
        class_counts = os.fspath(class_counts)
    elif not isinstance(class_counts, str):
        class_counts = np.asarray(class_counts, dtype=np.float64).tolist()  # JSON-friendly
    out = copy.deepcopy(cfg)
    as_dict = out._cfg_dict.to_dict() if isinstance(out, Config) else out
    model, where = (as_dict['model'], 'model') if 'model' in as_dict else (as_dict, 'model')
    if _rewrite(model, where, class_counts, dict(blv_options)) == 0:
        raise ValueError('apply_blv: the config has no loss_decode to replace (looked in '
                         f'{where} and every head below it)')
    if isinstance(out, Config):
        # Keep the text and name, but never re-read the file: Config.fromstring's
        # temporary file is already gone.
        filename = out.filename if out.filename and os.path.exists(out.filename) else None
        return Config(as_dict, cfg_text=out.text or None, filename=filename)
    return out
