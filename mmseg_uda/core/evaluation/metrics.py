"""mIoU summaries: all classes, plus the subsets of the run's protocol (``protocols.py``)."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .confusion import mean_iou


def _percent(x: float) -> float | None:
    """IoU in percent; None (JSON null) for a class that appears nowhere."""
    return None if math.isnan(x) else 100.0 * x


def summarize_iou(iou: torch.Tensor, class_names: Sequence[str],
                  subsets: Mapping[str, Sequence[int]] | None = None) -> dict[str, Any]:
    """``per_class_iou`` (name → IoU %), ``miou`` over all classes, plus one mIoU per subset."""
    if len(class_names) != iou.numel():
        raise ValueError(f'{len(class_names)} class names for {iou.numel()} IoU values')
    summary: dict[str, Any] = {
        'per_class_iou': {name: _percent(float(v)) for name, v in zip(class_names, iou)},
        'miou': _percent(mean_iou(iou)),
    }
    for key, classes in (subsets or {}).items():
        summary[key] = _percent(mean_iou(iou, classes))
    return summary


def format_iou_table(summary: Mapping[str, Any]) -> str:
    """A plain-text table: one line per class, then the mIoU lines."""
    width = max(len(n) for n in summary['per_class_iou'])

    def fmt(value: float | None) -> str:
        return '   nan' if value is None else f'{value:6.2f}'

    lines = [f'{"class":<{width}}    IoU']
    lines += [f'{name:<{width}} {fmt(v)}' for name, v in summary['per_class_iou'].items()]
    n = len(summary['per_class_iou'])
    lines.append(f'{"mIoU" + str(n):<{width}} {fmt(summary["miou"])}')
    for key in ('miou16', 'miou13'):
        if key in summary:
            lines.append(f'{"mIoU" + key[4:]:<{width}} {fmt(summary[key])}')
    return '\n'.join(lines)
