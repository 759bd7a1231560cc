"""mmseg's EncoderDecoder with what DACS needs: pixel weights, features, pretrained files."""
from __future__ import annotations

import os
import warnings

import torch
from mmseg.core import add_prefix
from mmseg.models.builder import SEGMENTORS
from mmseg.models.segmentors import EncoderDecoder
from mmseg.ops import resize

from ..pretrained import load_pretrained
from ..utils.boxes import merge_windows, sliding_windows


@SEGMENTORS.register_module()
class UDAEncoderDecoder(EncoderDecoder):
    """EncoderDecoder for UDA self-training (DAFormer's modified mmseg 0.16 interface).

    - ``forward_train(img, img_metas, gt_semantic_seg, seg_weight=None, return_feat=False)``:
      ``seg_weight`` (B×H×W) weights every pixel's loss in every head; with ``return_feat``
      the backbone features are returned under ``losses['features']`` (pop it before
      ``_parse_losses``).
    - ``pretrained``: a backbone checkpoint path loaded by :func:`load_pretrained` in
      ``init_weights`` (SegFormer/timm/torchvision layouts are converted). A path that does
      not exist only warns, so configs build and test on machines without the weights.
    - ``test_cfg.batched_slide=True`` runs all sliding windows of ``mode='slide'`` as one
      batch (faster on GPUs, more memory).
    """

    def __init__(self, backbone: dict, decode_head: dict, neck: dict | None = None,
                 auxiliary_head: dict | None = None, train_cfg: dict | None = None,
                 test_cfg: dict | None = None, pretrained: str | None = None,
                 init_cfg: dict | None = None) -> None:
        # mmseg would hand `pretrained` to the backbone, whose loader silently skips every
        # key of a SegFormer or timm file; we convert and load it ourselves in init_weights.
        super().__init__(backbone, decode_head, neck=neck, auxiliary_head=auxiliary_head,
                         train_cfg=train_cfg, test_cfg=test_cfg, pretrained=None,
                         init_cfg=init_cfg)
        self.pretrained = pretrained

    def init_weights(self) -> None:
        super().init_weights()
        if not self.pretrained:
            return
        if os.path.exists(self.pretrained) or '://' in self.pretrained:
            load_pretrained(self.backbone, self.pretrained, logger='root')
        else:
            warnings.warn(
                f'model.pretrained={self.pretrained!r} does not exist: the backbone stays '
                'randomly initialised. Download the ImageNet weights as described in the '
                "README ('Pretrained weights') for results comparable to the paper.",
                stacklevel=2)

    # --- training ---------------------------------------------------------------------------

    def forward_train(self, img: torch.Tensor, img_metas: list[dict],
                      gt_semantic_seg: torch.Tensor, seg_weight: torch.Tensor | None = None,
                      return_feat: bool = False) -> dict:
        x = self.extract_feat(img)
        losses = dict()
        if return_feat:
            losses['features'] = x
        losses.update(self._decode_head_forward_train(x, img_metas, gt_semantic_seg, seg_weight))
        if self.with_auxiliary_head:
            losses.update(
                self._auxiliary_head_forward_train(x, img_metas, gt_semantic_seg, seg_weight))
        return losses

    def _decode_head_forward_train(self, x, img_metas: list[dict], gt_semantic_seg: torch.Tensor,
                                   seg_weight: torch.Tensor | None = None) -> dict:
        loss = self.decode_head.forward_train(x, img_metas, gt_semantic_seg, self.train_cfg,
                                              seg_weight)
        return add_prefix(loss, 'decode')

    def _auxiliary_head_forward_train(self, x, img_metas: list[dict],
                                      gt_semantic_seg: torch.Tensor,
                                      seg_weight: torch.Tensor | None = None) -> dict:
        if isinstance(self.auxiliary_head, torch.nn.ModuleList):
            named_heads = [(f'aux_{i}', head) for i, head in enumerate(self.auxiliary_head)]
        else:
            named_heads = [('aux', self.auxiliary_head)]
        losses = dict()
        for prefix, head in named_heads:
            loss = head.forward_train(x, img_metas, gt_semantic_seg, self.train_cfg, seg_weight)
            losses.update(add_prefix(loss, prefix))
        return losses

    # --- inference --------------------------------------------------------------------------

    def slide_inference(self, img: torch.Tensor, img_meta: list[dict],
                        rescale: bool) -> torch.Tensor:
        """mmseg's overlapping sliding-window inference, optionally as one batch of windows."""
        boxes = sliding_windows(img.shape[2:], self.test_cfg.crop_size, self.test_cfg.stride)
        crops = [box.crop(img) for box in boxes]
        if self.test_cfg.get('batched_slide', False):
            logits = self.encode_decode(torch.cat(crops), img_meta).split(img.shape[0])
        else:
            logits = [self.encode_decode(crop, img_meta) for crop in crops]
        preds = merge_windows(logits, boxes, img.shape[2:])
        if rescale:
            # Drop the padding added by the test pipeline, then go back to the original size.
            img_h, img_w = img_meta[0]['img_shape'][:2]
            preds = resize(preds[:, :, :img_h, :img_w], size=img_meta[0]['ori_shape'][:2],
                           mode='bilinear', align_corners=self.align_corners,
                           warning=False)
        return preds
