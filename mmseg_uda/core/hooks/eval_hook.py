"""Evaluation during training from a streaming confusion matrix, and final_metrics.json."""
from __future__ import annotations

import os.path as osp
from collections.abc import Mapping, Sequence
from typing import Any

from mmcv.runner import HOOKS, Hook, get_dist_info

from mmseg_uda.fileio import write_json_atomic
from mmseg_uda.runtime import (
    broadcast_buffers,
    capture_rng_state,
    is_main_process,
    restore_rng_state,
)

from ..evaluation import format_iou_table, stream_evaluate, summarize_iou, unwrap

# The results file of a finished run (docs/experiments.md); the one definition of its name.
FINAL_METRICS = 'final_metrics.json'


def final_metrics_record(summary: Mapping[str, Any], iteration: int,
                         exp_meta: Mapping | None) -> dict:
    """The ``final_metrics.json`` content (the results contract in docs/experiments.md):
    exp_meta, iter, per-class IoU and the mIoUs, all IoUs in percent (null for a class absent
    from labels and predictions)."""
    return {'exp_meta': dict(exp_meta) if exp_meta is not None else None,
            'iter': int(iteration), **summary}


@HOOKS.register_module()
class StreamingEvalHook(Hook):
    """Every ``interval`` iterations and after the last one: mIoU of the model on
    ``dataloader``, printed as a table and logged (``mIoU``, ``mIoU16``, ``mIoU13``,
    ``IoU.<class>``, as fractions like mmseg's EvalHook) to the text and TensorBoard loggers.
    At the end of the run it writes ``<work_dir>/final_metrics.json``.

    Under DDP each rank evaluates its shard of the set (``build_val_dataloader(shard=True)``)
    with rank 0's BatchNorm statistics, and the confusion matrices are summed: the result is
    that of one process evaluating everything. Evaluation leaves the global random generators
    as it found them, so how often a run evaluates does not change how it trains.
    """

    def __init__(self, dataloader, interval: int,
                 class_subsets: Mapping[str, Sequence[int]] | None = None,
                 exp_meta: Mapping | None = None, progress: bool = True) -> None:
        self.dataloader = dataloader
        self.interval = interval
        self.class_subsets = dict(class_subsets or {})
        self.exp_meta = exp_meta
        self.progress = progress
        self.last_summary: dict | None = None
        self.last_iter: int | None = None

    def after_train_iter(self, runner) -> None:
        if self.every_n_iters(runner, self.interval) or self.is_last_iter(runner):
            self.evaluate(runner, runner.iter + 1)

    def after_run(self, runner) -> None:
        if self.last_iter != runner.iter:  # e.g. resumed from the final checkpoint
            self.evaluate(runner, runner.iter)
        if is_main_process():
            path = osp.join(runner.work_dir, FINAL_METRICS)
            write_json_atomic(final_metrics_record(self.last_summary, runner.iter,
                                                   self.exp_meta), path)
            runner.logger.info(f'final metrics written to {path}')

    def evaluate(self, runner, iteration: int) -> dict:
        rank = get_dist_info()[0]
        rng = capture_rng_state()
        model = unwrap(runner.model)
        # The evaluated segmentor's BN statistics differ between ranks: use rank 0's.
        broadcast_buffers(model.get_model() if hasattr(model, 'get_model') else model)
        confusion = stream_evaluate(runner.model, self.dataloader,
                                    progress=self.progress and rank == 0)
        confusion.all_reduce()
        restore_rng_state(rng)
        summary = summarize_iou(confusion.iou(), self.dataloader.dataset.CLASSES,
                                self.class_subsets)
        if rank == 0:
            runner.logger.info(f'iter {iteration}, {len(self.dataloader.dataset)} images:\n'
                               + format_iou_table(summary))
            self._log(runner, summary)
        self.last_summary = summary
        self.last_iter = iteration
        return summary

    @staticmethod
    def _log(runner, summary: Mapping[str, Any]) -> None:
        output = runner.log_buffer.output

        def fraction(value):
            return float('nan') if value is None else value / 100.0

        output['mIoU'] = fraction(summary['miou'])
        for key in ('miou16', 'miou13'):
            if key in summary:
                output['mIoU' + key[4:]] = fraction(summary[key])
        for name, value in summary['per_class_iou'].items():
            output[f'IoU.{name}'] = fraction(value)
        runner.log_buffer.ready = True
