"""Label conversion to train ids and the per-image class statistics that rare class sampling reads.

Used by ``tools/convert_datasets/{gta,synthia,cityscapes}.py``. Each converter pairs images with
raw labels, writes ``<label>_labelTrainIds.png`` beside every raw label (atomically, so an
interrupted run never leaves a half-written file), and writes into the data root:

- ``sample_class_stats.json``: ``[{"<train id>": pixels, ..., "file": <trainIds path>}, ...]``
- ``sample_class_stats_dict.json``: ``{<trainIds path>: {"<train id>": pixels, ...}}``
- ``samples_with_class.json``: ``{"<train id>": [[<trainIds path>, pixels], ...]}``

Pixel counts are taken at the label's own resolution; only classes present in an image appear.
"""
from __future__ import annotations

import os
import os.path as osp
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from blv_patches.class_frequency import STATS_FILE

from ..fileio import atomic_write, remove_stale_temp_files, write_json_atomic
from .checks import png_data_complete, png_file_cut
from .label_maps import CLASSES, IGNORE_INDEX, id_lut

TRAINIDS_SUFFIX = '_labelTrainIds.png'
NUM_CLASSES = len(CLASSES)


class ConversionError(RuntimeError):
    """Bad input to a converter; the message names the file or folder and what to do."""


@dataclass(frozen=True)
class LabelFormat:
    """How one data set stores its raw labels."""
    name: str
    id_to_trainid: dict[int, int]
    known_ids: frozenset[int]
    read: Callable[[str], np.ndarray]  # path -> 2-D array of raw ids


@dataclass(frozen=True)
class Options:
    overwrite: bool = False
    unknown_to_ignore: bool = False


def read_indexed_png(path: str) -> np.ndarray:
    """Raw ids of a palette ('P') or grayscale ('L') PNG, as GTA5 and Cityscapes store them."""
    try:
        with Image.open(path) as img:
            mode = img.mode
            ids = np.asarray(img)  # decodes the whole stream: truncation raises here
    except (OSError, SyntaxError, ValueError) as err:
        raise ConversionError(f'{path}: unreadable or truncated PNG ({err}). '
                              'Re-extract this file from the data set archive.') from err
    if mode not in ('P', 'L'):
        raise ConversionError(f'{path}: expected a palette (P) or grayscale (L) PNG of label '
                              f'ids, found mode {mode}. Is this a colour visualisation?')
    return ids


def read_synthia_png(path: str) -> np.ndarray:
    """Class ids of a SYNTHIA GT/LABELS PNG: 16-bit, class in the first (R) channel, which is
    the last one in OpenCV's BGR order."""
    import cv2

    with open(path, 'rb') as f:
        data = np.frombuffer(f.read(), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None or not png_data_complete(data):
        raise ConversionError(f'{path}: unreadable or truncated PNG. '
                              'Re-extract this file from the data set archive.')
    if img.ndim != 3:
        raise ConversionError(f'{path}: expected a multi-channel SYNTHIA label PNG '
                              f'(class id in the first channel), found shape {img.shape}.')
    if img.dtype != np.uint16:
        raise ConversionError(
            f'{path}: an {8 * img.dtype.itemsize}-bit colour PNG, but SYNTHIA labels '
            '(GT/LABELS) are 16-bit PNGs with the class id in the first channel. This looks '
            "like a colour visualisation (SYNTHIA's GT/COLOR): point the converter at the "
            'RAND-CITYSCAPES GT/LABELS files. (--unknown-to-ignore would not help: the colours '
            'are not class ids.)')
    return img[:, :, -1]


def trainids_path(label_path: str, raw_suffix: str = '.png') -> str:
    assert label_path.endswith(raw_suffix), label_path
    return label_path[:-len(raw_suffix)] + TRAINIDS_SUFFIX


def check_image(path: str, label_shape: tuple[int, int], label_path: str) -> None:
    """Stop unless the image at ``path`` is a complete image file of the label's size."""
    try:
        with Image.open(path) as img:
            size = img.size
            img.verify()  # every chunk and its checksum, without decoding the pixels
        if png_file_cut(path):
            raise ValueError('no IEND chunk: the file is cut short')
    except Exception as err:  # noqa: BLE001  PIL raises many kinds for broken files
        raise ConversionError(f'{path}: unreadable or truncated image ({err}). Re-extract '
                              'this file from the data set archive.') from None
    if (size[1], size[0]) != tuple(label_shape):
        raise ConversionError(f'{path}: image is {size[0]}x{size[1]} but its label {label_path} '
                              f'is {label_shape[1]}x{label_shape[0]}; every image must have '
                              'the size of its label. Re-extract both files.')


def convert_label(task: tuple[str, str, str | None], fmt: LabelFormat,
                  opts: Options) -> tuple[dict, int]:
    """Write the train-id PNG of one raw label (unless it exists and ``overwrite`` is off),
    after checking its image (``task[2]``, if given): readable and of the label's size.

    Returns the image's class statistics ``{"<train id>": pixels, "file": out_path}`` and the
    number of pixels whose unknown ids were mapped to ignore.
    """
    src, dst, image = task
    if osp.exists(dst) and not opts.overwrite:
        train_ids = read_indexed_png(dst)
        if image is not None:
            check_image(image, train_ids.shape, dst)
        return class_stats(train_ids, dst), 0
    raw = fmt.read(src)
    if image is not None:
        check_image(image, raw.shape, src)
    counts = np.bincount(raw.ravel(), minlength=256)
    unknown = [i for i in np.flatnonzero(counts) if int(i) not in fmt.known_ids]
    if unknown and not opts.unknown_to_ignore:
        raise ConversionError(
            f'{src}: label ids {[int(i) for i in unknown]} are not {fmt.name} ids '
            f'(known: {min(fmt.known_ids)}-{max(fmt.known_ids)}). Check that this is a '
            f'{fmt.name} label, or rerun with --unknown-to-ignore to map them to '
            f'{IGNORE_INDEX}.')
    lut = id_lut(fmt.id_to_trainid, size=max(256, len(counts)))
    train_ids = lut[raw]
    write_png_atomic(train_ids, dst)
    return class_stats(train_ids, dst), int(counts[unknown].sum())


def class_stats(train_ids: np.ndarray, file: str) -> dict:
    counts = np.bincount(train_ids.ravel(), minlength=256)[:NUM_CLASSES]
    stats: dict = {str(c): int(n) for c, n in enumerate(counts) if n > 0}
    stats['file'] = file
    return stats


def write_png_atomic(array: np.ndarray, path: str) -> None:
    """Write an 8-bit grayscale PNG via a temporary file, so ``path`` is whole or absent."""
    atomic_write(path, lambda f: Image.fromarray(array.astype(np.uint8), mode='L').save(f, 'PNG'))


def save_class_stats(out_dir: str, sample_class_stats: Sequence[dict]) -> None:
    """Write the three statistics files in the formats DAFormer's rare class sampling reads."""
    stats_dict = {s['file']: {k: v for k, v in s.items() if k != 'file'}
                  for s in sample_class_stats}
    samples_with_class: dict[str, list] = {}
    for file, stats in stats_dict.items():
        for c, n in stats.items():
            samples_with_class.setdefault(c, []).append([file, n])
    write_json_atomic(list(sample_class_stats), osp.join(out_dir, STATS_FILE))
    write_json_atomic(stats_dict, osp.join(out_dir, 'sample_class_stats_dict.json'))
    write_json_atomic(samples_with_class, osp.join(out_dir, 'samples_with_class.json'))


def require_dirs(*dirs: str, hint: str) -> None:
    for d in dirs:
        if not osp.isdir(d):
            raise ConversionError(f'folder {d} does not exist. {hint}')


def list_files(folder: str, suffix: str, exclude_suffix: str | None = None) -> list[str]:
    """Paths relative to ``folder`` of the files ending in ``suffix`` (recursive, sorted)."""
    out = []
    for root, _, files in os.walk(folder):
        for name in files:
            if name.startswith('.'):  # hidden: temporary files of interrupted writes, OS files
                continue
            if name.endswith(suffix) and not (exclude_suffix and name.endswith(exclude_suffix)):
                out.append(osp.relpath(osp.join(root, name), folder))
    return sorted(out)


def clean_stale_temp_files(*folders: str) -> None:
    """Remove (and say so) the temporary files an interrupted conversion left behind."""
    for folder in folders:
        for root, _, files in os.walk(folder):
            stale = remove_stale_temp_files(root)
            for name in files:  # versions before 2026-12 named them .tmp_XXXXXX.png
                if name.startswith('.tmp_'):
                    os.remove(osp.join(root, name))
                    stale.append(Path(root) / name)
            if stale:
                print(f'removed {len(stale)} temporary file(s) of an interrupted conversion '
                      f'from {root}: {[p.name for p in stale[:3]]}')


def pair_files(images: list[str], labels: list[str], img_dir: str, label_dir: str) -> None:
    """Stop unless every image has exactly one label and vice versa (keys are shared stems)."""
    if images == labels:
        return
    missing_label = sorted(set(images) - set(labels))
    missing_image = sorted(set(labels) - set(images))
    raise ConversionError(
        f'{len(images)} images in {img_dir} but {len(labels)} labels in {label_dir}. '
        f'Images without label: {missing_label[:5]}{" ..." if len(missing_label) > 5 else ""}; '
        f'labels without image: {missing_image[:5]}{" ..." if len(missing_image) > 5 else ""}. '
        'Re-extract the data set so that both folders are complete.')


def convert_all(tasks: list[tuple[str, str]], fmt: LabelFormat, opts: Options,
                nproc: int = 1) -> list[dict]:
    """Convert every (raw label, train-id label) pair with a progress bar; return the stats."""
    import multiprocessing

    import mmcv

    func = partial(convert_label, fmt=fmt, opts=opts)
    # ``file`` is passed so that the bar follows a redirected sys.stdout.
    if nproc > 1:
        # A pool that is always shut down, also when a label fails (mmcv's
        # track_parallel_progress leaves it to the interpreter's exit).
        bar = mmcv.ProgressBar(len(tasks), file=sys.stdout)
        results = []
        with multiprocessing.Pool(nproc) as pool:
            for result in pool.imap(func, tasks, chunksize=16):
                results.append(result)
                bar.update()
    else:
        results = mmcv.track_progress(func, tasks, file=sys.stdout)
    n_unknown = sum(r[1] for r in results)
    if n_unknown:
        print(f'\n{n_unknown} pixels with unknown {fmt.name} ids were mapped to {IGNORE_INDEX}.')
    return [r[0] for r in results]


# --- the three data sets' layouts --------------------------------------------------------------

def _stems(files: list[str], suffix: str) -> list[str]:
    return [f[:-len(suffix)] for f in files]


def _convert_flat(root: str, img_dir: str, label_dir: str, fmt: LabelFormat, opts: Options,
                  nproc: int, hint: str) -> list[dict]:
    """GTA5 and SYNTHIA: ``root/img_dir/NAME.png`` pairs with ``root/label_dir/NAME.png``."""
    img_dir, label_dir = osp.join(root, img_dir), osp.join(root, label_dir)
    require_dirs(img_dir, label_dir, hint=hint)
    clean_stale_temp_files(label_dir)
    images = list_files(img_dir, '.png')
    labels = list_files(label_dir, '.png', exclude_suffix=TRAINIDS_SUFFIX)
    if not labels:
        raise ConversionError(f'no label PNGs in {label_dir}. {hint}')
    pair_files(images, labels, img_dir, label_dir)
    tasks = [(osp.join(label_dir, f), trainids_path(osp.join(label_dir, f)),
              osp.join(img_dir, f)) for f in labels]
    stats = convert_all(tasks, fmt, opts, nproc)
    save_class_stats(root, stats)
    return stats


def gta_format() -> LabelFormat:
    from .label_maps import GTA_ID_TO_TRAINID, GTA_KNOWN_IDS
    return LabelFormat('GTA5', GTA_ID_TO_TRAINID, GTA_KNOWN_IDS, read_indexed_png)


def synthia_format() -> LabelFormat:
    from .label_maps import SYNTHIA_ID_TO_TRAINID, SYNTHIA_KNOWN_IDS
    return LabelFormat('SYNTHIA', SYNTHIA_ID_TO_TRAINID, SYNTHIA_KNOWN_IDS, read_synthia_png)


def cityscapes_format() -> LabelFormat:
    from .label_maps import CITYSCAPES_KNOWN_IDS, cityscapes_id_to_trainid
    return LabelFormat('Cityscapes', cityscapes_id_to_trainid(), CITYSCAPES_KNOWN_IDS,
                       read_indexed_png)


def convert_gta(root: str, opts: Options = Options(), nproc: int = 1) -> list[dict]:
    return _convert_flat(root, 'images', 'labels', gta_format(), opts, nproc,
                         hint='Expected the GTA5 layout ROOT/images/*.png, ROOT/labels/*.png.')


def convert_synthia(root: str, opts: Options = Options(), nproc: int = 1) -> list[dict]:
    return _convert_flat(root, 'RGB', osp.join('GT', 'LABELS'), synthia_format(), opts, nproc,
                         hint='Expected the SYNTHIA RAND-CITYSCAPES layout ROOT/RGB/*.png, '
                              'ROOT/GT/LABELS/*.png.')


CITYSCAPES_IMG_SUFFIX = '_leftImg8bit.png'
CITYSCAPES_LABEL_SUFFIX = '_gtFine_labelIds.png'


def convert_cityscapes(root: str, opts: Options = Options(), nproc: int = 1) -> list[dict]:
    """Convert train and val (and test, if present); statistics cover the train split only."""
    hint = ('Expected the Cityscapes layout ROOT/leftImg8bit/{train,val}/CITY/'
            '*_leftImg8bit.png and ROOT/gtFine/{train,val}/CITY/*_gtFine_labelIds.png.')
    splits = ['train', 'val'] + (['test'] if osp.isdir(osp.join(root, 'gtFine', 'test')) else [])
    tasks_by_split = {}
    for split in splits:
        img_dir = osp.join(root, 'leftImg8bit', split)
        label_dir = osp.join(root, 'gtFine', split)
        require_dirs(img_dir, label_dir, hint=hint)
        clean_stale_temp_files(label_dir)
        images = list_files(img_dir, CITYSCAPES_IMG_SUFFIX)
        labels = list_files(label_dir, CITYSCAPES_LABEL_SUFFIX)
        if not labels:
            raise ConversionError(f'no *{CITYSCAPES_LABEL_SUFFIX} in {label_dir}. {hint}')
        pair_files(_stems(images, CITYSCAPES_IMG_SUFFIX), _stems(labels, CITYSCAPES_LABEL_SUFFIX),
                   img_dir, label_dir)
        tasks_by_split[split] = [
            (osp.join(label_dir, f),
             trainids_path(osp.join(label_dir, f), raw_suffix='_labelIds.png'),
             osp.join(img_dir, f[:-len(CITYSCAPES_LABEL_SUFFIX)] + CITYSCAPES_IMG_SUFFIX))
            for f in labels]
    stats = {}
    for split, tasks in tasks_by_split.items():
        print(f'Cityscapes {split}:')
        stats[split] = convert_all(tasks, cityscapes_format(), opts, nproc)
    save_class_stats(root, stats['train'])
    return stats['train']


CONVERTERS = {'gta': convert_gta, 'synthia': convert_synthia, 'cityscapes': convert_cityscapes}


def main(dataset: str, description: str, argv: list[str] | None = None) -> int:
    """Command line of ``tools/convert_datasets/<dataset>.py``; returns the exit status."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('data_root', help=f'{dataset} root folder')
    parser.add_argument('--nproc', type=int, default=1, help='worker processes')
    parser.add_argument('--overwrite', action='store_true',
                        help='rewrite existing *_labelTrainIds.png (default: skip them)')
    parser.add_argument('--unknown-to-ignore', action='store_true',
                        help=f'map label ids outside the data set\'s table to {IGNORE_INDEX} '
                             'instead of stopping')
    args = parser.parse_args(argv)
    opts = Options(overwrite=args.overwrite, unknown_to_ignore=args.unknown_to_ignore)
    try:
        stats = CONVERTERS[dataset](args.data_root, opts, args.nproc)
    except ConversionError as err:
        print(f'\nerror: {err}', file=sys.stderr)
        return 1
    print(f'\n{len(stats)} labels converted; statistics written to {args.data_root}')
    return 0
