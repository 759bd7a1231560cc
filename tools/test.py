"""Evaluate the student of a checkpoint: per-class IoU, mIoU19 (+ mIoU16/13 for SYNTHIA).

    python tools/test.py CONFIG CHECKPOINT --eval mIoU [--show-dir DIR] [--out JSON]
        [--device cuda|cpu]

The mIoU comes from a confusion matrix accumulated on the device, so memory stays flat over
any number of images. CONFIG is the training config (the copy in the work dir works).
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from mmcv import Config, DictAction  # noqa: E402
from mmseg.utils import build_dp  # noqa: E402

import mmseg_uda  # noqa: E402,F401  (registers models, datasets, losses)
from mmseg_uda.apis import build_val_dataloader, load_student_checkpoint  # noqa: E402
from mmseg_uda.apis.test import build_test_segmentor  # noqa: E402
from mmseg_uda.compat import configure_for_device  # noqa: E402
from mmseg_uda.config_check import check_option_keys  # noqa: E402
from mmseg_uda.core.evaluation import (  # noqa: E402
    evaluation_protocol,
    format_iou_table,
    stream_evaluate,
    summarize_iou,
)
from mmseg_uda.core.hooks import final_metrics_record  # noqa: E402
from mmseg_uda.fileio import write_json_atomic  # noqa: E402
from mmseg_uda.runtime.device import configure_fp32_math  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the training config')
    parser.add_argument('checkpoint', help='a checkpoint written by tools/train.py')
    parser.add_argument('--eval', nargs='+', choices=['mIoU'], help='metrics to compute')
    parser.add_argument('--show-dir', help='write colour predictions into this folder')
    parser.add_argument('--out', help='write the metrics as JSON (final_metrics.json format)')
    parser.add_argument('--device', choices=['cuda', 'cpu'],
                        help="where to evaluate (default: the config's device, else cuda)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. data.test.data_root=...')
    args = parser.parse_args(argv)
    if not args.eval and not args.show_dir:
        parser.error('nothing to do: pass --eval mIoU and/or --show-dir DIR')
    return args


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    check_option_keys(cfg, args.cfg_options)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    # One process on one device, whatever the training run used (a DDP run's config lists
    # every rank's GPU in gpu_ids; MMDataParallel takes exactly one).
    cfg.gpu_ids = [0]
    configure_for_device(cfg, args.device)
    configure_fp32_math(cfg.get('tf32', True))
    model = build_test_segmentor(cfg.model)
    meta = load_student_checkpoint(model, args.checkpoint)
    loader = build_val_dataloader(cfg, cfg.data.test)
    model.CLASSES = loader.dataset.CLASSES
    model.PALETTE = loader.dataset.PALETTE
    model = build_dp(model, cfg.device, device_ids=cfg.gpu_ids)

    confusion = stream_evaluate(model, loader, show_dir=args.show_dir)
    if not args.eval:
        return None
    subsets = evaluation_protocol(cfg).subsets or None
    summary = summarize_iou(confusion.iou(), loader.dataset.CLASSES, subsets)
    print(f'{args.checkpoint}: {len(loader.dataset)} images')
    print(format_iou_table(summary))
    record = final_metrics_record(summary, meta.get('iter', -1), cfg.get('exp_meta'))
    if args.out:
        write_json_atomic(record, args.out)
    return record


if __name__ == '__main__':
    main()
