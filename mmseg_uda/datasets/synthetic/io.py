"""Write rendered samples in the on-disk layouts and raw label encodings of the real data sets.

- GTA5: ``gta/images/00001.png``, ``gta/labels/00001.png`` (palette PNG of Cityscapes label ids)
- SYNTHIA RAND-CITYSCAPES: ``synthia/RGB/0000000.png``, ``synthia/GT/LABELS/0000000.png``
  (16-bit, 3 channels: class id in the first, instance id in the second)
- Cityscapes: ``cityscapes/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` and
  ``cityscapes/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png``
"""
from __future__ import annotations

import os
import os.path as osp
from io import BytesIO

import cv2
import numpy as np
from PIL import Image

from ...fileio import atomic_write
from ..label_maps import GTA_ID_TO_TRAINID, IGNORE_INDEX, SYNTHIA_ID_TO_TRAINID, invert
from .scene import EGO, MARKING, RAIL, STATIC, UNLABELED

CITIES = {
    'train': ('aachen', 'bochum', 'bremen', 'cologne', 'darmstadt', 'dusseldorf', 'erfurt',
              'hamburg', 'hanover', 'jena', 'krefeld', 'monchengladbach', 'strasbourg',
              'stuttgart', 'tubingen', 'ulm', 'weimar', 'zurich'),
    'val': ('frankfurt', 'lindau', 'munster'),
}

# Cityscapes label ids of the void codes: 0 unlabeled, 1 ego vehicle, 4 static, 10 rail track;
# lane markings are part of the road (7).
_CS_VOID = {UNLABELED: 0, EGO: 1, STATIC: 4, MARKING: 7, RAIL: 10}
# SYNTHIA: 0 void, 22 lanemarking.
_SYNTHIA_VOID = {UNLABELED: 0, EGO: 0, STATIC: 0, MARKING: 22, RAIL: 0}


def _code_lut(train_to_raw: dict[int, int], void: dict[int, int], dtype) -> np.ndarray:
    lut = np.zeros(256, dtype)
    for code, raw in {**train_to_raw, **void}.items():
        lut[code] = raw
    return lut


CODE_TO_CITYSCAPES_ID = _code_lut(invert(GTA_ID_TO_TRAINID), _CS_VOID, np.uint8)
CODE_TO_SYNTHIA_ID = _code_lut(invert(SYNTHIA_ID_TO_TRAINID), _SYNTHIA_VOID, np.uint16)


def code_to_trainid(code: np.ndarray, domain: str = 'gta') -> np.ndarray:
    """What the converters will make of a code map (used for statistics and the preview)."""
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    lut[:19] = np.arange(19)
    if domain != 'synthia':
        lut[MARKING] = 0   # lane markings are road in GTA5 and Cityscapes, void in SYNTHIA
    return lut[code]


def _write(path: str, data: bytes) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    atomic_write(path, lambda f: f.write(data))


def _png(array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode('.png', array, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok
    return buf.tobytes()


def _rgb_png(img: np.ndarray) -> bytes:
    return _png(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


_CS_PALETTE: list[int] | None = None


def _cityscapes_palette() -> list[int]:
    """The Cityscapes label colours, indexed by label id, as GTA5's label PNGs carry them."""
    global _CS_PALETTE
    if _CS_PALETTE is None:
        from cityscapesscripts.helpers.labels import labels
        pal = np.zeros((256, 3), np.uint8)
        for lb in labels:
            if lb.id >= 0:
                pal[lb.id] = lb.color
        _CS_PALETTE = pal.ravel().tolist()
    return _CS_PALETTE


def write_gta(root: str, index: int, img: np.ndarray, code: np.ndarray, inst: np.ndarray) -> None:
    name = f'{index + 1:05d}.png'
    _write(osp.join(root, 'images', name), _rgb_png(img))
    label = Image.fromarray(CODE_TO_CITYSCAPES_ID[code], mode='P')
    label.putpalette(_cityscapes_palette())
    buf = BytesIO()
    label.save(buf, 'PNG', compress_level=1)
    _write(osp.join(root, 'labels', name), buf.getvalue())


def write_synthia(root: str, index: int, img: np.ndarray, code: np.ndarray,
                  inst: np.ndarray) -> None:
    name = f'{index:07d}.png'
    _write(osp.join(root, 'RGB', name), _rgb_png(img))
    bgr = np.dstack([np.zeros_like(inst), inst, CODE_TO_SYNTHIA_ID[code]]).astype(np.uint16)
    _write(osp.join(root, 'GT', 'LABELS', name), _png(bgr))


def cityscapes_stem(split: str, index: int, count: int) -> tuple[str, str]:
    """City folder and file stem of the ``index``-th of ``count`` images of a split."""
    cities = CITIES[split]
    city = cities[index * len(cities) // count]
    return city, f'{city}_{index:06d}_000019'


def write_cityscapes(root: str, split: str, index: int, count: int, img: np.ndarray,
                     code: np.ndarray, inst: np.ndarray) -> None:
    city, stem = cityscapes_stem(split, index, count)
    _write(osp.join(root, 'leftImg8bit', split, city, f'{stem}_leftImg8bit.png'), _rgb_png(img))
    _write(osp.join(root, 'gtFine', split, city, f'{stem}_gtFine_labelIds.png'),
           _png(CODE_TO_CITYSCAPES_ID[code]))
