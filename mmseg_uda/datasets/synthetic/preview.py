"""A picture of a few samples of each domain beside their train-id labels."""
from __future__ import annotations

import cv2
import numpy as np

from ..label_maps import CLASSES
from .io import code_to_trainid


def trainid_colours() -> np.ndarray:
    """(256, 3) uint8: Cityscapes' train-id colours, black for ignore."""
    from cityscapesscripts.helpers.labels import labels
    pal = np.zeros((256, 3), np.uint8)
    for lb in labels:
        if 0 <= lb.trainId < len(CLASSES):
            pal[lb.trainId] = lb.color
    return pal


def preview(rows: list[tuple[str, str, list[tuple[np.ndarray, np.ndarray]]]],
            tile_width: int = 256) -> np.ndarray:
    """Grid image (RGB): one row per (title, domain, [(image, codes), ...]); each sample is
    shown as image | colour-coded train ids (black: ignored)."""
    pal = trainid_colours()
    out_rows = []
    for title, domain, samples in rows:
        tiles = []
        for img, code in samples:
            h = round(img.shape[0] * tile_width / img.shape[1])
            tiles.append(cv2.resize(img, (tile_width, h), interpolation=cv2.INTER_AREA))
            lab = pal[code_to_trainid(code, domain)]
            tiles.append(cv2.resize(lab, (tile_width, h), interpolation=cv2.INTER_NEAREST))
        row = np.concatenate(tiles, axis=1)
        band = np.full((16, row.shape[1], 3), 255, np.uint8)
        cv2.putText(band, title, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                    cv2.LINE_AA)
        out_rows.append(np.concatenate([band, row], axis=0))
    width = max(r.shape[1] for r in out_rows)
    out_rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255)
                for r in out_rows]
    return np.concatenate(out_rows, axis=0)
