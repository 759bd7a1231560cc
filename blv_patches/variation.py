"""The variation |δ| of BLV: four distributions, sampled on the logits' device."""
from __future__ import annotations

import math

import torch

VARIATIONS = ('gaussian', 'uniform', 'beta', 'exponential')
# How the clipped gaussian is drawn; both are exact. 'randn': σ·|N(0, 1)|, then the clip.
# 'inverse_cdf': σ√2·erfinv(U), U ~ U[0, 1), the inverse CDF of σ|Z|, then the clip: one
# uniform per element instead of a normal draw (see tools/benchmark_blv.py for which is faster).
GAUSSIAN_SAMPLERS = ('randn', 'inverse_cdf')


def sample_variation(kind: str, shape: torch.Size | tuple[int, ...], *, sigma: float = 4.0,
                     clip: float | None = 1.0, device: torch.device | str = 'cpu',
                     dtype: torch.dtype = torch.float32,
                     gaussian_sampler: str = 'randn') -> torch.Tensor:
    """Draw |δ| independently for every element, from torch's global RNG on ``device``.

    gaussian: |N(0, σ)| clipped to [0, clip] (the released code clamps N(0, σ) to [-clip, clip]
    and takes abs, which is the same). uniform: U[0, 1]. beta: Beta(0.5, 0.5). exponential:
    Exp(λ=1). Every kind is clipped to [0, clip] unless clip is None. ``gaussian_sampler``:
    see ``GAUSSIAN_SAMPLERS``; without a clip the gaussian is always drawn by 'randn' (float32
    uniforms stop short of the normal's far tail).
    """
    if kind not in VARIATIONS:
        raise ValueError(f'unknown BLV variation {kind!r}; choose one of {VARIATIONS}')
    if gaussian_sampler not in GAUSSIAN_SAMPLERS:
        raise ValueError(f'unknown gaussian sampler {gaussian_sampler!r}; choose one of '
                         f'{GAUSSIAN_SAMPLERS}')
    if kind == 'gaussian':
        if sigma <= 0:
            raise ValueError(f'BLV sigma must be positive, got {sigma}')
        if gaussian_sampler == 'inverse_cdf' and clip is not None:
            noise = torch.rand(shape, device=device, dtype=dtype).erfinv_().mul_(
                sigma * math.sqrt(2.0))
        else:
            noise = torch.randn(shape, device=device, dtype=dtype).abs_().mul_(sigma)
    elif kind == 'uniform':
        noise = torch.rand(shape, device=device, dtype=dtype)
    elif kind == 'beta':
        # Beta(1/2, 1/2) is the arcsine law: sin²(πU/2) with U ~ U[0, 1) is an exact sampler
        # needing one uniform draw, much cheaper than torch's gamma-based Beta sampler.
        noise = torch.rand(shape, device=device, dtype=dtype).mul_(math.pi / 2).sin_().square_()
    else:
        # -log(1 - U) is Exp(1); torch's exponential_ is several times slower on CPU.
        noise = torch.rand(shape, device=device, dtype=dtype).neg_().log1p_().neg_()
    if clip is not None:
        noise.clamp_(max=clip)
    return noise
