"""Source-only training with the UDA data pipeline: the baseline rows of the paper's tables."""
from __future__ import annotations

import torch
from mmseg.core import add_prefix

from .builder import UDA
from .uda_wrapper import UDAWrapper, parse_losses


@UDA.register_module()
class SourceOnly(UDAWrapper):
    """Train the segmentor on the labelled source half of each UDA batch; the target half is
    loaded (the same data pipeline and rare class sampling as DACS) and ignored."""

    def forward_train(self, img: torch.Tensor, img_metas: list[dict],
                      gt_semantic_seg: torch.Tensor, **target_data) -> dict[str, torch.Tensor]:
        with self.autocast(img):
            losses = self.model.forward_train(img, img_metas, gt_semantic_seg)
        loss, logs = parse_losses(losses)
        self.backward(loss)
        logs = add_prefix(logs, 'src')
        logs['loss'] = loss.detach()
        return logs
