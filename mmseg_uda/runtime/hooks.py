"""Hooks of ``ResumableIterBasedRunner``."""
from __future__ import annotations

import os
import sys

from mmcv.runner import HOOKS, CheckpointHook, Hook

from .checkpoint import prune_checkpoints, remove_stale_temp_files
from .dist import is_main_process


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmcv's ``CheckpointHook`` (same config keys) with atomic writes and keep-last-K.

    ``max_keep_ckpts=K`` keeps the K newest ``iter_N.pth`` files actually present (mmcv's hook
    stops deleting at the first gap in the interval grid). Every rank runs the hook, because
    the runner gathers the ranks' generator states; rank 0 writes. Stale temporary files of
    killed saves are removed when training starts.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.args.get('filename_tmpl', 'iter_{}.pth') != 'iter_{}.pth':
            raise ValueError('checkpoint_config.filename_tmpl must be "iter_{}.pth": resume '
                             'and keep-last-K find checkpoints by that name.')
        if self.by_epoch:
            raise ValueError('checkpoint_config.by_epoch must be False with '
                             'ResumableIterBasedRunner (training is iteration based).')

    def before_run(self, runner) -> None:
        super().before_run(runner)
        if is_main_process():
            remove_stale_temp_files(self.out_dir)

    def _save_checkpoint(self, runner) -> None:  # not master_only: see the class docstring
        path = runner.save_checkpoint(self.out_dir, save_optimizer=self.save_optimizer,
                                      **self.args)
        if not is_main_process():
            return
        if runner.meta is not None:
            runner.meta.setdefault('hook_msgs', dict())['last_ckpt'] = path
        prune_checkpoints(self.out_dir, self.max_keep_ckpts, current=path)


# Exit status of a simulated pre-emption (EX_TEMPFAIL: "try again", as a requeued job would).
PREEMPTED_EXIT_CODE = 75


@HOOKS.register_module()
class ExitAfterIterHook(Hook):
    """Ends the process right after iteration ``iteration`` (1-based), as a pre-emption would:
    no after-run hooks, no final evaluation, exit status 75. For self-tests of resume
    (``tools/gpu_check.py``); register it with priority 'LOWEST', after the checkpoint hook."""

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def after_train_iter(self, runner) -> None:
        if runner.iter + 1 == self.iteration:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(PREEMPTED_EXIT_CODE)
