"""Train a UDA wrapper (DACS, SourceOnly) or a plain segmentor with an iteration runner that
resumes exactly (``mmseg_uda.runtime``), on CPU, one GPU, or several under DDP."""
from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn as nn
from mmcv.parallel import MMDistributedDataParallel, collate
from mmcv.runner import HOOKS, build_optimizer, build_runner, get_dist_info
from mmcv.utils import build_from_cfg
from mmseg.datasets import build_dataloader, build_dataset
from mmseg.utils import build_dp, get_root_logger
from torch.utils.data import DataLoader

from ..core.evaluation import evaluation_protocol
from ..core.hooks import ProgressBarHook, StreamingEvalHook, UnlabelledPassHook
from ..models.uda import UDAWrapper
from ..runtime import (
    SelfSyncDistributedDataParallel,
    build_resumable_dataloader,
    find_latest_checkpoint,
)
from ..runtime.checkpoint import is_loadable
from .test import load_initial_weights

# Data loader settings that are not build_dataloader arguments.
_NON_LOADER_KEYS = ('train', 'val', 'test', 'train_dataloader', 'val_dataloader',
                    'test_dataloader')


def _optimizer_config(cfg, model: nn.Module):
    """UDA wrappers step the optimizer themselves: no OptimizerHook, or it would step twice."""
    if not isinstance(model, UDAWrapper):
        return cfg.get('optimizer_config', {})
    options = cfg.get('optimizer_config') or {}
    unsupported = {k: v for k, v in options.items() if k != 'type'}
    if unsupported:
        raise ValueError(f'optimizer_config={dict(options)}: {type(model).__name__} runs its own '
                         'backward passes and optimizer step, so an OptimizerHook (and its '
                         f'options {sorted(unsupported)}) cannot apply. Set optimizer_config=None.')
    return None


def build_val_dataloader(cfg, data_cfg: dict | None = None, shard: bool = False):
    """The in-order, unpadded loader that streaming evaluation needs.

    With ``shard`` under DDP, rank r loads images r, r + W, r + 2W, ...: every image is
    evaluated exactly once, and the ranks' confusion matrices sum to the single-process one.
    """
    dataset = build_dataset(data_cfg or cfg.data.val, dict(test_mode=True))
    rank, world_size = get_dist_info()
    if shard and world_size > 1:
        return DataLoader(dataset, batch_size=1, sampler=range(rank, len(dataset), world_size),
                          num_workers=cfg.data.get('workers_per_gpu', 0),
                          collate_fn=partial(collate, samples_per_gpu=1))
    loader_cfg = dict(samples_per_gpu=1, workers_per_gpu=cfg.data.get('workers_per_gpu', 0),
                      num_gpus=1, dist=False, shuffle=False, seed=cfg.get('seed'),
                      persistent_workers=False, **cfg.data.get('val_dataloader', {}))
    return build_dataloader(dataset, **loader_cfg)


def wrap_model(model: nn.Module, cfg, distributed: bool) -> nn.Module:
    """The module wrapper for this process: one device, DataContainer scattering.

    Under DDP, UDA wrappers (which run their own backward passes) get
    ``SelfSyncDistributedDataParallel``; plain segmentors, trained by an OptimizerHook, get
    mmcv's DDP. ``sync_bn=True`` converts every BatchNorm (student, teacher, ImageNet model)
    to SyncBatchNorm first, which torch supports on GPUs only.
    """
    if cfg.get('sync_bn'):
        if not (distributed and cfg.device == 'cuda'):
            raise ValueError('sync_bn=True needs DDP on GPUs (torch has no CPU SyncBatchNorm); '
                             'set sync_bn=False or train with --launcher pytorch on GPUs.')
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if not distributed:
        return build_dp(model, cfg.device, device_ids=cfg.gpu_ids)
    device_ids = None
    if cfg.device == 'cuda':
        device_ids = [torch.cuda.current_device()]
        model = model.cuda()
    if isinstance(model, UDAWrapper):
        return SelfSyncDistributedDataParallel(model, device_ids=device_ids)
    return MMDistributedDataParallel(
        model, device_ids=device_ids, broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))


def resolve_resume_from(cfg, logger) -> str | None:
    """``resume_from='auto'``: the newest loadable checkpoint of the work dir, if any."""
    if cfg.get('resume_from') != 'auto':
        return cfg.get('resume_from')
    path = find_latest_checkpoint(cfg.work_dir)
    logger.info(f'--resume-from auto: {path or "no checkpoint in " + cfg.work_dir + ", starting"}')
    return path


def resume_checked(runner, path: str) -> None:
    """``runner.resume(path)`` with errors that name the file, say whether an earlier
    checkpoint exists, and for a checkpoint of another model name the mismatch."""
    import os.path as osp

    if not is_loadable(path):
        other = find_latest_checkpoint(osp.dirname(path) or '.')  # skips unloadable files
        where = (f'the newest loadable earlier one is {other} (--resume-from auto picks it)'
                 if other else 'no earlier loadable checkpoint is in its folder')
        raise ValueError(f'--resume-from {path}: cannot be loaded (missing, truncated or not '
                         f'a checkpoint); {where}.')
    try:
        runner.resume(path)
    except RuntimeError as error:
        if 'size mismatch' not in str(error) and 'key(s) in state_dict' not in str(error):
            raise
        first = next((ln.strip() for ln in str(error).splitlines() if 'size mismatch' in ln
                      or 'key(s)' in ln), str(error)[:300])
        raise ValueError(f'--resume-from {path} does not fit this config\'s model ({first[:300]}). '
                         'Resume with the config the run was started with (its work dir has a '
                         'copy); for another class count set model.decode_head.num_classes.'
                         ) from None


def unlabelled_pass_hook(cfg, model: nn.Module, distributed: bool) -> UnlabelledPassHook | None:
    """The hook of paper Eq. 4's unlabelled pass (``cfg.pseudo_label_pass.data``: the
    unlabelled images with a test pipeline), when an observer asks for one. A pass without an
    observer that wants it, or the reverse, is a config error rather than a silent no-op."""
    wanting = [type(o).__name__ for o in getattr(model, 'pseudo_label_observers', [])
               if getattr(o, 'source', None) == 'unlabelled_pass']
    pass_cfg = cfg.get('pseudo_label_pass')
    if wanting and not pass_cfg:
        raise ValueError(f'{wanting[0]}(source=\'unlabelled_pass\') needs the unlabelled '
                         'images: set pseudo_label_pass=dict(data=<their data set, with a test '
                         'pipeline>)')
    if pass_cfg and not wanting:
        raise ValueError('pseudo_label_pass is set, but no pseudo-label observer has '
                         "source='unlabelled_pass'; add uda.pseudo_label_observers=[dict("
                         "type='PseudoLabelClassFrequency', interval=N, "
                         "source='unlabelled_pass')] or remove pseudo_label_pass")
    if not pass_cfg:
        return None
    return UnlabelledPassHook(build_val_dataloader(cfg, pass_cfg['data'], shard=distributed))


def train_uda(model: nn.Module, dataset, cfg, distributed: bool = False, validate: bool = True,
              timestamp: str | None = None, meta: dict | None = None) -> None:
    """mmseg's ``train_segmentor`` for UDA: the student alone is optimised, the wrapper's own
    step replaces the OptimizerHook, and evaluation streams a confusion matrix
    (:class:`StreamingEvalHook`, which also writes ``final_metrics.json``).

    Training uses ``ResumableIterBasedRunner`` (an ``IterBasedRunner`` config is upgraded) and
    a data stream that resumes at exactly the next batch (``build_resumable_dataloader``).
    """
    logger = get_root_logger(cfg.log_level)
    datasets = dataset if isinstance(dataset, Sequence) else [dataset]
    loader_cfg = {k: v for k, v in cfg.data.items() if k not in _NON_LOADER_KEYS}
    train_loader_cfg = {**loader_cfg, **cfg.data.get('train_dataloader', {})}
    data_loaders = [build_resumable_dataloader(ds, seed=cfg.seed, **train_loader_cfg)
                    for ds in datasets]

    optimizer_config = _optimizer_config(cfg, model)
    pass_hook = unlabelled_pass_hook(cfg, model, distributed)
    model = wrap_model(model, cfg, distributed)
    # The teacher and the ImageNet model are never optimised: only the student's parameters
    # go to the optimizer (and its checkpointed state).
    student = model.module.get_model() if isinstance(model.module, UDAWrapper) else model.module
    optimizer = build_optimizer(student, cfg.optimizer)

    runner_cfg = dict(cfg.runner)
    if runner_cfg.get('type') == 'IterBasedRunner':
        runner_cfg['type'] = 'ResumableIterBasedRunner'  # same loop, exact resume
    runner = build_runner(runner_cfg, default_args=dict(
        model=model, batch_processor=None, optimizer=optimizer, work_dir=cfg.work_dir,
        logger=logger, meta=meta))
    runner.register_training_hooks(cfg.lr_config, optimizer_config, cfg.checkpoint_config,
                                   cfg.log_config, cfg.get('momentum_config', None))
    runner.timestamp = timestamp  # the .log and .log.json share the run's timestamp
    runner.register_hook(ProgressBarHook(), priority='VERY_LOW')
    if validate:
        eval_cfg = cfg.get('evaluation') or {}
        interval = eval_cfg.get('interval') or max(1, cfg.runner.max_iters // 10)
        subsets = evaluation_protocol(cfg).subsets or None
        # LOW: before the loggers that print its results and the checkpoint hook (LOWEST).
        runner.register_hook(StreamingEvalHook(build_val_dataloader(cfg, shard=distributed),
                                               interval, subsets, cfg.get('exp_meta')),
                             priority='LOW')
    if pass_hook is not None:
        # Before evaluation (LOW), so an evaluation at the same iteration sees the new counts'
        # model state; BLV's counts do not change the prediction, only training.
        runner.register_hook(pass_hook, priority='NORMAL')
    for hook_cfg in cfg.get('custom_hooks') or []:
        hook_cfg = dict(hook_cfg)
        priority = hook_cfg.pop('priority', 'NORMAL')
        runner.register_hook(build_from_cfg(hook_cfg, HOOKS), priority=priority)

    resume_from = resolve_resume_from(cfg, logger)
    if resume_from:
        resume_checked(runner, resume_from)
    elif cfg.get('load_from'):
        # Strict and converting, unlike mmcv's load_checkpoint, which skips what does not fit.
        load_initial_weights(runner.module, cfg.load_from)
    runner.run(data_loaders, cfg.workflow)
