"""Wire a class-count loss into any mmseg segmentor config: every cross-entropy loss_decode
becomes a BLVLoss (``apply_blv``), a LogitAdjustedLoss or a ReweightedCELoss (``apply_loss``), or
any other loss (``replace_cross_entropy``: mmseg's LovaszLoss, the paper's Table 5 baseline)."""
from __future__ import annotations

import copy
import os
import warnings
from typing import Any

import numpy as np
from mmcv import Config

from .class_frequency import ClassCounts
from .long_tail_losses import LA_OPTIONS, RW_OPTIONS
from .loss import BLV_OPTIONS

# The class-count losses and the options each takes besides class_counts.
COUNT_LOSSES = {'BLVLoss': BLV_OPTIONS, 'LogitAdjustedLoss': LA_OPTIONS,
                'ReweightedCELoss': RW_OPTIONS}
_CE_TYPES = ('CrossEntropyLoss', *COUNT_LOSSES)


def _convert(loss_cfg: dict, where: str, loss_type: str, class_counts: Any,
             options: dict) -> dict:
    if loss_cfg.get('type') not in _CE_TYPES:
        warnings.warn(f'apply_loss: {where} is a {loss_cfg.get("type")}, not a cross entropy; '
                      'left unchanged', stacklevel=5)
        return loss_cfg
    if loss_cfg.get('use_sigmoid') or loss_cfg.get('use_mask'):
        raise ValueError(f'apply_loss: {where} is a sigmoid/mask cross entropy; {loss_type} '
                         'works on softmax logits only')
    new = dict(type=loss_type, class_counts=class_counts)
    for key in ('loss_weight', 'class_weight', 'avg_non_ignore'):
        if key in loss_cfg:
            new[key] = loss_cfg[key]
    if loss_cfg.get('type') == loss_type:  # re-applying keeps earlier options unless overridden
        new.update({k: v for k, v in loss_cfg.items() if k not in ('type', 'class_counts')})
    new.update(options)
    return new


def _rewrite(node: Any, where: str, convert) -> int:
    """Recursively replace loss_decode entries below ``node``; returns how many."""
    n = 0
    if isinstance(node, dict):
        for key, value in node.items():
            path = f'{where}.{key}'
            if key == 'loss_decode':
                if isinstance(value, dict):
                    node[key] = convert(value, path)
                    n += 1
                elif isinstance(value, (list, tuple)):
                    node[key] = [convert(v, f'{path}[{i}]') for i, v in enumerate(value)]
                    n += len(value)
            else:
                n += _rewrite(value, path, convert)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            n += _rewrite(value, f'{where}[{i}]', convert)
    return n


def apply_loss(cfg: Config | dict, loss_type: str, class_counts: ClassCounts,
               **options: Any) -> Config | dict:
    """Return a copy of ``cfg`` whose decode-head losses are all ``loss_type(class_counts,
    **options)``, one of ``COUNT_LOSSES``.

    Works on a full config (its ``model``) or a model config, for plain ``EncoderDecoder``
    configs, auxiliary heads (a dict or a list) and nested heads such as HRDA's, whose inner
    single-scale head shares the outer ``loss_decode``. ``class_counts`` may be a path to a
    ``sample_class_stats.json``; it is read when the loss is built, so configs can be generated
    before the data exists. The cross entropy's ``loss_weight``, ``class_weight`` and
    ``avg_non_ignore`` carry over.
    """
    if loss_type not in COUNT_LOSSES:
        raise KeyError(f'apply_loss: {loss_type!r} is not a class-count loss; choose one of '
                       f'{sorted(COUNT_LOSSES)}')
    unknown = set(options) - COUNT_LOSSES[loss_type]
    if unknown:
        raise KeyError(f'apply_loss: unknown {loss_type} option(s) {sorted(unknown)}; '
                       f'valid options are {sorted(COUNT_LOSSES[loss_type])}')
    if isinstance(class_counts, os.PathLike):
        class_counts = os.fspath(class_counts)
    elif not isinstance(class_counts, str):
        class_counts = np.asarray(class_counts, dtype=np.float64).tolist()  # JSON-friendly

    def convert(loss_cfg: dict, path: str) -> dict:
        return _convert(loss_cfg, path, loss_type, class_counts, dict(options))

    return _rewrite_copy(cfg, convert)


def replace_cross_entropy(cfg: Config | dict, loss: dict) -> Config | dict:
    """Return a copy of ``cfg`` whose softmax cross-entropy decode-head losses are all ``loss``
    (a loss config, e.g. mmseg's ``LovaszLoss``), each keeping its cross entropy's
    ``loss_weight``; found as :func:`apply_loss` finds them."""
    def convert(loss_cfg: dict, path: str) -> dict:
        if loss_cfg.get('type') != 'CrossEntropyLoss' or loss_cfg.get('use_sigmoid') \
                or loss_cfg.get('use_mask'):
            raise ValueError(f'replace_cross_entropy: {path} is a {loss_cfg.get("type")}, not '
                             f'a softmax cross entropy; cannot make it a {loss.get("type")}')
        new = copy.deepcopy(loss)
        if 'loss_weight' in loss_cfg:
            new.setdefault('loss_weight', loss_cfg['loss_weight'])
        return new

    return _rewrite_copy(cfg, convert)


def _rewrite_copy(cfg: Config | dict, convert) -> Config | dict:
    """A copy of ``cfg`` with every ``loss_decode`` of its model passed through ``convert``."""
    out = copy.deepcopy(cfg)
    as_dict = out._cfg_dict.to_dict() if isinstance(out, Config) else out
    model, where = (as_dict['model'], 'model') if 'model' in as_dict else (as_dict, 'model')
    if _rewrite(model, where, convert) == 0:
        raise ValueError(f'the config has no loss_decode to replace (looked in {where} and '
                         'every head below it)')
    if isinstance(out, Config):
        # Keep the text and name, but never re-read the file: Config.fromstring's
        # temporary file is already gone.
        filename = out.filename if out.filename and os.path.exists(out.filename) else None
        return Config(as_dict, cfg_text=out.text or None, filename=filename)
    return out


def apply_blv(cfg: Config | dict, class_counts: ClassCounts, **blv_options: Any) -> Config | dict:
    """Return a copy of ``cfg`` whose decode-head losses are all ``BLVLoss(class_counts, **opts)``
    (see :func:`apply_loss`)."""
    unknown = set(blv_options) - BLV_OPTIONS
    if unknown:
        raise KeyError(f'apply_blv: unknown BLV option(s) {sorted(unknown)}; '
                       f'valid options are {sorted(BLV_OPTIONS)}')
    return apply_loss(cfg, 'BLVLoss', class_counts, **blv_options)
