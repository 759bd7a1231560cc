"""mmseg 0.30's ``MixVisionTransformer`` with the LayerNorm eps of SegFormer, DAFormer and HRDA.

SegFormer builds the patch-embedding norms and the attention's spatial-reduction norm as
``nn.LayerNorm(dim)``, eps 1e-5; the blocks' norm1/norm2 and the stage norms use eps 1e-6.
mmseg 0.30 uses 1e-6 for all of them. The ImageNet weights ``mit_b5.pth`` and every released
DAFormer/HRDA/MIC checkpoint were trained with SegFormer's values. The difference moves the
features by about 5e-6 relative; with both eps aligned, features, logits and gradients agree
with DAFormer to float64 precision. No parameter changes, so checkpoints load either way.
"""
from __future__ import annotations

from mmseg.models.backbones import MixVisionTransformer
from mmseg.models.builder import BACKBONES

NORM_EPS = {'segformer': 1e-5, 'mmseg': 1e-6}  # of the patch-embedding and reduction norms


@BACKBONES.register_module()
class MiTSegFormerNorms(MixVisionTransformer):
    """``MixVisionTransformer`` (same arguments, same parameter names) whose patch-embedding
    and spatial-reduction LayerNorms use SegFormer's eps 1e-5 (``norm_eps='segformer'``, the
    default) or mmseg's 1e-6 (``norm_eps='mmseg'``, plain ``MixVisionTransformer``)."""

    def __init__(self, *args, norm_eps: str = 'segformer', **kwargs) -> None:
        if norm_eps not in NORM_EPS:
            raise ValueError(f'backbone.norm_eps must be one of {sorted(NORM_EPS)}, '
                             f'got {norm_eps!r}')
        super().__init__(*args, **kwargs)
        self.norm_eps = norm_eps
        for patch_embed, blocks, _stage_norm in self.layers:
            patch_embed.norm.eps = NORM_EPS[norm_eps]
            for block in blocks:
                reduction_norm = getattr(block.attn, 'norm', None)  # only where sr_ratio > 1
                if reduction_norm is not None:
                    reduction_norm.eps = NORM_EPS[norm_eps]
