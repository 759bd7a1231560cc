"""Read training checkpoints (this project's, DAFormer's, HRDA's, MIC's) and load them."""
from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn
from mmcv.runner import CheckpointLoader
from mmcv.utils import print_log

from blv_patches import COUNT_LOSSES

from ..models.daformer_checkpoints import from_daformer, is_daformer_layout

_STUDENT_PREFIX = 'model.'


def with_cross_entropy(model_cfg: Any) -> Any:
    """A copy of a model config whose class-count losses (BLV, logit adjustment, reweighting:
    ``blv_patches.COUNT_LOSSES``) are plain cross entropy.

    Evaluation uses raw logits; a loss is never computed, so the test model needs neither the
    class statistics file nor the training-time change of the logits.
    """
    if isinstance(model_cfg, dict):
        if model_cfg.get('type') in COUNT_LOSSES:
            return dict(type='CrossEntropyLoss', use_sigmoid=False,
                        loss_weight=model_cfg.get('loss_weight', 1.0))
        return type(model_cfg)({k: with_cross_entropy(v) for k, v in model_cfg.items()})
    if isinstance(model_cfg, (list, tuple)):
        return type(model_cfg)(with_cross_entropy(v) for v in model_cfg)
    return copy.deepcopy(model_cfg)


def build_test_segmentor(model_cfg: Any) -> nn.Module:
    """The segmentor of a training config for evaluation: plain cross entropy instead of any
    class-count loss, no train_cfg, and no pretrained file (a checkpoint holds every weight)."""
    from mmseg.models import build_segmentor

    model_cfg = with_cross_entropy(model_cfg)
    model_cfg.train_cfg = None
    model_cfg.pretrained = None
    return build_segmentor(model_cfg)


def without_ddp_prefix(state_dict: dict) -> dict:
    """The state with DDP's ``module.`` prefix dropped from its keys."""
    return {k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in state_dict.items()}


def student_state_dict(state_dict: dict) -> dict:
    """The student's weights from a UDA checkpoint (keys ``model.*``), or the state as it is
    for a plain segmentor checkpoint; DDP's ``module.`` prefix is dropped."""
    state = without_ddp_prefix(state_dict)
    if any(k.startswith(_STUDENT_PREFIX) for k in state):
        state = {k[len(_STUDENT_PREFIX):]: v for k, v in state.items()
                 if k.startswith(_STUDENT_PREFIX)}
    return state


def read_training_checkpoint(path: str) -> dict:
    """A checkpoint file as a dict, or an error that names the file and what is wrong.

    The safe loader first; a file whose metadata holds other pickled objects (older DAFormer
    or HRDA checkpoints) is loaded fully with a warning, as ``load_pretrained`` does.
    """
    import os

    from ..models.pretrained import _is_remote, _torch_load
    if _is_remote(path):
        return CheckpointLoader.load_checkpoint(path, map_location='cpu')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    try:
        checkpoint = _torch_load(path)
    except ValueError as error:  # torch's zip/pickle errors say nothing useful on their own
        raise ValueError(f'cannot read the checkpoint {path}: it is truncated, corrupt or not '
                         f'a PyTorch file ({str(error).splitlines()[0][:300]})') from None
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{path} holds a {type(checkpoint).__name__}, not a checkpoint dict')
    return checkpoint


def converted_state_dict(checkpoint: dict, path: str, logger: str | None = 'root') -> dict:
    """The checkpoint's tensors under this project's names: DAFormer/HRDA/MIC names (SegFormer
    MiT, linear head embeddings) are converted, with a summary in the log."""
    state = checkpoint.get('state_dict', checkpoint)
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if is_daformer_layout(state):
        state, summary = from_daformer(state)
        print_log(f'{path}: converted from DAFormer/HRDA names. {summary.summary()}',
                  logger=logger)
    return state


def check_state_fits(own: dict, state: dict, path: str, optional=lambda key: False) -> None:
    """Raise with the file, the mismatch and a hint when ``state`` does not fit ``own``."""
    missing = [k for k in own if k not in state and not optional(k)]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    if not (missing or unexpected or wrong):
        return
    hints = []
    seg = [k for k in wrong if k.endswith('conv_seg.weight')]
    if seg:
        hints.append(f'the checkpoint has {state[seg[0]].shape[0]} classes and the config '
                     f'{own[seg[0]].shape[0]} (decode_head.num_classes)')
    if missing and unexpected and len(unexpected) > len(state) // 2:
        hints.append('most names differ: a checkpoint of another architecture or backbone')
    shapes = [f'{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
              for k in wrong[:3]]
    raise ValueError(
        f'{path} does not match the config\'s model'
        + (f' ({"; ".join(hints)})' if hints else '')
        + f': {len(missing)} missing keys {missing[:5]}{"…" if len(missing) > 5 else ""}, '
        f'{len(unexpected)} unexpected keys {unexpected[:5]}{"…" if len(unexpected) > 5 else ""}, '
        f'{len(wrong)} of another shape {shapes}. Pass the config the checkpoint was trained '
        'with (its work_dir has a copy).')


def is_loss_buffer(key: str) -> bool:
    # Loss buffers (the class statistics of BLV, LA, RW) are not needed for inference.
    return '.loss_decode.' in key


def load_student_checkpoint(model: nn.Module, path: str) -> dict:
    """Load the student's weights from ``path`` into the segmentor ``model``; returns the
    checkpoint's meta. Checkpoints of DAFormer/HRDA/MIC are converted first. Loss buffers are
    skipped; every other missing, unexpected or differently shaped tensor is an error that
    names the file."""
    checkpoint = read_training_checkpoint(path)
    state = student_state_dict(converted_state_dict(checkpoint, path))
    own = model.state_dict()
    state = {k: v for k, v in state.items() if k in own or not is_loss_buffer(k)}
    check_state_fits(own, state, path, optional=is_loss_buffer)
    model.load_state_dict(state, strict=False)
    return checkpoint.get('meta', {}) or {}


def load_initial_weights(module: nn.Module, path: str) -> None:
    """``load_from``: the weights of a checkpoint (this project's, DAFormer's, HRDA's or
    MIC's), not its optimizer or iteration. A UDA wrapper takes a whole DACS checkpoint
    (student, teacher, ImageNet model) or a segmentor's, which becomes the student (the
    teacher starts as its copy at iteration 0; the ImageNet model keeps its pretrained
    weights); a plain segmentor takes a segmentor's or a UDA run's student. Anything else
    that does not fit is an error that names the file.
    """
    from ..models.uda import UDAWrapper

    checkpoint = read_training_checkpoint(path)
    state = without_ddp_prefix(converted_state_dict(checkpoint, path))
    state.pop('_extra_state', None)  # DACS's iteration counter: a fine-tune starts at 0
    has_student = any(k.startswith(_STUDENT_PREFIX) for k in state)
    if isinstance(module, UDAWrapper) and not has_student:
        state = {_STUDENT_PREFIX + k: v for k, v in state.items()}
    elif not isinstance(module, UDAWrapper) and has_student:
        # A UDA run's checkpoint into a plain segmentor (a fine-tune): its student.
        state = {k[len(_STUDENT_PREFIX):]: v for k, v in state.items()
                 if k.startswith(_STUDENT_PREFIX)}
    own = module.state_dict()
    given = {k.split('.', 1)[0] for k in state}
    state = {k: v for k, v in state.items() if k in own or not is_loss_buffer(k)}

    def optional(key: str) -> bool:  # loss buffers, and the parts the file does not hold
        return is_loss_buffer(key) or key.split('.', 1)[0] not in given

    check_state_fits(own, state, path, optional)
    module.load_state_dict(state, strict=False)
    print_log(f'load_from {path}: {len(state)} tensors loaded ({", ".join(sorted(given))})',
              logger='root')
