"""torch-2 fixes for mmcv-full 1.7.2 / mmseg 0.30, in one place.

Imported first by ``mmseg_uda`` (and so by every tool), before any checkpoint is read or any
runner is built. Each fix has a test in ``tests/runtime/test_compat.py`` that fails without it.
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
    """Make an mmseg config train and evaluate on ``device``: the argument (``--device``), else
    the config's ``device``, else ``'cuda'``. A GPU run on a machine without one raises
    :class:`~mmseg_uda.runtime.device.DeviceUnavailableError` with the reason; there is no
    silent CPU fallback.

    mmseg 0.30's ``train_segmentor`` reads ``cfg.device`` and ``cfg.gpu_ids`` and builds
    dataloaders with ``persistent_workers=True``, which torch rejects when
    ``workers_per_gpu=0`` (the usual setting on CPU).
    """
    from .runtime.device import resolve_device

    cfg.device = resolve_device(device or cfg.get('device'))
    if not cfg.get('gpu_ids'):
        cfg.gpu_ids = [0]
    data = cfg.get('data')
    if data is not None and data.get('workers_per_gpu', 1) == 0:
        data['persistent_workers'] = False
    return cfg


# mmcv's runner and mmseg's transforms accept tuples only for these keys (workflow phases,
# image scales, crop sizes, ranges), and JSON has no tuples.
_TUPLE_KEYS = frozenset({'workflow', 'img_scale', 'crop_size', 'ratio_range', 'hr_crop_size',
                         'stride', 'size'})


def _as_tuples(value: Any) -> Any:
    """[a, b] -> (a, b); [[a, b], [c, d]] -> [(a, b), (c, d)] (a list of scales stays a list)."""
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return [tuple(v) for v in value]
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        return tuple(value)
    return value


def restore_json_tuples(node: Any) -> Any:
    """Recursively turn the lists that a JSON round trip made of tuple-only fields back into
    tuples, in place; returns ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _TUPLE_KEYS:
                node[key] = _as_tuples(value)
            restore_json_tuples(node[key])
    elif isinstance(node, list):
        for value in node:
            restore_json_tuples(value)
    return node


def load_json_configs_with_tuples() -> None:
    """Generated experiment configs are JSON (as DAFormer's). Loading one with
    ``Config.fromfile`` gives lists where mmcv's runner (``workflow``) and mmseg's Resize /
    MultiScaleFlipAug (``img_scale``) assert tuples; restore them when a .json file is read."""
    from mmcv import Config

    original = Config._file2dict
    if getattr(original, '_blv_uda_json_tuples', False):
        return

    def _file2dict(filename, *args, **kwargs):
        cfg_dict, cfg_text = original(filename, *args, **kwargs)
        if str(filename).endswith('.json'):
            restore_json_tuples(cfg_dict)
        return cfg_dict, cfg_text

    _file2dict._blv_uda_json_tuples = True
    Config._file2dict = staticmethod(_file2dict)


allow_numpy_in_checkpoints()
load_json_configs_with_tuples()


# --- GPU data scatter ---------------------------------------------------------------------------

_COPY_STREAMS: dict[int, Any] = {}


def _copy_stream(device: int | torch.device) -> Any:
    """torch 1.x's ``_get_stream(device: int)``, which mmcv 1.7's scatter was written for: a
    background ``torch.cuda.Stream`` per GPU index for host-to-device copies, None for -1.

    torch 2.x's ``_get_stream`` takes a ``torch.device`` and reads ``device.type``, so mmcv's
    ``Scatter.forward`` (which passes the int index) raised ``AttributeError: 'int' object has
    no attribute 'type'`` on the first ``DataContainer`` batch sent to a GPU.
    """
    index = device.index if isinstance(device, torch.device) else int(device)
    if index is None or index < 0:
        return None
    if index not in _COPY_STREAMS:
        _COPY_STREAMS[index] = torch.cuda.Stream(index)
    return _COPY_STREAMS[index]


def fix_mmcv_scatter_streams() -> None:
    """Route mmcv's scatter (MMDataParallel, mmcv's and this project's DDP wrappers) through
    :func:`_copy_stream`. Evaluation batches are plain tensors and never reached the bug."""
    from mmcv.parallel import _functions

    global MMCV_GET_STREAM
    if MMCV_GET_STREAM is None:  # keep the original once, for the test that shows the bug
        MMCV_GET_STREAM = _functions._get_stream
    _functions._get_stream = _copy_stream


MMCV_GET_STREAM = None


fix_mmcv_scatter_streams()


# --- DDP --------------------------------------------------------------------------------------

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
    global MMCV_RUN_DDP_FORWARD

    def _run_ddp_forward(self, *inputs, **kwargs):
        device_id = self.device_ids[0] if self.device_ids else -1
        inputs, kwargs = self.to_kwargs(inputs, kwargs, device_id)
        with self._inside_ddp_forward():
            return self.module(*inputs[0], **kwargs[0])

    if MMCV_RUN_DDP_FORWARD is None:  # keep mmcv's version once, for the test that shows the bug
        MMCV_RUN_DDP_FORWARD = MMDistributedDataParallel._run_ddp_forward
    MMDistributedDataParallel._run_ddp_forward = _run_ddp_forward


MMCV_RUN_DDP_FORWARD = None


fix_mmddp_forward()
