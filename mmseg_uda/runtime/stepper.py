"""Backward passes and the optimizer step of a model that steps itself (DACS).

One object owns what happens around them:
- mixed precision: autocast in bf16 or fp16 (config ``amp=dict(enabled=True, dtype='bf16')``,
  off by default), with loss scaling for fp16;
- gradient averaging over ranks right before the step (see ``runtime/ddp.py`` for why DACS
  cannot use DDP's hooks).

Precision policy: only the networks' forward passes run in low precision. Backbone and head
outputs are cast back to fp32 by forward hooks (:func:`fp32_outputs`), so the losses, BLV's
noise and the feature distance are computed in fp32; parameters, gradients, optimizer moments
and the EMA teacher stay fp32 because autocast never changes parameters.
"""
from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

import torch
from mmcv.runner.fp16_utils import cast_tensor_type

from .dist import average_gradients

AMP_DTYPES = {'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16,
              'fp16': torch.float16, 'float16': torch.float16}


class TrainStepper:
    """``autocast()`` around forward passes, ``backward(loss)`` for each loss, ``step()`` once.

    Args:
        enabled: autocast on or off (off: everything runs in fp32, exactly as before).
        dtype: ``'bf16'`` or ``'fp16'``. fp16 uses a ``GradScaler``; bf16 needs none.
    """

    def __init__(self, enabled: bool = False, dtype: str = 'bf16') -> None:
        if dtype not in AMP_DTYPES:
            raise ValueError(f"amp.dtype must be one of {sorted(AMP_DTYPES)}, got {dtype!r}")
        self.enabled = enabled
        self.dtype = AMP_DTYPES[dtype]
        self.scaler: torch.amp.GradScaler | None = None
        self._scaler_state: dict | None = None

    @classmethod
    def from_cfg(cls, amp: dict | None) -> TrainStepper:
        amp = dict(amp or {})
        unknown = set(amp) - {'enabled', 'dtype'}
        if unknown:
            raise ValueError(f'Unknown keys in the amp config: {sorted(unknown)}; '
                             "use amp=dict(enabled=True, dtype='bf16' or 'fp16').")
        return cls(**amp)

    @property
    def uses_loss_scaling(self) -> bool:
        return self.enabled and self.dtype == torch.float16

    def autocast(self, device: torch.device | str) -> AbstractContextManager:
        device_type = torch.device(device).type
        return torch.autocast(device_type, dtype=self.dtype, enabled=self.enabled)

    def backward(self, loss: torch.Tensor, retain_graph: bool = False) -> None:
        if self.uses_loss_scaling:
            loss = self._get_scaler(loss.device).scale(loss)
        # DACS calls backward between forward passes; autocast must not reach the backward ops.
        with torch.autocast(loss.device.type, enabled=False):
            loss.backward(retain_graph=retain_graph)

    def step(self, optimizer: torch.optim.Optimizer,
             params: Iterable[torch.nn.Parameter] | None = None) -> None:
        """Average gradients over ranks (scaled ones under fp16, so that every rank sees the
        same inf check and skips the same steps), then step."""
        if params is None:
            params = [p for group in optimizer.param_groups for p in group['params']]
        average_gradients(params)
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def _get_scaler(self, device: torch.device) -> torch.amp.GradScaler:
        if self.scaler is None:
            self.scaler = torch.amp.GradScaler(device.type)
            if self._scaler_state is not None:
                self.scaler.load_state_dict(self._scaler_state)
        return self.scaler

    def state_dict(self) -> dict[str, Any]:
        if self.scaler is not None:
            return dict(grad_scaler=self.scaler.state_dict())
        return dict(grad_scaler=self._scaler_state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._scaler_state = state.get('grad_scaler')
        if self.scaler is not None and self._scaler_state is not None:
            self.scaler.load_state_dict(self._scaler_state)


def _fp32_output_hook(module: torch.nn.Module, inputs: Any, output: Any) -> Any:
    for low_precision in (torch.float16, torch.bfloat16):
        output = cast_tensor_type(output, low_precision, torch.float32)
    return output


def fp32_outputs(segmentor: torch.nn.Module) -> list[torch.utils.hooks.RemovableHandle]:
    """Cast the outputs of a segmentor's backbone, neck and of every decode head in it (nested
    ones included: HRDA's context/detail head and its scale attention) to fp32 (a no-op outside
    autocast).

    Everything computed from these outputs then runs in fp32: HRDA's fusion, the losses and
    BLV's noise, the teacher's resize, softmax and threshold. Inference reaches the hooks too,
    because ``BaseDecodeHead.forward_test`` calls the head as a module
    (``models/decode_heads/patch_mmseg_heads.py``). The hooks are module-level functions, so
    ``copy.deepcopy`` (the EMA teacher) keeps them.
    """
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead

    parts = [getattr(segmentor, name, None) for name in ('backbone', 'neck')]
    parts += [m for m in segmentor.modules() if isinstance(m, BaseDecodeHead)]
    return [part.register_forward_hook(_fp32_output_hook) for part in parts
            if part is not None]
