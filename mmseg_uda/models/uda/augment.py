"""DACS's strong augmentation of the mixed image: colour jitter, then Gaussian blur."""
from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np
import torch
from kornia.augmentation import ColorJiggle
from kornia.filters import gaussian_blur2d


def blur_kernel_size(size: int) -> int:
    """The odd kernel size nearest above 10% of ``size``: 51 for 512, 103 for 1024."""
    k = math.ceil(0.1 * size)
    return k if k % 2 == 1 else k - 1


class StrongAugmentation:
    """Colour jitter (probability ``color_jitter_p``) and blur (``blur_p``) on a normalised batch.

    Whether each is applied is decided once per call (the whole batch) with Python's
    ``random``, with DAFormer's draws and comparisons; the jitter factors and the order of
    its four operations (kornia, torch's global RNG) and the blur σ ~ U(``blur_sigma``)
    (numpy) are drawn per image, as DAFormer's per-image ``strong_transform`` does. Jitter
    works on the denormalised [0, 1] image with kornia's ``ColorJiggle``, which keeps kornia
    0.5.8's ``ColorJitter`` semantics (additive brightness, hue in turns) that DAFormer used;
    kornia ≥0.6's ``ColorJitter`` follows torchvision instead.
    The input is never modified in place.
    """

    def __init__(self, color_jitter_strength: float = 0.2, color_jitter_p: float = 0.8,
                 blur: bool = True, blur_p: float = 0.5,
                 blur_sigma: Sequence[float] = (0.15, 1.15)) -> None:
        s = color_jitter_strength
        self.color_jitter = ColorJiggle(brightness=s, contrast=s, saturation=s, hue=s, p=1.0)
        self.color_jitter_p = color_jitter_p
        self.blur = blur
        self.blur_p = blur_p
        self.blur_sigma = tuple(blur_sigma)
        self._norm_cache: dict = {}

    def _mean_std(self, img_norm_cfg: dict, device: torch.device
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        # Cached per device: a fresh host→device copy every iteration would sync the stream.
        key = (device, tuple(img_norm_cfg['mean']), tuple(img_norm_cfg['std']))
        if key not in self._norm_cache:
            mean, std = (torch.as_tensor(np.asarray(img_norm_cfg[k], dtype=np.float32),
                                         device=device).view(1, -1, 1, 1)
                         for k in ('mean', 'std'))
            self._norm_cache[key] = (mean, std)
        return self._norm_cache[key]

    def jitter(self, img: torch.Tensor, img_norm_cfg: dict) -> torch.Tensor:
        """Colour jitter image by image, as DAFormer's per-image ``strong_transform``: each
        image gets its own factors and its own random order of brightness, contrast,
        saturation and hue (kornia draws one order per call)."""
        mean, std = self._mean_std(img_norm_cfg, img.device)
        unit = (img * std + mean) / 255.0
        jittered = torch.cat([self.color_jitter(one.unsqueeze(0)) for one in unit])
        return (jittered * 255.0 - mean) / std

    def gaussian_blur(self, img: torch.Tensor) -> torch.Tensor:
        sigma = np.random.uniform(*self.blur_sigma, size=img.shape[0])
        # (B, 2) on the host: kornia checks it there and copies it without a sync.
        sigma = torch.from_numpy(np.stack([sigma, sigma], axis=1)).to(img.dtype)
        kernel = (blur_kernel_size(img.shape[-2]), blur_kernel_size(img.shape[-1]))
        return gaussian_blur2d(img, kernel, sigma)

    def __call__(self, img: torch.Tensor, img_norm_cfg: dict) -> torch.Tensor:
        # DAFormer's draws, shared by the batch: u ~ U(0, 1) from Python's random for the
        # jitter, then one for the blur (only when blur is on); each applies when
        # u > 1 - p (DAFormer's color_jitter_probability is 1 - p; its blur threshold 0.5).
        if random.uniform(0, 1) > 1 - self.color_jitter_p:
            img = self.jitter(img, img_norm_cfg)
        if self.blur and random.uniform(0, 1) > 1 - self.blur_p:
            img = self.gaussian_blur(img)
        return img
