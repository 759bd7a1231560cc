"""Raw label ids of GTA5, SYNTHIA and Cityscapes, and their maps to the 19 Cityscapes train ids.

The one place these tables live: the converters (``tools/convert_datasets``) read them to
write ``*_labelTrainIds.png``, and the synthetic generator reads them to write raw labels in
each data set's own encoding. Every id not in a map becomes ``IGNORE_INDEX``.
"""
from __future__ import annotations

import numpy as np

IGNORE_INDEX = 255

# The 19 evaluation classes, in train-id order (the names of mmseg's CityscapesDataset.CLASSES).
CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
           'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car', 'truck',
           'bus', 'train', 'motorcycle', 'bicycle')

# Cityscapes label ids -> train ids, as GTA5 labels use them. The Cityscapes converter reads the
# same map from cityscapesscripts' label table (``cityscapes_id_to_trainid``).
GTA_ID_TO_TRAINID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
    24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}
# Ids a Cityscapes-encoded label PNG may hold: 0 (unlabeled) ... 33 (bicycle). License plate
# (-1) is never drawn into a labelIds PNG.
CITYSCAPES_KNOWN_IDS = frozenset(range(34))
GTA_KNOWN_IDS = CITYSCAPES_KNOWN_IDS

# SYNTHIA RAND-CITYSCAPES class ids (first channel of GT/LABELS) -> train ids. Terrain (16),
# truck (18) and train (20) are in SYNTHIA's table but no image holds them.
SYNTHIA_ID_TO_TRAINID = {
    3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 16: 9, 1: 10,
    10: 11, 17: 12, 8: 13, 18: 14, 19: 15, 20: 16, 12: 17, 11: 18,
}
# 0 void, 13 parking-slot, 14 road-work, 22 lanemarking: known, mapped to ignore.
SYNTHIA_KNOWN_IDS = frozenset(range(23))

# --- the label space's facts, one home ----------------------------------------------------
# SYNTHIA has no terrain (9), truck (14) or train (16): mIoU16 leaves them out; mIoU13 also
# leaves out wall (3), fence (4) and pole (5) (the SYNTHIA→Cityscapes protocol of the DAFormer
# and HRDA papers).
SYNTHIA_ABSENT_TRAINIDS = (9, 14, 16)
SYNTHIA13_ALSO_LEFT_OUT = (3, 4, 5)
MIOU16_TRAINIDS = tuple(c for c in range(len(CLASSES)) if c not in SYNTHIA_ABSENT_TRAINIDS)
MIOU13_TRAINIDS = tuple(c for c in MIOU16_TRAINIDS if c not in SYNTHIA13_ALSO_LEFT_OUT)
# DAFormer's thing classes (feature distance): traffic light, traffic sign, person, rider, car,
# truck, bus, train, motorcycle, bicycle. configs/_base_/uda/dacs_a999_fdthings.py lists the
# same ids (a config cannot import them; a test checks that they agree).
THING_TRAINIDS = (6, 7, 11, 12, 13, 14, 15, 16, 17, 18)
# The tail classes of the tail mIoU: wall, traffic light, traffic sign, rider, truck, bus,
# train, motorcycle, bicycle (``tail_classes_paper`` of paper_tables.json; a test checks they
# agree).
TAIL_TRAINIDS = (3, 6, 7, 12, 14, 15, 16, 17, 18)


def cityscapes_id_to_trainid() -> dict[int, int]:
    """Cityscapes label id -> train id from cityscapesscripts' label table (ids whose train id
    is 255 or -1 are left out, so they map to ignore)."""
    from cityscapesscripts.helpers.labels import labels

    return {lb.id: lb.trainId for lb in labels if lb.id >= 0 and 0 <= lb.trainId < 255}


def id_lut(id_to_trainid: dict[int, int], size: int = 256) -> np.ndarray:
    """Look-up table ``lut[raw_id] = train_id`` (``IGNORE_INDEX`` for unmapped ids)."""
    lut = np.full(size, IGNORE_INDEX, dtype=np.uint8)
    for raw, train in id_to_trainid.items():
        lut[raw] = train
    return lut


def invert(id_to_trainid: dict[int, int]) -> dict[int, int]:
    """``train_id -> raw id``; each map here is one-to-one on its train ids."""
    inverse = {train: raw for raw, train in id_to_trainid.items()}
    assert len(inverse) == len(id_to_trainid), 'map is not one-to-one'
    return inverse
