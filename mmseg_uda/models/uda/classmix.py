"""ClassMix: paste the pixels of half of the source classes onto the target image."""
from __future__ import annotations

import torch

_LABEL_RANGE = 256  # labels are 8-bit train ids, 255 = ignore

CLASSMIX_SOURCES = ('image', 'batch')


@torch.no_grad()
def class_mix_masks(labels: torch.Tensor, classes_from: str = 'image',
                    ignore_index: int = 255) -> torch.Tensor:
    """Boolean masks (same shape as ``labels``, B×1×H×W or B×H×W) of the pasted source pixels.

    For each image, ⌈n/2⌉ of n candidate classes are chosen uniformly without replacement and
    the mask marks that image's pixels of the chosen classes.

    - ``'image'`` (the ClassMix/DACS papers): the candidates are the classes of that image,
      ignore excluded.
    - ``'batch'`` (DAFormer's released ``get_class_masks``): the candidates are the classes of
      the whole batch, ignore (255) included; each image still draws its own subset.

    Runs on the labels' device without a host sync: the subset is the ⌈n/2⌉ present classes
    with the smallest uniform random scores (torch's global RNG).
    """
    if classes_from not in CLASSMIX_SOURCES:
        raise ValueError(f'classmix classes_from={classes_from!r}; choose one of '
                         f'{CLASSMIX_SOURCES}')
    batch = labels.shape[0]
    flat = labels.reshape(batch, -1).long()
    present = torch.zeros(batch, _LABEL_RANGE, dtype=torch.bool, device=labels.device)
    present.scatter_(1, flat, True)
    if classes_from == 'image':
        present[:, ignore_index] = False
    else:
        present = present.any(dim=0, keepdim=True).expand(batch, -1)
    num_chosen = (present.sum(dim=1, keepdim=True) + 1) // 2
    scores = torch.rand(batch, _LABEL_RANGE, device=labels.device).masked_fill(~present, 2.0)
    rank = scores.argsort(dim=1).argsort(dim=1)
    chosen = present & (rank < num_chosen)
    return chosen.gather(1, flat).view_as(labels)


def mix(mask: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``source`` where ``mask``, else ``target`` (mask broadcast over channels)."""
    return torch.where(mask, source, target)
