"""Load the student of a training checkpoint for evaluation."""
from __future__ import annotations

import copy
from typing import Any

import torch.nn as nn
from mmcv.runner import CheckpointLoader

_STUDENT_PREFIX = 'model.'


def without_blv(model_cfg: Any) -> Any:
    """A copy of a model config whose ``BLVLoss`` entries are plain cross entropy.

    Evaluation uses raw logits; a loss is never computed, so the test model needs neither
    BLV's class statistics file nor its perturbation.
    """
    if isinstance(model_cfg, dict):
        if model_cfg.get('type') == 'BLVLoss':
            return dict(type='CrossEntropyLoss', use_sigmoid=False,
                        loss_weight=model_cfg.get('loss_weight', 1.0))
        return type(model_cfg)({k: without_blv(v) for k, v in model_cfg.items()})
    if isinstance(model_cfg, (list, tuple)):
        return type(model_cfg)(without_blv(v) for v in model_cfg)
    return copy.deepcopy(model_cfg)


def student_state_dict(state_dict: dict) -> dict:
    """The student's weights from a UDA checkpoint (keys ``model.*``), or the state as it is
    for a plain segmentor checkpoint; DDP's ``module.`` prefix is dropped."""
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state_dict.items()}
    if any(k.startswith(_STUDENT_PREFIX) for k in state):
        state = {k[len(_STUDENT_PREFIX):]: v for k, v in state.items()
                 if k.startswith(_STUDENT_PREFIX)}
    return state


def load_student_checkpoint(model: nn.Module, path: str) -> dict:
    """Load the student's weights from ``path`` into the segmentor ``model``; returns the
    checkpoint's meta. Loss buffers (BLV's class statistics) are not needed for inference and
    are skipped; every other missing or unexpected key is an error."""
    checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    state = student_state_dict(checkpoint.get('state_dict', checkpoint))
    own = model.state_dict()
    state = {k: v for k, v in state.items() if k in own or '.loss_decode.' not in k}
    missing = [k for k in own if k not in state and '.loss_decode.' not in k]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ValueError(f'{path} does not match the config\'s model: missing keys '
                         f'{missing[:5]}{"…" if len(missing) > 5 else ""}, unexpected keys '
                         f'{unexpected[:5]}{"…" if len(unexpected) > 5 else ""}. Pass the '
                         'config the checkpoint was trained with (its work_dir has a copy).')
    model.load_state_dict(state, strict=False)
    return checkpoint.get('meta', {}) if isinstance(checkpoint, dict) else {}
