"""DAFormer / HRDA / MIC checkpoints ↔ this project's parameter names, both ways.

Their code is mmseg 0.16 with SegFormer's MiT (``backbone.patch_embed*``, ``block*.attn.q`` and
``.kv``, ``mlp.fc*`` linear layers) and a DAFormer head whose embeddings are linear layers
(``embed_layers.i.proj``, [256, C]) and whose ASPP branches are ``fuse_layer.aspp_modules``.
mmseg 0.30's ``MixVisionTransformer`` merges q and kv into one ``in_proj``, uses 1×1 convs for
the MLP, and this project's DAFormer head uses 1×1 convs (``embed_layers.i.conv``) and
``fuse_layer.branches``. The mapping is one-to-one (same parameter count): a whole DACS
checkpoint (``model.``, ``ema_model.``, ``imnet_model.``), a bare segmentor or a SegFormer
backbone converts in either direction, and a round trip gives identical tensors.
DeepLabV2/ResNet names already agree.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import torch

from .pretrained import StateDict, convert_mit

_PART = re.compile(r'^(?P<prefix>(?:[A-Za-z_][\w]*\.)*?)(?P<part>backbone|decode_head|'
                   r'auxiliary_head)\.(?P<rest>.+)$')
# DAFormer head: linear embeddings and ASPP branch names (nested under HRDA's head. and
# scale_attention. alike).
_EMBED_LINEAR = re.compile(r'^(?P<pre>(?:.+\.)?)embed_layers\.(?P<i>\d+)\.proj\.(?P<kind>weight|bias)$')
_EMBED_CONV = re.compile(r'^(?P<pre>(?:.+\.)?)embed_layers\.(?P<i>\d+)\.conv\.(?P<kind>weight|bias)$')
_THEIR_ASPP, _OUR_ASPP = 'fuse_layer.aspp_modules.', 'fuse_layer.branches.'
# mmseg MiT → SegFormer, the inverse of pretrained._MIT_RULES.
_MMSEG_MIT = [
    (re.compile(r'^layers\.(\d+)\.0\.projection\.(.+)$'), 'patch_embed{s}.proj.{1}'),
    (re.compile(r'^layers\.(\d+)\.0\.norm\.(.+)$'), 'patch_embed{s}.norm.{1}'),
    (re.compile(r'^layers\.(\d+)\.1\.(\d+)\.(norm1|norm2)\.(.+)$'), 'block{s}.{1}.{2}.{3}'),
    (re.compile(r'^layers\.(\d+)\.1\.(\d+)\.attn\.attn\.out_proj\.(.+)$'), 'block{s}.{1}.attn.proj.{2}'),
    (re.compile(r'^layers\.(\d+)\.1\.(\d+)\.attn\.(sr|norm)\.(.+)$'), 'block{s}.{1}.attn.{2}.{3}'),
    (re.compile(r'^layers\.(\d+)\.1\.(\d+)\.ffn\.layers\.0\.(.+)$'), 'block{s}.{1}.mlp.fc1.{2}'),
    (re.compile(r'^layers\.(\d+)\.1\.(\d+)\.ffn\.layers\.1\.(.+)$'), 'block{s}.{1}.mlp.dwconv.dwconv.{2}'),
    (re.compile(r'^layers\.(\d+)\.1\.(\d+)\.ffn\.layers\.4\.(.+)$'), 'block{s}.{1}.mlp.fc2.{2}'),
    (re.compile(r'^layers\.(\d+)\.2\.(.+)$'), 'norm{s}.{1}'),
]
_MMSEG_IN_PROJ = re.compile(r'^layers\.(\d+)\.1\.(\d+)\.attn\.attn\.in_proj_(weight|bias)$')


@dataclass
class ConversionSummary:
    """What a conversion did, per checkpoint part (``model.``, ``ema_model.``, ...)."""

    direction: str
    tensors_in: int = 0
    tensors_out: int = 0
    parts: Counter = field(default_factory=Counter)  # prefix → tensors
    qkv: int = 0          # attention q/kv pairs merged into in_proj (or split back)
    mlp: int = 0          # MLP linear ↔ 1×1 conv weights
    embeddings: int = 0   # DAFormer head embeddings linear ↔ 1×1 conv
    aspp: int = 0         # fuse_layer.aspp_modules ↔ fuse_layer.branches
    unchanged: int = 0

    def summary(self) -> str:
        parts = ', '.join(f'{p or "(segmentor)"} {n}' for p, n in sorted(self.parts.items()))
        return (f'{self.direction}: {self.tensors_in} tensors -> {self.tensors_out} '
                f'({parts}); {self.qkv} attention q+kv pairs {"merged" if self.tensors_out < self.tensors_in else "split"}, '
                f'{self.mlp} MiT MLP weights and {self.embeddings} head embeddings reshaped '
                f'(linear <-> 1x1 conv), {self.aspp} ASPP branch tensors renamed, '
                f'{self.unchanged} unchanged')


def is_daformer_layout(state: StateDict) -> bool:
    """Whether ``state`` uses DAFormer/HRDA/MIC (SegFormer MiT, linear head embeddings) names."""
    return any('backbone.patch_embed1.' in k or k.startswith('patch_embed1.')
               or _EMBED_LINEAR.match(k) or _THEIR_ASPP in k for k in state)


def _split_parts(state: StateDict) -> dict[tuple[str, str], StateDict]:
    """Group keys by (prefix, part): ('model.', 'backbone') → {rest: tensor}; others under
    (key, '')."""
    groups: dict[tuple[str, str], StateDict] = {}
    for key, value in state.items():
        m = _PART.match(key)
        if m is None:
            groups.setdefault((key, ''), {})[''] = value
        else:
            groups.setdefault((m['prefix'], m['part']), {})[m['rest']] = value
    return groups


def _head_from_daformer(rest: str, value: torch.Tensor, summary: ConversionSummary
                        ) -> tuple[str, torch.Tensor]:
    m = _EMBED_LINEAR.match(rest)
    if m:
        summary.embeddings += 1
        if m['kind'] == 'weight':
            value = value.reshape(*value.shape, 1, 1)
        return f"{m['pre']}embed_layers.{m['i']}.conv.{m['kind']}", value
    if _THEIR_ASPP in rest:
        summary.aspp += 1
        return rest.replace(_THEIR_ASPP, _OUR_ASPP), value
    summary.unchanged += 1
    return rest, value


def _head_to_daformer(rest: str, value: torch.Tensor, summary: ConversionSummary
                      ) -> tuple[str, torch.Tensor]:
    m = _EMBED_CONV.match(rest)
    if m:
        summary.embeddings += 1
        if m['kind'] == 'weight':
            value = value.reshape(value.shape[0], value.shape[1])
        return f"{m['pre']}embed_layers.{m['i']}.proj.{m['kind']}", value
    if _OUR_ASPP in rest:
        summary.aspp += 1
        return rest.replace(_OUR_ASPP, _THEIR_ASPP), value
    summary.unchanged += 1
    return rest, value


def mit_to_segformer(state: StateDict, summary: ConversionSummary | None = None) -> StateDict:
    """mmseg 0.30 ``MixVisionTransformer`` keys → SegFormer's (the inverse of ``convert_mit``)."""
    summary = summary or ConversionSummary('mmseg -> SegFormer')
    out: StateDict = {}
    for key, value in state.items():
        qkv = _MMSEG_IN_PROJ.match(key)
        if qkv:
            stage, block, kind = qkv.groups()
            dim = value.shape[0] // 3
            base = f'block{int(stage) + 1}.{block}.attn'
            out[f'{base}.q.{kind}'], out[f'{base}.kv.{kind}'] = value[:dim], value[dim:]
            summary.qkv += kind == 'weight'
            continue
        for pattern, template in _MMSEG_MIT:
            m = pattern.match(key)
            if m:
                groups = m.groups()
                new_key = template.format(*groups, s=int(groups[0]) + 1)
                if '.mlp.fc' in new_key and new_key.endswith('weight'):
                    value = value.reshape(value.shape[0], value.shape[1])  # 1×1 conv → Linear
                    summary.mlp += 1
                out[new_key] = value
                break
        else:
            out[key] = value
            summary.unchanged += 1
    return out


def _backbone_from_daformer(state: StateDict, summary: ConversionSummary) -> StateDict:
    if not any(k.startswith('patch_embed1.') for k in state):
        summary.unchanged += len(state)
        return dict(state)
    summary.qkv += sum(1 for k in state if re.match(r'^block\d+\.\d+\.attn\.q\.weight$', k))
    summary.mlp += sum(1 for k in state if re.match(r'^block\d+\.\d+\.mlp\.fc[12]\.weight$', k))
    return convert_mit(state)


def _convert(state: StateDict, direction: str) -> tuple[StateDict, ConversionSummary]:
    summary = ConversionSummary(direction, tensors_in=len(state))
    out: StateDict = {}
    for (prefix, part), tensors in _split_parts(state).items():
        if not part:  # a key outside the segmentor (e.g. DACS's _extra_state)
            out[prefix] = tensors['']
            summary.unchanged += 1
            continue
        if part == 'backbone':
            converted = (_backbone_from_daformer(tensors, summary) if direction.startswith('DAFormer')
                         else mit_to_segformer(tensors, summary)
                         if any(k.startswith('layers.0.0.projection') for k in tensors)
                         else dict(tensors))
        else:
            rename = _head_from_daformer if direction.startswith('DAFormer') else _head_to_daformer
            converted = dict(rename(rest, value, summary) for rest, value in tensors.items())
        for rest, value in converted.items():
            out[f'{prefix}{part}.{rest}'] = value
        summary.parts[prefix] += len(converted)
    summary.tensors_out = len(out)
    return out, summary


def from_daformer(state: StateDict) -> tuple[StateDict, ConversionSummary]:
    """DAFormer/HRDA/MIC names → this project's (any prefix: ``model.``, ``ema_model.``, ...)."""
    return _convert(state, 'DAFormer -> BLV-UDA')


def to_daformer(state: StateDict) -> tuple[StateDict, ConversionSummary]:
    """This project's names → DAFormer/HRDA/MIC's, for their code (``load_checkpoint``)."""
    return _convert(state, 'BLV-UDA -> DAFormer')
