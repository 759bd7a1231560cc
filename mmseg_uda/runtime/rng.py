"""Global random-number-generator state: capture and restore it, and derive per-sample streams.

DACS draws its augmentation parameters from Python's ``random``, numpy and torch, and BLV draws
its noise from torch's generator on the logits' device. Exact resume therefore has to restore all
of them, and data loading must not depend on which process or worker produced a sample.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch


def capture_rng_state() -> dict[str, Any]:
    """The state of every global generator a training iteration can draw from.

    CUDA states are included only when CUDA is initialised, so capturing never starts CUDA
    on a machine that only trains on the CPU.
    """
    state: dict[str, Any] = dict(
        python=random.getstate(),
        numpy=np.random.get_state(),
        torch_cpu=torch.get_rng_state(),
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['torch_cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    random.setstate(_as_python_state(state['python']))
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch_cpu'])
    if 'torch_cuda' in state:
        if not torch.cuda.is_available():
            raise RuntimeError(
                'This checkpoint holds CUDA random states but CUDA is not available here; '
                'exact resume needs the same kind of device the run started on.')
        cuda_states = state['torch_cuda']
        if len(cuda_states) != torch.cuda.device_count():
            raise RuntimeError(
                f'The checkpoint holds random states for {len(cuda_states)} CUDA devices but '
                f'{torch.cuda.device_count()} are visible; set CUDA_VISIBLE_DEVICES as in the '
                'interrupted run.')
        torch.cuda.set_rng_state_all(cuda_states)


def _as_python_state(state: Any) -> tuple:
    # torch.save keeps tuples, but a JSON or list round trip turns random's state into lists.
    version, internal, gauss = state
    return version, tuple(internal), gauss


def derive_seed(*keys: int) -> int:
    """A well-mixed 32-bit seed from integer keys (e.g. base seed, rank, sample position).

    Neighbouring keys give unrelated streams, unlike ``seed + position``.
    """
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


@contextmanager
def seeded_host_rng(seed: int) -> Iterator[None]:
    """Run a block with Python's, numpy's and torch's CPU generators seeded from ``seed``,
    restoring all three afterwards.

    Used around the loading of one sample: its random crop, flip and rare-class choice then
    depend only on the seed, whether the sample is loaded in the main process or in any
    worker. CUDA generators are left alone (data pipelines run on the host).
    """
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed)
        torch.default_generator.manual_seed(seed)  # CPU only: never touch CUDA generators
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
