"""Convert a pretrained backbone file, or a DAFormer/HRDA/MIC checkpoint, to this project's names.

The configs load SegFormer / timm / torchvision files directly (``model.pretrained``), so
converting is optional: use it to inspect a file, to check it against a config before a long
run, or to hand an mmseg-layout file to other mmseg tools.

    python tools/convert_pretrained.py mit pretrained/mit_b5.pth pretrained/mit_b5_mmseg.pth
    python tools/convert_pretrained.py resnet resnet101c.pth pretrained/resnet101_v1c.pth \
        --check configs/_base_/models/deeplabv2red_r101v1c.py

``--check CONFIG`` builds the config's backbone and loads the converted file into it,
printing which keys were missing or unexpected (exit status 1 if it does not fit).

Whole checkpoints of DAFormer, HRDA and MIC (a DACS checkpoint with ``model.``, ``ema_model.``
and ``imnet_model.``, or a bare segmentor), and back (``--reverse``: a checkpoint DAFormer's
code loads):

    python tools/convert_pretrained.py daformer daformer_gta.pth work_dirs/daformer_gta.pth \
        --check configs/generated/exp40/<config>.json
    python tools/convert_pretrained.py daformer work_dirs/run/iter_40000.pth for_daformer.pth \
        --reverse

``tools/test.py`` and ``load_from`` convert DAFormer-layout checkpoints themselves; the
converted file is for other tools and for inspection.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch
from mmcv import Config
from mmseg.models import build_backbone

import mmseg_uda  # noqa: F401  (registers the models, applies compat)
from mmseg_uda.fileio import atomic_write
from mmseg_uda.models.pretrained import ARCHITECTURES, load_pretrained, read_checkpoint


def save_atomically(obj: dict, path: str) -> None:
    """``torch.save`` that never leaves a half-written file (:mod:`mmseg_uda.fileio`)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, lambda f: torch.save(obj, f))


def convert_training_checkpoint(src: str, dst: str, reverse: bool, check: str | None) -> int:
    """A whole DAFormer/HRDA/MIC checkpoint to this project's names, or back."""
    from mmseg_uda.apis.test import (
        build_test_segmentor,
        check_state_fits,
        is_loss_buffer,
        read_training_checkpoint,
        student_state_dict,
    )
    from mmseg_uda.models.daformer_checkpoints import from_daformer, to_daformer

    checkpoint = read_training_checkpoint(src)
    state = {k: v for k, v in checkpoint.get('state_dict', checkpoint).items()
             if torch.is_tensor(v)}
    converted, summary = (to_daformer if reverse else from_daformer)(state)
    meta = dict(checkpoint.get('meta') or {}, converted_from=src, conversion=summary.direction)
    save_atomically({'state_dict': converted, 'meta': meta}, dst)
    print(summary.summary())
    print(f'wrote {dst}')
    if check and not reverse:
        model = build_test_segmentor(Config.fromfile(check).model)
        try:
            check_state_fits(model.state_dict(), student_state_dict(converted), dst,
                             optional=is_loss_buffer)
        except ValueError as err:
            print(f'does not fit {check}: {err}', file=sys.stderr)
            return 1
        print(f'the student fits {check} exactly')
    return 0


def main(argv: list[str] | None = None) -> int:
    archs = {a.name: a for a in ARCHITECTURES}
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('arch', choices=sorted(archs) + ['daformer'],
                        help='backbone family of the file, or daformer for a whole '
                             'DAFormer/HRDA/MIC checkpoint')
    parser.add_argument('src', help='pretrained file (SegFormer, timm, torchvision, open-mmlab) '
                                    'or DAFormer/HRDA/MIC checkpoint')
    parser.add_argument('dst', help='output file')
    parser.add_argument('--check', metavar='CONFIG',
                        help='model config whose backbone (daformer: whole segmentor) the '
                             'converted file must fit')
    parser.add_argument('--reverse', action='store_true',
                        help='daformer only: this project\'s names -> DAFormer\'s')
    args = parser.parse_args(argv)
    if args.arch == 'daformer':
        return convert_training_checkpoint(args.src, args.dst, args.reverse, args.check)
    if args.reverse:
        parser.error('--reverse converts whole checkpoints only (arch daformer)')

    arch = archs[args.arch]
    state = read_checkpoint(args.src)
    source_format = arch.source_format(state)
    converted = arch.convert(state)
    save_atomically({'state_dict': converted,
                     'meta': {'converted_from': args.src, 'source_format': source_format}},
                    args.dst)
    print(f'{args.src} ({source_format}, {len(state)} tensors) -> {args.dst} '
          f'({len(converted)} tensors, mmseg names)')
    if args.check:
        backbone = build_backbone(Config.fromfile(args.check).model.backbone)
        try:
            report = load_pretrained(backbone, args.dst)
        except ValueError as err:
            print(f'does not fit {args.check}: {err}', file=sys.stderr)
            return 1
        return 1 if report.missing else 0
    return 0


if __name__ == '__main__':
    sys.exit(main())
