"""A tqdm progress bar over the training iterations, with ETA."""
from __future__ import annotations

import sys

from mmcv.runner import HOOKS, Hook
from tqdm import tqdm

from mmseg_uda.runtime import is_main_process


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """Iterations done / total, rate and ETA; the loss of the last iteration as postfix.

    Only on rank 0. Without a terminal (log files, SLURM) it redraws at most every
    ``file_interval_s`` seconds so the log is not flooded.
    """

    def __init__(self, file_interval_s: float = 60.0) -> None:
        self.file_interval_s = file_interval_s
        self.bar: tqdm | None = None

    def before_run(self, runner) -> None:
        if not is_main_process():
            return
        interactive = sys.stderr.isatty()
        self.bar = tqdm(total=runner.max_iters, initial=runner.iter, desc='train', unit='it',
                        dynamic_ncols=True,
                        mininterval=0.5 if interactive else self.file_interval_s)

    def after_train_iter(self, runner) -> None:
        if self.bar is None:
            return
        loss = runner.outputs.get('log_vars', {}).get('loss')
        if loss is not None:
            self.bar.set_postfix(loss=f'{loss:.3f}', refresh=False)
        self.bar.update(1)

    def after_run(self, runner) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
