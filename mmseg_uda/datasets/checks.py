"""Early, actionable errors for data that was not prepared."""
from __future__ import annotations

import os
import os.path as osp

# A PNG stream ends with an empty IEND chunk: length 0, type IEND, then its 4-byte CRC.
_PNG_END = b'\x00\x00\x00\x00IEND'


def png_data_complete(data) -> bool:
    """Whether the bytes of a PNG (or their last 12) end with its IEND chunk; OpenCV (some
    builds) and PIL with LOAD_TRUNCATED_IMAGES decode a cut stream without an error."""
    return bytes(data[-12:-4]) == _PNG_END


def png_file_cut(path: str) -> bool:
    """Whether the file at ``path`` is a PNG without its IEND chunk (reads only its tail);
    False for other file types."""
    if not path.lower().endswith('.png'):
        return False
    try:
        with open(path, 'rb') as f:
            f.seek(-12, os.SEEK_END)
            return not png_data_complete(f.read(12))
    except OSError:  # shorter than 12 bytes, or unreadable
        return True


def require_converted_labels(dataset, converter: str) -> None:
    """Stop unless ``dataset`` found images and every ``*_labelTrainIds.png`` they need exists.

    ``converter`` names the script in ``tools/convert_datasets`` that writes the labels.
    """
    root = dataset.data_root or osp.dirname(dataset.img_dir.rstrip('/'))
    run = f'Run: python tools/convert_datasets/{converter}.py {root}'
    if not dataset.img_infos:
        raise FileNotFoundError(f'no *{dataset.img_suffix} images found in {dataset.img_dir}. '
                                'Check data_root and img_dir in the dataset config.')
    if dataset.ann_dir is None:
        return
    missing = [info['ann']['seg_map'] for info in dataset.img_infos
               if not osp.exists(osp.join(dataset.ann_dir, info['ann']['seg_map']))]
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} of {len(dataset.img_infos)} label files are missing in '
            f'{dataset.ann_dir}, e.g. {missing[0]}. {run}')


def require_split_file(split: str | None, data_root: str | None) -> None:
    """Stop, naming the command that writes it, when a data set's ``split`` file is missing (a
    semi-supervised partition: ``mmseg_uda.datasets.partitions``)."""
    if split is None:
        return
    path = split if osp.isabs(split) or not data_root else osp.join(data_root, split)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'split file {path} does not exist. A semi-supervised partition is written by '
            f'`python tools/make_partition.py --data-root {data_root or "DATA_ROOT"} '
            '--fraction D [--seed S | --split-file LIST]` (run_experiments.py writes the '
            'partitions its runs need before training).')
