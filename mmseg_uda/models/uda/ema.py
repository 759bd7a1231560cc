"""The mean teacher: EMA of the student's parameters, and its dropout switched off."""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.modules.dropout import _DropoutNd


def ema_alpha(local_iter: int, alpha_max: float) -> float:
    """DACS's ramp: α = min(1 − 1/(i+1), α_max), so early teachers follow the student closely."""
    return min(1.0 - 1.0 / (local_iter + 1), alpha_max)


def _paired_parameters(teacher: nn.Module, student: nn.Module):
    t_params, s_params = list(teacher.parameters()), list(student.parameters())
    if len(t_params) != len(s_params):
        raise ValueError(f'teacher has {len(t_params)} parameters, student {len(s_params)}: '
                         'they must be built from the same model config')
    return zip(t_params, s_params)


@torch.no_grad()
def copy_parameters(teacher: nn.Module, student: nn.Module) -> None:
    """teacher ← student, parameters only (the teacher's BN statistics stay its own)."""
    for t, s in _paired_parameters(teacher, student):
        t.copy_(s)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, alpha: float) -> None:
    """teacher ← α·teacher + (1 − α)·student, parameters only."""
    for t, s in _paired_parameters(teacher, student):
        t.lerp_(s, 1.0 - alpha)


def _is_dropout_like(module: nn.Module) -> bool:
    # nn.Dropout*, the dropout inside nn.MultiheadAttention, and mmcv's/timm's DropPath,
    # whose only train-mode behaviour is randomly dropping activations.
    return (isinstance(module, (_DropoutNd, nn.MultiheadAttention))
            or type(module).__name__ == 'DropPath')


def disable_dropout(model: nn.Module) -> None:
    """Switch dropout and drop-path to eval while the rest (BN) keeps its mode."""
    for module in model.modules():
        if _is_dropout_like(module):
            module.training = False
