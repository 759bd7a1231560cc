"""The UDA registry and the one function that builds whatever a config trains."""
from __future__ import annotations

from collections.abc import Mapping

import torch.nn as nn
from mmcv.utils import Registry
from mmseg.models.builder import build_segmentor

UDA = Registry('uda')
# What a UDA wrapper hands the pseudo-labels of each iteration (``uda.pseudo_label_observers``):
# modules with ``attach(student)`` and ``observe(pseudo_label, iteration)``.
PSEUDO_LABEL_OBSERVERS = Registry('pseudo_label_observer')


def build_train_model(cfg: Mapping) -> nn.Module:
    """The model a config trains: ``cfg.uda`` wrapped around ``cfg.model``, or the segmentor.

    Like DAFormer's ``build_train_model``: the UDA wrapper (DACS, SourceOnly) builds its student
    (and teacher, ImageNet model) from the segmentor config it is given. ``cfg.amp`` (mixed
    precision, off by default) goes to the UDA wrapper, which owns the backward passes.
    """
    amp = cfg.get('amp')
    if cfg.get('uda') is None:
        if amp and amp.get('enabled'):
            raise ValueError('amp.enabled needs a UDA wrapper, which runs the backward passes: '
                             "train plain segmentors with uda=dict(type='SourceOnly').")
        return build_segmentor(cfg['model'])
    uda_cfg = dict(cfg['uda'])
    uda_cfg['model'] = cfg['model']
    uda_cfg.setdefault('amp', amp)
    return UDA.build(uda_cfg)
