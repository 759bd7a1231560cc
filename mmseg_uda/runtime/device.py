"""Which device a run uses, said out loud: no silent CPU fallback, and fast fp32 math on GPUs.

A run meant for a GPU (every full-scale config; ``device`` defaults to ``'cuda'``) on a machine
where torch sees none stops with the reason, instead of training for weeks on the CPU. Only
an explicit ``--device cpu`` (or ``device='cpu'`` in the config, as experiment 0 has) runs on
the CPU.
"""
from __future__ import annotations

import os

import torch

DEVICES = ('cuda', 'cpu')


class DeviceUnavailableError(RuntimeError):
    """The requested device does not exist on this machine."""


def cuda_unavailable_reason() -> str:
    """Why ``torch.cuda.is_available()`` is False here, in words a user can act on."""
    if torch.version.cuda is None and getattr(torch.version, 'hip', None) is None:
        return (f'torch {torch.__version__} is a CPU-only build; install a CUDA build of the '
                'pinned torch (make install on a machine with a GPU does).')
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    if visible is not None and visible.strip() in ('', '-1', 'none', 'NoDevFiles'):
        return (f'CUDA_VISIBLE_DEVICES={visible!r} hides every GPU from this process; unset '
                'it or list the GPUs to use.')
    try:
        torch.cuda.init()
    except Exception as error:  # noqa: BLE001  torch's own words (driver, devices, ...)
        reason = str(error).strip().splitlines()[0]
        hint = f' (CUDA_VISIBLE_DEVICES={visible!r})' if visible is not None else ''
        return f'torch {torch.__version__} (CUDA {torch.version.cuda}) says: {reason}{hint}'
    return 'torch.cuda.is_available() is False although CUDA initialised; check the driver.'


def resolve_device(requested: str | None) -> str:
    """``'cuda'`` or ``'cpu'``; ``None`` means ``'cuda'``. Raises
    :class:`DeviceUnavailableError` for ``'cuda'`` on a machine where torch sees no GPU."""
    device = requested or 'cuda'
    if device not in DEVICES:
        raise ValueError(f'device must be one of {DEVICES}, got {device!r}')
    if device == 'cuda' and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f'This run is meant for a GPU, but torch sees none: {cuda_unavailable_reason()} '
            'To train or evaluate on the CPU (slow at full scale), pass --device cpu.')
    return device


def configure_fp32_math(tf32: bool = True) -> None:
    """TF32 tensor cores for fp32 matmuls and convolutions on Ampere and newer GPUs (about
    8x the fp32 throughput at 10-bit mantissa inputs, fp32 accumulation). torch 1.7-1.11,
    which DAFormer and HRDA ran on, had it on by default; torch >= 1.12 turned it off for
    matmuls. ``tf32=False`` gives full fp32 everywhere. No effect on CPUs."""
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
