"""DAFormer's decoder: multi-level linear embeddings fused by a depthwise-separable ASPP."""
from __future__ import annotations

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.builder import HEADS
from mmseg.models.decode_heads.aspp_head import ASPPModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.decode_heads.sep_aspp_head import DepthwiseSeparableASPPModule
from mmseg.ops import resize


class ASPPFusion(nn.Module):
    """Parallel (separable) atrous branches, concatenated, then a 3×3 bottleneck."""

    def __init__(self, in_channels: int, channels: int, dilations=(1, 6, 12, 18),
                 sep: bool = True, pool: bool = False, conv_cfg=None, norm_cfg=None,
                 act_cfg=None) -> None:
        super().__init__()
        if pool:
            # DAFormer's final decoder has no image-pooling branch; supporting it would add
            # a code path that no experiment of the paper uses.
            raise ValueError('DAFormerHead: fusion_cfg.pool=True is not supported (the '
                             'daformer_sepaspp decoder uses pool=False)')
        branch_type = DepthwiseSeparableASPPModule if sep else ASPPModule
        self.branches = branch_type(dilations=dilations, in_channels=in_channels,
                                    channels=channels, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                    act_cfg=act_cfg)
        self.bottleneck = ConvModule(len(dilations) * channels, channels, 3, padding=1,
                                     conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(torch.cat(self.branches(x), dim=1))


def build_fusion(fusion_cfg: dict, in_channels: int, channels: int, conv_cfg,
                 norm_cfg) -> nn.Module:
    """The DAFormer fusion: ``aspp`` (the decoder) or ``conv`` (HRDA's scale-attention head)."""
    cfg = dict(fusion_cfg)
    kind = cfg.pop('type')
    cfg.setdefault('norm_cfg', norm_cfg)
    cfg.setdefault('act_cfg', dict(type='ReLU'))
    if kind == 'aspp':
        return ASPPFusion(in_channels, channels, conv_cfg=conv_cfg, **cfg)
    if kind == 'conv':
        kernel_size = cfg.pop('kernel_size', 1)
        return ConvModule(in_channels, channels, kernel_size, padding=kernel_size // 2,
                          conv_cfg=conv_cfg, **cfg)
    raise ValueError(f"DAFormerHead: decoder_params.fusion_cfg.type must be 'aspp' or 'conv', "
                     f'got {kind!r}')


def build_embedding(embed_cfg: dict, in_channels: int, embed_dims: int) -> nn.Module:
    """A per-level linear ("mlp") projection: a 1×1 conv without norm or activation."""
    cfg = dict(embed_cfg)
    kind = cfg.pop('type', 'mlp')
    if kind != 'mlp':
        raise ValueError(f"DAFormerHead: embed_cfg.type must be 'mlp', got {kind!r}")
    return ConvModule(in_channels, embed_dims, 1, conv_cfg=None,
                      norm_cfg=cfg.get('norm_cfg'), act_cfg=cfg.get('act_cfg'))


@HEADS.register_module()
class DAFormerHead(BaseDecodeHead):
    """DAFormer decoder (``daformer_sepaspp``).

    Each selected backbone level is embedded to ``embed_dims`` channels, upsampled to the
    resolution of the first (stride-4) level and concatenated; ``fusion_cfg`` turns that into
    ``channels`` features, and mmseg's dropout + 1×1 classifier give the logits.

    Args:
        decoder_params: ``embed_dims``, ``embed_cfg`` (per level), optional ``embed_neck_cfg``
            (for the last, deepest level), and ``fusion_cfg`` (type 'aspp' or 'conv').
    """

    def __init__(self, decoder_params: dict, **kwargs) -> None:
        kwargs.setdefault('input_transform', 'multiple_select')
        super().__init__(**kwargs)
        if self.input_transform != 'multiple_select':
            raise ValueError("DAFormerHead fuses several levels: input_transform must be "
                             f"'multiple_select', got {self.input_transform!r}")
        embed_dims = decoder_params['embed_dims']
        embed_cfg = decoder_params.get('embed_cfg', dict(type='mlp'))
        neck_cfg = decoder_params.get('embed_neck_cfg', embed_cfg)
        last = len(self.in_channels) - 1
        self.embed_layers = nn.ModuleList(
            build_embedding(neck_cfg if i == last else embed_cfg, c, embed_dims)
            for i, c in enumerate(self.in_channels))
        self.fuse_layer = build_fusion(decoder_params['fusion_cfg'],
                                       embed_dims * len(self.in_channels), self.channels,
                                       self.conv_cfg, self.norm_cfg)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        levels = self._transform_inputs(inputs)
        size = levels[0].shape[2:]
        embedded = [
            resize(embed(x), size=size, mode='bilinear', align_corners=self.align_corners)
            for embed, x in zip(self.embed_layers, levels)
        ]
        return self.cls_seg(self.fuse_layer(torch.cat(embedded, dim=1)))
