"""HRDA's multi-resolution head: one decoder on context and detail, fused by scale attention."""
from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Sequence

import torch
from mmseg.core import add_prefix
from mmseg.models.builder import HEADS, build_head
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.ops import resize

from mmseg_uda.runtime import is_loss_key

from ..utils.boxes import Box, boxes_mask, merge_windows

_BASE_HEAD_ARGS = frozenset(inspect.signature(BaseDecodeHead.__init__).parameters) - {'self'}


@dataclass
class MultiResFeatures:
    """Backbone features of one batch at two resolutions, as HRDAEncoderDecoder hands them over.

    Attributes:
        lr: context features of the whole image at the low scale.
        hr: detail features of the windows ``hr_boxes``, window-major: window i is rows
            ``i·B … (i+1)·B-1``. One box during training (the random detail crop), all
            sliding windows (or the whole image) at inference.
        hr_boxes: the windows in pixels of the high-resolution image.
        lr_size, hr_size: spatial size of the low- and high-resolution images.
    """

    lr: list[torch.Tensor]
    hr: list[torch.Tensor]
    hr_boxes: Sequence[Box]
    lr_size: tuple[int, int]
    hr_size: tuple[int, int]


@HEADS.register_module()
class HRDAHead(BaseDecodeHead):
    """Context/detail fusion of HRDA (Hoyer et al., ECCV 2022).

    ``single_scale_head`` (e.g. 'DAFormerHead', 'DLV2Head') is built from this head's own
    keyword arguments, ``loss_decode`` included, so tools that rewrite ``loss_decode`` (such as
    ``blv_patches.apply_blv``) reach it. It predicts the context (LR) and detail (HR) logits.
    A second head of the same type predicts the scale attention a from the context features:

        fused = up(a) · detail + up((1 − a) · context)

    in the high-resolution logit grid; a is zero where no detail prediction exists (outside the
    training crop). Every loss goes through this head's ``loss_decode``:
    (1 − λ_d − λ_c)·L(fused, y) + λ_d·L(detail, crop of y) + λ_c·L((1 − a)·context, y).

    Args:
        single_scale_head: registered head type shared by both scales.
        attention_classwise: one attention channel per class (True) or a single one.
        attention_embed_dim: DAFormer attention head width; its ASPP is replaced by 1×1 conv.
        hr_loss_weight: λ_d, weight of the detail-crop loss.
        lr_loss_weight: λ_c, weight of a separate context loss (HRDA uses it only when the
            detail crop is the whole image).
        lr_loss_attended: the context loss scores (1 − a)·context, as HRDA's code does (True),
            or the raw context logits (False, this project's behaviour before 2026-12).
        fixed_attention: a constant attention instead of a learned one (ablation).
    """

    def __init__(self, single_scale_head: str, attention_classwise: bool = True,
                 attention_embed_dim: int = 256, hr_loss_weight: float = 0.1,
                 lr_loss_weight: float = 0.0, fixed_attention: float | None = None,
                 lr_loss_attended: bool = True, **kwargs) -> None:
        if not 0 <= hr_loss_weight + lr_loss_weight <= 1:
            raise ValueError('HRDAHead: hr_loss_weight + lr_loss_weight must lie in [0, 1], got '
                             f'{hr_loss_weight} + {lr_loss_weight}')
        head_cfg = dict(copy.deepcopy(kwargs), type=single_scale_head)
        attn_cfg = self._attention_cfg(head_cfg, attention_classwise, attention_embed_dim)
        base = {k: v for k, v in kwargs.items() if k in _BASE_HEAD_ARGS}
        multi_level = isinstance(base.get('in_channels'), (list, tuple))
        base.update(channels=base.get('channels', 1), dropout_ratio=0, init_cfg=None,
                    input_transform='multiple_select' if multi_level else None)
        super().__init__(**base)
        del self.conv_seg, self.dropout  # the single-scale heads classify
        self.head = build_head(head_cfg)
        self.scale_attention = None if fixed_attention is not None else build_head(attn_cfg)
        self.fixed_attention = fixed_attention
        self.hr_loss_weight = hr_loss_weight
        self.lr_loss_weight = lr_loss_weight
        self.lr_loss_attended = lr_loss_attended
        self.debug = False
        self.debug_output: dict[str, torch.Tensor] = {}

    @staticmethod
    def _attention_cfg(head_cfg: dict, classwise: bool, embed_dim: int) -> dict:
        cfg = copy.deepcopy(head_cfg)
        if not classwise:
            cfg.update(num_classes=1, out_channels=1, threshold=0.5)
        if cfg['type'] == 'DAFormerHead':
            params = cfg['decoder_params']
            cfg['channels'] = embed_dim
            params['embed_dims'] = embed_dim
            params['fusion_cfg'] = dict(type='conv', kernel_size=1, act_cfg=dict(type='ReLU'),
                                        norm_cfg=params['fusion_cfg'].get('norm_cfg',
                                                                          cfg.get('norm_cfg')))
        return cfg

    # --- forward ----------------------------------------------------------------------------

    def _attention(self, lr_feats: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        if self.scale_attention is None:
            return like.new_full((like.shape[0], 1, *like.shape[2:]), self.fixed_attention)
        return torch.sigmoid(self.scale_attention(lr_feats))

    def forward_parts(self, inputs: MultiResFeatures) -> dict[str, torch.Tensor]:
        """Context, detail (merged into the full grid), attention and fused logits.

        With ``self.debug`` they are also kept, detached, in ``self.debug_output``.
        """
        lr_seg = self.head(inputs.lr)
        ratio = inputs.hr_size[0] / inputs.lr_size[0]
        grid = (round(lr_seg.shape[2] * ratio), round(lr_seg.shape[3] * ratio))
        hr_to_grid = grid[0] / inputs.hr_size[0]  # 1 / output stride
        hr_boxes = [b.scaled(hr_to_grid, 'HRDA detail box') for b in inputs.hr_boxes]
        lr_boxes = [b.scaled(hr_to_grid / ratio, 'HRDA detail box') for b in inputs.hr_boxes]
        hr_seg = self.head(inputs.hr)
        windows = hr_seg.split(lr_seg.shape[0])
        hr_merged = merge_windows(windows, hr_boxes, grid, allow_gaps=True)
        att = self._attention(inputs.lr, lr_seg)
        att = att * boxes_mask(lr_boxes, lr_seg.shape[2:], att)  # no detail → context only
        up = dict(size=grid, mode='bilinear', align_corners=self.align_corners)
        lr_attended = (1 - att) * lr_seg
        fused = resize(att, **up) * hr_merged + resize(lr_attended, **up)
        parts = dict(lr=lr_seg, hr=hr_seg, hr_merged=hr_merged, attention=att,
                     lr_attended=lr_attended, fused=fused)
        if self.debug:
            self.debug_output = {k: v.detach() for k, v in parts.items()}
        return parts

    def forward(self, inputs: MultiResFeatures) -> torch.Tensor:
        return self.forward_parts(inputs)['fused']

    # --- losses -----------------------------------------------------------------------------

    def forward_train(self, inputs: MultiResFeatures, img_metas: list[dict],
                      gt_semantic_seg: torch.Tensor, train_cfg: dict,
                      seg_weight: torch.Tensor | None = None) -> dict:
        if len(inputs.hr_boxes) != 1:
            raise ValueError('HRDAHead.forward_train expects exactly one detail crop, got '
                             f'{len(inputs.hr_boxes)} boxes')
        parts = self.forward_parts(inputs)
        losses = self._weighted(self.losses(parts['fused'], gt_semantic_seg, seg_weight),
                                1 - self.hr_loss_weight - self.lr_loss_weight)
        if self.hr_loss_weight > 0:
            # The detail crop of the label and of the pixel weights, at label resolution.
            box = inputs.hr_boxes[0].scaled(gt_semantic_seg.shape[-2] / inputs.hr_size[0],
                                            'HRDA detail box on the label')
            hr_weight = None if seg_weight is None else box.crop(seg_weight)
            hr_losses = self.losses(parts['hr'], box.crop(gt_semantic_seg), hr_weight)
            losses.update(add_prefix(self._weighted(hr_losses, self.hr_loss_weight), 'hr'))
        if self.lr_loss_weight > 0:
            # HRDA scores the attention-weighted context logits (1 - a)·lr, the term that
            # enters the fusion; lr_loss_attended=False scores the raw context logits.
            lr_logits = parts['lr_attended'] if self.lr_loss_attended else parts['lr']
            lr_losses = self.losses(lr_logits, gt_semantic_seg, seg_weight)
            losses.update(add_prefix(self._weighted(lr_losses, self.lr_loss_weight), 'lr'))
        return losses

    @staticmethod
    def _weighted(losses: dict, weight: float) -> dict:
        """Scale the loss terms (keys with 'loss', as mmseg sums them), not the metrics."""
        return {k: v * weight if is_loss_key(k) else v for k, v in losses.items()}
