"""Train a UDA wrapper (DACS, SourceOnly) or a plain segmentor with mmcv's IterBasedRunner."""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch.nn as nn
from mmcv.runner import HOOKS, build_optimizer, build_runner
from mmcv.utils import build_from_cfg
from mmseg.datasets import build_dataloader, build_dataset
from mmseg.utils import build_ddp, build_dp, get_root_logger

from ..core.evaluation import SYNTHIA_SUBSETS, uses_synthia_subsets
from ..core.hooks import ProgressBarHook, StreamingEvalHook
from ..models.uda import UDAWrapper

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


def build_val_dataloader(cfg, data_cfg: dict | None = None):
    """The in-order, unpadded, single-process loader that streaming evaluation needs."""
    dataset = build_dataset(data_cfg or cfg.data.val, dict(test_mode=True))
    loader_cfg = dict(samples_per_gpu=1, workers_per_gpu=cfg.data.get('workers_per_gpu', 0),
                      num_gpus=1, dist=False, shuffle=False, seed=cfg.get('seed'),
                      persistent_workers=False, **cfg.data.get('val_dataloader', {}))
    return build_dataloader(dataset, **loader_cfg)


def train_uda(model: nn.Module, dataset, cfg, distributed: bool = False, validate: bool = True,
              timestamp: str | None = None, meta: dict | None = None) -> None:
    """mmseg's ``train_segmentor`` for UDA: the student alone is optimised, the wrapper's own
    step replaces the OptimizerHook, and evaluation streams a confusion matrix
    (:class:`StreamingEvalHook`, which also writes ``final_metrics.json``)."""
    logger = get_root_logger(cfg.log_level)
    datasets = dataset if isinstance(dataset, Sequence) else [dataset]
    loader_cfg = dict(num_gpus=len(cfg.gpu_ids), dist=distributed, seed=cfg.seed,
                      drop_last=True)
    loader_cfg.update({k: v for k, v in cfg.data.items() if k not in _NON_LOADER_KEYS})
    train_loader_cfg = {**loader_cfg, **cfg.data.get('train_dataloader', {})}
    data_loaders = [build_dataloader(ds, **train_loader_cfg) for ds in datasets]

    optimizer_config = _optimizer_config(cfg, model)
    # The teacher and the ImageNet model are never optimised: only the student's parameters
    # go to the optimizer (and its checkpointed state).
    optimizer = build_optimizer(model.get_model() if isinstance(model, UDAWrapper) else model,
                                cfg.optimizer)
    if distributed:
        model = build_ddp(model, cfg.device, device_ids=[int(os.environ['LOCAL_RANK'])],
                          broadcast_buffers=False,
                          find_unused_parameters=cfg.get('find_unused_parameters', False))
    else:
        model = build_dp(model, cfg.device, device_ids=cfg.gpu_ids)

    runner = build_runner(cfg.runner, default_args=dict(
        model=model, batch_processor=None, optimizer=optimizer, work_dir=cfg.work_dir,
        logger=logger, meta=meta))
    runner.register_training_hooks(cfg.lr_config, optimizer_config, cfg.checkpoint_config,
                                   cfg.log_config, cfg.get('momentum_config', None))
    runner.timestamp = timestamp  # the .log and .log.json share the run's timestamp
    runner.register_hook(ProgressBarHook(), priority='VERY_LOW')
    if validate:
        eval_cfg = cfg.get('evaluation') or {}
        interval = eval_cfg.get('interval') or max(1, cfg.runner.max_iters // 10)
        subsets = SYNTHIA_SUBSETS if uses_synthia_subsets(cfg) else None
        # LOW: after the checkpoint hook, before the loggers that print its results.
        runner.register_hook(StreamingEvalHook(build_val_dataloader(cfg), interval, subsets,
                                               cfg.get('exp_meta')), priority='LOW')
    for hook_cfg in cfg.get('custom_hooks') or []:
        hook_cfg = dict(hook_cfg)
        priority = hook_cfg.pop('priority', 'NORMAL')
        runner.register_hook(build_from_cfg(hook_cfg, HOOKS), priority=priority)

    if cfg.get('resume_from'):
        runner.resume(cfg.resume_from)
    elif cfg.get('load_from'):
        runner.load_checkpoint(cfg.load_from)
    runner.run(data_loaders, cfg.workflow)
