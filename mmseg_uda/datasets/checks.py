"""Early, actionable errors for data that was not prepared."""
from __future__ import annotations

import os.path as osp


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
