"""An IterBasedRunner whose checkpoints continue a run exactly and survive crashes.

On top of mmcv's checkpoint fields (``state_dict``: student, EMA teacher and ImageNet model;
``optimizer``; ``meta``), every checkpoint holds ``training_state``:

- ``iter``: completed iterations. (mmcv stores one less than the file name says and, on
  resume, repeats that iteration with the next iteration's weights.)
- ``rng``: every rank's Python, numpy and torch (CPU and CUDA) generator states.
- ``sampler``: the settings the training stream depends on (``ResumableInfiniteSampler``);
  the stream restarts at batch ``iter``.
- ``model``: the module's own training state (``training_state_dict()``), e.g. DACS's
  iteration counter that drives the EMA ramp, and the fp16 loss scale.

The generator states are restored right before the first resumed iteration, so nothing
between ``resume()`` and that iteration (hooks, loader start-up) can shift them.

A :class:`NonFiniteLossError` raised by the model stops training after the last good state
(the weights, buffers and generators from before the failing iteration) is saved as
``iter_<k>.pth``.
"""
from __future__ import annotations

import os.path as osp
import time
import warnings
from dataclasses import dataclass
from typing import Any

import mmcv
import torch
import torch.distributed as dist
from mmcv.parallel import is_module_wrapper
from mmcv.runner import RUNNERS, CheckpointHook, IterBasedRunner, get_dist_info
from mmcv.runner.checkpoint import weights_to_cpu

from .checkpoint import atomic_save, update_latest_link
from .dist import is_main_process
from .nan_guard import NonFiniteLossError
from .rng import capture_rng_state, restore_rng_state
from .sampler import ResumableInfiniteSampler


@dataclass
class _IterationStart:
    """What a training iteration may change before its loss is checked."""
    rng: dict
    buffers: list[torch.Tensor]
    hyperparams: list[dict]  # lr etc. of each param group, before the LR hook sets this iteration's


@RUNNERS.register_module()
class ResumableIterBasedRunner(IterBasedRunner):
    """Drop-in for ``IterBasedRunner`` (``runner=dict(type='ResumableIterBasedRunner', ...)``).

    Use it with the loader from ``build_resumable_dataloader`` and ``AtomicCheckpointHook``
    (the default checkpoint hook of this runner) for bit-exact resume.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rng_to_restore: dict | None = None
        self._saved_sampler_state: dict | None = None
        self._train_sampler: ResumableInfiniteSampler | None = None
        self._iteration_start: _IterationStart | None = None

    @property
    def module(self) -> torch.nn.Module:
        return self.model.module if is_module_wrapper(self.model) else self.model

    # --- checkpoints --------------------------------------------------------------------

    def register_checkpoint_hook(self, checkpoint_config: dict | CheckpointHook | None) -> None:
        """Atomic checkpoints by default, saved after every other hook of the iteration (eval,
        logging), so the stored generator states are those the next iteration starts from."""
        if checkpoint_config is None:
            return
        if isinstance(checkpoint_config, dict):
            checkpoint_config.setdefault('type', 'AtomicCheckpointHook')
            checkpoint_config = mmcv.build_from_cfg(checkpoint_config, mmcv.runner.HOOKS)
        self.register_hook(checkpoint_config, priority='LOWEST')

    def save_checkpoint(self, out_dir: str, filename_tmpl: str = 'iter_{}.pth',
                        meta: dict | None = None, save_optimizer: bool = True,
                        create_symlink: bool = True) -> str:
        """Save after the current iteration (called from ``after_train_iter`` hooks).

        Every rank must call it (the ranks' generator states are gathered); rank 0 writes.
        Returns the checkpoint path.
        """
        return self._save(osp.join(out_dir, filename_tmpl.format(self.iter + 1)),
                          completed=self.iter + 1, rng=capture_rng_state(), meta=meta,
                          save_optimizer=save_optimizer, create_symlink=create_symlink)

    def _save(self, path: str, completed: int, rng: dict, meta: dict | None = None,
              save_optimizer: bool = True, create_symlink: bool = True) -> str:
        training_state = dict(iter=completed, rng=_gather(rng), sampler=self._sampler_state(),
                              model=self._module_training_state())
        if not is_main_process():
            return path
        meta = dict(meta or {})
        meta.update(self.meta or {})
        meta.update(epoch=self.epoch, iter=completed, mmcv_version=mmcv.__version__,
                    time=time.asctime())
        if getattr(self.module, 'CLASSES', None) is not None:
            meta.update(CLASSES=self.module.CLASSES)
        # The module's own state_dict: mmcv's get_state_dict drops get_extra_state() (DACS's
        # local_iter) and keeps non-persistent buffers, which strict loading then rejects.
        checkpoint = dict(meta=meta, state_dict=weights_to_cpu(self.module.state_dict()),
                          training_state=training_state)
        if save_optimizer:
            checkpoint['optimizer'] = self.optimizer.state_dict()
        mmcv.mkdir_or_exist(osp.dirname(path) or '.')
        atomic_save(checkpoint, path)
        if create_symlink:
            update_latest_link(path)
        return path

    def _sampler_state(self) -> dict | None:
        return self._train_sampler.state_dict() if self._train_sampler is not None else None

    def _module_training_state(self) -> dict | None:
        getter = getattr(self.module, 'training_state_dict', None)
        return getter() if getter is not None else None

    # --- resume -------------------------------------------------------------------------

    def resume(self, checkpoint: str, resume_optimizer: bool = True,
               map_location: str | Any = 'cpu') -> None:
        """Restore everything a checkpoint of this runner holds (see the module docstring).

        Tensors are loaded on the CPU and copied into the model wherever it lives, so the same
        call works on CPU-only machines (mmcv's default asks CUDA for its current device).
        """
        if map_location == 'default':
            map_location = 'cpu'
        ckpt = self.load_checkpoint(checkpoint, map_location=map_location, strict=True)
        state = ckpt.get('training_state')
        if state is None:
            warnings.warn(f'{checkpoint} was not written by ResumableIterBasedRunner: it holds '
                          'no generator or data-stream state, so the resumed run will not be '
                          'identical to an uninterrupted one.', stacklevel=2)
            # mmcv stores the index of the last completed iteration.
            state = dict(iter=ckpt['meta']['iter'] + 1)
        self._iter = state['iter']
        self._inner_iter = 0
        self._epoch = ckpt['meta'].get('epoch', 0)
        if resume_optimizer and 'optimizer' in ckpt:
            self.optimizer.load_state_dict(ckpt['optimizer'])
        if state.get('model') is not None:
            self.module.load_training_state_dict(state['model'])
        self._rng_to_restore = self._own_rng_state(state.get('rng'))
        self._saved_sampler_state = state.get('sampler')
        self.logger.info(f'resumed from {checkpoint}: {self._iter} iterations completed')

    def _own_rng_state(self, states: list[dict] | None) -> dict | None:
        rank, world_size = get_dist_info()
        if states is None:
            return None
        if len(states) != world_size:
            warnings.warn(f'The checkpoint was written by {len(states)} processes and this run '
                          f'has {world_size}: generator states are not restored, so the run '
                          'continues correctly but not bit-identically.', stacklevel=3)
            return None
        return states[rank]

    # --- the loop -----------------------------------------------------------------------

    def call_hook(self, fn_name: str) -> None:
        """mmcv's hook call, except after the last iteration: the final checkpoint is saved
        before every other hook, so a crash in the final evaluation (an undecodable val image,
        say) costs no training. ``--resume-from auto`` then resumes at the end and evaluates
        again (``StreamingEvalHook.after_run``). Evaluation restores the generators it uses,
        so the saved state is the same either way."""
        if fn_name != 'after_train_iter' or self.iter + 1 < self._max_iters:
            return super().call_hook(fn_name)
        first = [h for h in self._hooks if isinstance(h, CheckpointHook)]
        for hook in first + [h for h in self._hooks if h not in first]:
            getattr(hook, fn_name)(self)

    def run(self, data_loaders: list, workflow: list, max_iters: int | None = None,
            **kwargs: Any) -> None:
        for loader, (mode, _) in zip(data_loaders, workflow):
            if mode == 'train':
                self._start_stream_at_current_iter(loader)
        super().run(data_loaders, workflow, max_iters=max_iters, **kwargs)

    def _start_stream_at_current_iter(self, loader: Any) -> None:
        sampler = getattr(loader, 'sampler', None)
        if not isinstance(sampler, ResumableInfiniteSampler):
            warnings.warn('The training loader does not use ResumableInfiniteSampler '
                          '(build_resumable_dataloader): a resumed run restarts its epoch and '
                          'is not identical to an uninterrupted one.', stacklevel=3)
            return
        if self._saved_sampler_state not in (None, sampler.state_dict()):
            warnings.warn(f'The training stream changed since the checkpoint '
                          f'({self._saved_sampler_state} -> {sampler.state_dict()}): the run '
                          'continues but not bit-identically.', stacklevel=3)
        sampler.set_start_iter(self.iter)
        self._train_sampler = sampler

    def train(self, data_loader: Any, **kwargs: Any) -> None:
        if self._rng_to_restore is not None:
            restore_rng_state(self._rng_to_restore)
            self._rng_to_restore = None
        buffers = list(self.module.buffers())
        self._iteration_start = _IterationStart(
            capture_rng_state(), _snapshot(buffers, self._iteration_start),
            [{k: v for k, v in g.items() if k != 'params'} for g in self.optimizer.param_groups])
        try:
            super().train(data_loader, **kwargs)
        except NonFiniteLossError as error:
            path = self._save_last_good_state(buffers)
            self.logger.error(f'{error} Last good state ({self.iter} iterations): {path}')
            raise

    def _save_last_good_state(self, buffers: list[torch.Tensor]) -> str:
        """Undo what the failing iteration changed before its loss was checked (buffers such
        as BatchNorm statistics, the learning rate, the generators), then save."""
        start = self._iteration_start
        with torch.no_grad():
            for buffer, saved in zip(buffers, start.buffers):
                buffer.copy_(saved)
        for group, saved in zip(self.optimizer.param_groups, start.hyperparams):
            group.update(saved)
        out_dir = next((h.out_dir for h in self.hooks
                        if isinstance(h, CheckpointHook) and h.out_dir), self.work_dir)
        return self._save(osp.join(out_dir, f'iter_{self.iter}.pth'), completed=self.iter,
                          rng=start.rng)


def _snapshot(buffers: list[torch.Tensor], previous: _IterationStart | None) -> list[torch.Tensor]:
    """Copies of ``buffers``, reusing the previous iteration's storage (one fused copy)."""
    if previous is not None and len(previous.buffers) == len(buffers) and all(
            a.shape == b.shape and a.dtype == b.dtype and a.device == b.device
            for a, b in zip(previous.buffers, buffers)):
        if buffers:
            torch._foreach_copy_(previous.buffers, buffers)
        return previous.buffers
    return [b.detach().clone() for b in buffers]


def _gather(obj: Any) -> list:
    """``obj`` of every rank, in rank order (``[obj]`` without a process group)."""
    if get_dist_info()[1] == 1:
        return [obj]
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered
