"""Semi-supervised partitions of Cityscapes train: which images keep their labels.

A partition is two files in mmseg's ``split`` format (one image per line, relative to the image
folder, without the ``_leftImg8bit.png`` suffix), which ``CityscapesDataset(split=...)`` reads:
``<data_root>/splits/<name>/labelled.txt`` and ``unlabelled.txt``, and beside them the
labelled images' entries of the converter's ``sample_class_stats.json``: the only class counts
a semi-supervised run may know (BLV's, before Eq. 4 re-estimates them). A partition is either drawn
from a seed (:func:`random_partition`: ``ceil(N / denominator)`` images, uniformly without
replacement) or read from a published list of labelled images (:func:`read_image_list`), for
example U2PL's ``data/splits/cityscapes/186/labeled.txt``. Published lists differ between
codebases (U2PL's, CPS's and others' 1/16 sets are different images), so mIoUs are comparable
only on the same list.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
from collections.abc import Sequence
from pathlib import Path

from blv_patches.class_frequency import STATS_FILE
from mmseg_uda.fileio import atomic_write, write_json_atomic

IMG_DIR = 'leftImg8bit/train'
IMG_SUFFIX = '_leftImg8bit.png'
LABEL_SUFFIX = '_gtFine_labelTrainIds.png'
SPLITS_DIR = 'splits'
PARTS = ('labelled', 'unlabelled')


def partition_name(denominator: int, source: str) -> str:
    """A partition's folder below ``<data_root>/splits``: ``1-16_seed0``, ``1-16_file-<sha>``."""
    return f'1-{denominator}_{source}'


def split_path(denominator: int, source: str, part: str) -> str:
    """A partition file relative to the data root (``CityscapesDataset``'s ``split``)."""
    if part not in PARTS:
        raise ValueError(f'part={part!r}; choose one of {PARTS}')
    return f'{SPLITS_DIR}/{partition_name(denominator, source)}/{part}.txt'


def train_images(data_root: str | os.PathLike, img_dir: str = IMG_DIR,
                 suffix: str = IMG_SUFFIX) -> list[str]:
    """Every training image of a Cityscapes-layout root, as split entries, sorted."""
    folder = Path(data_root) / img_dir
    if not folder.is_dir():
        raise FileNotFoundError(f'{folder}: no Cityscapes training images here; point '
                                '--data-root at a Cityscapes root (leftImg8bit/train/<city>/...)')
    names = sorted(str(p.relative_to(folder))[:-len(suffix)]
                   for p in folder.rglob(f'*{suffix}'))
    if not names:
        raise FileNotFoundError(f'{folder}: no *{suffix} images')
    return names


def labelled_count(num_images: int, denominator: int) -> int:
    """The labelled images of a 1/denominator partition: 186, 372, 744, 1488 of Cityscapes'
    2975 for 1/16, 1/8, 1/4, 1/2 (the counts of the paper's Table 2)."""
    return math.ceil(num_images / denominator)


def random_partition(names: Sequence[str], denominator: int, seed: int
                     ) -> tuple[list[str], list[str]]:
    """(labelled, unlabelled): ``labelled_count`` names drawn uniformly from ``seed``, the rest
    unlabelled, both sorted. The same names and seed give the same partition on any machine."""
    names = sorted(names)
    labelled = set(random.Random(seed).sample(names, labelled_count(len(names), denominator)))
    return sorted(labelled), [n for n in names if n not in labelled]


def read_image_list(path: str | os.PathLike) -> list[str]:
    """A published list of images as split entries. Lines may be mmseg split entries
    (``aachen/aachen_000000_000019``) or paths below the Cityscapes root, as U2PL's and CPS's
    lists have them (``leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png``, maybe
    followed by the label's path)."""
    entries = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        entry = line.split()[0]
        if entry.startswith(IMG_DIR + '/'):
            entry = entry[len(IMG_DIR) + 1:]
        if entry.endswith(IMG_SUFFIX):
            entry = entry[:-len(IMG_SUFFIX)]
        if '/' not in entry:
            raise ValueError(f'{path}:{number}: {line!r} is not a Cityscapes training image '
                             '(expected <city>/<city>_<seq>_<frame>, optionally with the '
                             f'{IMG_DIR}/ prefix and {IMG_SUFFIX} suffix)')
        entries.append(entry)
    return entries


def file_source(path: str | os.PathLike) -> str:
    """The partition source of a published list: ``file-`` and its content's hash."""
    return 'file-' + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:8]


def partition_from_list(names: Sequence[str], labelled: Sequence[str], denominator: int,
                        path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(labelled, unlabelled) from a published labelled list, checked against the data."""
    known = set(names)
    missing = [n for n in labelled if n not in known]
    if missing:
        raise ValueError(f'{path}: {len(missing)} of its images are not in the training set, '
                         f'e.g. {missing[:3]}')
    if len(set(labelled)) != len(labelled):
        raise ValueError(f'{path} lists some images twice')
    expected = labelled_count(len(names), denominator)
    if len(labelled) != expected:
        raise ValueError(f'{path} lists {len(labelled)} images; the 1/{denominator} partition '
                         f'of these {len(names)} training images has {expected}')
    chosen = set(labelled)
    return sorted(chosen), [n for n in sorted(names) if n not in chosen]


def labelled_stats(data_root: str | os.PathLike, labelled: Sequence[str]) -> list[dict]:
    """The entries of ``<data_root>/sample_class_stats.json`` of the labelled images."""
    path = Path(data_root) / STATS_FILE
    if not path.is_file():
        raise FileNotFoundError(f'{path} is missing; a partition keeps the class statistics of '
                                f'its labelled images. Run: python tools/convert_datasets/'
                                f'cityscapes.py {data_root}')
    wanted = {f'{name}{LABEL_SUFFIX}' for name in labelled}
    entries = [e for e in json.loads(path.read_text())
               if '/'.join(Path(e['file']).parts[-2:]) in wanted]
    if len(entries) != len(wanted):
        raise ValueError(f'{path} has statistics of {len(entries)} of the {len(wanted)} '
                         'labelled images; re-run the converter with --overwrite')
    return entries


def write_partition(data_root: str | os.PathLike, denominator: int, seed: int = 0,
                    split_file: str | os.PathLike | None = None) -> Path:
    """Write ``<data_root>/splits/<name>/{labelled,unlabelled}.txt`` (atomically) and return
    the folder. Drawn from ``seed``, or, with ``split_file``, read from that published list."""
    names = train_images(data_root)
    if split_file is None:
        labelled, unlabelled = random_partition(names, denominator, seed)
        source = f'seed{seed}'
    else:
        labelled, unlabelled = partition_from_list(names, read_image_list(split_file),
                                                   denominator, split_file)
        source = file_source(split_file)
    folder = Path(data_root) / SPLITS_DIR / partition_name(denominator, source)
    folder.mkdir(parents=True, exist_ok=True)
    stats = labelled_stats(data_root, labelled)
    for part, entries in zip(PARTS, (labelled, unlabelled)):
        text = ''.join(f'{e}\n' for e in entries).encode()
        atomic_write(folder / f'{part}.txt', lambda f, text=text: f.write(text))
    write_json_atomic(stats, folder / STATS_FILE)
    return folder
