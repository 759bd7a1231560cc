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

from .pretrained import StateDict, convert_mit, is_mit_mlp_weight, rename_mit

_PART = re.compile(r'^(?P<prefix>(?:[A-Za-z_][\w]*\.)*?)(?P<part>backbone|decode_head|'
                   r'auxiliary_head)\.(?P<rest>.+)$')
# DAFormer head: linear embeddings and ASPP branch names (nested under HRDA's head. and
# scale_attention. alike).
_EMBED = r'^(?P<pre>(?:.+\.)?)embed_layers\.(?P<i>\d+)\.{}\.(?P<kind>weight|bias)$'
_EMBED_LINEAR, _EMBED_CONV = re.compile(_EMBED.format('proj')), re.compile(_EMBED.format('conv'))
_THEIR_ASPP, _OUR_ASPP = 'fuse_layer.aspp_modules.', 'fuse_layer.branches.'
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
                f'({parts}); {self.qkv} attention q+kv pairs '
                f'{"merged" if self.tensors_out < self.tensors_in else "split"}, '
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


def _rename_head(rest: str, value: torch.Tensor, summary: ConversionSummary, to_ours: bool
                 ) -> tuple[str, torch.Tensor]:
    """One decode-head tensor: linear embeddings <-> 1x1 convs, ASPP branch names."""
    embed, aspp = (_EMBED_LINEAR, (_THEIR_ASPP, _OUR_ASPP)) if to_ours else \
        (_EMBED_CONV, (_OUR_ASPP, _THEIR_ASPP))
    m = embed.match(rest)
    if m:
        summary.embeddings += 1
        if m['kind'] == 'weight':
            value = value.reshape(*value.shape, 1, 1) if to_ours else value.flatten(1)
        return f"{m['pre']}embed_layers.{m['i']}.{'conv' if to_ours else 'proj'}.{m['kind']}", value
    if aspp[0] in rest:
        summary.aspp += 1
        return rest.replace(*aspp), value
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
        new_key = rename_mit(key, 'to_segformer')
        if new_key is None:
            out[key] = value
            summary.unchanged += 1
            continue
        if is_mit_mlp_weight(key):
            value = value.reshape(value.shape[0], value.shape[1])  # 1×1 conv → Linear
            summary.mlp += 1
        out[new_key] = value
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
            if direction.startswith('DAFormer'):
                converted = _backbone_from_daformer(tensors, summary)
            elif any(k.startswith('layers.0.0.projection') for k in tensors):  # an mmseg MiT
                converted = mit_to_segformer(tensors, summary)
            else:  # ResNet: the names agree
                converted = dict(tensors)
        else:
            to_ours = direction.startswith('DAFormer')
            converted = dict(_rename_head(rest, value, summary, to_ours)
                             for rest, value in tensors.items())
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
