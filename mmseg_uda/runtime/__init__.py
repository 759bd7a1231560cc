"""Training at scale without loss: exact resume, atomic checkpoints, NaN guard, DDP, AMP.

Importing registers ``ResumableIterBasedRunner`` (RUNNERS), ``AtomicCheckpointHook`` (HOOKS)
and ``SelfSyncDistributedDataParallel`` (MODULE_WRAPPERS).
"""
from .checkpoint import atomic_save, find_latest_checkpoint, list_checkpoints, prune_checkpoints
from .ddp import SelfSyncDistributedDataParallel
from .dist import (
    average_gradients,
    broadcast_buffers,
    broadcast_module_state,
    init_distributed,
    is_distributed,
    is_loss_key,
    is_main_process,
    mean_over_ranks,
    shutdown_distributed,
    slurm_environment,
    sum_over_ranks,
    total_loss,
)
from .hooks import AtomicCheckpointHook
from .nan_guard import NonFiniteLossError, check_finite_losses
from .rng import capture_rng_state, derive_seed, restore_rng_state, seeded_host_rng
from .runner import ResumableIterBasedRunner
from .sampler import ResumableInfiniteSampler, SampleSeededDataset, build_resumable_dataloader
from .stepper import TrainStepper, fp32_outputs

__all__ = [
    'AtomicCheckpointHook', 'NonFiniteLossError', 'ResumableInfiniteSampler',
    'ResumableIterBasedRunner', 'SampleSeededDataset', 'SelfSyncDistributedDataParallel',
    'TrainStepper', 'atomic_save', 'average_gradients', 'broadcast_buffers',
    'broadcast_module_state', 'build_resumable_dataloader', 'capture_rng_state',
    'check_finite_losses', 'derive_seed', 'find_latest_checkpoint', 'fp32_outputs',
    'init_distributed', 'is_distributed', 'is_loss_key', 'is_main_process', 'list_checkpoints',
    'mean_over_ranks', 'prune_checkpoints',
    'restore_rng_state', 'seeded_host_rng', 'shutdown_distributed', 'slurm_environment',
    'sum_over_ranks', 'total_loss',
]
