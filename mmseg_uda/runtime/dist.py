"""Process groups for ``--launcher pytorch|slurm`` and the collectives UDA training needs.

mmcv's ``init_dist`` calls ``torch.cuda.set_device`` unconditionally, so it cannot start a CPU
(gloo) group. Here the backend follows the device: NCCL when CUDA is present, gloo otherwise.
"""
from __future__ import annotations

import datetime
import itertools
import os
import subprocess
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.distributed as dist
from mmcv.runner import allreduce_grads, get_dist_info

# srun's tasks of one job agree on a port derived from SLURM_JOB_ID, so jobs that share a node
# (array tasks, several users) do not collide on one fixed port such as 29500.
SLURM_PORT_BASE, SLURM_PORT_RANGE = 20000, 10000
DEFAULT_TIMEOUT_MIN = 30  # torch's default; rank 0 saving a large checkpoint may need more


def slurm_master_port(job_id: str) -> int:
    """A port in [20000, 30000) that every task of SLURM job ``job_id`` derives alike."""
    key = int(job_id) if job_id.isdigit() else zlib.crc32(job_id.encode())
    return SLURM_PORT_BASE + key % SLURM_PORT_RANGE


def slurm_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """torch.distributed's env:// variables derived from a SLURM task's environment.

    MASTER_ADDR is kept when already set, else it is the first host of SLURM_NODELIST
    (``scontrol show hostnames``). MASTER_PORT is kept, else derived from SLURM_JOB_ID
    (:func:`slurm_master_port`).
    """
    env = os.environ if env is None else env
    missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST') if k not in env]
    if missing:
        raise RuntimeError(
            f'--launcher slurm needs {", ".join(missing)} in the environment: start the job '
            'with srun (one task per GPU), or use --launcher pytorch under torchrun.')
    port = env.get('MASTER_PORT')
    if not port:
        if not env.get('SLURM_JOB_ID'):
            raise RuntimeError('--launcher slurm: neither MASTER_PORT nor SLURM_JOB_ID is set; '
                               'export MASTER_PORT (the same free port in every task).')
        port = str(slurm_master_port(env['SLURM_JOB_ID']))
    master_addr = env.get('MASTER_ADDR') or first_slurm_host(env['SLURM_NODELIST'])
    return dict(
        RANK=env['SLURM_PROCID'],
        WORLD_SIZE=env['SLURM_NTASKS'],
        LOCAL_RANK=env.get('SLURM_LOCALID', '0'),
        MASTER_ADDR=master_addr,
        MASTER_PORT=port,
    )


def first_slurm_host(nodelist: str) -> str:
    """First host name of a SLURM node list such as ``gpu[03-05,09]``."""
    try:
        out = subprocess.run(['scontrol', 'show', 'hostnames', nodelist], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise RuntimeError(
            f'Could not expand SLURM_NODELIST={nodelist!r} with `scontrol show hostnames` '
            f'({err}); set MASTER_ADDR to the first node of the job.') from err
    return out.split()[0]


def init_distributed(launcher: str, backend: str | None = None, port: int | None = None,
                     timeout: float | None = None) -> tuple[int, int]:
    """Join the process group of ``launcher`` ('pytorch': torchrun's env; 'slurm': srun's).

    ``backend``, ``port`` and ``timeout`` are mmseg's ``dist_params`` keys: ``port`` sets
    MASTER_PORT (for srun jobs; torchrun chooses its own), ``timeout`` is the collectives'
    timeout in minutes (default 30; raise it when rank 0 needs longer to write a checkpoint
    while the other ranks wait). Returns ``(rank, world_size)``. With CUDA, each process uses
    GPU ``LOCAL_RANK``.
    """
    if port is not None:
        os.environ['MASTER_PORT'] = str(int(port))
    if launcher == 'slurm':
        os.environ.update(slurm_environment())
    elif launcher != 'pytorch':
        raise ValueError(f'--launcher must be none, pytorch or slurm, got {launcher!r}')
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if key not in os.environ:
            raise RuntimeError(f'--launcher {launcher}: {key} is not set; start the job with '
                               'torchrun (or srun for --launcher slurm).')
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count())
    minutes = DEFAULT_TIMEOUT_MIN if timeout is None else float(timeout)
    if minutes <= 0:
        raise ValueError(f'dist_params.timeout must be > 0 minutes, got {timeout}')
    dist.init_process_group(backend=backend or default_backend(),
                            timeout=datetime.timedelta(minutes=minutes))
    return dist.get_rank(), dist.get_world_size()


def shutdown_distributed() -> None:
    """Leave the process group (NCCL warns about leaked communicators otherwise)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def default_backend() -> str:
    return 'nccl' if torch.cuda.is_available() else 'gloo'


def is_distributed() -> bool:
    """Whether this process is one of several in a process group (collectives needed)."""
    return dist.is_available() and dist.is_initialized() and get_dist_info()[1] > 1


def is_main_process() -> bool:
    """Rank 0, or the only process: the one that writes files and prints."""
    return get_dist_info()[0] == 0


def is_loss_key(key: str) -> bool:
    """mmseg's rule: the total loss is the sum of the log entries whose key contains 'loss'."""
    return 'loss' in key


def total_loss(logs) -> Any:
    """The sum of the loss entries of ``logs`` (mmseg's rule, :func:`is_loss_key`)."""
    return sum(v for k, v in logs.items() if is_loss_key(k))


def broadcast_module_state(module: torch.nn.Module, src: int = 0) -> None:
    """Copy ``src``'s parameters and buffers to every rank (identical student, teacher and
    ImageNet model everywhere, whatever each rank's initialisation drew)."""
    if not is_distributed():
        return
    # Parameters and buffers only: state_dict() also holds values such as UDAWrapper's
    # _extra_state (a CPU tensor), which NCCL cannot send ("No backend type associated with
    # device type cpu"); every rank computes those itself.
    with torch.no_grad():
        for tensor in itertools.chain(module.parameters(), module.buffers()):
            dist.broadcast(tensor.data, src)


def broadcast_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Copy ``src``'s buffers (BatchNorm statistics) to every rank, e.g. before evaluating."""
    if not is_distributed():
        return
    for buffer in module.buffers():
        dist.broadcast(buffer, src)


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Average ``.grad`` over all ranks in place, as DDP would, in flat 25 MB all-reduces (DDP's
    bucket size, which bounds the extra memory).

    A parameter without a gradient on some ranks gets zeros there; one without a gradient on
    every rank keeps ``grad=None``, so the optimizer skips it exactly as in one process.
    """
    if not is_distributed():
        return
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    has_grad = torch.tensor([p.grad is not None for p in params], dtype=torch.int32,
                            device=params[0].device)
    dist.all_reduce(has_grad)
    synced = [p for p, count in zip(params, has_grad.tolist()) if count > 0]
    for param in synced:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
    allreduce_grads(synced, coalesce=True, bucket_size_mb=25)


def sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over all ranks (a new tensor; ``tensor`` itself without DDP)."""
    if not is_distributed():
        return tensor
    total = tensor.detach().clone()
    dist.all_reduce(total)
    return total


def mean_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over all ranks, e.g. a batch statistic of the global batch."""
    return sum_over_ranks(tensor) / get_dist_info()[1]
