"""Decode every image and label file of a data set and list the ones that are broken.

    python tools/check_data.py DATA_ROOT [--nproc 8]

Run it before a 16-hour job: a file that cannot be decoded otherwise stops training (or the
final evaluation) when the loader first reaches it. Every ``.png``/``.jpg`` below DATA_ROOT
(GTA5, SYNTHIA, Cityscapes layouts alike; hidden files skipped) is read and fully decoded with
OpenCV, as the training pipeline does, and a PNG must end with its IEND chunk (OpenCV decodes
some cut streams without an error). Exit status 0 when every file decodes, 1 otherwise, with
the bad files listed.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

import cv2
import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from mmseg_uda.datasets.checks import png_data_complete  # noqa: E402

EXTENSIONS = ('.png', '.jpg', '.jpeg')


def find_files(root: str) -> list[str]:
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        out += [osp.join(folder, f) for f in sorted(files)
                if f.lower().endswith(EXTENSIONS) and not f.startswith('.')]
    return out


def problem(path: str) -> str | None:
    """Why ``path`` cannot be used, or None."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        return f'unreadable ({err})'
    if data.size == 0:
        return 'empty file'
    if path.lower().endswith('.png') and not png_data_complete(data):
        return 'truncated PNG (no IEND chunk)'
    if cv2.imdecode(data, cv2.IMREAD_UNCHANGED) is None:
        return 'OpenCV cannot decode it'
    return None


def _check(path: str) -> tuple[str, str | None]:
    return path, problem(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('data_root')
    ap.add_argument('--nproc', type=int, default=1, help='worker processes')
    args = ap.parse_args(argv)
    if not osp.isdir(args.data_root):
        print(f'error: {args.data_root} is not a folder', file=sys.stderr)
        return 1
    files = find_files(args.data_root)
    if not files:
        print(f'error: no image files (.png, .jpg) below {args.data_root}', file=sys.stderr)
        return 1
    import mmcv
    if args.nproc > 1:
        results = mmcv.track_parallel_progress(_check, files, args.nproc, file=sys.stdout)
    else:
        results = mmcv.track_progress(_check, files, file=sys.stdout)
    bad = [(p, why) for p, why in results if why is not None]
    print(f'\n{len(files)} files checked below {args.data_root}: '
          f'{"all decode" if not bad else f"{len(bad)} broken"}')
    for path, why in bad:
        print(f'  {path}: {why}')
    if bad:
        print('Re-extract these files from the data set archives, then re-run the converter '
              '(it skips finished labels).')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
