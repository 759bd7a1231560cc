"""Global random-number-generator state: capture and restore it, and derive per-sample streams.

DACS draws its augmentation parameters from Python's ``random``, numpy and torch, and BLV draws
its noise from torch's generator on the logits' device. Exact resume therefore has to restore all
of them, and data loading must not depend on which process or worker produced a sample.
"""
from __future__ import annotations

import random
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch


def capture_rng_state() -> dict[str, Any]:
    """The state of every global generator a training iteration can draw from.

    The CUDA state is that of this process's current GPU (each DDP rank draws on its own
    device only), and it is included only when CUDA is initialised, so capturing never starts
    CUDA on a machine that only trains on the CPU.
    """
    state: dict[str, Any] = dict(
        python=random.getstate(),
        numpy=np.random.get_state(),
        torch_cpu=torch.get_rng_state(),
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['torch_cuda_device'] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`.

    A CUDA state that cannot be restored here (no CUDA, or an older checkpoint that holds one
    state per visible GPU and another number of GPUs is visible now) gives a warning: the run
    continues correctly, but its CUDA draws (BLV's noise on the GPU) are not those of an
    uninterrupted run.
    """
    random.setstate(_as_python_state(state['python']))
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch_cpu'])
    cuda_state = state.get('torch_cuda_device')
    all_states = state.get('torch_cuda')  # checkpoints written before the per-device format
    if cuda_state is None and all_states is None:
        return
    if not torch.cuda.is_available():
        warnings.warn('The checkpoint holds a CUDA random state but CUDA is not available '
                      'here: the resumed run continues, but not bit-identically.', stacklevel=2)
        return
    if cuda_state is not None:
        torch.cuda.set_rng_state(cuda_state)
    elif len(all_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(all_states)
    else:
        warnings.warn(f'The checkpoint holds random states for {len(all_states)} CUDA devices '
                      f'and {torch.cuda.device_count()} are visible: the resumed run continues, '
                      'but not bit-identically.', stacklevel=2)


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
