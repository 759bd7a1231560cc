"""Crop boxes, random detail crops and overlapping sliding windows (HRDA and slide inference)."""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch


class Box(NamedTuple):
    """A crop window ``[y1, y2) × [x1, x2)`` in pixels of some grid."""

    y1: int
    y2: int
    x1: int
    x2: int

    @property
    def height(self) -> int:
        return self.y2 - self.y1

    @property
    def width(self) -> int:
        return self.x2 - self.x1

    def crop(self, tensor: torch.Tensor) -> torch.Tensor:
        """The window of ``tensor`` (…×H×W: images, logits, labels and weights alike)."""
        return tensor[..., self.y1:self.y2, self.x1:self.x2]

    def scaled(self, factor: float, what: str = 'box') -> Box:
        """The same window on a grid ``factor`` times as fine; it must land on whole pixels.

        A fractional result means the box is not aligned to the coarser grid (for HRDA: the
        detail crop is not a multiple of the output stride times the scale ratio), which would
        shift the detail prediction against the context prediction.
        """
        coords = [c * factor for c in self]
        rounded = [round(c) for c in coords]
        if any(abs(c - r) > 1e-6 for c, r in zip(coords, rounded)):
            raise ValueError(
                f'{what} {tuple(self)} scaled by {factor:g} gives {tuple(coords)}, not whole '
                'pixels; make the crop coordinates and size multiples of the output stride × '
                'scale ratio (HRDA: raise model.crop_coord_divisible, e.g. 8 for DAFormer, '
                '16 for DeepLabV2, and use an hr_crop_size divisible by it)')
        return Box(*rounded)


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def sample_crop_box(img_size: Sequence[int], crop_size: int | Sequence[int],
                    divisible: int = 1) -> Box:
    """A uniformly random ``crop_size`` window inside ``img_size`` whose offsets are multiples of
    ``divisible``.

    Drawn from torch's global CPU generator, so ``torch.manual_seed`` (mmseg's
    ``set_random_seed``) makes the sequence of boxes reproducible across runs and resumes.
    """
    (img_h, img_w), (crop_h, crop_w) = _pair(img_size), _pair(crop_size)
    if crop_h > img_h or crop_w > img_w:
        raise ValueError(f'HRDA detail crop {crop_h}x{crop_w} (model.hr_crop_size) is larger '
                         f'than the {img_h}x{img_w} high-resolution image; lower hr_crop_size '
                         'or use a larger training crop')
    offsets = []
    for margin in (img_h - crop_h, img_w - crop_w):
        steps = margin // divisible + 1
        offsets.append(int(torch.randint(steps, ()).item()) * divisible)
    y1, x1 = offsets
    return Box(y1, y1 + crop_h, x1, x1 + crop_w)


def sliding_windows(img_size: Sequence[int], crop_size: int | Sequence[int],
                    stride: int | Sequence[int]) -> list[Box]:
    """Windows of ``crop_size`` every ``stride`` pixels covering the image, mmseg's grid.

    The last row/column of windows is shifted back to end at the border, so every window
    has the full crop size unless the image itself is smaller.
    """
    (img_h, img_w), (crop_h, crop_w), (stride_h, stride_w) = (
        _pair(img_size), _pair(crop_size), _pair(stride))
    if stride_h <= 0 or stride_w <= 0:
        raise ValueError(f'sliding window stride must be positive, got {(stride_h, stride_w)}')
    rows = max(img_h - crop_h + stride_h - 1, 0) // stride_h + 1
    cols = max(img_w - crop_w + stride_w - 1, 0) // stride_w + 1
    boxes = []
    for row in range(rows):
        for col in range(cols):
            y2 = min(row * stride_h + crop_h, img_h)
            x2 = min(col * stride_w + crop_w, img_w)
            boxes.append(Box(max(y2 - crop_h, 0), y2, max(x2 - crop_w, 0), x2))
    return boxes


def merge_windows(window_outputs: Sequence[torch.Tensor], boxes: Sequence[Box],
                  out_size: Sequence[int], allow_gaps: bool = False) -> torch.Tensor:
    """Place each window's B×C×h×w output at its box and average where windows overlap.

    Pixels no window covers are an error, or zero with ``allow_gaps`` (HRDA's training-time
    detail crop, which covers only part of the image).
    """
    if len(window_outputs) != len(boxes) or not boxes:
        raise ValueError(f'merge_windows: {len(window_outputs)} outputs for {len(boxes)} boxes')
    first = window_outputs[0]
    merged = first.new_zeros((first.shape[0], first.shape[1], *out_size))
    count = first.new_zeros((1, 1, *out_size))
    for out, box in zip(window_outputs, boxes):
        if out.shape[2:] != (box.height, box.width):
            raise ValueError(f'merge_windows: window output of size {tuple(out.shape[2:])} '
                             f'does not fit its box {tuple(box)}')
        merged[..., box.y1:box.y2, box.x1:box.x2] += out
        count[..., box.y1:box.y2, box.x1:box.x2] += 1
    if not allow_gaps and (count == 0).any():
        raise ValueError('merge_windows: the windows do not cover the whole output')
    return merged / count.clamp(min=1)


def boxes_mask(boxes: Sequence[Box], size: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """A 1×1×H×W mask (dtype and device of ``like``): 1 inside any of ``boxes``, 0 elsewhere."""
    mask = like.new_zeros((1, 1, *size))
    for box in boxes:
        mask[..., box.y1:box.y2, box.x1:box.x2] = 1
    return mask
