"""Data-parallel training for models that run their own backward passes (DACS).

Why not ``MMDistributedDataParallel``: DDP all-reduces gradients from autograd hooks that it
arms at the end of a forward *through the wrapper*. DACS runs its three backward passes
(source, feature distance, mixed) and its optimizer step inside ``train_step``, before those
hooks are armed. Measured on torch 2.9.1 with gloo: the first iteration's gradients are not
synchronised at all (the ranks' weights silently diverge), the second iteration reduces only
the first backward pass, and the third crashes while DDP rebuilds its buckets.

What happens instead: each process holds a full replica on its own device, the replicas start
identical (rank 0's state is broadcast), and the model calls
:func:`mmseg_uda.runtime.dist.average_gradients` right before every optimizer step. That is
DDP's arithmetic (the mean of the ranks' gradients) done once per step, for any number of
backward passes. Students then stay bit-identical across ranks, and so do their EMA teachers;
the frozen ImageNet model never changes.
"""
from __future__ import annotations

import torch
from mmcv.parallel import MODULE_WRAPPERS
from mmcv.parallel.scatter_gather import scatter_kwargs

from .dist import broadcast_module_state


@MODULE_WRAPPERS.register_module()
class SelfSyncDistributedDataParallel(torch.nn.Module):
    """One replica per process, on GPU ``device_ids[0]`` or, without ``device_ids``, the CPU.

    It scatters ``DataContainer`` batches like mmcv's wrappers and is a registered module
    wrapper, so checkpoints store the wrapped module's keys. Gradient averaging is the
    module's job (see the module docstring).
    """

    def __init__(self, module: torch.nn.Module, device_ids: list[int] | None = None) -> None:
        super().__init__()
        self.module = module
        self.device_ids = list(device_ids or [])
        if self.device_ids:
            module.to(torch.device('cuda', self.device_ids[0]))
        broadcast_module_state(module)

    def _scatter(self, inputs: tuple, kwargs: dict) -> tuple[tuple, dict]:
        # mmcv's scatter: -1 means "stay on the CPU", and DataContainers are unwrapped.
        inputs, kwargs = scatter_kwargs(inputs, kwargs, self.device_ids[:1] or [-1], dim=0)
        return (inputs[0] if inputs else ()), (kwargs[0] if kwargs else {})

    def forward(self, *inputs, **kwargs):
        inputs, kwargs = self._scatter(inputs, kwargs)
        return self.module(*inputs, **kwargs)

    def train_step(self, *inputs, **kwargs):
        inputs, kwargs = self._scatter(inputs, kwargs)
        return self.module.train_step(*inputs, **kwargs)

    def val_step(self, *inputs, **kwargs):
        inputs, kwargs = self._scatter(inputs, kwargs)
        return self.module.val_step(*inputs, **kwargs)
