"""DeepLabV2 classifier as used by DAFormer/HRDA ("dlv2red")."""
from __future__ import annotations

import torch
from mmseg.models.builder import HEADS
from mmseg.models.decode_heads.aspp_head import ASPPModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead


@HEADS.register_module()
class DLV2Head(BaseDecodeHead):
    """Parallel dilated 3×3 convs straight from the backbone features to the classes, summed.

    "red" (reduced) DeepLabV2 has only dilations 6 and 12: AdaptSegNet's classifier returns
    after its second branch, and DAFormer/HRDA keep that behaviour for comparability. There is
    no intermediate feature layer, BN, ReLU or dropout, so mmseg's ``channels``/``conv_seg`` are
    unused; weights are initialised Normal(0, 0.01) with zero bias.
    """

    def __init__(self, dilations=(6, 12), **kwargs) -> None:
        for unused in ('channels', 'dropout_ratio', 'norm_cfg'):
            if kwargs.pop(unused, None) not in (None, 0):
                raise ValueError(f'DLV2Head has no intermediate layer: remove {unused} from the '
                                 'decode_head config')
        kwargs.setdefault('init_cfg', dict(type='Normal', std=0.01, layer='Conv2d'))
        super().__init__(channels=1, dropout_ratio=0, norm_cfg=None, **kwargs)
        del self.conv_seg
        self.aspp_modules = ASPPModule(dilations, self.in_channels, self.out_channels,
                                       conv_cfg=self.conv_cfg, norm_cfg=None, act_cfg=None)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        x = self._transform_inputs(inputs)
        return torch.stack(self.aspp_modules(x)).sum(dim=0)
