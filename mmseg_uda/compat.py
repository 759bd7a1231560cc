"""torch-2 fixes for mmcv-full 1.7.2 / mmseg 0.30, in one place.

Imported first by ``mmseg_uda`` (and so by every tool), before any checkpoint is read or any
runner is built. Each fix has a test in ``tests/test_compat.py`` that fails without it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _numpy_checkpoint_globals() -> list[Any]:
    """The numpy objects that mmcv checkpoints pickle: scalars (e.g. the best score in
    ``meta['hook_msgs']``), arrays (numpy RNG state for exact resume) and their dtypes.

    numpy 2 moved ``numpy.core`` to ``numpy._core``; each object is allow-listed under both
    module names so checkpoints written with either numpy load.
    """
    core = getattr(np, '_core', None) or np.core
    objs = [core.multiarray.scalar, core.multiarray._reconstruct]
    out: list[Any] = [np.ndarray, np.dtype]
    out += [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith('DType')]
    for obj in objs:
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            out.append((obj, f'{module}.{obj.__name__}'))
    return out


def allow_numpy_in_checkpoints() -> None:
    """torch>=2.6 loads with ``weights_only=True`` by default, which rejects the numpy scalars
    and arrays that mmcv's runner stores in a checkpoint's meta. Allow-list exactly those numpy
    types instead of turning the safe loader off."""
    torch.serialization.add_safe_globals(_numpy_checkpoint_globals())


def configure_for_device(cfg: Any, device: str | None = None) -> Any:
    """Make an mmseg config train and evaluate on ``device`` (default: cuda if present, else cpu).

    mmseg 0.30's ``train_segmentor`` reads ``cfg.device`` and ``cfg.gpu_ids`` and builds
    dataloaders with ``persistent_workers=True``, which torch rejects when
    ``workers_per_gpu=0`` (the usual setting on CPU).
    """
    cfg.device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if not cfg.get('gpu_ids'):
        cfg.gpu_ids = [0]
    data = cfg.get('data')
    if data is not None and data.get('workers_per_gpu', 1) == 0:
        data['persistent_workers'] = False
    return cfg


allow_numpy_in_checkpoints()


# --- DDP (training-at-scale, issue #6) ---------------------------------------------------------

def fix_mmddp_forward() -> None:
    """Make ``MMDistributedDataParallel.__call__`` work on torch 2.x, on CPU and on GPUs.

    mmcv 1.7.2 overrides ``DistributedDataParallel._run_ddp_forward`` and reads
    ``self._use_replicated_tensor_module``, an attribute torch 2.0 removed, so every
    ``ddp_model(...)`` call (mmseg's ``multi_gpu_test``, distributed evaluation) raises
    ``AttributeError``. Its CPU branch (no ``device_ids``) also forgot to scatter, handing
    ``DataContainer`` objects to the model. The replacement scatters with mmcv (CPU is device -1)
    and runs the module the way torch 2's own ``_run_ddp_forward`` does.

    ``train_step`` needs no fix for the usual "backward after train_step" pattern (verified on
    torch 2.9.1 with gloo). Models that run their own backward passes inside ``train_step``
    (DACS) must not use DDP's reducer at all: see ``mmseg_uda.runtime.ddp``.
    """
    from mmcv.parallel import MMDistributedDataParallel

    def _run_ddp_forward(self, *inputs, **kwargs):
        device_id = self.device_ids[0] if self.device_ids else -1
        inputs, kwargs = self.to_kwargs(inputs, kwargs, device_id)
        with self._inside_ddp_forward():
            return self.module(*inputs[0], **kwargs[0])

    MMDistributedDataParallel._run_ddp_forward = _run_ddp_forward


fix_mmddp_forward()
