"""Convert a pretrained backbone file to mmseg 0.30's key names.

The configs load SegFormer / timm / torchvision files directly (``model.pretrained``), so
converting is optional: use it to inspect a file, to check it against a config before a long
run, or to hand an mmseg-layout file to other mmseg tools.

    python tools/convert_pretrained.py mit pretrained/mit_b5.pth pretrained/mit_b5_mmseg.pth
    python tools/convert_pretrained.py resnet resnet101c.pth pretrained/resnet101_v1c.pth \
        --check configs/_base_/models/deeplabv2red_r101v1c.py

``--check CONFIG`` builds the config's backbone and loads the converted file into it,
printing which keys were missing or unexpected (exit status 1 if it does not fit).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import torch
from mmcv import Config
from mmseg.models import build_backbone

import mmseg_uda  # noqa: F401  (registers the models, applies compat)
from mmseg_uda.models.pretrained import ARCHITECTURES, load_pretrained, read_checkpoint


def save_atomically(obj: dict, path: str) -> None:
    """Write to a temporary file beside ``path``, then rename: never a half-written file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    archs = {a.name: a for a in ARCHITECTURES}
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('arch', choices=sorted(archs), help='backbone family of the file')
    parser.add_argument('src', help='pretrained file (SegFormer, timm, torchvision, open-mmlab)')
    parser.add_argument('dst', help='output file with mmseg key names')
    parser.add_argument('--check', metavar='CONFIG',
                        help='model config whose backbone the converted file must fit')
    args = parser.parse_args(argv)

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
