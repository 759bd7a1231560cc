"""ImageNet-pretrained backbone weights: read, convert to mmseg's key names, load, report.

DAFormer/HRDA users have the original SegFormer ``mit_b5.pth`` (keys ``patch_embed1.proj.*``,
``block1.0.attn.q.*``, …) and a ResNet-101-V1c from open-mmlab, timm (``resnet101c``) or a
torchvision ResNet-101. mmseg 0.30's ``MixVisionTransformer`` and ``ResNetV1c`` name their
parameters differently and mmcv's non-strict loading would silently skip every key, so this
module converts the file first and reports what did and did not land.
"""
from __future__ import annotations

import os
import pickle
import re
import warnings
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
import torch.nn as nn
from mmcv.utils import print_log
from mmseg.models.backbones import MixVisionTransformer, ResNet

StateDict = dict[str, torch.Tensor]
CONVERTER_HINT = 'python tools/convert_pretrained.py {arch} SRC DST'


@dataclass
class LoadReport:
    """What ``load_pretrained`` did: the source layout and the keys that did not match."""

    path: str
    source_format: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f'loaded {len(self.loaded)} tensors from {self.path} ({self.source_format})']
        if self.missing:
            lines.append(f'missing in the file ({len(self.missing)}, left at their '
                         f'initialisation): {", ".join(self.missing)}')
        if self.unexpected:
            lines.append(f'unexpected in the file ({len(self.unexpected)}, ignored): '
                         f'{", ".join(self.unexpected)}')
        return '\n'.join(lines)


# --- reading ------------------------------------------------------------------------------

def _is_remote(path: str) -> bool:
    return re.match(r'^(https?|open-mmlab|torchvision|mmcls)://', path) is not None


def _load_safetensors(path: str) -> StateDict:
    """timm's Hugging Face weights (e.g. ``timm/resnet101c.gluon_in1k``) come as safetensors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        return load_file(path, device='cpu')
    except SafetensorError as err:
        raise ValueError(f'{path!r} is not a safetensors checkpoint: {err}') from err


def _torch_load(path: str):
    """``torch.load`` with the safe loader first; full unpickling only for old metadata."""
    not_a_checkpoint = (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError,
                        AttributeError, ImportError)
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except not_a_checkpoint as safe_err:
        try:
            ckpt = torch.load(path, map_location='cpu', weights_only=False)
        except not_a_checkpoint as err:
            raise ValueError(f'{path!r} is not a PyTorch checkpoint: {err}') from err
        # Some older checkpoints pickle non-tensor metadata; only their tensors are used.
        warnings.warn(f'{path} holds objects the safe loader rejects '
                      f'({str(safe_err).splitlines()[0]}); it was loaded with full '
                      'unpickling: only do this with files from a trusted source', stacklevel=3)
        return ckpt


def read_checkpoint(path: str) -> StateDict:
    """The tensors of a checkpoint file (or mmcv URL), unwrapped from ``state_dict``/``model``."""
    if _is_remote(path):
        from mmcv.runner import CheckpointLoader  # downloads; needs internet
        ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    else:
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f'pretrained checkpoint {path!r} not found. Download it as described in the '
                "README ('Pretrained weights') or set model.pretrained=None for random init")
        ckpt = _load_safetensors(path) if path.endswith('.safetensors') else _torch_load(path)
    for wrapper in ('state_dict', 'model'):
        if isinstance(ckpt, Mapping) and isinstance(ckpt.get(wrapper), Mapping):
            ckpt = ckpt[wrapper]
    if not isinstance(ckpt, Mapping) or not any(torch.is_tensor(v) for v in ckpt.values()):
        raise ValueError(f'{path!r} is not a checkpoint of tensors (got {type(ckpt).__name__})')
    state = {k: v for k, v in ckpt.items() if torch.is_tensor(v)}
    return _strip_prefixes(state)


def _strip_prefixes(state: StateDict) -> StateDict:
    """Drop DDP's ``module.`` prefix; of a whole segmentor's checkpoint keep the backbone."""
    if all(k.startswith('module.') for k in state):
        state = {k[len('module.'):]: v for k, v in state.items()}
    if any(k.startswith('backbone.') for k in state):
        state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    return state


# --- MiT: SegFormer → mmseg -----------------------------------------------------------------

# SegFormer name <-> mmseg 0.30 name of every MiT tensor but q/kv (merged into in_proj):
# {stage} counts from 1 in SegFormer, {stage0} from 0 in mmseg; the MLP's Linear layers are
# 1x1 convs in mmseg. Both directions are derived from this one table.
MIT_NAMES = (
    ('patch_embed{stage}.proj.{p}', 'layers.{stage0}.0.projection.{p}'),
    ('patch_embed{stage}.norm.{p}', 'layers.{stage0}.0.norm.{p}'),
    ('block{stage}.{block}.{norm12}.{p}', 'layers.{stage0}.1.{block}.{norm12}.{p}'),
    ('block{stage}.{block}.attn.proj.{p}', 'layers.{stage0}.1.{block}.attn.attn.out_proj.{p}'),
    ('block{stage}.{block}.attn.{reduction}.{p}', 'layers.{stage0}.1.{block}.attn.{reduction}.{p}'),
    ('block{stage}.{block}.mlp.fc1.{p}', 'layers.{stage0}.1.{block}.ffn.layers.0.{p}'),
    ('block{stage}.{block}.mlp.dwconv.dwconv.{p}', 'layers.{stage0}.1.{block}.ffn.layers.1.{p}'),
    ('block{stage}.{block}.mlp.fc2.{p}', 'layers.{stage0}.1.{block}.ffn.layers.4.{p}'),
    ('norm{stage}.{p}', 'layers.{stage0}.2.{p}'),
)
_FIELDS = {'stage': r'\d+', 'stage0': r'\d+', 'block': r'\d+', 'norm12': 'norm1|norm2',
           'reduction': 'sr|norm', 'p': '.+'}


def _name_pattern(template: str) -> re.Pattern:
    parts = re.split(r'\{(\w+)\}', template)
    regex = ''.join(re.escape(part) if i % 2 == 0 else f'(?P<{part}>{_FIELDS[part]})'
                    for i, part in enumerate(parts))
    return re.compile(f'^{regex}$')


_MIT_RENAMES = {
    'to_mmseg': [(_name_pattern(theirs), ours) for theirs, ours in MIT_NAMES],
    'to_segformer': [(_name_pattern(ours), theirs) for theirs, ours in MIT_NAMES],
}


def rename_mit(key: str, direction: str) -> str | None:
    """``key`` under the other naming ('to_mmseg' or 'to_segformer'), or None if no rule
    matches."""
    for pattern, template in _MIT_RENAMES[direction]:
        match = pattern.match(key)
        if match:
            fields = match.groupdict()
            if 'stage' in fields:
                fields['stage0'] = str(int(fields['stage']) - 1)
            else:
                fields['stage'] = str(int(fields['stage0']) + 1)
            return template.format(**fields)
    return None


def is_mit_mlp_weight(mmseg_key: str) -> bool:
    """The MLP's Linear weights, which are 1x1 convs under mmseg's names."""
    return re.search(r'\.ffn\.layers\.[04]\.weight$', mmseg_key) is not None


_MIT_QKV = re.compile(r'^block(\d+)\.(\d+)\.attn\.(q|kv)\.(weight|bias)$')


def _is_segformer_mit(state: StateDict) -> bool:
    return any(k.startswith('patch_embed1.') for k in state)


def convert_mit(state: StateDict) -> StateDict:
    """SegFormer's MiT keys → mmseg 0.30 ``MixVisionTransformer`` keys (mmseg keys pass through).

    q and kv become one ``in_proj`` of ``nn.MultiheadAttention``; the MLP's linear layers
    become 1×1 convs. Keys without a rule (the ImageNet classifier ``head.*``) are kept
    unchanged, so the loader reports them as unexpected.
    """
    if not _is_segformer_mit(state):
        return dict(state)
    out: StateDict = {}
    for key, value in state.items():
        qkv = _MIT_QKV.match(key)
        if qkv:
            stage, block, part, kind = qkv.groups()
            if part == 'q':
                kv = state.get(f'block{stage}.{block}.attn.kv.{kind}')
                if kv is None:
                    raise ValueError(f'SegFormer checkpoint has {key} but no matching attn.kv')
                out[f'layers.{int(stage) - 1}.1.{block}.attn.attn.in_proj_{kind}'] = \
                    torch.cat([value, kv], dim=0)
            continue
        new_key = rename_mit(key, 'to_mmseg')
        if new_key is None:
            out[key] = value
            continue
        if is_mit_mlp_weight(new_key):
            value = value.reshape(*value.shape, 1, 1)  # Linear → 1×1 conv
        out[new_key] = value
    return out


# --- ResNet: timm / torchvision → mmseg ResNetV1c ------------------------------------------

_TIMM_DEEP_STEM = {'conv1.0.': 'stem.0.', 'conv1.1.': 'stem.1.', 'conv1.3.': 'stem.3.',
                   'conv1.4.': 'stem.4.', 'conv1.6.': 'stem.6.', 'bn1.': 'stem.7.'}


def resnet_source_format(state: StateDict) -> str:
    if any(k.startswith('stem.') for k in state):
        return 'open-mmlab'
    if 'conv1.0.weight' in state:
        return 'timm (deep stem)'
    if 'conv1.weight' in state:
        return 'torchvision'
    return 'unknown'


def convert_resnet(state: StateDict) -> StateDict:
    """timm ``resnet*c`` / torchvision / open-mmlab ResNet keys → mmseg ``ResNetV1c`` keys.

    The residual stages share their names in all three. timm's deep stem ``conv1.{0,1,3,4,6}``
    and ``bn1`` map to mmseg's ``stem.{0,1,3,4,6,7}``. torchvision's single 7×7 stem has no
    counterpart in the V1c deep stem: its keys stay as they are and are reported unexpected,
    leaving the stem randomly initialised.
    """
    if resnet_source_format(state) != 'timm (deep stem)':
        return dict(state)
    out: StateDict = {}
    for key, value in state.items():
        for old, new in _TIMM_DEEP_STEM.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


@dataclass(frozen=True)
class _Arch:
    name: str
    module_type: type
    convert: Callable[[StateDict], StateDict]
    source_format: Callable[[StateDict], str]
    example_keys: str


ARCHITECTURES = (
    _Arch('mit', MixVisionTransformer, convert_mit,
          lambda s: 'SegFormer' if _is_segformer_mit(s) else 'mmseg',
          "SegFormer 'patch_embed1.proj.weight' or mmseg 'layers.0.0.projection.weight'"),
    _Arch('resnet', ResNet, convert_resnet, resnet_source_format,
          "'layer1.0.conv1.weight' (torchvision, timm, open-mmlab)"),
)


def _architecture(backbone: nn.Module) -> _Arch:
    for arch in ARCHITECTURES:
        if isinstance(backbone, arch.module_type):
            return arch
    raise TypeError(f'load_pretrained: no converter for {type(backbone).__name__}; supported '
                    f'backbones: {[a.module_type.__name__ for a in ARCHITECTURES]}')


def load_pretrained(model: nn.Module, path: str, strict: bool = False,
                    logger=None) -> LoadReport:
    """Load a pretrained backbone checkpoint into ``model`` (a segmentor or its backbone).

    The file is converted to mmseg's key names, every tensor with a matching key and shape
    is copied, and missing/unexpected keys are reported (and raise with ``strict``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a checkpoint, shares no key with the backbone (a checkpoint
            of another architecture) or has tensors of other shapes (another model size).
    """
    backbone = getattr(model, 'backbone', model)
    arch = _architecture(backbone)
    state = read_checkpoint(path)
    source_format = arch.source_format(state)
    converted = arch.convert(state)
    target = backbone.state_dict()
    loaded = [k for k in converted if k in target]
    if not loaded:
        raise ValueError(
            f'{path!r} is not a checkpoint of {type(backbone).__name__}: none of its '
            f'{len(converted)} keys (e.g. {next(iter(converted), None)!r}) matches the backbone. '
            f'Expected keys like {arch.example_keys}; convert other layouts with '
            f'`{CONVERTER_HINT.format(arch=arch.name)}`')
    wrong_shape = [f'{k}: file {tuple(converted[k].shape)} vs model {tuple(target[k].shape)}'
                   for k in loaded if converted[k].shape != target[k].shape]
    if wrong_shape:
        raise ValueError(f'{path!r} does not fit this {type(backbone).__name__} (another model '
                         f'size?): {len(wrong_shape)} tensors differ in shape, e.g. '
                         + '; '.join(wrong_shape[:3]))
    report = LoadReport(
        path=path, source_format=source_format, loaded=loaded,
        # BN's step counter is bookkeeping, not a weight: absent in many checkpoints.
        missing=[k for k in target if k not in converted and not k.endswith('num_batches_tracked')],
        unexpected=[k for k in converted if k not in target])
    backbone.load_state_dict({k: converted[k] for k in loaded}, strict=False)
    print_log(report.summary(), logger=logger)
    if strict and (report.missing or report.unexpected):
        raise ValueError(f'load_pretrained(strict=True): {report.summary()}')
    return report
