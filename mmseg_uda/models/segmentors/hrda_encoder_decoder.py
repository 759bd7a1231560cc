"""HRDA's multi-resolution encoder-decoder: low-resolution context + high-resolution detail."""
from __future__ import annotations

from typing import Sequence

import torch
from mmseg.models.builder import SEGMENTORS
from mmseg.ops import resize

from ..decode_heads.hrda_head import MultiResFeatures
from ..utils.boxes import Box, sample_crop_box, sliding_windows
from .uda_encoder_decoder import UDAEncoderDecoder


def _resized(img: torch.Tensor, scale: float, align_corners: bool) -> torch.Tensor:
    if scale == 1:
        return img
    size = (round(img.shape[2] * scale), round(img.shape[3] * scale))
    return resize(img, size=size, mode='bilinear', align_corners=align_corners, warning=False)


@SEGMENTORS.register_module()
class HRDAEncoderDecoder(UDAEncoderDecoder):
    """HRDA segmentor (Hoyer et al., ECCV 2022) with DAFormer's UDA interface.

    Training: the context path sees the whole input resized to the low scale, the detail path a
    random ``hr_crop_size`` crop of the input at the high scale whose offsets are multiples of
    ``crop_coord_divisible`` (drawn from torch's seeded global RNG; the last one is kept in
    ``last_train_crop_box``). Inference (``encode_decode``, used for test and for DACS's
    pseudo-labels): the detail path covers the whole image with overlapping ``hr_crop_size``
    windows (stride half a crop), run as one batch, and averaged where they overlap.

    Args:
        scales: the two input scales, e.g. ``[1, 0.5]``; equal scales give the "same scale"
            ablation (context and detail at one resolution).
        hr_crop_size: detail crop (h, w) in high-resolution pixels; None for the whole image.
        crop_coord_divisible: detail crops start at multiples of this (8 for DAFormer's
            stride 4 at ratio 2, 16 for DeepLabV2's stride 8), so they align with the context.
        hr_slide_inference: detail inference by sliding windows (False: whole HR image).
        hr_slide_overlapping: windows overlap by half a crop (False: "no overlap" ablation).
        blur_hr_crop: the detail path sees the HR image down- and up-sampled 2× ("blurred HR"
            ablation: same pixels count, no extra detail), in training and at inference.
        feature_scale: which scale's backbone features ``forward_train(return_feat=True)`` and
            ``extract_feat`` return for the ImageNet feature distance; 'all' gives both.
    """

    def __init__(self, backbone: dict, decode_head: dict, scales: Sequence[float] = (1, 0.5),
                 hr_crop_size: Sequence[int] | None = None, crop_coord_divisible: int = 1,
                 hr_slide_inference: bool = True, hr_slide_overlapping: bool = True,
                 blur_hr_crop: bool = False, feature_scale: float | str = 0.5,
                 **kwargs) -> None:
        if decode_head.get('type') != 'HRDAHead':
            raise ValueError("HRDAEncoderDecoder needs decode_head.type='HRDAHead', got "
                             f"{decode_head.get('type')!r}")
        if kwargs.get('auxiliary_head') is not None:
            raise ValueError('HRDAEncoderDecoder does not support an auxiliary_head')
        if len(scales) != 2:
            raise ValueError(f'HRDAEncoderDecoder: scales must hold two scales, got {scales}')
        if feature_scale != 'all' and feature_scale not in scales:
            raise ValueError(f"HRDAEncoderDecoder: feature_scale must be one of {list(scales)} "
                             f"or 'all', got {feature_scale!r}")
        super().__init__(backbone, decode_head, **kwargs)
        self.lr_scale, self.hr_scale = sorted(scales)
        self.hr_crop_size = tuple(hr_crop_size) if hr_crop_size is not None else None
        self.crop_coord_divisible = crop_coord_divisible
        self.hr_slide_inference = hr_slide_inference
        self.hr_slide_overlapping = hr_slide_overlapping
        self.blur_hr_crop = blur_hr_crop
        self.feature_scale = feature_scale
        self.last_train_crop_box: Box | None = None
        self.debug_output: dict[str, torch.Tensor] = {}

    @property
    def debug(self) -> bool:
        """Keep the intermediate maps of the last forward in ``debug_output``."""
        return self.decode_head.debug

    @debug.setter
    def debug(self, value: bool) -> None:
        self.decode_head.debug = value

    # --- inputs -----------------------------------------------------------------------------

    def _scaled_images(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lr_img = _resized(img, self.lr_scale, self.align_corners)
        hr_img = _resized(img, self.hr_scale, self.align_corners)
        if self.blur_hr_crop:
            blurred = _resized(hr_img, 0.5, self.align_corners)
            hr_img = resize(blurred, size=hr_img.shape[2:], mode='bilinear',
                            align_corners=self.align_corners, warning=False)
        return lr_img, hr_img

    def _whole(self, img: torch.Tensor) -> Box:
        return Box(0, img.shape[2], 0, img.shape[3])

    def _inference_windows(self, hr_img: torch.Tensor) -> list[Box]:
        if not self.hr_slide_inference or self.hr_crop_size is None:
            return [self._whole(hr_img)]
        stride = self.hr_crop_size
        if self.hr_slide_overlapping:
            stride = tuple(c // 2 for c in self.hr_crop_size)
        return sliding_windows(hr_img.shape[2:], self.hr_crop_size, stride)

    def _multires_features(self, lr_img: torch.Tensor, hr_img: torch.Tensor,
                           boxes: Sequence[Box]) -> MultiResFeatures:
        hr_crops = torch.cat([box.crop(hr_img) for box in boxes])  # windows as one batch
        return MultiResFeatures(lr=super().extract_feat(lr_img),
                                hr=super().extract_feat(hr_crops), hr_boxes=list(boxes),
                                lr_size=tuple(lr_img.shape[2:]), hr_size=tuple(hr_img.shape[2:]))

    def _record_debug(self, lr_img: torch.Tensor, hr_img: torch.Tensor,
                      boxes: Sequence[Box]) -> None:
        if self.debug:
            self.debug_output = dict(img_lr=lr_img.detach(), img_hr=hr_img.detach(),
                                     hr_boxes=list(boxes), **self.decode_head.debug_output)

    # --- features for the ImageNet feature distance -----------------------------------------

    def _feature_distance_features(self, feats: MultiResFeatures):
        if self.feature_scale == 'all':
            return [feats.lr, feats.hr]
        return feats.lr if self.feature_scale == self.lr_scale else feats.hr

    def extract_feat(self, img: torch.Tensor, hr_box: Box | None = None):
        """Backbone features at ``feature_scale`` (what ``return_feat`` gives in training).

        The high scale needs the detail crop of the matching training step: ``hr_box``, by
        default this model's ``last_train_crop_box``.
        """
        lr_img, hr_img = self._scaled_images(img)
        if self.feature_scale == self.lr_scale:
            return super().extract_feat(lr_img)
        box = hr_box or self.last_train_crop_box
        if box is None:
            raise ValueError('HRDAEncoderDecoder.extract_feat at the high scale needs a detail '
                             "crop box: pass hr_box (e.g. the student's last_train_crop_box)")
        hr_feats = super().extract_feat(box.crop(hr_img))
        if self.feature_scale == 'all':
            return [super().extract_feat(lr_img), hr_feats]
        return hr_feats

    # --- training and inference -------------------------------------------------------------

    def forward_train(self, img: torch.Tensor, img_metas: list[dict],
                      gt_semantic_seg: torch.Tensor, seg_weight: torch.Tensor | None = None,
                      return_feat: bool = False) -> dict:
        lr_img, hr_img = self._scaled_images(img)
        if self.hr_crop_size is None:
            box = self._whole(hr_img)
        else:
            box = sample_crop_box(hr_img.shape[2:], self.hr_crop_size, self.crop_coord_divisible)
        self.last_train_crop_box = box
        feats = self._multires_features(lr_img, hr_img, [box])
        losses = dict()
        if return_feat:
            losses['features'] = self._feature_distance_features(feats)
        losses.update(self._decode_head_forward_train(feats, img_metas, gt_semantic_seg,
                                                      seg_weight))
        self._record_debug(lr_img, hr_img, [box])
        return losses

    def encode_decode(self, img: torch.Tensor, img_metas: list[dict]) -> torch.Tensor:
        """Full multi-resolution prediction for ``img``, at its size (test and pseudo-labels)."""
        lr_img, hr_img = self._scaled_images(img)
        boxes = self._inference_windows(hr_img)
        out = self.decode_head.forward_test(self._multires_features(lr_img, hr_img, boxes),
                                            img_metas, self.test_cfg)
        self._record_debug(lr_img, hr_img, boxes)
        return resize(out, size=img.shape[2:], mode='bilinear', align_corners=self.align_corners)
