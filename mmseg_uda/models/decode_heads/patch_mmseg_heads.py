"""Per-pixel loss weights for every mmseg decode head (the one patch of mmseg's heads).

DACS trains on mixed images whose pseudo-labelled pixels carry a confidence weight. DAFormer
edited mmseg 0.16 so that ``BaseDecodeHead.forward_train`` and ``losses`` accept a
``seg_weight`` (B×H×W at label resolution) and hand it to ``loss_decode(..., weight=...)``.
mmseg 0.30 has no such argument, so this module adds it to ``BaseDecodeHead`` itself: every
head (ours, mmseg's own such as ``FCNHead`` as auxiliary head, and user heads) then accepts
it. Without ``seg_weight`` the behaviour is exactly mmseg's.

The reduction stays mmseg's: ``CrossEntropyLoss`` multiplies the per-pixel loss by the weight
and averages over all pixels, ignored ones included (``avg_non_ignore=False``), as DAFormer.
"""
from __future__ import annotations

import functools
import inspect

import torch
import torch.nn as nn
from mmcv.runner import force_fp32
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.ops import resize


@functools.cache
def losses_take_seg_weight(head_type: type) -> bool:
    """Whether ``head_type.losses`` accepts a ``seg_weight`` (mmseg heads such as DAHead,
    EncHead, STDCHead and K-Net's IterativeDecodeHead override ``losses(seg_logit,
    seg_label)``)."""
    return 'seg_weight' in inspect.signature(head_type.losses).parameters


def forward_train(self: BaseDecodeHead, inputs, img_metas: list[dict],
                  gt_semantic_seg: torch.Tensor, train_cfg: dict,
                  seg_weight: torch.Tensor | None = None) -> dict:
    """Forward, then the losses against ``gt_semantic_seg`` weighted per pixel by ``seg_weight``.

    Without ``seg_weight`` this is mmseg's ``forward_train`` exactly, for every head, also those
    whose ``losses`` takes no weight.
    """
    seg_logits = self(inputs)
    if seg_weight is None:
        return self.losses(seg_logits, gt_semantic_seg)
    if not losses_take_seg_weight(type(self)):
        raise TypeError(f'{type(self).__name__}.losses(seg_logit, seg_label) takes no seg_weight, '
                        'so this head cannot weight pixels (DACS\'s pseudo-label weights). Use it '
                        'where no pixel weights are passed (supervised training, auxiliary heads '
                        'of source-only runs) or give its losses() a seg_weight argument.')
    return self.losses(seg_logits, gt_semantic_seg, seg_weight)


def forward_test(self: BaseDecodeHead, inputs, img_metas: list[dict], test_cfg: dict):
    """mmseg's ``forward_test`` through ``__call__`` instead of ``self.forward``, so that module
    hooks (the fp32 casts of mixed precision, ``runtime/stepper.py``) see inference too."""
    return self(inputs)


def _check_weight(seg_weight: torch.Tensor, seg_label: torch.Tensor) -> torch.Tensor:
    if seg_weight.dim() == 4 and seg_weight.shape[1] == 1:
        seg_weight = seg_weight.squeeze(1)
    if seg_weight.shape != seg_label.shape:
        raise ValueError(f'seg_weight has shape {tuple(seg_weight.shape)} but the label has '
                         f'{tuple(seg_label.shape)}; pass one weight per label pixel (B×H×W)')
    return seg_weight


def pixel_accuracy(seg_logit: torch.Tensor, seg_label: torch.Tensor,
                   ignore_index: int) -> torch.Tensor:
    """mmseg's ``accuracy(seg_logit, seg_label, ignore_index=...)`` (top-1, percent of the
    non-ignored pixels, the same eps), as a [1] tensor that never leaves the device.

    mmseg's version selects the valid pixels by boolean indexing and reads their number with
    ``numel()``, two host syncs per head per loss call on a GPU; this one only sums masks.
    """
    valid = seg_label != ignore_index
    correct = (seg_logit.argmax(dim=1) == seg_label) & valid
    eps = torch.finfo(torch.float32).eps
    return ((correct.sum().float() + eps) * (100.0 / (valid.sum().float() + eps))).reshape(1)


@force_fp32(apply_to=('seg_logit', ))
def losses(self: BaseDecodeHead, seg_logit: torch.Tensor, seg_label: torch.Tensor,
           seg_weight: torch.Tensor | None = None) -> dict:
    """mmseg's ``BaseDecodeHead.losses`` with an optional per-pixel weight."""
    loss = dict()
    seg_logit = resize(input=seg_logit, size=seg_label.shape[2:], mode='bilinear',
                       align_corners=self.align_corners)
    # The pixel sampler (OHEM) takes the B×1×H×W label, as in mmseg; the losses the B×H×W one.
    sampled = self.sampler.sample(seg_logit, seg_label) if self.sampler is not None else None
    seg_label = seg_label.squeeze(1)
    if seg_weight is not None:
        seg_weight = _check_weight(seg_weight, seg_label)
    if sampled is not None:
        seg_weight = sampled if seg_weight is None else seg_weight * sampled
    losses_decode = (self.loss_decode if isinstance(self.loss_decode, nn.ModuleList)
                     else [self.loss_decode])
    for loss_decode in losses_decode:
        value = loss_decode(seg_logit, seg_label, weight=seg_weight,
                            ignore_index=self.ignore_index)
        name = loss_decode.loss_name
        loss[name] = loss[name] + value if name in loss else value
    loss['acc_seg'] = pixel_accuracy(seg_logit, seg_label, self.ignore_index)
    return loss


# mmseg's own methods, kept for the tests that compare every head against them.
MMSEG_FORWARD_TRAIN = BaseDecodeHead.forward_train
MMSEG_LOSSES = BaseDecodeHead.losses
MMSEG_FORWARD_TEST = BaseDecodeHead.forward_test


def patch_base_decode_head() -> None:
    """Install the weighted ``forward_train``/``losses`` and the hook-visible ``forward_test``
    on ``BaseDecodeHead`` (idempotent)."""
    BaseDecodeHead.forward_train = forward_train
    BaseDecodeHead.forward_test = forward_test
    BaseDecodeHead.losses = losses


patch_base_decode_head()
